/**
 * T5 (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
 * Transformer"), with Hugging Face's T5ForConditionalGeneration tensor names and config.json, so
 * `savePretrained` writes a directory transformers loads and `fromPretrained` reads HF checkpoints.
 *
 * Read top to bottom like the paper:
 *   - relative position bias: key−query offsets fall into log-spaced buckets (bidirectional in the
 *     encoder, causal in the decoder); each bucket has a learned scalar per head, owned by the first
 *     layer of each stack and added to every layer's attention scores;
 *   - attention has no 1/√d scaling (it is folded into the initialisation) and no biases;
 *   - T5LayerNorm: RMS scaling only (no mean subtraction, no bias), pre-norm residual blocks;
 *   - feed-forward: ReLU (v1.0) or gated GELU (v1.1: gelu(x·wi_0) ⊙ x·wi_1);
 *   - the decoder cross-attends to the encoder output; the LM head is tied to the shared embedding
 *     (v1.0, with the d_model^-½ rescale) or separate (v1.1).
 */
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../tensor/autograd.js';
import { add, concat, crossEntropy, embedding, gelu, linear, matmul, mul, relu, softmax } from '../tensor/index.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, ModuleList } from '../nn/module.js';
import { Dropout, Embedding, Linear, RMSNorm } from '../nn/layers.js';
import { normal_ } from '../nn/init.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights, saveSafetensors } from '../io/safetensors.js';
import { KVCache } from '../nn/kv-cache.js';
import { registerFamily } from './registry.js';
import { describeZodIssues } from '../io/zod-issues.js';

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

const positiveInt = z.number().int().positive();

export const T5ConfigSchema = z
  .object({
    vocabSize: positiveInt,
    dModel: positiveInt,
    /** Size of each head's key/value (independent of dModel / numHeads in T5). */
    dKv: positiveInt,
    dFf: positiveInt,
    numLayers: positiveInt,
    /** Decoder depth (defaults to numLayers). */
    numDecoderLayers: positiveInt.optional(),
    numHeads: positiveInt,
    relativeAttentionNumBuckets: positiveInt.default(32),
    relativeAttentionMaxDistance: positiveInt.default(128),
    dropoutRate: z.number().min(0).lt(1).default(0.1),
    layerNormEpsilon: z.number().positive().default(1e-6),
    /** 'relu' (T5 v1.0), 'gelu_new' (tanh GELU, v1.1) or 'gelu' (erf). */
    activation: z.enum(['relu', 'gelu_new', 'gelu']).default('relu'),
    /** Gated FFN act(x·wi_0) ⊙ x·wi_1 (v1.1) instead of act(x·wi). */
    gated: z.boolean().default(false),
    /** LM head = shared embedding (v1.0; output rescaled by dModel^-½) or its own matrix (v1.1). */
    tieWordEmbeddings: z.boolean().default(true),
    padTokenId: z.number().int().min(0).default(0),
    eosTokenId: z.number().int().min(0).default(1),
    decoderStartTokenId: z.number().int().min(0).default(0),
    /** Scale of the initial weights (HF's initializer_factor). */
    initializerFactor: z.number().positive().default(1),
  })
  .strict();

export type T5ConfigInput = z.input<typeof T5ConfigSchema>;
export type T5Config = Omit<z.output<typeof T5ConfigSchema>, 'numDecoderLayers'> & { numDecoderLayers: number };

export function parseT5Config(input: unknown): T5Config {
  const r = T5ConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`T5 config is invalid: ${issues}`);
  }
  const c = r.data;
  return { ...c, numDecoderLayers: c.numDecoderLayers ?? c.numLayers };
}

/** T5 v1.0 ("t5-small"-style) and v1.1 presets at a given size, for tests and training. */
export function t5Preset(variant: 'v1.0' | 'v1.1', shape: Omit<T5ConfigInput, 'activation' | 'gated' | 'tieWordEmbeddings'>): T5Config {
  return parseT5Config(
    variant === 'v1.0'
      ? { ...shape, activation: 'relu', gated: false, tieWordEmbeddings: true }
      : { ...shape, activation: 'gelu_new', gated: true, tieWordEmbeddings: false },
  );
}

/** HF `feed_forward_proj` for a config ("relu", "gated-gelu", …). */
function feedForwardProj(c: T5Config): string {
  const act = c.activation === 'gelu_new' ? 'gelu' : c.activation;
  return c.gated ? `gated-${act}` : act;
}

