import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MINHASH,
  estimateJaccard,
  exactHash,
  exactHashReference,
  murmur3x86_128,
  exactJaccard,
  ExactDeduplicator,
  lshProbability,
  MinHasher,
  NearDuplicateIndex,
  optimalBands,
  resolveMinHashOptions,
  shingleHashes,
  shingleHashesReference,
  isCJKHeavy,
  isCJKHeavyReference,
  minhashSignatureReference,
} from '../../src/data/pipeline/dedup.js';
import { nativeAddonExports, nativeAddonInfo, setNativeKernelPath, type KernelPathName } from '../../src/tensor/backend/native.js';

const SHARED = join(import.meta.dirname, '..', '..', '..', 'shared', 'data');
const WIKI = join(SHARED, 'wikitext2', 'wiki.test.raw');
const SHAKESPEARE = join(SHARED, 'tinyshakespeare', 'input.txt');
const SANGUO = join(SHARED, 'zh', 'sanguo_yanyi.txt');
const haveCorpora = existsSync(WIKI) && existsSync(SHAKESPEARE) && existsSync(SANGUO);

/** A small seeded generator (mulberry32) so the planted set is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.skipIf(nativeAddonExports()?.minhashSignature === undefined)('native MinHash signature kernel', () => {
  it('gives the reference’s bits on every kernel path this CPU has (0 to 3,000 shingles, 1 to 257 seeds)', () => {
    const kernel = nativeAddonExports()!.minhashSignature as (s: Uint32Array, seeds: Uint32Array, out: Uint32Array) => void;
    let state = 99;
    const next = (): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
    const initial = nativeAddonInfo()!.kernelPath as KernelPathName;
    try {
      for (const [n, m] of [[0, 128], [1, 1], [7, 13], [3000, 128], [50, 257]] as const) {
        const shingles = Uint32Array.from({ length: n }, next);
        const seeds = Uint32Array.from({ length: m }, next);
        const want = new Uint32Array(m);
        minhashSignatureReference(shingles, seeds, want);
        for (const path of ['portable', 'avx2', 'avx512'] as const) {
          if (!setNativeKernelPath(path)) continue;
          const got = new Uint32Array(m).fill(7);
          kernel(shingles, seeds, got);
          expect(Array.from(got), `${path} n=${n} m=${m}`).toEqual(Array.from(want));
        }
      }
    } finally {
      setNativeKernelPath(initial);
    }
    expect(() => kernel(new Uint32Array(1), new Uint32Array(4), new Uint32Array(3))).toThrow(/one element per seed \(4\), got 3/);
    expect(() => kernel(new Float32Array(1) as unknown as Uint32Array, new Uint32Array(4), new Uint32Array(4))).toThrow(/'shingles' must be a Uint32Array/);
  });
});

describe('MinHash building blocks', () => {
  it('chooses datasketch’s bands for equal weights and more recall-leaning ones by default', () => {
    // datasketch MinHashLSH(threshold=0.8, num_perm=128) uses b=9, r=13.
    expect(optimalBands(0.8, 128, 0.5, 0.5)).toEqual({ bands: 9, rows: 13 });
    const d = resolveMinHashOptions({ threshold: 0.8 });
    expect(d.bands * d.rows).toBeLessThanOrEqual(128);
    // Recall-leaning: a pair at the threshold becomes a candidate far more often than with b=9, r=13.
    expect(lshProbability(0.8, d.bands, d.rows)).toBeGreaterThan(lshProbability(0.8, 9, 13) + 0.3);
    expect(lshProbability(0.3, d.bands, d.rows)).toBeLessThan(0.01);
  });

  it('estimates Jaccard without bias (sets of known overlap, 3σ)', () => {
    const mh = new MinHasher({ numPerm: 256, shingleSize: 1 });
    const r = rng(7);
    for (const target of [0.2, 0.5, 0.8, 0.95]) {
      // |A ∩ B| = s, |A \ B| = |B \ A| = d  ⇒  J = s / (s + 2d).
      const s = 600;
      const d = Math.round((s * (1 - target)) / (2 * target));
      const word = (): string => Math.floor(r() * 1e12).toString(36);
      const shared = Array.from({ length: s }, word);
      const a = [...shared, ...Array.from({ length: d }, word)].join(' ');
      const b = [...shared, ...Array.from({ length: d }, word)].join(' ');
      const j = s / (s + 2 * d);
      expect(exactJaccard(a, b, { shingleSize: 1 })).toBeCloseTo(j, 6);
      const est = estimateJaccard(mh.signature(a), mh.signature(b));
      expect(Math.abs(est - j)).toBeLessThan(3 * Math.sqrt((j * (1 - j)) / 256) + 1e-9);
    }
  });

  it('shingles words for Latin text and characters for CJK text', () => {
    const o = resolveMinHashOptions();
    expect(shingleHashes('one two three four five six', o)).toHaveLength(2);
    expect(shingleHashes('One, two; THREE four five six!', o)).toEqual(shingleHashes('one two three four five six', o));
    expect(shingleHashes('滚滚长江东逝水浪花淘尽英雄', o)).toHaveLength(13 - 5 + 1);
    expect(shingleHashes('', o)).toHaveLength(0);
    expect(shingleHashes('short text', o)).toHaveLength(1);
  });

  it('exact dedup ignores case and whitespace but not wording', () => {
    expect(exactHash('Hello   World\n')).toBe(exactHash('hello world'));
    expect(exactHash('Hello World')).not.toBe(exactHash('Hello Word'));
    const d = new ExactDeduplicator();
    expect(d.add(exactHash('a b'), 0)).toBeNull();
    expect(d.add(exactHash('c'), 1)).toBeNull();
    expect(d.add(exactHash('A  B'), 2)).toBe(0);
  });

  it('hashes with MurmurHash3_x86_128: the SMHasher verification value 0xB3ECE62A', () => {
    // SMHasher's VerificationTest: hash keys [0], [0,1], … [0..254] with seed 256 - length, then the concatenated hashes with seed 0.
    const hashes = new Uint8Array(256 * 16);
    const key = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (let i = 0; i < 256; i++) hashes.set(murmur3x86_128(key.subarray(0, i), 256 - i), i * 16);
    const final = murmur3x86_128(hashes, 0);
    expect(new DataView(final.buffer).getUint32(0, true)).toBe(0xb3ece62a);
  });

  it('the native key hash (fold + hash in one pass) equals the TypeScript one on whitespace-heavy Unicode', () => {
    const unit = fc.oneof(
      fc.constantFrom('a', 'B', 'z', '0', '.', 'é', 'É', '中', 'ﬁ', 'Ａ', '\u0301', '\ud83d\ude42', '\ud800'),
      fc.constantFrom(' ', '  ', '\t', '\n', '\r\n', '\v', '\f', '\u00a0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u0085', '\u200b'),
    );
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 60 }).map((a) => a.join('')), (text) => {
        expect(exactHash(text)).toBe(exactHashReference(text));
      }),
      { numRuns: 2000 },
    );
    // ASCII text takes the kernel's own lower-casing: every printable character and every ASCII space.
    const ascii = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), fc.constantFrom('\t', '\n', '\r', '\v', '\f')), maxLength: 80 });
    fc.assert(
      fc.property(ascii, (text) => {
        expect(exactHash(text)).toBe(exactHashReference(text));
      }),
      { numRuns: 2000 },
    );
    expect(exactHash('Hello  WORLD\t!')).toBe(exactHash('hello world !'));
    // Long texts cross the 16-byte blocks many times.
    const long = 'The quick  brown fox\n\n jumps over the lazy dog. '.repeat(200);
    expect(exactHash(long)).toBe(exactHashReference(long));
    expect(exactHash('')).toBe(exactHashReference(''));
  });

  it('rejects bad options with messages that name them', () => {
    expect(() => resolveMinHashOptions({ threshold: 1.2 })).toThrow(/threshold must be in \(0, 1\)/);
    expect(() => resolveMinHashOptions({ bands: 20, rows: 10 })).toThrow(/exceeds numPerm 128/);
    expect(() => resolveMinHashOptions({ bands: 4 })).toThrow(/both bands and rows/);
    const idx = new NearDuplicateIndex();
    expect(() => idx.add(new MinHasher({ numPerm: 64 }).sketch('a b c d e f'))).toThrow(/sketches must come from a MinHasher with the same options/);
  });

  it('keeps the earliest document of a cluster whatever order the links are found in', () => {
    const base = Array.from({ length: 200 }, (_, i) => `w${i}`);
    const variant = (k: number): string => base.map((w, i) => (i === 20 + k * 40 ? `x${k}` : w)).join(' ');
    const unrelated = Array.from({ length: 200 }, (_, i) => `u${i}`).join(' ');
    const mh = new MinHasher();
    const idx = new NearDuplicateIndex();
    const docs = [unrelated, variant(0), variant(1), variant(2), base.join(' ')];
    docs.forEach((d) => idx.add(mh.sketch(d)));
    expect([0, 1, 2, 3, 4].map((i) => idx.isKept(i))).toEqual([true, true, false, false, false]);
    expect([...idx.clusters().entries()]).toEqual([[1, [1, 2, 3, 4]]]);
    // Empty documents never cluster with each other.
    const e = new NearDuplicateIndex();
    e.add(mh.sketch(''));
    e.add(mh.sketch('...'));
    expect(e.isKept(1)).toBe(true);
  });
});

/** Sentences of a text (Latin: after . ! ? ; CJK: after 。！？). */
function sentences(text: string): string[] {
  return text.match(/[^.!?。！？]+[.!?。！？]*\s*/gu) ?? [text];
}

