/**
 * SmoothQuant (Xiao et al. 2023) and W8A8 linears.
 *
 * Activations of LLMs have a few channels with large magnitudes that per-tensor (or per-token) int8
 * quantization cannot represent together with the rest; weights are easy. SmoothQuant moves the
 * difficulty from activations to weights with a per-input-channel factor
 *     s_j = max|X_j|^α / max|W_j|^(1−α)
 * dividing the preceding norm's weight (so the activations arrive divided by s) and multiplying the
 * Linears' input columns: the f32 function is unchanged. For LLaMA: input_layernorm → q,k,v and
 * post_attention_layernorm → gate,up (the reference's llama recipe).
 *
 * W8A8Linear then runs int8 per-output-channel weights against int8 activations, either quantized
 * per token at run time (dynamic; H-quant's int8Gemm kernel) or with one static per-tensor scale
 * T/127 from calibration (min–max, percentile or KL threshold T): codes clamp(round(x·127/T)).
 * The static path multiplies integer codes held exactly in f32 (|Σ| < 2²⁴ for K ≤ 1040), so it equals
 * an int32-accumulating INT8 GEMM.
 */
import type { Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { Llama } from '../models/llama.js';
import { noGrad } from '../tensor/autograd.js';
import { linear } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { ActivationStats } from './calibrate.js';
import { foldScales } from './awq.js';
import { quantizeMatrix, type QuantizedMatrix } from './quant/formats.js';
import { int8Gemm } from './quant/kernels.js';

/** The smoothing factors for linears sharing an input with per-channel max |x| `actMax`. */
export function smoothingScales(actMax: Float64Array, weights: readonly Linear[], alpha: number): Float64Array {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`smoothingScales: alpha must be in [0, 1], got ${alpha}`);
  const cols = actMax.length;
  const wMax = new Float64Array(cols);
  for (const l of weights) {
    if (l.inFeatures !== cols) throw new RangeError(`smoothingScales: a linear has ${l.inFeatures} inputs, the statistics ${cols}`);
    const w = l.weight.f32();
    for (let r = 0; r < l.outFeatures; r++) for (let c = 0; c < cols; c++) wMax[c] = Math.max(wMax[c]!, Math.abs(w[r * cols + c]!));
  }
  const s = new Float64Array(cols);
  for (let c = 0; c < cols; c++) {
    const v = Math.pow(Math.max(actMax[c]!, 1e-5), alpha) / Math.pow(Math.max(wMax[c]!, 1e-5), 1 - alpha);
    s[c] = Math.max(v, 1e-5);
  }
  return s;
}

/** Smooths a LLaMA in place from its input statistics (keys: the q_proj and gate_proj names). Returns the factors per norm. */
export function smoothLlama(model: Llama, stats: ReadonlyMap<string, ActivationStats>, alpha = 0.5): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  model.model.layers.items.forEach((layer, i) => {
    const p = `model.layers.${i}`;
    const a = layer.self_attn;
    const m = layer.mlp;
    const groups = [
      { norm: `${p}.input_layernorm`, module: layer.input_layernorm, stat: `${p}.self_attn.q_proj`, linears: [[`${p}.self_attn.q_proj`, a.q_proj], [`${p}.self_attn.k_proj`, a.k_proj], [`${p}.self_attn.v_proj`, a.v_proj]] as [string, Linear][] },
      { norm: `${p}.post_attention_layernorm`, module: layer.post_attention_layernorm, stat: `${p}.mlp.gate_proj`, linears: [[`${p}.mlp.gate_proj`, m.gate_proj], [`${p}.mlp.up_proj`, m.up_proj]] as [string, Linear][] },
    ];
    for (const g of groups) {
      const st = stats.get(g.stat);
      if (st === undefined) throw new Error(`smoothLlama: no activation statistics for ${g.stat}; calibrate all linears first`);
      const s = smoothingScales(st.absMax, g.linears.map(([, l]) => l), alpha);
      foldScales({ name: g.norm, kind: 'norm', module: g.module }, g.linears, s);
      out.set(g.norm, s);
    }
  });
  return out;
}

export type ActivationQuant = { kind: 'dynamic' } | { kind: 'static'; threshold: number };

/** y = x Wᵀ + b with int8 weights (per output channel) and int8 activations. Inference only. */
export class W8A8Linear extends Module {
  readonly q: QuantizedMatrix;
  readonly bias: Float32Array | null;
  /** Weight codes as f32 integers, for the static-scale path. */
  private readonly codes: Tensor;

  constructor(
    q: QuantizedMatrix,
    bias: Float32Array | null,
    readonly activation: ActivationQuant,
  ) {
    super();
    if (q.format !== 'int8') throw new RangeError(`W8A8Linear: weights must be int8 per channel, got ${q.format}`);
    if (activation.kind === 'static' && !(activation.threshold > 0)) throw new RangeError(`W8A8Linear: the static threshold must be > 0, got ${activation.threshold}`);
    this.q = q;
    this.bias = bias;
    const c = new Int8Array(q.data.buffer, q.data.byteOffset, q.data.length);
    this.codes = Tensor.fromArray(Float32Array.from(c), [q.rows, q.cols]);
  }

  /** Quantizes a Linear's weights to int8 per output channel. */
  static fromLinear(source: Linear, activation: ActivationQuant): W8A8Linear {
    const q = quantizeMatrix(source.weight.f32(), source.outFeatures, source.inFeatures, 'int8');
    return new W8A8Linear(q, source.bias === null ? null : source.bias.f32().slice(), activation);
  }

  get inFeatures(): number {
    return this.q.cols;
  }

  get outFeatures(): number {
    return this.q.rows;
  }

  forward(x: Tensor): Tensor {
    const k = this.q.cols;
    const n = this.q.rows;
    const m = x.numel / k;
    const shape = [...x.shape.slice(0, -1), n];
    const xd = x.f32('W8A8Linear');
    if (this.activation.kind === 'dynamic') return Tensor.fromArray(int8Gemm(this.q, xd, m, { bias: this.bias }), shape);
    const T = this.activation.threshold;
    const sx = T / 127;
    const xc = new Float32Array(m * k);
    for (let i = 0; i < xc.length; i++) xc[i] = Math.max(-127, Math.min(127, Math.round(xd[i]! / sx)));
    return noGrad(() => {
      const acc = linear(Tensor.fromArray(xc, [m, k]), this.codes);
      const y = acc.f32();
      const ws = this.q.rowScales!;
      const out = new Float32Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] = y[i * n + j]! * sx * ws[j]! + (this.bias === null ? 0 : this.bias[j]!);
      acc.dispose();
      return Tensor.fromArray(out, shape);
    });
  }
}
