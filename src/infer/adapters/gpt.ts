/**
 * GPT-2 (src/models/gpt.ts) on the paged KV cache: token + learned position embeddings, pre-LN
 * blocks whose fused c_attn (HF Conv1D, stored in×out) runs once over all the step's tokens and is
 * split into q | k | v, multi-head paged attention (no rotary), the GELU MLP (or a GPT-MoE block's
 * routed experts, through the same forwardInference), ln_f and the tied head.
 */
import { add, embedding, linear } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Conv1D } from '../../nn/layers.js';
import type { Module } from '../../nn/module.js';
import { GPT } from '../../models/gpt.js';
import type { PagedKVCache } from '../paged-kv.js';
import { PagedDecoder, columns, pagedAttentionCore, type StepLayout } from './common.js';
import type { KVShape } from './types.js';

/** x·W + b for an HF Conv1D, through the layer's own forward so wrapped layers (LoRA, quantized) take part. */
function conv1d(x: Tensor, layer: Conv1D): Tensor {
  return layer.forward(x);
}

export class GPTPagedModel extends PagedDecoder {
  readonly family = 'gpt2';
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly hiddenSize: number;
  readonly kvShape: KVShape;
  protected readonly nLayer: number;

  constructor(readonly module: GPT) {
    super();
    const c = module.config;
    this.vocabSize = c.vocabSize;
    this.contextLength = c.blockSize;
    this.hiddenSize = c.nEmbd;
    this.nLayer = c.nLayer;
    this.kvShape = { nLayer: c.nLayer, kvHeads: c.nHead, headDim: c.nEmbd / c.nHead };
  }

  protected embed(lay: StepLayout): Tensor {
    const tr = this.module.transformer;
    const tok = tr.wte.forward(Tensor.fromArray(lay.ids, [lay.tokens], 'i32'));
    const pos = embedding(Tensor.fromArray(lay.positions, [lay.tokens], 'i32'), tr.wpe.weight);
    const x = add(tok, pos);
    tok.dispose();
    pos.dispose();
    return x;
  }

  protected layer(i: number, x: Tensor, lay: StepLayout, kv: PagedKVCache): Tensor {
    const block = this.module.transformer.h.items[i]!;
    const C = this.hiddenSize;
    const h1 = block.ln_1.forward(x);
    const qkv = conv1d(h1, block.attn.c_attn);
    h1.dispose();
    const q = columns(qkv, 0, C);
    const k = columns(qkv, C, C);
    const v = columns(qkv, 2 * C, C);
    qkv.dispose();
    const y = pagedAttentionCore(q, k, v, i, this.kvShape.kvHeads, this.kvShape, lay, kv, null);
    q.dispose();
    k.dispose();
    v.dispose();
    const a = conv1d(y, block.attn.c_proj);
    y.dispose();
    const x1 = add(x, a);
    a.dispose();
    const h2 = block.ln_2.forward(x1);
    const m = block.mlp.forwardInference(h2);
    h2.dispose();
    const out = add(x1, m);
    x1.dispose();
    m.dispose();
    return out;
  }

  protected finalNorm(x: Tensor): Tensor {
    return this.module.transformer.ln_f.forward(x);
  }

  protected head(h: Tensor): Tensor {
    return linear(h, this.module.transformer.wte.weight);
  }
}

export function gptAdapter(module: Module): GPTPagedModel | null {
  return module instanceof GPT ? new GPTPagedModel(module) : null;
}