const BOILERPLATE = [
  'Home | News | Sport | Weather | Contact us | Subscribe to our newsletter',
  'This website uses cookies to improve your experience. By continuing you accept our cookie policy.',
  'Copyright © 2024 Example Media Group. All rights reserved. Terms of use. Privacy policy.',
  'Share this article on Facebook, Twitter, LinkedIn or by e-mail.',
  'Related articles: more from this section, most read, editor’s picks, trending now.',
  'Advertisement — continue reading below. Sign in to comment.',
];

type Kind = 'edit' | 'reorder' | 'boilerplate';

/** A near-duplicate of `text`: one perturbation at magnitude m ∈ [0.05, 0.30]. */
function perturb(text: string, kind: Kind, m: number, r: () => number, cjk: boolean): string {
  const sents = sentences(text);
  const pick = (n: number): number[] => {
    const idx = sents.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    return idx.slice(0, Math.max(1, Math.round(n)));
  };
  if (kind === 'edit') {
    // A fraction m of the sentences each get one word (CJK: one character) replaced, deleted or inserted.
    for (const i of pick(m * sents.length)) {
      const s = sents[i]!;
      if (cjk) {
        const chars = [...s];
        const p = Math.floor(r() * chars.length);
        const op = r();
        if (op < 0.34) chars[p] = '甲';
        else if (op < 0.67) chars.splice(p, 1);
        else chars.splice(p, 0, '乙');
        sents[i] = chars.join('');
      } else {
        const words = s.split(' ');
        const p = Math.floor(r() * words.length);
        const op = r();
        if (op < 0.34) words[p] = 'zebra';
        else if (op < 0.67) words.splice(p, 1);
        else words.splice(p, 0, 'indeed');
        sents[i] = words.join(' ');
      }
    }
    return sents.join('');
  }
  if (kind === 'reorder') {
    // A fraction m of the sentences move to random positions.
    for (const i of pick(m * sents.length)) {
      const [s] = sents.splice(i, 1);
      sents.splice(Math.floor(r() * (sents.length + 1)), 0, s!);
    }
    return sents.join('');
  }
  // Boilerplate lines adding a fraction m of the original length, split between header and footer.
  const target = m * text.length;
  const head: string[] = [];
  const foot: string[] = [];
  let added = 0;
  while (added < target) {
    const line = BOILERPLATE[Math.floor(r() * BOILERPLATE.length)]!;
    (r() < 0.5 ? head : foot).push(line);
    added += line.length + 1;
  }
  return [...head, text, ...foot].join('\n');
}

