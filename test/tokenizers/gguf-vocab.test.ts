/**
 * Tokenizers built from GGUF vocabularies (tokenizer.ggml.*), on small synthetic files written
 * with serializeGGUF — llama SPM (score-ordered merges, leftmost on ties, byte fallback, BOS,
 * dummy prefix), gpt2 BPE (merges), bert WPM (llama.cpp's "▁"/"##" renaming undone) — checked
 * against a direct implementation of llama.cpp's SPM loop, plus clear errors for vocabularies that
 * are missing keys or inconsistent, and the real Llama-2 vocabulary embedded in a model file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGGUF, serializeGGUF, type GGUFValue } from '../../src/io/gguf.js';
import { bertTokenFromGGUF, tokenizerFromGGUF, tokenizerFromGGUFFile } from '../../src/tokenizers/formats/gguf-vocab.js';
import { SentencePieceBPE } from '../../src/tokenizers/models/spm.js';

const strings = (value: string[]): GGUFValue => ({ type: 'array', elementType: 'string', value });
const floats = (value: number[]): GGUFValue => ({ type: 'array', elementType: 'float32', value: Float32Array.from(value) });
const ints = (value: number[]): GGUFValue => ({ type: 'array', elementType: 'int32', value: Int32Array.from(value) });
const u32 = (value: number): GGUFValue => ({ type: 'uint32', value });
const str = (value: string): GGUFValue => ({ type: 'string', value });
const bool = (value: boolean): GGUFValue => ({ type: 'bool', value });

function fromMeta(meta: [string, GGUFValue][]) {
  return tokenizerFromGGUFFile(parseGGUF(serializeGGUF(meta), 'synthetic'));
}

const BYTES = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);

/** A small SPM vocabulary: specials, all bytes, then scored pieces. */
function spmMeta(pieces: [string, number][], extra: [string, GGUFValue][] = []): [string, GGUFValue][] {
  const tokens = ['<unk>', '<s>', '</s>', ...BYTES, ...pieces.map((p) => p[0])];
  const scores = [0, 0, 0, ...BYTES.map(() => 0), ...pieces.map((p) => p[1])];
  const types = [2, 3, 3, ...BYTES.map(() => 6), ...pieces.map(() => 1)];
  return [
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', strings(tokens)],
    ['tokenizer.ggml.scores', floats(scores)],
    ['tokenizer.ggml.token_type', ints(types)],
    ['tokenizer.ggml.bos_token_id', u32(1)],
    ['tokenizer.ggml.eos_token_id', u32(2)],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
    ...extra,
  ];
}

const PIECES: [string, number][] = [
  ['▁', -1],
  ['a', -2],
  ['b', -2],
  ['c', -2],
  ['ab', -3],
  ['bc', -3],
  ['▁a', -4],
  ['abc', -5],
  ['▁ab', -1.5],
];
const base = 259;
const id = (p: string): number => base + PIECES.findIndex((x) => x[0] === p);

