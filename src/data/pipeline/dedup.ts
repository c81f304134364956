/**
 * Deduplication: exact (a hash of the normalised text) and near-duplicate (MinHash + LSH banding
 * at a Jaccard threshold, clustered with union-find, one document kept per cluster).
 *
 * Near-duplicates, step by step:
 *  1. Shingles: word n-grams (default 5) over the lower-cased letters and digits of the text; for
 *     CJK-heavy text, where words are not space-separated, character n-grams instead ('auto').
 *  2. MinHash: for each of `numPerm` hash functions (a seeded murmur3 finaliser over the shingle's
 *     32-bit hash) the minimum over the document's shingles. P[sig_a[i] = sig_b[i]] = Jaccard(a, b).
 *  3. LSH: the signature is cut into `bands` bands of `rows` values; documents sharing any band's
 *     values are candidates. (bands, rows) are chosen for the threshold as datasketch does
 *     (minimising the weighted false-positive and false-negative areas under the S-curve), but
 *     weighted towards recall, because step 4 removes the extra candidates.
 *  4. Verification: a candidate pair joins a cluster only when its estimated Jaccard (the share of
 *     equal signature values) reaches the threshold. Verification uses the low 16 bits of each
 *     value (b-bit MinHash: a chance collision adds (1 − J)/65536, negligible), halving the memory.
 *  5. Clusters: union-find whose root is always the earliest document (lowest index in input
 *     order), so the kept document is the same whatever order candidates are found in.
 *
 * Memory: the index keeps, per document, `bands` bucket entries and `numPerm` 16-bit values
 * (≈ 256 B + 9 map entries at the defaults) — linear in documents, not in text. Signatures are
 * computed by the caller (in worker threads, see run.ts) with {@link MinHasher}; the index only
 * needs the resulting {@link MinHashSketch}.
 */
import { nativeKernel } from './native-kernel.js';

export type ShingleKind = 'word' | 'char' | 'auto';

export interface MinHashOptions {
  /** Hash functions in the signature (default 128). */
  numPerm?: number;
  /** Shingle length in words (default 5). */
  shingleSize?: number;
  /** Shingle length in characters, for character shingles (default 5). */
  charShingleSize?: number;
  /** 'word', 'char', or 'auto' (default): characters when at least 30 % of the letters are CJK. */
  shingle?: ShingleKind;
  /** Jaccard similarity at or above which two documents are near-duplicates (default 0.7; see DEFAULT_MINHASH). */
  threshold?: number;
  /** LSH bands and rows per band; both or neither (default: chosen for the threshold). */
  bands?: number;
  rows?: number;
  /** Seed of the hash functions (default 1). Sketches made with different seeds do not compare. */
  seed?: number;
}

export interface ResolvedMinHashOptions {
  numPerm: number;
  shingleSize: number;
  charShingleSize: number;
  shingle: ShingleKind;
  threshold: number;
  bands: number;
  rows: number;
  seed: number;
}

/** What the near-duplicate index needs from a document: its band keys and a 16-bit signature. */
export interface MinHashSketch {
  /** One key per band (a 53-bit hash of the band's rows, exact in a float64). */
  bandKeys: Float64Array;
  /** The low 16 bits of each signature value, for verifying candidates. */
  sig16: Uint16Array;
  /** Number of shingle occurrences; 0 means the document has no words and is never a near-duplicate. */
  shingles: number;
}

/**
 * Defaults. The threshold is 0.7, not datasketch's 0.8: on the planted set of
 * test/data/pipeline-dedup.test.ts (edits, reorderings and boilerplate at 5–30 %), 18 of the 160
 * variants (heavily reordered or boilerplate-wrapped ones) have a true 5-gram Jaccard between 0.65
 * and 0.8, which no detector at 0.8 may flag: recall against the planted labels is 0.87 at 0.8
 * and 0.975 at 0.7, precision 1.0 at both. 0.7 is also about where HF datatrove's and FineWeb's
 * 14 bands × 8 rows put the S-curve's midpoint.
 */
