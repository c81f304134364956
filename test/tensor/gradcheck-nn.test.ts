/**
 * Finite-difference gradient checks for matmul, linear and the fused NN ops, on both backends.
 * Inputs include transposed, sliced and broadcast (expanded) views, so the backward's handling of
 * layouts is checked too, not only its formulas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackend, nativeAvailable, setBackend, type BackendName } from '../../src/tensor/backend/index.js';
import { randn, tensor } from '../../src/tensor/creation.js';
import { linear, matmul } from '../../src/tensor/ops/matmul.js';
import {
  crossEntropy,
  dropout,
  embedding,
  layerNorm,
  logSoftmax,
  rmsNorm,
  scaledDotProductAttention,
  softmax,
  topk,
} from '../../src/tensor/ops/nn.js';
import { Generator } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { gradcheck } from './gradcheck.js';

const backends: BackendName[] = nativeAvailable() ? ['js', 'native'] : ['js'];

let seed = 1;
/** A fresh standard-normal tensor (each call a new seed, so inputs differ). */
function rn(shape: number[], scale = 1): Tensor {
  const t = randn(shape, { generator: new Generator(seed++) });
  if (scale === 1) return t;
  const d = t.f32();
  for (let i = 0; i < d.length; i++) d[i]! *= scale;
  return t;
}

