/**
 * The `js` backend: a readable reference implementation of the kernel contract in plain TypeScript.
 *
 * It is what the native backend is tested against, and the fallback where the addon cannot load, so it
 * favours clarity over speed: each kernel is the textbook loop for its definition. Accumulations run in
 * float64 (JS numbers) and round to f32 only when stored, so it is at least as accurate as native code.
 */

import type {
  AdamWParams,
  AnyArray,
  ArgReduceOp,
  AttentionParams,
  Backend,
  BinaryOp,
  F32,
  GemmParams,
  I32,
  ReduceOp,
  Strided,
  U16,
  UnaryOp,
} from './backend.js';
import { bf16ToF32Array, f16ToF32Array, f32ToBf16Array, f32ToF16Array } from './f16.js';

// =====================================================================================================
// Checks shared by the kernels
// =====================================================================================================

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkSize(kernel: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${kernel}: ${name} must be a non-negative integer, got ${value}`);
  }
}

/** Throws unless `array` holds at least `needed` elements. */
function checkLength(kernel: string, name: string, array: AnyArray, needed: number): void {
  if (array.length < needed) {
    throw new RangeError(`${kernel}: ${name} has ${array.length} elements, needs ${needed}`);
  }
}

function checkIndex(kernel: string, index: number, limit: number): void {
  if (!(index >= 0 && index < limit)) {
    throw new RangeError(`${kernel}: index ${index} out of range [0, ${limit})`);
  }
}

/** Throws unless every element a strided view can reach over `shape` lies inside its buffer. */
function checkStrided(kernel: string, name: string, view: Strided<AnyArray>, shape: readonly number[]): void {
  if (view.strides.length !== shape.length) {
    throw new RangeError(
      `${kernel}: ${name} has ${view.strides.length} strides for a shape of rank ${shape.length} [${shape.join(', ')}]`,
    );
  }
  for (const d of shape) checkSize(kernel, 'shape dimension', d);
  if (product(shape) === 0) return;
  let lowest = view.offset;
  let highest = view.offset;
  shape.forEach((size, d) => {
    const reach = (size - 1) * view.strides[d];
    if (reach < 0) lowest += reach;
    else highest += reach;
  });
  if (lowest < 0 || highest >= view.data.length) {
    throw new RangeError(
      `${kernel}: ${name} view reaches elements [${lowest}, ${highest}] outside its buffer of ${view.data.length}`,
    );
  }
}

/**
 * Visits every logical index of `shape` in row-major order, passing the dense output position and, for
 * each view, the element offset of that index in the view's buffer. Offsets are updated incrementally,
 * like an odometer: step the last dimension, and on wrap-around rewind it and carry into the previous.
 */
function forEachStrided(
  shape: readonly number[],
  views: readonly Strided<AnyArray>[],
  visit: (position: number, offsets: readonly number[]) => void,
): void {
  const total = product(shape);
  if (total === 0) return;
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  const offsets = views.map((v) => v.offset);
  for (let position = 0; position < total; position++) {
    visit(position, offsets);
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      for (let v = 0; v < views.length; v++) offsets[v] += views[v].strides[d];
      if (index[d] < shape[d]) break;
      for (let v = 0; v < views.length; v++) offsets[v] -= views[v].strides[d] * shape[d];
      index[d] = 0;
    }
  }
}

// =====================================================================================================
// Scalar math
// =====================================================================================================

const SQRT_2 = Math.SQRT2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_TANH_COEFF = 0.044715;

/**
 * The error function, accurate to about 1e-15 absolute in float64.
 * |x| < 3: the Maclaurin series erf x = 2/√π Σ (−1)ⁿ x²ⁿ⁺¹ / (n! (2n+1)), whose largest term at |x| = 3
 * is ~10³, so cancellation costs only ~3 of float64's 16 digits.
 * |x| ≥ 3: erfc x = e^(−x²)/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …)))), a continued fraction
 * that converges quickly for large x; erf = 1 − erfc.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const ax = Math.abs(x);
  if (ax < 3) {
    const x2 = x * x;
    let term = x; // (−1)ⁿ x²ⁿ⁺¹ / n!
    let sum = x;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const contribution = term / (2 * n + 1);
      sum += contribution;
      if (Math.abs(contribution) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let fraction = ax;
  for (let n = 60; n >= 1; n--) fraction = ax + n / 2 / fraction;
  const erfc = Math.exp(-ax * ax) / (Math.sqrt(Math.PI) * fraction);
  return x > 0 ? 1 - erfc : erfc - 1;
}

/** Logistic sigmoid, written so that neither branch overflows exp. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** pow with C's special cases (pow(1, y) = 1 and pow(x, ±0) = 1 even for NaN; pow(−1, ±Inf) = 1), as native and PyTorch. */
function powC(base: number, exponent: number): number {
  if (base === 1 || exponent === 0) return 1;
  if (base === -1 && (exponent === Infinity || exponent === -Infinity)) return 1;
  return Math.pow(base, exponent);
}

function unaryScalar(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg':
      return -x;
    case 'exp':
      return Math.exp(x);
    case 'log':
      return Math.log(x);
    case 'sqrt':
      return Math.sqrt(x);
    case 'rsqrt':
      return 1 / Math.sqrt(x);
    case 'abs':
      return Math.abs(x);
    case 'sin':
      return Math.sin(x);
    case 'cos':
      return Math.cos(x);
    case 'tanh':
      return Math.tanh(x);
    case 'sigmoid':
      return sigmoid(x);
    case 'relu':
      return x > 0 ? x : Number.isNaN(x) ? x : 0;
    case 'gelu':
      return 0.5 * x * (1 + erf(x / SQRT_2));
    case 'gelu_tanh':
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x * x * x)));
    case 'silu':
      return x * sigmoid(x);
    case 'square':
      return x * x;
    case 'reciprocal':
      return 1 / x;
    case 'sign':
      return x > 0 ? 1 : x < 0 ? -1 : x; // keeps ±0 and NaN
  }
}

/** f'(x), given x and y = f(x). */
function unaryDerivative(op: UnaryOp, x: number, y: number): number {
  switch (op) {
    case 'neg':
      return -1;
    case 'exp':
      return y;
    case 'log':
      return 1 / x;
    case 'sqrt':
      return 0.5 / y;
    case 'rsqrt':
      return -0.5 * y * y * y; // d/dx x^(−1/2) = −½ x^(−3/2)
    case 'abs':
      return x > 0 ? 1 : x < 0 ? -1 : Number.isNaN(x) ? x : 0;
    case 'sin':
      return Math.cos(x);
    case 'cos':
      return -Math.sin(x);
    case 'tanh':
      return 1 - y * y;
    case 'sigmoid':
      return y * (1 - y);
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'gelu': {
      // Φ(x) + x φ(x)
      const cdf = 0.5 * (1 + erf(x / SQRT_2));
      const pdf = INV_SQRT_2PI * Math.exp(-0.5 * x * x);
      return cdf + x * pdf;
    }
    case 'gelu_tanh': {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x * x * x));
      const du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_COEFF * x * x);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
    }
    case 'silu': {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
    case 'square':
      return 2 * x;
    case 'reciprocal':
      return -y * y;
    case 'sign':
      return 0;
  }
}

function binaryScalar(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add':
      return a + b;
    case 'sub':
      return a - b;
    case 'mul':
      return a * b;
    case 'div':
      return a / b;
    case 'pow':
      return powC(a, b);
    case 'maximum':
      return Math.max(a, b); // NaN propagates, as torch.maximum
    case 'minimum':
      return Math.min(a, b);
    case 'eq':
      return a === b ? 1 : 0;
    case 'ne':
      return a !== b ? 1 : 0;
    case 'lt':
      return a < b ? 1 : 0;
    case 'le':
      return a <= b ? 1 : 0;
    case 'gt':
      return a > b ? 1 : 0;
    case 'ge':
      return a >= b ? 1 : 0;
  }
}

/** log Σ exp over `count` values read by `at(j)`: max-shifted so it never overflows. */
function logSumExp(count: number, at: (j: number) => number): number {
  let max = -Infinity;
  for (let j = 0; j < count; j++) {
    const value = at(j);
    if (value > max || Number.isNaN(value)) max = value;
    if (Number.isNaN(max)) return NaN;
  }
  // All −Inf: the sum is 0 and its log −Inf. +Inf: the result is +Inf (avoid Inf − Inf).
  if (max === -Infinity || max === Infinity) return max;
  let sum = 0;
  for (let j = 0; j < count; j++) sum += Math.exp(at(j) - max);
  return max + Math.log(sum);
}

// =====================================================================================================
// The backend
// =====================================================================================================

function checkUnaryOp(kernel: string, op: string): void {
  if (!UNARY_OPS.has(op)) throw new RangeError(`${kernel}: unknown op '${op}'`);
}

const UNARY_OPS = new Set<string>([
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sin', 'cos', 'tanh', 'sigmoid',
  'relu', 'gelu', 'gelu_tanh', 'silu', 'square', 'reciprocal', 'sign',
]);

const BINARY_OPS = new Set<string>([
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
]);

export const jsBackend: Backend = {
  name: 'js',

  // ------------------------------------------------------------------ layout and dtype

  copyStrided<T extends AnyArray>(src: Strided<T>, shape: readonly number[], dst: T): void {
    checkStrided('copyStrided', 'src', src, shape);
    checkLength('copyStrided', 'dst', dst, product(shape));
    forEachStrided(shape, [src], (position, [offset]) => {
      dst[position] = src.data[offset];
    });
  },

  fill(out: F32, value: number): void {
    out.fill(value);
  },

  f32ToBf16(x: F32, out: U16): void {
    f32ToBf16Array(x, out);
  },

  bf16ToF32(x: U16, out: F32): void {
    bf16ToF32Array(x, out);
  },

  f32ToF16(x: F32, out: U16): void {
    f32ToF16Array(x, out);
  },

  f16ToF32(x: U16, out: F32): void {
    f16ToF32Array(x, out);
  },

  // ------------------------------------------------------------------ elementwise

  unary(op: UnaryOp, x: F32, out: F32): void {
    checkUnaryOp('unary', op);
    checkLength('unary', 'out', out, x.length);
    for (let i = 0; i < x.length; i++) out[i] = unaryScalar(op, x[i]);
  },

  unaryBackward(op: UnaryOp, x: F32, y: F32, gy: F32, gx: F32): void {
    checkUnaryOp('unaryBackward', op);
    const n = x.length;
    checkLength('unaryBackward', 'y', y, n);
    checkLength('unaryBackward', 'gy', gy, n);
    checkLength('unaryBackward', 'gx', gx, n);
    for (let i = 0; i < n; i++) gx[i] = gy[i] * unaryDerivative(op, x[i], y[i]);
  },

  binary(op: BinaryOp, a: Strided<F32>, b: Strided<F32>, shape: readonly number[], out: F32): void {
    if (!BINARY_OPS.has(op)) throw new RangeError(`binary: unknown op '${op}'`);
    checkStrided('binary', 'a', a, shape);
    checkStrided('binary', 'b', b, shape);
    checkLength('binary', 'out', out, product(shape));
    forEachStrided(shape, [a, b], (position, [offsetA, offsetB]) => {
      out[position] = binaryScalar(op, a.data[offsetA], b.data[offsetB]);
    });
  },

  affine(x: F32, scale: number, shift: number, out: F32): void {
    checkLength('affine', 'out', out, x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] * scale + shift;
  },

  clamp(x: F32, lo: number, hi: number, out: F32): void {
    checkLength('clamp', 'out', out, x.length);
    // min(max(x, lo), hi) with NaN passing through (Math.max/min propagate it).
    for (let i = 0; i < x.length; i++) out[i] = Math.min(Math.max(x[i], lo), hi);
  },

  where(cond: Strided<F32>, a: Strided<F32>, b: Strided<F32>, shape: readonly number[], out: F32): void {
    checkStrided('where', 'cond', cond, shape);
    checkStrided('where', 'a', a, shape);
    checkStrided('where', 'b', b, shape);
    checkLength('where', 'out', out, product(shape));
    forEachStrided(shape, [cond, a, b], (position, [offsetCond, offsetA, offsetB]) => {
      out[position] = cond.data[offsetCond] !== 0 ? a.data[offsetA] : b.data[offsetB];
    });
  },

  // ------------------------------------------------------------------ reductions

  reduce(op: ReduceOp, x: F32, outer: number, n: number, inner: number, out: F32): void {
    checkSize('reduce', 'outer', outer);
    checkSize('reduce', 'n', n);
    checkSize('reduce', 'inner', inner);
    checkLength('reduce', 'x', x, outer * n * inner);
    checkLength('reduce', 'out', out, outer * inner);
    if (n === 0 && op !== 'sum' && outer * inner > 0) {
      throw new RangeError(`reduce: ${op} over an empty axis (n = 0) has no identity`);
    }
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const at = (j: number): number => x[(o * n + j) * inner + i];
        let result: number;
        if (op === 'sum') {
          result = 0;
          for (let j = 0; j < n; j++) result += at(j);
        } else if (op === 'max' || op === 'min') {
          result = at(0);
          for (let j = 1; j < n && !Number.isNaN(result); j++) {
            const value = at(j);
            if (Number.isNaN(value) || (op === 'max' ? value > result : value < result)) result = value;
          }
        } else if (op === 'logsumexp') {
          result = logSumExp(n, at);
        } else {
          throw new RangeError(`reduce: unknown op '${String(op)}'`);
        }
        out[o * inner + i] = result;
      }
    }
  },

  argReduce(op: ArgReduceOp, x: F32, outer: number, n: number, inner: number, out: I32): void {
    checkSize('argReduce', 'outer', outer);
    checkSize('argReduce', 'n', n);
    checkSize('argReduce', 'inner', inner);
    checkLength('argReduce', 'x', x, outer * n * inner);
    checkLength('argReduce', 'out', out, outer * inner);
    if (op !== 'argmax' && op !== 'argmin') throw new RangeError(`argReduce: unknown op '${String(op)}'`);
    if (n === 0 && outer * inner > 0) throw new RangeError(`argReduce: ${op} over an empty axis (n = 0)`);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        // The first NaN wins (PyTorch propagates NaN through max and min); otherwise the first extreme.
        let best = 0;
        let bestValue = x[o * n * inner + i];
        for (let j = 1; j < n && !Number.isNaN(bestValue); j++) {
          const value = x[(o * n + j) * inner + i];
          if (Number.isNaN(value) || (op === 'argmax' ? value > bestValue : value < bestValue)) {
            best = j;
            bestValue = value;
          }
        }
        out[o * inner + i] = best;
      }
    }
  },

  // ------------------------------------------------------------------ matrix products

  gemm(a: F32, b: F32, c: F32, p: GemmParams): void {
    const { batch, m, n, k, transA, transB, lda, ldb, ldc, strideA, strideB, strideC, alpha, beta } = p;
    for (const [name, value] of Object.entries({ batch, m, n, k, lda, ldb, ldc, strideA, strideB, strideC })) {
      checkSize('gemm', name, value);
    }
    // Stored shapes: A is k×m when transposed (else m×k), B is n×k when transposed (else k×n), C is m×n.
    const [rowsA, colsA] = transA ? [k, m] : [m, k];
    const [rowsB, colsB] = transB ? [n, k] : [k, n];
    const checkMatrix = (name: string, array: F32, rows: number, cols: number, ld: number, stride: number): void => {
      if (rows === 0 || cols === 0 || batch === 0) return;
      if (ld < cols) throw new RangeError(`gemm: ld${name.toLowerCase()} = ${ld} is less than ${name}'s ${cols} columns`);
      checkLength('gemm', name, array, (batch - 1) * stride + (rows - 1) * ld + cols);
    };
    checkMatrix('A', a, rowsA, colsA, lda, strideA);
    checkMatrix('B', b, rowsB, colsB, ldb, strideB);
    checkMatrix('C', c, m, n, ldc, strideC);

    const rowOfC = new Float64Array(n);
    for (let t = 0; t < batch; t++) {
      const baseA = t * strideA;
      const baseB = t * strideB;
      const baseC = t * strideC;
      for (let i = 0; i < m; i++) {
        // i-k-j order: row i of C accumulates A[i, kk] · (row kk of B); the inner loop is contiguous in B
        // when B is not transposed. Transposes are only index arithmetic.
        rowOfC.fill(0);
        for (let kk = 0; kk < k; kk++) {
          const aik = transA ? a[baseA + kk * lda + i] : a[baseA + i * lda + kk];
          if (transB) {
            for (let j = 0; j < n; j++) rowOfC[j] += aik * b[baseB + j * ldb + kk];
          } else {
            const rowB = baseB + kk * ldb;
            for (let j = 0; j < n; j++) rowOfC[j] += aik * b[rowB + j];
          }
        }
        const rowC = baseC + i * ldc;
        for (let j = 0; j < n; j++) {
          // beta = 0 must not read C (it may hold NaN).
          c[rowC + j] = beta === 0 ? alpha * rowOfC[j] : alpha * rowOfC[j] + beta * c[rowC + j];
        }
      }
    }
  },

  // ------------------------------------------------------------------ softmax and norms

  softmax(x: F32, rows: number, cols: number, log: boolean, out: F32): void {
    checkSize('softmax', 'rows', rows);
    checkSize('softmax', 'cols', cols);
    checkLength('softmax', 'x', x, rows * cols);
    checkLength('softmax', 'out', out, rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, x[base + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(x[base + c] - max);
      if (log) {
        const logSum = Math.log(sum);
        for (let c = 0; c < cols; c++) out[base + c] = x[base + c] - max - logSum;
      } else {
        for (let c = 0; c < cols; c++) out[base + c] = Math.exp(x[base + c] - max) / sum;
      }
    }
  },

  softmaxBackward(y: F32, gy: F32, rows: number, cols: number, log: boolean, gx: F32): void {
    checkSize('softmaxBackward', 'rows', rows);
    checkSize('softmaxBackward', 'cols', cols);
    checkLength('softmaxBackward', 'y', y, rows * cols);
    checkLength('softmaxBackward', 'gy', gy, rows * cols);
    checkLength('softmaxBackward', 'gx', gx, rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      if (log) {
        // gx = gy − softmax · Σ gy, and softmax = exp(log-softmax).
        let sumGy = 0;
        for (let c = 0; c < cols; c++) sumGy += gy[base + c];
        for (let c = 0; c < cols; c++) gx[base + c] = gy[base + c] - Math.exp(y[base + c]) * sumGy;
      } else {
        // gx = y ⊙ (gy − Σ gy⊙y)
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += gy[base + c] * y[base + c];
        for (let c = 0; c < cols; c++) gx[base + c] = y[base + c] * (gy[base + c] - dot);
      }
    }
  },

  layerNorm(
    x: F32,
    weight: F32 | null,
    bias: F32 | null,
    rows: number,
    cols: number,
    eps: number,
    out: F32,
    mean: F32,
    rstd: F32,
  ): void {
    checkSize('layerNorm', 'rows', rows);
    checkSize('layerNorm', 'cols', cols);
    checkLength('layerNorm', 'x', x, rows * cols);
    checkLength('layerNorm', 'out', out, rows * cols);
    checkLength('layerNorm', 'mean', mean, rows);
    checkLength('layerNorm', 'rstd', rstd, rows);
    if (weight) checkLength('layerNorm', 'weight', weight, cols);
    if (bias) checkLength('layerNorm', 'bias', bias, cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      // Two passes (mean, then the mean of squared deviations): no catastrophic cancellation.
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += x[base + c];
      const mu = sum / cols;
      let squares = 0;
      for (let c = 0; c < cols; c++) squares += (x[base + c] - mu) ** 2;
      const inverseStd = 1 / Math.sqrt(squares / cols + eps);
      for (let c = 0; c < cols; c++) {
        const normalized = (x[base + c] - mu) * inverseStd;
        out[base + c] = normalized * (weight ? weight[c] : 1) + (bias ? bias[c] : 0);
      }
      mean[r] = mu;
      rstd[r] = inverseStd;
    }
  },

  layerNormBackward(
    x: F32,
    weight: F32 | null,
    mean: F32,
    rstd: F32,
    gy: F32,
    rows: number,
    cols: number,
    gx: F32,
    gWeight: F32 | null,
    gBias: F32 | null,
  ): void {
    checkSize('layerNormBackward', 'rows', rows);
    checkSize('layerNormBackward', 'cols', cols);
    for (const [name, array, needed] of [
      ['x', x, rows * cols],
      ['gy', gy, rows * cols],
      ['gx', gx, rows * cols],
      ['mean', mean, rows],
      ['rstd', rstd, rows],
    ] as const) {
      checkLength('layerNormBackward', name, array, needed);
    }
    if (weight) checkLength('layerNormBackward', 'weight', weight, cols);
    if (gWeight) checkLength('layerNormBackward', 'gWeight', gWeight, cols);
    if (gBias) checkLength('layerNormBackward', 'gBias', gBias, cols);

    const sumWeight = new Float64Array(cols);
    const sumBias = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      const mu = mean[r];
      const inverseStd = rstd[r];
      // With x̂ = (x − μ)·rstd and g = gy ⊙ weight:  gx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)).
      let meanG = 0;
      let meanGXhat = 0;
      for (let c = 0; c < cols; c++) {
        const xhat = (x[base + c] - mu) * inverseStd;
        const g = gy[base + c] * (weight ? weight[c] : 1);
        meanG += g;
        meanGXhat += g * xhat;
        sumWeight[c] += gy[base + c] * xhat;
        sumBias[c] += gy[base + c];
      }
      meanG /= cols;
      meanGXhat /= cols;
      for (let c = 0; c < cols; c++) {
        const xhat = (x[base + c] - mu) * inverseStd;
        const g = gy[base + c] * (weight ? weight[c] : 1);
        gx[base + c] = inverseStd * (g - meanG - xhat * meanGXhat);
      }
    }
    for (let c = 0; c < cols; c++) {
      if (gWeight) gWeight[c] += sumWeight[c];
      if (gBias) gBias[c] += sumBias[c];
    }
  },

  rmsNorm(x: F32, weight: F32 | null, rows: number, cols: number, eps: number, out: F32, rstd: F32): void {
    checkSize('rmsNorm', 'rows', rows);
    checkSize('rmsNorm', 'cols', cols);
    checkLength('rmsNorm', 'x', x, rows * cols);
    checkLength('rmsNorm', 'out', out, rows * cols);
    checkLength('rmsNorm', 'rstd', rstd, rows);
    if (weight) checkLength('rmsNorm', 'weight', weight, cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let squares = 0;
      for (let c = 0; c < cols; c++) squares += x[base + c] * x[base + c];
      const inverseRms = 1 / Math.sqrt(squares / cols + eps);
      for (let c = 0; c < cols; c++) out[base + c] = x[base + c] * inverseRms * (weight ? weight[c] : 1);
      rstd[r] = inverseRms;
    }
  },

  rmsNormBackward(
    x: F32,
    weight: F32 | null,
    rstd: F32,
    gy: F32,
    rows: number,
    cols: number,
    gx: F32,
    gWeight: F32 | null,
  ): void {
    checkSize('rmsNormBackward', 'rows', rows);
    checkSize('rmsNormBackward', 'cols', cols);
    checkLength('rmsNormBackward', 'x', x, rows * cols);
    checkLength('rmsNormBackward', 'gy', gy, rows * cols);
    checkLength('rmsNormBackward', 'gx', gx, rows * cols);
    checkLength('rmsNormBackward', 'rstd', rstd, rows);
    if (weight) checkLength('rmsNormBackward', 'weight', weight, cols);
    if (gWeight) checkLength('rmsNormBackward', 'gWeight', gWeight, cols);

    const sumWeight = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      const inverseRms = rstd[r];
      // out_c = x_c · r · w_c with r = (mean(x²) + eps)^(−1/2), ∂r/∂x_j = −r³ x_j / cols, so with
      // g = gy ⊙ w:  gx = r · g − x · r³ · mean(g ⊙ x).
      let meanGX = 0;
      for (let c = 0; c < cols; c++) {
        meanGX += gy[base + c] * (weight ? weight[c] : 1) * x[base + c];
        sumWeight[c] += gy[base + c] * x[base + c] * inverseRms;
      }
      meanGX /= cols;
      const cubed = inverseRms * inverseRms * inverseRms;
      for (let c = 0; c < cols; c++) {
        const g = gy[base + c] * (weight ? weight[c] : 1);
        gx[base + c] = inverseRms * g - x[base + c] * cubed * meanGX;
      }
    }
    if (gWeight) for (let c = 0; c < cols; c++) gWeight[c] += sumWeight[c];
  },

  // ------------------------------------------------------------------ indexing

  gatherRows(table: F32, numRows: number, cols: number, idx: I32, out: F32): void {
    checkSize('gatherRows', 'numRows', numRows);
    checkSize('gatherRows', 'cols', cols);
    checkLength('gatherRows', 'table', table, numRows * cols);
    checkLength('gatherRows', 'out', out, idx.length * cols);
    for (let i = 0; i < idx.length; i++) checkIndex('gatherRows', idx[i], numRows);
    for (let i = 0; i < idx.length; i++) {
      const from = idx[i] * cols;
      for (let c = 0; c < cols; c++) out[i * cols + c] = table[from + c];
    }
  },

  scatterAddRows(g: F32, idx: I32, cols: number, gTable: F32, numRows: number): void {
    checkSize('scatterAddRows', 'numRows', numRows);
    checkSize('scatterAddRows', 'cols', cols);
    checkLength('scatterAddRows', 'g', g, idx.length * cols);
    checkLength('scatterAddRows', 'gTable', gTable, numRows * cols);
    // Check every index before writing, so a bad index leaves gTable untouched.
    for (let i = 0; i < idx.length; i++) checkIndex('scatterAddRows', idx[i], numRows);
    for (let i = 0; i < idx.length; i++) {
      const to = idx[i] * cols;
      for (let c = 0; c < cols; c++) gTable[to + c] += g[i * cols + c];
    }
  },

  gather(x: F32, outer: number, n: number, inner: number, idx: I32, m: number, out: F32): void {
    for (const [name, value] of [['outer', outer], ['n', n], ['inner', inner], ['m', m]] as const) {
      checkSize('gather', name, value);
    }
    checkLength('gather', 'x', x, outer * n * inner);
    checkLength('gather', 'idx', idx, outer * m * inner);
    checkLength('gather', 'out', out, outer * m * inner);
    for (let t = 0; t < outer * m * inner; t++) checkIndex('gather', idx[t], n);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < m; j++) {
        for (let i = 0; i < inner; i++) {
          const at = (o * m + j) * inner + i;
          out[at] = x[(o * n + idx[at]) * inner + i];
        }
      }
    }
  },

  scatterAdd(out: F32, outer: number, n: number, inner: number, idx: I32, m: number, src: F32): void {
    for (const [name, value] of [['outer', outer], ['n', n], ['inner', inner], ['m', m]] as const) {
      checkSize('scatterAdd', name, value);
    }
    checkLength('scatterAdd', 'out', out, outer * n * inner);
    checkLength('scatterAdd', 'idx', idx, outer * m * inner);
    checkLength('scatterAdd', 'src', src, outer * m * inner);
    for (let t = 0; t < outer * m * inner; t++) checkIndex('scatterAdd', idx[t], n);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < m; j++) {
        for (let i = 0; i < inner; i++) {
          const at = (o * m + j) * inner + i;
          out[(o * n + idx[at]) * inner + i] += src[at];
        }
      }
    }
  },

  // ------------------------------------------------------------------ losses

  crossEntropy(
    logits: F32,
    targets: I32,
    rows: number,
    cols: number,
    ignoreIndex: number,
    labelSmoothing: number,
    loss: F32,
    lse: F32,
  ): void {
    checkCrossEntropyArgs('crossEntropy', logits, targets, rows, cols, ignoreIndex);
    checkLength('crossEntropy', 'loss', loss, rows);
    checkLength('crossEntropy', 'lse', lse, rows);
    const smoothing = labelSmoothing;
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      const rowLse = logSumExp(cols, (c) => logits[base + c]);
      lse[r] = rowLse;
      const target = targets[r];
      if (target === ignoreIndex) {
        loss[r] = 0;
        continue;
      }
      // −Σ_c q_c log p_c with q = (1 − ε)·onehot + ε/cols and log p_c = logit_c − lse.
      let sumLogP = 0;
      if (smoothing !== 0) for (let c = 0; c < cols; c++) sumLogP += logits[base + c] - rowLse;
      const targetLogP = logits[base + target] - rowLse;
      loss[r] = -((1 - smoothing) * targetLogP + (smoothing / cols) * sumLogP);
    }
  },

  crossEntropyBackward(
    logits: F32,
    lse: F32,
    targets: I32,
    gLoss: F32,
    rows: number,
    cols: number,
    ignoreIndex: number,
    labelSmoothing: number,
    gLogits: F32,
  ): void {
    checkCrossEntropyArgs('crossEntropyBackward', logits, targets, rows, cols, ignoreIndex);
    checkLength('crossEntropyBackward', 'lse', lse, rows);
    checkLength('crossEntropyBackward', 'gLoss', gLoss, rows);
    checkLength('crossEntropyBackward', 'gLogits', gLogits, rows * cols);
    const smoothing = labelSmoothing;
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      const target = targets[r];
      if (target === ignoreIndex) {
        for (let c = 0; c < cols; c++) gLogits[base + c] = 0;
        continue;
      }
      for (let c = 0; c < cols; c++) {
        const probability = Math.exp(logits[base + c] - lse[r]);
        const q = (c === target ? 1 - smoothing : 0) + smoothing / cols;
        gLogits[base + c] = gLoss[r] * (probability - q);
      }
    }
  },

  // ------------------------------------------------------------------ attention

  attention(q: F32, k: F32, v: F32, p: AttentionParams, out: F32, lse: F32): void {
    const { batch, heads, tq, tk, dim } = checkAttentionArgs('attention', q, k, v, p);
    checkLength('attention', 'out', out, batch * heads * tq * dim);
    checkLength('attention', 'lse', lse, batch * heads * tq);
    const scores = new Float64Array(tk);
    const accumulator = new Float64Array(dim);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const bh = b * heads + h;
        for (let i = 0; i < tq; i++) {
          // One full row of scores, then a stable softmax over it, then the weighted sum of v.
          const rowMax = attentionScores(q, k, p, b, h, i, scores);
          const outBase = (bh * tq + i) * dim;
          if (rowMax === -Infinity) {
            // Every key masked: no distribution to average over; output 0 and lse −Inf by contract.
            for (let d = 0; d < dim; d++) out[outBase + d] = 0;
            lse[bh * tq + i] = -Infinity;
            continue;
          }
          accumulator.fill(0);
          let sum = 0;
          for (let j = 0; j < tk; j++) {
            if (scores[j] === -Infinity) continue; // a dropped key contributes nothing (even if v is NaN)
            const weight = Math.exp(scores[j] - rowMax);
            sum += weight;
            const vBase = (bh * tk + j) * dim;
            for (let d = 0; d < dim; d++) accumulator[d] += weight * v[vBase + d];
          }
          for (let d = 0; d < dim; d++) out[outBase + d] = accumulator[d] / sum;
          lse[bh * tq + i] = rowMax + Math.log(sum);
        }
      }
    }
  },

  attentionBackward(
    q: F32,
    k: F32,
    v: F32,
    _out: F32, // not needed: Σ_j p_j·dp_j is recomputed in float64 rather than taken as gOut·out
    lse: F32,
    gOut: F32,
    p: AttentionParams,
    gq: F32,
    gk: F32,
    gv: F32,
  ): void {
    const { batch, heads, tq, tk, dim, scale } = checkAttentionArgs('attentionBackward', q, k, v, p);
    checkLength('attentionBackward', 'lse', lse, batch * heads * tq);
    checkLength('attentionBackward', 'gOut', gOut, batch * heads * tq * dim);
    checkLength('attentionBackward', 'gq', gq, batch * heads * tq * dim);
    checkLength('attentionBackward', 'gk', gk, batch * heads * tk * dim);
    checkLength('attentionBackward', 'gv', gv, batch * heads * tk * dim);

    const scores = new Float64Array(tk);
    const probabilities = new Float64Array(tk);
    const gScores = new Float64Array(tk);
    const gqRow = new Float64Array(dim);
    const gkHead = new Float64Array(tk * dim);
    const gvHead = new Float64Array(tk * dim);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const bh = b * heads + h;
        gkHead.fill(0);
        gvHead.fill(0);
        for (let i = 0; i < tq; i++) {
          const rowLse = lse[bh * tq + i];
          const qBase = (bh * tq + i) * dim;
          gqRow.fill(0);
          if (rowLse !== -Infinity) {
            // The forward's softmax, recomputed exactly in float64 from the scores. (Using the f32
            // lse instead would leave Σp = 1 − δ for large scores, and ds = p(dp − Σp·dp) would drift.)
            attentionScores(q, k, p, b, h, i, scores);
            let rowMax = -Infinity;
            for (let j = 0; j < tk; j++) if (scores[j] > rowMax) rowMax = scores[j];
            let total = 0;
            for (let j = 0; j < tk; j++) {
              probabilities[j] = Math.exp(scores[j] - rowMax);
              total += probabilities[j];
            }
            for (let j = 0; j < tk; j++) probabilities[j] /= total;
            // dv_j += p_j · gOut_i;  dp_j = gOut_i · v_j;  ds_j = p_j (dp_j − Σ_l p_l dp_l).
            let rowDot = 0;
            for (let j = 0; j < tk; j++) {
              if (scores[j] === -Infinity) {
                gScores[j] = 0; // dropped key (skipped like the forward, so a NaN in v cannot leak in)
                continue;
              }
              const pj = probabilities[j];
              const vBase = (bh * tk + j) * dim;
              let dp = 0;
              for (let d = 0; d < dim; d++) {
                dp += gOut[qBase + d] * v[vBase + d];
                gvHead[j * dim + d] += pj * gOut[qBase + d];
              }
              gScores[j] = dp;
              rowDot += pj * dp;
            }
            for (let j = 0; j < tk; j++) {
              if (scores[j] === -Infinity) continue; // dropped key: no gradient flows to it
              const ds = probabilities[j] * (gScores[j] - rowDot) * scale; // scores = scale · q·k
              const kBase = (bh * tk + j) * dim;
              for (let d = 0; d < dim; d++) {
                gqRow[d] += ds * k[kBase + d];
                gkHead[j * dim + d] += ds * q[qBase + d];
              }
            }
          }
          for (let d = 0; d < dim; d++) gq[qBase + d] = gqRow[d];
        }
        const kvBase = bh * tk * dim;
        for (let t = 0; t < tk * dim; t++) {
          gk[kvBase + t] = gkHead[t];
          gv[kvBase + t] = gvHead[t];
        }
      }
    }
  },

  // ------------------------------------------------------------------ selection

  topk(x: F32, rows: number, cols: number, k: number, largest: boolean, values: F32, indices: I32): void {
    checkSize('topk', 'rows', rows);
    checkSize('topk', 'cols', cols);
    checkSize('topk', 'k', k);
    if (k > cols) throw new RangeError(`topk: k = ${k} is larger than the row length ${cols}`);
    checkLength('topk', 'x', x, rows * cols);
    checkLength('topk', 'values', values, rows * k);
    checkLength('topk', 'indices', indices, rows * k);
    // Descending (largest) or ascending order with NaN ranked above every number, as PyTorch; equal
    // values keep the lower index first, so the order never depends on the sort algorithm.
    const order = Array.from({ length: cols }, (_, c) => c);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      order.sort((i, j) => {
        const a = x[base + i];
        const b = x[base + j];
        // ascending: negative when a ranks below b
        let ascending: number;
        if (Number.isNaN(a) || Number.isNaN(b)) {
          ascending = Number.isNaN(a) === Number.isNaN(b) ? 0 : Number.isNaN(a) ? 1 : -1;
        } else {
          ascending = a < b ? -1 : a > b ? 1 : 0;
        }
        const byValue = largest ? -ascending : ascending;
        return byValue !== 0 ? byValue : i - j;
      });
      for (let t = 0; t < k; t++) {
        values[r * k + t] = x[base + order[t]];
        indices[r * k + t] = order[t];
      }
    }
  },

  // ------------------------------------------------------------------ optimizer

  adamw(param: F32, grad: F32, m: F32, v: F32, p: AdamWParams): void {
    const n = param.length;
    checkLength('adamw', 'grad', grad, n);
    checkLength('adamw', 'm', m, n);
    checkLength('adamw', 'v', v, n);
    if (!(p.step >= 1)) throw new RangeError(`adamw: step must be >= 1 (1-based), got ${p.step}`);
    const { lr, beta1, beta2, eps, weightDecay, step } = p;
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    for (let i = 0; i < n; i++) {
      const g = grad[i];
      const mi = beta1 * m[i] + (1 - beta1) * g;
      const vi = beta2 * v[i] + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      let value = param[i];
      value -= lr * weightDecay * value; // decoupled weight decay, applied before the Adam update
      value -= (lr * (mi / biasCorrection1)) / (Math.sqrt(vi / biasCorrection2) + eps);
      param[i] = value;
    }
  },
};

