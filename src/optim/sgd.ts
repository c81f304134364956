/**
 * SGD with momentum, PyTorch's torch.optim.SGD semantics:
 *   g ← grad + wd·p;  buf ← g on the first step, else momentum·buf + (1 − dampening)·g;
 *   g ← g + momentum·buf (Nesterov) or buf;  p ← p − lr·g.
 * Parameters live in flat buffers (see flat.ts), so a step is one pass over contiguous memory.
 */
import type { Tensor } from '../tensor/tensor.js';
import { type DecayFilter, FlatParams, type OptimizerState, checkHyper, checkState, decayRank2 } from './flat.js';

export interface SGDOptions {
  lr: number;
  /** Default 0 (plain SGD). */
  momentum?: number;
  /** Default 0. */
  dampening?: number;
  /** Default false; needs momentum > 0 and dampening 0, as PyTorch. */
  nesterov?: boolean;
  /** L2 penalty added to the gradient, default 0. Applied only where `decay` says. */
  weightDecay?: number;
  /** Which parameters decay. Default: rank >= 2 (as AdamW here, nanoGPT's split). */
  decay?: DecayFilter;
}

export class SGD {
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  stepCount = 0;
  readonly flat: FlatParams;
  /** Momentum buffer (empty without momentum). */
  private readonly buf: Float32Array;

  constructor(params: readonly (readonly [string, Tensor])[], opts: SGDOptions) {
    this.lr = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    checkHyper('SGD', 'lr', this.lr, 0, Infinity);
    checkHyper('SGD', 'momentum', this.momentum, 0, Infinity);
    checkHyper('SGD', 'dampening', this.dampening, -Infinity, Infinity);
    checkHyper('SGD', 'weightDecay', this.weightDecay, 0, Infinity);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError('SGD: nesterov momentum requires momentum > 0 and dampening 0');
    }
    this.flat = new FlatParams(params, opts.decay ?? decayRank2, 'SGD');
    this.buf = new Float32Array(this.momentum !== 0 ? this.flat.numel : 0);
  }

  step(): void {
    checkHyper('SGD.step', 'lr', this.lr, 0, Infinity);
    const flat = this.flat;
    flat.syncGrads('SGD.step');
    const p = flat.data;
    const grad = flat.grad;
    const buf = this.buf;
    const { lr, momentum, nesterov } = this;
    const keep = 1 - this.dampening;
    const first = this.stepCount === 0;
    const regions: [number, number, number][] = [
      [0, flat.decayNumel, this.weightDecay],
      [flat.decayNumel, flat.numel, 0],
    ];
    // Each stored value is rounded to f32 (the typed arrays do it), as PyTorch's f32 ops round.
    for (const [begin, end, wd] of regions) {
      for (let i = begin; i < end; i++) {
        let g = grad[i]!;
        if (wd !== 0) g = Math.fround(g + wd * p[i]!);
        if (momentum !== 0) {
          const b = first ? g : Math.fround(momentum * buf[i]! + keep * g);
          buf[i] = b;
          g = nesterov ? Math.fround(g + momentum * b) : b;
        }
        p[i] = p[i]! - lr * g;
      }
    }
    this.stepCount++;
  }

  zeroGrad(): void {
    this.flat.zeroGrad();
  }

  stateDict(): OptimizerState {
    return { step: this.stepCount, m: this.buf.slice(), v: new Float32Array(0), names: this.flat.names, lr: this.lr };
  }

  loadStateDict(s: OptimizerState): void {
    checkState('SGD', this.flat, s, this.buf.length, 0);
    this.buf.set(s.m);
    this.stepCount = s.step;
    this.lr = s.lr;
  }
}