export const DEFAULT_MINHASH = { numPerm: 128, shingleSize: 5, charShingleSize: 5, threshold: 0.7, seed: 1 } as const;

/** Validates options and fills in defaults, choosing (bands, rows) for the threshold when not given. */
export function resolveMinHashOptions(o: MinHashOptions = {}): ResolvedMinHashOptions {
  const numPerm = o.numPerm ?? DEFAULT_MINHASH.numPerm;
  const shingleSize = o.shingleSize ?? DEFAULT_MINHASH.shingleSize;
  const charShingleSize = o.charShingleSize ?? DEFAULT_MINHASH.charShingleSize;
  const threshold = o.threshold ?? DEFAULT_MINHASH.threshold;
  const seed = o.seed ?? DEFAULT_MINHASH.seed;
  const shingle = o.shingle ?? 'auto';
  const int = (v: number, what: string, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`minhash: ${what} must be an integer in [${min}, ${max}], got ${v}`);
  };
  int(numPerm, 'numPerm', 2, 4096);
  int(shingleSize, 'shingleSize', 1, 64);
  int(charShingleSize, 'charShingleSize', 1, 64);
  int(seed, 'seed', 0, 2 ** 32 - 1);
  if (!(threshold > 0 && threshold < 1)) throw new RangeError(`minhash: threshold must be in (0, 1), got ${threshold}`);
  if (shingle !== 'word' && shingle !== 'char' && shingle !== 'auto') throw new RangeError(`minhash: shingle must be 'word', 'char' or 'auto', got ${JSON.stringify(shingle)}`);
  let bands: number;
  let rows: number;
  if (o.bands !== undefined || o.rows !== undefined) {
    if (o.bands === undefined || o.rows === undefined) throw new RangeError('minhash: give both bands and rows, or neither');
    int(o.bands, 'bands', 1, numPerm);
    int(o.rows, 'rows', 1, numPerm);
    if (o.bands * o.rows > numPerm) throw new RangeError(`minhash: bands × rows (${o.bands} × ${o.rows}) exceeds numPerm ${numPerm}`);
    bands = o.bands;
    rows = o.rows;
  } else {
    ({ bands, rows } = optimalBands(threshold, numPerm));
  }
  return { numPerm, shingleSize, charShingleSize, shingle, threshold, bands, rows, seed };
}

/** Probability that a pair with Jaccard `s` becomes an LSH candidate: 1 − (1 − s^r)^b. */
export function lshProbability(s: number, bands: number, rows: number): number {
  return 1 - (1 - s ** rows) ** bands;
}

function integrate(f: (x: number) => number, a: number, b: number, steps = 128): number {
  // Simpson's rule; the S-curve is smooth, 128 panels are far more than enough.
  const h = (b - a) / steps;
  let sum = f(a) + f(b);
  for (let i = 1; i < steps; i++) sum += f(a + i * h) * (i % 2 === 1 ? 4 : 2);
  return (sum * h) / 3;
}

/**
 * (bands, rows) with bands·rows ≤ numPerm minimising fpWeight·FP + fnWeight·FN, where FP is the
 * area under the S-curve below the threshold and FN the area above it missing (datasketch's
 * _optimal_param). The default weights favour recall, since candidates are verified afterwards.
 */
export function optimalBands(threshold: number, numPerm: number, fpWeight = 0.1, fnWeight = 0.9): { bands: number; rows: number } {
  let best = { bands: 1, rows: 1 };
  let bestError = Infinity;
  for (let b = 1; b <= numPerm; b++) {
    for (let r = 1; b * r <= numPerm; r++) {
      const fp = integrate((s) => lshProbability(s, b, r), 0, threshold);
      const fn = integrate((s) => 1 - lshProbability(s, b, r), threshold, 1);
      const error = fpWeight * fp + fnWeight * fn;
      if (error < bestError - 1e-15) {
        bestError = error;
        best = { bands: b, rows: r };
      }
    }
  }
  return best;
}

/** murmur3's 32-bit finaliser: a cheap, well-mixing bijection on uint32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, finalised (words are short, so this is the hot loop's cost). */
function hashString(s: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]/gu;
const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
const WORD = /[\p{L}\p{N}]+/gu;

