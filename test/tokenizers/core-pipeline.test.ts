/**
 * The Tokenizer pipeline: offsets in original-string coordinates (through normalizers, added
 * tokens and the byte-level alphabet), added-token matching rules, truncation with stride and
 * overflow, padding, post-processors, tokenizer.json round trips and malformed files.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BPE } from '../../src/tokenizers/models/bpe.js';
import { LowercaseNormalizer } from '../../src/tokenizers/normalizers/lowercase.js';
import { ReplaceNormalizer } from '../../src/tokenizers/normalizers/replace.js';
import { SequenceNormalizer } from '../../src/tokenizers/normalizers/sequence.js';
import { UnicodeNormalizer } from '../../src/tokenizers/normalizers/unicode.js';
import { SplitPreTokenizer } from '../../src/tokenizers/pre-tokenizers/split.js';
import { BertProcessing } from '../../src/tokenizers/processors/bert.js';
import { RobertaProcessing } from '../../src/tokenizers/processors/roberta.js';
import { TemplateProcessing } from '../../src/tokenizers/processors/template.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';
import type { Encoding, Json } from '../../src/tokenizers/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GPT2 = join(ROOT, '..', 'shared', 'data', 'gpt2', 'tokenizer.json');
const tmp = mkdtempSync(join(tmpdir(), 'weft-tok-core-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789<>-\u0301'];

/** Character-level BPE (one merge: "h e") behind a whitespace split, with BERT's special tokens. */
function charTokenizer(): Tokenizer {
  const vocab = new Map<string, number>();
  for (const t of [...SPECIALS, ...CHARS, 'he']) vocab.set(t, vocab.size);
  const model = new BPE({ vocab, merges: [['h', 'e']], unkToken: '[UNK]' });
  const tok = new Tokenizer(model, {
    preTokenizer: new SplitPreTokenizer({ kind: 'regex', value: '\\s+' }, 'Removed'),
    postProcessor: new BertProcessing(['[SEP]', 3], ['[CLS]', 2]),
  });
  tok.addSpecialTokens(SPECIALS);
  return tok;
}

const id = (tok: Tokenizer, t: string): number => tok.tokenToId(t)!;
const view = (e: Encoding): [string, number, number][] => e.tokens.map((t, i) => [t, e.offsets[i][0], e.offsets[i][1]]);

describe('offsets in the original string', () => {
  it('through a whitespace split and merges', () => {
    const tok = charTokenizer();
    const e = tok.encodeFull('hex  ab', null, { addSpecialTokens: false });
    expect(view(e)).toEqual([
      ['he', 0, 2],
      ['x', 2, 3],
      ['a', 5, 6],
      ['b', 6, 7],
    ]);
  });

  it('through NFKC, lowercase and a deleting Replace', () => {
    const tok = charTokenizer();
    tok.normalizer = new SequenceNormalizer([new UnicodeNormalizer('NFKC'), new LowercaseNormalizer(), new ReplaceNormalizer({ kind: 'string', value: '-' }, '')]);
    // "ﬁ" (1 unit) becomes "fi": both tokens point at the ligature.
    const e = tok.encodeFull('ﬁNE a-b', null, { addSpecialTokens: false });
    expect(view(e)).toEqual([
      ['f', 0, 1],
      ['i', 0, 1],
      ['n', 1, 2],
      ['e', 2, 3],
      ['a', 4, 5],
      ['b', 6, 7],
    ]);
  });

  it('through NFD: a precomposed letter split into base + combining mark maps back to the one character', () => {
    const tok = charTokenizer();
    tok.normalizer = new UnicodeNormalizer('NFD');
    const text = 'caf\u00e9 x';
    const e = tok.encodeFull(text, null, { addSpecialTokens: false });
    expect(view(e)).toEqual([
      ['c', 0, 1],
      ['a', 1, 2],
      ['f', 2, 3],
      ['e', 3, 4],
      ['\u0301', 3, 4],
      ['x', 5, 6],
    ]);
  });

  it.skipIf(!existsSync(GPT2))('byte-level GPT-2: ASCII spans reproduce each token; multi-byte characters map to whole characters', () => {
    const tok = Tokenizer.fromFile(GPT2);
    const ascii = "Hello, world!  It's 2024:\tcode(x) => x*2;\n\nEnd.";
    const e = tok.encodeFull(ascii);
    e.ids.forEach((tid, i) => expect(ascii.slice(e.offsets[i][0], e.offsets[i][1])).toBe(tok.decode([tid])));

    const text = 'naïve 中文字符 😀👍🏽 ok';
    const enc = tok.encodeFull(text);
    // Independent expectation: each token's bytes, mapped to the characters that contain them.
    const charOfByte: [number, number][] = [];
    for (let i = 0; i < text.length; ) {
      const w = text.codePointAt(i)! > 0xffff ? 2 : 1;
      for (let k = 0; k < Buffer.byteLength(text.slice(i, i + w)); k++) charOfByte.push([i, i + w]);
      i += w;
    }
    let byte = 0;
    enc.tokens.forEach((t, i) => {
      const n = t.length; // one byte-level character per byte
      expect(enc.offsets[i]).toEqual([charOfByte[byte][0], charOfByte[byte + n - 1][1]]);
      byte += n;
    });
    expect(byte).toBe(Buffer.byteLength(text));
  });
});

