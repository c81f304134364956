/**
 * Mixtral (src/models/mixtral.ts) on the paged KV cache: LLaMA's attention path (RMSNorm, q/k/v over
 * all the step's tokens, rotate-half rotary per position, grouped-query paged attention, o_proj) with
 * the routed SwiGLU experts in place of the MLP. Routing is dropless at inference, so a token's
 * output never depends on which other sequences share its step (no capacity to compete for).
 */
import { add, linear } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { ropeTables } from '../../models/llama.js';
import { Mixtral } from '../../models/mixtral.js';
import type { PagedKVCache } from '../paged-kv.js';
import { PagedDecoder, RopeTables, pagedAttentionCore, type StepLayout } from './common.js';
import type { KVShape } from './types.js';

export class MixtralPagedModel extends PagedDecoder {
  readonly family = 'mixtral';
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly hiddenSize: number;
  readonly kvShape: KVShape;
  protected readonly nLayer: number;
  private readonly rope: RopeTables;

  constructor(readonly module: Mixtral) {
    super();
    const c = module.config;
    if (module.model.layers.items.some((l) => l.block_sparse_moe.evalCapacityFactor !== null)) {
      throw new Error('Mixtral serving: routing must be dropless at inference (evalCapacityFactor null), or batching would change outputs');
    }
    this.vocabSize = c.vocabSize;
    // The sliding window (when shorter than the context) is refused by the model rather than windowed.
    this.contextLength = module.contextLength;
    this.hiddenSize = c.hiddenSize;
    this.nLayer = c.nLayer;
    this.kvShape = { nLayer: c.nLayer, kvHeads: c.nKVHead, headDim: c.headDim };
    this.rope = new RopeTables((rows) => ropeTables(c, 0, rows), this.contextLength);
  }

  protected embed(lay: StepLayout): Tensor {
    this.rope.ensure(lay.positions);
    return this.module.model.embed_tokens.forward(Tensor.fromArray(lay.ids, [lay.tokens], 'i32'));
  }

  protected layer(i: number, x: Tensor, lay: StepLayout, kv: PagedKVCache): Tensor {
    const layer = this.module.model.layers.items[i]!;
    const attn = layer.self_attn;
    const n1 = layer.input_layernorm.forward(x);
    const q = attn.q_proj.forward(n1);
    const k = attn.k_proj.forward(n1);
    const v = attn.v_proj.forward(n1);
    n1.dispose();
    const y = pagedAttentionCore(q, k, v, i, this.module.config.nHead, this.kvShape, lay, kv, this.rope);
    q.dispose();
    k.dispose();
    v.dispose();
    const a = attn.o_proj.forward(y);
    y.dispose();
    const h = add(x, a);
    a.dispose();
    const n2 = layer.post_attention_layernorm.forward(h);
    const m = layer.block_sparse_moe.forwardInference(n2);
    n2.dispose();
    const out = add(h, m);
    h.dispose();
    m.dispose();
    return out;
  }

  protected finalNorm(x: Tensor): Tensor {
    return this.module.model.norm.forward(x);
  }

  protected head(h: Tensor): Tensor {
    const lm = this.module.lm_head;
    return lm === null ? linear(h, this.module.model.embed_tokens.weight) : lm.forward(h);
  }
}

export function mixtralAdapter(module: Module): MixtralPagedModel | null {
  return module instanceof Mixtral ? new MixtralPagedModel(module) : null;
}
