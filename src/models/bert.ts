/**
 * BERT (Devlin et al. 2018): an encoder-only, post-LN Transformer. Token, position and segment
 * embeddings are summed and normalised; each layer is self-attention over the whole sequence (keys
 * masked where the attention mask says padding) and a GELU feed-forward, each followed by
 * residual + LayerNorm. Two pre-training heads sit on top: masked-language modelling (a transform,
 * then the decoder tied to the word embeddings, plus an output bias) and next-sentence prediction
 * (the tanh pooler over [CLS], then a 2-way linear).
 *
 * Module and tensor names are Hugging Face's BertForPreTraining (`bert.embeddings.*`,
 * `bert.encoder.layer.N.attention.self.query`, …, `cls.predictions.*`, `cls.seq_relationship`), so
 * `savePretrained` writes a directory transformers loads and `fromPretrained` reads HF checkpoints,
 * including those without a pooler or NSP head (BertForMaskedLM, BertLMHeadModel).
 */
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad, record } from '../tensor/autograd.js';
import { add, crossEntropy, dropout as dropoutOp, embedding, gelu, linear, matmul, mul, relu, scaledDotProductAttention, softmax, tanh } from '../tensor/index.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, ModuleList } from '../nn/module.js';
import { normal_ } from '../nn/init.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights, saveSafetensors } from '../io/safetensors.js';
import { registerFamily } from './registry.js';
import { describeZodIssues } from '../io/zod-issues.js';

/** Labels equal to this are ignored by the MLM loss (PyTorch's and Hugging Face's default). */
export const MLM_IGNORE_INDEX = -100;

/** HF's additive mask value for padded keys (float32 min, not −∞, so an all-padding row stays finite). */
const MASKED_SCORE = -3.4028234663852886e38;

const positiveInt = z.number().int().positive();

export const BertConfigSchema = z
  .object({
    vocabSize: positiveInt,
    hiddenSize: positiveInt,
    numHiddenLayers: positiveInt,
    numAttentionHeads: positiveInt,
    intermediateSize: positiveInt,
    /** 'gelu' is the erf form (BERT's); 'gelu_new' the tanh approximation. */
    hiddenAct: z.enum(['gelu', 'gelu_new', 'relu']).default('gelu'),
    hiddenDropoutProb: z.number().min(0).lt(1).default(0.1),
    attentionProbsDropoutProb: z.number().min(0).lt(1).default(0.1),
    maxPositionEmbeddings: positiveInt.default(512),
    typeVocabSize: positiveInt.default(2),
    layerNormEps: z.number().positive().default(1e-12),
    padTokenId: z.number().int().min(0).default(0),
    initializerRange: z.number().positive().default(0.02),
    /** The tanh pooler over [CLS] (needed by the NSP head). */
    pooler: z.boolean().default(true),
    /** The next-sentence-prediction head (cls.seq_relationship). */
    nspHead: z.boolean().default(true),
  })
  .strict()
  .refine((c) => c.hiddenSize % c.numAttentionHeads === 0, { message: 'hiddenSize must be divisible by numAttentionHeads' })
  .refine((c) => c.padTokenId < c.vocabSize, { message: 'padTokenId must be inside the vocabulary' })
  .refine((c) => c.pooler || !c.nspHead, { message: 'the NSP head needs the pooler' });

export type BertConfig = z.output<typeof BertConfigSchema>;
export type BertConfigInput = z.input<typeof BertConfigSchema>;

export function parseBertConfig(input: unknown): BertConfig {
  const r = BertConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`BERT config is invalid: ${issues}`);
  }
  return r.data;
}

/** Hugging Face BertConfig as config.json holds it. */
export function bertConfigToHF(c: BertConfig): Record<string, unknown> {
  return {
    model_type: 'bert',
    architectures: [c.nspHead ? 'BertForPreTraining' : 'BertForMaskedLM'],
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    hidden_dropout_prob: c.hiddenDropoutProb,
    attention_probs_dropout_prob: c.attentionProbsDropoutProb,
    max_position_embeddings: c.maxPositionEmbeddings,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: c.padTokenId,
    initializer_range: c.initializerRange,
    position_embedding_type: 'absolute',
    tie_word_embeddings: true,
    torch_dtype: 'float32',
  };
}

