/**
 * BERT's vocab.txt (bert-base-uncased) loaded as the full BERT tokenizer, checked against reference
 * ids: llama.cpp's bert-bge vectors (generated with Hugging Face `tokenizers`; bge-small ships this
 * same vocab.txt) and the well-known ids of HF's documentation examples; plus the behaviours the
 * issue names — lowercasing, accent stripping, CJK split, [UNK] for words over 100 characters —
 * pairs with type ids, offsets into the original text, decoding with and without special tokens.
 */
import { existsSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bertTokenizerFromVocab, parseBertVocab } from '../../src/tokenizers/formats/bert-vocab.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';

const VOCAB = join(__dirname, '../../../shared/data/tokenizers/bert-base-uncased/vocab.txt');
const VECTORS = join(__dirname, '../../../shared/data/tokenizers/llama.cpp');
const have = existsSync(VOCAB);

describe.skipIf(!have)('BERT vocab.txt tokenizer', () => {
  const tok = have ? bertTokenizerFromVocab(VOCAB) : (null as unknown as Tokenizer);

  it('gives the reference ids of the llama.cpp bert-bge vectors (all 46)', () => {
    const inputs = readFileSync(join(VECTORS, 'ggml-vocab-bert-bge.gguf.inp'), 'utf8').split('\n__ggml_vocab_test__\n');
    inputs.pop();
    const expected = readFileSync(join(VECTORS, 'ggml-vocab-bert-bge.gguf.out'), 'utf8')
      .split('\n')
      .slice(0, 46)
      .map((l) => l.split(' ').filter((s) => s !== '').map(Number));
    expect(inputs).toHaveLength(46);
    const failures = inputs.flatMap((text, i) => {
      const ids = tok.encode(text, { addSpecialTokens: false });
      return JSON.stringify(ids) === JSON.stringify(expected[i]) ? [] : [`#${i} ${JSON.stringify(text)}: ${ids.join(' ')} != ${expected[i]!.join(' ')}`];
    });
    expect(failures).toEqual([]);
  });

  it('matches the HF documentation examples, with [CLS]/[SEP] and type ids for pairs', () => {
    expect(tok.encode('Hello, my dog is cute')).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102]);
    const e = tok.encodeFull('Hello world', 'unaffable');
    expect(e.tokens).toEqual(['[CLS]', 'hello', 'world', '[SEP]', 'una', '##ffa', '##ble', '[SEP]']);
    expect(e.ids).toEqual([101, 7592, 2088, 102, 14477, 20961, 3468, 102]);
    expect(e.typeIds).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(e.specialTokensMask).toEqual([1, 0, 0, 1, 0, 0, 0, 1]);
  });

  it('lowercases, strips accents, splits CJK and maps over-long words to [UNK]', () => {
    const words = (s: string): string[] => tok.encodeFull(s, null, { addSpecialTokens: false }).tokens;
    expect(words('HÉLLO Naïve Café')).toEqual(['hello', 'naive', 'cafe']);
    expect(words('Crème BRÛLÉE')).toEqual(words('creme brulee'));
    // 我 and 天 are in the vocabulary, 想 is not; each ideograph is its own word.
    expect(words('我想天apple')).toEqual(['我', '[UNK]', '天', 'apple']);
    expect(words('a'.repeat(100)).every((t) => t !== '[UNK]')).toBe(true);
    expect(words('a'.repeat(101))).toEqual(['[UNK]']);
    expect(words(`x ${'b'.repeat(150)} y`)).toEqual(['x', '[UNK]', 'y']);
    // Special tokens in the text are matched as such.
    expect(tok.encode('[CLS] hi [SEP]', { addSpecialTokens: false })).toEqual([101, 7632, 102]);
  });

  it('reports offsets into the original string', () => {
    const text = 'Héllo, 我天! unaffable';
    const e = tok.encodeFull(text, null, { addSpecialTokens: false });
    expect(e.tokens).toEqual(['hello', ',', '我', '天', '!', 'una', '##ffa', '##ble']);
    expect(e.offsets.map(([s, t]) => text.slice(s, t))).toEqual(['Héllo', ',', '我', '天', '!', 'una', 'ffa', 'ble']);
  });

  it('decodes with and without special tokens', () => {
    const ids = tok.encode("Hello, my dog isn't cute.");
    // HF `tokenizers` cleans up per token, so "isn ' t" keeps its spaces (transformers' Python
    // clean_up_tokenization_spaces, which joins them, is not part of the tokenizer).
    expect(tok.decode(ids)).toBe("hello, my dog isn ' t cute.");
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe("[CLS] hello, my dog isn ' t cute. [SEP]");
    expect(tok.decode(tok.encode('The quick brown fox, unaffable!'))).toBe('the quick brown fox, unaffable!');
  });

  it('round-trips through tokenizer.json', () => {
    const back = Tokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    const text = 'Héllo, 世界! unaffable ' + 'z'.repeat(120);
    expect(back.encode(text)).toEqual(tok.encode(text));
  });
});

describe('BERT vocab.txt parsing', () => {
  it('reads ids by line, handles CRLF, and fails clearly', () => {
    expect([...parseBertVocab('[PAD]\r\n[UNK]\r\nhello\r\n')]).toEqual([
      ['[PAD]', 0],
      ['[UNK]', 1],
      ['hello', 2],
    ]);
    expect(() => parseBertVocab('', 'v.txt')).toThrow(/v.txt: the vocabulary is empty/);
    const dir = mkdtempSync(join(tmpdir(), 'weft-bert-'));
    try {
      const p = join(dir, 'vocab.txt');
      writeFileSync(p, '[PAD]\nhello\n');
      expect(() => bertTokenizerFromVocab(p)).toThrow(/unknown token "\[UNK\]" is not in the vocabulary/);
      writeFileSync(p, '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\n');
      const t = bertTokenizerFromVocab(p);
      expect(t.encode('Hellos hi')).toEqual([2, 4, 5, 1, 3]);
      expect(() => bertTokenizerFromVocab(join(dir, 'missing.txt'))).toThrow(/cannot read .*missing.txt/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