export function t5ConfigToHF(c: T5Config): Record<string, unknown> {
  return {
    model_type: 't5',
    architectures: ['T5ForConditionalGeneration'],
    vocab_size: c.vocabSize,
    d_model: c.dModel,
    d_kv: c.dKv,
    d_ff: c.dFf,
    num_layers: c.numLayers,
    num_decoder_layers: c.numDecoderLayers,
    num_heads: c.numHeads,
    relative_attention_num_buckets: c.relativeAttentionNumBuckets,
    relative_attention_max_distance: c.relativeAttentionMaxDistance,
    dropout_rate: c.dropoutRate,
    layer_norm_epsilon: c.layerNormEpsilon,
    initializer_factor: c.initializerFactor,
    feed_forward_proj: feedForwardProj(c),
    dense_act_fn: c.activation,
    is_gated_act: c.gated,
    is_encoder_decoder: true,
    tie_word_embeddings: c.tieWordEmbeddings,
    use_cache: true,
    pad_token_id: c.padTokenId,
    eos_token_id: c.eosTokenId,
    decoder_start_token_id: c.decoderStartTokenId,
    torch_dtype: 'float32',
  };
}

const HFT5Schema = z
  .object({
    model_type: z.string().optional(),
    vocab_size: positiveInt,
    d_model: positiveInt,
    d_kv: positiveInt,
    d_ff: positiveInt,
    num_layers: positiveInt,
    num_decoder_layers: positiveInt.nullable().optional(),
    num_heads: positiveInt,
    relative_attention_num_buckets: positiveInt.default(32),
    relative_attention_max_distance: positiveInt.default(128),
    dropout_rate: z.number().min(0).lt(1).default(0.1),
    layer_norm_epsilon: z.number().positive().default(1e-6),
    initializer_factor: z.number().positive().default(1),
    feed_forward_proj: z.string().default('relu'),
    tie_word_embeddings: z.boolean().default(true),
    pad_token_id: z.number().int().min(0).default(0),
    eos_token_id: z.number().int().min(0).default(1),
    decoder_start_token_id: z.number().int().min(0).nullable().optional(),
  })
  .loose();

/** Reads an HF T5 config.json (parsed). Refuses feed-forward variants this model cannot reproduce. */
export function t5ConfigFromHF(json: unknown): T5Config {
  const r = HFT5Schema.safeParse(json);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`config.json is not a T5 config: ${issues}`);
  }
  const h = r.data;
  if (h.model_type !== undefined && h.model_type !== 't5') throw new RangeError(`config.json: model_type '${h.model_type}' is not 't5'`);
  // As transformers' T5Config: "gated-gelu" means the tanh GELU ("gelu_new").
  const parts = h.feed_forward_proj.split('-');
  const gated = parts.length === 2 && parts[0] === 'gated';
  const actName = parts[parts.length - 1]!;
  if (parts.length > 2 || (parts.length === 2 && !gated) || !['relu', 'gelu', 'gelu_new'].includes(actName)) {
    throw new RangeError(`config.json: feed_forward_proj '${h.feed_forward_proj}' is not supported (relu, gelu, gated-relu, gated-gelu)`);
  }
  const activation = (actName === 'gelu' && gated) || actName === 'gelu_new' ? 'gelu_new' : (actName as 'relu' | 'gelu');
  return parseT5Config({
    vocabSize: h.vocab_size,
    dModel: h.d_model,
    dKv: h.d_kv,
    dFf: h.d_ff,
    numLayers: h.num_layers,
    numDecoderLayers: h.num_decoder_layers ?? h.num_layers,
    numHeads: h.num_heads,
    relativeAttentionNumBuckets: h.relative_attention_num_buckets,
    relativeAttentionMaxDistance: h.relative_attention_max_distance,
    dropoutRate: h.dropout_rate,
    layerNormEpsilon: h.layer_norm_epsilon,
    initializerFactor: h.initializer_factor,
    activation,
    gated,
    tieWordEmbeddings: h.tie_word_embeddings,
    padTokenId: h.pad_token_id,
    eosTokenId: h.eos_token_id,
    decoderStartTokenId: h.decoder_start_token_id ?? h.pad_token_id,
  });
}

// ---------------------------------------------------------------------------------------------
// Relative position buckets
// ---------------------------------------------------------------------------------------------

/**
 * Bucket of a key−query offset (Mesh TensorFlow's / HF's `_relative_position_bucket`). Half the
 * buckets hold exact small offsets, the rest are log-spaced up to maxDistance (farther offsets share
 * the last bucket). Bidirectional (encoder): separate halves for keys after / before the query.
 * Causal (decoder): only keys at or before the query count; later ones fall into bucket 0.
 * The logarithm is evaluated in f32 steps, as PyTorch does, so boundary offsets bucket identically.
 */
