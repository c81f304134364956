/**
 * Training a complete tokenizer: the pipeline Hugging Face's ready-made tokenizer classes build for
 * each model type, the trainer, and the trained model in one `Tokenizer`:
 *   - bpe: byte-level BPE as GPT-2 (ByteLevelBPETokenizer): no normalizer, ByteLevel pre-tokenizer
 *     (GPT-2 regex, no prefix space), the 256 byte characters as initial alphabet, ByteLevel
 *     post-processor and decoder; special token "<|endoftext|>".
 *   - wordpiece: BERT (BertWordPieceTokenizer): BertNormalizer (lowercase, strip accents, Chinese
 *     characters split), BertPreTokenizer, WordPiece "##" with [UNK], [CLS] … [SEP] post-processing,
 *     WordPiece decoder; special tokens [PAD] [UNK] [CLS] [SEP] [MASK]; alphabet limited to 1000.
 *   - unigram: SentencePiece (SentencePieceUnigramTokenizer): NFKC and runs of spaces collapsed,
 *     Metaspace "▁" pre-tokenizer and decoder; special tokens <unk> <s> </s>, <unk> the unknown.
 * Inputs are read line by line with their newlines, as HF's `train_from_files`.
 */
import { Tokenizer } from '../tokenizer.js';
// The components the recipes name, registered for loading by type (whatever components.ts lists).
import '../normalizers/bert.js';
import '../normalizers/sequence.js';
import '../normalizers/unicode.js';
import '../normalizers/replace.js';
import '../pre-tokenizers/bert.js';
import '../pre-tokenizers/byte-level.js';
import '../pre-tokenizers/metaspace.js';
import '../decoders/byte-level.js';
import '../decoders/metaspace.js';
import '../decoders/wordpiece.js';
import '../processors/bert.js';
import '../processors/byte-level.js';
import { BPE } from '../models/bpe.js';
import { Unigram } from '../models/unigram.js';
import { WordPiece } from '../models/wordpiece.js';
import { decoders, normalizers, postProcessors, preTokenizers } from '../registry.js';
import type { Decoder, JsonObject, Normalizer, PostProcessor, PreTokenizer } from '../types.js';
import { BYTE_TABLES } from '../util.js';
import { BpeTrainer } from './bpe.js';
import { countWords, linesWithEndings, readTrainingFiles, type ProgressCallback, type WordCounts } from './common.js';
import { UnigramTrainer } from './unigram.js';
import { WordPieceTrainer } from './wordpiece.js';

export type TrainableType = 'bpe' | 'wordpiece' | 'unigram';
export const TRAINABLE_TYPES: readonly TrainableType[] = ['bpe', 'wordpiece', 'unigram'];

export interface TrainTokenizerOptions {
  type: TrainableType;
  /** Vocabulary size, special tokens included (defaults: bpe 30000, wordpiece 30000, unigram 8000). */
  vocabSize?: number;
  /** Minimum pair count for a merge (bpe, wordpiece; default 2 as HF's ready-made tokenizers). */
  minFrequency?: number;
  /** Replaces the type's default special tokens (they take the first ids, in this order). */
  specialTokens?: readonly string[];
  /** Keep at most this many characters (default: none for bpe and unigram, 1000 for wordpiece). */
  limitAlphabet?: number;
  /** Extra characters always in the alphabet (bpe already has all 256 bytes). */
  initialAlphabet?: readonly string[];
  onProgress?: ProgressCallback;
}

interface Recipe {
  vocabSize: number;
  minFrequency: number;
  specialTokens: readonly string[];
  limitAlphabet: number | undefined;
  normalizer: JsonObject | null;
  preTokenizer: JsonObject;
  decoder: JsonObject;
}

const RECIPES: Record<TrainableType, Recipe> = {
  bpe: {
    vocabSize: 30000,
    minFrequency: 2,
    specialTokens: ['<|endoftext|>'],
    limitAlphabet: undefined,
    normalizer: null,
    preTokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  },
  wordpiece: {
    vocabSize: 30000,
    minFrequency: 2,
    specialTokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'],
    limitAlphabet: 1000,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    preTokenizer: { type: 'BertPreTokenizer' },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  },
  unigram: {
    vocabSize: 8000,
    minFrequency: 0,
    specialTokens: ['<unk>', '<s>', '</s>'],
    limitAlphabet: undefined,
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }],
    },
    preTokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
  },
};

const WORDPIECE_UNK = '[UNK]';
const UNIGRAM_UNK = '<unk>';