describe('llama SPM from GGUF', () => {
  it('merges the best-scoring pair first and breaks ties leftmost', () => {
    const tok = fromMeta(spmMeta(PIECES));
    // "▁abc": ▁a(-4) ab(-3) bc(-3): ab and bc tie, ab is leftmost → ▁|ab|c → ▁ab(-1.5) → ▁ab|c.
    expect(tok.encode('abc', { addSpecialTokens: false })).toEqual([id('▁ab'), id('c')]);
    // "▁bcab": bc(-3) and ab(-3) tie; bc is leftmost → ▁|bc|ab.
    expect(tok.encode('bcab', { addSpecialTokens: false })).toEqual([id('▁'), id('bc'), id('ab')]);
    // BOS is added by default; characters outside the vocabulary become their UTF-8 bytes.
    expect(tok.encode('aé')).toEqual([1, id('▁a'), 3 + 0xc3, 3 + 0xa9]);
    expect(tok.decode(tok.encode('abc bcé'))).toBe('abc bcé');
    expect(tok.encode('', { addSpecialTokens: false })).toEqual([]);
  });

  it('honours add_space_prefix, add_bos_token and add_eos_token', () => {
    const tok = fromMeta(spmMeta(PIECES, [
      ['tokenizer.ggml.add_space_prefix', bool(false)],
      ['tokenizer.ggml.add_bos_token', bool(false)],
      ['tokenizer.ggml.add_eos_token', bool(true)],
    ]));
    expect(tok.encode('abc')).toEqual([id('abc'), 2]);
    expect(tok.decode(tok.encode(' abc'))).toBe(' abc');
  });

  it('matches a direct implementation of llama.cpp\'s SPM merge loop (fast-check)', () => {
    const model = new SentencePieceBPE(['<unk>', ...PIECES.map((p) => p[0])], [0, ...PIECES.map((p) => p[1])], { unkId: 0, byteFallback: false });
    const score = new Map(PIECES);
    // Repeatedly merge the adjacent pair with the best score (leftmost on ties), as llama2.c does.
    const reference = (s: string): string[] => {
      const syms = [...s];
      for (;;) {
        let best = -Infinity;
        let at = -1;
        for (let i = 0; i + 1 < syms.length; i++) {
          const sc = score.get(syms[i]! + syms[i + 1]!);
          if (sc !== undefined && sc > best) {
            best = sc;
            at = i;
          }
        }
        if (at < 0) return syms;
        syms.splice(at, 2, syms[at]! + syms[at + 1]!);
      }
    };
    fc.assert(
      fc.property(fc.stringMatching(/^[▁abc]{1,16}$/), (s) => {
        expect(model.tokenize(s).map((t) => t.value)).toEqual(reference(s));
      }),
      { seed: 11, numRuns: 500 },
    );
  });

  it('extracts HF-style merges (every split into two pieces, by the piece score)', () => {
    const model = new SentencePieceBPE(['<unk>', ...PIECES.map((p) => p[0])], [0, ...PIECES.map((p) => p[1])], { unkId: 0 });
    // By score (stable), and within one piece by the ids of (left, right).
    expect(model.merges()).toEqual([
      ['▁', 'ab'],
      ['▁a', 'b'],
      ['a', 'b'],
      ['b', 'c'],
      ['▁', 'a'],
      ['a', 'bc'],
      ['ab', 'c'],
    ]);
    expect(model.toJSON()).toMatchObject({ type: 'BPE', byte_fallback: true, fuse_unk: true, unk_token: '<unk>' });
  });
});

describe('gpt2 BPE and bert WPM from GGUF', () => {
  it('builds byte-level BPE from tokens and merges', () => {
    const tokens = ['h', 'e', 'l', 'o', 'Ġ', 'w', 'r', 'd', 'he', 'll', 'hell', 'hello', 'Ġw', 'or', 'Ġwor', 'ld', 'Ġworld', '<|endoftext|>'];
    const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'l d', 'Ġwor ld'];
    const types = tokens.map((t) => (t === '<|endoftext|>' ? 3 : 1));
    const tok = fromMeta([
      ['tokenizer.ggml.model', str('gpt2')],
      ['tokenizer.ggml.pre', str('gpt-2')],
      ['tokenizer.ggml.tokens', strings(tokens)],
      ['tokenizer.ggml.token_type', ints(types)],
      ['tokenizer.ggml.merges', strings(merges)],
      ['tokenizer.ggml.bos_token_id', u32(17)],
    ]);
    expect(tok.encode('hello world')).toEqual([11, 16]);
    expect(tok.encode('hello<|endoftext|>')).toEqual([11, 17]);
    expect(tok.decode([11, 16])).toBe('hello world');
    const withBos = fromMeta([
      ['tokenizer.ggml.model', str('gpt2')],
      ['tokenizer.ggml.tokens', strings(tokens)],
      ['tokenizer.ggml.token_type', ints(types)],
      ['tokenizer.ggml.merges', strings(merges)],
      ['tokenizer.ggml.bos_token_id', u32(17)],
      ['tokenizer.ggml.add_bos_token', bool(true)],
    ]);
    expect(withBos.encode('hello world')).toEqual([17, 11, 16]);
    expect(withBos.encode('hello world', { addSpecialTokens: false })).toEqual([11, 16]);
  });

  it('undoes the phantom-space renaming for WordPiece', () => {
    expect(bertTokenFromGGUF('▁hello')).toBe('hello');
    expect(bertTokenFromGGUF('ing')).toBe('##ing');
    expect(bertTokenFromGGUF('[unused3]')).toBe('[unused3]');
    const tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '▁hello', '▁un', 'aff', 'able', '▁!'];
    const tok = fromMeta([
      ['tokenizer.ggml.model', str('bert')],
      ['tokenizer.ggml.tokens', strings(tokens)],
      ['tokenizer.ggml.token_type', ints([3, 3, 3, 3, 1, 1, 1, 1, 1])],
      ['tokenizer.ggml.unknown_token_id', u32(1)],
      ['tokenizer.ggml.cls_token_id', u32(2)],
      ['tokenizer.ggml.seperator_token_id', u32(3)],
    ]);
    expect(tok.encode('Hello unaffable! zzz')).toEqual([2, 4, 5, 6, 7, 8, 1, 3]);
    expect(tok.decode(tok.encode('hello unaffable!'))).toBe('hello unaffable!');
  });
});

