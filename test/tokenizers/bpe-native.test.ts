/**
 * The native byte-level BPE encoder (native/bpe.cc) behind BPE.encodeWordsInto: ids identical to the
 * TypeScript path (the oracle, forced with BPE.useNative = false) on the shared corpora with GPT-2 and
 * on random Unicode, and identical to the textbook merge order (lowest rank, leftmost on ties) on
 * random merge tables, through both the scan (short words) and the heap (long words).
 */
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeAddonExports } from '../../src/tensor/backend/native.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { BPE } from '../../src/tokenizers/models/bpe.js';
import type { Tokenizer } from '../../src/tokenizers/tokenizer.js';
import { ByteLevelPreTokenizer } from '../../src/tokenizers/pre-tokenizers/byte-level.js';
import { BYTE_TABLES } from '../../src/tokenizers/util.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DATA = join(ROOT, '..', 'shared', 'data');
const GPT2 = join(DATA, 'gpt2');
const HAVE_NATIVE = typeof nativeAddonExports()?.BpeEncoder === 'function';
const HAVE_GPT2 = existsSync(join(GPT2, 'tokenizer.json'));
const CORPORA = [
  join(DATA, 'tinyshakespeare', 'input.txt'),
  join(DATA, 'wikitext2', 'wiki.test.raw'),
  join(DATA, 'wikitext2', 'wiki.valid.tokens'),
  join(DATA, 'zh', 'sanguo_yanyi.txt'),
  join(DATA, 'zh', 'lunyu.json'),
].filter((f) => existsSync(f));

afterEach(() => {
  BPE.useNative = true;
});

/** ids of `text` through the TypeScript path and through the native one (each with a cold cache). */
function bothWays(tok: Tokenizer, text: string): { ts: number[]; native: number[] } {
  const model = tok.model as BPE;
  BPE.useNative = false;
  model.clearCache();
  const ts = tok.encode(text, { addSpecialTokens: false });
  BPE.useNative = true;
  model.clearCache();
  const native = tok.encode(text, { addSpecialTokens: false });
  return { ts, native };
}

function firstDiff(a: readonly number[], b: readonly number[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Textbook BPE: merge the leftmost adjacent pair of lowest rank until none is left. */
function referenceBpe(word: string[], ranks: Map<string, number>): string[] {
  const syms = [...word];
  for (;;) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i + 1 < syms.length; i++) {
      const r = ranks.get(`${syms[i]}\u0000${syms[i + 1]}`);
      if (r !== undefined && r < best) {
        best = r;
        at = i;
      }
    }
    if (at < 0) return syms;
    syms.splice(at, 2, syms[at] + syms[at + 1]);
  }
}

/**
 * A byte-level BPE over the 256 byte symbols plus merges built from picks among existing tokens.
 * Merged tokens get ids from `firstMergedId` (past 65535 the native pair table takes its wide layout).
 */
function randomByteLevelBpe(
  picks: readonly (readonly [number, number])[],
  opts: { firstMergedId?: number; cacheCapacity?: number } = {},
): { bpe: BPE; ranks: Map<string, number>; vocab: Map<string, number> } {
  const vocab = new Map<string, number>();
  BYTE_TABLES.byteToChar.forEach((c) => vocab.set(c, vocab.size));
  const tokens = ['a', 'b', 'c', 'd'];
  const merges: [string, string][] = [];
  const ranks = new Map<string, number>();
  for (const [i, j] of picks) {
    const left = tokens[i % tokens.length];
    const right = tokens[j % tokens.length];
    const key = `${left}\u0000${right}`;
    // A repeated pair is kept as a later, ignored rule: the first one wins everywhere.
    merges.push([left, right]);
    if (!ranks.has(key)) ranks.set(key, merges.length - 1);
    const merged = left + right;
    if (!vocab.has(merged)) {
      vocab.set(merged, (opts.firstMergedId ?? 256) + vocab.size - 256);
      tokens.push(merged);
    }
  }
  return { bpe: new BPE({ vocab, merges, cacheCapacity: opts.cacheCapacity }), ranks, vocab };
}

function encodeWord(bpe: BPE, word: string): number[] {
  const out: number[] = [];
  bpe.encodeWordsInto(word, Int32Array.of(0, word.length), 1, true, out);
  return out;
}

