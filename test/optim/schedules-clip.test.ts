import { describe, expect, it } from 'vitest';
import { SGD, clipGradNorm, constantWithWarmup, cosineWithWarmup, linearWithWarmup } from '../../src/optim/index.js';
import { Tensor } from '../../src/tensor/tensor.js';

describe('learning-rate schedules', () => {
  const o = { lr: 1e-3, minLr: 1e-4, warmupIters: 100, lrDecayIters: 2000 };

  it('cosineWithWarmup: warm-up (it+1)/(warmup+1), peak, half-way, floor', () => {
    const f = cosineWithWarmup(o);
    expect(f(0)).toBe(1e-3 / 101);
    expect(f(99)).toBe((1e-3 * 100) / 101);
    expect(f(100)).toBe(1e-3); // cos(0) = 1
    expect(f(1050)).toBeCloseTo((1e-3 + 1e-4) / 2, 15);
    expect(f(2000)).toBeCloseTo(1e-4, 15);
    expect(f(2001)).toBe(1e-4);
    expect(f(1e6)).toBe(1e-4);
    for (let it = 100; it < 2000; it += 50) expect(f(it + 50)).toBeLessThan(f(it));
  });

  it('linearWithWarmup and constantWithWarmup', () => {
    const lin = linearWithWarmup(o);
    expect(lin(0)).toBe(1e-3 / 101);
    expect(lin(100)).toBe(1e-3);
    expect(lin(1050)).toBeCloseTo((1e-3 + 1e-4) / 2, 15);
    expect(lin(575)).toBeCloseTo(1e-3 - 0.25 * 9e-4, 15);
    expect(lin(2000)).toBeCloseTo(1e-4, 15);
    expect(lin(5000)).toBe(1e-4);
    const c = constantWithWarmup({ lr: 0.5, warmupIters: 3 });
    expect([0, 1, 2, 3, 4, 100].map(c)).toEqual([0.125, 0.25, 0.375, 0.5, 0.5, 0.5]);
    expect(constantWithWarmup({ lr: 0.5 })(0)).toBe(0.5);
  });

  it('no warm-up and decay ending at the warm-up end are well defined', () => {
    expect(cosineWithWarmup({ ...o, warmupIters: 0 })(0)).toBe(1e-3);
    const degenerate = cosineWithWarmup({ ...o, lrDecayIters: 100 });
    expect(degenerate(99)).toBe((1e-3 * 100) / 101);
    expect(degenerate(100)).toBe(1e-4);
  });

  it('refuses bad options and iterations', () => {
    expect(() => cosineWithWarmup({ ...o, lrDecayIters: 50 })).toThrow(/lrDecayIters must be an integer >= warmupIters \(100\)/);
    expect(() => linearWithWarmup({ ...o, lr: Number.NaN })).toThrow(/lr must be a finite number/);
    expect(() => constantWithWarmup({ lr: 1, warmupIters: -1 })).toThrow(/warmupIters/);
    expect(() => cosineWithWarmup(o)(-1)).toThrow(/iteration must be an integer >= 0/);
    expect(() => cosineWithWarmup(o)(1.5)).toThrow(/iteration/);
  });
});

describe('clipGradNorm', () => {
  function withGrads(values: number[][]): Tensor[] {
    return values.map((v) => {
      const p = Tensor.zeros([v.length]).requiresGrad_();
      p.grad = Tensor.fromArray(Float32Array.from(v), [v.length]);
      return p;
    });
  }

  it('returns the global L2 norm and scales by maxNorm / (norm + 1e-6) as PyTorch (f32 factor)', () => {
    const params = withGrads([[3, 0], [4], [0, 0, 12]]); // norm 13
    const norm = clipGradNorm(params, 6.5);
    expect(norm).toBe(13);
    const coef = Math.fround(6.5 / Math.fround(13 + 1e-6));
    expect(coef).toBeLessThan(0.5); // the 1e-6 is there
    expect(params.map((p) => p.grad!.toArray())).toEqual([[Math.fround(3 * coef), 0], [Math.fround(4 * coef)], [0, 0, Math.fround(12 * coef)]]);
  });

  it('leaves gradients alone at or under the limit, and skips parameters without one', () => {
    const params = withGrads([[0.3, -0.4]]);
    params.push(Tensor.zeros([3]).requiresGrad_());
    expect(clipGradNorm(params, 1)).toBeCloseTo(0.5, 7);
    expect(params[0]!.grad!.toArray()).toEqual([Math.fround(0.3), Math.fround(-0.4)]);
    // At exactly maxNorm PyTorch still multiplies by max / (norm + 1e-6) < 1 (a hair): so does Weft.
    const atLimit = withGrads([[1]]);
    expect(clipGradNorm(atLimit, 1)).toBe(1);
    expect(atLimit[0]!.grad!.toArray()).toEqual([Math.fround(1 / Math.fround(1 + 1e-6))]);
  });

  it('handles a non-contiguous gradient', () => {
    const p = Tensor.zeros([3, 2]).requiresGrad_();
    p.grad = Tensor.fromArray(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]).transpose(0, 1);
    const norm = clipGradNorm([p], 1);
    expect(norm).toBeCloseTo(Math.sqrt(91), 12);
    const coef = Math.fround(1 / Math.fround(Math.fround(Math.sqrt(91)) + 1e-6));
    expect(p.grad.toArray()).toEqual([1, 4, 2, 5, 3, 6].map((v) => Math.fround(v * coef)));
  });

  it('on an optimizer clips the flat buffer, same as on the tensors', () => {
    const make = (): Tensor[] => withGrads([[1, -2, 3], [4, 5]]);
    const loose = make();
    const owned = make();
    const opt = new SGD(owned.map((p, i) => [`p${i}`, p] as [string, Tensor]), { lr: 1 });
    expect(clipGradNorm(opt, 2)).toBe(clipGradNorm(loose, 2));
    owned.forEach((p, i) => expect(p.grad!.toArray()).toEqual(loose[i]!.grad!.toArray()));
    expect(Array.from(opt.flat.grad)).toEqual(loose.flatMap((p) => p.grad!.toArray()));
  });

  it('a non-finite norm is returned and the gradients are left for the caller to skip', () => {
    const params = withGrads([[1, Number.NaN]]);
    expect(clipGradNorm(params, 1)).toBeNaN();
    expect(params[0]!.grad!.toArray()[0]).toBe(1);
    expect(clipGradNorm(withGrads([[Infinity]]), 1)).toBe(Infinity);
    expect(() => clipGradNorm(params, 0)).toThrow(/maxNorm must be > 0/);
  });
});
