/**
 * AWQ (Lin et al. 2023, "Activation-aware Weight Quantization"): the weights that meet large
 * activations matter most, so scale input channel j of a Linear up by s_j before round-to-nearest
 * (and the input down by s_j, folded into the op that produces it), with s = s_x^α, s_x the mean |x|
 * per channel (s normalised by √(max·min) as the reference does). One s serves every linear sharing
 * the input (q/k/v; gate/up), and α ∈ [0, 1) is chosen on a grid by the error of the block those
 * linears feed, as llm-awq's module2inspect: the whole attention (softmax and o_proj included) for
 * q/k/v, the whole SwiGLU MLP for gate/up, the linear itself for o_proj and down_proj. Then the
 * reference's auto_clip: per output row and group, the clipping range max|w|·(1 − i/20), i < 10, with
 * the least output error (q/k skipped: their error passes through the softmax). Symmetric and
 * asymmetric (zero-point: q4_1, q4_g128) formats alike.
 *
 * LLaMA's scalable groups (the reference's llama recipe): input_layernorm → q,k,v;
 * v_proj → o_proj (only without GQA: a shared KV head cannot carry different per-head scales);
 * post_attention_layernorm → gate,up; up_proj → down_proj.
 */
import type { Linear, RMSNorm } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { type Llama, type LlamaAttention, type LlamaMLP, ropeTablesFull } from '../models/llama.js';
import { noGrad } from '../tensor/autograd.js';
import { linear } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';
import { collectLinearInputs } from './calibrate.js';
import { dequantizeMatrix, groupSize, isAsymmetric, quantizeMatrix, type QuantFormat } from './quant/formats.js';

export interface AWQOptions {
  format: QuantFormat;
  /** Grid points for α in [0, 1) (default 20, the reference's n_grid). */
  grid?: number;
  /** Search per-group clipping ranges too (default true). */
  clip?: boolean;
  /** Calibration rows (tokens) used per layer (default 8192: with 2048 the chosen scales fit the calibration text more than the language). */
  maxRows?: number;
  onLayer?: (layer: number, total: number) => void;
}

export interface AWQGroupReport {
  prev: string;
  linears: string[];
  alpha: number;
  /** Output MSE of round-to-nearest without scaling (α = 0) and with the chosen α. */
  errorBefore: number;
  errorAfter: number;
}

/** Round-to-nearest quantize-dequantize of a [rows, cols] matrix in `format`. */
export function fakeQuantize(w: Float32Array, rows: number, cols: number, format: QuantFormat): Float32Array {
  return dequantizeMatrix(quantizeMatrix(w, rows, cols, format));
}

function outputs(x: Tensor, w: Float32Array, rows: number, cols: number): Float32Array {
  return noGrad(() => {
    const y = linear(x, Tensor.fromArray(w, [rows, cols]));
    const out = y.f32().slice();
    y.dispose();
    return out;
  });
}

function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

/**
 * The output of the block a scale group feeds, computed with the given weights of the group's
 * linears (one [rows, cols] matrix each, in the group's order). Scored by MSE against the same with
 * the original weights.
 */
export type BlockOutput = (weights: readonly Float32Array[]) => Float32Array;

/**
 * The best α and its scales for linears sharing input X [n, cols]. Without `block` the error is the
 * sum of the linears' own output MSEs; with it, the MSE of the block's output, each candidate's
 * weights being Q(W·diag(s))·diag(s)⁻¹ (the quantized weights as the unscaled input sees them).
 */
export function searchScales(
  x: Float32Array,
  n: number,
  cols: number,
  weights: readonly { w: Float32Array; rows: number }[],
  format: QuantFormat,
  gridPoints = 20,
  block?: BlockOutput,
): { alpha: number; scales: Float64Array; errorBefore: number; errorAfter: number } {
  const sx = new Float64Array(cols);
  for (let t = 0; t < n; t++) for (let c = 0; c < cols; c++) sx[c]! += Math.abs(x[t * cols + c]!);
  for (let c = 0; c < cols; c++) sx[c] = Math.max(sx[c]! / n, 1e-8);
  if (block !== undefined) return searchScalesOnBlock(sx, cols, weights, format, gridPoints, block);
  const X = Tensor.fromArray(x.subarray(0, n * cols), [n, cols]);
  const ref = weights.map(({ w, rows }) => outputs(X, w, rows, cols));
  let best = { alpha: 0, scales: new Float64Array(cols).fill(1), error: Infinity };
  let errorBefore = Infinity;
  const xs = new Float32Array(n * cols);
  for (let i = 0; i < gridPoints; i++) {
    const alpha = i / gridPoints;
    const s = gridScales(sx, alpha);
    for (let t = 0; t < n; t++) for (let c = 0; c < cols; c++) xs[t * cols + c] = x[t * cols + c]! / s[c]!;
    const Xs = Tensor.fromArray(xs, [n, cols]);
    let err = 0;
    weights.forEach(({ w, rows }, k) => {
      const scaled = new Float32Array(w.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) scaled[r * cols + c] = w[r * cols + c]! * s[c]!;
      err += mse(outputs(Xs, fakeQuantize(scaled, rows, cols, format), rows, cols), ref[k]!);
    });
    if (i === 0) errorBefore = err;
    if (err < best.error) best = { alpha, scales: s, error: err };
  }
  return { alpha: best.alpha, scales: best.scales, errorBefore, errorAfter: best.error };
}

