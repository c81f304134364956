/**
 * AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW semantics): decoupled weight decay
 * p ← p·(1 − lr·wd), then the bias-corrected Adam update. Parameters live in flat buffers (see
 * flat.ts); a step is one fused backend kernel over the decayed region and one over the rest.
 */
import { getBackend } from '../tensor/backend/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { type DecayFilter, FlatParams, type OptimizerState, checkHyper, checkState, decayRank2 } from './flat.js';

export interface AdamWOptions {
  lr: number;
  /** (beta1, beta2), default (0.9, 0.999) as PyTorch. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Default 0.01 as PyTorch's AdamW. Applied only where `decay` says. */
  weightDecay?: number;
  /** Which parameters decay. Default: rank >= 2 (matmul weights and embeddings; not biases and norms), as nanoGPT. */
  decay?: DecayFilter;
}

export class AdamW {
  /** Learning rate of the next step; set it each iteration from a schedule. */
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken. */
  stepCount = 0;
  readonly flat: FlatParams;
  private readonly m: Float32Array;
  private readonly v: Float32Array;

  /**
   * Takes over the parameters: their data moves into the flat buffer (the tensors stay valid and
   * become views of it) and each `.grad` becomes a view of the flat gradient buffer.
   */
  constructor(params: readonly (readonly [string, Tensor])[], opts: AdamWOptions) {
    const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
    this.lr = opts.lr;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    checkHyper('AdamW', 'lr', this.lr, 0, Infinity);
    checkHyper('AdamW', 'beta1', beta1, 0, 1, true);
    checkHyper('AdamW', 'beta2', beta2, 0, 1, true);
    checkHyper('AdamW', 'eps', this.eps, 0, Infinity);
    checkHyper('AdamW', 'weightDecay', this.weightDecay, 0, Infinity);
    this.flat = new FlatParams(params, opts.decay ?? decayRank2, 'AdamW');
    this.m = new Float32Array(this.flat.numel);
    this.v = new Float32Array(this.flat.numel);
  }

  step(): void {
    checkHyper('AdamW.step', 'lr', this.lr, 0, Infinity);
    const flat = this.flat;
    flat.syncGrads('AdamW.step');
    this.stepCount++;
    const b = getBackend();
    const regions: [number, number, number][] = [
      [0, flat.decayNumel, this.weightDecay],
      [flat.decayNumel, flat.numel, 0],
    ];
    for (const [begin, end, weightDecay] of regions) {
      if (end === begin) continue;
      b.adamw(flat.data.subarray(begin, end), flat.grad.subarray(begin, end), this.m.subarray(begin, end), this.v.subarray(begin, end), {
        lr: this.lr,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        weightDecay,
        step: this.stepCount,
      });
    }
  }

  /** Zeroes every gradient in place (the flat views stay installed). */
  zeroGrad(): void {
    this.flat.zeroGrad();
  }

  /** A copy of the state (later steps don't change it). */
  stateDict(): OptimizerState {
    return { step: this.stepCount, m: this.m.slice(), v: this.v.slice(), names: this.flat.names, lr: this.lr };
  }

  /** Restores a state from `stateDict()` for the same parameters; the next step continues bit for bit. */
  loadStateDict(s: OptimizerState): void {
    checkState('AdamW', this.flat, s, this.m.length, this.v.length);
    this.m.set(s.m);
    this.v.set(s.v);
    this.stepCount = s.step;
    this.lr = s.lr;
  }
}
