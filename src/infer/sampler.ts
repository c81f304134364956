/**
 * Per-request next-token sampling for the inference engine, in vLLM / OpenAI / Hugging Face terms.
 *
 * Order of operations on one logits row (the engine has already masked it for structured output):
 *   1. logit bias (OpenAI's logit_bias, added);
 *   2. repetition penalty over prompt + output tokens (HF RepetitionPenaltyLogitsProcessor / CTRL:
 *      a seen token's logit is divided by the penalty when positive, multiplied when negative);
 *   3. presence and frequency penalties over output tokens (OpenAI: logit −= count·frequency +
 *      (count > 0)·presence);
 *   → logprobs are taken here: log-softmax of these processed logits, before temperature and
 *     truncation. That is what OpenAI's logprobs describe (the model's own distribution, which
 *     sampling settings do not change) and what vLLM reports as "processed logprobs"; masked tokens
 *     have −∞ and are never listed;
 *   4. temperature (0: greedy argmax, one pass, no randomness consumed);
 *   5. top-k, then top-p (nucleus), then min-p — HF's warper order (TopK, TopP, MinP), each on the
 *      distribution the previous one left;
 *   6. a draw from the request's own seeded generator (PCG32), so a seeded request gives the same
 *      tokens whatever else the engine runs.
 *
 * Steps 1–3 write into the logits row in place (they touch only the few biased / seen ids).
 * Nothing sorts the vocabulary: a small top-k is a bounded heap, a large one and top-p are (weighted)
 * quickselects, expected O(V); min-p is a threshold in logit space (p_i ≥ minP·p_max ⇔
 * l_i ≥ l_max + T·ln minP); greedy is one argmax pass. Buffers of vocabulary size are reused.
 */
import { randomBytes } from 'node:crypto';
import { Generator } from '../tensor/random.js';
import type { SamplingParams, TokenLogprob, TopLogprob } from './api.js';

/** The most alternatives a request may ask for (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

export interface TokenText {
  token: string;
  bytes: number[];
}

export interface RequestSamplerOptions {
  /**
   * Which of a request's n sequences this sampler draws for: with a seed, sequence i uses its own
   * PCG32 stream (sequence 0's stream is exactly `new Generator(seed)`), so n > 1 choices differ
   * while each stays reproducible.
   */
  sequenceIndex?: number;
}

/** The candidates left after temperature and truncation, with their probabilities (tests, debugging). */
export interface CandidateDistribution {
  ids: Int32Array;
  probs: Float64Array;
}

/** Checks the sampling fields of a request; throws a RangeError naming the field and its range. */
export function validateSamplingParams(p: SamplingParams, vocabSize: number): void {
  const bad = (field: string, rule: string, got: unknown): never => {
    throw new RangeError(`sampling: ${field} ${rule}, got ${typeof got === 'object' ? JSON.stringify(got) : String(got)}`);
  };
  if (!(Number.isInteger(vocabSize) && vocabSize > 0)) bad('vocabSize', 'must be a positive integer', vocabSize);
  if (!(Number.isFinite(p.temperature) && p.temperature >= 0)) bad('temperature', 'must be a finite number ≥ 0 (0 = greedy)', p.temperature);
  if (p.topK !== undefined && !(Number.isInteger(p.topK) && p.topK >= 0)) bad('topK', 'must be an integer ≥ 0 (0 = all tokens)', p.topK);
  if (p.topP !== undefined && !(p.topP > 0 && p.topP <= 1)) bad('topP', 'must be in (0, 1]', p.topP);
  if (p.minP !== undefined && !(p.minP >= 0 && p.minP <= 1)) bad('minP', 'must be in [0, 1]', p.minP);
  if (p.repetitionPenalty !== undefined && !(Number.isFinite(p.repetitionPenalty) && p.repetitionPenalty > 0)) {
    bad('repetitionPenalty', 'must be a finite number > 0 (1 = none)', p.repetitionPenalty);
  }
  if (p.presencePenalty !== undefined && !(p.presencePenalty >= -2 && p.presencePenalty <= 2)) bad('presencePenalty', 'must be in [-2, 2]', p.presencePenalty);
  if (p.frequencyPenalty !== undefined && !(p.frequencyPenalty >= -2 && p.frequencyPenalty <= 2)) bad('frequencyPenalty', 'must be in [-2, 2]', p.frequencyPenalty);
  if (p.seed !== undefined && !Number.isSafeInteger(p.seed)) bad('seed', 'must be an integer', p.seed);
  if (p.logprobs !== undefined && !(Number.isInteger(p.logprobs) && p.logprobs >= 0 && p.logprobs <= MAX_TOP_LOGPROBS)) {
    bad('logprobs', `must be an integer in [0, ${MAX_TOP_LOGPROBS}]`, p.logprobs);
  }
  if (p.logitBias !== undefined) {
    if (typeof p.logitBias !== 'object' || p.logitBias === null) bad('logitBias', 'must be an object {tokenId: bias}', p.logitBias);
    for (const [key, value] of Object.entries(p.logitBias)) {
      const id = Number(key);
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) bad(`logitBias key ${JSON.stringify(key)}`, `must be a token id in [0, ${vocabSize})`, key);
      if (!(typeof value === 'number' && value >= -100 && value <= 100)) bad(`logitBias[${key}]`, 'must be a number in [-100, 100]', value);
    }
  }
}