const HFBertSchema = z
  .object({
    model_type: z.string().optional(),
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    intermediate_size: positiveInt,
    hidden_act: z.string().default('gelu'),
    hidden_dropout_prob: z.number().default(0.1),
    attention_probs_dropout_prob: z.number().default(0.1),
    max_position_embeddings: positiveInt.default(512),
    type_vocab_size: positiveInt.default(2),
    layer_norm_eps: z.number().positive().default(1e-12),
    pad_token_id: z.number().int().min(0).nullable().default(0),
    initializer_range: z.number().positive().default(0.02),
    position_embedding_type: z.string().default('absolute'),
    tie_word_embeddings: z.boolean().default(true),
    is_decoder: z.boolean().default(false),
  })
  .loose();

/**
 * Reads an HF BERT config.json. Refuses what this model cannot reproduce (relative position
 * embeddings, decoder mode, untied decoder, other activations) instead of computing something else.
 * Whether the pooler and NSP head exist is decided by the checkpoint's tensors (see fromPretrained).
 */
export function bertConfigFromHF(json: unknown, heads: { pooler: boolean; nspHead: boolean } = { pooler: true, nspHead: true }): BertConfig {
  const r = HFBertSchema.safeParse(json);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`config.json is not a BERT config: ${issues}`);
  }
  const h = r.data;
  const bad = (msg: string): never => {
    throw new RangeError(`config.json: ${msg}`);
  };
  if (h.model_type !== undefined && h.model_type !== 'bert') bad(`model_type '${h.model_type}' is not BERT`);
  if (h.position_embedding_type !== 'absolute') bad(`position_embedding_type '${h.position_embedding_type}' is not supported (only 'absolute')`);
  if (h.is_decoder) bad('is_decoder true (causal BERT) is not supported');
  if (!h.tie_word_embeddings) bad('tie_word_embeddings false is not supported (the MLM decoder is tied to the word embeddings)');
  const act = h.hidden_act;
  const hiddenAct = act === 'gelu' ? 'gelu' : act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? 'gelu_new' : act === 'relu' ? 'relu' : null;
  if (hiddenAct === null) bad(`hidden_act '${act}' is not supported (use gelu, gelu_new, gelu_pytorch_tanh or relu)`);
  return parseBertConfig({
    vocabSize: h.vocab_size,
    hiddenSize: h.hidden_size,
    numHiddenLayers: h.num_hidden_layers,
    numAttentionHeads: h.num_attention_heads,
    intermediateSize: h.intermediate_size,
    hiddenAct: hiddenAct!,
    hiddenDropoutProb: h.hidden_dropout_prob,
    attentionProbsDropoutProb: h.attention_probs_dropout_prob,
    maxPositionEmbeddings: h.max_position_embeddings,
    typeVocabSize: h.type_vocab_size,
    layerNormEps: h.layer_norm_eps,
    padTokenId: h.pad_token_id ?? 0,
    initializerRange: h.initializer_range,
    pooler: heads.pooler,
    nspHead: heads.nspHead,
  });
}

function activate(x: Tensor, act: BertConfig['hiddenAct']): Tensor {
  if (act === 'relu') return relu(x);
  return gelu(x, { approximate: act === 'gelu_new' ? 'tanh' : 'none' });
}

/** A Linear with BERT's initialisation: N(0, initializer_range) weights, zero bias. */
function bertLinear(inF: number, outF: number, config: BertConfig, generator: Generator): Linear {
  const l = new Linear(inF, outF, { generator });
  noGrad(() => {
    normal_(l.weight, 0, config.initializerRange, generator);
    l.bias?.storage.data.fill(0);
  });
  return l;
}