/** s = s_x^α normalised by √(max·min) (llm-awq's auto_scale grid point). */
function gridScales(sx: Float64Array, alpha: number): Float64Array<ArrayBuffer> {
  const s = new Float64Array(sx.length);
  for (let c = 0; c < sx.length; c++) s[c] = Math.pow(sx[c]!, alpha);
  let mx = 0;
  let mn = Infinity;
  for (const v of s) {
    mx = Math.max(mx, v);
    mn = Math.min(mn, v);
  }
  const norm = Math.sqrt(mx * mn);
  for (let c = 0; c < s.length; c++) s[c] = s[c]! / norm;
  return s;
}

function searchScalesOnBlock(
  sx: Float64Array,
  cols: number,
  weights: readonly { w: Float32Array; rows: number }[],
  format: QuantFormat,
  gridPoints: number,
  block: BlockOutput,
): { alpha: number; scales: Float64Array; errorBefore: number; errorAfter: number } {
  const ref = block(weights.map(({ w }) => w));
  let best = { alpha: 0, scales: new Float64Array(cols).fill(1), error: Infinity };
  let errorBefore = Infinity;
  for (let i = 0; i < gridPoints; i++) {
    const alpha = i / gridPoints;
    const s = gridScales(sx, alpha);
    const effective = weights.map(({ w, rows }) => {
      const scaled = new Float32Array(w.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) scaled[r * cols + c] = w[r * cols + c]! * s[c]!;
      const q = fakeQuantize(scaled, rows, cols, format);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) q[r * cols + c] = q[r * cols + c]! / s[c]!;
      return q;
    });
    const err = mse(block(effective), ref);
    if (i === 0) errorBefore = err;
    if (err < best.error) best = { alpha, scales: s, error: err };
  }
  return { alpha: best.alpha, scales: best.scales, errorBefore, errorAfter: best.error };
}

/** Runs `f` with the linears' weights replaced by `weights` (restored afterwards). */
function withWeights<T>(linears: readonly Linear[], weights: readonly Float32Array[], f: () => T): T {
  const saved = linears.map((l) => l.weight.f32().slice());
  try {
    linears.forEach((l, k) => l.weight.f32().set(weights[k]!));
    return noGrad(f);
  } finally {
    linears.forEach((l, k) => l.weight.f32().set(saved[k]!));
  }
}

/** The attention block's output [windows·T, C] for its q/k/v inputs (whole windows of T positions). */
export function attentionBlock(model: Llama, attn: LlamaAttention, x: Float32Array, windows: number, T: number): BlockOutput {
  const c = model.config;
  const C = c.hiddenSize;
  const { cosFull, sinFull } = ropeTablesFull(c, T);
  const X = Tensor.fromArray(x.slice(0, windows * T * C), [windows, T, C]);
  return (weights) =>
    withWeights([attn.q_proj, attn.k_proj, attn.v_proj], weights, () => {
      const y = attn.forward(X, cosFull, sinFull);
      const out = y.f32().slice();
      y.dispose();
      return out;
    });
}

/** The SwiGLU block's output [n, C] for its gate/up inputs. */
export function mlpBlock(mlp: LlamaMLP, x: Float32Array, n: number, cols: number): BlockOutput {
  const X = Tensor.fromArray(x.slice(0, n * cols), [n, cols]);
  return (weights) =>
    withWeights([mlp.gate_proj, mlp.up_proj], weights, () => {
      const y = mlp.forward(X);
      const out = y.f32().slice();
      y.dispose();
      return out;
    });
}