/**
 * Per UTF-16 code unit (BMP, non-surrogate): 1 when it is a letter or digit (LETTER_OR_DIGIT),
 * 2 when not, 0 not yet asked. Filled lazily from the regex itself, so it answers exactly as the
 * regex does while testing each distinct character once instead of once per occurrence.
 */
const LETTER_OR_DIGIT_TABLE = new Uint8Array(0x10000);
const astralLetterOrDigit = new Map<number, boolean>();

function isLetterOrDigitUnit(c: number): boolean {
  let v = LETTER_OR_DIGIT_TABLE[c]!;
  if (v === 0) {
    v = LETTER_OR_DIGIT.test(String.fromCharCode(c)) ? 1 : 2;
    LETTER_OR_DIGIT_TABLE[c] = v;
  }
  return v === 1;
}

function isLetterOrDigitAstral(cp: number): boolean {
  let v = astralLetterOrDigit.get(cp);
  if (v === undefined) {
    v = LETTER_OR_DIGIT.test(String.fromCodePoint(cp));
    astralLetterOrDigit.set(cp, v);
  }
  return v;
}

/**
 * The code point at `i` as `for (const ch of text.slice(0, end))` sees it: a surrogate pair when
 * both halves lie before `end`, else the single unit (a pair cut by `end` is a lone surrogate).
 */
function codePointAt(text: string, i: number, end: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < end) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
  }
  return c;
}

function isLetterOrDigitCodePoint(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x30 && cp <= 0x39) || ((cp | 0x20) >= 0x61 && (cp | 0x20) <= 0x7a);
  if (cp > 0xffff) return isLetterOrDigitAstral(cp);
  // Lone surrogates are not letters (the table asks the regex, which says so).
  return isLetterOrDigitUnit(cp);
}

function isCjkUnit(c: number): boolean {
  return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xac00 && c <= 0xd7af);
}

/** True when at least 30 % of the letters and digits (sampled from the first 2,000 characters) are CJK. */
export function isCJKHeavy(text: string): boolean {
  const end = Math.min(text.length, 2000);
  let letters = 0;
  let cjk = 0;
  for (let i = 0; i < end; ) {
    const cp = codePointAt(text, i, end);
    if (isLetterOrDigitCodePoint(cp)) letters++;
    // CJK's ranges are all in the BMP and outside the surrogates.
    if (isCjkUnit(cp)) cjk++;
    i += cp > 0xffff ? 2 : 1;
  }
  if (letters === 0) return false;
  return cjk / letters >= 0.3;
}

/** Reused between documents: the per-unit hashes of the current one. */
let unitBuf = new Int32Array(1024);

function pushUnit(n: number, h: number): number {
  if (n === unitBuf.length) {
    const grown = new Int32Array(unitBuf.length * 2);
    grown.set(unitBuf);
    unitBuf = grown;
  }
  unitBuf[n] = h;
  return n + 1;
}

/**
 * The 32-bit hashes of a document's shingles, in order (repeats included: MinHash takes a minimum,
 * so a repeated shingle changes nothing). A text shorter than one shingle is one shingle.
 *
 * Words are the runs of WORD (letters and digits) and each is hashed with FNV-1a over its UTF-16
 * units; the scan below finds the same runs with a character table instead of a regex match per
 * word (no match objects, no substrings).
 */