interface Planted {
  docs: string[];
  /** Index of the original a document was derived from (its own index for originals). */
  origin: number[];
  kind: (Kind | null)[];
  magnitude: number[];
}

/** Originals from ../shared/data (English wiki paragraphs, Shakespeare passages, Chinese paragraphs) and planted near-duplicates of half of them. */
function buildPlanted(): Planted {
  const r = rng(2024);
  const originals: { text: string; cjk: boolean }[] = [];
  const wiki = readFileSync(WIKI, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('=') && l.split(' ').length >= 120);
  for (let i = 0; i < wiki.length && originals.length < 160; i += 3) originals.push({ text: wiki[i]!, cjk: false });
  const play = readFileSync(SHAKESPEARE, 'utf8').split('\n');
  for (let i = 0; i + 60 <= play.length && originals.length < 240; i += 400) originals.push({ text: play.slice(i, i + 60).join('\n'), cjk: false });
  const zh = readFileSync(SANGUO, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => [...l].length >= 200);
  for (let i = 0; i < zh.length && originals.length < 320; i += 7) originals.push({ text: zh[i]!, cjk: true });

  const docs: string[] = [];
  const origin: number[] = [];
  const kind: (Kind | null)[] = [];
  const magnitude: number[] = [];
  originals.forEach((o, i) => {
    docs.push(o.text);
    origin.push(docs.length - 1);
    kind.push(null);
    magnitude.push(0);
    if (i % 2 === 0) {
      const k: Kind = (['edit', 'reorder', 'boilerplate'] as const)[(i / 2) % 3]!;
      const m = 0.05 + 0.25 * r();
      docs.push(perturb(o.text, k, m, r, o.cjk));
      origin.push(docs.length - 2);
      kind.push(k);
      magnitude.push(m);
    }
  });
  // Hard negatives: unrelated paragraphs wrapped in the same site template (30 % boilerplate each);
  // they share every boilerplate shingle but are different documents.
  for (let i = 1; i < wiki.length && kind.filter((k) => k === null).length < originals.length + 40; i += 3) {
    docs.push(perturb(wiki[i]!, 'boilerplate', 0.3, r, false));
    origin.push(docs.length - 1);
    kind.push(null);
    magnitude.push(0);
  }
  // Shuffle so duplicates are not adjacent (and sometimes precede their original).
  const order = docs.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const pos = new Map(order.map((d, p) => [d, p]));
  return {
    docs: order.map((d) => docs[d]!),
    origin: order.map((d) => pos.get(origin[d]!)!),
    kind: order.map((d) => kind[d]!),
    magnitude: order.map((d) => magnitude[d]!),
  };
}

