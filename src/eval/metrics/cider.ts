/**
 * CIDEr-D exactly as pycocoevalcap's `Cider` (which is the CIDEr-D variant): TF-IDF vectors of
 * 1..n-grams with document frequencies over the references of the scored corpus, clipped cosine
 * similarity, a Gaussian length penalty, mean over orders and references, ×10. Inputs are taken
 * as already tokenized (split on whitespace), as pycocoevalcap does after its PTB tokenizer.
 */
import { pySplit } from './text.js';

export interface CiderItem {
  id: string;
  hyp: string;
  refs: string[];
}

export interface CiderOptions {
  /** Maximum n-gram order (default 4). */
  n?: number;
  /** Standard deviation of the length penalty (default 6). */
  sigma?: number;
}

export interface CiderResult {
  /** Mean of perImage. */
  score: number;
  /** One score per item, in input order. */
  perImage: number[];
}

/** pycocoevalcap's `precook`: n-gram counts in first-occurrence order (orders 1..n). */
function precook(s: string, n: number): Map<string, number> {
  const words = pySplit(s);
  const counts = new Map<string, number>();
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const key = words.slice(i, i + k).join(' ');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

function ngramOrder(key: string): number {
  let spaces = 0;
  for (let p = key.indexOf(' '); p !== -1; p = key.indexOf(' ', p + 1)) spaces++;
  return spaces;
}

interface TfIdfVector {
  vec: Map<string, number>[];
  norm: number[];
  /** pycocoevalcap counts bigrams here (its `if n == 1` tests the 0-based order); kept for parity. */
  length: number;
}

/** CIDEr-D of every item against its own references, with IDF from all items' references. */
export function ciderD(items: readonly CiderItem[], opts: CiderOptions = {}): CiderResult {
  const n = opts.n ?? 4;
  const sigma = opts.sigma ?? 6.0;
  if (!Number.isInteger(n) || n < 1) throw new Error(`ciderD: n must be a positive integer, got ${n}`);
  if (!(Number.isFinite(sigma) && sigma > 0)) throw new Error(`ciderD: sigma must be a positive number, got ${sigma}`);
  if (items.length === 0) throw new Error('ciderD: no items to score');
  const seen = new Set<string>();
  for (const [i, item] of items.entries()) {
    if (typeof item.hyp !== 'string') throw new Error(`ciderD: item ${i} (id '${item.id}') has no hypothesis string`);
    if (!Array.isArray(item.refs) || item.refs.length === 0) throw new Error(`ciderD: item ${i} (id '${item.id}') has no references`);
    if (seen.has(item.id)) throw new Error(`ciderD: duplicate id '${item.id}' (pycocoevalcap keys images by id)`);
    seen.add(item.id);
  }

  const cookedTests = items.map((it) => precook(it.hyp, n));
  const cookedRefs = items.map((it) =>
    it.refs.map((r, j) => {
      if (typeof r !== 'string') throw new Error(`ciderD: reference ${j} of item '${it.id}' is not a string`);
      return precook(r, n);
    }),
  );

  // Document frequency: in how many items' reference sets each n-gram occurs.
  const df = new Map<string, number>();
  for (const refs of cookedRefs) {
    const inImage = new Set<string>();
    for (const ref of refs) for (const g of ref.keys()) inImage.add(g);
    for (const g of inImage) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const refLen = Math.log(items.length);

  const toVector = (counts: Map<string, number>): TfIdfVector => {
    const vec = Array.from({ length: n }, () => new Map<string, number>());
    const normSq = new Array<number>(n).fill(0);
    let length = 0;
    for (const [g, tf] of counts) {
      const logDf = Math.log(Math.max(1.0, df.get(g) ?? 0));
      const order = ngramOrder(g);
      const v = tf * (refLen - logDf);
      vec[order].set(g, v);
      normSq[order] += v ** 2;
      if (order === 1) length += tf;
    }
    return { vec, norm: normSq.map(Math.sqrt), length };
  };

  const penaltyDenominator = 2 * sigma ** 2;
  const similarity = (hyp: TfIdfVector, ref: TfIdfVector): number[] => {
    const delta = hyp.length - ref.length;
    const val = new Array<number>(n).fill(0);
    for (let k = 0; k < n; k++) {
      const refVec = ref.vec[k];
      for (const [g, v] of hyp.vec[k]) {
        const r = refVec.get(g) ?? 0;
        val[k] += Math.min(v, r) * r;
      }
      if (hyp.norm[k] !== 0 && ref.norm[k] !== 0) val[k] /= hyp.norm[k] * ref.norm[k];
      val[k] *= Math.E ** (-(delta ** 2) / penaltyDenominator);
    }
    return val;
  };

  const perImage: number[] = [];
  for (let i = 0; i < items.length; i++) {
    const hypVec = toVector(cookedTests[i]);
    const acc = new Array<number>(n).fill(0);
    for (const ref of cookedRefs[i]) {
      const s = similarity(hypVec, toVector(ref));
      for (let k = 0; k < n; k++) acc[k] += s[k];
    }
    let mean = 0;
    for (const x of acc) mean += x;
    mean /= n;
    perImage.push(((mean / cookedRefs[i].length) * 10.0));
  }
  let total = 0;
  for (const x of perImage) total += x;
  return { score: total / perImage.length, perImage };
}