/**
 * Embedding lookup whose gradient skips the padding row's lookups (nn.Embedding(padding_idx)): HF's
 * word embeddings never learn from [PAD] positions. The row still gets gradient through the tied
 * MLM decoder, as in HF.
 */
function embeddingSkippingPad(ids: Tensor, weight: Tensor, padId: number): Tensor {
  const out = noGrad(() => embedding(ids, weight));
  const [V, D] = weight.shape as [number, number];
  const idData = ids.i32('bertEmbedding').slice();
  return record(out, 'bertEmbedding', [weight], (g) => {
    const gd = g.dense();
    const gw = new Float32Array(V * D);
    for (let i = 0; i < idData.length; i++) {
      const id = idData[i]!;
      if (id === padId) continue;
      const src = i * D;
      const dst = id * D;
      for (let j = 0; j < D; j++) gw[dst + j]! += gd[src + j]!;
    }
    return [Tensor.fromArray(gw, [V, D])];
  });
}

export class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(
    readonly config: BertConfig,
    generator: Generator,
  ) {
    super();
    const { vocabSize, hiddenSize: C, initializerRange: std } = config;
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(vocabSize, C, { generator, std }));
    // HF zeroes the padding row at initialisation.
    noGrad(() => this.word_embeddings.weight.storage.data.fill(0, config.padTokenId * C, (config.padTokenId + 1) * C));
    this.position_embeddings = this.registerModule('position_embeddings', new Embedding(config.maxPositionEmbeddings, C, { generator, std }));
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(config.typeVocabSize, C, { generator, std }));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(C, { eps: config.layerNormEps }));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropoutProb, generator));
  }

  forward(ids: Tensor, tokenTypeIds: Tensor): Tensor {
    return this.forwardEmbeds(embeddingSkippingPad(ids, this.word_embeddings.weight, this.config.padTokenId), tokenTypeIds);
  }

  /** From word embeddings [B, T, C] (prompt tuning prepends trainable ones): + token types + positions, LayerNorm, dropout. */
  forwardEmbeds(words: Tensor, tokenTypeIds: Tensor): Tensor {
    const T = words.shape[1]!;
    const types = this.token_type_embeddings.forward(tokenTypeIds);
    const x = add(add(words, types), this.position_embeddings.weight.narrow(0, 0, T));
    return this.dropout.forward(this.LayerNorm.forward(x));
  }
}

export class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;

  constructor(
    readonly config: BertConfig,
    private readonly generator: Generator,
  ) {
    super();
    const C = config.hiddenSize;
    this.query = this.registerModule('query', bertLinear(C, C, config, generator));
    this.key = this.registerModule('key', bertLinear(C, C, config, generator));
    this.value = this.registerModule('value', bertLinear(C, C, config, generator));
  }

  /** x [B, T, C], mask additive [B, 1, 1, T] → context [B, T, C]. */
  forward(x: Tensor, mask: Tensor): Tensor {
    const [B, T, C] = x.shape as [number, number, number];
    const H = this.config.numAttentionHeads;
    const D = C / H;
    const heads = (t: Tensor): Tensor => t.reshape([B, T, H, D]).transpose(1, 2);
    const q = heads(this.query.forward(x));
    const k = heads(this.key.forward(x));
    const v = heads(this.value.forward(x));
    const p = this.config.attentionProbsDropoutProb;
    let y: Tensor;
    if (this.training && p > 0) {
      // Dropout on the attention probabilities needs them explicitly (the fused kernel has none).
      const scores = add(mul(matmul(q, k, { transB: true }), 1 / Math.sqrt(D)), mask);
      y = matmul(dropoutOp(softmax(scores, -1), p, { training: true, generator: this.generator }), v);
    } else {
      y = scaledDotProductAttention(q, k, v, { mask });
    }
    return y.transpose(1, 2).reshape([B, T, C]);
  }
}

/** Projection, dropout, residual, LayerNorm (HF's BertSelfOutput and BertOutput). */
export class BertResidualOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(config: BertConfig, inFeatures: number, generator: Generator) {
    super();
    this.dense = this.registerModule('dense', bertLinear(inFeatures, config.hiddenSize, config, generator));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hiddenSize, { eps: config.layerNormEps }));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropoutProb, generator));
  }

  forward(h: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(add(this.dropout.forward(this.dense.forward(h)), residual));
  }
}

