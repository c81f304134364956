/**
 * Calibration: what the post-training methods need to see of a model's activations.
 *
 * - Finding the Linear layers of a model and capturing the inputs they receive over a calibration
 *   set (their `forward` is wrapped on the instance for the duration of one call and restored after,
 *   so src/nn stays untouched).
 * - Per-channel statistics (max |x| for SmoothQuant, mean |x| for AWQ) and per-tensor clipping
 *   thresholds for static activation quantization: min–max, percentile, and TensorRT's entropy
 *   (KL-divergence) calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017).
 * - Evaluation data: calibration windows from a token stream, and perplexity over non-overlapping windows.
 */
import { Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { Tensor } from '../tensor/tensor.js';

// -----------------------------------------------------------------------------------------------
// Modules
// -----------------------------------------------------------------------------------------------

export interface LinearFilter {
  /** Only names matching this (default: every Linear). */
  include?: RegExp;
  /** Never names matching this (default: the output head, lm_head). */
  exclude?: RegExp;
}

/** The model's nn.Linear layers by dotted name, in registration order (lm_head excluded by default). */
export function findLinears(model: Module, filter: LinearFilter = {}): [string, Linear][] {
  const exclude = filter.exclude ?? /(^|\.)lm_head$/;
  return model
    .namedModules()
    .filter((entry): entry is [string, Linear] => entry[1] instanceof Linear)
    .filter(([name]) => (filter.include === undefined || filter.include.test(name)) && !exclude.test(name));
}

/** Runs `fn` with each named Linear's forward wrapped to report its input; the originals are restored after. */
export function withLinearInputs<T>(
  layers: readonly (readonly [string, Linear])[],
  onInput: (name: string, x: Float32Array, rows: number, cols: number) => void,
  fn: () => T,
): T {
  const restore: (() => void)[] = [];
  try {
    for (const [name, layer] of layers) {
      // A forward already overridden on the instance (QAT, another wrapper) is kept and restored.
      const own = Object.getOwnPropertyDescriptor(layer, 'forward');
      const inner = layer.forward.bind(layer);
      layer.forward = (x: Tensor): Tensor => {
        const cols = x.shape[x.ndim - 1]!;
        onInput(name, x.f32('calibration'), x.numel / cols, cols);
        return inner(x);
      };
      restore.push(() => {
        if (own !== undefined) Object.defineProperty(layer, 'forward', own);
        else delete (layer as { forward?: unknown }).forward;
      });
    }
    return fn();
  } finally {
    for (const r of restore.reverse()) r();
  }
}

// -----------------------------------------------------------------------------------------------
// Activation statistics and thresholds
// -----------------------------------------------------------------------------------------------

/** Values kept per layer for percentile / KL calibration (strided subsample beyond this). */
const MAX_SAMPLES = 1 << 21;

/** Running statistics of one layer's input activations. */
export class ActivationStats {
  /** max |x| per input channel. */
  readonly absMax: Float64Array;
  /** Σ |x| per input channel (mean = absSum / rows). */
  readonly absSum: Float64Array;
  rows = 0;
  min = Infinity;
  max = -Infinity;
  private samples: Float32Array = new Float32Array(1024);
  private nSamples = 0;
  private stride = 1;
  private seen = 0;

  constructor(readonly channels: number) {
    this.absMax = new Float64Array(channels);
    this.absSum = new Float64Array(channels);
  }

  observe(x: Float32Array, rows: number, cols: number): void {
    if (cols !== this.channels) throw new RangeError(`ActivationStats: got ${cols} channels, expected ${this.channels}`);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = x[r * cols + c]!;
        const a = Math.abs(v);
        if (a > this.absMax[c]!) this.absMax[c] = a;
        this.absSum[c] += a;
        if (v < this.min) this.min = v;
        if (v > this.max) this.max = v;
        if (this.seen++ % this.stride === 0) this.keep(a);
      }
    }
    this.rows += rows;
  }

  private keep(a: number): void {
    if (this.nSamples === this.samples.length) {
      if (this.samples.length < MAX_SAMPLES) {
        const grown = new Float32Array(this.samples.length * 2);
        grown.set(this.samples);
        this.samples = grown;
      } else {
        // Full: keep every other value and sample half as often from now on.
        for (let i = 0; i < this.nSamples / 2; i++) this.samples[i] = this.samples[2 * i]!;
        this.nSamples /= 2;
        this.stride *= 2;
      }
    }
    this.samples[this.nSamples++] = a;
  }

  /** The kept |x| values (all of them up to 2M, a uniform strided subsample beyond). */
  absSamples(): Float32Array {
    return this.samples.subarray(0, this.nSamples);
  }

  /** mean |x| per channel (AWQ's activation magnitude s_x). */
  absMean(): Float64Array {
    return this.absSum.map((s) => s / Math.max(1, this.rows));
  }
}

