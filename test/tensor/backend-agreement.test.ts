/**
 * Native vs js agreement, kernel by kernel, on random shapes chosen to straddle the SIMD widths
 * (1, 7, 8, 15, 16, 17, 33 …), broadcasting patterns, masks and edge values — for every kernel path
 * this CPU supports (portable / avx2 / avx512) and for 1 and 2 threads. The js backend is the
 * readable reference (itself checked against PyTorch fixtures and finite differences elsewhere).
 * Also: native bounds and length checks throw and leave memory untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttentionParams, Backend, F32, Strided, UnaryOp, BinaryOp } from '../../src/tensor/backend/backend.js';
import { jsBackend as J } from '../../src/tensor/backend/js.js';
import {
  loadNativeBackend,
  nativeAddonInfo,
  setNativeKernelPath,
  setNativeThreads,
  type KernelPathName,
} from '../../src/tensor/backend/native.js';

const maybeNative = loadNativeBackend();
const info = nativeAddonInfo();

// ----------------------------------------------------------------------------------------- helpers

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let seedCounter = 1;
function rand(n: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seedCounter++);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}
function randInt(n: number, lo: number, hi: number): Int32Array {
  const next = rng(seedCounter++);
  return Int32Array.from({ length: n }, () => lo + Math.floor((hi - lo) * next()));
}

/** |a − e| ≤ atol + rtol·|e| elementwise (NaN must meet NaN, infinities must be equal); names the worst element. */
function expectClose(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-4, atol = 1e-5): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) expect.fail(`${label}: element ${i}: native ${a}, js ${e}`);
      continue;
    }
    if (a === e) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${label}: element ${worst}: native ${actual[worst]}, js ${expected[worst]} (|diff| ${Math.abs(actual[worst] - expected[worst])})`,
    );
  }
}

function expectExact(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(actual[i] === expected[i])) {
      expect.fail(`${label}: element ${i}: native ${actual[i]}, js ${expected[i]}`);
    }
  }
}

/** Row-major strides of a shape. */
function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}
const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** A dense operand of `own` shape broadcast (right-aligned, stride 0 on size-1 dims) to `shape`. */
function broadcastView(data: F32, own: readonly number[], shape: readonly number[]): Strided<F32> {
  const ownStrides = contiguous(own);
  const strides = shape.map((_size, d) => {
    const od = d - (shape.length - own.length);
    if (od < 0 || own[od] === 1) return 0;
    return ownStrides[od];
  });
  return { data, offset: 0, strides };
}

/** Runs the same call on both backends with fresh copies of the outputs and returns both outputs. */
function both<T extends Float32Array | Int32Array | Uint16Array>(
  native: Backend,
  makeOut: () => T[],
  call: (b: Backend, outs: T[]) => void,
): { n: T[]; j: T[] } {
  const n = makeOut();
  const j = makeOut();
  call(native, n);
  call(J, j);
  return { n, j };
}

const SIZES = [1, 7, 8, 15, 16, 17, 33, 100];
const UNARY: UnaryOp[] = [
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sin', 'cos', 'tanh', 'sigmoid',
  'relu', 'gelu', 'gelu_tanh', 'silu', 'square', 'reciprocal', 'sign',
];
const BINARY: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'];

/** Inputs for a unary op: a spread of ordinary values plus large, small and special ones. */
function unaryInput(op: UnaryOp, n: number): Float32Array {
  const positive = op === 'log' || op === 'sqrt' || op === 'rsqrt';
  const x = positive ? rand(n, 0.01, 20) : rand(n, -12, 12);
  const specials = positive ? [1e-30, 1e30, 0, Infinity, NaN, -1] : [0, -0, 1e-30, -1e-30, 80, -80, 100, -100, Infinity, -Infinity, NaN];
  for (let i = 0; i < specials.length && 3 * i < n; i++) x[3 * i] = specials[i];
  return x;
}

// ----------------------------------------------------------------------------------------- variants

const paths: KernelPathName[] = (['portable', 'avx2', 'avx512'] as const).filter(
  (p) => maybeNative !== null && setNativeKernelPath(p),
);
const variants = paths.flatMap((path) => [1, 2].map((threads) => ({ path, threads })));
const initialPath = info?.kernelPath as KernelPathName | undefined;
const initialThreads = info?.threads;

afterAll(() => {
  if (initialPath !== undefined) setNativeKernelPath(initialPath);
  if (initialThreads !== undefined) setNativeThreads(initialThreads);
});

describe.skipIf(maybeNative === null)('native backend loads', () => {
  it('reports features, a kernel path and threads', () => {
    expect(info).not.toBeNull();
    expect(['portable', 'avx2', 'avx512']).toContain(info?.kernelPath);
    expect(info?.threads).toBeGreaterThanOrEqual(1);
    expect(paths).toContain('portable');
  });
});

describe.skipIf(maybeNative === null).each(variants)('native vs js, path $path, $threads thread(s)', ({ path, threads }) => {
  const N = maybeNative as Backend;
  beforeAll(() => {
    expect(setNativeKernelPath(path)).toBe(true);
    setNativeThreads(threads);
  });

  it('copyStrided (f32, i32, u16; transposed, sliced, broadcast views) and fill', () => {
    const src = rand(6 * 7 * 5);
    const cases: { offset: number; strides: number[]; shape: number[] }[] = [
      { offset: 0, strides: [35, 5, 1], shape: [6, 7, 5] },
      { offset: 0, strides: [1, 35, 5], shape: [5, 6, 7] }, // permuted
      { offset: 6, strides: [35, 5, 2], shape: [5, 3, 2] }, // sliced with a step
      { offset: 3, strides: [0, 5, 0], shape: [4, 7, 3] }, // broadcast
      { offset: 209, strides: [-35, -1], shape: [6, 5] }, // reversed
      { offset: 0, strides: [], shape: [] },
    ];
    for (const c of cases) {
      const { n, j } = both(N, () => [new Float32Array(numel(c.shape))], (b, [o]) =>
        b.copyStrided({ data: src, offset: c.offset, strides: c.strides }, c.shape, o),
      );
      expectExact(`copyStrided f32 ${JSON.stringify(c)}`, n[0], j[0]);
      const si = randInt(src.length, -1000, 1000);
      const ni = new Int32Array(numel(c.shape));
      const ji = new Int32Array(numel(c.shape));
      N.copyStrided({ data: si, offset: c.offset, strides: c.strides }, c.shape, ni);
      J.copyStrided({ data: si, offset: c.offset, strides: c.strides }, c.shape, ji);
      expectExact('copyStrided i32', ni, ji);
      const su = Uint16Array.from(si, (v) => v & 0xffff);
      const nu = new Uint16Array(numel(c.shape));
      const ju = new Uint16Array(numel(c.shape));
      N.copyStrided({ data: su, offset: c.offset, strides: c.strides }, c.shape, nu);
      J.copyStrided({ data: su, offset: c.offset, strides: c.strides }, c.shape, ju);
      expectExact('copyStrided u16', nu, ju);
    }
    const big = new Float32Array(100_003);
    N.fill(big, -2.5);
    expect(big.every((v) => v === -2.5)).toBe(true);
  });

  it('bf16 / f16 conversions are bit-exact', () => {
    const bits = new Uint32Array(20_000);
    const next = rng(77);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(next() * 4294967296) >>> 0;
    // Specials and rounding boundaries.
    const specials = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff, 0x477fe000, 0x477ff000,
      0x38800000, 0x33800000, 0x33000000, 0x33000001, 0x3f808000, 0x3f818000, 0x7f7fffff, 0x00000001];
    specials.forEach((s, i) => (bits[i] = s >>> 0));
    // Plenty of values inside the f16 range too.
    for (let i = 100; i < 10_000; i++) bits[i] = (0x30000000 + Math.floor(next() * 0x18000000)) | (i & 1 ? 0x80000000 : 0);
    const x = new Float32Array(bits.buffer);
    for (const [name, to] of [['bf16', 'f32ToBf16'], ['f16', 'f32ToF16']] as const) {
      const n = new Uint16Array(x.length);
      const j = new Uint16Array(x.length);
      N[to](x, n);
      J[to](x, j);
      expectExact(`f32 → ${name}`, n, j);
      const back = name === 'bf16' ? 'bf16ToF32' : 'f16ToF32';
      const hs = Uint16Array.from({ length: 65536 }, (_, i) => i);
      const nf = new Float32Array(65536);
      const jf = new Float32Array(65536);
      N[back](hs, nf);
      J[back](hs, jf);
      expectExact(`${name} → f32 (bits)`, new Uint32Array(nf.buffer), new Uint32Array(jf.buffer));
    }
  });

  it('unary and unaryBackward, every op', () => {
    for (const op of UNARY) {
      for (const n of [...SIZES, 70_001]) {
        const x = unaryInput(op, n);
        const y = new Float32Array(n);
        J.unary(op, x, y);
        const { n: nn, j } = both(N, () => [new Float32Array(n)], (b, [o]) => b.unary(op, x, o));
        expectClose(`unary ${op} n=${n}`, nn[0], j[0]);
        const gy = rand(n, -2, 2);
        const g = both(N, () => [new Float32Array(n)], (b, [o]) => b.unaryBackward(op, x, y, gy, o));
        expectClose(`unaryBackward ${op} n=${n}`, g.n[0], g.j[0]);
      }
      // out may alias x
      const x = unaryInput(op, 33);
      const expected = new Float32Array(33);
      J.unary(op, x, expected);
      N.unary(op, x, x);
      expectClose(`unary ${op} in place`, x, expected);
    }
  });

  it('binary: contiguous, row/column/scalar broadcast, transposed and general strided', () => {
    const layouts: { shape: number[]; a: number[]; b: number[] }[] = [
      { shape: [17], a: [17], b: [17] },
      { shape: [3, 5, 33], a: [3, 5, 33], b: [33] }, // x[B,T,C] + b[C]
      { shape: [7, 16], a: [7, 16], b: [7, 1] }, // column broadcast
      { shape: [15], a: [15], b: [1] }, // scalar
      { shape: [1], a: [1], b: [1] },
      { shape: [4, 9], a: [4, 1], b: [1, 9] }, // outer product
      { shape: [2, 3, 8], a: [2, 1, 8], b: [3, 1] },
      { shape: [70, 1001], a: [70, 1001], b: [1001] }, // threaded row broadcast
    ];
    for (const op of BINARY) {
      for (const l of layouts) {
        const lo = op === 'pow' ? 0.1 : -3;
        const a = rand(numel(l.a), lo, 3);
        const b = op === 'pow' ? rand(numel(l.b), -2.5, 2.5) : rand(numel(l.b), -3, 3);
        if (op !== 'pow') {
          // Exact ties and NaN for comparisons / max / min.
          if (a.length > 2 && b.length > 2) {
            b[1] = a[1];
            a[2] = NaN;
          }
        }
        const av = broadcastView(a, l.a, l.shape);
        const bv = broadcastView(b, l.b, l.shape);
        const { n, j } = both(N, () => [new Float32Array(numel(l.shape))], (be, [o]) => be.binary(op, av, bv, l.shape, o));
        expectClose(`binary ${op} ${JSON.stringify(l)}`, n[0], j[0]);
      }
      // Transposed a (inner stride != 1) and a sliced b with offset.
      const a = rand(9 * 17);
      const b = rand(3 + 9 * 40);
      const shape = [17, 9];
      const av: Strided<F32> = { data: a, offset: 0, strides: [1, 17] };
      const bv: Strided<F32> = { data: b, offset: 3, strides: [2, 40] };
      const { n, j } = both(N, () => [new Float32Array(153)], (be, [o]) => be.binary(op, av, bv, shape, o));
      expectClose(`binary ${op} transposed`, n[0], j[0]);
    }
  });

  it('affine, clamp (NaN stays NaN) and where', () => {
    for (const n of [...SIZES, 50_000]) {
      const x = rand(n, -5, 5);
      x[0] = NaN;
      const a = both(N, () => [new Float32Array(n)], (b, [o]) => b.affine(x, 1.7, -0.3, o));
      expectClose(`affine n=${n}`, a.n[0], a.j[0]);
      const c = both(N, () => [new Float32Array(n)], (b, [o]) => b.clamp(x, -1.5, 2, o));
      expectExact(`clamp n=${n}`, c.n[0], c.j[0]);
    }
    const shape = [4, 6, 9];
    const cond = Float32Array.from(rand(4 * 9), (v) => (v > 0 ? 1 : 0));
    const a = rand(numel(shape));
    const b = rand(6 * 9);
    const cv = broadcastView(cond, [4, 1, 9], shape);
    const av: Strided<F32> = { data: a, offset: 0, strides: [1, 4, 24] }; // permuted
    const bv = broadcastView(b, [6, 9], shape);
    const w = both(N, () => [new Float32Array(numel(shape))], (be, [o]) => be.where(cv, av, bv, shape, o));
    expectExact('where', w.n[0], w.j[0]);
    const s = both(N, () => [new Float32Array(1)], (be, [o]) =>
      be.where({ data: f([0]), offset: 0, strides: [] }, { data: f([1]), offset: 0, strides: [] }, { data: f([2]), offset: 0, strides: [] }, [], o),
    );
    expectExact('where scalar', s.n[0], s.j[0]);
  });

  it('reduce and argReduce over [outer, n, inner]', () => {
    const shapes = [
      [1, 1, 1], [3, 7, 1], [2, 33, 1], [5, 17, 8], [1, 100, 15], [4, 1, 16], [2, 2000, 1], [3, 64, 1100], [20, 3000, 1],
    ];
    for (const [outer, n, inner] of shapes) {
      const x = rand(outer * n * inner, -50, 50);
      for (const op of ['sum', 'max', 'min', 'logsumexp'] as const) {
        const r = both(N, () => [new Float32Array(outer * inner)], (b, [o]) => b.reduce(op, x, outer, n, inner, o));
        expectClose(`reduce ${op} [${outer},${n},${inner}]`, r.n[0], r.j[0], 1e-4, 1e-4);
      }
      // Exact ties, so "first index" matters.
      const xt = Float32Array.from(x, (v) => Math.round(v / 20));
      for (const op of ['argmax', 'argmin'] as const) {
        const r = both(N, () => [new Int32Array(outer * inner)], (b, [o]) => b.argReduce(op, xt, outer, n, inner, o));
        expectExact(`${op} [${outer},${n},${inner}]`, r.n[0], r.j[0]);
      }
    }
    // NaN and infinities.
    const x = f([1, NaN, 3, -Infinity, -Infinity, -Infinity, Infinity, 2, 5, 0, -1, -2]);
    for (const op of ['sum', 'max', 'min', 'logsumexp'] as const) {
      const r = both(N, () => [new Float32Array(4)], (b, [o]) => b.reduce(op, x, 4, 3, 1, o));
      expectClose(`reduce ${op} specials`, r.n[0], r.j[0]);
      const c = both(N, () => [new Float32Array(3)], (b, [o]) => b.reduce(op, x, 1, 4, 3, o));
      expectClose(`reduce ${op} specials inner`, c.n[0], c.j[0]);
    }
    for (const op of ['argmax', 'argmin'] as const) {
      const r = both(N, () => [new Int32Array(4)], (b, [o]) => b.argReduce(op, x, 4, 3, 1, o));
      expectExact(`${op} specials`, r.n[0], r.j[0]);
    }
    const empty = new Float32Array(3).fill(7);
    N.reduce('sum', new Float32Array(0), 3, 0, 1, empty);
    expectExact('sum over n = 0', empty, [0, 0, 0]);
    expect(() => N.reduce('max', new Float32Array(0), 3, 0, 1, empty)).toThrow(RangeError);
  });

  it('softmax / log-softmax forward and backward, with -inf entries and fully masked rows', () => {
    for (const cols of [...SIZES, 1000]) {
      const rows = cols === 1000 ? 40 : 5;
      const x = rand(rows * cols, -20, 20);
      if (cols > 3) {
        x[1] = -Infinity;
        for (let c = 0; c < cols; c++) x[cols + c] = -Infinity; // whole row masked: NaN like PyTorch
        x[2 * cols] = 80;
      }
      for (const log of [false, true]) {
        const y = both(N, () => [new Float32Array(rows * cols)], (b, [o]) => b.softmax(x, rows, cols, log, o));
        expectClose(`softmax log=${log} cols=${cols}`, y.n[0], y.j[0]);
        const yv = Float32Array.from(y.j[0], (v) => (Number.isNaN(v) ? 0 : v));
        const gy = rand(rows * cols, -1, 1);
        const g = both(N, () => [new Float32Array(rows * cols)], (b, [o]) => b.softmaxBackward(yv, gy, rows, cols, log, o));
        expectClose(`softmaxBackward log=${log} cols=${cols}`, g.n[0], g.j[0]);
      }
    }
  });

  it('layerNorm and rmsNorm forward and backward (gradients of weight/bias accumulate)', () => {
    for (const cols of [...SIZES, 768]) {
      const rows = cols === 768 ? 50 : 6;
      const x = rand(rows * cols, -3, 3);
      for (let c = 0; c < cols; c++) x[c] = 1000 + x[c]; // large offset: the two-pass variance matters
      const w = rand(cols, 0.5, 1.5);
      const bias = rand(cols);
      const gy = rand(rows * cols);
      for (const [weight, b] of [[w, bias], [null, null], [w, null]] as const) {
        const fwd = both(N, () => [new Float32Array(rows * cols), new Float32Array(rows), new Float32Array(rows)], (be, [o, m, r]) =>
          be.layerNorm(x, weight, b, rows, cols, 1e-5, o, m, r),
        );
        fwd.n.forEach((a, i) => expectClose(`layerNorm[${i}] cols=${cols} w=${weight !== null}`, a, fwd.j[i]));
        const [, mean, rstd] = fwd.j;
        const start = rand(cols);
        const bwd = both(
          N,
          () => [new Float32Array(rows * cols), Float32Array.from(start), Float32Array.from(start)],
          (be, [gx, gw, gb]) => be.layerNormBackward(x, weight, mean, rstd, gy, rows, cols, gx, weight ? gw : null, b ? gb : null),
        );
        bwd.n.forEach((a, i) => expectClose(`layerNormBackward[${i}] cols=${cols}`, a, bwd.j[i], 1e-4, 1e-4));
      }
      for (const weight of [w, null]) {
        const fwd = both(N, () => [new Float32Array(rows * cols), new Float32Array(rows)], (be, [o, r]) =>
          be.rmsNorm(x, weight, rows, cols, 1e-6, o, r),
        );
        fwd.n.forEach((a, i) => expectClose(`rmsNorm[${i}] cols=${cols}`, a, fwd.j[i]));
        const rstd = fwd.j[1];
        const start = rand(cols);
        const bwd = both(N, () => [new Float32Array(rows * cols), Float32Array.from(start)], (be, [gx, gw]) =>
          be.rmsNormBackward(x, weight, rstd, gy, rows, cols, gx, weight ? gw : null),
        );
        bwd.n.forEach((a, i) => expectClose(`rmsNormBackward[${i}] cols=${cols}`, a, bwd.j[i], 1e-4, 1e-4));
      }
    }
  });

  it('gatherRows / scatterAddRows / gather / scatterAdd (repeated indices add up)', () => {
    for (const cols of [1, 7, 16, 33, 300]) {
      const numRows = 11;
      const table = rand(numRows * cols);
      const idx = randInt(257, 0, numRows);
      const g = both(N, () => [new Float32Array(idx.length * cols)], (b, [o]) => b.gatherRows(table, numRows, cols, idx, o));
      expectExact(`gatherRows cols=${cols}`, g.n[0], g.j[0]);
      const grad = rand(idx.length * cols);
      const start = rand(numRows * cols);
      const s = both(N, () => [Float32Array.from(start)], (b, [o]) => b.scatterAddRows(grad, idx, cols, o, numRows));
      expectClose(`scatterAddRows cols=${cols}`, s.n[0], s.j[0]);
    }
    for (const [outer, n, inner, m] of [[1, 5, 1, 9], [3, 7, 4, 2], [2, 17, 33, 17], [4, 1, 3, 5]]) {
      const x = rand(outer * n * inner);
      const idx = randInt(outer * m * inner, 0, n);
      const g = both(N, () => [new Float32Array(outer * m * inner)], (b, [o]) => b.gather(x, outer, n, inner, idx, m, o));
      expectExact(`gather [${outer},${n},${inner}] m=${m}`, g.n[0], g.j[0]);
      const src = rand(outer * m * inner);
      const s = both(N, () => [Float32Array.from(x)], (b, [o]) => b.scatterAdd(o, outer, n, inner, idx, m, src));
      expectClose(`scatterAdd [${outer},${n},${inner}] m=${m}`, s.n[0], s.j[0]);
    }
  });

  it('crossEntropy forward and backward: ignoreIndex, label smoothing, large logits', () => {
    for (const cols of [1, 7, 16, 17, 33, 1000]) {
      const rows = 13;
      const logits = rand(rows * cols, -10, 10);
      logits[0] = 90; // large: must not overflow
      const targets = randInt(rows, 0, cols);
      targets[3] = -100;
      targets[7] = -100;
      for (const smoothing of [0, 0.1]) {
        const f = both(N, () => [new Float32Array(rows), new Float32Array(rows)], (b, [loss, lse]) =>
          b.crossEntropy(logits, targets, rows, cols, -100, smoothing, loss, lse),
        );
        expectClose(`crossEntropy loss cols=${cols} eps=${smoothing}`, f.n[0], f.j[0]);
        expectClose(`crossEntropy lse cols=${cols}`, f.n[1], f.j[1]);
        expect(f.n[0][3]).toBe(0);
        const gLoss = rand(rows, 0.1, 2);
        const g = both(N, () => [new Float32Array(rows * cols)], (b, [o]) =>
          b.crossEntropyBackward(logits, f.j[1], targets, gLoss, rows, cols, -100, smoothing, o),
        );
        expectClose(`crossEntropyBackward cols=${cols} eps=${smoothing}`, g.n[0], g.j[0]);
        expect(g.n[0].subarray(3 * cols, 4 * cols).every((v) => v === 0)).toBe(true);
      }
    }
  });

  it('attention forward and backward: causal (tq = tk and tq < tk), masks, odd dims, fully masked rows', () => {
    interface Case { batch: number; heads: number; tq: number; tk: number; dim: number; causal: boolean; mask?: 'padding' | 'full' | 'allMaskedRow' }
    const cases: Case[] = [
      { batch: 2, heads: 2, tq: 70, tk: 70, dim: 32, causal: true },
      { batch: 1, heads: 3, tq: 5, tk: 130, dim: 64, causal: true }, // KV-cache shape
      { batch: 1, heads: 1, tq: 1, tk: 1, dim: 8, causal: false },
      { batch: 2, heads: 1, tq: 17, tk: 33, dim: 17, causal: false, mask: 'padding' },
      { batch: 1, heads: 2, tq: 9, tk: 65, dim: 16, causal: true, mask: 'full' },
      { batch: 1, heads: 2, tq: 8, tk: 15, dim: 7, causal: false, mask: 'allMaskedRow' },
      { batch: 1, heads: 1, tq: 130, tk: 130, dim: 128, causal: true },
    ];
    for (const c of cases) {
      const { batch, heads, tq, tk, dim } = c;
      const q = rand(batch * heads * tq * dim, -2, 2);
      const k = rand(batch * heads * tk * dim, -2, 2);
      const v = rand(batch * heads * tk * dim);
      const p: AttentionParams = { batch, heads, tq, tk, dim, scale: 1 / Math.sqrt(dim), causal: c.causal };
      if (c.mask === 'padding') {
        // [batch, 1, 1, tk] key padding mask: the last keys of batch 1 dropped, a finite bias elsewhere.
        const m = new Float32Array(batch * tk);
        for (let j = 0; j < tk; j++) m[tk + j] = j >= tk - 10 ? -Infinity : 0.25;
        p.mask = { data: m, offset: 0, strides: [tk, 0, 0, 1] };
      } else if (c.mask === 'full') {
        const m = rand(heads * tq * tk + 5, -1, 1);
        for (let i = 0; i < m.length; i += 3) m[i] = -Infinity;
        p.mask = { data: m, offset: 5, strides: [0, tq * tk, tk, 1] };
      } else if (c.mask === 'allMaskedRow') {
        const m = new Float32Array(tq * tk);
        for (let j = 0; j < tk; j++) m[2 * tk + j] = -Infinity; // query row 2 sees nothing
        p.mask = { data: m, offset: 0, strides: [0, 0, tk, 1] };
      }
      const label = JSON.stringify(c);
      const f = both(N, () => [new Float32Array(batch * heads * tq * dim), new Float32Array(batch * heads * tq)], (b, [o, l]) =>
        b.attention(q, k, v, p, o, l),
      );
      expectClose(`attention out ${label}`, f.n[0], f.j[0]);
      expectClose(`attention lse ${label}`, f.n[1], f.j[1]);
      const gOut = rand(batch * heads * tq * dim);
      const [out, lse] = f.j;
      const g = both(
        N,
        () => [new Float32Array(q.length).fill(NaN), new Float32Array(k.length).fill(NaN), new Float32Array(v.length).fill(NaN)],
        (b, [gq, gk, gv]) => b.attentionBackward(q, k, v, out, lse, gOut, p, gq, gk, gv),
      );
      g.n.forEach((a, i) => expectClose(`attentionBackward ${['gq', 'gk', 'gv'][i]} ${label}`, a, g.j[i], 1e-4, 2e-5));
    }
  });

  it('topk: sorted, ties keep the lower index, NaN ranks highest', () => {
    for (const cols of [1, 7, 16, 33, 200]) {
      const rows = 4;
      const x = Float32Array.from(rand(rows * cols, -5, 5), (v) => Math.round(v)); // many ties
      if (cols > 3) x[2] = NaN;
      for (const k of [1, Math.min(3, cols), cols]) {
        for (const largest of [true, false]) {
          const r = both(N, () => [new Float32Array(rows * k)], (b, [values]) => {
            const indices = new Int32Array(rows * k);
            b.topk(x, rows, cols, k, largest, values, indices);
            values.set(Float32Array.from(indices), 0); // compare indices (values follow from them)
          });
          expectExact(`topk cols=${cols} k=${k} largest=${largest}`, r.n[0], r.j[0]);
        }
      }
    }
  });

  it('adamw', () => {
    for (const n of [...SIZES, 100_000]) {
      const param = rand(n);
      const grad = rand(n, -0.1, 0.1);
      const m = rand(n, -0.01, 0.01);
      const v = rand(n, 0, 0.001);
      const p = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 7 };
      const r = both(N, () => [Float32Array.from(param), Float32Array.from(m), Float32Array.from(v)], (b, [pp, mm, vv]) =>
        b.adamw(pp, grad, mm, vv, p),
      );
      r.n.forEach((a, i) => expectClose(`adamw[${i}] n=${n}`, a, r.j[i], 1e-5, 1e-7));
    }
  });

  it('gemm (batched, transposed, alpha/beta)', () => {
    const m = 17, n = 33, k = 15;
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const a = rand(2 * m * k);
      const b = rand(k * n);
      const c0 = rand(2 * m * n);
      const params = {
        batch: 2, m, n, k, transA, transB, lda: transA ? m : k, ldb: transB ? k : n, ldc: n,
        strideA: m * k, strideB: 0, strideC: m * n, alpha: 0.5, beta: 1.5,
      };
      const r = both(N, () => [Float32Array.from(c0)], (be, [c]) => be.gemm(a, b, c, params));
      expectClose(`gemm transA=${transA} transB=${transB}`, r.n[0], r.j[0]);
    }
  });
});

function f(values: number[]): Float32Array {
  return Float32Array.from(values);
}

describe.skipIf(maybeNative === null)('native bad input: errors name the kernel, memory untouched', () => {
  const N = maybeNative as Backend;

  it('out-of-range indices throw RangeError before writing', () => {
    const table = rand(50257 * 2);
    const out = new Float32Array(3 * 2).fill(9);
    expect(() => N.gatherRows(table, 50257, 2, Int32Array.from([1, 70000, 2]), out)).toThrow(
      /gatherRows: index 70000 out of range \[0, 50257\)/,
    );
    expect(out.every((v) => v === 9)).toBe(true);
    expect(() => N.gatherRows(table, 50257, 2, Int32Array.from([-1]), out)).toThrow(RangeError);

    const gTable = new Float32Array(4 * 2);
    expect(() => N.scatterAddRows(rand(4), Int32Array.from([0, 4]), 2, gTable, 4)).toThrow(/scatterAddRows: index 4/);
    expect(gTable.every((v) => v === 0)).toBe(true);

    const gOut = new Float32Array(6).fill(1);
    expect(() => N.gather(rand(6), 2, 3, 1, Int32Array.from([0, 3]), 1, gOut)).toThrow(/gather: index 3 out of range \[0, 3\)/);
    expect(gOut.every((v) => v === 1)).toBe(true);
    const sOut = new Float32Array(6);
    expect(() => N.scatterAdd(sOut, 2, 3, 1, Int32Array.from([2, -5]), 1, rand(2))).toThrow(/scatterAdd: index -5/);
    expect(sOut.every((v) => v === 0)).toBe(true);

    const loss = new Float32Array(2).fill(5);
    expect(() => N.crossEntropy(rand(8), Int32Array.from([1, 4]), 2, 4, -100, 0, loss, new Float32Array(2))).toThrow(
      /crossEntropy: target 4/,
    );
    expect(loss.every((v) => v === 5)).toBe(true);
    expect(() =>
      N.crossEntropyBackward(rand(8), rand(2), Int32Array.from([-3, 0]), rand(2), 2, 4, -100, 0, new Float32Array(8)),
    ).toThrow(RangeError);
  });

  it('short buffers, strided views reaching outside, and wrong types are refused', () => {
    expect(() => N.softmax(rand(10), 3, 4, false, new Float32Array(12))).toThrow(/softmax: 'x' has 10 elements, needs 12/);
    expect(() => N.unary('exp', rand(10), new Float32Array(5))).toThrow(RangeError);
    expect(() =>
      N.binary('add', { data: rand(10), offset: 0, strides: [1] }, { data: rand(4), offset: 1, strides: [1] }, [4], new Float32Array(4)),
    ).toThrow(/binary: strided view 'b' reaches elements \[1, 4\] of a buffer of 4/);
    expect(() => N.copyStrided({ data: rand(6), offset: 0, strides: [3, 1] }, [3, 3], new Float32Array(9))).toThrow(RangeError);
    expect(() =>
      N.attention(rand(8), rand(8), rand(4), { batch: 1, heads: 1, tq: 2, tk: 2, dim: 4, scale: 1, causal: false }, new Float32Array(8), new Float32Array(2)),
    ).toThrow(/attention: 'v' has 4 elements, needs 8/);
    expect(() => N.layerNorm(rand(8), null, null, 2, 4, 1e-5, new Float32Array(8), new Float32Array(2), new Float32Array(2)))
      .not.toThrow();
    // @ts-expect-error: deliberately the wrong array type
    expect(() => N.softmax(new Float64Array(12), 3, 4, false, new Float32Array(12))).toThrow(/softmax: 'x' must be a Float32Array/);
    expect(() => N.topk(rand(6), 2, 3, 4, true, new Float32Array(8), new Int32Array(8))).toThrow(/topk: k = 4/);
    expect(() => N.reduce('sum', rand(6), 2, 3, 1.5, new Float32Array(2))).toThrow(/reduce: 'inner' must be an integer/);
  });
});