export function shingleHashes(text: string, options: Pick<ResolvedMinHashOptions, 'shingle' | 'shingleSize' | 'charShingleSize'>): Uint32Array {
  const lower = text.toLowerCase();
  const useChars = options.shingle === 'char' || (options.shingle === 'auto' && isCJKHeavy(lower));
  const len = lower.length;
  let n = 0;
  if (useChars) {
    // Characters of the letters and digits only, so spacing and punctuation changes do not count.
    for (let i = 0; i < len; ) {
      const cp = codePointAt(lower, i, len);
      if (isLetterOrDigitCodePoint(cp)) n = pushUnit(n, fmix32(cp ^ 0x9e3779b9));
      i += cp > 0xffff ? 2 : 1;
    }
  } else {
    let inWord = false;
    let h = 0;
    for (let i = 0; i < len; ) {
      const cp = codePointAt(lower, i, len);
      const width = cp > 0xffff ? 2 : 1;
      if (isLetterOrDigitCodePoint(cp)) {
        if (!inWord) {
          inWord = true;
          h = 0x811c9dc5;
        }
        h = Math.imul(h ^ lower.charCodeAt(i), 0x01000193);
        if (width === 2) h = Math.imul(h ^ lower.charCodeAt(i + 1), 0x01000193);
      } else if (inWord) {
        inWord = false;
        n = pushUnit(n, fmix32(h));
      }
      i += width;
    }
    if (inWord) n = pushUnit(n, fmix32(h));
  }
  const size = useChars ? options.charShingleSize : options.shingleSize;
  if (n === 0) return new Uint32Array(0);
  const units = unitBuf;
  const count = Math.max(1, n - size + 1);
  const width = Math.min(size, n);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    let h = 0x2545f491 ^ width;
    for (let k = 0; k < width; k++) h = Math.imul(h ^ units[i + k]!, 0x01000193) ^ (h >>> 15);
    out[i] = fmix32(h);
  }
  return out;
}

/** The original regex-based {@link shingleHashes}: the reference the fast scan is tested against. */
export function shingleHashesReference(text: string, options: Pick<ResolvedMinHashOptions, 'shingle' | 'shingleSize' | 'charShingleSize'>): Uint32Array {
  const lower = text.toLowerCase();
  const useChars = options.shingle === 'char' || (options.shingle === 'auto' && isCJKHeavyReference(lower));
  const units: number[] = [];
  if (useChars) {
    for (const ch of lower) if (LETTER_OR_DIGIT.test(ch)) units.push(fmix32(ch.codePointAt(0)! ^ 0x9e3779b9));
  } else {
    for (const m of lower.matchAll(WORD)) units.push(hashString(m[0], 0, m[0].length));
  }
  const n = useChars ? options.charShingleSize : options.shingleSize;
  if (units.length === 0) return new Uint32Array(0);
  const count = Math.max(1, units.length - n + 1);
  const width = Math.min(n, units.length);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    let h = 0x2545f491 ^ width;
    for (let k = 0; k < width; k++) h = Math.imul(h ^ units[i + k]!, 0x01000193) ^ (h >>> 15);
    out[i] = fmix32(h);
  }
  return out;
}

/** The original regex-based {@link isCJKHeavy}, for tests. */
export function isCJKHeavyReference(text: string): boolean {
  const sample = text.length > 2000 ? text.slice(0, 2000) : text;
  let letters = 0;
  for (const ch of sample) if (LETTER_OR_DIGIT.test(ch)) letters++;
  if (letters === 0) return false;
  const cjk = sample.match(CJK)?.length ?? 0;
  return cjk / letters >= 0.3;
}

/** The native signature kernel (native/text.cc: the same bits, vectorised). */
const nativeMinhash = nativeKernel<(shingles: Uint32Array, seeds: Uint32Array, out: Uint32Array) => void>('minhashSignature');

/**
 * The signature in TypeScript (the oracle of the native kernel, and the path without it): for each
 * seed, the minimum over the shingles of fmix32(shingle ^ seed); 0xffffffff when there are none.
 */
export function minhashSignatureReference(shingles: Uint32Array, seeds: Uint32Array, sig: Uint32Array): void {
  const m = seeds.length;
  sig.fill(0xffffffff);
  for (let j = 0; j < shingles.length; j++) {
    const x = shingles[j]!;
    for (let i = 0; i < m; i++) {
      // fmix32 inlined: this loop is the near-dedup stage's cost.
      let h = x ^ seeds[i]!;
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      h >>>= 0;
      if (h < sig[i]!) sig[i] = h;
    }
  }
}

/** Computes MinHash signatures and sketches with fixed options (cheap to build; keep one per worker). */
export class MinHasher {
  readonly options: ResolvedMinHashOptions;
  private readonly seeds: Uint32Array;

