/**
 * GPT-2 byte-level BPE against the references: js-tiktoken (pure JS) and tiktoken (Rust/WASM),
 * on real corpora, code, emoji, whitespace runs and random Unicode; decode(encode(x)) === x.
 * Both ways of loading GPT-2 (tokenizer.json; encoder.json + vocab.bpe) must give the same ids,
 * and the ids-only fast path must agree with the full pipeline (offsets, pieces, byte alphabet).
 */
import fc from 'fast-check';
import { getEncoding } from 'js-tiktoken';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { get_encoding } from 'tiktoken';
import { afterAll, describe, expect, it } from 'vitest';
import { gpt2TokenizerFromFiles, loadTokenizer } from '../../src/tokenizers/load.js';
import { ByteLevelPreTokenizer } from '../../src/tokenizers/pre-tokenizers/byte-level.js';
import { SequencePreTokenizer } from '../../src/tokenizers/pre-tokenizers/sequence.js';
import { CL100K_PATTERN, SplitPreTokenizer } from '../../src/tokenizers/pre-tokenizers/split.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GPT2 = join(ROOT, '..', 'shared', 'data', 'gpt2');
const ZH = join(ROOT, '..', 'shared', 'data', 'zh', 'sanguo_yanyi.txt');
const HAVE = existsSync(join(GPT2, 'tokenizer.json')) && existsSync(join(GPT2, 'encoder.json')) && existsSync(join(GPT2, 'vocab.bpe'));

const js = getEncoding('gpt2');
const wasm = get_encoding('gpt2');
afterAll(() => wasm.free());

/** The two code points where JavaScript's \s and Unicode White_Space (tiktoken's, HF's) disagree. */
const JS_WS_DIVERGENT = /[\u0085\ufeff]/;

const jsIds = (s: string): number[] => js.encode(s, 'all');
const wasmIds = (s: string): number[] => Array.from(wasm.encode(s, 'all'));

