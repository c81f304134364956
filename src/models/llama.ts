/**
 * LLaMA (Touvron et al. 2023) and its Qwen2 variant, as Hugging Face transformers implements them
 * (LlamaForCausalLM / Qwen2ForCausalLM): pre-norm decoder blocks with RMSNorm, rotary position
 * embeddings in HF's rotate-half convention (dimension i pairs with i + d/2), grouped-query attention,
 * a SwiGLU feed-forward and no biases — except Qwen2's biases on the q/k/v projections.
 *
 * Parameter names are HF's (model.embed_tokens, model.layers.N.self_attn.{q,k,v,o}_proj, …), so
 * savePretrained writes a directory transformers loads, and fromPretrained reads HF checkpoints.
 * llama2.c (.bin) and GGUF checkpoints load through fromLlama2c / fromGGUF; both store q/k rows in
 * Meta's interleaved rotary layout, which is permuted into rotate-half order on load.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../tensor/autograd.js';
import { getBackend } from '../tensor/backend/index.js';
import type { AttentionParams } from '../tensor/backend/backend.js';
import { add, concat, crossEntropy, linear, mul, neg, scaledDotProductAttention, silu } from '../tensor/index.js';
import { defaultGenerator, Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, ModuleList } from '../nn/module.js';
import { Embedding, Linear, RMSNorm, swigluInference } from '../nn/layers.js';
import { normal_, withoutInit } from '../nn/init.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights, saveSafetensors } from '../io/safetensors.js';
import { type SamplingOptions, checkSamplingOptions, sampleNext } from '../nn/sampling.js';
import { KVCache } from '../nn/kv-cache.js';
import { pagedAddon, pagedAttention } from '../nn/paged-attention.js';
import { registerFamily } from './registry.js';
import { describeZodIssues } from '../io/zod-issues.js';

// -----------------------------------------------------------------------------------------------
// Configuration
// -----------------------------------------------------------------------------------------------

const positiveInt = z.number().int().positive();

const RopeScalingSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('linear'), factor: z.number().positive() }).strict(),
  z.object({ type: z.literal('dynamic'), factor: z.number().positive() }).strict(),
  z
    .object({
      type: z.literal('llama3'),
      factor: z.number().positive(),
      lowFreqFactor: z.number().positive(),
      highFreqFactor: z.number().positive(),
      originalMaxPositionEmbeddings: positiveInt,
    })
    .strict(),
]);
export type RopeScaling = z.output<typeof RopeScalingSchema>;

export const LlamaConfigSchema = z
  .object({
    /** 'qwen2' adds biases to q/k/v (and is saved as a Qwen2 directory). */
    modelType: z.enum(['llama', 'qwen2']).default('llama'),
    vocabSize: positiveInt,
    hiddenSize: positiveInt,
    intermediateSize: positiveInt,
    nLayer: positiveInt,
    nHead: positiveInt,
    /** Key/value heads (grouped-query attention); nHead when absent (multi-head attention). */
    nKVHead: positiveInt.optional(),
    /** Per-head width; hiddenSize / nHead when absent. */
    headDim: positiveInt.optional(),
    /** Context length (HF max_position_embeddings). */
    maxPositionEmbeddings: positiveInt,
    rmsNormEps: z.number().positive().default(1e-6),
    ropeTheta: z.number().positive().default(10000),
    ropeScaling: RopeScalingSchema.nullable().default(null),
    tieWordEmbeddings: z.boolean().default(false),
    /** Biases on q/k/v (Qwen2: always). */
    qkvBias: z.boolean().default(false),
    /** Bias on o_proj (LLaMA's attention_bias sets both). */
    oBias: z.boolean().default(false),
    mlpBias: z.boolean().default(false),
    /** Std of the normal initialisation (HF initializer_range). */
    initializerRange: z.number().positive().default(0.02),
  })
  .strict();

export type LlamaConfigInput = z.input<typeof LlamaConfigSchema>;
export type LlamaConfig = Omit<z.output<typeof LlamaConfigSchema>, 'nKVHead' | 'headDim'> & { nKVHead: number; headDim: number };

export function parseLlamaConfig(input: unknown): LlamaConfig {
  const r = LlamaConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`LLaMA config is invalid: ${issues}`);
  }
  const c = r.data;
  const nKVHead = c.nKVHead ?? c.nHead;
  if (c.headDim === undefined && c.hiddenSize % c.nHead !== 0) {
    throw new RangeError(`LLaMA config is invalid: hiddenSize ${c.hiddenSize} is not divisible by nHead ${c.nHead} (give headDim)`);
  }
  const headDim = c.headDim ?? c.hiddenSize / c.nHead;
  if (c.nHead % nKVHead !== 0) throw new RangeError(`LLaMA config is invalid: nHead ${c.nHead} is not a multiple of nKVHead ${nKVHead}`);
  if (headDim % 2 !== 0) throw new RangeError(`LLaMA config is invalid: headDim ${headDim} must be even for rotary embeddings`);
  if (c.modelType === 'qwen2' && !c.qkvBias) throw new RangeError('LLaMA config is invalid: Qwen2 has q/k/v biases (qkvBias must be true)');
  return { ...c, nKVHead, headDim };
}

