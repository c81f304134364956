import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { CharTokenizer as LegacyCharTokenizer } from '../../src/data/char-tokenizer.js';
import { CharTokenizer } from '../../src/tokenizers/char.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizers/trainers/index.js';

const TEXT = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8').slice(0, 20_000) + ' 😀 emoji, 中文, tab\there\r\n';

describe('CharTokenizer (HF tokenizer.json form)', () => {
  it('gives the same ids as the quickstart character tokenizer (characters sorted by code point)', () => {
    const tok = CharTokenizer.fromText(TEXT);
    const legacy = LegacyCharTokenizer.fromText(TEXT);
    expect(tok.vocabSize).toBe(legacy.vocabSize);
    expect(tok.encode(TEXT)).toEqual(legacy.encode(TEXT));
    expect(tok.vocab[0]).toBe('\t');
    expect(tok.vocab.at(-1)).toBe('😀');
  });

  it('its tokenizer.json, loaded as a general pipeline, encodes and decodes identically (emoji stay one token)', () => {
    const tok = CharTokenizer.fromText(TEXT);
    const pipeline = Tokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    for (const text of [TEXT, '😀😀 a\n\nb', ' ', '']) {
      const ids = tok.encode(text);
      expect(pipeline.encode(text)).toEqual(ids);
      expect(pipeline.decode(ids)).toBe(text);
      expect(tok.decode(ids)).toBe(text);
    }
    expect(pipeline.encode('😀')).toHaveLength(1);
    const e = pipeline.encodeFull('a😀b');
    expect(e.offsets).toEqual([[0, 1], [1, 3], [3, 4]]);
  });

  it('writes the real HF schema: WordLevel over characters, Split on every code point, Fuse decoder', () => {
    const json = CharTokenizer.fromText('ba\n').toJSON();
    expect(json).toEqual({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab: { '\n': 0, a: 1, b: 2 }, unk_token: '<unk>' },
    });
  });

  it('reads back its own JSON and the older {"type":"char"} form; rejects other tokenizers clearly', () => {
    const tok = CharTokenizer.fromText(TEXT);
    expect(CharTokenizer.fromJSON(tok.toJSON()).encode(TEXT)).toEqual(tok.encode(TEXT));
    const legacy = LegacyCharTokenizer.fromText(TEXT);
    expect(CharTokenizer.fromJSON(legacy.toJSON()).encode(TEXT)).toEqual(legacy.encode(TEXT));
    const bpe = trainTokenizer(['abc abc\n'], { type: 'bpe', vocabSize: 260 });
    expect(() => CharTokenizer.fromJSON(bpe.toJSON())).toThrow(/not a character tokenizer \(expected a WordLevel model/);
    const bad = tok.toJSON();
    (bad.model as { vocab: Record<string, number> }).vocab = { ab: 0 };
    expect(() => CharTokenizer.fromJSON(bad)).toThrow(/vocabulary entry 0 \("ab"\) is not one character/);
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: [] })).toThrow(/non-empty array of characters/);
    expect(() => CharTokenizer.fromJSON(null)).toThrow(/expected a tokenizer.json object/);
  });

  it('fails on characters outside the vocabulary (directly and through the pipeline) and on bad ids', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('abz')).toThrow(/character "z" \(U\+007A\) is not in the vocabulary of 3 characters/);
    expect(() => tok.toTokenizer().encode('abz')).toThrow(/"z" is not in the vocabulary and the unknown token "<unk>" is not either/);
    expect(() => tok.decode([0, 3])).toThrow(/id 3 is outside the vocabulary \[0, 3\)/);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
    expect(() => CharTokenizer.fromText('')).toThrow(/empty/);
  });
});