/** Precision and recall over document pairs: a predicted pair is two documents in one cluster. */
function score(p: Planted, clusters: Map<number, number[]>): { precision: number; recall: number; tp: number; predicted: number; truth: number } {
  const key = (a: number, b: number): string => (a < b ? `${a},${b}` : `${b},${a}`);
  const truth = new Set<string>();
  p.origin.forEach((o, d) => {
    if (o !== d) truth.add(key(o, d));
  });
  let predicted = 0;
  let tp = 0;
  for (const members of clusters.values()) {
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        predicted++;
        if (truth.has(key(members[i]!, members[j]!))) tp++;
      }
    }
  }
  return { precision: predicted === 0 ? 1 : tp / predicted, recall: tp / truth.size, tp, predicted, truth: truth.size };
}

describe.skipIf(!haveCorpora)('near-duplicate detection on planted duplicates from ../shared/data', () => {
  it('precision and recall ≥ 0.95 at the default threshold (curve over thresholds printed)', () => {
    const p = buildPlanted();
    const base = new MinHasher();
    const sigs = p.docs.map((d) => {
      const sh = shingleHashes(d, base.options);
      return { sig: base.signatureOf(sh), n: sh.length };
    });

    // What the perturbations do to the true Jaccard similarity, per kind.
    const byKind: Record<string, number[]> = {};
    const trueJ = new Map<number, number>();
    p.docs.forEach((d, i) => {
      const k = p.kind[i];
      if (!k) return;
      const j = exactJaccard(p.docs[p.origin[i]!]!, d);
      trueJ.set(i, j);
      (byKind[k] ??= []).push(j);
    });
    const lines = [`planted set: ${p.docs.length} documents, ${p.kind.filter((k) => k !== null).length} near-duplicates (magnitudes 5–30%), 40 template-sharing hard negatives`];
    const all: number[] = [];
    for (const [k, js] of Object.entries(byKind)) {
      js.sort((a, b) => a - b);
      all.push(...js);
      const below = (t: number): number => js.filter((j) => j < t).length;
      lines.push(`  ${k.padEnd(11)} n=${js.length}  exact Jaccard min ${js[0]!.toFixed(3)}  median ${js[js.length >> 1]!.toFixed(3)}  max ${js[js.length - 1]!.toFixed(3)}  below 0.7: ${below(0.7)}, below 0.8: ${below(0.8)}`);
    }

    // Two views per threshold: against the planted labels, and against the exact Jaccard of the
    // planted pairs (how well MinHash + LSH reproduce the exact decision "J ≥ t").
    lines.push('threshold  bands×rows  precision  recall   | vs exact J ≥ t: precision  recall   (planted pairs: predicted / true)');
    let atDefault: ReturnType<typeof score> | null = null;
    for (const t of [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]) {
      const mh = new MinHasher({ threshold: t });
      const idx = new NearDuplicateIndex(mh.options);
      for (const s of sigs) idx.add(mh.sketchOfSignature(s.sig, s.n));
      const sc = score(p, idx.clusters());
      if (t === DEFAULT_MINHASH.threshold) atDefault = sc;
      // Exact-J view over the planted pairs only: positive when J ≥ t.
      let tp = 0;
      let fp = 0;
      let fn = 0;
      p.origin.forEach((o, d) => {
        if (o === d) return;
        const found = idx.find(o) === idx.find(d);
        const truth = trueJ.get(d)! >= t;
        if (found && truth) tp++;
        else if (found) fp++;
        else if (truth) fn++;
      });
      const ep = tp + fp === 0 ? 1 : tp / (tp + fp);
      const er = tp + fn === 0 ? 1 : tp / (tp + fn);
      lines.push(
        `  ${t.toFixed(2)}      ${`${mh.options.bands}×${mh.options.rows}`.padEnd(10)}  ${sc.precision.toFixed(3)}      ${sc.recall.toFixed(3)}    |                 ${ep.toFixed(3)}      ${er.toFixed(3)}   (${sc.predicted} / ${sc.truth})`,
      );
    }
    console.log(lines.join('\n'));
    expect(atDefault!.precision).toBeGreaterThanOrEqual(0.95);
    expect(atDefault!.recall).toBeGreaterThanOrEqual(0.95);
  });
});

