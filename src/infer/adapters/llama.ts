/**
 * LLaMA / Qwen2 (src/models/llama.ts; also what llama2.c and GGUF files load as) on the paged KV
 * cache: RMSNorm, q/k/v projections over all the step's tokens (Qwen2's biases included, since the
 * Linear modules carry them), rotate-half rotary at each token's position, grouped-query paged
 * attention, o_proj, SwiGLU MLP, final norm and the (possibly tied) head.
 */
import { add, linear } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { Llama, type LlamaAttention, type LlamaConfig, ropeTables } from '../../models/llama.js';
import type { Embedding, Linear, RMSNorm } from '../../nn/layers.js';
import type { PagedKVCache } from '../paged-kv.js';
import { PagedDecoder, RopeTables, pagedAttentionCore, type StepLayout } from './common.js';
import type { KVShape } from './types.js';

/** What the LLaMA-shaped families share (LLaMA, Qwen2, Mixtral): only the feed-forward differs. */
export interface LlamaShaped extends Module {
  readonly config: LlamaConfig;
  readonly contextLength: number;
  readonly model: {
    readonly embed_tokens: Embedding;
    readonly layers: { readonly items: readonly { self_attn: LlamaAttention; input_layernorm: RMSNorm; post_attention_layernorm: RMSNorm }[] };
    readonly norm: RMSNorm;
  };
  readonly lm_head: Linear | null;
}

/** The paged forward of a LLaMA-shaped decoder; subclasses say what the feed-forward of layer i is. */
export abstract class LlamaFamilyPagedModel<M extends LlamaShaped> extends PagedDecoder {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly hiddenSize: number;
  readonly kvShape: KVShape;
  protected readonly nLayer: number;
  private readonly rope: RopeTables;

  constructor(
    readonly module: M,
    readonly family: string,
  ) {
    super();
    const c = module.config;
    this.vocabSize = c.vocabSize;
    this.contextLength = module.contextLength;
    this.hiddenSize = c.hiddenSize;
    this.nLayer = c.nLayer;
    this.kvShape = { nLayer: c.nLayer, kvHeads: c.nKVHead, headDim: c.headDim };
    // Positions never pass the context length here, so dynamic NTK scaling never changes the tables.
    this.rope = new RopeTables((rows) => ropeTables(c, 0, rows), this.contextLength);
  }

  /** Layer i's feed-forward on the post-attention-normalised states (inference, no graph). */
  protected abstract feedForward(i: number, x: Tensor): Tensor;

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
    const m = this.feedForward(i, n2);
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

export class LlamaPagedModel extends LlamaFamilyPagedModel<Llama> {
  constructor(module: Llama) {
    super(module, module.config.modelType);
  }

  protected feedForward(i: number, x: Tensor): Tensor {
    return this.module.model.layers.items[i]!.mlp.forwardInference(x);
  }
}

export function llamaAdapter(module: Module): LlamaPagedModel | null {
  return module instanceof Llama ? new LlamaPagedModel(module) : null;
}