export function relativePositionBucket(relativePosition: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let buckets = numBuckets;
  let bucket = 0;
  let n: number;
  if (bidirectional) {
    buckets = Math.floor(buckets / 2);
    if (relativePosition > 0) bucket += buckets;
    n = Math.abs(relativePosition);
  } else {
    n = -Math.min(relativePosition, 0);
  }
  const maxExact = Math.floor(buckets / 2);
  if (n < maxExact) return bucket + n;
  const f = Math.fround;
  const ratio = f(Math.log(f(n / maxExact)));
  const scaled = f(f(ratio / f(Math.log(maxDistance / maxExact))) * (buckets - maxExact));
  const large = maxExact + Math.trunc(scaled);
  return bucket + Math.min(large, buckets - 1);
}

/** Bucket ids [tq, tk] (i32) for queries at positions qStart … qStart+tq−1 and keys 0 … tk−1. */
export function relativePositionBuckets(tq: number, tk: number, qStart: number, bidirectional: boolean, numBuckets: number, maxDistance: number): Tensor {
  const ids = new Int32Array(tq * tk);
  for (let i = 0; i < tq; i++) {
    for (let j = 0; j < tk; j++) ids[i * tk + j] = relativePositionBucket(j - (qStart + i), bidirectional, numBuckets, maxDistance);
  }
  return Tensor.fromArray(ids, [tq, tk], 'i32');
}

/** What masked scores get (torch.finfo(float32).min, as transformers), so a row never becomes NaN. */
const MASKED = -3.4028234663852886e38;

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

export class T5Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly relative_attention_bias: Embedding | null;
  readonly dropout: Dropout;

  constructor(
    readonly config: T5Config,
    readonly hasRelativeAttentionBias: boolean,
    readonly bidirectional: boolean,
    generator: Generator,
  ) {
    super();
    const { dModel, dKv, numHeads, initializerFactor: f } = config;
    const inner = numHeads * dKv;
    const init = (l: Linear, std: number): Linear => {
      normal_(l.weight, 0, std, generator);
      return l;
    };
    // HF's T5 initialisation: the missing 1/√d_kv of the scores is folded into q's std.
    this.q = this.registerModule('q', init(new Linear(dModel, inner, { bias: false, generator }), f * (dModel * dKv) ** -0.5));
    this.k = this.registerModule('k', init(new Linear(dModel, inner, { bias: false, generator }), f * dModel ** -0.5));
    this.v = this.registerModule('v', init(new Linear(dModel, inner, { bias: false, generator }), f * dModel ** -0.5));
    this.o = this.registerModule('o', init(new Linear(inner, dModel, { bias: false, generator }), f * inner ** -0.5));
    this.relative_attention_bias = hasRelativeAttentionBias
      ? this.registerModule(
          'relative_attention_bias',
          new Embedding(config.relativeAttentionNumBuckets, numHeads, { generator, std: f * dModel ** -0.5 }),
        )
      : null;
    this.dropout = this.registerModule('dropout', new Dropout(config.dropoutRate, generator));
  }

  /** Learned bias [1, H, tq, tk] for queries at qStart … and keys 0 … tk−1. */
  positionBias(tq: number, tk: number, qStart = 0): Tensor {
    if (this.relative_attention_bias === null) throw new Error('T5Attention.positionBias: this layer has no relative_attention_bias');
    const { relativeAttentionNumBuckets: nb, relativeAttentionMaxDistance: md } = this.config;
    const buckets = relativePositionBuckets(tq, tk, qStart, this.bidirectional, nb, md);
    return embedding(buckets, this.relative_attention_bias.weight).permute([2, 0, 1]).unsqueeze(0);
  }

  /** [B, T, dModel] → [B, H, T, dKv]. */
  heads(x: Tensor, proj: Linear): Tensor {
    const [B, T] = x.shape as [number, number, number];
    return proj.forward(x).reshape([B, T, this.config.numHeads, this.config.dKv]).transpose(1, 2);
  }

  /** softmax(q·kᵀ + bias)·v with q [B,H,tq,D], k/v [B,H,tk,D], bias broadcast to [B,H,tq,tk]; → [B, tq, dModel]. */
  attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null): Tensor {
    const [B, , tq] = q.shape as [number, number, number, number];
    let scores = matmul(q, k, { transB: true });
    if (bias !== null) scores = add(scores, bias);
    const weights = this.dropout.forward(softmax(scores, -1));
    const y = matmul(weights, v).transpose(1, 2).reshape([B, tq, this.config.numHeads * this.config.dKv]);
    return this.o.forward(y);
  }

  /** Self-attention (kv = null) or attention over `kv` (cross-attention). */
  forward(x: Tensor, bias: Tensor | null, kv: Tensor | null = null): Tensor {
    const src = kv ?? x;
    return this.attend(this.heads(x, this.q), this.heads(src, this.k), this.heads(src, this.v), bias);
  }
}

