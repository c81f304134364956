/**
 * Prefix tuning (Li & Liang 2021): P trainable key/value vectors per layer and head, prepended to
 * every attention's keys and values, so each token can attend to a learned "virtual context"; the
 * model itself stays frozen. Implemented by swapping each attention module for one that shares its
 * weights and adds the prefix (GPT-2 and BERT).
 */
import { add, concat, linear, scaledDotProductAttention } from '../../tensor/index.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { normal_ } from '../../nn/init.js';
import { Module } from '../../nn/module.js';
import { BertForPreTraining, BertSelfAttention } from '../../models/bert.js';
import { CausalSelfAttention, GPT } from '../../models/gpt.js';

/** The trainable prefixes: keys and values [layers, heads, P, headDim]. */
export class PrefixEncoder extends Module {
  readonly keys: Tensor;
  readonly values: Tensor;

  constructor(
    readonly numLayers: number,
    readonly numHeads: number,
    readonly numVirtualTokens: number,
    readonly headDim: number,
    generator: Generator = defaultGenerator,
  ) {
    super();
    if (!Number.isInteger(numVirtualTokens) || numVirtualTokens < 1) throw new RangeError(`prefix tuning: the prefix length must be ≥ 1, got ${numVirtualTokens}`);
    const shape = [numLayers, numHeads, numVirtualTokens, headDim];
    this.keys = this.registerParameter('keys', normal_(Tensor.zeros(shape), 0, 0.02, generator));
    this.values = this.registerParameter('values', normal_(Tensor.zeros(shape), 0, 0.02, generator));
  }

  /** Layer `l`'s prefix keys or values broadcast to [B, H, P, D]. */
  layer(which: 'keys' | 'values', l: number, B: number): Tensor {
    const t = (which === 'keys' ? this.keys : this.values).select(0, l);
    return t.unsqueeze(0).expand([B, this.numHeads, this.numVirtualTokens, this.headDim]);
  }
}

/** GPT-2 attention reading its weights from the wrapped module, with layer `l`'s prefix in front. */
class PrefixedGPTAttention extends Module {
  constructor(
    private readonly inner: CausalSelfAttention,
    private readonly prefix: PrefixEncoder,
    private readonly l: number,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    const [B, T, C] = x.shape as [number, number, number];
    const H = this.inner.config.nHead;
    const D = C / H;
    const qkv = this.inner.c_attn.forward(x).reshape([B, T, 3, H, D]);
    const heads = (i: number): Tensor => qkv.select(2, i).transpose(1, 2);
    const k = concat([this.prefix.layer('keys', this.l, B), heads(1)], 2);
    const v = concat([this.prefix.layer('values', this.l, B), heads(2)], 2);
    // End-aligned causal mask: query t sees the whole prefix and real keys ≤ t.
    const y = scaledDotProductAttention(heads(0), k, v, { causal: true });
    const out = this.inner.c_proj.forward(y.transpose(1, 2).reshape([B, T, C]));
    return this.inner.resid_dropout.forward(out);
  }
}

/** BERT self-attention with layer `l`'s prefix in front; the prefix is never masked. */
class PrefixedBertSelfAttention extends Module {
  constructor(
    private readonly inner: BertSelfAttention,
    private readonly prefix: PrefixEncoder,
    private readonly l: number,
  ) {
    super();
  }

  forward(x: Tensor, mask: Tensor): Tensor {
    const [B, T, C] = x.shape as [number, number, number];
    const H = this.prefix.numHeads;
    const D = C / H;
    const P = this.prefix.numVirtualTokens;
    const heads = (t: Tensor): Tensor => t.reshape([B, T, H, D]).transpose(1, 2);
    const q = heads(linear(x, this.inner.query.weight, this.inner.query.bias ?? undefined));
    const k = concat([this.prefix.layer('keys', this.l, B), heads(this.inner.key.forward(x))], 2);
    const v = concat([this.prefix.layer('values', this.l, B), heads(this.inner.value.forward(x))], 2);
    const fullMask = concat([Tensor.zeros([mask.shape[0]!, 1, 1, P]), mask], 3);
    const y = scaledDotProductAttention(q, k, v, { mask: add(fullMask, Tensor.zeros([B, 1, T, P + T])) });
    return y.transpose(1, 2).reshape([B, T, C]);
  }
}

/**
 * Adds a P-token prefix to every attention layer of a GPT-2 or BERT model (whose weights should be
 * frozen) and returns the prefix module holding the only trainable parameters.
 */
export function injectPrefix(model: Module, numVirtualTokens: number, generator: Generator = defaultGenerator): PrefixEncoder {
  if (model instanceof GPT) {
    const c = model.config;
    const prefix = new PrefixEncoder(c.nLayer, c.nHead, numVirtualTokens, c.nEmbd / c.nHead, generator);
    model.transformer.h.items.forEach((block, l) => {
      block.replaceModule('attn', new PrefixedGPTAttention(block.attn, prefix, l));
    });
    return prefix;
  }
  if (model instanceof BertForPreTraining) {
    const c = model.config;
    const prefix = new PrefixEncoder(c.numHiddenLayers, c.numAttentionHeads, numVirtualTokens, c.hiddenSize / c.numAttentionHeads, generator);
    model.bert.encoder.layer.items.forEach((layer, l) => {
      layer.attention.replaceModule('self', new PrefixedBertSelfAttention(layer.attention.self, prefix, l));
    });
    return prefix;
  }
  throw new TypeError(`prefix tuning supports GPT-2 and BERT models, not ${model.constructor.name}`);
}
