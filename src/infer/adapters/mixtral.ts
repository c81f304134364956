/**
 * Mixtral (src/models/mixtral.ts) on the paged KV cache: LLaMA's paged decoder (LlamaFamilyPagedModel)
 * with the routed SwiGLU experts in place of the MLP. Routing is dropless at inference, so a token's
 * output never depends on which other sequences share its step (no capacity to compete for).
 */
import type { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { Mixtral } from '../../models/mixtral.js';
import { LlamaFamilyPagedModel } from './llama.js';

export class MixtralPagedModel extends LlamaFamilyPagedModel<Mixtral> {
  constructor(module: Mixtral) {
    if (module.model.layers.items.some((l) => l.block_sparse_moe.evalCapacityFactor !== null)) {
      throw new Error('Mixtral serving: routing must be dropless at inference (evalCapacityFactor null), or batching would change outputs');
    }
    // The sliding window (when shorter than the context) is refused by the model rather than windowed.
    super(module, 'mixtral');
  }

  protected feedForward(i: number, x: Tensor): Tensor {
    return this.module.model.layers.items[i]!.block_sparse_moe.forwardInference(x);
  }
}

export function mixtralAdapter(module: Module): MixtralPagedModel | null {
  return module instanceof Mixtral ? new MixtralPagedModel(module) : null;
}