export class T5LayerSelfAttention extends Module {
  readonly SelfAttention: T5Attention;
  readonly layer_norm: RMSNorm;
  readonly dropout: Dropout;

  constructor(config: T5Config, hasBias: boolean, bidirectional: boolean, generator: Generator) {
    super();
    this.SelfAttention = this.registerModule('SelfAttention', new T5Attention(config, hasBias, bidirectional, generator));
    this.layer_norm = this.registerModule('layer_norm', new RMSNorm(config.dModel, { eps: config.layerNormEpsilon }));
    this.dropout = this.registerModule('dropout', new Dropout(config.dropoutRate, generator));
  }

  forward(x: Tensor, bias: Tensor | null): Tensor {
    return add(x, this.dropout.forward(this.SelfAttention.forward(this.layer_norm.forward(x), bias)));
  }
}

export class T5LayerCrossAttention extends Module {
  readonly EncDecAttention: T5Attention;
  readonly layer_norm: RMSNorm;
  readonly dropout: Dropout;

  constructor(config: T5Config, generator: Generator) {
    super();
    this.EncDecAttention = this.registerModule('EncDecAttention', new T5Attention(config, false, true, generator));
    this.layer_norm = this.registerModule('layer_norm', new RMSNorm(config.dModel, { eps: config.layerNormEpsilon }));
    this.dropout = this.registerModule('dropout', new Dropout(config.dropoutRate, generator));
  }

  forward(x: Tensor, encoderHidden: Tensor, encoderBias: Tensor | null): Tensor {
    return add(x, this.dropout.forward(this.EncDecAttention.forward(this.layer_norm.forward(x), encoderBias, encoderHidden)));
  }
}

export class T5LayerFF extends Module {
  readonly wi: Linear | null = null;
  readonly wi_0: Linear | null = null;
  readonly wi_1: Linear | null = null;
  readonly wo: Linear;
  readonly layer_norm: RMSNorm;
  readonly dropout: Dropout;
  readonly DenseReluDense: Module;
  private readonly innerDropout: Dropout;

  constructor(
    readonly config: T5Config,
    generator: Generator,
  ) {
    super();
    const { dModel, dFf, initializerFactor: f } = config;
    const lin = (i: number, o: number, std: number): Linear => {
      const l = new Linear(i, o, { bias: false, generator });
      normal_(l.weight, 0, std, generator);
      return l;
    };
    // HF nests the projections in DenseReluDense (the name stays for the gated variant).
    const dense = new (class DenseReluDense extends Module {
      add<M extends Module>(name: string, m: M): M {
        return this.registerModule(name, m);
      }
    })();
    if (config.gated) {
      this.wi_0 = dense.add('wi_0', lin(dModel, dFf, f * dModel ** -0.5));
      this.wi_1 = dense.add('wi_1', lin(dModel, dFf, f * dModel ** -0.5));
    } else {
      this.wi = dense.add('wi', lin(dModel, dFf, f * dModel ** -0.5));
    }
    this.wo = dense.add('wo', lin(dFf, dModel, f * dFf ** -0.5));
    this.innerDropout = dense.add('dropout', new Dropout(config.dropoutRate, generator));
    this.DenseReluDense = this.registerModule('DenseReluDense', dense);
    this.layer_norm = this.registerModule('layer_norm', new RMSNorm(dModel, { eps: config.layerNormEpsilon }));
    this.dropout = this.registerModule('dropout', new Dropout(config.dropoutRate, generator));
  }

  private act(x: Tensor): Tensor {
    const a = this.config.activation;
    return a === 'relu' ? relu(x) : gelu(x, { approximate: a === 'gelu_new' ? 'tanh' : 'none' });
  }

  forward(x: Tensor): Tensor {
    const h = this.layer_norm.forward(x);
    const hidden = this.config.gated ? mul(this.act(this.wi_0!.forward(h)), this.wi_1!.forward(h)) : this.act(this.wi!.forward(h));
    return add(x, this.dropout.forward(this.wo.forward(this.innerDropout.forward(hidden))));
  }
}