/** The config.json fields LLaMA reads (Mixtral's schema extends it). */
export const HFLlamaSchema = z
  .object({
    model_type: z.string().optional(),
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    intermediate_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt.nullable().optional(),
    head_dim: positiveInt.nullable().optional(),
    max_position_embeddings: positiveInt,
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: z.record(z.string(), z.unknown()).nullable().optional(),
    tie_word_embeddings: z.boolean().default(false),
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
    hidden_act: z.string().default('silu'),
    initializer_range: z.number().positive().default(0.02),
    use_sliding_window: z.boolean().default(false),
    partial_rotary_factor: z.number().optional(),
  })
  .loose();

function ropeScalingFromHF(raw: Record<string, unknown> | null | undefined): RopeScaling | null {
  if (raw === null || raw === undefined) return null;
  const type = (raw.rope_type ?? raw.type) as unknown;
  const factor = raw.factor as number;
  if (type === 'default') return null;
  if (type === 'linear' || type === 'dynamic') return RopeScalingSchema.parse({ type, factor });
  if (type === 'llama3') {
    return RopeScalingSchema.parse({
      type,
      factor,
      lowFreqFactor: raw.low_freq_factor,
      highFreqFactor: raw.high_freq_factor,
      originalMaxPositionEmbeddings: raw.original_max_position_embeddings,
    });
  }
  throw new RangeError(`config.json: rope_scaling type ${JSON.stringify(type)} is not supported (supported: linear, dynamic, llama3)`);
}

/** Reads an HF LLaMA / Qwen2 config.json; refuses what this model cannot compute exactly. */
export function llamaConfigFromHF(json: unknown): LlamaConfig {
  const r = HFLlamaSchema.safeParse(json);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`config.json is not a LLaMA/Qwen2 config: ${issues}`);
  }
  const h = r.data;
  const type = h.model_type ?? 'llama';
  if (type !== 'llama' && type !== 'qwen2') throw new RangeError(`config.json: model_type '${type}' is not a LLaMA family type (llama, qwen2)`);
  if (h.hidden_act !== 'silu') throw new RangeError(`config.json: hidden_act '${h.hidden_act}' is not supported (LLaMA uses silu)`);
  if (h.use_sliding_window) throw new RangeError('config.json: use_sliding_window=true is not supported');
  if (h.partial_rotary_factor !== undefined && h.partial_rotary_factor !== 1) {
    throw new RangeError(`config.json: partial_rotary_factor ${h.partial_rotary_factor} is not supported`);
  }
  return parseLlamaConfig({
    modelType: type,
    vocabSize: h.vocab_size,
    hiddenSize: h.hidden_size,
    intermediateSize: h.intermediate_size,
    nLayer: h.num_hidden_layers,
    nHead: h.num_attention_heads,
    nKVHead: h.num_key_value_heads ?? undefined,
    headDim: h.head_dim ?? undefined,
    maxPositionEmbeddings: h.max_position_embeddings,
    rmsNormEps: h.rms_norm_eps,
    ropeTheta: h.rope_theta,
    ropeScaling: ropeScalingFromHF(h.rope_scaling),
    tieWordEmbeddings: h.tie_word_embeddings,
    qkvBias: type === 'qwen2' ? true : h.attention_bias,
    oBias: type === 'qwen2' ? false : h.attention_bias,
    mlpBias: type === 'qwen2' ? false : h.mlp_bias,
    initializerRange: h.initializer_range,
  });
}

function ropeScalingToHF(s: RopeScaling | null): Record<string, unknown> | null {
  if (s === null) return null;
  if (s.type === 'llama3') {
    return {
      rope_type: 'llama3',
      factor: s.factor,
      low_freq_factor: s.lowFreqFactor,
      high_freq_factor: s.highFreqFactor,
      original_max_position_embeddings: s.originalMaxPositionEmbeddings,
    };
  }
  return { type: s.type, factor: s.factor };
}