describe('added tokens', () => {
  it('special tokens match in the raw text before normalisation; normalized ones after', () => {
    const tok = charTokenizer();
    tok.normalizer = new LowercaseNormalizer();
    tok.addTokens([{ content: 'abc', normalized: true }]);
    const e = tok.encodeFull('Hi [MASK] ABC', null, { addSpecialTokens: false });
    expect(view(e)).toEqual([
      ['h', 0, 1],
      ['i', 1, 2],
      ['[MASK]', 3, 9],
      ['abc', 10, 13],
    ]);
    expect(tok.encodeFull('[mask]', null, { addSpecialTokens: false }).tokens).not.toContain('[MASK]');
  });

  it('lstrip / rstrip absorb the surrounding whitespace; single_word needs word boundaries', () => {
    const tok = charTokenizer();
    tok.addTokens([{ content: '<m>', lstrip: true, rstrip: true }]);
    expect(view(tok.encodeFull('a  <m>  b', null, { addSpecialTokens: false }))).toEqual([
      ['a', 0, 1],
      ['<m>', 1, 8],
      ['b', 8, 9],
    ]);
    const sw = charTokenizer();
    sw.addTokens([{ content: 'ab', singleWord: true }]);
    const abId = id(sw, 'ab');
    expect(sw.encode('x ab y', { addSpecialTokens: false })).toContain(abId);
    expect(sw.encode('xab y', { addSpecialTokens: false })).not.toContain(abId);
    expect(sw.encode('x abc', { addSpecialTokens: false })).not.toContain(abId);
  });

  it('new added tokens get ids after the vocabulary; decode skips special tokens unless asked', () => {
    const tok = charTokenizer();
    const before = tok.vocabSize;
    expect(tok.addTokens(['<new>', 'a'])).toBe(1); // 'a' is already in the vocabulary
    tok.addTokens(['<|end-of/text|>', '(.*)']);
    expect(tok.encodeFull('x<|end-of/text|>(.*)', null, { addSpecialTokens: false }).tokens).toEqual(['x', '<|end-of/text|>', '(.*)']);
    expect(tok.tokenToId('<new>')).toBe(before);
    expect(tok.vocabSize).toBe(before + 3);
    const ids = tok.encode('ab <new>');
    expect(ids[0]).toBe(id(tok, '[CLS]'));
    expect(tok.decode(ids)).toBe('a b <new>');
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe('[CLS] a b <new> [SEP]');
    expect(() => tok.decode([999_999])).toThrow(/id 999999 is not in the vocabulary/);
  });
});