export type CalibrationMethod = 'minmax' | 'percentile' | 'kl';

/** The |x| value below which `pct` percent of the samples lie (nearest rank). */
export function percentileThreshold(absValues: Float32Array, pct: number): number {
  if (!(pct > 0 && pct <= 100)) throw new RangeError(`percentileThreshold: pct must be in (0, 100], got ${pct}`);
  if (absValues.length === 0) throw new RangeError('percentileThreshold: no values observed');
  const sorted = Float32Array.from(absValues).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((pct / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** A histogram of |x| with `bins` equal bins over [0, max |x|]. */
export function absHistogram(absValues: Float32Array, bins = 2048): { hist: Float64Array; binWidth: number } {
  let amax = 0;
  for (const v of absValues) if (v > amax) amax = v;
  const hist = new Float64Array(bins);
  const binWidth = amax > 0 ? amax / bins : 1;
  for (const v of absValues) hist[Math.min(bins - 1, Math.floor(v / binWidth))]! += 1;
  return { hist, binWidth };
}

/** MXNet's _smooth_distribution: move eps of mass onto the empty bins; null when all are empty. */
function smooth(p: Float64Array, eps = 1e-4): Float64Array | null {
  let zeros = 0;
  for (const v of p) if (v === 0) zeros++;
  const nonzeros = p.length - zeros;
  if (nonzeros === 0) return null;
  const eps1 = (eps * zeros) / nonzeros;
  return p.map((v) => (v === 0 ? eps : v - eps1));
}

function klDivergence(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i]!;
    sq += q[i]!;
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]! / sp;
    if (pi > 0) kl += pi * Math.log(pi / (q[i]! / sq));
  }
  return kl;
}

/**
 * TensorRT's entropy calibration over a histogram of |x|: for every candidate of i ≥ 128 bins, P is
 * the first i bins with the outliers folded into the last, Q is the same bins merged into 128 levels
 * and spread back over P's non-empty bins; pick the i minimising KL(P ‖ Q); threshold = (i + 0.5) · width.
 * Returns the divergence of every candidate (index i − numQuantizedBins) for inspection.
 */
export function klThreshold(hist: ArrayLike<number>, binWidth: number, numQuantizedBins = 128): { threshold: number; bins: number; divergences: Float64Array } {
  const n = hist.length;
  if (n < numQuantizedBins) throw new RangeError(`klThreshold: the histogram has ${n} bins, fewer than the ${numQuantizedBins} quantized levels`);
  const suffix = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) suffix[i] = suffix[i + 1]! + hist[i]!;
  const divergences = new Float64Array(n - numQuantizedBins + 1);
  let best = -1;
  let bestKl = Infinity;
  for (let i = numQuantizedBins; i <= n; i++) {
    const p = new Float64Array(i);
    for (let j = 0; j < i; j++) p[j] = hist[j]!;
    p[i - 1]! += suffix[i]!;
    const merged = Math.floor(i / numQuantizedBins);
    const q = new Float64Array(i);
    for (let k = 0; k < numQuantizedBins; k++) {
      const start = k * merged;
      const stop = k === numQuantizedBins - 1 ? i : start + merged;
      let count = 0;
      let nonzero = 0;
      for (let j = start; j < stop; j++) {
        count += hist[j]!;
        if (p[j] !== 0) nonzero++;
      }
      if (nonzero > 0) for (let j = start; j < stop; j++) if (p[j] !== 0) q[j] = count / nonzero;
    }
    const ps = smooth(p);
    const qs = smooth(q);
    const kl = ps === null || qs === null ? Infinity : klDivergence(ps, qs);
    divergences[i - numQuantizedBins] = kl;
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  if (best < 0) throw new RangeError('klThreshold: the histogram is empty');
  return { threshold: (best + 0.5) * binWidth, bins: best, divergences };
}

/** The clipping threshold T of a layer's input (static scale = T / 127). */
export function activationThreshold(stats: ActivationStats, method: CalibrationMethod, options: { percentile?: number } = {}): number {
  if (method === 'minmax') return Math.max(Math.abs(stats.min), Math.abs(stats.max));
  if (method === 'percentile') return percentileThreshold(stats.absSamples(), options.percentile ?? 99.99);
  const { hist, binWidth } = absHistogram(stats.absSamples());
  return Math.min(klThreshold(hist, binWidth).threshold, Math.max(Math.abs(stats.min), Math.abs(stats.max)));
}