export function llamaConfigToHF(c: LlamaConfig): Record<string, unknown> {
  if (c.modelType === 'qwen2' && (c.oBias || c.mlpBias)) throw new RangeError('savePretrained: Qwen2 has no o_proj or MLP biases');
  if (c.modelType === 'llama' && c.qkvBias !== c.oBias) {
    throw new RangeError('savePretrained: HF LLaMA has one attention_bias flag; q/k/v and o biases must agree');
  }
  const common = {
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nKVHead,
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingToHF(c.ropeScaling),
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_act: 'silu',
    initializer_range: c.initializerRange,
    attention_dropout: 0,
    use_cache: true,
    torch_dtype: 'float32',
  };
  if (c.modelType === 'qwen2') {
    if (c.headDim * c.nHead !== c.hiddenSize) throw new RangeError('savePretrained: Qwen2 requires headDim · nHead = hiddenSize');
    return { model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], ...common, use_sliding_window: false, sliding_window: null, max_window_layers: c.nLayer };
  }
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    ...common,
    head_dim: c.headDim,
    attention_bias: c.qkvBias,
    mlp_bias: c.mlpBias,
    pretraining_tp: 1,
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

// -----------------------------------------------------------------------------------------------
// Rotary position embeddings (HF rotate-half)
// -----------------------------------------------------------------------------------------------

/**
 * Inverse frequencies θ^(−2j/d), j < d/2, in float32 arithmetic as transformers computes them, with
 * the configured scaling. `seqLen` (positions seen so far) matters only for dynamic NTK scaling.
 */
export function ropeInvFreq(c: LlamaConfig, seqLen: number): Float32Array {
  const D = c.headDim;
  const half = D / 2;
  let base = c.ropeTheta;
  const s = c.ropeScaling;
  if (s?.type === 'dynamic' && seqLen > c.maxPositionEmbeddings) {
    base = base * Math.pow((s.factor * seqLen) / c.maxPositionEmbeddings - (s.factor - 1), D / (D - 2));
  }
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) inv[j] = 1 / Math.fround(Math.pow(base, Math.fround((2 * j) / D)));
  if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let j = 0; j < half; j++) {
      const f = inv[j]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) inv[j] = f / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[j] = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
  }
  return inv;
}