describe('GGUF vocabulary errors', () => {
  const spm = spmMeta(PIECES);
  const without = (key: string) => spm.filter(([k]) => k !== key);
  const replace = (key: string, v: GGUFValue) => spm.map(([k, x]): [string, GGUFValue] => [k, k === key ? v : x]);

  it('names the missing or inconsistent key', () => {
    expect(() => fromMeta(without('tokenizer.ggml.model'))).toThrow(/no 'tokenizer.ggml.model' key: the file embeds no tokenizer/);
    expect(() => fromMeta(without('tokenizer.ggml.tokens'))).toThrow(/no 'tokenizer.ggml.tokens' key/);
    expect(() => fromMeta(without('tokenizer.ggml.scores'))).toThrow(/has no 'tokenizer.ggml.scores'/);
    expect(() => fromMeta(replace('tokenizer.ggml.scores', floats([0, 1])))).toThrow(/scores has 2 entries for 268 tokens/);
    expect(() => fromMeta(replace('tokenizer.ggml.token_type', ints([1])))).toThrow(/token_type has 1 entries for 268 tokens/);
    expect(() => fromMeta(replace('tokenizer.ggml.model', str('rwkv')))).toThrow(/unsupported tokenizer.ggml.model 'rwkv' \(supported: llama, gpt2, bert\)/);
    expect(() => fromMeta(replace('tokenizer.ggml.bos_token_id', u32(9999)))).toThrow(/BOS token id 9999 is outside the vocabulary \(size 268\)/);
    expect(() => fromMeta(replace('tokenizer.ggml.tokens', floats([1])))).toThrow(/should be an array of strings, found array of float32/);
    const gpt2: [string, GGUFValue][] = [
      ['tokenizer.ggml.model', str('gpt2')],
      ['tokenizer.ggml.tokens', strings(['a'])],
    ];
    expect(() => fromMeta(gpt2)).toThrow(/has no 'tokenizer.ggml.merges'/);
    expect(() => fromMeta([...gpt2, ['tokenizer.ggml.merges', strings([])], ['tokenizer.ggml.pre', str('qwen9')]])).toThrow(/unsupported tokenizer.ggml.pre 'qwen9'/);
  });

  it('prefixes errors with the file path', () => {
    expect(() => tokenizerFromGGUF('/nonexistent/x.gguf')).toThrow(/ENOENT/);
  });
});

const TINY = join(__dirname, '../../../shared/data/models/llama-2-tiny-random/llama-2-tiny-random.gguf');
const SPM_VECTORS = join(__dirname, '../../../shared/data/tokenizers/llama.cpp/ggml-vocab-llama-spm.gguf');

describe('Llama-2 vocabulary embedded in a model file', () => {
  it.skipIf(!existsSync(TINY) || !existsSync(SPM_VECTORS))('tokenizes the llama.cpp SPM vectors like the vocab-only file', () => {
    const tok = tokenizerFromGGUF(TINY);
    const inputs = readFileSync(`${SPM_VECTORS}.inp`, 'utf8').split('\n__ggml_vocab_test__\n').slice(0, 46);
    const expected = readFileSync(`${SPM_VECTORS}.out`, 'utf8').split('\n').slice(0, 46);
    inputs.forEach((text, i) => expect(tok.encode(text, { addSpecialTokens: false }).map((x) => ` ${x}`).join(''), `#${i}`).toBe(expected[i]));
    // add_bos_token is absent there: llama.cpp's default for SPM is to add BOS.
    expect(tok.encode('Hello world')).toEqual([1, 15043, 3186]);
  });
});
