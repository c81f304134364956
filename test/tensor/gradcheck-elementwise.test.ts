/**
 * Finite-difference gradient checks for every differentiable elementwise, reduction and indexing op,
 * on both backends, with broadcasting, scalar operands and non-contiguous (transposed, sliced,
 * expanded) inputs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { record } from '../../src/tensor/autograd.js';
import { type BackendName, nativeAvailable, setBackend } from '../../src/tensor/backend/index.js';
import { tensor } from '../../src/tensor/creation.js';
import * as E from '../../src/tensor/ops/elementwise.js';
import { indexSelect, gather, scatterAdd } from '../../src/tensor/ops/indexing.js';
import { logsumexp, max, mean, min, sum, variance } from '../../src/tensor/ops/reduce.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gradcheck } from './gradcheck.js';

const backends: BackendName[] = nativeAvailable() ? ['js', 'native'] : ['js'];

let seed = 1;
/** Uniform values in [lo, hi) (a fresh seed per call, so inputs differ but runs repeat). */
function uniform(shape: number[], lo = -2, hi = 2): Tensor {
  const g = new Generator(seed++);
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * g.uniform();
  return Tensor.fromArray(a, shape);
}

/** Values with |x| in [0.1, 2): away from the kinks of relu/abs at 0 (much farther than eps). */
function awayFromZero(shape: number[]): Tensor {
  const t = uniform(shape, 0.1, 2);
  const g = new Generator(seed++);
  const d = t.storage.data as Float32Array;
  for (let i = 0; i < d.length; i++) if (g.uniform() < 0.5) d[i] = -d[i]!;
  return t;
}