/** cos and sin tables [t, headDim/2] for positions start … start + t − 1. */
export function ropeTables(c: LlamaConfig, start: number, t: number): { cos: Float32Array; sin: Float32Array } {
  const half = c.headDim / 2;
  const inv = ropeInvFreq(c, start + t);
  const scale = c.ropeScaling?.type === 'linear' ? c.ropeScaling.factor : 1;
  const cos = new Float32Array(t * half);
  const sin = new Float32Array(t * half);
  for (let p = 0; p < t; p++) {
    const pos = Math.fround((start + p) / scale);
    for (let j = 0; j < half; j++) {
      const angle = Math.fround(pos * inv[j]!);
      cos[p * half + j] = Math.cos(angle);
      sin[p * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** The rotary tables for positions 0 … T−1 as [T, D] tensors: each [T, half] row duplicated (HF's cat(freqs, freqs)). */
export function ropeTablesFull(c: LlamaConfig, T: number): { cosFull: Tensor; sinFull: Tensor } {
  const { cos, sin } = ropeTables(c, 0, T);
  const half = c.headDim / 2;
  const full = (a: Float32Array): Tensor => {
    const t = Tensor.fromArray(a, [T, half]);
    return concat([t, t], 1);
  };
  return { cosFull: full(cos), sinFull: full(sin) };
}

/** x·cos + rotate_half(x)·sin for x [B, H, T, D] (autograd ops; the training path). */
function applyRotary(x: Tensor, cosFull: Tensor, sinFull: Tensor): Tensor {
  const D = x.shape[3]!;
  const half = D / 2;
  const rotated = concat([neg(x.narrow(3, half, half)), x.narrow(3, 0, half)], 3);
  return add(mul(x, cosFull), mul(rotated, sinFull));
}

/** One sequence, one block: a whole per-layer decode cache as paged attention sees it. */
const ONE_BLOCK = Int32Array.of(0);
const ONE_SEQ = Int32Array.of(0, 1);

/** In-place rotate-half rotary on one head vector of width 2·half at row `p` of the tables. */
function rotateInPlace(v: Float32Array, at: number, half: number, cos: Float32Array, sin: Float32Array, p: number): void {
  const t0 = p * half;
  for (let j = 0; j < half; j++) {
    const x1 = v[at + j]!;
    const x2 = v[at + j + half]!;
    const c = cos[t0 + j]!;
    const s = sin[t0 + j]!;
    v[at + j] = x1 * c - x2 * s;
    v[at + j + half] = x2 * c + x1 * s;
  }
}

// -----------------------------------------------------------------------------------------------
// Modules
// -----------------------------------------------------------------------------------------------

function initLinear(inF: number, outF: number, bias: boolean, std: number, g: Generator): Linear {
  const l = new Linear(inF, outF, { bias, generator: g });
  noGrad(() => {
    normal_(l.weight, 0, std, g);
    if (l.bias !== null) l.bias.f32('init').fill(0);
  });
  return l;
}

export class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;

  constructor(
    readonly config: LlamaConfig,
    g: Generator,
  ) {
    super();
    const { hiddenSize: C, nHead: H, nKVHead: KV, headDim: D, initializerRange: std } = config;
    this.q_proj = this.registerModule('q_proj', initLinear(C, H * D, config.qkvBias, std, g));
    this.k_proj = this.registerModule('k_proj', initLinear(C, KV * D, config.qkvBias, std, g));
    this.v_proj = this.registerModule('v_proj', initLinear(C, KV * D, config.qkvBias, std, g));
    this.o_proj = this.registerModule('o_proj', initLinear(H * D, C, config.oBias, std, g));
  }

  /** x [B, T, C] at positions 0 … T − 1 → [B, T, C], causal, with autograd. */
  forward(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const [B, T] = x.shape as [number, number, number];
    const { nHead: H, nKVHead: KV, headDim: D } = this.config;
    const heads = (t: Tensor, n: number): Tensor => t.reshape([B, T, n, D]).transpose(1, 2);
    const q = applyRotary(heads(this.q_proj.forward(x), H), cos, sin);
    let k = applyRotary(heads(this.k_proj.forward(x), KV), cos, sin);
    let v = heads(this.v_proj.forward(x), KV);
    if (KV !== H) {
      // Grouped-query attention: each key/value head serves H/KV consecutive query heads (HF repeat_kv).
      const rep = H / KV;
      k = k.unsqueeze(2).expand([B, KV, rep, T, D]).reshape([B, H, T, D]);
      v = v.unsqueeze(2).expand([B, KV, rep, T, D]).reshape([B, H, T, D]);
    }
    const y = scaledDotProductAttention(q, k, v, { causal: true });
    return this.o_proj.forward(y.transpose(1, 2).reshape([B, T, H * D]));
  }

  /**
   * One decode token (batch 1): with t = 1 the projections' [1, 1, n·D] outputs already are the
   * [heads, 1, D] rows the cache takes and the [tokens, heads, D] rows paged attention takes, so they
   * are rotated in place and used as they are, and the layer's cache [1, KV, maxT, D] is one KV block
   * of maxT positions: every head in one native call (a call per head, plus the copies, cost more
   * than the attention itself at short contexts).
   */
  private decodeStep(x: Tensor, cache: KVCache, layer: number, cos: Float32Array, sin: Float32Array): Tensor {
    const { nHead: H, nKVHead: KV, headDim: D } = this.config;
    const op = 'LLaMA.forwardCached';
    const qT = this.q_proj.forward(x);
    const kT = this.k_proj.forward(x);
    const vT = this.v_proj.forward(x);
    const q = qT.f32(op);
    const k = kT.f32(op);
    for (let h = 0; h < H; h++) rotateInPlace(q, h * D, D / 2, cos, sin, 0);
    for (let h = 0; h < KV; h++) rotateInPlace(k, h * D, D / 2, cos, sin, 0);
    cache.write(layer, k, vT.f32(op), 1);
    kT.dispose();
    vT.dispose();
    const y = Tensor.empty([1, 1, H * D]);
    const layout = { tables: ONE_BLOCK, tableOffsets: ONE_SEQ, queryOffsets: ONE_SEQ, starts: Int32Array.of(cache.length) };
    pagedAttention(q, cache.keyData(layer), cache.valueData(layer), { ...layout, heads: H, kvHeads: KV, dim: D, blockSize: cache.maxLength, scale: 1 / Math.sqrt(D) }, y.f32(op));
    qT.dispose();
    const out = this.o_proj.forward(y);
    y.dispose();
    return out;
  }

  /** Inference step against a KV cache (no autograd): x [B, t, C] at positions cache.length …. */
  forwardCached(x: Tensor, cache: KVCache, layer: number, cos: Float32Array, sin: Float32Array): Tensor {
    const [B, t] = x.shape as [number, number, number];
    // The native kernel only: the TypeScript reference is slower than the dense path below.
    if (B === 1 && t === 1 && pagedAddon() !== null) return this.decodeStep(x, cache, layer, cos, sin);
    const { nHead: H, nKVHead: KV, headDim: D } = this.config;
    const half = D / 2;
    const op = 'LLaMA.forwardCached';
    const project = (l: Linear, n: number, rotate: boolean): Float32Array => {
      const y = l.forward(x);
      const src = y.f32(op);
      // [B, t, n, D] → [B, n, t, D], rotating each head vector on the way.
      const out = new Float32Array(B * n * t * D);
      for (let b = 0; b < B; b++) {
        for (let s = 0; s < t; s++) {
          for (let h = 0; h < n; h++) {
            const from = ((b * t + s) * n + h) * D;
            const to = ((b * n + h) * t + s) * D;
            out.set(src.subarray(from, from + D), to);
            if (rotate) rotateInPlace(out, to, half, cos, sin, s);
          }
        }
      }
      y.dispose();
      return out;
    };
    const q = project(this.q_proj, H, true);
    const k = project(this.k_proj, KV, true);
    const v = project(this.v_proj, KV, false);
    cache.write(layer, k, v, t);
    const tk = cache.length + t;
    const keys = cache.keyData(layer);
    const values = cache.valueData(layer);
    const maxT = cache.maxLength;
    const rep = H / KV;
    const yHeads = new Float32Array(B * H * t * D);
    const lse = new Float32Array(t);
    const params: AttentionParams = { batch: 1, heads: 1, tq: t, tk, dim: D, scale: 1 / Math.sqrt(D), causal: true };
    const backend = getBackend();
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const bh = b * H + h;
        const kv0 = (b * KV + Math.floor(h / rep)) * maxT * D;
        backend.attention(
          q.subarray(bh * t * D, (bh + 1) * t * D),
          keys.subarray(kv0, kv0 + tk * D),
          values.subarray(kv0, kv0 + tk * D),
          params,
          yHeads.subarray(bh * t * D, (bh + 1) * t * D),
          lse,
        );
      }
    }
    const y = Tensor.empty([B, t, H * D]);
    const yd = y.storage.data as Float32Array;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let s = 0; s < t; s++) {
          const from = ((b * H + h) * t + s) * D;
          yd.set(yHeads.subarray(from, from + D), ((b * t + s) * H + h) * D);
        }
      }
    }
    const out = this.o_proj.forward(y);
    y.dispose();
    return out;
  }
}