  constructor(options: MinHashOptions | ResolvedMinHashOptions = {}) {
    this.options = resolveMinHashOptions(options);
    this.seeds = new Uint32Array(this.options.numPerm);
    let s = fmix32(this.options.seed ^ 0x5bd1e995);
    for (let i = 0; i < this.seeds.length; i++) {
      s = fmix32(s + 0x9e3779b9);
      this.seeds[i] = s;
    }
  }

  /** The signature: for each hash function, the minimum over the shingles (0xffffffff when there are none). */
  signature(text: string): Uint32Array {
    return this.signatureOf(shingleHashes(text, this.options));
  }

  signatureOf(shingles: Uint32Array): Uint32Array {
    const sig = new Uint32Array(this.seeds.length);
    const native = nativeMinhash.get();
    if (native !== null) native(shingles, this.seeds, sig);
    else minhashSignatureReference(shingles, this.seeds, sig);
    return sig;
  }

  /** Band keys and the 16-bit signature: what {@link NearDuplicateIndex} stores. */
  sketch(text: string): MinHashSketch {
    const shingles = shingleHashes(text, this.options);
    return this.sketchOfSignature(this.signatureOf(shingles), shingles.length);
  }

  sketchOfSignature(sig: Uint32Array, shingles: number): MinHashSketch {
    const { bands, rows } = this.options;
    const bandKeys = new Float64Array(bands);
    for (let b = 0; b < bands; b++) {
      // Two independent 32-bit hashes of the band's rows make a 53-bit key (exact in a float64).
      let h1 = 0x3c6ef372 ^ b;
      let h2 = 0xa54ff53a ^ Math.imul(b, 0x27d4eb2d);
      for (let r = b * rows; r < (b + 1) * rows; r++) {
        h1 = fmix32(h1 ^ sig[r]!);
        h2 = Math.imul(h2 ^ sig[r]!, 0x01000193) >>> 0;
      }
      bandKeys[b] = (h1 & 0x1fffff) * 0x100000000 + fmix32(h2);
    }
    const sig16 = new Uint16Array(sig.length);
    for (let i = 0; i < sig.length; i++) sig16[i] = sig[i]! & 0xffff;
    return { bandKeys, sig16, shingles };
  }
}

/** The share of equal values: the MinHash estimate of the Jaccard similarity. */
export function estimateJaccard(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`estimateJaccard: signatures of different lengths (${a.length} and ${b.length})`);
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/** The exact Jaccard similarity of two documents' shingle sets (for tests and reports). */
export function exactJaccard(a: string, b: string, options: MinHashOptions = {}): number {
  const o = resolveMinHashOptions(options);
  const sa = new Set(shingleHashes(a, o));
  const sb = new Set(shingleHashes(b, o));
  if (sa.size === 0 && sb.size === 0) return 1;
  let inter = 0;
  for (const x of sa) if (sb.has(x)) inter++;
  return inter / (sa.size + sb.size - inter);
}

/** A growable typed array (documents arrive one at a time; their count is not known up front). */
class GrowableInt32 {
  data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
}

/**
 * Near-duplicate clustering over documents added in input order. Every pair that shares an LSH
 * bucket is verified when its later member arrives, so the clusters do not depend on arrival
 * order beyond the indices themselves; each cluster's root is its earliest document.
 */
export class NearDuplicateIndex {
  readonly options: ResolvedMinHashOptions;
  private readonly parent = new GrowableInt32();
  /** Per band: key → the latest document in that bucket; `next` chains to the earlier ones. */
  private readonly buckets: Map<number, number>[];
  private readonly next = new GrowableInt32();
  private sigs = new Uint16Array(0);
  private count = 0;
  /** Candidate pairs examined and pairs that passed verification (for statistics). */
  candidates = 0;
  verified = 0;

  constructor(options: MinHashOptions | ResolvedMinHashOptions = {}) {
    this.options = resolveMinHashOptions(options);
    this.buckets = Array.from({ length: this.options.bands }, () => new Map<number, number>());
  }

