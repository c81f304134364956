import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CharTokenizer } from '../../src/data/char-tokenizer.js';

const shakespeare = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8');

describe('CharTokenizer', () => {
  it('builds nanoGPT’s shakespeare_char vocabulary: 65 characters sorted by code point', () => {
    const tok = CharTokenizer.fromText(shakespeare);
    expect(tok.vocabSize).toBe(65);
    // nanoGPT's prepare.py: sorted(list(set(data))) starts with '\n', ' ', '!' and ends with 'z'.
    const vocab = tok.vocab;
    expect(vocab.slice(0, 3)).toEqual(['\n', ' ', '!']);
    expect(vocab.at(-1)).toBe('z');
    // stoi of nanoGPT for "hii there" (its README example): [46, 47, 47, 1, 58, 46, 43, 56, 43].
    expect(tok.encode('hii there')).toEqual([46, 47, 47, 1, 58, 46, 43, 56, 43]);
  });

  it('round-trips text, including characters outside the BMP as single tokens', () => {
    const text = 'a😀b\nçé😀';
    const tok = CharTokenizer.fromText(text);
    expect(tok.vocabSize).toBe(6);
    const ids = tok.encode(text);
    expect(ids.length).toBe(7);
    expect(tok.decode(ids)).toBe(text);
  });

  it('serialises to tokenizer.json and back to the same ids', () => {
    const tok = CharTokenizer.fromText(shakespeare.slice(0, 5000));
    const again = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
    const sample = shakespeare.slice(100, 400);
    expect(again.encode(sample)).toEqual(tok.encode(sample));
    expect(again.vocabSize).toBe(tok.vocabSize);
  });

  it('refuses unknown characters, out-of-range ids and malformed JSON with clear errors', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('abd')).toThrow(/"d" \(U\+0064\) is not in the vocabulary of 3/);
    expect(() => tok.decode([0, 3])).toThrow(/id 3 is outside the vocabulary \[0, 3\)/);
    expect(() => tok.decode([-1])).toThrow(/outside the vocabulary/);
    expect(() => CharTokenizer.fromText('')).toThrow(/empty/);
    expect(() => CharTokenizer.fromJSON({ type: 'bpe' })).toThrow(/not a character tokenizer/);
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: ['a', 'a'] })).toThrow(/appears twice/);
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: ['ab'] })).toThrow(/not one character/);
  });
});