/** Index of the largest finite-or-infinite value, lowest index on ties; −1 when every value is −∞ or NaN. */
function argmaxOf(row: Float32Array): number {
  let best = -1;
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
 * The k largest entries of `row` (ids, descending; equal values: lower id first) with a bounded
 * min-heap: O(V log k) and no allocation proportional to V. NaN never enters.
 */
export function topKIndices(row: Float32Array, k: number): Int32Array {
  const n = Math.min(k, row.length);
  if (n <= 0) return new Int32Array(0);
  // heap[0] is the worst kept entry: lower value, or on equal values the higher id.
  const heap = new Int32Array(n);
  let size = 0;
  const worse = (a: number, b: number): boolean => {
    const va = row[a]!;
    const vb = row[b]!;
    return va < vb || (va === vb && a > b);
  };
  const siftDown = (start: number): void => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) return;
      const r = l + 1;
      const m = r < size && worse(heap[r]!, heap[l]!) ? r : l;
      if (!worse(heap[m]!, heap[i]!)) return;
      const t = heap[i]!;
      heap[i] = heap[m]!;
      heap[m] = t;
      i = m;
    }
  };
  for (let id = 0; id < row.length; id++) {
    const v = row[id]!;
    if (Number.isNaN(v)) continue;
    if (size < n) {
      let i = size++;
      heap[i] = id;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(heap[i]!, heap[parent]!)) break;
        const t = heap[i]!;
        heap[i] = heap[parent]!;
        heap[parent] = t;
        i = parent;
      }
    } else if (v > row[heap[0]!]!) {
      // Strictly greater: an equal value has a higher id than every kept equal (ids ascend), so it loses.
      heap[0] = id;
      siftDown(0);
    }
  }
  const out = heap.slice(0, size);
  out.sort((a, b) => (row[b]! - row[a]! || a - b));
  return out;
}

/** Up to this k, top-k uses the bounded heap (sorted output); above it, an O(V) selection. */
const HEAP_TOP_K = 256;

/**
 * Rearranges ids[0..n) (with their weights) so that a prefix holds the best candidates — order:
 * higher logit, then lower id — and returns its length: the smallest prefix whose weight sum
 * (count, when `unit`) reaches `target`. Weighted quickselect: expected O(n), nothing fully sorted.
 */