/** SwiGLU feed-forward: down(silu(gate(x)) · up(x)). */
export class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;

  constructor(config: LlamaConfig, g: Generator) {
    super();
    const { hiddenSize: C, intermediateSize: F, mlpBias, initializerRange: std } = config;
    this.gate_proj = this.registerModule('gate_proj', initLinear(C, F, mlpBias, std, g));
    this.up_proj = this.registerModule('up_proj', initLinear(C, F, mlpBias, std, g));
    this.down_proj = this.registerModule('down_proj', initLinear(F, C, mlpBias, std, g));
  }

  forward(x: Tensor): Tensor {
    return this.down_proj.forward(mul(silu(this.gate_proj.forward(x)), this.up_proj.forward(x)));
  }

  /** Inference: intermediates go straight back to the pool. */
  forwardInference(x: Tensor): Tensor {
    return swigluInference(this, x);
  }
}

export class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;

  constructor(config: LlamaConfig, g: Generator) {
    super();
    this.self_attn = this.registerModule('self_attn', new LlamaAttention(config, g));
    this.mlp = this.registerModule('mlp', new LlamaMLP(config, g));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(config.hiddenSize, { eps: config.rmsNormEps }));
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', new RMSNorm(config.hiddenSize, { eps: config.rmsNormEps }));
  }

  forward(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), cos, sin));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }

  forwardCached(x: Tensor, cache: KVCache, layer: number, cos: Float32Array, sin: Float32Array): Tensor {
    return cachedDecoderLayer(this, x, cache, layer, cos, sin, (h) => this.mlp.forwardInference(h));
  }
}

/**
 * One pre-norm decoder layer against a KV cache (no autograd), freeing intermediates as it goes:
 * x + attn(norm1 x), then + ffn(norm2 ·). Shared by LLaMA and Mixtral, whose layers differ only in the
 * feed-forward.
 */
export function cachedDecoderLayer(
  layer: { input_layernorm: RMSNorm; self_attn: LlamaAttention; post_attention_layernorm: RMSNorm },
  x: Tensor,
  cache: KVCache,
  index: number,
  cos: Float32Array,
  sin: Float32Array,
  ffn: (h: Tensor) => Tensor,
): Tensor {
  const n1 = layer.input_layernorm.forward(x);
  const a = layer.self_attn.forwardCached(n1, cache, index, cos, sin);
  n1.dispose();
  const h = add(x, a);
  a.dispose();
  const n2 = layer.post_attention_layernorm.forward(h);
  const m = ffn(n2);
  n2.dispose();
  const out = add(h, m);
  h.dispose();
  m.dispose();
  return out;
}

/** HF's LlamaModel: embeddings, decoder layers, final norm. */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;

  constructor(config: LlamaConfig, g: Generator) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize, { generator: g, std: config.initializerRange }));
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: config.nLayer }, () => new LlamaDecoderLayer(config, g))));
    this.norm = this.registerModule('norm', new RMSNorm(config.hiddenSize, { eps: config.rmsNormEps }));
  }
}

export interface LlamaOptions {
  /** Source of the initial weights (default: the process-wide generator). */
  generator?: Generator;
}

export interface LlamaOutput {
  /** [B, T, vocabSize]. */
  logits: Tensor;
  /** Mean cross-entropy over targets ≠ ignoreIndex (0-d), or null without targets. */
  loss: Tensor | null;
}