/** Distinct values (a shuffled grid with spacing 0.1), so max/min have a unique winner. */
function distinct(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const g = new Generator(seed++);
  const values = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
  for (let i = n - 1; i > 0; i--) {
    const j = g.int(0, i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return Tensor.fromArray(Float32Array.from(values), shape);
}

const idx = (values: number[] | number[][], shape?: number[]): Tensor =>
  tensor(values, { dtype: 'i32', ...(shape ? { shape } : {}) });

describe('gradcheck helper', () => {
  it('catches a wrong backward and names the op', () => {
    // y = x² with a backward that forgets the factor 2.
    const wrong = (x: Tensor): Tensor => {
      const out = E.square(x.detach());
      return record(out, 'badSquare', [x], (g) => [E.mul(g, x)]);
    };
    expect(() => gradcheck(wrong, [uniform([3, 2], 0.5, 2)])).toThrow(/badSquare.*autograd/);
  });

  it('accepts a correct backward and reports the comparison', () => {
    const report = gradcheck((x) => E.square(x), [uniform([3, 2])]);
    expect(report.checked).toBe(6);
    expect(report.maxAbsDiff).toBeLessThan(5e-3);
  });
});

describe.each(backends)('gradcheck on the %s backend', (backend) => {
  beforeAll(() => {
    setBackend(backend);
  });

  describe('binary arithmetic', () => {
    it('add / sub / mul / div with equal shapes', () => {
      for (const op of [E.add, E.sub, E.mul]) gradcheck(op, [uniform([2, 3]), uniform([2, 3])]);
      gradcheck(E.div, [uniform([2, 3]), uniform([2, 3], 0.5, 2)]);
    });

    it('broadcasting both ways ([2,1,3] with [4,1]) and a rank-extending operand', () => {
      for (const op of [E.add, E.sub, E.mul]) {
        gradcheck(op, [uniform([2, 1, 3]), uniform([4, 1])]);
        gradcheck(op, [uniform([3]), uniform([2, 3])]);
      }
      gradcheck(E.div, [uniform([2, 1, 3]), uniform([4, 1], 0.5, 2)]);
      gradcheck(E.div, [uniform([4, 1]), uniform([2, 1, 3], -2, -0.5)]);
    });

    it('0-d tensor operands', () => {
      gradcheck(E.mul, [uniform([]), uniform([2, 3])]);
      gradcheck(E.div, [uniform([2, 2]), uniform([], 0.5, 1)]);
    });

    it('number operands (the affine fast path and the strided path)', () => {
      gradcheck((x) => E.add(x, 2.5), [uniform([2, 3])]);
      gradcheck((x) => E.add(-1.5, x), [uniform([2, 3])]);
      gradcheck((x) => E.sub(x, 2), [uniform([2, 3])]);
      gradcheck((x) => E.sub(3, x), [uniform([2, 3])]);
      gradcheck((x) => E.mul(x, -1.75), [uniform([2, 3])]);
      gradcheck((x) => E.mul(0.5, x), [uniform([2, 3])]);
      gradcheck((x) => E.div(x, 4), [uniform([2, 3])]);
      gradcheck((x) => E.div(2, x), [uniform([2, 3], 0.5, 2)]);
      // A transposed x takes the strided path.
      gradcheck((x) => E.sub(3, x), [uniform([3, 2]).transpose(0, 1)]);
      gradcheck((x) => E.mul(x, 3), [uniform([3, 2]).transpose(0, 1)]);
    });

    it('non-contiguous inputs: transposed, sliced with a step, expanded', () => {
      const t = uniform([3, 2]).transpose(0, 1); // [2, 3]
      const s = uniform([2, 6]).slice(1, 0, 6, 2); // [2, 3], stride 2
      const x = uniform([2, 1]).expand(2, 3); // stride 0
      for (const op of [E.add, E.sub, E.mul]) {
        gradcheck(op, [t, s]);
        gradcheck(op, [x, t]);
      }
      gradcheck(E.div, [t, uniform([2, 6], 0.5, 2).slice(1, 1, 6, 2)]);
    });

    it('pow: tensor exponent, number exponent, number base', () => {
      gradcheck(E.pow, [uniform([2, 3], 0.5, 2), uniform([2, 3], -1.5, 2)]);
      gradcheck(E.pow, [uniform([2, 1], 0.5, 2), uniform([3], -1, 2)]); // broadcast
      gradcheck((x) => E.pow(x, 3), [uniform([2, 3])]);
      gradcheck((x) => E.pow(x, -0.5), [uniform([2, 3], 0.5, 2)]);
      gradcheck((x) => E.pow(x, 0), [uniform([4])]);
      gradcheck((p) => E.pow(2, p), [uniform([2, 3])]);
      gradcheck((x) => E.pow(x, 2.5), [uniform([3, 2], 0.5, 2).transpose(0, 1)]);
    });
  });

  describe('unary functions', () => {
    const smooth: [string, (x: Tensor) => Tensor][] = [
      ['neg', E.neg],
      ['exp', E.exp],
      ['sin', E.sin],
      ['cos', E.cos],
      ['tanh', E.tanh],
      ['sigmoid', E.sigmoid],
      ['gelu', (x) => E.gelu(x)],
      ['gelu tanh', (x) => E.gelu(x, { approximate: 'tanh' })],
      ['silu', E.silu],
      ['square', E.square],
    ];
    it.each(smooth)('%s', (_name, fn) => {
      gradcheck(fn, [uniform([3, 4], -3, 3)]);
      gradcheck(fn, [uniform([4, 3], -3, 3).transpose(0, 1)]);
    });

    const positive: [string, (x: Tensor) => Tensor][] = [
      ['log', E.log],
      ['sqrt', E.sqrt],
      ['rsqrt', E.rsqrt],
      ['reciprocal', E.reciprocal],
    ];
    it.each(positive)('%s (positive inputs)', (_name, fn) => {
      gradcheck(fn, [uniform([3, 4], 0.5, 3)]);
      gradcheck(fn, [uniform([3, 8], 0.5, 3).slice(1, 1, 8, 2)]);
    });

    it.each([
      ['relu', E.relu],
      ['abs', E.abs],
    ] as const)('%s (away from 0)', (_name, fn) => {
      gradcheck(fn, [awayFromZero([3, 4])]);
      gradcheck(fn, [awayFromZero([4, 3]).transpose(0, 1)]);
    });

    it('reciprocal of negative values', () => {
      gradcheck(E.reciprocal, [uniform([5], -3, -0.5)]);
    });
  });

  describe('clamp, where, maximum, minimum', () => {
    it('clamp with both bounds, min only, max only (values away from the bounds)', () => {
      const x = tensor([-2, -1.2, -0.6, -0.3, 0.2, 0.7, 1.4, 2.1]);
      gradcheck((v) => E.clamp(v, -1, 1), [x]);
      gradcheck((v) => E.clamp(v, -0.5), [x]);
      gradcheck((v) => E.clamp(v, undefined, 0.5), [x]);
      gradcheck((v) => E.clamp(v, -1, 1), [x.reshape([2, 4]).transpose(0, 1)]);
    });

    it('where with broadcasting of cond, a and b', () => {
      const cond = tensor([[1], [0], [1]]); // [3, 1]
      gradcheck((a, b) => E.where(cond, a, b), [uniform([3, 4]), uniform([4])]);
      gradcheck((a) => E.where(cond, a, 0.5), [uniform([1, 4])]);
      gradcheck((b) => E.where(tensor([1, 0, 0, 1]), -2, b), [uniform([3, 1])]);
      gradcheck((a, b) => E.where(cond, a, b), [uniform([4, 3]).transpose(0, 1), uniform([3, 4])]);
    });

    it('maximum and minimum, broadcast, including exact ties (split half/half)', () => {
      for (const op of [E.maximum, E.minimum]) {
        gradcheck(op, [distinct([2, 3]), distinct([3])]);
        // Ties: the central difference of max(a, a) in a is exactly 1/2, the PyTorch convention.
        const a = tensor([0.5, -1, 2, 0.25]);
        gradcheck(op, [a, tensor([0.5, 0, 2, -3])]);
        gradcheck((x) => op(x, 0.25), [a]);
      }
    });
  });

  describe('reductions', () => {
    it('sum over all, one dim, negative dim, adjacent and non-adjacent dims, keepdim', () => {
      const x = uniform([2, 3, 4]);
      gradcheck((v) => sum(v), [x]);
      gradcheck((v) => sum(v, 1), [x]);
      gradcheck((v) => sum(v, -1, true), [x]);
      gradcheck((v) => sum(v, [0, 1]), [x]);
      gradcheck((v) => sum(v, [0, 2], true), [x]);
      gradcheck((v) => sum(v, [2, 0]), [x.transpose(0, 2)]);
    });

    it('mean', () => {
      const x = uniform([2, 3, 4]);
      gradcheck((v) => mean(v), [x]);
      gradcheck((v) => mean(v, [0, 2]), [x]);
      gradcheck((v) => mean(v, 1, true), [x.permute(2, 0, 1)]);
    });

    it('max and min with a unique extreme, and with a tied pair', () => {
      const x = distinct([3, 4]);
      for (const op of [max, min]) {
        gradcheck((v) => op(v), [x]);
        gradcheck((v) => op(v, 1), [x]);
        gradcheck((v) => op(v, 0, true), [x]);
        gradcheck((v) => op(v, -1), [x.transpose(0, 1)]);
      }
      // Two equal maxima share the gradient (torch.amax); the central difference agrees.
      gradcheck((v) => max(v, 1), [tensor([[1, 3, 3, 0], [2, -1, 0.5, 1]])]);
      gradcheck((v) => min(v, 0), [tensor([[1, -3], [1, 4], [2, -3]])]);
    });

    it('var with correction 1 and 0, keepdim', () => {
      const x = uniform([3, 5]);
      gradcheck((v) => variance(v), [x]);
      gradcheck((v) => variance(v, 1), [x]);
      gradcheck((v) => variance(v, 0, { correction: 0, keepdim: true }), [x]);
      gradcheck((v) => variance(v, [0, 1]), [x.transpose(0, 1)]);
    });

    it('logsumexp', () => {
      const x = uniform([3, 4], -3, 3);
      gradcheck((v) => logsumexp(v, 1), [x]);
      gradcheck((v) => logsumexp(v, [0, 1], true), [x]);
      gradcheck((v) => logsumexp(v, 0), [x.transpose(0, 1)]);
      // Large values (the stable path): the gradient is the softmax.
      gradcheck((v) => logsumexp(v, -1), [tensor([[100, 101, 99.5], [-50, -51, -49]])]);
    });
  });

  describe('indexing', () => {
    it('indexSelect along dim 0, a middle dim and the last dim, repeated indices', () => {
      const x = uniform([4, 3, 2]);
      gradcheck((v) => indexSelect(v, 0, idx([3, 0, 3])), [x]);
      gradcheck((v) => indexSelect(v, 1, idx([2, 2, 0, 1])), [x]);
      gradcheck((v) => indexSelect(v, -1, idx([1])), [x]);
      gradcheck((v) => indexSelect(v, 0, idx([1, 1])), [uniform([3, 4]).transpose(0, 1)]);
    });

    it('gather along each dim, with an index smaller than the input', () => {
      const x = uniform([3, 4]);
      gradcheck((v) => gather(v, 1, idx([[0, 3, 3], [1, 1, 0], [2, 0, 1]])), [x]);
      gradcheck((v) => gather(v, 0, idx([[2, 0, 1, 2], [2, 2, 0, 1]])), [x]);
      gradcheck((v) => gather(v, 1, idx([[3], [0]])), [x]); // index [2,1] of a [3,4] input
      gradcheck((v) => gather(v, 0, idx([[0, 1], [0, 2]])), [uniform([4, 3]).transpose(0, 1)]);
    });

    it('scatterAdd: gradients for the input and for src, repeated indices, partial index', () => {
      const index = idx([[0, 2, 2], [1, 0, 2]]);
      gradcheck((x, s) => scatterAdd(x, 1, index, s), [uniform([2, 3]), uniform([2, 3])]);
      gradcheck((x, s) => scatterAdd(x, 0, idx([[1, 0], [1, 1]]), s), [uniform([2, 3]), uniform([3, 4])]);
      gradcheck((x, s) => scatterAdd(x, 1, index, s), [uniform([3, 2]).transpose(0, 1), uniform([2, 3])]);
    });
  });

  it('a composite expression through several families', () => {
    gradcheck(
      (a, b) => mean(E.mul(E.tanh(E.add(a, b)), logsumexp(a, 1, true)), 0),
      [uniform([3, 4]), uniform([4])],
    );
  });
});
