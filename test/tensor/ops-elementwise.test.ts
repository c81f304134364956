/**
 * Behaviour of the elementwise, reduction and indexing ops on both backends: hand-computed values,
 * broadcasting, keepdim, negative dims, scalar operands, NaN propagation, PyTorch's gradient
 * conventions at kinks and ties, and errors. Reductions are also compared with a plain-loop float64
 * reference over every subset of axes; native is compared with js on random inputs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../../src/tensor/autograd.js';
import { type BackendName, getBackend, nativeAvailable, setBackend } from '../../src/tensor/backend/index.js';
import { tensor } from '../../src/tensor/creation.js';
import * as E from '../../src/tensor/ops/elementwise.js';
import { gather, indexSelect, scatterAdd } from '../../src/tensor/ops/indexing.js';
import { argmax, argmin, logsumexp, max, mean, min, sum, variance } from '../../src/tensor/ops/reduce.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const backends: BackendName[] = nativeAvailable() ? ['js', 'native'] : ['js'];

const leaf = (values: Parameters<typeof tensor>[0]): Tensor => tensor(values, { requiresGrad: true });
const ids = (values: number[] | number[][]): Tensor => tensor(values, { dtype: 'i32' });

function randomTensor(shape: readonly number[], seed: number, lo = -2, hi = 2): Tensor {
  const g = new Generator(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromArray(Float32Array.from({ length: n }, () => lo + (hi - lo) * g.uniform()), shape);
}

/** Elementwise closeness with a message naming the largest difference. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-6, atol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue; // covers ±Infinity
    const diff = Math.abs(a - e);
    if (!(diff <= atol + rtol * Math.abs(e)) && (worst < 0 || !(diff <= worstDiff))) {
      worst = i;
      worstDiff = diff;
    }
  }
  if (worst >= 0) {
    expect.fail(`element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (|diff| ${worstDiff})`);
  }
}

const f32 = (xs: number[]): number[] => Array.from(Float32Array.from(xs));

/**
 * Plain-loop reduction reference in float64: for every output position (reduced axes kept as 1),
 * the values along the reduced axes in row-major order, folded by `fold`.
 */
function refReduce(x: Tensor, axes: number[], fold: (values: number[]) => number): number[] {
  const shape = x.shape;
  const data = x.toArray();
  const keep = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outN = keep.reduce((a, b) => a * b, 1);
  const buckets: number[][] = Array.from({ length: outN }, () => []);
  for (let flat = 0; flat < data.length; flat++) {
    let rest = flat;
    let outIdx = 0;
    let mult = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      if (!axes.includes(d)) outIdx += c * mult;
      mult *= keep[d]!;
    }
    buckets[outIdx]!.push(data[flat]!);
  }
  return buckets.map(fold);
}

const refSum = (v: number[]): number => v.reduce((a, b) => a + b, 0);
const refMean = (v: number[]): number => refSum(v) / v.length;
const refVar = (v: number[]): number => {
  const m = refMean(v);
  return v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1);
};
const refLse = (v: number[]): number => {
  const m = Math.max(...v);
  return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0));
};