/**
 * AWQ's auto_clip for one Linear: per output row and group of `group` columns, the clipping range
 * ±max|w|·(1 − i/20), i < 10, with the least output error dᵀ H_g d (d = w − Q(clip(w)), H_g = X_gᵀX_g);
 * weights are clamped in place. Zero-point formats also try [min·(1 − i/20), max·(1 − i/20)]: their
 * grid spans the group's own range, which the symmetric clip shrinks on one side only.
 */
export function searchClipping(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number, format: QuantFormat, group: number): void {
  const nGroups = cols / group;
  const asymmetric = isAsymmetric(format);
  for (let gi = 0; gi < nGroups; gi++) {
    const c0 = gi * group;
    // H_g = X_gᵀ X_g over the group's columns.
    const H = new Float64Array(group * group);
    for (let t = 0; t < n; t++) {
      const o = t * cols + c0;
      for (let i = 0; i < group; i++) {
        const xi = x[o + i]!;
        if (xi === 0) continue;
        for (let j = 0; j < group; j++) H[i * group + j]! += xi * x[o + j]!;
      }
    }
    const quadratic = (d: Float32Array): number => {
      let s = 0;
      for (let i = 0; i < group; i++) {
        let hi = 0;
        for (let j = 0; j < group; j++) hi += H[i * group + j]! * d[j]!;
        s += d[i]! * hi;
      }
      return s;
    };
    for (let r = 0; r < rows; r++) {
      const orig = w.slice(r * cols + c0, r * cols + c0 + group);
      let amax = 0;
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of orig) {
        amax = Math.max(amax, Math.abs(v));
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      if (amax === 0) continue;
      let bestErr = Infinity;
      let best: [number, number] = [-amax, amax];
      const diff = new Float32Array(group);
      const consider = (min: number, max: number): void => {
        const clamped = orig.map((v) => Math.max(min, Math.min(max, v)));
        const q = fakeQuantize(clamped, 1, group, format);
        for (let j = 0; j < group; j++) diff[j] = orig[j]! - q[j]!;
        const err = quadratic(diff);
        if (err < bestErr) {
          bestErr = err;
          best = [min, max];
        }
      };
      for (let i = 0; i < 10; i++) {
        const ratio = 1 - i / 20;
        consider(-amax * ratio, amax * ratio);
        // With a zero point the group's range is [min, max], not ±max|w|: shrink both ends too.
        if (asymmetric && i > 0) consider(lo * ratio, hi * ratio);
      }
      for (let j = 0; j < group; j++) w[r * cols + c0 + j] = Math.max(best[0], Math.min(best[1], orig[j]!));
    }
  }
}

interface ScaleGroup {
  prev: { name: string; kind: 'norm'; module: RMSNorm } | { name: string; kind: 'linear'; module: Linear };
  linears: [string, Linear][];
  /** The block whose output scores the group (absent: the linears' own outputs). */
  block?: { kind: 'attention'; module: LlamaAttention } | { kind: 'mlp'; module: LlamaMLP };
}

function llamaGroups(model: Llama): ScaleGroup[] {
  const groups: ScaleGroup[] = [];
  const c = model.config;
  model.model.layers.items.forEach((layer, i) => {
    const p = `model.layers.${i}`;
    const a = layer.self_attn;
    const m = layer.mlp;
    groups.push({
      prev: { name: `${p}.input_layernorm`, kind: 'norm', module: layer.input_layernorm },
      linears: [[`${p}.self_attn.q_proj`, a.q_proj], [`${p}.self_attn.k_proj`, a.k_proj], [`${p}.self_attn.v_proj`, a.v_proj]],
      block: { kind: 'attention', module: a },
    });
    if (c.nKVHead === c.nHead) groups.push({ prev: { name: `${p}.self_attn.v_proj`, kind: 'linear', module: a.v_proj }, linears: [[`${p}.self_attn.o_proj`, a.o_proj]] });
    groups.push({
      prev: { name: `${p}.post_attention_layernorm`, kind: 'norm', module: layer.post_attention_layernorm },
      linears: [[`${p}.mlp.gate_proj`, m.gate_proj], [`${p}.mlp.up_proj`, m.up_proj]],
      block: { kind: 'mlp', module: m },
    });
    groups.push({ prev: { name: `${p}.mlp.up_proj`, kind: 'linear', module: m.up_proj }, linears: [[`${p}.mlp.down_proj`, m.down_proj]] });
  });
  return groups;
}

