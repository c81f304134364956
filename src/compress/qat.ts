/**
 * Quantization-aware training: during fine-tuning every selected Linear computes with its weights
 * quantized and dequantized (the exact values round-to-nearest will store), while the optimizer
 * keeps updating the f32 master weights. Rounding has no useful gradient, so the backward pass is
 * the straight-through estimator (Bengio et al. 2013): the gradient passes unchanged where the
 * weight lies inside the format's clipping range and is zero where it was clipped.
 */
import type { Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { record } from '../tensor/autograd.js';
import { linear } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';
import { findLinears, type LinearFilter } from './calibrate.js';
import { dequantizeMatrix, groupSize, quantizeMatrix, type QuantFormat } from './quant/formats.js';

/**
 * Fake quantization of a weight [out, in] in `format` (per-group, round-to-nearest), with the STE
 * backward: ∂/∂w = 1 where |w − Q(w)| ≤ half a quantization step (not clipped), else 0.
 */
export function fakeQuant(weight: Tensor, format: QuantFormat): Tensor {
  if (weight.ndim !== 2) throw new RangeError(`fakeQuant: expected a weight [out, in], got ${weight.ndim} dims`);
  const [rows, cols] = weight.shape as [number, number];
  const w = weight.f32('fakeQuant');
  const q = dequantizeMatrix(quantizeMatrix(w, rows, cols, format));
  const g = groupSize(format, cols);
  const levels = format === 'q8_0' || format === 'int8' ? 127 : format === 'tq2' ? 1 : 8;
  const pass = new Float32Array(w.length);
  for (let start = 0; start < w.length; start += g) {
    let amax = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let j = start; j < start + g; j++) {
      amax = Math.max(amax, Math.abs(w[j]!));
      lo = Math.min(lo, w[j]!);
      hi = Math.max(hi, w[j]!);
    }
    // Half a step of the group's grid (asymmetric formats span [min, max] in 15 steps).
    const step = format === 'q4_1' || format === 'q4_g128' ? (hi - lo) / 15 : format === 'tq2' ? amax : amax / levels;
    const tol = step / 2 + 1e-7 * (amax + 1e-30) + 1e-3 * step;
    for (let j = start; j < start + g; j++) pass[j] = Math.abs(w[j]! - q[j]!) <= tol ? 1 : 0;
  }
  const out = Tensor.fromArray(q, [rows, cols]);
  return record(out, 'fakeQuant', [weight], (gradOut) => {
    const go = gradOut.f32('fakeQuant.backward');
    const gi = new Float32Array(go.length);
    for (let i = 0; i < gi.length; i++) gi[i] = go[i]! * pass[i]!;
    return [Tensor.fromArray(gi, [rows, cols])];
  });
}

/** Makes each selected Linear compute with fake-quantized weights; returns a function that undoes it. */
export function enableFakeQuant(model: Module, format: QuantFormat, filter: LinearFilter = {}): () => void {
  const layers: Linear[] = findLinears(model, filter).map(([, l]) => l);
  for (const l of layers) {
    l.forward = (x: Tensor): Tensor => linear(x, fakeQuant(l.weight, format), l.bias ?? undefined);
  }
  return () => {
    for (const l of layers) delete (l as { forward?: unknown }).forward;
  };
}