/** One block: self-attention, (decoder only) cross-attention, feed-forward — HF's `layer.0/1/2`. */
export class T5Block extends Module {
  readonly layer: ModuleList<Module>;
  readonly selfAttention: T5LayerSelfAttention;
  readonly crossAttention: T5LayerCrossAttention | null;
  readonly ff: T5LayerFF;

  constructor(config: T5Config, isDecoder: boolean, hasBias: boolean, generator: Generator) {
    super();
    this.selfAttention = new T5LayerSelfAttention(config, hasBias, !isDecoder, generator);
    this.crossAttention = isDecoder ? new T5LayerCrossAttention(config, generator) : null;
    this.ff = new T5LayerFF(config, generator);
    const layers: Module[] = [this.selfAttention, ...(this.crossAttention ? [this.crossAttention] : []), this.ff];
    this.layer = this.registerModule('layer', new ModuleList(layers));
  }

  forward(x: Tensor, selfBias: Tensor | null, encoderHidden: Tensor | null, encoderBias: Tensor | null): Tensor {
    let h = this.selfAttention.forward(x, selfBias);
    if (this.crossAttention !== null) h = this.crossAttention.forward(h, encoderHidden!, encoderBias);
    return this.ff.forward(h);
  }
}

/** Encoder or decoder stack (HF's T5Stack; embed_tokens is the shared embedding, owned by the model). */
export class T5Stack extends Module {
  readonly block: ModuleList<T5Block>;
  readonly final_layer_norm: RMSNorm;
  readonly dropout: Dropout;

  constructor(
    readonly config: T5Config,
    readonly isDecoder: boolean,
    generator: Generator,
  ) {
    super();
    const n = isDecoder ? config.numDecoderLayers : config.numLayers;
    this.block = this.registerModule('block', new ModuleList(Array.from({ length: n }, (_, i) => new T5Block(config, isDecoder, i === 0, generator))));
    this.final_layer_norm = this.registerModule('final_layer_norm', new RMSNorm(config.dModel, { eps: config.layerNormEpsilon }));
    this.dropout = this.registerModule('dropout', new Dropout(config.dropoutRate, generator));
  }

  /** The first layer's relative-position attention (shared by all layers of the stack). */
  get positionAttention(): T5Attention {
    return this.block.items[0]!.selfAttention.SelfAttention;
  }