describe('shingle scan (fast path)', () => {
  const pieces = ['a', 'B', 'z', '9', ' ', '\n', '.', ',', "'", 'é', 'Ä', 'İ', 'ß', '中', '国', 'の', '한', '𝐀', '😀', '\ud800', '\udc00', '٣', '\u0301', 'ǅ', '_', 'Σ', 'the '];
  const options = [resolveMinHashOptions(), resolveMinHashOptions({ shingle: 'char' }), resolveMinHashOptions({ shingle: 'word', shingleSize: 2 })];

  it('equals the regex implementation: same shingle hashes and CJK decision (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 150 }), (parts) => {
        const text = parts.join('');
        expect(isCJKHeavy(text)).toBe(isCJKHeavyReference(text));
        for (const o of options) expect([...shingleHashes(text, o)]).toEqual([...shingleHashesReference(text, o)]);
      }),
      { numRuns: 400 },
    );
    // The 2,000-character sample of the CJK decision may cut a surrogate pair.
    const cut = `${'a'.repeat(1999)}😀中中`;
    expect(isCJKHeavy(cut)).toBe(isCJKHeavyReference(cut));
  });

  it('equals the regex implementation on the shared corpora', () => {
    for (const file of [WIKI, SHAKESPEARE, join(SHARED, 'zh', 'sanguo_yanyi.txt')]) {
      if (!existsSync(file)) continue;
      const text = readFileSync(file, 'utf8').slice(0, 100_000);
      expect([...shingleHashes(text, options[0]!)]).toEqual([...shingleHashesReference(text, options[0]!)]);
    }
  });
});
