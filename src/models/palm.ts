/**
 * A PaLM-style decoder-only language model (Chowdhery et al. 2022, §2 "Model Architecture"):
 *   - parallel layers: y = x + Attention(LN(x)) + MLP(LN(x)), one LayerNorm feeding both branches,
 *   - multi-query attention: H query heads share a single key head and a single value head,
 *   - SwiGLU MLP: down(Swish(x·W_gate) ⊙ x·W_up),
 *   - RoPE on queries and keys (rotate-half pairing: feature i rotates with i + d/2),
 *   - no biases, neither in dense layers nor in LayerNorms,
 *   - shared input/output embeddings (logits = h·Eᵀ).
 * Incremental decoding caches the one key and value head per layer (H times smaller than
 * multi-head attention's cache, the point of MQA) and computes exactly what recomputation does.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../tensor/autograd.js';
import { add, concat, crossEntropy, linear, mul, neg, scaledDotProductAttention, silu } from '../tensor/index.js';
import { defaultGenerator, Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, ModuleList } from '../nn/module.js';
import { Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { normal_ } from '../nn/init.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { loadChecked } from './transformer.js';
import { registerFamily } from './registry.js';
import { type SamplingOptions, checkSamplingOptions, sampleNext } from '../nn/sampling.js';
import { describeZodIssues } from '../io/zod-issues.js';

export interface PaLMGenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  onToken?: (id: number) => void;
}

const positiveInt = z.number().int().positive();

export const PaLMConfigSchema = z
  .object({
    vocabSize: positiveInt,
    /** Maximum sequence length. */
    blockSize: positiveInt,
    nLayer: positiveInt,
    nHead: positiveInt,
    nEmbd: positiveInt,
    /** SwiGLU hidden width (PaLM: 4·d_model). */
    ffnDim: positiveInt,
    ropeTheta: z.number().positive().default(10000),
    layerNormEps: z.number().positive().default(1e-5),
  })
  .strict()
  .refine((c) => c.nEmbd % c.nHead === 0, { message: 'nEmbd must be divisible by nHead' })
  .refine((c) => (c.nEmbd / c.nHead) % 2 === 0, { message: 'the head dimension nEmbd / nHead must be even (RoPE rotates pairs)' });

export type PaLMConfig = z.output<typeof PaLMConfigSchema>;
export type PaLMConfigInput = z.input<typeof PaLMConfigSchema>;

export function parsePaLMConfig(input: unknown): PaLMConfig {
  const r = PaLMConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`PaLM config is invalid: ${issues}`);
  }
  return r.data;
}

/** Targets equal to this are ignored by the loss (as GPT's). */
export const PALM_IGNORE_INDEX = -1;

/** cos and sin tables [T, D] for positions 0 … T − 1: angle(p, i) = p·θ^(−2i/D), repeated for both halves. */
export function ropeTables(length: number, headDim: number, theta: number): { cos: Tensor; sin: Tensor } {
  const half = headDim / 2;
  const t = ropeHalfTables(length, headDim, theta);
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  for (let p = 0; p < length; p++) {
    for (let i = 0; i < half; i++) {
      cos[p * headDim + i] = cos[p * headDim + i + half] = t.cos[p * half + i]!;
      sin[p * headDim + i] = sin[p * headDim + i + half] = t.sin[p * half + i]!;
    }
  }
  return { cos: Tensor.fromArray(cos, [length, headDim]), sin: Tensor.fromArray(sin, [length, headDim]) };
}

/** PaLM's angle(p, i) = p·θ^(−2i/D) as [length, D/2] cos and sin tables (the paged adapter's layout). */
export function ropeHalfTables(length: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(length * half);
  const sin = new Float32Array(length * half);
  for (let p = 0; p < length; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * Math.pow(theta, (-2 * i) / headDim);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁], for x [..., T, D] and tables [T, D]. */
export function applyRope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const D = x.shape[x.ndim - 1]!;
  const half = D / 2;
  const rotated = concat([neg(x.narrow(-1, half, half)), x.narrow(-1, 0, half)], -1);
  return add(mul(x, cos), mul(rotated, sin));
}