// =====================================================================================================
// Kernel helpers
// =====================================================================================================

function checkCrossEntropyArgs(
  kernel: string,
  logits: F32,
  targets: I32,
  rows: number,
  cols: number,
  ignoreIndex: number,
): void {
  checkSize(kernel, 'rows', rows);
  checkSize(kernel, 'cols', cols);
  checkLength(kernel, 'logits', logits, rows * cols);
  checkLength(kernel, 'targets', targets, rows);
  for (let r = 0; r < rows; r++) {
    const target = targets[r];
    if (target !== ignoreIndex && !(target >= 0 && target < cols)) {
      throw new RangeError(`${kernel}: target ${target} (row ${r}) out of range [0, ${cols})`);
    }
  }
}

function checkAttentionArgs(kernel: string, q: F32, k: F32, v: F32, p: AttentionParams): AttentionParams {
  for (const name of ['batch', 'heads', 'tq', 'tk', 'dim'] as const) checkSize(kernel, name, p[name]);
  const { batch, heads, tq, tk, dim } = p;
  checkLength(kernel, 'q', q, batch * heads * tq * dim);
  checkLength(kernel, 'k', k, batch * heads * tk * dim);
  checkLength(kernel, 'v', v, batch * heads * tk * dim);
  if (p.mask) checkStrided(kernel, 'mask', p.mask, [batch, heads, tq, tk]);
  return p;
}

/**
 * Fills `scores[j]` with scale · q_i·k_j + mask (−Infinity where causal masking drops key j) for query
 * row i of head (b, h), and returns the row's maximum.
 */
function attentionScores(
  q: F32,
  k: F32,
  p: AttentionParams,
  b: number,
  h: number,
  i: number,
  scores: Float64Array,
): number {
  const { heads, tq, tk, dim, scale, causal, mask } = p;
  const bh = b * heads + h;
  const qBase = (bh * tq + i) * dim;
  const lastVisibleKey = causal ? i + (tk - tq) : tk - 1; // causal mask aligned to the end
  let max = -Infinity;
  for (let j = 0; j < tk; j++) {
    let score = -Infinity;
    if (j <= lastVisibleKey) {
      const kBase = (bh * tk + j) * dim;
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += q[qBase + d] * k[kBase + d];
      score = dot * scale;
      if (mask) {
        const [sb, sh, si, sj] = mask.strides;
        score += mask.data[mask.offset + b * sb + h * sh + i * si + j * sj];
      }
    }
    scores[j] = score;
    if (score > max) max = score;
  }
  return max;
}
