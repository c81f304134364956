/**
 * The distillation loss and its gradients against PyTorch (scripts/fixtures/compress_distill.py):
 * α·T²·kl_div(log_softmax(z_s/T), softmax(z_t/T), 'batchmean') + (1 − α)·CE, plus β·MSE(h_s Pᵀ, h_t).
 */
import { describe, expect, it } from 'vitest';
import { distillLoss, hiddenStateLoss } from '../../src/compress/distill.js';
import { Tensor } from '../../src/tensor/tensor.js';
import '../../src/tensor/index.js';
import { readFixture } from './fixtures.js';

interface DistillCase {
  alpha: number;
  temperature: number;
  hiddenWeight: number;
  shape: [number, number, number];
  hidden: [number, number];
  studentLogits: number[];
  teacherLogits: number[];
  targets: number[];
  studentHidden: number[];
  teacherHidden: number[];
  projection: number[];
  loss: number;
  kl: number;
  ce: number;
  gradLogits: number[];
  gradHidden: number[];
  gradProjection: number[];
}
const fx = readFixture<{ cases: DistillCase[] }>('distill.json');

function close(got: Float32Array | number[], want: number[], tol = 1e-5): void {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThan(tol + 1e-4 * Math.abs(w)));
}

describe('distillation loss vs PyTorch', () => {
  for (const c of fx.cases) {
    it(`α=${c.alpha} T=${c.temperature} β=${c.hiddenWeight}`, () => {
      const [B, T, V] = c.shape;
      const [Ds, Dt] = c.hidden;
      const zs = Tensor.fromArray(Float32Array.from(c.studentLogits), [B, T, V]).requiresGrad_();
      const zt = Tensor.fromArray(Float32Array.from(c.teacherLogits), [B, T, V]);
      const y = Tensor.fromArray(Int32Array.from(c.targets), [B, T], 'i32');
      const hs = Tensor.fromArray(Float32Array.from(c.studentHidden), [B, T, Ds]).requiresGrad_();
      const ht = Tensor.fromArray(Float32Array.from(c.teacherHidden), [B, T, Dt]);
      const proj = Tensor.fromArray(Float32Array.from(c.projection), [Dt, Ds]).requiresGrad_();
      const { loss: soft, kl, ce } = distillLoss(zs, zt, y, { alpha: c.alpha, temperature: c.temperature });
      expect(kl.item()).toBeCloseTo(c.kl, 5);
      expect(ce.item()).toBeCloseTo(c.ce, 5);
      const loss = c.hiddenWeight > 0 ? soft.add(hiddenStateLoss(hs, ht, proj, c.hiddenWeight)) : soft;
      expect(loss.item()).toBeCloseTo(c.loss, 5);
      loss.backward();
      close(zs.grad!.f32(), c.gradLogits);
      if (c.hiddenWeight > 0) {
        close(hs.grad!.f32(), c.gradHidden);
        close(proj.grad!.f32(), c.gradProjection);
      }
    });
  }

  it('rejects mismatched vocabularies and bad hyper-parameters', () => {
    const a = Tensor.zeros([2, 5]);
    const y = Tensor.fromArray(Int32Array.from([0, 1]), [2], 'i32');
    expect(() => distillLoss(a, Tensor.zeros([2, 4]), y, { alpha: 0.5, temperature: 2 })).toThrow(/vocabulary/);
    expect(() => distillLoss(a, a, y, { alpha: 1.5, temperature: 2 })).toThrow(/alpha/);
    expect(() => distillLoss(a, a, y, { alpha: 0.5, temperature: 0 })).toThrow(/temperature/);
  });
});