/** Cached keys and values of one layer: the single shared head, [B, 1, T, D]. */
export interface MQAKV {
  k: Tensor;
  v: Tensor;
}

export class MultiQueryAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  readonly headDim: number;

  constructor(
    readonly config: PaLMConfig,
    generator: Generator,
  ) {
    super();
    const { nEmbd: C, nHead: H } = config;
    this.headDim = C / H;
    this.q_proj = this.registerModule('q_proj', new Linear(C, C, { generator, bias: false }));
    this.k_proj = this.registerModule('k_proj', new Linear(C, this.headDim, { generator, bias: false }));
    this.v_proj = this.registerModule('v_proj', new Linear(C, this.headDim, { generator, bias: false }));
    this.o_proj = this.registerModule('o_proj', new Linear(C, C, { generator, bias: false }));
  }

  /**
   * h [B, t, C] at positions start … start + t − 1; `past` holds the earlier positions' key/value
   * head (none in training). Returns the output and the key/value head including the new positions.
   */
  forward(h: Tensor, rope: { cos: Tensor; sin: Tensor }, start = 0, past: MQAKV | null = null): { out: Tensor; kv: MQAKV } {
    const [B, t, C] = h.shape as [number, number, number];
    const H = this.config.nHead;
    const D = this.headDim;
    const cos = rope.cos.narrow(0, start, t);
    const sin = rope.sin.narrow(0, start, t);
    const q = applyRope(this.q_proj.forward(h).reshape([B, t, H, D]).permute([0, 2, 1, 3]), cos, sin);
    const kNew = applyRope(this.k_proj.forward(h).reshape([B, 1, t, D]), cos, sin);
    const vNew = this.v_proj.forward(h).reshape([B, 1, t, D]);
    const kv = past === null ? { k: kNew, v: vNew } : { k: concat([past.k, kNew], 2), v: concat([past.v, vNew], 2) };
    const Tk = kv.k.shape[2]!;
    // Every query head reads the same key/value head (a stride-0 broadcast, no copy).
    const y = scaledDotProductAttention(q, kv.k.expand([B, H, Tk, D]), kv.v.expand([B, H, Tk, D]), { causal: true });
    return { out: this.o_proj.forward(y.permute([0, 2, 1, 3]).reshape([B, t, C])), kv };
  }
}

/** SwiGLU (Shazeer 2020): down(Swish(x·W_gate) ⊙ x·W_up). */
export class SwiGLU extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;

  constructor(C: number, hidden: number, generator: Generator) {
    super();
    this.gate_proj = this.registerModule('gate_proj', new Linear(C, hidden, { generator, bias: false }));
    this.up_proj = this.registerModule('up_proj', new Linear(C, hidden, { generator, bias: false }));
    this.down_proj = this.registerModule('down_proj', new Linear(hidden, C, { generator, bias: false }));
  }

  forward(x: Tensor): Tensor {
    return this.down_proj.forward(mul(silu(this.gate_proj.forward(x)), this.up_proj.forward(x)));
  }
}

/** The parallel block: x + Attention(LN(x)) + MLP(LN(x)). */
export class PaLMBlock extends Module {
  readonly norm: LayerNorm;
  readonly attn: MultiQueryAttention;
  readonly mlp: SwiGLU;

  constructor(config: PaLMConfig, generator: Generator) {
    super();
    this.norm = this.registerModule('norm', new LayerNorm(config.nEmbd, { eps: config.layerNormEps, bias: false }));
    this.attn = this.registerModule('attn', new MultiQueryAttention(config, generator));
    this.mlp = this.registerModule('mlp', new SwiGLU(config.nEmbd, config.ffnDim, generator));
  }

