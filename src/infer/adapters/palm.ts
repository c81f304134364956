/**
 * PaLM-style models (src/models/palm.ts) on the paged KV cache: parallel blocks
 * x + Attention(LN(x)) + SwiGLU(LN(x)) with one LayerNorm feeding both branches, multi-query
 * attention (one key/value head, so the cache is one head wide), rotary (rotate-half, PaLM's own
 * angle formula) and the tied head.
 */
import { add, linear } from '../../tensor/index.js';
import { swigluInference } from '../../nn/layers.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { PaLM, ropeHalfTables } from '../../models/palm.js';
import type { PagedKVCache } from '../paged-kv.js';
import { PagedDecoder, RopeTables, pagedAttentionCore, type StepLayout } from './common.js';
import type { KVShape } from './types.js';

export class PaLMPagedModel extends PagedDecoder {
  readonly family = 'palm';
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly hiddenSize: number;
  readonly kvShape: KVShape;
  protected readonly nLayer: number;
  private readonly rope: RopeTables;

  constructor(readonly module: PaLM) {
    super();
    const c = module.config;
    this.vocabSize = c.vocabSize;
    this.contextLength = c.blockSize;
    this.hiddenSize = c.nEmbd;
    this.nLayer = c.nLayer;
    const D = c.nEmbd / c.nHead;
    this.kvShape = { nLayer: c.nLayer, kvHeads: 1, headDim: D };
    this.rope = new RopeTables((rows) => ropeHalfTables(rows, D, c.ropeTheta), c.blockSize);
  }

  protected embed(lay: StepLayout): Tensor {
    this.rope.ensure(lay.positions);
    return this.module.embed.forward(Tensor.fromArray(lay.ids, [lay.tokens], 'i32'));
  }

  protected layer(i: number, x: Tensor, lay: StepLayout, kv: PagedKVCache): Tensor {
    const block = this.module.layers.items[i]!;
    const h = block.norm.forward(x);
    const q = block.attn.q_proj.forward(h);
    const k = block.attn.k_proj.forward(h);
    const v = block.attn.v_proj.forward(h);
    const y = pagedAttentionCore(q, k, v, i, this.module.config.nHead, this.kvShape, lay, kv, this.rope);
    q.dispose();
    k.dispose();
    v.dispose();
    const a = block.attn.o_proj.forward(y);
    y.dispose();
    const m = swigluInference(block.mlp, h);
    h.dispose();
    const xa = add(x, a);
    a.dispose();
    const out = add(xa, m);
    xa.dispose();
    m.dispose();
    return out;
  }

  protected finalNorm(x: Tensor): Tensor {
    return this.module.norm.forward(x);
  }

  protected head(h: Tensor): Tensor {
    return linear(h, this.module.embed.weight);
  }
}

export function palmAdapter(module: Module): PaLMPagedModel | null {
  return module instanceof PaLM ? new PaLMPagedModel(module) : null;
}
