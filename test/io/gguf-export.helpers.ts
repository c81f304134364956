/** A tiny LLaMA and SentencePiece vocabulary shared by the GGUF export tests. */
import { Llama, type LlamaConfigInput } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { sentencePieceTokenizer } from '../../src/tokenizers/formats/gguf-vocab.js';
import type { Tokenizer } from '../../src/tokenizers/tokenizer.js';

export function tinyVocab(): { pieces: string[]; scores: number[] } {
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const letters = 'abcdefghijklmnopqrstuvwxyz'.split('');
  pieces.push('▁', ...letters, ...letters.map((l) => `▁${l}`), 'th', '▁th', 'he', '▁the', 'in', 'er', 'an', '▁an', 'on', 're');
  // SentencePiece scores: longer / earlier-merged pieces first.
  const scores = pieces.map((_, i) => (i < 259 ? 0 : -i));
  return { pieces, scores };
}

export function tinyTokenizer(): Tokenizer {
  const { pieces, scores } = tinyVocab();
  return sentencePieceTokenizer({ pieces, scores, unkId: 0, bosId: 1, eosId: 2 });
}

/** Vocabulary padded past the tokenizer (322 pieces) to 352 rows, as models often are. */
export const TINY_LLAMA: LlamaConfigInput = {
  vocabSize: 352,
  hiddenSize: 64,
  intermediateSize: 160,
  nLayer: 2,
  nHead: 4,
  nKVHead: 2,
  maxPositionEmbeddings: 128,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  // Larger weights than the usual 0.02 give peaked logits, so greedy choices are not near-ties.
  initializerRange: 0.3,
};

export function tinyLlama(seed = 1, overrides: Partial<LlamaConfigInput> = {}): Llama {
  return new Llama({ ...TINY_LLAMA, ...overrides }, { generator: new Generator(seed) });
}