/** Divides the output channels of `prev` by s and multiplies the input channels of each linear by s (the function is unchanged). */
export function foldScales(prev: ScaleGroup['prev'], linears: readonly (readonly [string, Linear])[], s: Float64Array): void {
  noGrad(() => {
    if (prev.kind === 'norm') {
      const w = prev.module.weight.f32();
      for (let c = 0; c < w.length; c++) w[c] = w[c]! / s[c]!;
    } else {
      const w = prev.module.weight.f32();
      const cols = prev.module.inFeatures;
      for (let r = 0; r < prev.module.outFeatures; r++) for (let c = 0; c < cols; c++) w[r * cols + c] = w[r * cols + c]! / s[r]!;
      const b = prev.module.bias?.f32();
      if (b !== undefined) for (let r = 0; r < b.length; r++) b[r] = b[r]! / s[r]!;
    }
    for (const [, l] of linears) {
      const w = l.weight.f32();
      const cols = l.inFeatures;
      for (let r = 0; r < l.outFeatures; r++) for (let c = 0; c < cols; c++) w[r * cols + c] = w[r * cols + c]! * s[c]!;
    }
  });
}

/**
 * Applies AWQ's scales (and clipping) to a LLaMA's weights in place; the caller then quantizes the
 * Linears with round-to-nearest in `format`. The scaled model computes the same function in f32.
 */
export function awqLlama(model: Llama, batches: readonly Tensor[], options: AWQOptions): AWQGroupReport[] {
  const maxRows = options.maxRows ?? 8192;
  const grid = options.grid ?? 20;
  const reports: AWQGroupReport[] = [];
  const groups = llamaGroups(model);
  const nLayers = model.config.nLayer;
  // Calibration rows come window by window (batches [B, T] flattened), so the attention block sees
  // whole windows of T positions.
  const seqLen = batches[0]?.shape[1] ?? 0;
  for (let layer = 0; layer < nLayers; layer++) {
    const mine = groups.filter((g) => g.linears[0]![0].startsWith(`model.layers.${layer}.`));
    const allLinears = mine.flatMap((g) => g.linears);
    // Inputs of this layer's linears from the model as scaled so far (function-preserving, so they equal the original's).
    const inputs = collectLinearInputs(model as unknown as Module & { forward(ids: Tensor): { logits: Tensor; loss: Tensor | null } }, allLinears, batches, maxRows);
    for (const g of mine) {
      // Layers the format cannot hold stay f32 (quantizeModelWeights skips them): no search for them.
      if (g.linears.some(([, l]) => l.inFeatures % groupSize(options.format, l.inFeatures) !== 0)) continue;
      const first = inputs.get(g.linears[0]![0])!;
      const weights = g.linears.map(([, l]) => ({ w: l.weight.f32().slice(), rows: l.outFeatures }));
      const res = searchScales(first.x, first.rows, first.cols, weights, options.format, grid, blockOf(model, g, first, seqLen));
      foldScales(g.prev, g.linears, res.scales);
      reports.push({ prev: g.prev.name, linears: g.linears.map(([n]) => n), alpha: res.alpha, errorBefore: res.errorBefore, errorAfter: res.errorAfter });
      if (options.clip ?? true) {
        for (const [name, l] of g.linears) {
          // The reference skips q/k: their errors pass through softmax, which the output MSE does not see.
          if (/\.(q_proj|k_proj)$/.test(name)) continue;
          const inp = inputs.get(name)!;
          const xs = new Float32Array(inp.x.length);
          for (let t = 0; t < inp.rows; t++) for (let c = 0; c < inp.cols; c++) xs[t * inp.cols + c] = inp.x[t * inp.cols + c]! / res.scales[c]!;
          noGrad(() => searchClipping(l.weight.f32(), l.outFeatures, l.inFeatures, xs, inp.rows, options.format, groupSize(options.format, l.inFeatures)));
        }
      }
    }
    options.onLayer?.(layer + 1, nLayers);
  }
  return reports;
}

/** The block output that scores group `g` (whole windows for attention), or undefined when it has none. */
function blockOf(model: Llama, g: ScaleGroup, input: { x: Float32Array; rows: number; cols: number }, seqLen: number): BlockOutput | undefined {
  if (g.block === undefined) return undefined;
  if (g.block.kind === 'mlp') return mlpBlock(g.block.module, input.x, input.rows, input.cols);
  const windows = seqLen > 0 ? Math.floor(input.rows / seqLen) : 0;
  return windows > 0 ? attentionBlock(model, g.block.module, input.x, windows, seqLen) : undefined;
}
