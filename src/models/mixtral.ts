/**
 * Mixtral (Jiang et al. 2024): LLaMA's decoder (RMSNorm, rotary embeddings, grouped-query attention)
 * with every feed-forward replaced by a sparse mixture of SwiGLU experts — a bias-free router, softmax,
 * top-k (2 of 8 in Mixtral 8x7B) renormalised over the chosen experts, dropless routing — as Hugging
 * Face's MixtralForCausalLM implements it, with its tensor names:
 *
 *   model.layers.N.block_sparse_moe.gate.weight           [E, C]
 *   model.layers.N.block_sparse_moe.experts.e.w1.weight   [F, C]  (gate projection)
 *   model.layers.N.block_sparse_moe.experts.e.w3.weight   [F, C]  (up projection)
 *   model.layers.N.block_sparse_moe.experts.e.w2.weight   [C, F]  (down projection)
 *
 * The attention, norms and rotary tables are LLaMA's (llama.ts); the routed layer is nn/moe.ts. With
 * output_router_logits the loss adds router_aux_loss_coef · load_balancing_loss_func over all layers'
 * router logits, as transformers does.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../tensor/autograd.js';
import { add, crossEntropy, linear, mul } from '../tensor/index.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, ModuleList } from '../nn/module.js';
import { Embedding, Linear, RMSNorm } from '../nn/layers.js';
import { normal_ } from '../nn/init.js';
import { KVCache } from '../nn/kv-cache.js';
import { loadBalancingLoss, mergeStats, type MoEStats, SparseMoE, SwiGLUExpert } from '../nn/moe.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights, saveSafetensors } from '../io/safetensors.js';
import { cachedDecoderForward, HFLlamaSchema, cachedDecoderLayer, checkIds, LLAMA_IGNORE_INDEX, LlamaAttention, type LlamaConfig, loadLlamaFamilyTensors, parseLlamaConfig, ropeTablesFull } from './llama.js';
import { registerFamily } from './registry.js';
import { describeZodIssues } from '../io/zod-issues.js';

// -----------------------------------------------------------------------------------------------
// Configuration
// -----------------------------------------------------------------------------------------------

const positiveInt = z.number().int().positive();

const MixtralExtraSchema = z
  .object({
    /** Experts per layer (HF num_local_experts). */
    nExperts: positiveInt,
    /** Experts per token (HF num_experts_per_tok). */
    topK: positiveInt,
    routerAuxLossCoef: z.number().min(0).default(0.001),
    /** Add the load-balancing loss to the training loss (HF output_router_logits). */
    outputRouterLogits: z.boolean().default(false),
    /** Switch jitter on the router input in training (HF router_jitter_noise; applied to the router only). */
    routerJitterNoise: z.number().min(0).lt(1).default(0),
    /** Attention window (HF sliding_window); sequences longer than it are refused, not windowed. */
    slidingWindow: positiveInt.nullable().default(null),
  })
  .strict();

export type MixtralConfig = LlamaConfig & z.output<typeof MixtralExtraSchema>;
export type MixtralConfigInput = Omit<z.input<typeof MixtralExtraSchema>, never> & Record<string, unknown>;

/** Validates a Mixtral config: LLaMA's fields (hiddenSize, nHead, …) plus the MoE fields. */
export function parseMixtralConfig(input: Record<string, unknown>): MixtralConfig {
  const { nExperts, topK, routerAuxLossCoef, outputRouterLogits, routerJitterNoise, slidingWindow, ...llama } = input;
  const r = MixtralExtraSchema.safeParse(
    Object.fromEntries(Object.entries({ nExperts, topK, routerAuxLossCoef, outputRouterLogits, routerJitterNoise, slidingWindow }).filter(([, v]) => v !== undefined)),
  );
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`Mixtral config is invalid: ${issues}`);
  }
  if (r.data.topK > r.data.nExperts) throw new RangeError(`Mixtral config is invalid: topK ${r.data.topK} exceeds nExperts ${r.data.nExperts}`);
  const base = parseLlamaConfig({ ...llama, modelType: 'llama' });
  if (base.qkvBias || base.oBias || base.mlpBias) throw new RangeError('Mixtral config is invalid: Mixtral has no biases');
  return { ...base, ...r.data };
}