describe('truncation', () => {
  const seq = (e: Encoding): string => e.tokens.join(' ');

  it('a single sequence with stride: overflowing pieces overlap and each gets [CLS] … [SEP]', () => {
    const tok = charTokenizer();
    tok.enableTruncation(6, { stride: 1 });
    const e = tok.encodeFull('abcdefghij');
    expect(seq(e)).toBe('[CLS] a b c d [SEP]');
    expect(e.overflowing.map((o) => seq(o))).toEqual(['[CLS] d e f g [SEP]', '[CLS] g h i j [SEP]']);
    expect(e.overflowing[0].offsets.slice(1, -1)).toEqual([
      [3, 4],
      [4, 5],
      [5, 6],
      [6, 7],
    ]);
  });

  it("direction 'left' keeps the end", () => {
    const tok = charTokenizer();
    tok.enableTruncation(5, { direction: 'left' });
    expect(seq(tok.encodeFull('abcdefg'))).toBe('[CLS] e f g [SEP]');
  });

  it('longest_first on pairs follows HF (shorter kept whole when it fits, else halves)', () => {
    const tok = charTokenizer();
    tok.enableTruncation(8 + 3);
    let e = tok.encodeFull('abcde', 'abcdefghij');
    expect(e.sequenceIds.filter((s) => s === 0).length).toBe(4);
    expect(e.sequenceIds.filter((s) => s === 1).length).toBe(4);
    e = tok.encodeFull('ab', 'abcdefghij');
    expect(seq(e)).toBe('[CLS] a b [SEP] a b c d e f [SEP]');
    expect(e.typeIds).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    e = tok.encodeFull('abcdefghij', 'ab');
    expect(seq(e)).toBe('[CLS] a b c d e f [SEP] a b [SEP]');
  });

  it('only_first / only_second cut one side, and fail clearly when it is too short', () => {
    const tok = charTokenizer();
    tok.enableTruncation(9, { strategy: 'only_second' });
    expect(seq(tok.encodeFull('abc', 'abcdefgh'))).toBe('[CLS] a b c [SEP] a b c [SEP]');
    tok.enableTruncation(9, { strategy: 'only_first' });
    expect(() => tok.encodeFull('abc', 'abcdefgh')).toThrow(/first sequence has 3 tokens, too few to remove the 5/);
    tok.enableTruncation(4, { strategy: 'only_second' });
    expect(() => tok.encodeFull('abcdef')).toThrow(/'only_second' needs a pair/);
    expect(() => tok.enableTruncation(4, { stride: 4 })).toThrow(/stride \(4\) must be smaller than maxLength \(4\)/);
  });
});