export class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig, generator: Generator) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(config, generator));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.hiddenSize, generator));
  }

  forward(x: Tensor, mask: Tensor): Tensor {
    return this.output.forward(this.self.forward(x, mask), x);
  }
}

export class BertIntermediate extends Module {
  readonly dense: Linear;

  constructor(
    readonly config: BertConfig,
    generator: Generator,
  ) {
    super();
    this.dense = this.registerModule('dense', bertLinear(config.hiddenSize, config.intermediateSize, config, generator));
  }

  forward(x: Tensor): Tensor {
    return activate(this.dense.forward(x), this.config.hiddenAct);
  }
}

export class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig, generator: Generator) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(config, generator));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(config, generator));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.intermediateSize, generator));
  }

  forward(x: Tensor, mask: Tensor): Tensor {
    const a = this.attention.forward(x, mask);
    return this.output.forward(this.intermediate.forward(a), a);
  }
}

export class BertEncoder extends Module {
  readonly layer: ModuleList<BertLayer>;

  constructor(config: BertConfig, generator: Generator) {
    super();
    this.layer = this.registerModule('layer', new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new BertLayer(config, generator))));
  }

  forward(x: Tensor, mask: Tensor): Tensor {
    let h = x;
    for (const l of this.layer) h = l.forward(h, mask);
    return h;
  }
}

export class BertPooler extends Module {
  readonly dense: Linear;

  constructor(config: BertConfig, generator: Generator) {
    super();
    this.dense = this.registerModule('dense', bertLinear(config.hiddenSize, config.hiddenSize, config, generator));
  }

  /** tanh(dense(h[:, 0])): the [CLS] position summarises the sequence. */
  forward(h: Tensor): Tensor {
    return tanh(this.dense.forward(h.select(1, 0)));
  }
}

/** HF's BertModel: embeddings, encoder, optional pooler. */
export class BertModel extends Module {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;
  readonly pooler: BertPooler | null;

  constructor(config: BertConfig, generator: Generator) {
    super();
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(config, generator));
    this.encoder = this.registerModule('encoder', new BertEncoder(config, generator));
    this.pooler = config.pooler ? this.registerModule('pooler', new BertPooler(config, generator)) : null;
  }
}

export class BertPredictionHeadTransform extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;

  constructor(
    readonly config: BertConfig,
    generator: Generator,
  ) {
    super();
    this.dense = this.registerModule('dense', bertLinear(config.hiddenSize, config.hiddenSize, config, generator));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hiddenSize, { eps: config.layerNormEps }));
  }

  forward(h: Tensor): Tensor {
    return this.LayerNorm.forward(activate(this.dense.forward(h), this.config.hiddenAct));
  }
}

/** The MLM head: transform, then the decoder tied to the word embeddings, plus its own bias. */
export class BertLMPredictionHead extends Module {
  readonly bias: Tensor;
  readonly transform: BertPredictionHeadTransform;

  constructor(config: BertConfig, generator: Generator) {
    super();
    this.bias = this.registerParameter('bias', Tensor.zeros([config.vocabSize]));
    this.transform = this.registerModule('transform', new BertPredictionHeadTransform(config, generator));
  }

  forward(h: Tensor, wordEmbeddings: Tensor): Tensor {
    return linear(this.transform.forward(h), wordEmbeddings, this.bias);
  }
}

export class BertPreTrainingHeads extends Module {
  readonly predictions: BertLMPredictionHead;
  readonly seq_relationship: Linear | null;

  constructor(config: BertConfig, generator: Generator) {
    super();
    this.predictions = this.registerModule('predictions', new BertLMPredictionHead(config, generator));
    this.seq_relationship = config.nspHead ? this.registerModule('seq_relationship', bertLinear(config.hiddenSize, 2, config, generator)) : null;
  }
}