describe.skipIf(!HAVE_NATIVE)('native byte-level BPE: merge order', () => {
  it('is used when the addon has it, and not when the settings rule it out', () => {
    const { bpe } = randomByteLevelBpe([[0, 1]]);
    expect(bpe.usesNative).toBe(true);
    BPE.useNative = false;
    expect(bpe.usesNative).toBe(false);
    BPE.useNative = true;
    const vocab = new Map(BYTE_TABLES.byteToChar.map((c, i) => [c, i] as const));
    expect(new BPE({ vocab, merges: [], dropout: 0.5 }).usesNative).toBe(false);
    expect(new BPE({ vocab, merges: [], continuingSubwordPrefix: '##' }).usesNative).toBe(false);
    expect(new BPE({ vocab, merges: [], ignoreMerges: true }).usesNative).toBe(false);
  });

  it.each([
    ['16-bit ids (compact pair table)', {}],
    ['ids past 65535 (wide pair table), a 2-word cache', { firstMergedId: 70_000, cacheCapacity: 2 }],
  ])('merges the lowest rank first, leftmost on ties (scan and heap), as the textbook definition: %s', (_name, opts) => {
    const pick = fc.tuple(fc.nat(40), fc.nat(40));
    fc.assert(
      fc.property(fc.array(pick, { minLength: 1, maxLength: 40 }), fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd'), minLength: 1, maxLength: 300 }), (picks, word) => {
        const { bpe, ranks, vocab } = randomByteLevelBpe(picks, opts);
        const expected = referenceBpe([...word], ranks).map((t) => vocab.get(t)!);
        expect(encodeWord(bpe, word)).toEqual(expected);
        // Cached the second time: still the same ids.
        expect(encodeWord(bpe, word)).toEqual(expected);
        BPE.useNative = false;
        expect(encodeWord(bpe, word)).toEqual(expected);
        BPE.useNative = true;
      }),
      { numRuns: 200 },
    );
  });

  it('a wrong order would show: "abc" with (b c) ranked before (a b)', () => {
    const { bpe, vocab } = randomByteLevelBpe([
      [1, 2],
      [0, 1],
    ]);
    expect(encodeWord(bpe, 'abc')).toEqual([vocab.get('a'), vocab.get('bc')]);
    expect(encodeWord(bpe, 'abab')).toEqual([vocab.get('ab'), vocab.get('ab')]);
    const long = 'abc'.repeat(500);
    expect(encodeWord(bpe, long)).toEqual(Array.from({ length: 500 }, () => [vocab.get('a')!, vocab.get('bc')!]).flat());
  });

  it('rejects malformed arguments with the field named', () => {
    const Encoder = nativeAddonExports()!.BpeEncoder as new (...args: unknown[]) => { encode(...args: unknown[]): number; encodeGpt2(...args: unknown[]): number };
    const byteIds = Int32Array.from({ length: 256 }, (_, i) => i);
    expect(() => new Encoder(new Int32Array(1), new Int32Array(2), new Int32Array(1), byteIds, 10, 96)).toThrow(/same length/);
    expect(() => new Encoder(new Int32Array(0), new Int32Array(0), new Int32Array(0), new Int32Array(3), 10, 96)).toThrow(/'byteIds' must hold 256/);
    const enc = new Encoder(new Int32Array(0), new Int32Array(0), new Int32Array(0), byteIds, 10, 96);
    expect(() => enc.encode('abc', Int32Array.of(0, 4), 1, new Int32Array(12))).toThrow(/outside the text/);
    expect(() => enc.encode('abc', Int32Array.of(0, 3), 1, new Int32Array(2))).toThrow(/'out'.*too small/);
    expect(() => enc.encode('abc', Int32Array.of(0, 3), 2, new Int32Array(9))).toThrow(/fewer than count/);
    expect(enc.encode('ab\u00e9', Int32Array.of(0, 3), 1, new Int32Array(9))).toBe(4);
    const classes = new ByteLevelPreTokenizer().fastGpt2Classes!;
    expect(() => enc.encodeGpt2('abc', new Uint8Array(10), new Int32Array(9))).toThrow(/'classes' must be a Uint8Array of 65536/);
    expect(() => enc.encodeGpt2('abc', classes, new Int32Array(8))).toThrow(/'out'.*too small/);
    // No merges: one id per UTF-8 byte; a character outside the BMP is left to the TypeScript scanner.
    expect(enc.encodeGpt2("it's 12 \u00e9", classes, new Int32Array(60))).toBe(10);
    expect(enc.encodeGpt2('ok \u{1f642}', classes, new Int32Array(60))).toBe(-1);
  });
});

describe.skipIf(!HAVE_NATIVE || !HAVE_GPT2)('native byte-level BPE: GPT-2 ids identical to the TypeScript path', () => {
  const tok = HAVE_GPT2 ? loadTokenizer(GPT2) : (null as unknown as Tokenizer);

  it.each(CORPORA.map((f) => [f.slice(DATA.length + 1), f]))('on the whole of %s', (_name, file) => {
    const text = readFileSync(file, 'utf8');
    const { ts, native } = bothWays(tok, text);
    expect(firstDiff(ts, native)).toBe(-1);
    expect(native.length).toBeGreaterThan(text.length / 8);
  });

  it('on documents with the end-of-text added token between them', () => {
    const text = ['Hello world', '你好，世界', '  spaces   ', '🙂🙃 emoji'].join('<|endoftext|>');
    const { ts, native } = bothWays(tok, text);
    expect(native).toEqual(ts);
    expect(native).toContain(50256);
  });

  it('on random BMP text, where the native GPT-2 scanner splits: contractions, Unicode spaces and digits, lone surrogates', () => {
    const unit = fc.oneof(
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      fc.constantFrom("'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", "'S", ' ', '  ', '   ', '\n', '\n\n', '\t', '\r\n'),
      fc.constantFrom('\u00a0', '\u3000', '\u2028', '\u0085', '\u000b', '\ufeff', '\u200b', '\u0660', '\u00b2', '\u2167', '\u00e9', '\u4e2d', '\ud800', '\udc00'),
    );
    const text = fc.array(unit, { maxLength: 120 }).map((a) => a.join(''));
    fc.assert(
      fc.property(text, (s) => {
        const { ts, native } = bothWays(tok, s);
        expect(native).toEqual(ts);
      }),
      { numRuns: 400 },
    );
  });

  it('on random Unicode: ASCII, Latin-1, CJK, emoji, lone surrogates, long runs', () => {
    const unit = fc.oneof(
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x4e00, max: 0x9fff }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x1f300, max: 0x1faff }).map((c) => String.fromCodePoint(c)),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom(' ', '\n', '\t', "'s", '  '),
    );
    const run = fc.tuple(unit, fc.integer({ min: 1000, max: 3000 })).map(([u, n]) => u.repeat(n));
    const text = fc.array(fc.oneof({ weight: 20, arbitrary: unit }, { weight: 1, arbitrary: run }), { maxLength: 200 }).map((a) => a.join(''));
    fc.assert(
      fc.property(text, (s) => {
        const { ts, native } = bothWays(tok, s);
        expect(native).toEqual(ts);
      }),
      { numRuns: 200 },
    );
  });
});
