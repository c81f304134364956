/**
 * Gradient clipping by global L2 norm, PyTorch's clip_grad_norm_: the norm is taken over all
 * gradients together; if maxNorm / (norm + 1e-6) < 1 every gradient is scaled by that factor.
 */
import { copyInto, Tensor } from '../tensor/tensor.js';
import type { FlatParams } from './flat.js';

/** Anything holding flat buffers (AdamW, SGD). */
export interface HasFlatParams {
  readonly flat: FlatParams;
}

/**
 * Clips in place and returns the total norm before clipping. A non-finite norm (a NaN/Inf gradient)
 * is returned as is and the gradients are left untouched: check it with Number.isFinite and skip the step.
 */
export function clipGradNorm(params: readonly Tensor[] | HasFlatParams, maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  // (Array.isArray first: arrays have a `flat` method, so `'flat' in params` can't tell them apart.)
  if (!Array.isArray(params)) {
    const flat = (params as HasFlatParams).flat;
    flat.syncGrads('clipGradNorm');
    const norm = Math.sqrt(sumSquares(flat.grad));
    const coef = clipCoef(norm, maxNorm);
    if (coef < 1) scale(flat.grad, coef);
    return norm;
  }
  const grads = (params as readonly Tensor[]).map((p) => p.grad).filter((g): g is Tensor => g !== null);
  let total = 0;
  for (const g of grads) total += sumSquares(g.f32('clipGradNorm'));
  const norm = Math.sqrt(total);
  const coef = clipCoef(norm, maxNorm);
  if (coef < 1) {
    for (const g of grads) {
      if (g.isContiguous()) {
        scale(g.storage.data.subarray(g.offset, g.offset + g.numel) as Float32Array, coef);
      } else {
        const d = g.contiguous();
        scale(d.storage.data as Float32Array, coef);
        copyInto(d, g);
        d.dispose();
      }
    }
  }
  return norm;
}

/** PyTorch computes the factor in f32: max_norm / (total_norm + 1e-6). */
function clipCoef(norm: number, maxNorm: number): number {
  return Math.fround(maxNorm / Math.fround(Math.fround(norm) + 1e-6));
}

/** Sum of squares in f64 (more accurate than PyTorch's f32 per-tensor norms; agrees to ~1e-7 relative). */
function sumSquares(x: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = x.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a = x[i]!;
    const b = x[i + 1]!;
    const c = x[i + 2]!;
    const d = x[i + 3]!;
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (; i < n; i++) s0 += x[i]! * x[i]!;
  return s0 + s1 + s2 + s3;
}

/** x *= coef, each product rounded to f32 exactly as an f32 multiply would. */
function scale(x: Float32Array, coef: number): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * coef;
}
