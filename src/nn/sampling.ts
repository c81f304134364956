/**
 * Next-token sampling from one row of logits: greedy (temperature 0), temperature, top-k and
 * top-p (nucleus), drawing from a seeded Generator so the same seed gives the same tokens.
 */
import type { Generator } from '../tensor/random.js';

export interface SamplingOptions {
  /** Divides the logits; 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (exactly k; ties broken toward the lower id). */
  topK?: number;
  /**
   * Keep the smallest set of most likely tokens whose probability reaches topP (the token that
   * crosses the threshold is kept, at least one token always is), as HF's TopPLogitsWarper.
   */
  topP?: number;
}

export function checkSamplingOptions(o: SamplingOptions, op = 'sample'): void {
  const { temperature = 1, topK, topP } = o;
  if (!(Number.isFinite(temperature) && temperature >= 0)) {
    throw new RangeError(`${op}: temperature must be a finite number ≥ 0 (0 = greedy), got ${temperature}`);
  }
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1)) {
    throw new RangeError(`${op}: topK must be a positive integer, got ${topK}`);
  }
  if (topP !== undefined && !(topP > 0 && topP <= 1)) throw new RangeError(`${op}: topP must be in (0, 1], got ${topP}`);
}

/** Index of the largest value (lowest index on ties); NaN never wins. */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * The candidate ids and their probabilities after temperature, top-k and top-p, most likely first
 * (in the order sampling walks them). Exposed for tests and for callers that want the distribution.
 */
export function candidateDistribution(logits: ArrayLike<number>, options: SamplingOptions = {}): { ids: Int32Array; probs: Float64Array } {
  checkSamplingOptions(options, 'candidateDistribution');
  const { temperature = 1, topK, topP } = options;
  const V = logits.length;
  if (V === 0) throw new RangeError('candidateDistribution: empty logits row');
  if (temperature === 0) return { ids: Int32Array.of(argmax(logits)), probs: Float64Array.of(1) };
  let ids: number[];
  const needSort = topK !== undefined || topP !== undefined;
  if (!needSort) {
    ids = Array.from({ length: V }, (_, i) => i);
  } else if (topK !== undefined && topK < V) {
    ids = topKIds(logits, topK);
  } else {
    ids = Array.from({ length: V }, (_, i) => i);
    ids.sort((a, b) => compareDesc(logits, a, b));
  }
  // Softmax over the kept candidates at this temperature (f64; the max subtracted for stability).
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, logits[id]!);
  const probs = new Float64Array(ids.length);
  let total = 0;
  for (let i = 0; i < ids.length; i++) {
    const l = logits[ids[i]!]!;
    const p = l === -Infinity ? 0 : Math.exp((l - max) / temperature);
    probs[i] = p;
    total += p;
  }
  if (!(total > 0) || !Number.isFinite(total)) throw new RangeError('sample: logits contain NaN or are all -Infinity');
  for (let i = 0; i < probs.length; i++) probs[i] = probs[i]! / total;
  let keep = ids.length;
  if (topP !== undefined && topP < 1) {
    let cum = 0;
    keep = 0;
    while (keep < ids.length) {
      cum += probs[keep]!;
      keep++;
      if (cum >= topP) break;
    }
  }
  const outIds = Int32Array.from(ids.slice(0, keep));
  const outProbs = probs.slice(0, keep);
  if (keep < ids.length) {
    let s = 0;
    for (const p of outProbs) s += p;
    for (let i = 0; i < keep; i++) outProbs[i] = outProbs[i]! / s;
  }
  return { ids: outIds, probs: outProbs };
}

/** Draws the next token id from a logits row. */
export function sampleNext(logits: ArrayLike<number>, options: SamplingOptions, generator: Generator): number {
  const { ids, probs } = candidateDistribution(logits, options);
  if (ids.length === 1) return ids[0]!;
  // Inverse CDF with 48 random bits (two draws) so tiny probabilities keep their share.
  const u = (generator.nextU32() * 2 ** 16 + (generator.nextU32() >>> 16)) / 2 ** 48;
  let cum = 0;
  for (let i = 0; i < ids.length; i++) {
    cum += probs[i]!;
    if (u < cum) return ids[i]!;
  }
  // Rounding left u ≥ the last cumulative sum: the last candidate with nonzero probability.
  for (let i = ids.length - 1; i >= 0; i--) if (probs[i]! > 0) return ids[i]!;
  return ids[0]!;
}

function compareDesc(logits: ArrayLike<number>, a: number, b: number): number {
  const d = logits[b]! - logits[a]!;
  return d !== 0 && !Number.isNaN(d) ? d : a - b;
}

/** The k largest ids, sorted descending (ties by lower id), with a bounded insertion buffer. */
function topKIds(logits: ArrayLike<number>, k: number): number[] {
  if (k * 8 >= logits.length) {
    const all = Array.from({ length: logits.length }, (_, i) => i);
    all.sort((a, b) => compareDesc(logits, a, b));
    return all.slice(0, k);
  }
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (best.length === k && !(v > logits[best[k - 1]!]!)) continue;
    // Insert keeping descending order; equal values keep the earlier (lower) id first.
    let pos = best.length;
    while (pos > 0 && v > logits[best[pos - 1]!]!) pos--;
    best.splice(pos, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}
