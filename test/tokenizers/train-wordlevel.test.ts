import { describe, expect, it } from 'vitest';
import { WordLevel } from '../../src/tokenizers/models/wordlevel.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';

describe('WordLevel model', () => {
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: { '[UNK]': 0, hello: 1, world: 2 }, unk_token: '[UNK]' },
  };

  it('looks words up whole, unknown ones become unk_token; tokenizer.json round-trips', () => {
    const tok = Tokenizer.fromJSON(json);
    const e = tok.encodeFull('hello  there world');
    expect(e.ids).toEqual([1, 0, 2]);
    expect(e.tokens).toEqual(['hello', '[UNK]', 'world']);
    expect(e.offsets).toEqual([[0, 5], [7, 12], [13, 18]]);
    expect(tok.decode([1, 2])).toBe('hello world');
    expect(tok.toJSON().model).toEqual(json.model);
  });

  it('defaults unk_token to "<unk>" and fails clearly when the unknown token is missing', () => {
    const m = WordLevel.fromJSON({ type: 'WordLevel', vocab: { a: 0 } });
    expect(m.unkToken).toBe('<unk>');
    expect(m.tokenize('a')).toEqual([{ id: 0, value: 'a', start: 0, end: 1 }]);
    expect(m.tokenize('')).toEqual([]);
    expect(() => m.tokenize('b')).toThrow(/WordLevel: "b" is not in the vocabulary and the unknown token "<unk>" is not either/);
    expect(m.idToToken(0)).toBe('a');
    expect(m.idToToken(1)).toBeUndefined();
    expect(m.vocabSize).toBe(1);
  });

  it('rejects malformed JSON: missing vocab, bad ids, duplicate ids', () => {
    expect(() => WordLevel.fromJSON({ type: 'WordLevel' })).toThrow(/model\(WordLevel\)\.vocab must be an object/);
    expect(() => WordLevel.fromJSON({ type: 'WordLevel', vocab: { a: -1 } })).toThrow(/vocab\["a"\] must be a non-negative integer id, got -1/);
    expect(() => WordLevel.fromJSON({ type: 'WordLevel', vocab: { a: '0' } })).toThrow(/must be a non-negative integer id, got "0"/);
    expect(() => WordLevel.fromJSON({ type: 'WordLevel', vocab: { a: 0, b: 0 } })).toThrow(/id 0 is used by both "a" and "b"/);
    expect(() => WordLevel.fromJSON({ type: 'WordLevel', vocab: { a: 0 }, unk_token: 5 })).toThrow(/unk_token must be a string/);
  });
});