/** LLaMA's config.json fields with Mixtral's defaults, plus the MoE ones. */
const HFMixtralSchema = HFLlamaSchema.extend({
  model_type: z.literal('mixtral'),
  rms_norm_eps: z.number().positive().default(1e-5),
  rope_theta: z.number().positive().default(1e6),
  rope_scaling: z.unknown().optional(),
  sliding_window: positiveInt.nullable().optional(),
  num_local_experts: positiveInt.default(8),
  num_experts_per_tok: positiveInt.default(2),
  router_aux_loss_coef: z.number().min(0).default(0.001),
  output_router_logits: z.boolean().default(false),
  router_jitter_noise: z.number().min(0).lt(1).default(0),
});

/** Reads an HF Mixtral config.json; refuses what this model cannot compute exactly. */
export function mixtralConfigFromHF(json: unknown): MixtralConfig {
  const r = HFMixtralSchema.safeParse(json);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`config.json is not a Mixtral config: ${issues}`);
  }
  const h = r.data;
  if (h.hidden_act !== 'silu') throw new RangeError(`config.json: hidden_act '${h.hidden_act}' is not supported (Mixtral uses silu)`);
  if (h.rope_scaling !== undefined && h.rope_scaling !== null) throw new RangeError('config.json: rope_scaling is not supported for Mixtral');
  return parseMixtralConfig({
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
    tieWordEmbeddings: h.tie_word_embeddings,
    initializerRange: h.initializer_range,
    nExperts: h.num_local_experts,
    topK: h.num_experts_per_tok,
    routerAuxLossCoef: h.router_aux_loss_coef,
    outputRouterLogits: h.output_router_logits,
    routerJitterNoise: h.router_jitter_noise,
    slidingWindow: h.sliding_window ?? null,
  });
}

export function mixtralConfigToHF(c: MixtralConfig): Record<string, unknown> {
  if (c.headDim * c.nHead !== c.hiddenSize) throw new RangeError('savePretrained: HF Mixtral requires headDim · nHead = hiddenSize');
  if (c.ropeScaling !== null) throw new RangeError('savePretrained: HF Mixtral has no rope_scaling');
  return {
    model_type: 'mixtral',
    architectures: ['MixtralForCausalLM'],
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nKVHead,
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_act: 'silu',
    initializer_range: c.initializerRange,
    sliding_window: c.slidingWindow,
    num_local_experts: c.nExperts,
    num_experts_per_tok: c.topK,
    router_aux_loss_coef: c.routerAuxLossCoef,
    output_router_logits: c.outputRouterLogits,
    router_jitter_noise: c.routerJitterNoise,
    attention_dropout: 0,
    use_cache: true,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
}

// -----------------------------------------------------------------------------------------------
// Modules
// -----------------------------------------------------------------------------------------------

/** HF's MixtralSparseMoeBlock: dropless, renormalised top-k over SwiGLU experts. */
function sparseMoeBlock(c: MixtralConfig, g: Generator): SparseMoE {
  return new SparseMoE({
    dim: c.hiddenSize,
    nExperts: c.nExperts,
    topK: c.topK,
    normalize: true,
    capacityFactor: null,
    evalCapacityFactor: null,
    jitter: c.routerJitterNoise,
    routerStd: c.initializerRange,
    generator: g,
    makeExpert: () => new SwiGLUExpert(c.hiddenSize, c.intermediateSize, { std: c.initializerRange, generator: g }),
  });
}

export class MixtralDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly block_sparse_moe: SparseMoE;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  /** Router logits [B·T, E] of the last forward. */
  routerLogits: Tensor | null = null;
  /** Routing statistics summed over training forwards since Mixtral.takeMoEStats(). */
  moeStats: MoEStats | null = null;

  constructor(config: MixtralConfig, g: Generator) {
    super();
    this.self_attn = this.registerModule('self_attn', new LlamaAttention(config, g));
    this.block_sparse_moe = this.registerModule('block_sparse_moe', sparseMoeBlock(config, g));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(config.hiddenSize, { eps: config.rmsNormEps }));
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', new RMSNorm(config.hiddenSize, { eps: config.rmsNormEps }));
  }

  forward(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), cos, sin));
    const r = this.block_sparse_moe.route(this.post_attention_layernorm.forward(h));
    this.routerLogits = r.routerLogits;
    if (this.training) this.moeStats = mergeStats(this.moeStats, r.stats);
    return add(h, r.output);
  }

  forwardCached(x: Tensor, cache: KVCache, layer: number, cos: Float32Array, sin: Float32Array): Tensor {
    return cachedDecoderLayer(this, x, cache, layer, cos, sin, (h) => this.block_sparse_moe.forwardInference(h));
  }
}