describe.each(backends)('ops on the %s backend', (backend) => {
  beforeAll(() => {
    setBackend(backend);
  });

  describe('binary arithmetic', () => {
    it('computes with equal shapes', () => {
      const a = tensor([[1, 2, 3], [4, 5, 6]]);
      const b = tensor([[2, 4, 8], [-1, 0.5, 3]]);
      expect(E.add(a, b).tolist()).toEqual([[3, 6, 11], [3, 5.5, 9]]);
      expect(E.sub(a, b).tolist()).toEqual([[-1, -2, -5], [5, 4.5, 3]]);
      expect(E.mul(a, b).tolist()).toEqual([[2, 8, 24], [-4, 2.5, 18]]);
      expect(E.div(a, b).toArray()).toEqual(f32([0.5, 0.5, 3 / 8, -4, 10, 2]));
    });

    it('broadcasts [2,1] with [3] to [2,3], and [3] with [2,1,1] to [2,1,3]', () => {
      const col = tensor([[10], [20]]);
      const row = tensor([1, 2, 3]);
      const s = E.add(col, row);
      expect(s.shape).toEqual([2, 3]);
      expect(s.tolist()).toEqual([[11, 12, 13], [21, 22, 23]]);
      expect(E.sub(row, col).tolist()).toEqual([[-9, -8, -7], [-19, -18, -17]]);
      const r3 = E.mul(row, tensor([[[2]], [[-1]]]));
      expect(r3.shape).toEqual([2, 1, 3]);
      expect(r3.tolist()).toEqual([[[2, 4, 6]], [[-1, -2, -3]]]);
    });

    it('takes numbers on either side, and a 0-d tensor', () => {
      const x = tensor([1, 2, 4]);
      expect(E.add(x, 1).tolist()).toEqual([2, 3, 5]);
      expect(E.add(1, x).tolist()).toEqual([2, 3, 5]);
      expect(E.sub(x, 1).tolist()).toEqual([0, 1, 3]);
      expect(E.sub(10, x).tolist()).toEqual([9, 8, 6]);
      expect(E.mul(x, -2).tolist()).toEqual([-2, -4, -8]);
      expect(E.mul(3, x).tolist()).toEqual([3, 6, 12]);
      expect(E.div(x, 4).tolist()).toEqual([0.25, 0.5, 1]);
      expect(E.div(1, x).tolist()).toEqual([1, 0.5, 0.25]);
      expect(E.add(x, tensor(0.5)).tolist()).toEqual([1.5, 2.5, 4.5]);
      const both = E.add(2, 3);
      expect(both.shape).toEqual([]);
      expect(both.item()).toBe(5);
    });

    it('reads transposed, sliced and expanded operands without mixing up elements', () => {
      const base = tensor([[1, 2, 3], [4, 5, 6]]);
      const t = base.transpose(0, 1); // [[1,4],[2,5],[3,6]]
      expect(E.add(t, tensor([[100, 200]])).tolist()).toEqual([[101, 204], [102, 205], [103, 206]]);
      const stepped = tensor([0, 1, 2, 3, 4, 5, 6, 7]).slice(0, 1, 8, 3); // [1, 4, 7]
      expect(E.mul(stepped, 2).tolist()).toEqual([2, 8, 14]);
      expect(E.sub(10, stepped).tolist()).toEqual([9, 6, 3]);
      const expanded = tensor([[1], [2]]).expand(2, 3);
      expect(E.mul(expanded, tensor([1, 10, 100])).tolist()).toEqual([[1, 10, 100], [2, 20, 200]]);
    });

    it('pow: tensor and number exponents, number base, C special cases', () => {
      expect(E.pow(tensor([2, 3, 4]), tensor([3, 2, 0.5])).tolist()).toEqual([8, 9, 2]);
      expect(E.pow(tensor([2, -3]), 2).tolist()).toEqual([4, 9]);
      expect(E.pow(2, tensor([0, 1, 10])).tolist()).toEqual([1, 2, 1024]);
      const special = E.pow(tensor([NaN, 1, -8, 0]), tensor([0, NaN, 1 / 3, -1])).toArray();
      expect(special[0]).toBe(1); // pow(NaN, 0) = 1
      expect(special[1]).toBe(1); // pow(1, NaN) = 1
      expect(special[2]).toBeNaN(); // negative base, fractional exponent
      expect(special[3]).toBe(Infinity);
    });

    it('gradients: broadcast operands get their gradient summed to their own shape', () => {
      const a = leaf([[1, 2, 3], [4, 5, 6]]);
      const b = leaf([10, 20, 30]);
      sum(E.mul(a, b)).backward();
      expect(a.grad!.tolist()).toEqual([[10, 20, 30], [10, 20, 30]]);
      expect(b.grad!.tolist()).toEqual([5, 7, 9]);
      const c = leaf([[2], [4]]);
      const d = leaf([1, 2]);
      sum(E.div(d, c)).backward(); // [2,2] = d / c
      expect(c.grad!.toArray()).toEqual(f32([-(1 + 2) / 4, -(1 + 2) / 16]));
      expect(d.grad!.toArray()).toEqual(f32([0.5 + 0.25, 0.5 + 0.25]));
    });

    it('pow gradients follow PyTorch at zero: exponent 0 gives 0, d/db at base 0 gives 0', () => {
      const x = leaf([0, 2]);
      sum(E.pow(x, 0)).backward();
      expect(x.grad!.tolist()).toEqual([0, 0]);
      const base = leaf([0, 2]);
      const exponent = leaf([2, 3]);
      sum(E.pow(base, exponent)).backward();
      expect(base.grad!.tolist()).toEqual([0, 12]);
      expect(exponent.grad!.toArray()).toEqual(f32([0, 8 * Math.log(2)]));
    });

    it('refuses shape mismatches naming the op and both shapes', () => {
      const a = tensor([[1, 2, 3], [4, 5, 6]]);
      const b = tensor([1, 2]);
      for (const [name, op] of [
        ['add', E.add],
        ['sub', E.sub],
        ['mul', E.mul],
        ['div', E.div],
        ['pow', E.pow],
        ['maximum', E.maximum],
        ['lt', E.lt],
      ] as const) {
        expect(() => op(a, b)).toThrow(RangeError);
        expect(() => op(a, b)).toThrow(`${name}: shapes [2, 3] and [2] cannot be broadcast`);
      }
      expect(() => E.where(tensor([1, 0, 1]), a, tensor([[1], [2], [3]]))).toThrow(/where: shapes .*\[3, 1\]/);
    });

    it('refuses non-f32 tensors with a clear TypeError', () => {
      const i = tensor([1, 2], { dtype: 'i32' });
      const x = tensor([1, 2]);
      expect(() => E.add(i, x)).toThrow(/add: expected an f32 tensor, got i32/);
      expect(() => E.mul(x, i)).toThrow(TypeError);
      expect(() => E.exp(i)).toThrow(/exp: expected an f32 tensor, got i32/);
      expect(() => E.eq(i, 1)).toThrow(TypeError);
      expect(() => E.clamp(tensor([1], { dtype: 'bf16' }), 0, 1)).toThrow(/clamp: expected an f32 tensor, got bf16/);
    });
  });

  describe('unary functions', () => {
    it('match known values', () => {
      const cases: [string, (x: Tensor) => Tensor, number[], number[]][] = [
        ['neg', E.neg, [1, -2, 0], [-1, 2, -0]],
        ['exp', E.exp, [0, 1, -1], [1, Math.E, 1 / Math.E]],
        ['log', E.log, [1, Math.E, 0], [0, 1, -Infinity]],
        ['sqrt', E.sqrt, [4, 2, 0], [2, Math.SQRT2, 0]],
        ['rsqrt', E.rsqrt, [4, 0.25, 0], [0.5, 2, Infinity]],
        ['abs', E.abs, [-3, 2, -0], [3, 2, 0]],
        ['sin', E.sin, [0, Math.PI / 2, -Math.PI / 6], [0, 1, -0.5]],
        ['cos', E.cos, [0, Math.PI, Math.PI / 3], [1, -1, 0.5]],
        ['tanh', E.tanh, [0, 1, -20], [0, 0.7615941559557649, -1]],
        ['sigmoid', E.sigmoid, [0, 100, -100, 2], [0.5, 1, 0, 0.8807970779778823]],
        ['relu', E.relu, [-1, 0, 2.5], [0, 0, 2.5]],
        // Φ(1) = 0.8413447460685429 (standard normal table): gelu(x) = x Φ(x).
        ['gelu', (x) => E.gelu(x), [1, -1, 0], [0.8413447460685429, -0.15865525393145707, 0]],
        ['gelu tanh', (x) => E.gelu(x, { approximate: 'tanh' }), [1, -1], [0.8411919906082768, -0.15880800939172324]],
        ['silu', E.silu, [1, 0, -1], [0.7310585786300049, 0, -0.2689414213699951]],
        ['square', E.square, [-3, 0.5], [9, 0.25]],
        ['reciprocal', E.reciprocal, [4, -0.5, 0], [0.25, -2, Infinity]],
      ];
      for (const [name, fn, input, expected] of cases) {
        const out = fn(tensor(input)).toArray();
        try {
          expectClose(out, f32(expected), 2e-6, 1e-6);
        } catch (e) {
          throw new Error(`${name}: ${(e as Error).message}`);
        }
      }
    });

    it('propagate NaN', () => {
      for (const fn of [E.neg, E.exp, E.log, E.sqrt, E.abs, E.tanh, E.sigmoid, E.relu, E.silu, E.square]) {
        expect(fn(tensor([NaN])).item()).toBeNaN();
      }
      expect(E.gelu(tensor([NaN])).item()).toBeNaN();
      expect(E.sqrt(tensor([-1])).item()).toBeNaN();
      expect(E.log(tensor([-1])).item()).toBeNaN();
    });

    it('work on non-contiguous views and keep the shape', () => {
      const x = tensor([[0, 1], [2, 3], [4, 5]]).transpose(0, 1);
      const y = E.square(x);
      expect(y.shape).toEqual([2, 3]);
      expect(y.tolist()).toEqual([[0, 4, 16], [1, 9, 25]]);
    });

    it('relu and abs have gradient 0 at 0 (PyTorch)', () => {
      const x = leaf([-1, 0, 2]);
      sum(E.relu(x)).backward();
      expect(x.grad!.tolist()).toEqual([0, 0, 1]);
      const y = leaf([-1, 0, 2]);
      sum(E.abs(y)).backward();
      expect(y.grad!.tolist()).toEqual([-1, 0, 1]);
    });

    it('gelu rejects an unknown approximation', () => {
      const bad = { approximate: 'fast' } as unknown as E.GeluOptions;
      expect(() => E.gelu(tensor([1]), bad)).toThrow(/gelu: approximate must be 'none' or 'tanh'/);
    });
  });

  describe('clamp, where, maximum, minimum, comparisons', () => {
    it('clamp values with both, min only and max only; NaN passes through', () => {
      const x = tensor([-2, -0.5, 0.5, 2, NaN]);
      const both = E.clamp(x, -1, 1).toArray();
      expect(both.slice(0, 4)).toEqual([-1, -0.5, 0.5, 1]);
      expect(both[4]).toBeNaN();
      expect(E.clamp(x, 0).toArray().slice(0, 4)).toEqual([0, 0, 0.5, 2]);
      expect(E.clamp(x, undefined, 0).toArray().slice(0, 4)).toEqual([-2, -0.5, 0, 0]);
      expect(() => E.clamp(x)).toThrow(/clamp: give at least one of min and max/);
    });

    it('clamp gradient is 1 inside and on the bounds, 0 outside and for NaN', () => {
      const x = leaf([-2, -1, 0, 1, 2, NaN]);
      sum(E.clamp(x, -1, 1)).backward();
      expect(x.grad!.tolist()).toEqual([0, 1, 1, 1, 0, 0]);
    });

    it('where selects and broadcasts; an i32 condition works; gradients go to the chosen side', () => {
      const cond = tensor([[1], [0]]);
      const a = leaf([1, 2, 3]);
      const b = leaf([[10], [20]]);
      const y = E.where(cond, a, b);
      expect(y.tolist()).toEqual([[1, 2, 3], [20, 20, 20]]);
      sum(y).backward();
      expect(a.grad!.tolist()).toEqual([1, 1, 1]);
      expect(b.grad!.tolist()).toEqual([[0], [3]]);
      expect(E.where(tensor([0, 5], { dtype: 'i32' }), 1, -1).tolist()).toEqual([-1, 1]);
      expect(tensor([1, 2]).where(tensor([1, 0]), 9).tolist()).toEqual([1, 9]);
    });

    it('maximum and minimum: values, broadcasting, NaN propagates', () => {
      const a = tensor([[1, 5], [-2, 0]]);
      expect(E.maximum(a, tensor([2, 3])).tolist()).toEqual([[2, 5], [2, 3]]);
      expect(E.minimum(a, 0).tolist()).toEqual([[0, 0], [-2, 0]]);
      expect(E.maximum(tensor([NaN, 1]), tensor([1, NaN])).toArray().every(Number.isNaN)).toBe(true);
      expect(E.minimum(tensor([NaN, 1]), tensor([1, NaN])).toArray().every(Number.isNaN)).toBe(true);
    });

    it('maximum/minimum gradients: ties split half/half, NaN gives both the full gradient (PyTorch)', () => {
      // torch.maximum([1,2,3], [0,2,nan]).sum().backward(): a.grad [1, .5, 1], b.grad [0, .5, 1].
      const a = leaf([1, 2, 3]);
      const b = leaf([0, 2, NaN]);
      sum(E.maximum(a, b)).backward();
      expect(a.grad!.tolist()).toEqual([1, 0.5, 1]);
      expect(b.grad!.tolist()).toEqual([0, 0.5, 1]);
      const c = leaf([1, 2, 3]);
      const d = leaf([0, 2, 4]);
      sum(E.minimum(c, d)).backward();
      expect(c.grad!.tolist()).toEqual([0, 0.5, 1]);
      expect(d.grad!.tolist()).toEqual([1, 0.5, 0]);
    });

    it('comparisons give f32 1/0, broadcast, treat NaN as unordered, and are not differentiable', () => {
      const a = leaf([1, 2, 3]);
      const b = tensor([2, 2, NaN]);
      expect(E.eq(a, b).tolist()).toEqual([0, 1, 0]);
      expect(E.ne(a, b).tolist()).toEqual([1, 0, 1]);
      expect(E.lt(a, b).tolist()).toEqual([1, 0, 0]);
      expect(E.le(a, b).tolist()).toEqual([1, 1, 0]);
      expect(E.gt(a, b).tolist()).toEqual([0, 0, 0]);
      expect(E.ge(a, 2).tolist()).toEqual([0, 1, 1]);
      const m = E.gt(tensor([[1], [3]]), tensor([0, 2, 4]));
      expect(m.dtype).toBe('f32');
      expect(m.tolist()).toEqual([[1, 0, 0], [1, 1, 0]]);
      expect(E.eq(a, b).requiresGrad).toBe(false);
    });
  });

  describe('reductions', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);

    it('sum / mean / max / min by hand, with negative dims and keepdim', () => {
      expect(sum(x).item()).toBe(21);
      expect(sum(x).shape).toEqual([]);
      expect(sum(x, 0).tolist()).toEqual([5, 7, 9]);
      expect(sum(x, -1).tolist()).toEqual([6, 15]);
      expect(sum(x, -1, true).shape).toEqual([2, 1]);
      expect(sum(x, [0, 1], true).tolist()).toEqual([[21]]);
      expect(mean(x, 1).tolist()).toEqual([2, 5]);
      expect(mean(x).item()).toBe(3.5);
      expect(max(x, 0).tolist()).toEqual([4, 5, 6]);
      expect(max(x).item()).toBe(6);
      expect(min(x, -1, true).tolist()).toEqual([[1], [4]]);
      expect(sum(x, [])).not.toBe(x); // an empty dim list reduces nothing but still returns a new tensor
      expect(sum(x, []).tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
    });

    it('match a float64 loop reference over every subset of axes, keepdim or not, on a transposed input', () => {
      const t = randomTensor([5, 3, 4], 7).permute(1, 2, 0); // [3, 4, 5], non-contiguous
      const all = [0, 1, 2];
      const subsets = [[0], [1], [2], [0, 1], [0, 2], [1, 2], all];
      for (const axes of subsets) {
        for (const keepdim of [false, true]) {
          const keepShape = t.shape.map((d, i) => (axes.includes(i) ? 1 : d));
          const outShape = keepdim ? keepShape : t.shape.filter((_, i) => !axes.includes(i));
          const check = (got: Tensor, fold: (v: number[]) => number, rtol: number): void => {
            expect(got.shape).toEqual(outShape);
            expectClose(got.toArray(), refReduce(t, axes, fold), rtol, 1e-5);
          };
          check(sum(t, axes, keepdim), refSum, 1e-5);
          check(mean(t, axes, keepdim), refMean, 1e-5);
          check(max(t, axes, keepdim), (v) => Math.max(...v), 0);
          check(min(t, axes, keepdim), (v) => Math.min(...v), 0);
          check(variance(t, axes, { keepdim }), refVar, 1e-5);
          check(logsumexp(t, axes, keepdim), refLse, 1e-5);
        }
      }
    });

    it('var with corrections, and on a one-element axis', () => {
      const v = tensor([1, 2, 3, 4]);
      expect(variance(v).item()).toBeCloseTo(5 / 3, 6);
      expect(variance(v, 0, { correction: 0 }).item()).toBeCloseTo(1.25, 6);
      expect(variance(v, undefined, { correction: 2 }).item()).toBeCloseTo(2.5, 6);
      expect(variance(tensor([3])).item()).toBeNaN(); // 0 / 0, as PyTorch
      expect(variance(x, 1, { keepdim: true }).tolist()).toEqual([[1], [1]]);
      // Two-pass: a large offset does not wipe out a small spread.
      expect(variance(tensor([1e4 + 1, 1e4 + 2, 1e4 + 3])).item()).toBeCloseTo(1, 4);
    });

    it('logsumexp is stable for large and -Infinity inputs', () => {
      expect(logsumexp(tensor([1000, 1000]), 0).item()).toBeCloseTo(1000 + Math.LN2, 3);
      expect(logsumexp(tensor([-1000, -1000]), 0).item()).toBeCloseTo(-1000 + Math.LN2, 3);
      expect(logsumexp(tensor([-Infinity, -Infinity]), 0).item()).toBe(-Infinity);
      expect(logsumexp(tensor([-Infinity, 0]), 0).item()).toBe(0);
    });

    it('NaN propagates through sum, max, min and logsumexp', () => {
      const n = tensor([[1, NaN, 3], [4, 5, 6]]);
      expect(sum(n, 1).toArray()[0]).toBeNaN();
      expect(sum(n, 1).toArray()[1]).toBe(15);
      expect(max(n, 1).toArray()[0]).toBeNaN();
      expect(min(n, 1).toArray()[0]).toBeNaN();
      expect(logsumexp(n, 1).toArray()[0]).toBeNaN();
      expect(max(n).item()).toBeNaN();
    });

    it('empty axes: sum 0, mean NaN, logsumexp -Infinity, max refused', () => {
      const e = Tensor.zeros([2, 0]);
      expect(sum(e, 1).tolist()).toEqual([0, 0]);
      expect(mean(e, 1).toArray().every(Number.isNaN)).toBe(true);
      expect(logsumexp(e, 1).tolist()).toEqual([-Infinity, -Infinity]);
      expect(() => max(e, 1)).toThrow(/max: cannot reduce over an empty dim/);
      expect(sum(e, 0).shape).toEqual([0]);
    });

    it('0-d input: reductions return a copy, dim 0 is accepted', () => {
      const s = tensor(4);
      expect(sum(s).item()).toBe(4);
      expect(mean(s, 0).item()).toBe(4);
      expect(max(s, -1).shape).toEqual([]);
    });

    it('refuse out-of-range dims and non-f32 input', () => {
      expect(() => sum(x, 2)).toThrow(/sum: dim 2 out of range for a tensor of rank 2/);
      expect(() => mean(x, [-3])).toThrow(RangeError);
      expect(() => sum(tensor([1, 2], { dtype: 'i32' }))).toThrow(/sum: expected an f32 tensor, got i32/);
      expect(() => argmax(x, 5)).toThrow(/argmax: dim 5 out of range/);
    });

    it('max/min backward splits the gradient evenly among tied extremes (torch.amax)', () => {
      const z = leaf([[1, 3, 3], [2, 2, 0]]);
      sum(max(z, 1)).backward();
      expect(z.grad!.tolist()).toEqual([[0, 0.5, 0.5], [0.5, 0.5, 0]]);
      const w = leaf([[1, 3, 3], [2, 2, 0]]);
      max(w).backward();
      expect(w.grad!.tolist()).toEqual([[0, 0.5, 0.5], [0, 0, 0]]);
      const u = leaf([[5, 1, 1, 1]]);
      sum(min(u, -1)).backward();
      expect(u.grad!.toArray()).toEqual(f32([0, 1 / 3, 1 / 3, 1 / 3]));
    });

    it('sum, mean and var backward by hand', () => {
      const a = leaf([[1, 2, 3], [4, 5, 6]]);
      sum(mean(a, 1)).backward();
      expect(a.grad!.toArray()).toEqual(f32([1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3]));
      const b = leaf([1, 2, 3, 4]);
      variance(b).backward(); // 2 (x − mean) / (n − 1)
      expect(b.grad!.toArray()).toEqual(f32([-1, -1 / 3, 1 / 3, 1]));
    });

    it('argmax / argmin: flat and per dim, keepdim, first of ties, NaN is the max', () => {
      const a = tensor([[1, 7, 7], [9, 0, 9]]);
      expect(argmax(a).dtype).toBe('i32');
      expect(argmax(a).item()).toBe(3);
      expect(argmax(a).shape).toEqual([]);
      expect(argmax(a, undefined, true).shape).toEqual([1, 1]);
      expect(argmax(a, 1).tolist()).toEqual([1, 0]);
      expect(argmax(a, 0, true).tolist()).toEqual([[1, 0, 1]]);
      expect(argmin(a, -1).tolist()).toEqual([0, 1]);
      expect(argmin(a).item()).toBe(4);
      expect(argmax(tensor([1, NaN, 5]), 0).item()).toBe(1);
      expect(argmax(a.transpose(0, 1), 1).tolist()).toEqual([1, 0, 1]);
      expect(() => argmax(Tensor.zeros([2, 0]), 1)).toThrow(/argmax: cannot take argmax over an empty dim/);
    });
  });

  describe('indexing', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);

    it('indexSelect along dims 0 and -1 with repeats; a 0-d index keeps a size-1 dim', () => {
      expect(indexSelect(x, 0, ids([2, 0, 2])).tolist()).toEqual([[7, 8, 9], [1, 2, 3], [7, 8, 9]]);
      expect(indexSelect(x, -1, ids([1, 1])).tolist()).toEqual([[2, 2], [5, 5], [8, 8]]);
      expect(indexSelect(x, 1, tensor(2, { dtype: 'i32' })).tolist()).toEqual([[3], [6], [9]]);
      expect(indexSelect(x.transpose(0, 1), 0, ids([0])).tolist()).toEqual([[1, 4, 7]]);
      const c = tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
      expect(indexSelect(c, 1, ids([1, 0])).tolist()).toEqual([[[3, 4], [1, 2]], [[7, 8], [5, 6]]]);
    });

    it('0-d inputs behave as one element, as PyTorch', () => {
      const s = tensor(5);
      expect(indexSelect(s, 0, ids([0])).shape).toEqual([]);
      expect(indexSelect(s, -1, ids([0])).item()).toBe(5);
      expect(gather(s, 0, tensor(0, { dtype: 'i32' })).item()).toBe(5);
      expect(scatterAdd(s, 0, tensor(0, { dtype: 'i32' }), tensor(2)).item()).toBe(7);
    });

    it('indexSelect backward adds repeated rows', () => {
      const w = leaf([[1, 2], [3, 4], [5, 6]]);
      sum(indexSelect(w, 0, ids([2, 0, 2]))).backward();
      expect(w.grad!.tolist()).toEqual([[1, 1], [0, 0], [2, 2]]);
      const v = leaf([[1, 2, 3], [4, 5, 6]]);
      sum(E.mul(indexSelect(v, 1, ids([0, 0, 2])), tensor([1, 10, 100]))).backward();
      expect(v.grad!.tolist()).toEqual([[11, 0, 100], [11, 0, 100]]);
    });

    it('gather: the torch.gather example, along dim 0, with a smaller index', () => {
      const t = tensor([[1, 2], [3, 4]]);
      expect(gather(t, 1, ids([[0, 0], [1, 0]])).tolist()).toEqual([[1, 1], [4, 3]]);
      expect(gather(x, 0, ids([[2, 0, 1]])).tolist()).toEqual([[7, 2, 6]]);
      expect(gather(x, 1, ids([[2], [0]])).tolist()).toEqual([[3], [4]]);
      const g = leaf([[1, 2], [3, 4]]);
      sum(gather(g, 1, ids([[0, 0], [1, 0]]))).backward();
      expect(g.grad!.tolist()).toEqual([[2, 0], [1, 1]]);
    });

    it('scatterAdd: the torch.scatter_add_ example (index smaller than src), out of place', () => {
      const base = Tensor.zeros([3, 5]);
      const src = tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]);
      const out = scatterAdd(base, 0, ids([[0, 1, 2, 0, 0]]), src);
      expect(out.tolist()).toEqual([
        [1, 0, 0, 1, 1],
        [0, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
      ]);
      expect(base.tolist()).toEqual([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]);
      const y = scatterAdd(tensor([[1, 1, 1], [2, 2, 2]]), 1, ids([[2, 2], [0, 1]]), tensor([[5, 6], [7, 8]]));
      expect(y.tolist()).toEqual([[1, 1, 12], [9, 10, 2]]);
    });

    it('scatterAdd backward: identity for the input, gather for src (zero where unused)', () => {
      const a = leaf([[0, 0, 0], [0, 0, 0]]);
      const s = leaf([[1, 2, 3], [4, 5, 6]]);
      const out = scatterAdd(a, 1, ids([[2, 2], [0, 1]]), s);
      sum(E.mul(out, tensor([[1, 10, 100], [1000, 10000, 100000]]))).backward();
      expect(a.grad!.tolist()).toEqual([[1, 10, 100], [1000, 10000, 100000]]);
      expect(s.grad!.tolist()).toEqual([[100, 100, 0], [1000, 10000, 0]]);
    });

    it('out-of-range and negative indices raise RangeError naming the op', () => {
      expect(() => indexSelect(x, 0, ids([0, 3]))).toThrow(/indexSelect: index 3 out of range \[0, 3\)/);
      expect(() => indexSelect(x, 1, ids([-1]))).toThrow(/indexSelect: index -1 out of range \[0, 3\) for dim 1/);
      expect(() => gather(x, 1, ids([[0], [5], [1]]))).toThrow(/gather: index 5 out of range \[0, 3\)/);
      expect(() => scatterAdd(x, 0, ids([[3, 0, 0]]), x)).toThrow(/scatterAdd: index 3 out of range/);
      expect(() => scatterAdd(x, 0, ids([[-2, 0, 0]]), x)).toThrow(/scatterAdd: index -2 out of range/);
    });

    it('the kernels themselves bounds-check (the last line of defence in native code)', () => {
      const b = getBackend();
      const table = new Float32Array(6);
      expect(() => b.gatherRows(table, 3, 2, Int32Array.from([3]), new Float32Array(2))).toThrow(RangeError);
      expect(() => b.gather(table, 1, 3, 2, Int32Array.from([0, -1]), 1, new Float32Array(2))).toThrow(RangeError);
      expect(() => b.scatterAdd(table, 1, 3, 2, Int32Array.from([7, 0]), 1, new Float32Array(2))).toThrow(RangeError);
      expect(() => b.scatterAddRows(new Float32Array(2), Int32Array.from([5]), 2, table, 3)).toThrow(RangeError);
      expect(Array.from(table)).toEqual([0, 0, 0, 0, 0, 0]);
    });

    it('refuses wrong index dtypes, ranks and sizes', () => {
      expect(() => indexSelect(x, 0, tensor([0]))).toThrow(/indexSelect: expected an i32 index tensor, got f32/);
      expect(() => indexSelect(x, 0, ids([[0]]))).toThrow(/indexSelect: index must be 1-d/);
      expect(() => gather(x, 0, ids([0, 1]))).toThrow(/gather: index \[2\] must have as many dims as input \[3, 3\]/);
      expect(() => gather(x, 0, ids([[0, 0, 0, 0]]))).toThrow(/gather: index \[1, 4\] is larger than input \[3, 3\]/);
      expect(() => scatterAdd(x, 0, ids([[0, 0, 0]]), tensor([[1, 2]]))).toThrow(/scatterAdd: index \[1, 3\] does not fit/);
      expect(() => gather(tensor([[1]], { dtype: 'i32' }), 0, ids([[0]]))).toThrow(/gather: expected an f32 tensor/);
    });
  });

  describe('method sugar', () => {
    it('matches the functions and chains', () => {
      const a = tensor([[1, 2], [3, 4]]);
      expect(a.add(1).mul(2).sub(a).div(2).tolist()).toEqual([[1.5, 2], [2.5, 3]]);
      expect(a.pow(2).sum().item()).toBe(30);
      expect(a.neg().abs().square().sqrt().tolist()).toEqual(E.abs(a).tolist());
      expect(a.maximum(2.5).minimum(3.5).tolist()).toEqual([[2.5, 2.5], [3, 3.5]]);
      expect(a.clamp(2, 3).tolist()).toEqual([[2, 2], [3, 3]]);
      expect(a.gt(2).tolist()).toEqual([[0, 0], [1, 1]]);
      expect(a.mean(0).tolist()).toEqual([2, 3]);
      expect(a.max(1, true).tolist()).toEqual([[2], [4]]);
      expect(a.var(1).tolist()).toEqual([0.5, 0.5]);
      expect(a.argmax(1).tolist()).toEqual([1, 1]);
      expect(a.logsumexp(1).toArray()).toEqual(E.log(E.exp(a).sum(1)).toArray());
      expect(a.indexSelect(0, ids([1])).tolist()).toEqual([[3, 4]]);
      expect(a.gather(1, ids([[1], [0]])).tolist()).toEqual([[2], [3]]);
      expect(a.scatterAdd(1, ids([[0], [0]]), tensor([[10], [20]])).tolist()).toEqual([[11, 2], [23, 4]]);
      expect(a.gelu({ approximate: 'tanh' }).toArray()).toEqual(E.gelu(a, { approximate: 'tanh' }).toArray());
    });
  });
});