export interface BertOptions {
  /** Source of the initial weights and of dropout masks (default: the process-wide generator). */
  generator?: Generator;
}

export interface BertInputs {
  /** Segment ids [B, T] (i32, < typeVocabSize); default all 0. */
  tokenTypeIds?: Tensor;
  /** [B, T]: 1 = real token, 0 = padding (i32 or f32); default all 1. */
  attentionMask?: Tensor;
  /** MLM targets [B, T] (i32): the original id at predicted positions, MLM_IGNORE_INDEX elsewhere. */
  mlmLabels?: Tensor;
  /** NSP targets [B] (i32): 0 = B follows A, 1 = B is random (HF's convention). */
  nspLabels?: Tensor;
}

export interface BertOutput {
  /** Encoder output [B, T, C]. */
  hidden: Tensor;
  /** MLM logits [B, T, vocabSize]. */
  mlmLogits: Tensor;
  /** NSP logits [B, 2], or null without the NSP head. */
  nspLogits: Tensor | null;
  mlmLoss: Tensor | null;
  nspLoss: Tensor | null;
  /** mlmLoss + nspLoss (whichever are given), as BertForPreTraining; null without labels. */
  loss: Tensor | null;
}

function checkIdTensor(t: Tensor, what: string, shape: readonly number[], limit: number, allow?: number): void {
  const op = 'BertForPreTraining.forward';
  if (t.dtype !== 'i32' || t.ndim !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new TypeError(`${op}: ${what} must be an i32 tensor ${formatShape(shape)}, got ${t.dtype} ${formatShape(t.shape)}`);
  }
  const data = t.i32(op);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== allow && !(v >= 0 && v < limit)) throw new RangeError(`${op}: ${what} value ${v} at flat position ${i} is outside [0, ${limit})`);
  }
}

/** BertForPreTraining: the encoder with its MLM and NSP heads. */
export class BertForPreTraining extends Module {
  readonly config: BertConfig;
  readonly bert: BertModel;
  readonly cls: BertPreTrainingHeads;

  constructor(config: BertConfigInput, options: BertOptions = {}) {
    super();
    this.config = parseBertConfig(config);
    const generator = options.generator ?? defaultGenerator;
    this.bert = this.registerModule('bert', new BertModel(this.config, generator));
    this.cls = this.registerModule('cls', new BertPreTrainingHeads(this.config, generator));
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  /** The attention mask as HF's additive [B, 1, 1, T] (0 keep, float32-min for padding). */
  private additiveMask(mask: Tensor | undefined, B: number, T: number): Tensor {
    const out = new Float32Array(B * T);
    if (mask !== undefined) {
      if (mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] !== T) {
        throw new RangeError(`BertForPreTraining.forward: attentionMask must be [${B}, ${T}], got ${formatShape(mask.shape)}`);
      }
      const m = mask.dtype === 'i32' ? mask.i32('BertForPreTraining.forward') : mask.dense();
      for (let i = 0; i < out.length; i++) out[i] = m[i] === 0 ? MASKED_SCORE : 0;
    }
    return Tensor.fromArray(out, [B, 1, 1, T]);
  }