  /** embeds [B, T, dModel] → hidden [B, T, dModel]; selfBias already holds positions and masks. */
  forward(embeds: Tensor, selfBias: Tensor, encoderHidden: Tensor | null = null, encoderBias: Tensor | null = null): Tensor {
    let x = this.dropout.forward(embeds);
    for (const b of this.block.items) x = b.forward(x, selfBias, encoderHidden, encoderBias);
    return this.dropout.forward(this.final_layer_norm.forward(x));
  }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

export interface T5Options {
  /** Source of the initial weights and dropout masks (default: the process-wide generator). */
  generator?: Generator;
}

export interface T5Inputs {
  /** Encoder ids [B, S] (i32). */
  inputIds: Tensor;
  /** 1 = real token, 0 = padding, [B, S] (any dtype); default all ones. */
  attentionMask?: Tensor;
  /** Decoder ids [B, T]; default: labels shifted right behind decoderStartTokenId. */
  decoderInputIds?: Tensor;
  /** Targets [B, T] (i32), IGNORE_INDEX_T5 (−100) = no loss. */
  labels?: Tensor;
}

export interface T5Output {
  /** [B, T, vocabSize]. */
  logits: Tensor;
  /** Mean cross-entropy over labels ≠ −100, or null without labels. */
  loss: Tensor | null;
}

/** Labels equal to this carry no loss (PyTorch's and transformers' default). */
export const T5_IGNORE_INDEX = -100;

/** Decoding state: the encoder's output, cross-attention K/V per layer, and the self-attention cache. */
export interface T5DecoderState {
  encoderHidden: Tensor;
  encoderBias: Tensor | null;
  crossKeys: Tensor[];
  crossValues: Tensor[];
  cache: KVCache;
}

function checkIdTensor(ids: Tensor, what: string, vocabSize: number, op: string, allowIgnore = false): void {
  if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new TypeError(`${op}: ${what} must be an i32 tensor [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
  const d = ids.i32(op);
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (!((v >= 0 && v < vocabSize) || (allowIgnore && v === T5_IGNORE_INDEX))) {
      throw new RangeError(`${op}: ${what} value ${v} at flat position ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

export class T5ForConditionalGeneration extends Module {
  readonly config: T5Config;
  readonly shared: Embedding;
  readonly encoder: T5Stack;
  readonly decoder: T5Stack;
  readonly lm_head: Linear | null;

  constructor(config: T5ConfigInput | T5Config, options: T5Options = {}) {
    super();
    this.config = parseT5Config({ ...config });
    const c = this.config;
    const g = options.generator ?? defaultGenerator;
    this.shared = this.registerModule('shared', new Embedding(c.vocabSize, c.dModel, { generator: g, std: c.initializerFactor }));
    this.encoder = this.registerModule('encoder', new T5Stack(c, false, g));
    this.decoder = this.registerModule('decoder', new T5Stack(c, true, g));
    if (c.tieWordEmbeddings) {
      this.lm_head = null;
    } else {
      const head = new Linear(c.dModel, c.vocabSize, { bias: false, generator: g });
      normal_(head.weight, 0, c.initializerFactor, g);
      this.lm_head = this.registerModule('lm_head', head);
    }
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  /** labels [B, T] → decoder inputs: decoderStartTokenId, labels[:, :-1], with −100 replaced by pad. */
  shiftRight(labels: Tensor): Tensor {
    const [B, T] = labels.shape as [number, number];
    const src = labels.i32('T5.shiftRight');
    const out = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      out[b * T] = this.config.decoderStartTokenId;
      for (let t = 1; t < T; t++) {
        const v = src[b * T + t - 1]!;
        out[b * T + t] = v === T5_IGNORE_INDEX ? this.config.padTokenId : v;
      }
    }
    return Tensor.fromArray(out, [B, T], 'i32');
  }

  /** Additive padding mask [B, 1, 1, S] from a 1/0 attention mask, or null when nothing is masked. */
  encoderMaskBias(attentionMask: Tensor | undefined, B: number, S: number): Tensor | null {
    if (attentionMask === undefined) return null;
    if (attentionMask.ndim !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== S) {
      throw new RangeError(`T5: attentionMask must be [${B}, ${S}] like inputIds, got ${formatShape(attentionMask.shape)}`);
    }
    const m = attentionMask.toArray();
    const bias = new Float32Array(B * S);
    let any = false;
    for (let i = 0; i < m.length; i++) {
      if (m[i] === 0) {
        bias[i] = MASKED;
        any = true;
      }
    }
    return any ? Tensor.fromArray(bias, [B, 1, 1, S]) : null;
  }

  /** Encoder output [B, S, dModel]. */
  encode(inputIds: Tensor, attentionMask?: Tensor): Tensor {
    checkIdTensor(inputIds, 'inputIds', this.config.vocabSize, 'T5.encode');
    const [B, S] = inputIds.shape as [number, number];
    const posBias = this.encoder.positionAttention.positionBias(S, S);
    const mask = this.encoderMaskBias(attentionMask, B, S);
    const bias = mask === null ? posBias : add(posBias, mask);
    return this.encoder.forward(this.shared.forward(inputIds), bias);
  }

  /** Decoder hidden → logits (tied head: rescaled by dModel^-½ first, as Mesh TF T5). */
  lmLogits(hidden: Tensor): Tensor {
    if (this.lm_head !== null) return this.lm_head.forward(hidden);
    return linear(mul(hidden, this.config.dModel ** -0.5), this.shared.weight);
  }

  private causalMask(tq: number, tk: number): Tensor {
    // Query i (at absolute position tk − tq + i) sees keys j ≤ tk − tq + i.
    const m = new Float32Array(tq * tk);
    for (let i = 0; i < tq; i++) for (let j = tk - tq + i + 1; j < tk; j++) m[i * tk + j] = MASKED;
    return Tensor.fromArray(m, [1, 1, tq, tk]);
  }

  /** Logits [B, T, V] of decoder ids [B, T] given the encoder output. */
  decode(decoderInputIds: Tensor, encoderHidden: Tensor, encoderBias: Tensor | null = null): Tensor {
    checkIdTensor(decoderInputIds, 'decoderInputIds', this.config.vocabSize, 'T5.decode');
    const T = decoderInputIds.shape[1]!;
    const selfBias = add(this.decoder.positionAttention.positionBias(T, T), this.causalMask(T, T));
    const hidden = this.decoder.forward(this.shared.forward(decoderInputIds), selfBias, encoderHidden, encoderBias);
    return this.lmLogits(hidden);
  }

  forward(inputs: T5Inputs): T5Output {
    const op = 'T5.forward';
    const { inputIds, attentionMask, labels } = inputs;
    if (labels !== undefined) checkIdTensor(labels, 'labels', this.config.vocabSize, op, true);
    const decoderInputIds = inputs.decoderInputIds ?? (labels !== undefined ? this.shiftRight(labels) : undefined);
    if (decoderInputIds === undefined) throw new Error(`${op}: give decoderInputIds or labels`);
    const [B, S] = inputIds.shape as [number, number];
    if (decoderInputIds.shape[0] !== B) {
      throw new RangeError(`${op}: decoderInputIds batch ${decoderInputIds.shape[0]} != inputIds batch ${B}`);
    }
    const encoderHidden = this.encode(inputIds, attentionMask);
    const logits = this.decode(decoderInputIds, encoderHidden, this.encoderMaskBias(attentionMask, B, S));
    let loss: Tensor | null = null;
    if (labels !== undefined) {
      if (labels.shape[0] !== B || labels.shape[1] !== decoderInputIds.shape[1]) {
        throw new RangeError(`${op}: labels ${formatShape(labels.shape)} must match decoderInputIds ${formatShape(decoderInputIds.shape)}`);
      }
      const V = this.config.vocabSize;
      loss = crossEntropy(logits.reshape([-1, V]), labels.reshape([-1]), { ignoreIndex: T5_IGNORE_INDEX });
    }
    return { logits, loss };
  }

  // ---------------------------------------------------------------------------------------------
  // Incremental decoding
  // ---------------------------------------------------------------------------------------------

  /** Runs the encoder once and precomputes every decoder layer's cross-attention K/V. */
  startDecoding(inputIds: Tensor, options: { attentionMask?: Tensor; maxLength?: number } = {}): T5DecoderState {
    return noGrad(() => {
      const [B, S] = inputIds.shape as [number, number];
      const encoderHidden = this.encode(inputIds, options.attentionMask);
      const encoderBias = this.encoderMaskBias(options.attentionMask, B, S);
      const crossKeys: Tensor[] = [];
      const crossValues: Tensor[] = [];
      for (const b of this.decoder.block.items) {
        const att = b.crossAttention!.EncDecAttention;
        crossKeys.push(att.heads(encoderHidden, att.k).contiguous());
        crossValues.push(att.heads(encoderHidden, att.v).contiguous());
      }
      const c = this.config;
      const cache = new KVCache({ nLayer: c.numDecoderLayers, batch: B, nHead: c.numHeads, headDim: c.dKv, maxLength: options.maxLength ?? 512 });
      return { encoderHidden, encoderBias, crossKeys, crossValues, cache };
    });
  }

  /**
   * Logits [B, t, V] for the next t decoder ids [B, t] at positions cache.length …, reusing cached
   * self-attention K/V and the precomputed cross-attention K/V (no autograd).
   */
  decodeCached(ids: Tensor, state: T5DecoderState): Tensor {
    const op = 'T5.decodeCached';
    checkIdTensor(ids, 'ids', this.config.vocabSize, op);
    const { cache } = state;
    const [B, t] = ids.shape as [number, number];
    if (B !== cache.batch) throw new RangeError(`${op}: ids batch ${B} != cache batch ${cache.batch}`);
    const start = cache.length;
    if (start + t > cache.maxLength) throw new RangeError(`${op}: cache full: ${start} cached + ${t} new > maxLength ${cache.maxLength}`);
    return noGrad(() => {
      const tk = start + t;
      const selfBias = add(this.decoder.positionAttention.positionBias(t, tk, start), this.causalMask(t, tk));
      let x = this.shared.forward(ids);
      this.decoder.block.items.forEach((block, layer) => {
        const sa = block.selfAttention;
        const att = sa.SelfAttention;
        const h = sa.layer_norm.forward(x);
        const k = att.heads(h, att.k).contiguous();
        const v = att.heads(h, att.v).contiguous();
        cache.write(layer, k.f32(op), v.f32(op), t);
        // Cached rows [0, start) plus the new ones, read straight from the cache buffers.
        const keys = start === 0 ? k : concat([cache.keysView(layer), k], 2);
        const values = start === 0 ? v : concat([cache.valuesView(layer), v], 2);
        x = add(x, att.attend(att.heads(h, att.q), keys, values, selfBias));
        const ca = block.crossAttention!;
        const hc = ca.layer_norm.forward(x);
        const cAtt = ca.EncDecAttention;
        x = add(x, cAtt.attend(cAtt.heads(hc, cAtt.q), state.crossKeys[layer]!, state.crossValues[layer]!, state.encoderBias));
        x = block.ff.forward(x);
      });
      cache.advance(t);
      return this.lmLogits(this.decoder.final_layer_norm.forward(x));
    });
  }

  /**
   * Greedy decoding with the KV cache: returns the generated ids per batch row (without the start
   * token), stopping a row at eosTokenId (included) or after maxNewTokens.
   */
  generateGreedy(inputIds: Tensor, options: { maxNewTokens: number; attentionMask?: Tensor }): number[][] {
    const { maxNewTokens } = options;
    const B = inputIds.shape[0]!;
    const state = this.startDecoding(inputIds, { ...(options.attentionMask ? { attentionMask: options.attentionMask } : {}), maxLength: Math.max(1, maxNewTokens) });
    const out: number[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);
    let next = new Int32Array(B).fill(this.config.decoderStartTokenId);
    for (let step = 0; step < maxNewTokens && done.some((d) => !d); step++) {
      const logits = this.decodeCached(Tensor.fromArray(next, [B, 1], 'i32'), state);
      const V = this.config.vocabSize;
      const l = logits.f32(op_generate);
      next = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let j = 1; j < V; j++) if (l[b * V + j]! > l[b * V + best]!) best = j;
        next[b] = done[b] ? this.config.padTokenId : best;
        if (!done[b]) {
          out[b]!.push(best);
          if (best === this.config.eosTokenId) done[b] = true;
        }
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Hugging Face directories
  // ---------------------------------------------------------------------------------------------

  /** Writes config.json, generation_config.json and model.safetensors (HF T5 names), each atomically. */
  async savePretrained(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const sd = new Map([...this.stateDict().entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    await saveSafetensors(join(dir, 'model.safetensors'), sd, { format: 'pt' });
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(t5ConfigToHF(this.config), null, 2) + '\n');
    const gen = { _from_model_config: true, decoder_start_token_id: this.config.decoderStartTokenId, eos_token_id: this.config.eosTokenId, pad_token_id: this.config.padTokenId };
    await writeFileAtomic(join(dir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  }

  static async fromPretrained(dir: string, options: T5Options = {}): Promise<T5ForConditionalGeneration> {
    const path = join(dir, 'config.json');
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      throw new Error(`T5.fromPretrained: cannot read ${path}: ${(e as Error).message}`);
    }
    const model = new T5ForConditionalGeneration(t5ConfigFromHF(json), options);
    const { tensors } = await loadModelWeights(dir);
    model.loadHFTensors(tensors, join(dir, 'model.safetensors'));
    return model;
  }

  /** Copies HF-named tensors in after checking them all (nothing is written unless everything fits). */
  loadHFTensors(tensors: Map<string, Tensor>, source = 'state dict'): void {
    const own = this.stateDict();
    const problems: string[] = [];
    // Tied copies of the shared embedding that HF files may carry; the decoder's first cross-attention
    // bias is an unused tensor old checkpoints (t5-small) contain (transformers ignores it too).
    const aliases = ['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight', ...(this.config.tieWordEmbeddings ? ['lm_head.weight'] : [])];
    const ignored = /^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$/;
    const missing = [...own.keys()].filter((k) => !tensors.has(k));
    if (missing.length > 0) {
      problems.push(`missing tensors: ${missing.map((k) => `${k} (expected ${formatShape(own.get(k)!.shape)})`).join(', ')}`);
    }
    const unexpected = [...tensors.keys()].filter((k) => !own.has(k) && !aliases.includes(k) && !ignored.test(k));
    if (unexpected.length > 0) problems.push(`unexpected tensors: ${unexpected.join(', ')}`);
    for (const [name, target] of own) {
      const t = tensors.get(name);
      if (t !== undefined && (t.ndim !== target.ndim || t.shape.some((d, i) => d !== target.shape[i]))) {
        problems.push(`${name} has shape ${formatShape(t.shape)}, expected ${formatShape(target.shape)}`);
      }
    }
    if (problems.length > 0) throw new Error(`T5.fromPretrained: ${source} does not fit the config: ${problems.join('; ')}`);
    this.loadStateDict(new Map([...own.keys()].map((k) => [k, tensors.get(k)!])));
  }
}

const op_generate = 'T5.generateGreedy';

registerFamily({ modelTypes: ['t5'], fromPretrained: (dir) => T5ForConditionalGeneration.fromPretrained(dir) });
