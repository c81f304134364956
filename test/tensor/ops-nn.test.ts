/**
 * matmul, linear and the fused NN ops: values against float64 references written out here (or
 * PyTorch 1.13 numbers where noted), the no-copy gemm plumbing, error messages, and native-vs-js
 * agreement of outputs and gradients.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getBackend, nativeAvailable, setBackend, type BackendName } from '../../src/tensor/backend/index.js';
import type { GemmParams } from '../../src/tensor/backend/backend.js';
import { randint, randn, tensor, zeros } from '../../src/tensor/creation.js';
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
  type AttentionOptions,
} from '../../src/tensor/ops/nn.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const backends: BackendName[] = nativeAvailable() ? ['js', 'native'] : ['js'];

let seed = 100;
function rn(shape: number[]): Tensor {
  return randn(shape, { generator: new Generator(seed++) });
}

/** Expects every element within atol + rtol·|expected|, reporting the worst element on failure. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i]!, expected[i]!];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue; // also equal infinities
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (excess ${worstExcess})`);
  }
}

// ---------------------------------------------------------------------------------------------
// float64 references
// ---------------------------------------------------------------------------------------------

/** torch.matmul in float64 over logical elements (handles views, 1-d promotion, batch broadcast). */
function refMatmul(a: Tensor, b: Tensor): { shape: number[]; data: number[] } {
  const av = a.toArray();
  const bv = b.toArray();
  const aShape = a.ndim === 1 ? [1, a.shape[0]!] : [...a.shape];
  const bShape = b.ndim === 1 ? [b.shape[0]!, 1] : [...b.shape];
  const [m, k] = aShape.slice(-2) as [number, number];
  const n = bShape[bShape.length - 1]!;
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const nb = Math.max(aBatch.length, bBatch.length);
  const batch = Array.from({ length: nb }, (_, i) => {
    const x = aBatch[aBatch.length - nb + i] ?? 1;
    const y = bBatch[bBatch.length - nb + i] ?? 1;
    return x === 1 ? y : x;
  });
  const flatIndex = (own: number[], idx: number[]): number => {
    let f = 0;
    own.forEach((size, d) => (f = f * size + (size === 1 ? 0 : idx[idx.length - own.length + d]!)));
    return f;
  };
  const total = batch.reduce((x, y) => x * y, 1);
  const data: number[] = [];
  for (let t = 0; t < total; t++) {
    const idx: number[] = [];
    let r = t;
    for (let d = nb - 1; d >= 0; d--) {
      idx.unshift(r % batch[d]!);
      r = Math.floor(r / batch[d]!);
    }
    const ab = flatIndex(aBatch, idx) * m * k;
    const bb = flatIndex(bBatch, idx) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += av[ab + i * k + p]! * bv[bb + p * n + j]!;
        data.push(s);
      }
    }
  }
  const shape = [...batch, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])];
  return { shape, data };
}

/** softmax(q kᵀ · scale + mask) v per [T, D] slice, float64; maskAt(b, i, j) is the additive mask. */
function refAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  causal: boolean,
  scale: number,
  maskAt: (slice: number, i: number, j: number) => number = () => 0,
): number[] {
  const [tq, d] = q.shape.slice(-2) as [number, number];
  const tk = k.shape[k.ndim - 2]!;
  const slices = q.numel / (tq * d);
  const [qv, kv, vv] = [q.toArray(), k.toArray(), v.toArray()];
  const out: number[] = [];
  for (let s = 0; s < slices; s++) {
    for (let i = 0; i < tq; i++) {
      const scores: number[] = [];
      for (let j = 0; j < tk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += qv[(s * tq + i) * d + c]! * kv[(s * tk + j) * d + c]!;
        const visible = !causal || j <= i + (tk - tq);
        scores.push(visible ? dot * scale + maskAt(s, i, j) : -Infinity);
      }
      const max = Math.max(...scores);
      const w = scores.map((x) => (max === -Infinity ? 0 : Math.exp(x - max)));
      const sum = w.reduce((x, y) => x + y, 0);
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < tk; j++) if (w[j]! > 0) acc += w[j]! * vv[(s * tk + j) * d + c]!;
        out.push(sum === 0 ? 0 : acc / sum);
      }
    }
  }
  return out;
}