describe('padding and batches', () => {
  it('batch_longest right padding with masks; left padding; fixed length rounded to a multiple', () => {
    const tok = charTokenizer();
    tok.enablePadding();
    const [a, b] = tok.encodeBatch(['abc', ['a', 'bcdef']]);
    expect(a.ids.length).toBe(b.ids.length);
    expect(a.tokens).toEqual(['[CLS]', 'a', 'b', 'c', '[SEP]', '[PAD]', '[PAD]', '[PAD]', '[PAD]']);
    expect(a.attentionMask).toEqual([1, 1, 1, 1, 1, 0, 0, 0, 0]);
    expect(a.specialTokensMask).toEqual([1, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(a.ids[8]).toBe(id(tok, '[PAD]'));
    expect(b.attentionMask.every((m) => m === 1)).toBe(true);

    tok.enablePadding({ direction: 'left', length: 7, padToMultipleOf: 4, padTypeId: 1 });
    const e = tok.encodeFull('ab');
    expect(e.tokens).toEqual(['[PAD]', '[PAD]', '[PAD]', '[PAD]', '[CLS]', 'a', 'b', '[SEP]']);
    expect(e.typeIds.slice(0, 4)).toEqual([1, 1, 1, 1]);
    expect(e.sequenceIds).toEqual([null, null, null, null, null, 0, 0, null]);
  });

  it('overflowing pieces are padded too', () => {
    const tok = charTokenizer();
    tok.enableTruncation(5);
    tok.enablePadding({ length: 5 });
    const e = tok.encodeFull('abcdefg');
    expect(e.overflowing.map((o) => o.ids.length)).toEqual([5, 5]);
    expect(e.overflowing[1].tokens).toEqual(['[CLS]', 'g', '[SEP]', '[PAD]', '[PAD]']);
  });
});

describe('post-processors', () => {
  it('TemplateProcessing: templates, type ids and the added-token count', () => {
    const tok = charTokenizer();
    tok.postProcessor = new TemplateProcessing('[CLS]:0 $A:0 [SEP]:0', '[CLS] $A [SEP] $B:1 [SEP]:1', [
      { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
      { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
    ]);
    const e = tok.encodeFull('ab', 'c');
    expect(e.tokens).toEqual(['[CLS]', 'a', 'b', '[SEP]', 'c', '[SEP]']);
    expect(e.typeIds).toEqual([0, 0, 0, 0, 1, 1]);
    expect(e.specialTokensMask).toEqual([1, 0, 0, 1, 0, 1]);
    expect(tok.postProcessor.addedTokens(true)).toBe(3);
    expect(tok.encode('ab', { addSpecialTokens: false })).toEqual([id(tok, 'a'), id(tok, 'b')]);
  });

  it('RobertaProcessing: <s> A </s></s> B </s> with all type ids 0', () => {
    const tok = charTokenizer();
    tok.postProcessor = new RobertaProcessing(['[SEP]', 3], ['[CLS]', 2]);
    const e = tok.encodeFull('a', 'b');
    expect(e.tokens).toEqual(['[CLS]', 'a', '[SEP]', '[SEP]', 'b', '[SEP]']);
    expect(e.typeIds).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('tokenizer.json', () => {
  it('round-trips every setting (toJSON → fromJSON → same encodings and JSON) and saves atomically', () => {
    const tok = charTokenizer();
    tok.normalizer = new SequenceNormalizer([new UnicodeNormalizer('NFKC'), new LowercaseNormalizer()]);
    tok.addTokens([{ content: '<m>', lstrip: true, singleWord: true }]);
    tok.enableTruncation(7, { stride: 2, direction: 'left' });
    tok.enablePadding({ length: 9, padToMultipleOf: 4 });
    const json = tok.toJSON();
    const back = Tokenizer.fromJSON(JSON.parse(JSON.stringify(json)) as Json);
    expect(back.toJSON()).toEqual(json);
    const inputs = ['Hello  <m> world', 'ﬁne tuning of the model'];
    expect(back.encodeBatch(inputs)).toEqual(tok.encodeBatch(inputs));
    const file = join(tmp, 'tokenizer.json');
    tok.save(file);
    expect(Tokenizer.fromFile(tmp).encodeBatch(inputs)).toEqual(tok.encodeBatch(inputs));
    expect(json).toMatchObject({ truncation: { direction: 'Left', max_length: 7, strategy: 'LongestFirst', stride: 2 }, padding: { strategy: { Fixed: 9 }, pad_to_multiple_of: 4 } });
  });

  it.skipIf(!existsSync(GPT2))("GPT-2's released tokenizer.json is written back field for field", () => {
    const original = JSON.parse(readFileSync(GPT2, 'utf8')) as { model: Record<string, unknown> };
    const ours = Tokenizer.fromFile(GPT2).toJSON() as { model: Record<string, unknown> };
    delete ours.model.ignore_merges; // a newer field, absent from this older file
    expect(ours).toEqual(original);
  });

  it('malformed files fail with clear errors', () => {
    const bad = (name: string, text: string): string => {
      const f = join(tmp, name);
      writeFileSync(f, text);
      return f;
    };
    expect(() => Tokenizer.fromFile(bad('trunc.json', JSON.stringify(charTokenizer().toJSON()).slice(0, 300)))).toThrow(/trunc\.json: tokenizer\.json: invalid JSON/);
    expect(() => Tokenizer.fromFile(join(tmp, 'missing.json'))).toThrow(/cannot read .*missing\.json/);
    expect(() => Tokenizer.fromJSON({ version: '1.0' })).toThrow(/missing "model" object/);
    expect(() => Tokenizer.fromJSON({ model: { type: 'BPE', vocab: { a: 0 }, merges: ['a b'] } })).toThrow(/names token "b", which is not in the vocabulary/);
    expect(() => Tokenizer.fromJSON({ model: { type: 'BPE', vocab: {}, merges: [] }, normalizer: { type: 'Nope' } })).toThrow(/unsupported normalizer type 'Nope' \(supported: .*NFKC/);
    expect(() => Tokenizer.fromJSON({ model: { type: 'BPE', vocab: {}, merges: [] }, added_tokens: [{ content: 'x' }] })).toThrow(/added_tokens\[0\]\.id must be a non-negative integer/);
    expect(() => Tokenizer.fromJSON({ model: { type: 'BPE', vocab: {}, merges: [] }, truncation: { max_length: 4, strategy: 'Sideways' } })).toThrow(/truncation\.strategy must be/);
  });
});