function firstDiff(a: readonly number[], b: readonly number[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const EMOJI =
  '👋🏽 Hello 👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 🇫🇷🇯🇵 ❤️‍🔥 🧑🏿‍💻 coder ✊🏻✊🏼✊🏽 ☕️ 😀😃😄😁 😂🤣 a😀b 1️⃣ #️⃣ 🫠🫶 𝕳𝖊𝖑𝖑𝖔 𝟘𝟙𝟚 ∑∫√∞ ½ ¾ 𓀀 ‼️ ⁉️';
const WHITESPACE = [
  '',
  ' ',
  '  ',
  '   \n',
  'a  b   c    d',
  '\n\n\n',
  '\r\n\r\n  x',
  '\t\t\tindented',
  'trailing    ',
  '    leading',
  ' \n \n \t ',
  'word\u00a0\u00a0nbsp \u3000ideographic\u2003em',
  'x' + ' '.repeat(300) + 'y',
  '\n'.repeat(257),
  "it's  they're   we've    I'm     you'll      he'd",
];

describe.skipIf(!HAVE)('GPT-2 byte-level BPE: ids identical to tiktoken', () => {
  const tok = HAVE ? Tokenizer.fromFile(join(GPT2, 'tokenizer.json')) : (null as unknown as Tokenizer);
  const fromFiles = HAVE ? gpt2TokenizerFromFiles(join(GPT2, 'encoder.json'), join(GPT2, 'vocab.bpe')) : (null as unknown as Tokenizer);
  const shakespeare = readFileSync(join(ROOT, 'data', 'tinyshakespeare.txt'), 'utf8');

  it('TinyShakespeare (whole file): same ids as js-tiktoken and tiktoken, and round-trips', () => {
    const ours = tok.encode(shakespeare);
    expect(ours.length).toBe(338025);
    expect(firstDiff(ours, jsIds(shakespeare))).toBe(-1);
    expect(firstDiff(ours, wasmIds(shakespeare))).toBe(-1);
    expect(tok.decode(ours)).toBe(shakespeare);
  });

  it.skipIf(!existsSync(ZH))('the Chinese corpus (Romance of the Three Kingdoms, CRLF, full-width punctuation)', () => {
    const zh = readFileSync(ZH, 'utf8').slice(0, 150_000);
    const ours = tok.encode(zh);
    expect(firstDiff(ours, jsIds(zh))).toBe(-1);
    expect(firstDiff(ours, wasmIds(zh))).toBe(-1);
    expect(tok.decode(ours)).toBe(zh);
  });

  it('code (TypeScript and C++ sources of this repo)', () => {
    const code = [join(ROOT, 'src', 'tokenizers', 'tokenizer.ts'), join(ROOT, 'native', 'threadpool.h'), join(ROOT, 'package.json')]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    expect(code.length).toBeGreaterThan(1000);
    const ours = tok.encode(code);
    expect(ours).toEqual(jsIds(code));
    expect(tok.decode(ours)).toBe(code);
  });

  it('emoji, ZWJ sequences, flags, astral letters and digits', () => {
    const ours = tok.encode(EMOJI);
    expect(ours).toEqual(jsIds(EMOJI));
    expect(ours).toEqual(wasmIds(EMOJI));
    expect(tok.decode(ours)).toBe(EMOJI);
  });

  it('runs of spaces, tabs and newlines', () => {
    for (const s of WHITESPACE) {
      const ours = tok.encode(s);
      expect(ours, JSON.stringify(s)).toEqual(jsIds(s));
      expect(tok.decode(ours)).toBe(s);
    }
  });

  it('long words take the heap merge path and still match (letters, spaces, punctuation, CJK)', () => {
    for (const s of ['a'.repeat(5000), ' '.repeat(10_000) + 'x', '!?'.repeat(3000), 'ab'.repeat(2500), '三国演义'.repeat(400), 'x' + '😀'.repeat(300)]) {
      const ours = tok.encode(s);
      expect(ours).toEqual(wasmIds(s));
      expect(tok.decode(ours)).toBe(s);
    }
  });

  it('"<|endoftext|>" in the text is the special token 50256, as tiktoken with allowed_special="all"', () => {
    const s = 'end<|endoftext|>start <|endoftext|><|endoftext|>';
    expect(tok.encode(s)).toEqual(jsIds(s));
    expect(tok.decode(tok.encode(s), { skipSpecialTokens: false })).toBe(s);
    expect(tok.decode(tok.encode(s))).toBe('endstart ');
  });

  it('U+0085 and U+FEFF follow Unicode White_Space like tiktoken (js-tiktoken uses JavaScript \\s here)', () => {
    for (const s of [' \ufeffa', 'x \u0085b', '\u0085\u0085 q', 'a \ufeff\ufeff b']) {
      expect(tok.encode(s), JSON.stringify(s)).toEqual(wasmIds(s));
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    // The documented divergence: proves the case is real, so the test above can fail.
    expect(jsIds(' \ufeffa')).not.toEqual(wasmIds(' \ufeffa'));
  });

  it('encoder.json + vocab.bpe, tokenizer.json and the directory loader give the same tokenizer', () => {
    const sample = shakespeare.slice(0, 50_000) + EMOJI + WHITESPACE.join('|');
    const ids = tok.encode(sample);
    expect(fromFiles.encode(sample)).toEqual(ids);
    expect(loadTokenizer(GPT2).encode(sample)).toEqual(ids);
    expect(fromFiles.vocabSize).toBe(50257);
    expect(tok.vocabSize).toBe(50257);
    // Same vocabulary and merges, serialised the same way.
    const a = tok.toJSON().model as { vocab: unknown; merges: unknown };
    const b = fromFiles.toJSON().model as { vocab: unknown; merges: unknown };
    expect(b.vocab).toEqual(a.vocab);
    expect(b.merges).toEqual(a.merges);
  });

  it('the full pipeline (pre-token objects, byte alphabet, offsets) gives the fast path ids', () => {
    const sample = shakespeare.slice(100_000, 130_000) + EMOJI + WHITESPACE.join('') + readFileSync(ZH, 'utf8').slice(0, 3000);
    const full = tok.encodeFull(sample);
    expect(full.ids).toEqual(tok.encode(sample));
    expect(full.tokens.map((t) => tok.tokenToId(t))).toEqual(full.ids);
  });

  it('a LLaMA-3-style Sequence [Split(cl100k regex), ByteLevel(no regex)]: fast path ids equal the full pipeline', () => {
    const t = Tokenizer.fromJSON(tok.toJSON());
    t.preTokenizer = new SequencePreTokenizer([
      new SplitPreTokenizer({ kind: 'regex', value: CL100K_PATTERN }, 'Isolated'),
      new ByteLevelPreTokenizer({ addPrefixSpace: false, useRegex: false }),
    ]);
    const sample = shakespeare.slice(0, 20_000).toUpperCase() + " I'LL 12345 x\r\n\r\n  y " + EMOJI;
    const fast = t.encode(sample);
    expect(t.encodeFull(sample).ids).toEqual(fast);
    expect(t.decode(fast)).toBe(sample);
    // The case-insensitive contractions and 3-digit groups really apply (differs from GPT-2's split).
    expect(t.encode("I'LL 12345")).not.toEqual(tok.encode("I'LL 12345"));
  });

  it('property: random Unicode strings match tiktoken (and js-tiktoken where it follows Unicode) and round-trip', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: fc.constantFrom(' ', '  ', '\n', '\t', 'a', 'B', '1', "'", "'s", '!', 'é', '中', '😀', '\r\n', '\u00a0', '\u0085', '\ufeff'), maxLength: 40 }),
    );
    fc.assert(
      fc.property(text, (s) => {
        const ours = tok.encode(s);
        expect(ours).toEqual(wasmIds(s));
        if (!JS_WS_DIVERGENT.test(s)) expect(ours).toEqual(jsIds(s));
        expect(tok.decode(ours)).toBe(s);
        expect(tok.encodeFull(s).ids).toEqual(ours);
      }),
      { numRuns: 400, seed: 4242 },
    );
  });
});