describe.each(backends)('gradcheck of matmul and NN ops (%s backend)', (name) => {
  let previous: BackendName;
  beforeAll(() => {
    previous = getBackend().name;
    setBackend(name);
  });
  afterAll(() => {
    setBackend(previous);
  });

  describe('matmul', () => {
    it('2-d @ 2-d', () => {
      gradcheck((a, b) => matmul(a!, b!), [rn([3, 4]), rn([4, 5])]);
    });

    it('transposed views as operands (read through transpose flags)', () => {
      gradcheck((a, b) => matmul(a!, b!), [rn([4, 3]).mT, rn([5, 4]).mT]);
      gradcheck((a, b) => matmul(a!, b!), [rn([2, 4, 3]).mT, rn([4, 5])]);
    });

    it('transA / transB options', () => {
      gradcheck((a, b) => matmul(a!, b!, { transA: true }), [rn([4, 3]), rn([4, 2])]);
      gradcheck((a, b) => matmul(a!, b!, { transB: true }), [rn([3, 4]), rn([2, 4])]);
      gradcheck((a, b) => matmul(a!, b!, { transA: true, transB: true }), [rn([2, 4, 3]), rn([2, 5, 4])]);
    });

    it('broadcast batch dims (one operand shared, partial broadcast)', () => {
      gradcheck((a, b) => matmul(a!, b!), [rn([2, 3, 4]), rn([4, 5])]);
      gradcheck((a, b) => matmul(a!, b!), [rn([4, 3]), rn([2, 3, 5])]);
      gradcheck((a, b) => matmul(a!, b!), [rn([2, 1, 3, 4]), rn([3, 4, 2])]);
      gradcheck((a, b) => matmul(a!, b!), [rn([1, 3, 2, 4]), rn([2, 1, 4, 3])]);
    });

    it('1-d operands (promoted and squeezed back)', () => {
      gradcheck((a, b) => matmul(a!, b!), [rn([4]), rn([4])]);
      gradcheck((a, b) => matmul(a!, b!), [rn([4]), rn([2, 4, 3])]);
      gradcheck((a, b) => matmul(a!, b!), [rn([2, 3, 4]), rn([4])]);
    });

    it('non-contiguous and expanded operands (copied or strided)', () => {
      // Every other column: neither dense nor dense-transposed, so forward copies it.
      gradcheck((a, b) => matmul(a!, b!), [rn([3, 8]).slice(1, 0, 8, 2), rn([4, 6]).slice(1, 1, 4)]);
      // A batch dim expanded with stride 0.
      gradcheck((a, b) => matmul(a!, b!), [rn([1, 3, 4]).expand([2, 3, 4]), rn([2, 4, 2])]);
      // Rows of a batch picked by a slice (batch stride ≠ rows·ld: no row folding).
      gradcheck((a, b) => matmul(a!, b!), [rn([3, 5, 4]).slice(1, 0, 3), rn([4, 2])]);
    });
  });

  describe('linear', () => {
    it('with and without bias, 1-d, 2-d and 3-d inputs', () => {
      gradcheck((x, w, b) => linear(x!, w!, b!), [rn([2, 3, 4]), rn([5, 4]), rn([5])]);
      gradcheck((x, w) => linear(x!, w!), [rn([3, 4]), rn([5, 4])]);
      gradcheck((x, w, b) => linear(x!, w!, b!), [rn([4]), rn([2, 4]), rn([2])]);
      // A transposed input and a weight given as a transposed view of [in, out].
      gradcheck((x, w) => linear(x!, w!), [rn([4, 3]).mT, rn([4, 5]).mT]);
    });
  });

  describe('softmax / logSoftmax', () => {
    it('last dim, other dims and a non-contiguous input', () => {
      for (const fn of [softmax, logSoftmax]) {
        gradcheck((x) => fn(x!), [rn([3, 5])]);
        gradcheck((x) => fn(x!, 0), [rn([4, 3])]);
        gradcheck((x) => fn(x!, 1), [rn([2, 3, 4])]);
        gradcheck((x) => fn(x!, -1), [rn([5, 3]).mT]);
      }
    });
  });

  describe('layerNorm / rmsNorm', () => {
    it('layerNorm with and without affine parameters', () => {
      gradcheck((x, w, b) => layerNorm(x!, [5], w!, b!), [rn([3, 5]), rn([5]), rn([5])]);
      gradcheck((x) => layerNorm(x!, [5]), [rn([3, 5])]);
      gradcheck((x, w) => layerNorm(x!, [5], w!), [rn([2, 5]), rn([5])]);
      gradcheck((x, b) => layerNorm(x!, [5], null, b!), [rn([2, 5]), rn([5])]);
    });

    it('layerNorm over two trailing dims and a non-contiguous input', () => {
      gradcheck((x, w, b) => layerNorm(x!, [2, 3], w!, b!), [rn([2, 2, 3]), rn([2, 3]), rn([2, 3])]);
      gradcheck((x, w) => layerNorm(x!, [3], w!), [rn([3, 4]).mT, rn([3])]);
    });

    it('rmsNorm with and without weight', () => {
      gradcheck((x, w) => rmsNorm(x!, [4], w!), [rn([3, 4]), rn([4])]);
      gradcheck((x) => rmsNorm(x!, [4]), [rn([3, 4])]);
      gradcheck((x, w) => rmsNorm(x!, [2, 2], w!), [rn([2, 2, 3]).permute(2, 0, 1), rn([2, 2])]);
    });
  });

  describe('embedding', () => {
    it('weight gradient with repeated ids', () => {
      const ids = tensor([[0, 2, 2], [3, 0, 1]], { dtype: 'i32' });
      gradcheck((w) => embedding(ids, w!), [rn([4, 3])]);
    });
  });

  describe('crossEntropy', () => {
    const targets = tensor([1, 4, -100, 0, 2], { dtype: 'i32' });
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      it(`reduction ${reduction}, ignoreIndex and label smoothing`, () => {
        gradcheck((l) => crossEntropy(l!, targets, { reduction }), [rn([5, 5])]);
        gradcheck((l) => crossEntropy(l!, targets, { reduction, labelSmoothing: 0.2 }), [rn([5, 5])]);
      });
    }

    it('[..., C] logits with [...] targets, custom ignoreIndex, transposed logits', () => {
      const t2 = tensor([[0, 3], [7, 1]], { dtype: 'i32' });
      gradcheck((l) => crossEntropy(l!, t2, { ignoreIndex: 7, labelSmoothing: 0.1 }), [rn([2, 2, 4])]);
      gradcheck((l) => crossEntropy(l!, tensor([2, 0, 1], { dtype: 'i32' })), [rn([4, 3]).mT]);
    });
  });

  describe('dropout', () => {
    it('gradient is the scaled keep mask (same seed, same mask)', () => {
      gradcheck((x) => dropout(x!, 0.4, { generator: new Generator(7) }), [rn([4, 6])]);
      gradcheck((x) => dropout(x!, 0.5, { generator: new Generator(8) }), [rn([6, 4]).mT]);
    });
  });

  describe('scaledDotProductAttention', () => {
    const check = (shapeQ: number[], shapeKV: number[], options = {}): void => {
      gradcheck((q, k, v) => scaledDotProductAttention(q!, k!, v!, options), [rn(shapeQ), rn(shapeKV), rn(shapeKV)]);
    };

    it('plain, causal, and causal with tq < tk (KV-cache alignment)', () => {
      check([1, 2, 3, 4], [1, 2, 3, 4]);
      check([2, 1, 4, 3], [2, 1, 4, 3], { causal: true });
      check([1, 2, 2, 3], [1, 2, 5, 3], { causal: true });
      check([3, 4], [5, 4], { scale: 0.7 });
    });

    it('additive and bool padding masks, including a fully masked row', () => {
      const additive = tensor([[[[0, -1.5, -Infinity, 0.5]]], [[[0, 0, 0, -Infinity]]]]); // [2, 1, 1, 4]
      check([2, 2, 3, 4], [2, 2, 4, 4], { mask: additive });
      const keep = tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1]]); // [tq, tk]; row 1 sees nothing
      check([1, 2, 3, 2], [1, 2, 4, 2], { mask: keep, maskMode: 'bool' });
    });

    it('a mask whose leading dims do not flatten (materialised) and non-contiguous q, k, v', () => {
      const mask = rn([2, 1, 3, 2, 3], 0.5); // leading dims [2, 4, 3]: batch dims [2, 4] broadcast as [2, 1]
      check([2, 4, 3, 2, 2], [2, 4, 3, 3, 2], { mask });
      gradcheck(
        (q, k, v) => scaledDotProductAttention(q!, k!, v!, { causal: true }),
        [rn([1, 3, 2, 4]).transpose(1, 2), rn([1, 3, 2, 4]).transpose(1, 2), rn([1, 4, 2, 3]).permute(0, 2, 3, 1)],
      );
    });
  });

  describe('topk', () => {
    it('values gradient goes back to the selected positions', () => {
      gradcheck((x) => topk(x!, 2).values, [rn([3, 5])]);
      gradcheck((x) => topk(x!, 2, { dim: 0, largest: false }).values, [rn([4, 3])]);
      gradcheck((x) => topk(x!, 3, { dim: 1 }).values, [rn([2, 4, 3])]);
    });
  });

  it('a composed model (linear → layerNorm → attention → crossEntropy) passes end to end', () => {
    const targets = tensor([[1, 0, 2], [2, 2, 1]], { dtype: 'i32' });
    const report = gradcheck(
      (x, w, g) => {
        const h = layerNorm(linear(x!, w!), [4], g!);
        const q = h.reshape([2, 1, 3, 4]);
        const att = scaledDotProductAttention(q, q, q, { causal: true });
        return crossEntropy(att.reshape([2, 3, 4]).slice(2, 0, 3), targets);
      },
      [rn([2, 3, 5]), rn([4, 5]), rn([4])],
    );
    expect(report.checked).toBe(2 * 3 * 5 + 4 * 5 + 4);
  });
});