export interface LlamaGenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  generator?: Generator;
  /** Stop after generating one of these ids (kept in the output). */
  stopIds?: readonly number[];
  onToken?: (id: number) => void;
}

/** Targets equal to this are ignored by the loss (the same convention as GPT's IGNORE_INDEX). */
export const LLAMA_IGNORE_INDEX = -1;

/** Token ids must be an i32 [B, T] tensor inside the vocabulary (targets may also be the ignore index). */
export function checkIds(ids: Tensor, what: string, vocabSize: number, op: string, allowIgnore: boolean): void {
  if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new TypeError(`${op}: ${what} must be an i32 tensor [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
  const data = ids.i32(op);
  for (let i = 0; i < data.length; i++) {
    const id = data[i]!;
    if (!((id >= 0 && id < vocabSize) || (allowIgnore && id === LLAMA_IGNORE_INDEX))) {
      throw new RangeError(`${op}: ${what} value ${id} at flat position ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

export class Llama extends Module {
  readonly config: LlamaConfig;
  readonly model: LlamaModel;
  /** Null when the head is tied to the token embedding. */
  readonly lm_head: Linear | null;

  constructor(config: LlamaConfigInput | LlamaConfig, options: LlamaOptions = {}) {
    super();
    this.config = parseLlamaConfig(config);
    const g = options.generator ?? defaultGenerator;
    this.model = this.registerModule('model', new LlamaModel(this.config, g));
    this.lm_head = this.config.tieWordEmbeddings
      ? null
      : this.registerModule('lm_head', initLinear(this.config.hiddenSize, this.config.vocabSize, false, this.config.initializerRange, g));
  }

  get contextLength(): number {
    return this.config.maxPositionEmbeddings;
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  private head(h: Tensor): Tensor {
    // Through lm_head's own forward when it exists, so a swapped-in layer (quantized, LoRA) takes part.
    return this.lm_head === null ? linear(h, this.model.embed_tokens.weight) : this.lm_head.forward(h);
  }

  /** ids [B, T] → logits [B, T, V]; with targets [B, T] also the mean cross-entropy (−1 ignored). */
  forward(ids: Tensor, targets?: Tensor): LlamaOutput {
    const op = 'LLaMA.forward';
    const c = this.config;
    checkIds(ids, 'ids', c.vocabSize, op, false);
    const [B, T] = ids.shape as [number, number];
    if (T > c.maxPositionEmbeddings && c.ropeScaling?.type !== 'dynamic') {
      throw new RangeError(`${op}: sequence length ${T} exceeds maxPositionEmbeddings ${c.maxPositionEmbeddings}; crop the input`);
    }
    if (targets !== undefined) {
      checkIds(targets, 'targets', c.vocabSize, op, true);
      if (targets.shape[0] !== B || targets.shape[1] !== T) {
        throw new RangeError(`${op}: targets ${formatShape(targets.shape)} must match ids ${formatShape(ids.shape)}`);
      }
    }
    const logits = this.logitsFromEmbeddings(this.model.embed_tokens.forward(ids));
    const loss = targets === undefined ? null : crossEntropy(logits, targets, { ignoreIndex: LLAMA_IGNORE_INDEX });
    return { logits, loss };
  }

  /** Logits [B, T, V] for input embeddings [B, T, C] at positions 0 … T − 1 (prompt tuning feeds its own). */
  logitsFromEmbeddings(embeds: Tensor): Tensor {
    return this.head(this.hiddenFromEmbeddings(embeds));
  }

  /** LM-head logits of final hidden states [.., C]. */
  headLogits(hidden: Tensor): Tensor {
    return this.head(hidden);
  }

  /** Final hidden states [B, T, C] (after the last RMSNorm) for input embeddings [B, T, C]. */
  hiddenFromEmbeddings(embeds: Tensor): Tensor {
    const c = this.config;
    const T = embeds.shape[1]!;
    if (embeds.ndim !== 3 || embeds.shape[2] !== c.hiddenSize) {
      throw new RangeError(`LLaMA.hiddenFromEmbeddings: embeddings must be [B, T, ${c.hiddenSize}], got ${formatShape(embeds.shape)}`);
    }
    const { cosFull, sinFull } = ropeTablesFull(c, T);
    let x = embeds;
    for (const layer of this.model.layers) x = layer.forward(x, cosFull, sinFull);
    return this.model.norm.forward(x);
  }

  /** Logits [B, T, V] without a graph (the CausalLM interface). */
  logits(ids: Tensor): Tensor {
    return noGrad(() => this.forward(ids).logits);
  }

  /** A KV cache for this model (key/value heads only: GQA keeps it nKVHead wide). */
  newCache(batch = 1, maxLength = this.config.maxPositionEmbeddings): KVCache {
    const c = this.config;
    return new KVCache({ nLayer: c.nLayer, batch, nHead: c.nKVHead, headDim: c.headDim, maxLength });
  }

  /**
   * Inference with a KV cache: ids [B, t] at positions cache.length … cache.length + t − 1; the
   * cache advances by t. Returns logits [B, t, V], or [B, 1, V] with `lastOnly`.
   */
  forwardCached(ids: Tensor, cache: KVCache, options: { lastOnly?: boolean } = {}): Tensor {
    return cachedDecoderForward('LLaMA.forwardCached', this.config, this.model, (h) => this.head(h), ids, cache, options);
  }

  /**
   * Continues `prompt` by up to maxNewTokens tokens (temperature 0: greedy) and returns the new ids
   * only. The prompt and the new tokens must fit the context (maxPositionEmbeddings).
   */
  generate(prompt: readonly number[], options: LlamaGenerateOptions): number[] {
    const op = 'LLaMA.generate';
    const { maxNewTokens } = options;
    checkSamplingOptions(options, op);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new RangeError(`${op}: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
    if (prompt.length === 0) throw new RangeError(`${op}: the prompt is empty; give at least one token id`);
    const ctx = this.config.maxPositionEmbeddings;
    if (prompt.length + maxNewTokens > ctx) {
      throw new RangeError(`${op}: prompt (${prompt.length}) + maxNewTokens (${maxNewTokens}) exceeds the context length ${ctx}`);
    }
    prompt.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new RangeError(`${op}: prompt token ${id} at position ${i} is outside the vocabulary [0, ${this.config.vocabSize})`);
      }
    });
    const generator = options.generator ?? (options.seed !== undefined ? new Generator(options.seed) : defaultGenerator);
    const sampling: SamplingOptions = { temperature: options.temperature ?? 1, topK: options.topK, topP: options.topP };
    const cache = this.newCache(1, Math.max(1, prompt.length + maxNewTokens));
    const out: number[] = [];
    let feed: number[] = [...prompt];
    for (let step = 0; step < maxNewTokens; step++) {
      const logits = this.forwardCached(Tensor.fromArray(Int32Array.from(feed), [1, feed.length], 'i32'), cache, { lastOnly: true });
      const row = logits.f32(op).slice();
      logits.dispose();
      const next = sampleNext(row, sampling, generator);
      out.push(next);
      options.onToken?.(next);
      if (options.stopIds?.includes(next) === true) break;
      feed = [next];
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Hugging Face directories
  // ---------------------------------------------------------------------------------------------

  /** Writes config.json, generation_config.json and model.safetensors (HF layout), each atomically. */
  async savePretrained(dir: string): Promise<void> {
    const hf = llamaConfigToHF(this.config);
    await mkdir(dir, { recursive: true });
    const sd = [...this.stateDict().entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await saveSafetensors(join(dir, 'model.safetensors'), new Map(sd), { format: 'pt' });
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(hf, null, 2) + '\n');
    await writeFileAtomic(join(dir, 'generation_config.json'), JSON.stringify({ _from_model_config: true }, null, 2) + '\n');
  }

  /** Loads config.json + model.safetensors (or a sharded model.safetensors.index.json). */
  static async fromPretrained(dir: string, options: LlamaOptions = {}): Promise<Llama> {
    const op = 'LLaMA.fromPretrained';
    let json: unknown;
    try {
      json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    } catch (e) {
      throw new Error(`${op}: cannot read ${join(dir, 'config.json')}: ${(e as Error).message}`);
    }
    const { tensors, source } = await loadModelWeights(dir);
    // Every parameter comes from the checkpoint: skip drawing initial weights.
    const model = withoutInit(() => new Llama(llamaConfigFromHF(json), options));
    model.loadHFTensors(tensors, source);
    return model;
  }

  /**
   * Copies HF-named tensors in after checking them all: every missing, unexpected or misshapen
   * tensor is named with its expected and found shape, and nothing is written unless all fit.
   */
  loadHFTensors(input: Map<string, Tensor>, source = 'state dict'): void {
    loadLlamaFamilyTensors(this, input, source, 'LLaMA.load', this.lm_head === null);
  }
}

registerFamily({ modelTypes: ['llama', 'qwen2'], fromPretrained: (dir) => Llama.fromPretrained(dir) });

/**
 * Permutes the rows of a q or k projection [nHeads·D, in] from Meta's interleaved rotary layout
 * (llama2.c's run.c and llama.cpp rotate adjacent pairs (2j, 2j+1)) to HF's rotate-half layout
 * (pairs (j, j + D/2)): within each head, new row j = old row 2j, new row j + D/2 = old row 2j + 1.
 * Both rotate pair j by the same frequency θ^(−2j/D), so the permuted model computes the same function.
 */
export function interleavedToRotateHalf(w: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array {
  if (w.length !== nHeads * headDim * cols) {
    throw new RangeError(`interleavedToRotateHalf: ${w.length} values is not [${nHeads}·${headDim}, ${cols}]`);
  }
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      const base = h * headDim;
      out.set(w.subarray((base + 2 * j) * cols, (base + 2 * j + 1) * cols), (base + j) * cols);
      out.set(w.subarray((base + 2 * j + 1) * cols, (base + 2 * j + 2) * cols), (base + j + half) * cols);
    }
  }
  return out;
}

/** The stack of a LLaMA-family causal LM: embeddings, decoder layers that run against a KV cache, final norm. */
interface CachedDecoderStack {
  embed_tokens: Embedding;
  layers: ModuleList<Module & { forwardCached(x: Tensor, cache: KVCache, layer: number, cos: Float32Array, sin: Float32Array): Tensor }>;
  norm: RMSNorm;
}

/**
 * Inference with a KV cache, shared by the LLaMA-family models: ids [B, t] at positions cache.length …
 * cache.length + t − 1; the cache advances by t. Returns logits [B, t, V], or [B, 1, V] with `lastOnly`.
 * `checkPositions` may refuse a total length the model cannot attend over.
 */
export function cachedDecoderForward(
  op: string,
  c: LlamaConfig,
  model: CachedDecoderStack,
  head: (h: Tensor) => Tensor,
  ids: Tensor,
  cache: KVCache,
  options: { lastOnly?: boolean; checkPositions?: (total: number) => void },
): Tensor {
  checkIds(ids, 'ids', c.vocabSize, op, false);
  const [B, t] = ids.shape as [number, number];
  if (cache.nLayer !== c.nLayer || cache.nHead !== c.nKVHead || cache.headDim !== c.headDim || cache.batch !== B) {
    throw new RangeError(
      `${op}: cache shape (layers ${cache.nLayer}, batch ${cache.batch}, heads ${cache.nHead}, headDim ${cache.headDim}) does not fit ` +
        `this model and batch (layers ${c.nLayer}, batch ${B}, kv heads ${c.nKVHead}, headDim ${c.headDim}); use model.newCache()`,
    );
  }
  if (t === 0) throw new RangeError(`${op}: no tokens given`);
  const start = cache.length;
  options.checkPositions?.(start + t);
  if (start + t > cache.maxLength) {
    throw new RangeError(`${op}: KV cache full: ${start} cached + ${t} new tokens > maxLength ${cache.maxLength}; reset the cache or crop the context`);
  }
  return noGrad(() => {
    const { cos, sin } = ropeTables(c, start, t);
    let x = model.embed_tokens.forward(ids);
    model.layers.items.forEach((layer, i) => {
      const next = layer.forwardCached(x, cache, i, cos, sin);
      x.dispose();
      x = next;
    });
    cache.advance(t);
    const last = options.lastOnly === true && t > 1 ? x.narrow(1, t - 1, 1) : x;
    const h = model.norm.forward(last);
    if (last !== x) last.dispose();
    x.dispose();
    const logits = head(h);
    h.dispose();
    return logits;
  });
}

/**
 * Copies HF-named tensors into a LLaMA-family model after checking them all: every missing, unexpected
 * or misshapen tensor is named with its expected and found shape, and nothing is written unless all
 * fit. RoPE inverse-frequency buffers are ignored, and so is a saved head when the head is tied.
 */
export function loadLlamaFamilyTensors(model: Module, input: Map<string, Tensor>, source: string, op: string, tiedHead: boolean): void {
  const own = model.stateDict();
  const problems: string[] = [];
  const missing = [...own.keys()].filter((k) => !input.has(k)).map((k) => `${k} ${formatShape(own.get(k)!.shape)}`);
  if (missing.length > 0) problems.push(`missing tensors: ${missing.join(', ')}`);
  const unexpected: string[] = [];
  for (const name of input.keys()) {
    if (own.has(name) || /\.rotary_emb\.inv_freq$/.test(name)) continue;
    // A tied model's saved head (some exporters write it anyway) must equal the embedding.
    if (name === 'lm_head.weight' && tiedHead) continue;
    unexpected.push(name);
  }
  if (unexpected.length > 0) problems.push(`unexpected tensors: ${unexpected.join(', ')}`);
  for (const [name, target] of own) {
    const t = input.get(name);
    if (t !== undefined && (t.ndim !== target.ndim || t.shape.some((d, i) => d !== target.shape[i]))) {
      problems.push(`${name} has shape ${formatShape(t.shape)}, expected ${formatShape(target.shape)}`);
    }
  }
  if (problems.length > 0) throw new Error(`${op}: ${source} does not fit the config: ${problems.join('; ')}`);
  model.loadStateDict(new Map([...own.keys()].map((k) => [k, input.get(k)!])));
}