describe.runIf(nativeAvailable())('native agrees with js on random shapes (forward and backward)', () => {
  interface Case {
    name: string;
    shapes: number[][];
    fn: (...xs: Tensor[]) => Tensor;
    positive?: boolean;
  }
  const cases: Case[] = [
    { name: 'add broadcast', shapes: [[7, 1, 33], [5, 1]], fn: E.add },
    { name: 'mul transposed', shapes: [[33, 9], [9, 33]], fn: (a, b) => E.mul(a.transpose(0, 1), b) },
    { name: 'div', shapes: [[4, 65], [65]], fn: E.div, positive: true },
    { name: 'pow', shapes: [[3, 17], [17]], fn: E.pow, positive: true },
    { name: 'maximum', shapes: [[6, 31], [31]], fn: E.maximum },
    { name: 'where', shapes: [[5, 19], [19]], fn: (a, b) => E.where(E.gt(a, 0), a, b) },
    { name: 'clamp', shapes: [[129]], fn: (a) => E.clamp(a, -0.5, 0.7) },
    ...(['exp', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'silu', 'square', 'neg', 'abs'] as const).map(
      (op): Case => ({ name: op, shapes: [[3, 101]], fn: E[op] }),
    ),
    ...(['log', 'sqrt', 'rsqrt', 'reciprocal'] as const).map(
      (op): Case => ({ name: op, shapes: [[3, 101]], fn: E[op], positive: true }),
    ),
    { name: 'gelu', shapes: [[257]], fn: (a) => E.gelu(a) },
    { name: 'gelu tanh', shapes: [[257]], fn: (a) => E.gelu(a, { approximate: 'tanh' }) },
    { name: 'sum [0,2]', shapes: [[6, 7, 37]], fn: (a) => sum(a, [0, 2]) },
    { name: 'mean -1', shapes: [[9, 130]], fn: (a) => mean(a, -1, true) },
    { name: 'max 0', shapes: [[40, 13]], fn: (a) => max(a, 0) },
    { name: 'min [1,2]', shapes: [[3, 11, 12]], fn: (a) => min(a, [1, 2]) },
    { name: 'var 1', shapes: [[5, 77]], fn: (a) => variance(a, 1) },
    { name: 'logsumexp', shapes: [[8, 50]], fn: (a) => logsumexp(a, -1) },
    { name: 'indexSelect', shapes: [[10, 7, 3]], fn: (a) => indexSelect(a, 1, ids([6, 0, 6, 2])) },
    { name: 'gather', shapes: [[5, 9]], fn: (a) => gather(a, 1, ids([[8, 0], [1, 1], [2, 3], [4, 4], [0, 8]])) },
    {
      name: 'scatterAdd',
      shapes: [[4, 6], [4, 2]],
      fn: (a, s) => scatterAdd(a, 1, ids([[5, 5], [0, 1], [2, 2], [3, 0]]), s),
    },
  ];

  function run(backend: BackendName, c: Case, seed: number): { out: number[]; grads: number[][] } {
    setBackend(backend);
    const inputs = c.shapes.map((s, i) => {
      const t = c.positive ? randomTensor(s, seed + i, 0.2, 3) : randomTensor(s, seed + i);
      return t.requiresGrad_();
    });
    const out = c.fn(...inputs);
    const weights = randomTensor(out.shape, seed + 99);
    out.backward(weights);
    return { out: out.toArray(), grads: inputs.map((t) => t.grad!.toArray()) };
  }

  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, i) => {
    const js = run('js', c, 100 * i);
    const native = run('native', c, 100 * i);
    expectClose(native.out, js.out, 2e-6, 1e-6);
    native.grads.forEach((g, k) => expectClose(g, js.grads[k]!, 2e-5, 1e-5));
  });

  it('comparisons and argmax agree exactly', () => {
    const a = randomTensor([9, 33], 5);
    const b = randomTensor([33], 6);
    const on = (backend: BackendName): number[][] => {
      setBackend(backend);
      return noGrad(() => [E.lt(a, b).toArray(), E.eq(a, a).toArray(), argmax(a, 1).toArray(), argmin(a).toArray()]);
    };
    expect(on('native')).toEqual(on('js'));
  });
});