/** HF's MixtralModel: embeddings, decoder layers, final norm. */
export class MixtralModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<MixtralDecoderLayer>;
  readonly norm: RMSNorm;

  constructor(config: MixtralConfig, g: Generator) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize, { generator: g, std: config.initializerRange }));
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: config.nLayer }, () => new MixtralDecoderLayer(config, g))));
    this.norm = this.registerModule('norm', new RMSNorm(config.hiddenSize, { eps: config.rmsNormEps }));
  }
}

export interface MixtralOptions {
  generator?: Generator;
}

export interface MixtralOutput {
  /** [B, T, vocabSize]. */
  logits: Tensor;
  /** Mean cross-entropy over targets ≠ −1, plus routerAuxLossCoef · auxLoss when outputRouterLogits (0-d), or null without targets. */
  loss: Tensor | null;
  /** HF's load_balancing_loss_func over all layers' router logits (0-d). */
  auxLoss: Tensor;
  /** Per layer, router logits [B·T, E]. */
  routerLogits: Tensor[];
}

export class Mixtral extends Module {
  readonly config: MixtralConfig;
  readonly model: MixtralModel;
  /** Null when the head is tied to the token embedding. */
  readonly lm_head: Linear | null;

  constructor(config: MixtralConfig | Record<string, unknown>, options: MixtralOptions = {}) {
    super();
    this.config = parseMixtralConfig(config as Record<string, unknown>);
    const g = options.generator ?? defaultGenerator;
    this.model = this.registerModule('model', new MixtralModel(this.config, g));
    if (this.config.tieWordEmbeddings) {
      this.lm_head = null;
    } else {
      const head = new Linear(this.config.hiddenSize, this.config.vocabSize, { bias: false, generator: g });
      noGrad(() => normal_(head.weight, 0, this.config.initializerRange, g));
      this.lm_head = this.registerModule('lm_head', head);
    }
  }