  forward(x: Tensor, rope: { cos: Tensor; sin: Tensor }, start = 0, past: MQAKV | null = null): { out: Tensor; kv: MQAKV } {
    const h = this.norm.forward(x);
    const a = this.attn.forward(h, rope, start, past);
    return { out: add(add(x, a.out), this.mlp.forward(h)), kv: a.kv };
  }
}

/** Incremental decoding state: one key/value head per layer. */
export interface PaLMCache {
  layers: (MQAKV | null)[];
  length: number;
}

export interface PaLMOptions {
  generator?: Generator;
}

export class PaLM extends Module {
  readonly config: PaLMConfig;
  readonly embed: Embedding;
  readonly layers: ModuleList<PaLMBlock>;
  readonly norm: LayerNorm;
  private readonly rope: { cos: Tensor; sin: Tensor };

  constructor(config: PaLMConfigInput, options: PaLMOptions = {}) {
    super();
    const c = (this.config = parsePaLMConfig(config));
    const generator = options.generator ?? defaultGenerator;
    this.embed = this.registerModule('embed', new Embedding(c.vocabSize, c.nEmbd, { generator, std: 0.02 }));
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: c.nLayer }, () => new PaLMBlock(c, generator))));
    this.norm = this.registerModule('norm', new LayerNorm(c.nEmbd, { eps: c.layerNormEps, bias: false }));
    // Small dense init (std 0.02; output projections scaled down by depth, as GPT-2) keeps the tied
    // logits and the two summed residual branches of each parallel block small at the start.
    for (const [name, p] of this.namedParameters()) {
      if (p.ndim === 2 && !name.startsWith('embed')) {
        const std = /o_proj|down_proj/.test(name) ? 0.02 / Math.sqrt(2 * c.nLayer) : 0.02;
        noGrad(() => normal_(p, 0, std, generator));
      }
    }
    this.rope = ropeTables(c.blockSize, c.nEmbd / c.nHead, c.ropeTheta);
  }

  get contextLength(): number {
    return this.config.blockSize;
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  private checkIds(ids: Tensor, what: string, op: string, allowIgnore = false): void {
    if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new TypeError(`${op}: ${what} must be an i32 tensor [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
    const d = ids.i32(op);
    const V = this.config.vocabSize;
    for (let i = 0; i < d.length; i++) {
      const ok = (d[i]! >= 0 && d[i]! < V) || (allowIgnore && d[i] === PALM_IGNORE_INDEX);
      if (!ok) throw new RangeError(`${op}: ${what} value ${d[i]} at flat position ${i} is outside the vocabulary [0, ${V})`);
    }
  }

  private run(ids: Tensor, start: number, cache: PaLMCache | null): Tensor {
    let x = this.embed.forward(ids);
    this.layers.items.forEach((block, i) => {
      const r = block.forward(x, this.rope, start, cache === null ? null : cache.layers[i]!);
      if (cache !== null) cache.layers[i] = r.kv;
      x = r.out;
    });
    return linear(this.norm.forward(x), this.embed.weight);
  }

  /** ids [B, T] → logits [B, T, V]; with targets also the mean cross-entropy (targets −1 ignored). */
  forward(ids: Tensor, targets?: Tensor): { logits: Tensor; loss: Tensor | null } {
    const op = 'PaLM.forward';
    this.checkIds(ids, 'ids', op);
    if (ids.shape[1]! > this.config.blockSize) throw new RangeError(`${op}: sequence length ${ids.shape[1]} exceeds blockSize ${this.config.blockSize}; crop the input`);
    const logits = this.run(ids, 0, null);
    if (targets === undefined) return { logits, loss: null };
    this.checkIds(targets, 'targets', op, true);
    if (targets.shape[0] !== ids.shape[0] || targets.shape[1] !== ids.shape[1]) {
      throw new RangeError(`${op}: targets ${formatShape(targets.shape)} must match ids ${formatShape(ids.shape)}`);
    }
    return { logits, loss: crossEntropy(logits, targets, { ignoreIndex: PALM_IGNORE_INDEX }) };
  }

  logits(ids: Tensor): Tensor {
    return this.forward(ids).logits;
  }

  newCache(): PaLMCache {
    return { layers: this.layers.items.map(() => null), length: 0 };
  }

  /** New tokens ids [B, t] at positions cache.length …; appends their keys/values; logits [B, t, V]. */
  forwardCached(ids: Tensor, cache: PaLMCache): Tensor {
    const op = 'PaLM.forwardCached';
    this.checkIds(ids, 'ids', op);
    const t = ids.shape[1]!;
    if (cache.length + t > this.config.blockSize) {
      throw new RangeError(`${op}: ${cache.length} cached + ${t} new tokens exceed blockSize ${this.config.blockSize}; crop the context`);
    }
    return noGrad(() => {
      const logits = this.run(ids, cache.length, cache);
      cache.length += t;
      return logits;
    });
  }

  /** Greedy continuation of one prompt [1, T] by up to maxNewTokens ids (the generated ids only). */
  generateGreedy(prompt: Tensor, maxNewTokens: number): number[] {
    return this.generate(Array.from(prompt.i32('PaLM.generateGreedy')), { maxNewTokens, temperature: 0 });
  }

  /**
   * Continues one prompt with the KV cache: greedy at temperature 0, else sampled (top-k / top-p)
   * from a seeded generator. Stops at blockSize tokens in all. Returns the generated ids only.
   */
  generate(prompt: readonly number[], options: PaLMGenerateOptions): number[] {
    const op = 'PaLM.generate';
    checkSamplingOptions(options, op);
    if (prompt.length === 0) throw new RangeError(`${op}: the prompt is empty; give at least one token id`);
    const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= this.config.vocabSize);
    if (bad !== undefined) throw new RangeError(`${op}: prompt token ${bad} is outside the vocabulary [0, ${this.config.vocabSize})`);
    const V = this.config.vocabSize;
    const generator = options.seed !== undefined ? new Generator(options.seed) : defaultGenerator;
    const sampling: SamplingOptions = { temperature: options.temperature ?? 1, topK: options.topK, topP: options.topP };
    const cache = this.newCache();
    const out: number[] = [];
    let feed = [...prompt];
    for (let s = 0; s < options.maxNewTokens && cache.length + feed.length <= this.config.blockSize; s++) {
      const logits = this.forwardCached(Tensor.fromArray(Int32Array.from(feed), [1, feed.length], 'i32'), cache).f32(op);
      const next = sampleNext(logits.subarray((feed.length - 1) * V, feed.length * V), sampling, generator);
      out.push(next);
      options.onToken?.(next);
      feed = [next];
    }
    return out;
  }

  async savePretrained(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const sd = this.stateDict();
    await saveSafetensors(join(dir, 'model.safetensors'), new Map([...sd.entries()].sort(([a], [b]) => (a < b ? -1 : 1))), { format: 'pt' });
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ model_type: 'weft-palm', architectures: ['WeftPaLM'], weft_config: this.config }, null, 2) + '\n');
  }

  static async fromPretrained(dir: string, options: PaLMOptions = {}): Promise<PaLM> {
    const path = join(dir, 'config.json');
    const json = JSON.parse(await readFile(path, 'utf8')) as { model_type?: unknown; weft_config?: unknown };
    if (json.model_type !== 'weft-palm') throw new Error(`PaLM.fromPretrained: ${path}: model_type is '${String(json.model_type)}', expected 'weft-palm'`);
    const model = new PaLM(parsePaLMConfig(json.weft_config), options);
    const { tensors } = await loadSafetensors(join(dir, 'model.safetensors'));
    loadChecked(model, tensors, join(dir, 'model.safetensors'), 'PaLM.fromPretrained');
    return model;
  }
}

registerFamily({ modelTypes: ['weft-palm'], fromPretrained: (dir) => PaLM.fromPretrained(dir) });