  get size(): number {
    return this.count;
  }

  /** Adds the next document; returns its index. */
  add(sketch: MinHashSketch): number {
    const { bands, numPerm, threshold } = this.options;
    if (sketch.bandKeys.length !== bands || sketch.sig16.length !== numPerm) {
      throw new RangeError(
        `NearDuplicateIndex.add: sketch has ${sketch.bandKeys.length} bands and ${sketch.sig16.length} values; the index expects ${bands} and ${numPerm} (sketches must come from a MinHasher with the same options)`,
      );
    }
    const doc = this.count++;
    this.parent.push(doc);
    if ((doc + 1) * numPerm > this.sigs.length) {
      const grown = new Uint16Array(Math.max(1024 * numPerm, this.sigs.length * 2));
      grown.set(this.sigs);
      this.sigs = grown;
    }
    this.sigs.set(sketch.sig16, doc * numPerm);
    // A document without words would collide with every other empty one; it is never a near-duplicate.
    const indexed = sketch.shingles > 0;
    const minEqual = Math.ceil(threshold * numPerm - 1e-9);
    for (let b = 0; b < bands; b++) {
      if (!indexed) {
        this.next.push(-1);
        continue;
      }
      const key = sketch.bandKeys[b]!;
      const bucket = this.buckets[b]!;
      const head = bucket.get(key);
      this.next.push(head ?? -1);
      bucket.set(key, doc);
      for (let other = head ?? -1; other >= 0; other = this.next.data[other * bands + b]!) {
        if (this.find(other) === this.find(doc)) continue;
        this.candidates++;
        if (this.equalValues(doc, other) >= minEqual) {
          this.verified++;
          this.union(doc, other);
        }
      }
    }
    return doc;
  }

  private equalValues(a: number, b: number): number {
    const m = this.options.numPerm;
    const s = this.sigs;
    let eq = 0;
    for (let i = 0, ia = a * m, ib = b * m; i < m; i++) if (s[ia + i] === s[ib + i]) eq++;
    return eq;
  }

  /** The cluster root (its earliest document) of `doc`. */
  find(doc: number): number {
    const p = this.parent.data;
    let r = doc;
    while (p[r] !== r) r = p[r]!;
    while (p[doc] !== r) {
      const up = p[doc]!;
      p[doc] = r;
      doc = up;
    }
    return r;
  }

  private union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    // The smaller index becomes the root, so the kept document is always the earliest.
    if (ra < rb) this.parent.data[rb] = ra;
    else this.parent.data[ra] = rb;
  }

  /** True when `doc` is its cluster's root: the one document of the cluster that is kept. */
  isKept(doc: number): boolean {
    return this.find(doc) === doc;
  }

  /** Clusters with more than one member: root → members (ascending), roots ascending. */
  clusters(): Map<number, number[]> {
    const byRoot = new Map<number, number[]>();
    for (let d = 0; d < this.count; d++) {
      const r = this.find(d);
      if (r === d) continue;
      let list = byRoot.get(r);
      if (list === undefined) byRoot.set(r, (list = [r]));
      list.push(d);
    }
    return new Map([...byRoot.entries()].sort((x, y) => x[0] - y[0]));
  }
}

/** Text as exact deduplication compares it: NFKC, lower case, whitespace folded, trimmed. */
export function exactDedupKey(text: string): string {
  // Every whitespace run becomes one space; the pattern matches only runs that change (not the single
  // spaces between words, which would each be replaced by themselves).
  return text.normalize('NFKC').toLowerCase().replace(WHITESPACE_TO_FOLD_RE, ' ').trim();
}

const WHITESPACE_TO_FOLD_RE = /[^\S ]\s*|\s{2,}/gu;

/**
 * MurmurHash3_x86_128 (Austin Appleby's SMHasher; seed 0 by default) of bytes: h1..h4 little-endian.
 * The TypeScript twin of native/text.cc's, and the path without the addon.
 */