  get contextLength(): number {
    return this.config.slidingWindow === null ? this.config.maxPositionEmbeddings : Math.min(this.config.slidingWindow, this.config.maxPositionEmbeddings);
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  private head(h: Tensor): Tensor {
    return linear(h, this.lm_head === null ? this.model.embed_tokens.weight : this.lm_head.weight);
  }

  private checkLength(total: number, op: string): void {
    if (total > this.contextLength) {
      const why = this.config.slidingWindow !== null && this.config.slidingWindow < this.config.maxPositionEmbeddings ? `sliding_window ${this.config.slidingWindow} (windowed attention is not implemented)` : `maxPositionEmbeddings ${this.config.maxPositionEmbeddings}`;
      throw new RangeError(`${op}: ${total} positions exceed ${why}; crop the input`);
    }
  }

  /** ids [B, T] → logits [B, T, V], router logits and the aux loss; with targets also the loss. */
  forward(ids: Tensor, targets?: Tensor): MixtralOutput {
    const op = 'Mixtral.forward';
    const c = this.config;
    checkIds(ids, 'ids', c.vocabSize, op, false);
    const [B, T] = ids.shape as [number, number];
    this.checkLength(T, op);
    if (targets !== undefined) {
      checkIds(targets, 'targets', c.vocabSize, op, true);
      if (targets.shape[0] !== B || targets.shape[1] !== T) throw new RangeError(`${op}: targets ${formatShape(targets.shape)} must match ids ${formatShape(ids.shape)}`);
    }
    const { cosFull, sinFull } = ropeTablesFull(c, T);
    let x = this.model.embed_tokens.forward(ids);
    for (const layer of this.model.layers) x = layer.forward(x, cosFull, sinFull);
    const logits = this.head(this.model.norm.forward(x));
    const routerLogits = this.model.layers.items.map((l) => l.routerLogits!);
    const auxLoss = loadBalancingLoss(routerLogits, c.nExperts, c.topK);
    const ce = targets === undefined ? null : crossEntropy(logits, targets, { ignoreIndex: LLAMA_IGNORE_INDEX });
    const loss = ce === null || !c.outputRouterLogits ? ce : add(ce, mul(auxLoss, c.routerAuxLossCoef));
    return { logits, loss, auxLoss, routerLogits };
  }

  /** Logits [B, T, V] without a graph (the CausalLM interface). */
  logits(ids: Tensor): Tensor {
    return noGrad(() => this.forward(ids).logits);
  }

  /** Per layer: expert load, importance and dropped counts over training forwards since the last call. */
  takeMoEStats(): ({ layer: number } & MoEStats)[] {
    const out: ({ layer: number } & MoEStats)[] = [];
    this.model.layers.items.forEach((l, layer) => {
      if (l.moeStats !== null) out.push({ layer, ...l.moeStats });
      l.moeStats = null;
    });
    return out;
  }

  newCache(batch = 1, maxLength = this.contextLength): KVCache {
    const c = this.config;
    return new KVCache({ nLayer: c.nLayer, batch, nHead: c.nKVHead, headDim: c.headDim, maxLength });
  }

  /** Inference with a KV cache (ids [B, t] at positions cache.length …); logits [B, t, V], or [B, 1, V] with lastOnly. */
  forwardCached(ids: Tensor, cache: KVCache, options: { lastOnly?: boolean } = {}): Tensor {
    const op = 'Mixtral.forwardCached';
    return cachedDecoderForward(op, this.config, this.model, (h) => this.head(h), ids, cache, { ...options, checkPositions: (total) => this.checkLength(total, op) });
  }

  // ---------------------------------------------------------------------------------------------
  // Hugging Face directories
  // ---------------------------------------------------------------------------------------------

  /** Writes config.json, generation_config.json and model.safetensors (HF Mixtral layout), each atomically. */
  async savePretrained(dir: string): Promise<void> {
    const hf = mixtralConfigToHF(this.config);
    await mkdir(dir, { recursive: true });
    const sd = [...this.stateDict().entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await saveSafetensors(join(dir, 'model.safetensors'), new Map(sd), { format: 'pt' });
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(hf, null, 2) + '\n');
    await writeFileAtomic(join(dir, 'generation_config.json'), JSON.stringify({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2 }, null, 2) + '\n');
  }

  /** Loads config.json + model.safetensors (or a sharded index) of a MixtralForCausalLM directory. */
  static async fromPretrained(dir: string, options: MixtralOptions = {}): Promise<Mixtral> {
    const op = 'Mixtral.fromPretrained';
    let json: unknown;
    try {
      json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    } catch (e) {
      throw new Error(`${op}: cannot read ${join(dir, 'config.json')}: ${(e as Error).message}`);
    }
    const model = new Mixtral(mixtralConfigFromHF(json), options);
    const { tensors, source } = await loadModelWeights(dir);
    model.loadHFTensors(tensors, source);
    return model;
  }

  /** Copies HF-named tensors in after checking them all; nothing is written unless everything fits. */
  loadHFTensors(input: Map<string, Tensor>, source = 'state dict'): void {
    loadLlamaFamilyTensors(this, input, source, 'Mixtral.load', this.lm_head === null);
  }
}

registerFamily({ modelTypes: ['mixtral'], fromPretrained: (dir) => Mixtral.fromPretrained(dir) });
