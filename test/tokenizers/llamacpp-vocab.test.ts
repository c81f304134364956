/**
 * llama.cpp's tokenizer test vectors (tests/test-tokenizer-0): for each vocabulary, the 46 inputs
 * of `<vocab>.gguf.inp` must give exactly the ids of `<vocab>.gguf.out`, using the tokenizer built
 * from the GGUF file's embedded vocabulary. The vectors were made with add_special = false (no
 * BOS / [CLS] / [SEP]); the SPM ones show SentencePiece's dummy-prefix "▁" (" " → "▁▁").
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tokenizerFromGGUF } from '../../src/tokenizers/formats/gguf-vocab.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';

const DIR = join(__dirname, '../../../shared/data/tokenizers/llama.cpp');
const SEPARATOR = '\n__ggml_vocab_test__\n';

/** The inputs (each terminated by the separator) and the expected id lines. */
function loadVectors(vocab: string): { inputs: string[]; expected: number[][] } {
  const inp = readFileSync(join(DIR, `ggml-vocab-${vocab}.gguf.inp`), 'utf8');
  const inputs = inp.split(SEPARATOR);
  // The file ends with a separator, so the last split element is empty and not an input.
  expect(inputs.pop()).toBe('');
  const out = readFileSync(join(DIR, `ggml-vocab-${vocab}.gguf.out`), 'utf8');
  const lines = out.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const expected = lines.map((l) => l.trim().split(/\s+/).filter((s) => s !== '').map(Number));
  return { inputs, expected };
}

for (const vocab of ['llama-spm', 'bert-bge', 'gpt-2']) {
  const have = existsSync(join(DIR, `ggml-vocab-${vocab}.gguf`));
  describe(`llama.cpp vectors: ${vocab}`, () => {
    it.skipIf(!have)('all 46 inputs give the expected ids', () => {
      const tok = tokenizerFromGGUF(join(DIR, `ggml-vocab-${vocab}.gguf`));
      const { inputs, expected } = loadVectors(vocab);
      expect(inputs).toHaveLength(46);
      expect(expected).toHaveLength(46);
      const failures: string[] = [];
      inputs.forEach((text, i) => {
        const ids = tok.encode(text, { addSpecialTokens: false });
        if (JSON.stringify(ids) !== JSON.stringify(expected[i])) failures.push(`#${i} ${JSON.stringify(text)}: got ${ids.join(' ')}, want ${expected[i]!.join(' ')}`);
      });
      expect(failures).toEqual([]);
    });
  });
}

describe('llama.cpp SPM vocabulary: decoding and tokenizer.json', () => {
  const have = existsSync(join(DIR, 'ggml-vocab-llama-spm.gguf'));

  it.skipIf(!have)('decodes every vector input back to itself', () => {
    const tok = tokenizerFromGGUF(join(DIR, 'ggml-vocab-llama-spm.gguf'));
    const { inputs } = loadVectors('llama-spm');
    for (const text of inputs) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it.skipIf(!have)('saved as an HF tokenizer.json (BPE with byte fallback) it loads back with identical ids', () => {
    const tok = tokenizerFromGGUF(join(DIR, 'ggml-vocab-llama-spm.gguf'));
    const json = JSON.parse(JSON.stringify(tok.toJSON()));
    expect(json.model.type).toBe('BPE');
    expect(json.added_tokens.map((t: { content: string }) => t.content)).toEqual(['<unk>', '<s>', '</s>']);
    const back = Tokenizer.fromJSON(json);
    const { inputs, expected } = loadVectors('llama-spm');
    inputs.forEach((text, i) => expect(back.encode(text, { addSpecialTokens: false }), `#${i}`).toEqual(expected[i]));
    expect(back.encode('Hello')).toEqual([1, 15043]);
    expect(back.decode(back.encode(' Hello  wörld 🦙'))).toBe(' Hello  wörld 🦙');
  });
});