function refSoftmaxRows(x: number[], cols: number, log: boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / cols; r++) {
    const row = x.slice(r * cols, (r + 1) * cols);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    for (const v of row) out.push(log ? v - lse : Math.exp(v - lse));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Per-backend behaviour
// ---------------------------------------------------------------------------------------------

describe.each(backends)('matmul and NN ops (%s backend)', (name) => {
  let previous: BackendName;
  beforeAll(() => {
    previous = getBackend().name;
    setBackend(name);
  });
  afterAll(() => {
    setBackend(previous);
  });

  describe('matmul values', () => {
    it('hand-computed 2×3 @ 3×2 and a 1-d dot product', () => {
      const c = matmul(tensor([[1, 2, 3], [4, 5, 6]]), tensor([[7, 8], [9, 10], [11, 12]]));
      expect(c.shape).toEqual([2, 2]);
      expect(c.toArray()).toEqual([58, 64, 139, 154]);
      const dot = matmul(tensor([1, 2, 3]), tensor([4, 5, 6]));
      expect(dot.shape).toEqual([]);
      expect(dot.item()).toBe(32);
    });

    const cases: [string, () => [Tensor, Tensor]][] = [
      ['plain, odd sizes', () => [rn([17, 33]), rn([33, 9])]],
      ['transposed a', () => [rn([6, 5]).mT, rn([6, 7])]],
      ['transposed b', () => [rn([5, 6]), rn([7, 6]).mT]],
      ['both transposed, batched', () => [rn([3, 6, 5]).mT, rn([3, 7, 6]).mT]],
      ['[B, T, C] @ [C, N] (folded rows)', () => [rn([2, 5, 4]), rn([4, 3])]],
      ['[C] @ [B, C, N]', () => [rn([4]), rn([2, 4, 3])]],
      ['[B, M, K] @ [K]', () => [rn([2, 3, 4]), rn([4])]],
      ['partial broadcast [2, 1, 3, 4] @ [3, 4, 2]', () => [rn([2, 1, 3, 4]), rn([3, 4, 2])]],
      ['broadcast [1, 3, 2, 4] @ [2, 1, 4, 3]', () => [rn([1, 3, 2, 4]), rn([2, 1, 4, 3])]],
      ['strided columns (copied)', () => [rn([3, 8]).slice(1, 0, 8, 2), rn([4, 5])]],
      ['sliced columns (ld > cols)', () => [rn([3, 9]).slice(1, 2, 6), rn([4, 7]).slice(1, 1, 3)]],
      ['expanded batch (stride 0)', () => [rn([1, 3, 4]).expand([2, 3, 4]), rn([2, 4, 2])]],
      ['sliced batch rows', () => [rn([3, 5, 4]).slice(1, 1, 4), rn([4, 2])]],
      ['permuted batch dims', () => [rn([3, 2, 4]).permute(1, 0, 2), rn([2, 4, 3])]],
      ['row vector from an expanded column (stride-0 k)', () => [rn([1]).expand([5]), rn([5, 3])]],
    ];
    for (const [label, make] of cases) {
      it(`agrees with a float64 reference: ${label}`, () => {
        const [a, b] = make();
        const ref = refMatmul(a, b);
        const c = matmul(a, b);
        expect(c.shape).toEqual(ref.shape);
        expectClose(c.toArray(), ref.data);
      });
    }

    it('transA / transB options equal matmul of the transposed views', () => {
      const [a, b] = [rn([2, 4, 3]), rn([2, 5, 4])];
      const ref = refMatmul(a.mT, b.mT);
      expectClose(matmul(a, b, { transA: true, transB: true }).toArray(), ref.data);
      expectClose(matmul(a.mT, b, { transB: true }).toArray(), refMatmul(a.mT, b.mT).data);
    });

    it('empty dims: m = 0 gives an empty result, k = 0 gives zeros', () => {
      expect(matmul(zeros([0, 3]), zeros([3, 2])).shape).toEqual([0, 2]);
      const c = matmul(zeros([2, 0]), zeros([0, 3]));
      expect(c.shape).toEqual([2, 3]);
      expect(c.toArray()).toEqual([0, 0, 0, 0, 0, 0]);
    });

    it('linear = x · Wᵀ + b (1-d and 3-d x)', () => {
      const [x, w, b] = [rn([2, 3, 4]), rn([5, 4]), rn([5])];
      const ref = refMatmul(x, w.mT);
      const bias = b.toArray();
      expectClose(
        linear(x, w, b).toArray(),
        ref.data.map((v, i) => v + bias[i % 5]!),
      );
      expect(linear(x, w).shape).toEqual([2, 3, 5]);
      const x1 = rn([4]);
      expectClose(linear(x1, w, b).toArray(), refMatmul(x1, w.mT).data.map((v, i) => v + bias[i]!));
    });

    it('method sugar x.matmul(y)', () => {
      const [a, b] = [rn([2, 3]), rn([3, 2])];
      expect(a.matmul(b).toArray()).toEqual(matmul(a, b).toArray());
    });
  });

  describe('matmul reaches gemm without copies', () => {
    function spyGemm(run: () => void): { calls: GemmParams[]; copies: number } {
      const backend = getBackend();
      const gemm = vi.spyOn(backend, 'gemm');
      const copy = vi.spyOn(backend, 'copyStrided');
      try {
        run();
        return { calls: gemm.mock.calls.map((c) => c[3]), copies: copy.mock.calls.length };
      } finally {
        gemm.mockRestore();
        copy.mockRestore();
      }
    }

    it('[B, T, C] @ [C, N] is one (B·T)×C×N product', () => {
      const { calls, copies } = spyGemm(() => matmul(rn([2, 3, 4]), rn([4, 5])));
      expect(copies).toBe(0);
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ batch: 1, m: 6, n: 5, k: 4, transA: false, transB: false });
    });

    it('transposed views become transpose flags', () => {
      const { calls, copies } = spyGemm(() => matmul(rn([4, 3]).mT, rn([5, 4]).mT));
      expect(copies).toBe(0);
      expect(calls).toEqual([expect.objectContaining({ m: 3, n: 5, k: 4, transA: true, transB: true, lda: 3, ldb: 4 })]);
    });

    it('a batch is one call with batch strides; a broadcast operand has stride 0', () => {
      const { calls } = spyGemm(() => matmul(rn([4, 3]), rn([2, 3, 5])));
      expect(calls).toEqual([expect.objectContaining({ batch: 2, m: 4, strideA: 0, strideB: 15, strideC: 20 })]);
    });

    it('linear uses transB on the stored weight; its weight gradient is one folded product', () => {
      const x = rn([2, 3, 4]).requiresGrad_();
      const w = rn([5, 4]).requiresGrad_();
      let y: Tensor | undefined;
      const forward = spyGemm(() => (y = linear(x, w)));
      const backward = spyGemm(() => y!.backward(Tensor.full([2, 3, 5], 1)));
      expect(backward.copies).toBe(0);
      // dX = dY · W (one folded product) and dW = dYᵀ · X summed over the batch (k = B·T).
      expect(backward.calls).toHaveLength(2);
      expect(backward.calls).toContainEqual(expect.objectContaining({ m: 6, n: 4, k: 5, batch: 1 }));
      expect(backward.calls).toContainEqual(expect.objectContaining({ m: 5, n: 4, k: 6, batch: 1, transA: true }));
      expect(forward.calls).toHaveLength(1);
      expect(forward.calls[0]).toMatchObject({ batch: 1, m: 6, n: 5, k: 4, transB: true, ldb: 4 });
    });
  });

  describe('matmul gradients on shared operands', () => {
    it('a broadcast weight gets the sum over the batch (against the reference)', () => {
      const x = rn([3, 2, 4]);
      const w = rn([4, 2]).requiresGrad_();
      matmul(x, w).backward(Tensor.full([3, 2, 2], 1));
      // d/dW Σ x·W = Σ over batch and rows of x[..., p] for every column j.
      const xs = x.toArray();
      const expected: number[] = [];
      for (let p = 0; p < 4; p++) {
        let s = 0;
        for (let r = 0; r < 6; r++) s += xs[r * 4 + p]!;
        expected.push(s, s);
      }
      expectClose(w.grad!.toArray(), expected);
    });
  });

  describe('matmul errors', () => {
    it('shape mismatch names the op and both shapes', () => {
      expect(() => matmul(zeros([2, 3]), zeros([4, 5]))).toThrow(/matmul: shapes \[2, 3\] and \[4, 5\]/);
      expect(() => matmul(zeros([2, 2, 3]), zeros([3, 3, 5]))).toThrow(/matmul: .*\[2, 2, 3\] and \[3, 3, 5\].*broadcast/);
      expect(() => matmul(zeros([3]), zeros([]))).toThrow(RangeError);
      expect(() => linear(zeros([2, 3]), zeros([4, 5]))).toThrow(/linear: input \[2, 3\].*weight \[4, 5\]/);
      expect(() => linear(zeros([2, 5]), zeros([4, 5]), zeros([3]))).toThrow(/linear: bias shape \[3\]/);
    });

    it('wrong dtypes are refused', () => {
      expect(() => matmul(zeros([2, 2], { dtype: 'i32' }), zeros([2, 2]))).toThrow(/matmul: expected an f32 tensor, got i32/);
      expect(() => matmul(zeros([2, 2]), zeros([2, 2], { dtype: 'bf16' }))).toThrow(TypeError);
    });
  });

  describe('softmax / logSoftmax', () => {
    it('match a float64 reference on each dim, stably for large logits', () => {
      const x = tensor([[1, 2, 3], [1000, 1001, 999]]);
      expectClose(softmax(x).toArray(), refSoftmaxRows(x.toArray(), 3, false));
      expectClose(logSoftmax(x).toArray(), refSoftmaxRows(x.toArray(), 3, true));
      const cols = x.mT.toArray(); // dim 0 of x = rows of xᵀ
      const ref0 = refSoftmaxRows(cols, 2, false);
      expectClose(softmax(x, 0).toArray(), [ref0[0]!, ref0[2]!, ref0[4]!, ref0[1]!, ref0[3]!, ref0[5]!]);
      expectClose(x.softmax(-1).toArray(), softmax(x).toArray(), 0, 0);
      expect(() => softmax(x, 2)).toThrow(/softmax: dim 2 out of range/);
      expect(() => softmax(zeros([2], { dtype: 'i32' }))).toThrow(/softmax: expected an f32 tensor/);
    });
  });

  describe('layerNorm / rmsNorm', () => {
    const x = [[1, 2, 3, 4], [0, -1, 5, 2]];
    const w = [1, 0.5, 2, -1];

    it('layerNorm matches PyTorch 1.13 (F.layer_norm, eps 1e-5)', () => {
      const y = layerNorm(tensor(x), [4], tensor(w), tensor([0, 1, 0, 0.5]));
      expectClose(y.toArray(), [
        -1.3416354656219482, 0.7763940691947937, 0.8944236040115356, -0.8416354656219482, -0.6546530723571777,
        0.45445579290390015, 3.0550475120544434, 0.281782329082489,
      ]);
    });

    it('rmsNorm matches x · rsqrt(mean(x²) + 1e-6) · w from PyTorch 1.13', () => {
      expectClose(rmsNorm(tensor(x), [4], tensor(w)).toArray(), [
        0.3651483654975891, 0.3651483654975891, 2.190890312194824, -1.4605934619903564, 0, -0.18257418274879456,
        3.6514835357666016, -0.7302967309951782,
      ]);
    });

    it('normalise over several trailing dims, without affine', () => {
      const t = rn([2, 2, 3]);
      const v = t.toArray();
      const expected: number[] = [];
      for (let r = 0; r < 2; r++) {
        const row = v.slice(r * 6, r * 6 + 6);
        const mean = row.reduce((s, a) => s + a, 0) / 6;
        const variance = row.reduce((s, a) => s + (a - mean) ** 2, 0) / 6;
        for (const a of row) expected.push((a - mean) / Math.sqrt(variance + 1e-5));
      }
      expectClose(layerNorm(t, [2, 3]).toArray(), expected);
    });

    it('refuse mismatched shapes, naming them', () => {
      expect(() => layerNorm(zeros([2, 4]), [3])).toThrow(/layerNorm: input shape \[2, 4\] does not end with normalizedShape \[3\]/);
      expect(() => layerNorm(zeros([2, 4]), [4], zeros([3]))).toThrow(/layerNorm: weight shape \[3\] != normalizedShape \[4\]/);
      expect(() => rmsNorm(zeros([2, 4]), [4], zeros([4], { dtype: 'i32' }))).toThrow(/rmsNorm: expected an f32 tensor/);
    });
  });

  describe('embedding', () => {
    it('gathers rows and scatter-adds the gradient (repeated ids add up)', () => {
      const weight = tensor([[0, 1], [10, 11], [20, 21]], { requiresGrad: true });
      const ids = tensor([[2, 0], [2, 2]], { dtype: 'i32' });
      const out = embedding(ids, weight);
      expect(out.shape).toEqual([2, 2, 2]);
      expect(out.toArray()).toEqual([20, 21, 0, 1, 20, 21, 20, 21]);
      out.backward(tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]));
      expect(weight.grad!.toArray()).toEqual([3, 4, 0, 0, 13, 16]);
    });

    it('out-of-range and negative ids throw RangeError; non-i32 ids are refused', () => {
      const weight = zeros([3, 2]);
      expect(() => embedding(tensor([0, 3], { dtype: 'i32' }), weight)).toThrow(RangeError);
      expect(() => embedding(tensor([0, 3], { dtype: 'i32' }), weight)).toThrow(/embedding: id 3 at position 1 out of range \[0, 3\)/);
      expect(() => embedding(tensor([-1], { dtype: 'i32' }), weight)).toThrow(RangeError);
      expect(() => embedding(tensor([0, 1]), weight)).toThrow(/embedding: expected an i32 index tensor, got f32/);
      expect(() => embedding(tensor([0], { dtype: 'i32' }), zeros([3]))).toThrow(/embedding: weight must be \[numEmbeddings, dim\]/);
    });
  });

  describe('crossEntropy', () => {
    const logits = [[1.0, 2.0, 0.5], [0.1, -1.0, 2.0], [0.3, 0.3, 0.3], [2.0, -2.0, 1.0]];
    const targets = () => tensor([1, 2, -100, 0], { dtype: 'i32' });

    it('matches PyTorch 1.13 with ignore_index and label_smoothing 0.1 for every reduction', () => {
      const opts = { labelSmoothing: 0.1 } as const;
      expectClose([crossEntropy(tensor(logits), targets(), opts).item()], [0.46201643347740173]);
      expectClose([crossEntropy(tensor(logits), targets(), { ...opts, reduction: 'sum' }).item()], [1.3860492706298828]);
      const none = crossEntropy(tensor(logits), targets(), { ...opts, reduction: 'none' });
      expect(none.shape).toEqual([4]);
      expectClose(none.toArray(), [0.5477021336555481, 0.34511786699295044, 0, 0.49322938919067383]);
    });

    it('gradient of the mean matches PyTorch 1.13', () => {
      const l = tensor(logits, { requiresGrad: true });
      crossEntropy(l, targets(), { labelSmoothing: 0.1 }).backward();
      expectClose(l.grad!.toArray(), [
        0.065963514149189, -0.1016005426645279, 0.035637013614177704, 0.03045804426074028, 0.002726056380197406,
        -0.03318410739302635, 0, 0, 0, -0.07064472883939743, -0.006706817075610161, 0.07735152542591095,
      ]);
    });

    it('[..., C] logits equal the flattened [N, C] case', () => {
      const l = rn([2, 3, 5]);
      const t = randint(0, 5, [2, 3], { generator: new Generator(3) });
      expectClose([crossEntropy(l, t).item()], [crossEntropy(l.reshape([6, 5]), t.reshape([6])).item()]);
    });

    it('all targets ignored: mean is NaN (as PyTorch), sum is 0', () => {
      const t = tensor([-100, -100], { dtype: 'i32' });
      expect(Number.isNaN(crossEntropy(rn([2, 3]), t).item())).toBe(true);
      expect(crossEntropy(rn([2, 3]), t, { reduction: 'sum' }).item()).toBe(0);
    });

    it('bad targets and options are refused with the op named', () => {
      expect(() => crossEntropy(rn([2, 3]), tensor([0, 3], { dtype: 'i32' }))).toThrow(RangeError);
      expect(() => crossEntropy(rn([2, 3]), tensor([0, 1, 2], { dtype: 'i32' }))).toThrow(
        /crossEntropy: targets shape \[3\] does not match logits shape \[2, 3\]/,
      );
      expect(() => crossEntropy(rn([2, 3]), tensor([0, 1]))).toThrow(/crossEntropy: expected an i32 index tensor/);
      expect(() => crossEntropy(rn([2, 3]), tensor([0, 1], { dtype: 'i32' }), { labelSmoothing: 1.5 })).toThrow(
        /crossEntropy: labelSmoothing/,
      );
    });
  });

  describe('dropout', () => {
    it('is seeded: same generator seed, same mask; kept elements scaled by 1/(1 − p)', () => {
      const x = Tensor.full([64, 64], 2);
      const a = dropout(x, 0.25, { generator: new Generator(5) }).toArray();
      const b = dropout(x, 0.25, { generator: new Generator(5) }).toArray();
      const c = dropout(x, 0.25, { generator: new Generator(6) }).toArray();
      expect(a).toEqual(b);
      expect(a).not.toEqual(c);
      expect(new Set(a)).toEqual(new Set([0, Math.fround(2 * Math.fround(1 / 0.75))]));
      const kept = a.filter((v) => v !== 0).length / a.length;
      expect(Math.abs(kept - 0.75)).toBeLessThan(0.03); // 4096 draws: σ ≈ 0.007
    });

    it('p = 0 or evaluation mode return the input; p = 1 drops everything; bad p throws', () => {
      const x = rn([3, 3]);
      expect(dropout(x, 0)).toBe(x);
      expect(dropout(x, 0.5, { training: false })).toBe(x);
      expect(x.dropout(1).toArray().every((v) => v === 0)).toBe(true);
      expect(() => dropout(x, 1.5)).toThrow(/dropout: p must be in \[0, 1\]/);
    });

    it('the gradient is the same scaled mask', () => {
      const x = rn([10, 10]).requiresGrad_();
      const y = dropout(x, 0.3, { generator: new Generator(9) });
      y.backward(Tensor.full([10, 10], 1));
      const yv = y.toArray();
      const xv = x.toArray();
      expectClose(x.grad!.toArray(), yv.map((v, i) => v / xv[i]!));
    });
  });

  describe('scaledDotProductAttention', () => {
    const run = (qShape: number[], kvShape: number[], options: AttentionOptions, maskAt?: (s: number, i: number, j: number) => number): void => {
      const [q, k, v] = [rn(qShape), rn(kvShape), rn(kvShape)];
      const d = qShape[qShape.length - 1]!;
      const out = scaledDotProductAttention(q, k, v, options);
      expect(out.shape).toEqual(qShape);
      expectClose(out.toArray(), refAttention(q, k, v, options.causal ?? false, options.scale ?? 1 / Math.sqrt(d), maskAt));
    };

    it('plain and causal (tq = tk and tq < tk aligned to the end) match the reference', () => {
      run([2, 3, 5, 4], [2, 3, 5, 4], {});
      run([2, 3, 5, 4], [2, 3, 5, 4], { causal: true });
      run([1, 2, 2, 8], [1, 2, 6, 8], { causal: true, scale: 0.3 });
      run([4, 3], [6, 3], {});
    });

    it('a padding mask [B, 1, 1, Tk] broadcasts over heads and queries', () => {
      const mask = tensor([[[[0, 0, -Infinity]]], [[[0, -Infinity, -Infinity]]]]);
      const m = mask.toArray();
      // 2 batches × 2 heads: slice s belongs to batch floor(s / 2).
      run([2, 2, 4, 3], [2, 2, 3, 3], { mask }, (s, _i, j) => m[Math.floor(s / 2) * 3 + j]!);
    });

    it('a bool mask [Tq, Tk] keeps nonzero entries; a fully masked row gives zeros', () => {
      const keep = [[1, 0, 1], [0, 0, 0]];
      run([1, 2, 2, 4], [1, 2, 3, 4], { mask: tensor(keep), maskMode: 'bool' }, (_s, i, j) => (keep[i]![j] ? 0 : -Infinity));
      const out = scaledDotProductAttention(rn([2, 3]), rn([3, 3]), rn([3, 3]), { mask: tensor(keep), maskMode: 'bool' });
      expect(out.toArray().slice(3)).toEqual([0, 0, 0]);
    });

    it('a mask whose batch dims do not flatten is materialised', () => {
      const mask = rn([2, 1, 3, 2, 3]);
      const mv = mask.toArray();
      // leading dims [2, 4, 3]; slice s = (b·4 + h1)·3 + h2, mask index (b, 0, h2, i, j).
      run([2, 4, 3, 2, 5], [2, 4, 3, 3, 5], { mask }, (s, i, j) => {
        const b = Math.floor(s / 12);
        const h2 = s % 3;
        return mv[((b * 3 + h2) * 2 + i) * 3 + j]!;
      });
    });

    it('refuses mismatched shapes and masks, naming them', () => {
      expect(() => scaledDotProductAttention(zeros([2, 3, 4]), zeros([1, 3, 4]), zeros([1, 3, 4]))).toThrow(
        /scaledDotProductAttention: .*q \[2, 3, 4\], k \[1, 3, 4\]/,
      );
      expect(() => scaledDotProductAttention(zeros([3, 4]), zeros([3, 5]), zeros([3, 5]))).toThrow(RangeError);
      expect(() => scaledDotProductAttention(zeros([3, 4]), zeros([5, 4]), zeros([5, 4]), { mask: zeros([3, 4]) })).toThrow(
        /scaledDotProductAttention: .*\[3, 4\].*\[3, 5\]/,
      );
      expect(() =>
        scaledDotProductAttention(zeros([3, 4]), zeros([5, 4]), zeros([5, 4]), { mask: zeros([3, 5], { dtype: 'i32' }) }),
      ).toThrow(TypeError);
    });
  });

  describe('topk', () => {
    it('sorted values and i32 indices, ties by lower index, any dim, smallest', () => {
      const x = tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]]);
      const { values, indices } = topk(x, 3);
      expect(values.toArray()).toEqual([5, 4, 3, 9, 6, 5]);
      expect(indices.dtype).toBe('i32');
      expect(indices.toArray()).toEqual([4, 2, 0, 0, 2, 3]);
      const small = topk(x, 2, { largest: false });
      expect(small.values.toArray()).toEqual([1, 1, 2, 3]);
      expect(small.indices.toArray()).toEqual([1, 3, 1, 4]);
      const byCol = x.topk(1, { dim: 0 });
      expect(byCol.values.shape).toEqual([1, 5]);
      expect(byCol.values.toArray()).toEqual([9, 2, 6, 5, 5]);
      expect(byCol.indices.toArray()).toEqual([1, 1, 1, 1, 0]);
    });

    it('gradient lands on the selected positions', () => {
      const x = tensor([[3, 1, 4], [2, 7, 0]], { requiresGrad: true });
      const { values } = topk(x, 1, { dim: 0 });
      values.backward(tensor([[10, 20, 30]]));
      expect(x.grad!.toArray()).toEqual([10, 0, 30, 0, 20, 0]);
    });

    it('k out of range throws naming the op', () => {
      expect(() => topk(zeros([2, 3]), 4)).toThrow(/topk: k = 4 out of range for dim -1 of size 3/);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// native vs js
// ---------------------------------------------------------------------------------------------

describe.runIf(nativeAvailable())('native and js agree on outputs and gradients', () => {
  afterAll(() => {
    setBackend('native');
  });

  /** Runs `fn` on fresh leaves under one backend; returns the output and every input gradient. */
  function outputsAndGrads(backend: BackendName, inputs: Tensor[], fn: (...xs: Tensor[]) => Tensor): number[][] {
    setBackend(backend);
    const leaves = inputs.map((t) => (t.dtype === 'f32' ? t.detach().requiresGrad_() : t));
    const out = fn(...leaves);
    const weights = randn(out.shape, { generator: new Generator(77) });
    out.backward(weights);
    return [out.toArray(), ...leaves.filter((t) => t.dtype === 'f32').map((t) => t.grad!.toArray())];
  }

  const cases: [string, () => Tensor[], (...xs: Tensor[]) => Tensor][] = [
    ['matmul, broadcast batch, transposed b', () => [rn([3, 1, 7, 20]), rn([4, 9, 20])], (a, b) => matmul(a!, b!.mT)],
    ['linear with bias', () => [rn([2, 13, 24]), rn([11, 24]), rn([11])], (x, w, b) => linear(x!, w!, b!)],
    ['softmax dim 0', () => [rn([9, 6])], (x) => softmax(x!, 0)],
    ['logSoftmax', () => [rn([5, 37])], (x) => logSoftmax(x!)],
    ['layerNorm', () => [rn([6, 40]), rn([40]), rn([40])], (x, w, b) => layerNorm(x!, [40], w!, b!)],
    ['rmsNorm', () => [rn([6, 40]), rn([40])], (x, w) => rmsNorm(x!, [40], w!)],
    ['embedding', () => [rn([10, 8])], (w) => embedding(tensor([[1, 9, 1], [0, 3, 3]], { dtype: 'i32' }), w!)],
    [
      'crossEntropy',
      () => [rn([12, 10])],
      (l) => crossEntropy(l!, tensor([1, 2, 3, -100, 5, 6, 7, 8, 9, 0, 1, 2], { dtype: 'i32' }), { labelSmoothing: 0.1 }),
    ],
    [
      'attention causal with padding mask',
      () => [rn([2, 3, 5, 8]), rn([2, 3, 9, 8]), rn([2, 3, 9, 8])],
      (q, k, v) =>
        scaledDotProductAttention(q!, k!, v!, {
          causal: true,
          mask: tensor([[[[0, 0, 0, 0, 0, 0, 0, -Infinity, -Infinity]]], [[[0, 0, 0, 0, 0, 0, 0, 0, 0]]]]),
        }),
    ],
    ['topk', () => [rn([4, 30])], (x) => topk(x!, 5).values],
  ];
  for (const [label, make, fn] of cases) {
    it(label, () => {
      const inputs = make();
      const js = outputsAndGrads('js', inputs, fn);
      const native = outputsAndGrads('native', inputs, fn);
      expect(native.length).toBe(js.length);
      js.forEach((expected, i) => expectClose(native[i]!, expected, 1e-5, 1e-4));
    });
  }
});