/** The untrained pipeline pieces of a type (what word counting runs through). */
export function trainingPipeline(type: TrainableType): { normalizer: Normalizer | null; preTokenizer: PreTokenizer; decoder: Decoder } {
  const r = RECIPES[type];
  if (r === undefined) throw new Error(`trainTokenizer: unknown type '${String(type)}' (expected one of ${TRAINABLE_TYPES.join(', ')})`);
  return {
    normalizer: r.normalizer === null ? null : normalizers.fromJSON(r.normalizer),
    preTokenizer: preTokenizers.fromJSON(r.preTokenizer),
    decoder: decoders.fromJSON(r.decoder),
  };
}

/** Trains a tokenizer of `options.type` on texts (each read line by line). */
export function trainTokenizer(texts: readonly string[], options: TrainTokenizerOptions): Tokenizer {
  const pipeline = trainingPipeline(options.type);
  let totalChars = 0;
  for (const t of texts) totalChars += t.length;
  const counts: WordCounts = new Map();
  let offset = 0;
  for (const text of texts) {
    const base = offset;
    countWords(linesWithEndings(text), pipeline, {
      counts,
      totalChars,
      onProgress: options.onProgress === undefined ? undefined : (p) => options.onProgress!({ ...p, done: base + p.done, total: totalChars }),
    });
    offset += text.length;
  }
  return trainTokenizerFromCounts(counts, options);
}

/** Trains a tokenizer on UTF-8 text files. */
export function trainTokenizerFromFiles(paths: readonly string[], options: TrainTokenizerOptions): Tokenizer {
  return trainTokenizer(readTrainingFiles(paths), options);
}

/** Trains on word counts already produced by `trainingPipeline(type)` (see countWords). */
export function trainTokenizerFromCounts(counts: WordCounts, options: TrainTokenizerOptions): Tokenizer {
  const recipe = RECIPES[options.type];
  if (recipe === undefined) throw new Error(`trainTokenizer: unknown type '${String(options.type)}' (expected one of ${TRAINABLE_TYPES.join(', ')})`);
  if (options.type === 'unigram' && (options.minFrequency !== undefined || options.limitAlphabet !== undefined)) {
    throw new Error('trainTokenizer(unigram): minFrequency and limitAlphabet apply to bpe and wordpiece only (the Unigram trainer prunes by likelihood)');
  }
  const pipeline = trainingPipeline(options.type);
  const vocabSize = options.vocabSize ?? recipe.vocabSize;
  const specialTokens = options.specialTokens ?? recipe.specialTokens;
  const minFrequency = options.minFrequency ?? recipe.minFrequency;
  const limitAlphabet = options.limitAlphabet ?? recipe.limitAlphabet;
  const initialAlphabet = options.initialAlphabet ?? [];
  const onProgress = options.onProgress;

  let tokenizer: Tokenizer;
  switch (options.type) {
    case 'bpe': {
      const trained = new BpeTrainer({
        vocabSize,
        minFrequency,
        specialTokens,
        limitAlphabet,
        initialAlphabet: [...BYTE_TABLES.byteToChar, ...initialAlphabet],
        onProgress,
      }).train(counts);
      const model = new BPE({ vocab: trained.vocab, merges: trained.merges });
      tokenizer = new Tokenizer(model, { ...pipeline, postProcessor: postProcessors.fromJSON({ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }) });
      break;
    }
    case 'wordpiece': {
      if (!specialTokens.includes(WORDPIECE_UNK)) {
        throw new Error(`trainTokenizer(wordpiece): the special tokens must include ${WORDPIECE_UNK}, the token for unknown words (got ${JSON.stringify(specialTokens)})`);
      }
      const trained = new WordPieceTrainer({ vocabSize, minFrequency, specialTokens, limitAlphabet, initialAlphabet, onProgress }).train(counts);
      const model = new WordPiece(trained.vocab, { unkToken: WORDPIECE_UNK, continuingSubwordPrefix: trained.continuingSubwordPrefix, maxInputCharsPerWord: 100 });
      const cls = trained.vocab.get('[CLS]');
      const sep = trained.vocab.get('[SEP]');
      // BERT's [CLS] … [SEP] framing, when those tokens exist.
      const postProcessor: PostProcessor | null =
        cls !== undefined && sep !== undefined ? postProcessors.fromJSON({ type: 'BertProcessing', sep: ['[SEP]', sep], cls: ['[CLS]', cls] }) : null;
      tokenizer = new Tokenizer(model, { ...pipeline, postProcessor });
      break;
    }
    case 'unigram': {
      const trained = new UnigramTrainer({ vocabSize, specialTokens, unkToken: UNIGRAM_UNK, initialAlphabet, onProgress }).train(counts);
      const model = new Unigram(trained.vocab, { unkId: trained.unkId });
      tokenizer = new Tokenizer(model, pipeline);
      tokenizer.addSpecialTokens(trained.specialTokens);
      return tokenizer;
    }
  }
  tokenizer.addSpecialTokens([...specialTokens]);
  return tokenizer;
}