  /** Encoder output [B, T, C] for ids [B, T]. */
  encode(ids: Tensor, inputs: Pick<BertInputs, 'tokenTypeIds' | 'attentionMask'> = {}): Tensor {
    const op = 'BertForPreTraining.forward';
    if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new TypeError(`${op}: ids must be an i32 tensor [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
    const [B, T] = ids.shape as [number, number];
    if (T > this.config.maxPositionEmbeddings) {
      throw new RangeError(`${op}: sequence length ${T} exceeds max_position_embeddings ${this.config.maxPositionEmbeddings}`);
    }
    checkIdTensor(ids, 'ids', [B, T], this.config.vocabSize);
    const types = inputs.tokenTypeIds ?? Tensor.zeros([B, T], 'i32');
    checkIdTensor(types, 'tokenTypeIds', [B, T], this.config.typeVocabSize);
    const mask = this.additiveMask(inputs.attentionMask, B, T);
    return this.bert.encoder.forward(this.bert.embeddings.forward(ids, types), mask);
  }

  /** Encoder output [B, T, C] for word embeddings [B, T, C] given instead of ids (prompt tuning). */
  encodeEmbeds(words: Tensor, inputs: Pick<BertInputs, 'tokenTypeIds' | 'attentionMask'> = {}): Tensor {
    const op = 'BertForPreTraining.encodeEmbeds';
    if (words.ndim !== 3 || words.shape[2] !== this.config.hiddenSize) {
      throw new RangeError(`${op}: embeddings must be [B, T, ${this.config.hiddenSize}], got ${formatShape(words.shape)}`);
    }
    const [B, T] = words.shape as [number, number, number];
    if (T > this.config.maxPositionEmbeddings) {
      throw new RangeError(`${op}: sequence length ${T} exceeds max_position_embeddings ${this.config.maxPositionEmbeddings}`);
    }
    const types = inputs.tokenTypeIds ?? Tensor.zeros([B, T], 'i32');
    checkIdTensor(types, 'tokenTypeIds', [B, T], this.config.typeVocabSize);
    return this.bert.encoder.forward(this.bert.embeddings.forwardEmbeds(words, types), this.additiveMask(inputs.attentionMask, B, T));
  }

  forward(ids: Tensor, inputs: BertInputs = {}): BertOutput {
    const [B, T] = ids.shape as [number, number];
    const hidden = this.encode(ids, inputs);
    const mlmLogits = this.cls.predictions.forward(hidden, this.bert.embeddings.word_embeddings.weight);
    let nspLogits: Tensor | null = null;
    if (this.cls.seq_relationship !== null && this.bert.pooler !== null) {
      nspLogits = this.cls.seq_relationship.forward(this.bert.pooler.forward(hidden));
    }
    let mlmLoss: Tensor | null = null;
    let nspLoss: Tensor | null = null;
    if (inputs.mlmLabels !== undefined) {
      checkIdTensor(inputs.mlmLabels, 'mlmLabels', [B, T], this.config.vocabSize, MLM_IGNORE_INDEX);
      mlmLoss = crossEntropy(mlmLogits.reshape([B * T, this.config.vocabSize]), inputs.mlmLabels.reshape([B * T]), { ignoreIndex: MLM_IGNORE_INDEX });
    }
    if (inputs.nspLabels !== undefined) {
      if (nspLogits === null) throw new Error('BertForPreTraining.forward: nspLabels given, but this model has no NSP head');
      checkIdTensor(inputs.nspLabels, 'nspLabels', [B], 2);
      nspLoss = crossEntropy(nspLogits, inputs.nspLabels);
    }
    const loss = mlmLoss !== null && nspLoss !== null ? add(mlmLoss, nspLoss) : (mlmLoss ?? nspLoss);
    return { hidden, mlmLogits, nspLogits, mlmLoss, nspLoss, loss };
  }

  // ---------------------------------------------------------------------------------------------
  // Hugging Face directories
  // ---------------------------------------------------------------------------------------------

  /** HF-named tensors as saved, sorted: every parameter, plus the tied decoder weight and bias (as HF's files may hold). */
  hfStateDict(): Map<string, Tensor> {
    const sd = new Map(this.stateDict());
    return new Map([...sd.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Writes config.json and model.safetensors (HF BertForPreTraining layout), each atomically. */
  async savePretrained(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await saveSafetensors(join(dir, 'model.safetensors'), this.hfStateDict(), { format: 'pt' });
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(bertConfigToHF(this.config), null, 2) + '\n');
  }

  /**
   * Loads config.json + model.safetensors (Weft's or an HF BERT checkpoint: BertForPreTraining,
   * BertForMaskedLM, BertLMHeadModel, or a bare BertModel without `bert.` prefixes and without an
   * MLM head, which then starts from its initialisation). The pooler and NSP head exist when the
   * checkpoint holds them. Like transformers' from_pretrained, the model comes back in eval mode
   * (no dropout); call train() before training it.
   */
  static async fromPretrained(dir: string, options: BertOptions = {}): Promise<BertForPreTraining> {
    const path = join(dir, 'config.json');
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      throw new Error(`BertForPreTraining.fromPretrained: cannot read ${path}: ${(e as Error).message}`);
    }
    const { tensors, source: file } = await loadModelWeights(dir);
    const named = normaliseNames(tensors);
    const config = bertConfigFromHF(json, {
      pooler: named.has('bert.pooler.dense.weight'),
      nspHead: named.has('cls.seq_relationship.weight'),
    });
    const model = new BertForPreTraining(config, options);
    model.loadHFTensors(named, file);
    return model.eval();
  }

  /** Copies HF-named tensors in after checking them all (nothing is written unless everything fits). */
  loadHFTensors(input: Map<string, Tensor>, source = 'state dict'): void {
    const op = 'BertForPreTraining.fromPretrained';
    const tensors = normaliseNames(input);
    const own = this.stateDict();
    const problems: string[] = [];
    // A bare encoder checkpoint has no MLM head: keep the initialised one.
    const hasHead = [...tensors.keys()].some((k) => k.startsWith('cls.predictions.'));
    const optional = (k: string): boolean => !hasHead && k.startsWith('cls.predictions.');
    const missing = [...own.keys()].filter((k) => !tensors.has(k) && !optional(k));
    if (missing.length > 0) problems.push(`missing tensors: ${missing.join(', ')}`);
    const unexpected = [...tensors.keys()].filter((k) => !own.has(k) && k !== 'cls.predictions.decoder.weight' && k !== 'cls.predictions.decoder.bias');
    if (unexpected.length > 0) problems.push(`unexpected tensors: ${unexpected.join(', ')}`);
    for (const [name, target] of own) {
      const t = tensors.get(name);
      if (t !== undefined && (t.ndim !== target.ndim || t.shape.some((d, i) => d !== target.shape[i]))) {
        problems.push(`${name} has shape ${formatShape(t.shape)}, expected ${formatShape(target.shape)}`);
      }
    }
    const tiedWith = (alias: string, name: string): void => {
      const a = tensors.get(alias);
      const b = tensors.get(name);
      if (a === undefined || b === undefined) return;
      const [x, y] = [a.toArray(), b.toArray()];
      if (x.length !== y.length || x.some((v, i) => v !== y[i])) problems.push(`${alias} differs from ${name}, but this BERT ties them`);
    };
    tiedWith('cls.predictions.decoder.weight', 'bert.embeddings.word_embeddings.weight');
    tiedWith('cls.predictions.decoder.bias', 'cls.predictions.bias');
    if (problems.length > 0) throw new Error(`${op}: ${source} does not fit the config: ${problems.join('; ')}`);
    this.loadStateDict(new Map([...own.keys()].filter((k) => tensors.has(k)).map((k) => [k, tensors.get(k)!])), { strict: false });
  }
}

/**
 * Names as BertForPreTraining uses them: adds the `bert.` prefix of a bare BertModel, drops the
 * position_ids buffer older transformers saved, takes cls.predictions.bias from decoder.bias when
 * only the latter is present.
 */
function normaliseNames(input: Map<string, Tensor>): Map<string, Tensor> {
  const prefixed = [...input.keys()].some((k) => k.startsWith('bert.'));
  const out = new Map<string, Tensor>();
  for (const [k, t] of input) {
    const name = prefixed || k.startsWith('cls.') ? k : `bert.${k}`;
    if (name === 'bert.embeddings.position_ids') continue;
    out.set(name, t);
  }
  const decoderBias = out.get('cls.predictions.decoder.bias');
  if (!out.has('cls.predictions.bias') && decoderBias !== undefined) out.set('cls.predictions.bias', decoderBias);
  return out;
}

registerFamily({ modelTypes: ['bert'], fromPretrained: (dir) => BertForPreTraining.fromPretrained(dir) });