/** Statistics of every listed layer's inputs over the calibration batches (no gradients). */
export function collectActivationStats(
  model: { forward(ids: Tensor): { logits: Tensor; loss: Tensor | null } },
  layers: readonly (readonly [string, Linear])[],
  batches: readonly Tensor[],
  onBatch?: (done: number) => void,
): Map<string, ActivationStats> {
  const stats = new Map<string, ActivationStats>(layers.map(([name, l]) => [name, new ActivationStats(l.inFeatures)]));
  withLinearInputs(
    layers,
    (name, x, rows, cols) => stats.get(name)!.observe(x, rows, cols),
    () =>
      noGrad(() => {
        batches.forEach((ids, i) => {
          model.forward(ids).logits.dispose();
          onBatch?.(i + 1);
        });
      }),
  );
  return stats;
}

/** Every listed layer's input rows over the batches, concatenated ([rows, inFeatures] row-major), capped at maxRows. */
export function collectLinearInputs(
  model: { forward(ids: Tensor): { logits: Tensor; loss: Tensor | null } },
  layers: readonly (readonly [string, Linear])[],
  batches: readonly Tensor[],
  maxRows = Infinity,
): Map<string, { x: Float32Array; rows: number; cols: number }> {
  const parts = new Map<string, Float32Array[]>(layers.map(([n]) => [n, []]));
  const counts = new Map<string, number>(layers.map(([n]) => [n, 0]));
  withLinearInputs(
    layers,
    (name, x, rows, cols) => {
      const have = counts.get(name)!;
      const take = Math.min(rows, maxRows - have);
      if (take <= 0) return;
      parts.get(name)!.push(Float32Array.from(x.subarray(0, take * cols)));
      counts.set(name, have + take);
    },
    () => noGrad(() => batches.forEach((ids) => model.forward(ids).logits.dispose())),
  );
  const out = new Map<string, { x: Float32Array; rows: number; cols: number }>();
  for (const [name, layer] of layers) {
    const rows = counts.get(name)!;
    const x = new Float32Array(rows * layer.inFeatures);
    let at = 0;
    for (const p of parts.get(name)!) {
      x.set(p, at);
      at += p.length;
    }
    out.set(name, { x, rows, cols: layer.inFeatures });
  }
  return out;
}

// -----------------------------------------------------------------------------------------------
// Data
// -----------------------------------------------------------------------------------------------

/** `count` windows of `blockSize` ids spread evenly over `ids`, as [batchSize, blockSize] i32 batches. */
export function calibrationBatches(ids: Int32Array, blockSize: number, count: number, batchSize = 8): Tensor[] {
  if (ids.length < blockSize + 1) throw new RangeError(`calibrationBatches: ${ids.length} tokens are too few for windows of ${blockSize}; give more calibration text`);
  const span = ids.length - blockSize;
  const starts = Array.from({ length: count }, (_, i) => Math.floor((i * span) / Math.max(1, count)));
  const out: Tensor[] = [];
  for (let b = 0; b < starts.length; b += batchSize) {
    const chunk = starts.slice(b, b + batchSize);
    const x = new Int32Array(chunk.length * blockSize);
    chunk.forEach((s, r) => x.set(ids.subarray(s, s + blockSize), r * blockSize));
    out.push(Tensor.fromArray(x, [chunk.length, blockSize], 'i32'));
  }
  return out;
}

/**
 * Token perplexity exp(mean NLL) over non-overlapping windows of `blockSize` (each token predicted once
 * with the context of its window), up to `maxWindows` windows from the start of `ids`.
 */
export function perplexity(
  model: { forward(ids: Tensor, targets?: Tensor): { logits: Tensor; loss: Tensor | null } },
  ids: Int32Array,
  blockSize: number,
  options: { maxWindows?: number; batchSize?: number } = {},
): number {
  const windows = Math.min(Math.floor((ids.length - 1) / blockSize), options.maxWindows ?? Infinity);
  if (windows < 1) throw new RangeError(`perplexity: ${ids.length} tokens are too few for one window of ${blockSize} + 1`);
  const batchSize = options.batchSize ?? 8;
  let nll = 0;
  noGrad(() => {
    for (let w0 = 0; w0 < windows; w0 += batchSize) {
      const n = Math.min(batchSize, windows - w0);
      const x = new Int32Array(n * blockSize);
      const y = new Int32Array(n * blockSize);
      for (let r = 0; r < n; r++) {
        const s = (w0 + r) * blockSize;
        x.set(ids.subarray(s, s + blockSize), r * blockSize);
        y.set(ids.subarray(s + 1, s + 1 + blockSize), r * blockSize);
      }
      const { logits, loss } = model.forward(Tensor.fromArray(x, [n, blockSize], 'i32'), Tensor.fromArray(y, [n, blockSize], 'i32'));
      if (loss === null) throw new Error('perplexity: the model returned no loss for forward(ids, targets)');
      nll += loss.item() * n;
      logits.dispose();
      loss.dispose();
    }
  });
  return Math.exp(nll / windows);
}