export function selectPrefix(ids: Int32Array, weights: Float64Array, n: number, logits: Float32Array, target: number, unit: boolean): number {
  const better = (a: number, b: number): boolean => {
    const la = logits[a]!;
    const lb = logits[b]!;
    return la > lb || (la === lb && a < b);
  };
  const swap = (i: number, j: number): void => {
    const t = ids[i]!;
    ids[i] = ids[j]!;
    ids[j] = t;
    const w = weights[i]!;
    weights[i] = weights[j]!;
    weights[j] = w;
  };
  const massAt = (j: number): number => (unit ? 1 : weights[j]!);
  let lo = 0;
  let hi = n;
  let acc = 0; // mass of ids[0..lo), all in the prefix
  while (hi - lo > 16) {
    // Median of three as the pivot, moved to hi − 1.
    const mid = (lo + hi) >>> 1;
    if (better(ids[mid]!, ids[lo]!)) swap(mid, lo);
    if (better(ids[hi - 1]!, ids[lo]!)) swap(hi - 1, lo);
    if (better(ids[mid]!, ids[hi - 1]!)) swap(mid, hi - 1);
    const pivot = ids[hi - 1]!;
    let store = lo;
    let mass = 0;
    for (let j = lo; j < hi - 1; j++) {
      if (better(ids[j]!, pivot)) {
        swap(j, store);
        mass += massAt(store);
        store++;
      }
    }
    swap(store, hi - 1);
    if (acc + mass >= target) {
      hi = store;
    } else if (acc + mass + massAt(store) >= target) {
      return store + 1;
    } else {
      acc += mass + massAt(store);
      lo = store + 1;
    }
  }
  // A short range left: insertion sort it and walk.
  for (let i = lo + 1; i < hi; i++) {
    for (let j = i; j > lo && better(ids[j]!, ids[j - 1]!); j--) swap(j, j - 1);
  }
  for (let j = lo; j < hi; j++) {
    acc += massAt(j);
    if (acc >= target) return j + 1;
  }
  return hi;
}

/** A uniform double in [0, 1) with 48 random bits, so tiny probabilities keep their share. */
function uniform48(g: Generator): number {
  return (g.nextU32() * 2 ** 16 + (g.nextU32() >>> 16)) / 2 ** 48;
}

function randomSeed(): bigint {
  return randomBytes(8).readBigUInt64LE(0);
}

export class RequestSampler {
  readonly params: SamplingParams;
  readonly vocabSize: number;
  private readonly generator: Generator;
  private readonly tokenText: (id: number) => TokenText;
  /** Tokens the repetition penalty applies to (prompt + output). */
  private readonly seen = new Set<number>();
  /** Output token counts (presence / frequency penalties). */
  private readonly outputCounts = new Map<number, number>();
  private readonly bias: [number, number][];
  private scratchIds: Int32Array | null = null;
  private scratchWeights: Float64Array | null = null;