export function murmur3x86_128(data: Uint8Array, seed = 0): Uint8Array {
  const c1 = 0x239b961b;
  const c2 = 0xab0e9789;
  const c3 = 0x38b34ae5;
  const c4 = 0xa1e38b93;
  const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
  const mul = Math.imul;
  let h1 = seed >>> 0;
  let h2 = h1;
  let h3 = h1;
  let h4 = h1;
  const len = data.length;
  const le32 = (o: number): number => data[o]! | (data[o + 1]! << 8) | (data[o + 2]! << 16) | (data[o + 3]! << 24);
  const blocks = len - (len & 15);
  for (let o = 0; o < blocks; o += 16) {
    h1 ^= mul(rotl(mul(le32(o), c1), 15), c2);
    h1 = (mul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    h2 ^= mul(rotl(mul(le32(o + 4), c2), 16), c3);
    h2 = (mul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    h3 ^= mul(rotl(mul(le32(o + 8), c3), 17), c4);
    h3 = (mul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    h4 ^= mul(rotl(mul(le32(o + 12), c4), 18), c1);
    h4 = (mul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  // Tail: up to 15 bytes, little-endian into k1..k4.
  const k = [0, 0, 0, 0];
  for (let i = blocks; i < len; i++) k[(i - blocks) >> 2]! |= data[i]! << (8 * ((i - blocks) & 3));
  const rest = len & 15;
  if (rest > 12) h4 ^= mul(rotl(mul(k[3]!, c4), 18), c1);
  if (rest > 8) h3 ^= mul(rotl(mul(k[2]!, c3), 17), c4);
  if (rest > 4) h2 ^= mul(rotl(mul(k[1]!, c2), 16), c3);
  if (rest > 0) h1 ^= mul(rotl(mul(k[0]!, c1), 15), c2);
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  [h1, h2, h3, h4].forEach((h, i) => view.setUint32(4 * i, h >>> 0, true));
  return out;
}

/** Names the exact-dedup hash (runs fingerprint it, so a run never mixes two). */
export const EXACT_HASH_NAME = 'murmur3-x86-128/utf16le';

const NON_ASCII_RE = /[\u0080-\uffff]/;
const hashScratch = new Uint8Array(16);
/** The native key hash (native/text.cc: folds and hashes in one pass). */
const nativeExactKeyHash = nativeKernel<(key: string, out: Uint8Array, lowerAscii: boolean) => void>('exactKeyHash');

/**
 * The exact-dedup hash of a text, base64: 128-bit MurmurHash3 (speed, not security, matters; 2^-64
 * collision odds at billions of documents) of the UTF-16LE units of {@link exactDedupKey}. The
 * native kernel folds the whitespace and hashes without building the key string.
 */
export function exactHash(text: string): string {
  const native = nativeExactKeyHash.get();
  if (native === null) return exactHashReference(text);
  // On ASCII text NFKC changes nothing and lower case is A–Z → a–z, which the kernel does in its pass.
  if (NON_ASCII_RE.test(text)) native(text.normalize('NFKC').toLowerCase(), hashScratch, false);
  else native(text, hashScratch, true);
  return Buffer.from(hashScratch.buffer, hashScratch.byteOffset, 16).toString('base64');
}

/** exactHash in TypeScript: the oracle of the native path. */
export function exactHashReference(text: string): string {
  const key = exactDedupKey(text);
  const bytes = new Uint8Array(2 * key.length);
  for (let i = 0; i < key.length; i++) {
    const u = key.charCodeAt(i);
    bytes[2 * i] = u & 0xff;
    bytes[2 * i + 1] = u >>> 8;
  }
  return Buffer.from(murmur3x86_128(bytes)).toString('base64');
}

/** Exact deduplication: the first document with a given hash is kept, later ones point at it. */
export class ExactDeduplicator {
  private readonly first = new Map<string, number>();

  /** Registers document `index` with hash `hash`; returns the index of the earlier copy it duplicates, or null. */
  add(hash: string, index: number): number | null {
    const seen = this.first.get(hash);
    if (seen !== undefined) return seen;
    this.first.set(hash, index);
    return null;
  }

  get size(): number {
    return this.first.size;
  }
}