  constructor(params: SamplingParams, promptIds: readonly number[], vocabSize: number, tokenText: (id: number) => TokenText, options: RequestSamplerOptions = {}) {
    validateSamplingParams(params, vocabSize);
    const index = options.sequenceIndex ?? 0;
    if (!(Number.isInteger(index) && index >= 0)) throw new RangeError(`RequestSampler: sequenceIndex must be an integer ≥ 0, got ${index}`);
    this.params = params;
    this.vocabSize = vocabSize;
    this.tokenText = tokenText;
    const seed = params.seed !== undefined ? BigInt.asUintN(64, BigInt(params.seed)) : randomSeed();
    // Stream 0 equals new Generator(seed) (Generator.manualSeed); other sequences take other PCG streams.
    this.generator = new Generator().seedPcg(seed + 0x853c49e6748fea9bn, BigInt.asUintN(64, seed + BigInt(index) * 0x9e3779b97f4a7c15n));
    this.bias = Object.entries(params.logitBias ?? {}).map(([k, v]) => [Number(k), v]);
    if ((params.repetitionPenalty ?? 1) !== 1) {
      promptIds.forEach((id, i) => {
        if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) throw new RangeError(`RequestSampler: prompt token ${id} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
        this.seen.add(id);
      });
    }
  }

  /** True when sampling is a deterministic argmax (temperature 0). */
  get greedy(): boolean {
    return this.params.temperature === 0;
  }

  /** Records an emitted token (for the penalties). */
  accept(tokenId: number): void {
    if (!(Number.isInteger(tokenId) && tokenId >= 0 && tokenId < this.vocabSize)) {
      throw new RangeError(`RequestSampler.accept: token ${tokenId} is outside the vocabulary [0, ${this.vocabSize})`);
    }
    if ((this.params.repetitionPenalty ?? 1) !== 1) this.seen.add(tokenId);
    this.outputCounts.set(tokenId, (this.outputCounts.get(tokenId) ?? 0) + 1);
  }

  /** Applies logit bias and the penalties to `logits` in place (steps 1–3). */
  processLogits(logits: Float32Array): void {
    if (logits.length !== this.vocabSize) throw new RangeError(`RequestSampler: logits row has ${logits.length} entries, expected the vocabulary size ${this.vocabSize}`);
    for (const [id, b] of this.bias) logits[id] = logits[id]! + b;
    const rp = this.params.repetitionPenalty ?? 1;
    if (rp !== 1) {
      for (const id of this.seen) {
        const l = logits[id]!;
        logits[id] = l < 0 ? l * rp : l / rp;
      }
    }
    const presence = this.params.presencePenalty ?? 0;
    const frequency = this.params.frequencyPenalty ?? 0;
    if (presence !== 0 || frequency !== 0) {
      for (const [id, count] of this.outputCounts) logits[id] = logits[id]! - count * frequency - presence;
    }
  }

  /**
   * Chooses the next token. `logits` (the model's row, already masked by the engine) is modified in
   * place by bias and penalties. Does not record the token: call accept() with what is emitted.
   */
  sample(logits: Float32Array): { tokenId: number; logprob?: TokenLogprob } {
    this.processLogits(logits);
    let tokenId: number;
    if (this.greedy) {
      tokenId = argmaxOf(logits);
      if (tokenId < 0) throw new RangeError('RequestSampler: every logit is −∞ or NaN (nothing can be sampled)');
    } else {
      tokenId = this.draw(logits);
    }
    if (this.params.logprobs === undefined) return { tokenId };
    return { tokenId, logprob: this.logprobsFor(logits, tokenId, this.params.logprobs) };
  }

  /**
   * The distribution sample() draws from, for an already processed row: candidate ids, most likely
   * first, and their probabilities (tests, debugging; sample() itself never sorts them).
   */
  distribution(processed: Float32Array): CandidateDistribution {
    if (this.greedy) {
      const id = argmaxOf(processed);
      if (id < 0) throw new RangeError('RequestSampler: every logit is −∞ or NaN (nothing can be sampled)');
      return { ids: Int32Array.of(id), probs: Float64Array.of(1) };
    }
    const { ids, weights, total } = this.candidates(processed);
    const order = Array.from({ length: ids === null ? processed.length : ids.length }, (_, i) => i);
    const idAt = (j: number): number => (ids === null ? j : ids[j]!);
    order.sort((x, y) => processed[idAt(y)]! - processed[idAt(x)]! || idAt(x) - idAt(y));
    return { ids: Int32Array.from(order, idAt), probs: Float64Array.from(order, (j) => weights[j]! / total) };
  }

  private draw(logits: Float32Array): number {
    const { ids, weights, total } = this.candidates(logits);
    const target = uniform48(this.generator) * total;
    let cum = 0;
    let lastPositive = -1;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i]!;
      if (w <= 0) continue;
      cum += w;
      lastPositive = i;
      if (target < cum) return ids === null ? i : ids[i]!;
    }
    // Rounding left target ≥ the sum: the last candidate with weight.
    return ids === null ? lastPositive : ids[lastPositive]!;
  }

  /** Scratch buffers of vocabulary size, reused every step (no per-token allocation of O(V)). */
  private scratch(): { ids: Int32Array; weights: Float64Array } {
    this.scratchIds ??= new Int32Array(this.vocabSize);
    this.scratchWeights ??= new Float64Array(this.vocabSize);
    return { ids: this.scratchIds, weights: this.scratchWeights };
  }

  /**
   * Candidates after temperature, top-k, top-p and min-p, with unnormalised weights
   * exp((l − l_max)/T) and their sum. ids === null means every token, weights indexed by id.
   * The arrays are views of scratch buffers, valid until the next call.
   */
  private candidates(logits: Float32Array): { ids: Int32Array | null; weights: Float64Array; total: number } {
    const V = logits.length;
    const invT = 1 / this.params.temperature;
    const top = argmaxOf(logits);
    if (top < 0) throw new RangeError('RequestSampler: every logit is −∞ or NaN (nothing can be sampled)');
    const max = logits[top]!;
    if (max === Infinity) return { ids: Int32Array.of(top), weights: Float64Array.of(1), total: 1 };
    const topK = this.params.topK !== undefined && this.params.topK > 0 && this.params.topK < V ? this.params.topK : 0;
    const topP = this.params.topP ?? 1;
    const minP = this.params.minP ?? 0;
    // min-p as a logit threshold: p_i ≥ minP·p_max ⇔ l_i ≥ l_max + T·ln(minP) (ln 0 = −∞: keeps all).
    const minLogit = minP > 0 ? max + this.params.temperature * Math.log(minP) : -Infinity;
    const { ids: idBuf, weights: wBuf } = this.scratch();

    if (topK === 0 && topP >= 1) {
      // No ordering needed: every token (below the min-p threshold: weight 0), in id order.
      let total = 0;
      for (let i = 0; i < V; i++) {
        const l = logits[i]!;
        const w = l >= minLogit && l !== -Infinity ? Math.exp((l - max) * invT) : 0;
        wBuf[i] = w;
        total += w;
      }
      return { ids: null, weights: wBuf.subarray(0, V), total };
    }

    let ids: Int32Array;
    let weights: Float64Array;
    let n: number;
    if (topK > 0 && topK <= HEAP_TOP_K) {
      ids = topKIndices(logits, topK);
      n = ids.length;
      weights = wBuf.subarray(0, n);
    } else {
      // Every token with weight, then (top-k) an O(V) selection of the k best.
      n = 0;
      for (let i = 0; i < V; i++) {
        const l = logits[i]!;
        if (l !== -Infinity && !Number.isNaN(l)) idBuf[n++] = i;
      }
      ids = idBuf;
      weights = wBuf;
      if (topK > 0 && n > topK) n = selectPrefix(ids, weights, n, logits, topK, true);
    }
    let total = 0;
    for (let j = 0; j < n; j++) {
      const w = Math.exp((logits[ids[j]!]! - max) * invT);
      weights[j] = w;
      total += w;
    }
    // Nucleus: the smallest set of most likely candidates whose mass reaches topP (renormalised after top-k).
    if (topP < 1) n = selectPrefix(ids, weights, n, logits, topP * total, false);
    // min-p on what is left; the most likely token always stays.
    let kept = 0;
    total = 0;
    for (let j = 0; j < n; j++) {
      const id = ids[j]!;
      if (logits[id]! >= minLogit || id === top) {
        ids[kept] = id;
        weights[kept] = weights[j]!;
        total += weights[j]!;
        kept++;
      }
    }
    return { ids: ids.subarray(0, kept), weights: weights.subarray(0, kept), total };
  }

  /** Log-softmax of the processed row: the chosen token and the n most likely (finite ones only). */
  private logprobsFor(logits: Float32Array, tokenId: number, n: number): TokenLogprob {
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) {
      const l = logits[i]!;
      if (l !== -Infinity) sum += Math.exp(l - max);
    }
    const lse = max + Math.log(sum);
    const entry = (id: number): TopLogprob => {
      const { token, bytes } = this.tokenText(id);
      return { tokenId: id, token, bytes, logprob: logits[id]! - lse };
    };
    const top: TopLogprob[] = [];
    for (const id of topKIndices(logits, n)) if (Number.isFinite(logits[id]!)) top.push(entry(id));
    return { ...entry(tokenId), top };
  }
}
