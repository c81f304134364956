// Native GEMM against a float64 reference, on every kernel path this CPU supports and with 1 and 2
// threads: odd sizes, the edges of the register tiles and cache blocks, every transpose combination,
// batches with broadcast (stride 0) operands, padded leading dimensions, alpha/beta, beta = 0 over NaN,
// the skinny (m <= 16) path; and the glue's bounds and type errors.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

interface GemmAddon {
  gemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    lda: number,
    ldb: number,
    ldc: number,
    strideA: number,
    strideB: number,
    strideC: number,
    alpha: number,
    beta: number,
  ): void;
  setKernelPath(path: 'portable' | 'avx2' | 'avx512'): boolean;
  setNumThreads(n: number): void;
  cpuInfo(): { kernelPath: string; threads: number };
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const addonPath = join(root, 'build', 'Release', 'weft.node');
const addon: GemmAddon | null = existsSync(addonPath) ? (createRequire(import.meta.url)(addonPath) as GemmAddon) : null;

/** Deterministic values in [-1, 1) (xorshift), so failures reproduce. */
function randomArray(length: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

interface Case {
  batch?: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** Extra elements at the end of each stored row (lda/ldb/ldc beyond the row length). */
  padA?: number;
  padB?: number;
  padC?: number;
  broadcastA?: boolean;
  broadcastB?: boolean;
  alpha?: number;
  beta?: number;
}

/**
 * Runs one case through the addon and checks every element of C against a float64 reference,
 * including that the padding between C's rows (and past its last row) is left untouched.
 */
function check(lib: GemmAddon, cs: Case, seed: number): void {
  const { m, n, k } = cs;
  const batch = cs.batch ?? 1;
  const transA = cs.transA ?? false;
  const transB = cs.transB ?? false;
  const alpha = cs.alpha ?? 1;
  const beta = cs.beta ?? 0;
  const lda = (transA ? m : k) + (cs.padA ?? 0);
  const ldb = (transB ? k : n) + (cs.padB ?? 0);
  const ldc = n + (cs.padC ?? 0);
  const sizeA = (transA ? k : m) * lda;
  const sizeB = (transB ? n : k) * ldb;
  const strideA = cs.broadcastA ? 0 : sizeA;
  const strideB = cs.broadcastB ? 0 : sizeB;
  const strideC = m * ldc;
  const a = randomArray(Math.max(1, (cs.broadcastA ? 1 : batch) * sizeA), seed);
  const b = randomArray(Math.max(1, (cs.broadcastB ? 1 : batch) * sizeB), seed + 1);
  const c0 = randomArray(batch * strideC + 3, seed + 2);
  const sentinel = 12345.5;
  for (let t = 0; t < batch; t++)
    for (let i = 0; i < m; i++) for (let j = n; j < ldc; j++) c0[t * strideC + i * ldc + j] = sentinel;
  for (let i = batch * strideC; i < c0.length; i++) c0[i] = sentinel;
  // beta = 0 must never read C: NaN there would poison the result if it did.
  if (beta === 0)
    for (let t = 0; t < batch; t++)
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c0[t * strideC + i * ldc + j] = Number.NaN;
  const c = c0.slice();
  lib.gemm(a, b, c, batch, m, n, k, transA, transB, lda, ldb, ldc, strideA, strideB, strideC, alpha, beta);

  let worst = 0;
  let worstAt = '';
  for (let t = 0; t < batch; t++) {
    const oa = t * strideA;
    const ob = t * strideB;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        let absSum = 0;
        for (let p = 0; p < k; p++) {
          const av = a[oa + (transA ? p * lda + i : i * lda + p)];
          const bv = b[ob + (transB ? j * ldb + p : p * ldb + j)];
          sum += av * bv;
          absSum += Math.abs(av * bv);
        }
        const ci = t * strideC + i * ldc + j;
        const expected = alpha * sum + (beta === 0 ? 0 : beta * c0[ci]);
        // f32 accumulation error grows like sqrt(k)·eps·Σ|a·b| for blocked sums; 16× margin.
        const scale = Math.abs(alpha) * absSum + (beta === 0 ? 0 : Math.abs(beta * c0[ci]));
        const tol = 16 * Math.sqrt(k + 1) * 1.2e-7 * scale + 1e-6;
        const err = Math.abs(c[ci] - expected);
        if (!(err <= tol) && (worstAt === '' || err > worst || Number.isNaN(err))) {
          worst = err;
          worstAt = `batch ${t} [${i}, ${j}]: got ${c[ci]}, expected ${expected} (tol ${tol.toExponential(2)})`;
        }
      }
      for (let j = n; j < ldc; j++) {
        const ci = t * strideC + i * ldc + j;
        if (c[ci] !== sentinel) worstAt ||= `batch ${t} row ${i}: wrote padding column ${j}`;
      }
    }
  }
  for (let i = batch * strideC; i < c.length; i++) if (c[i] !== sentinel) worstAt ||= `wrote past C at ${i}`;
  expect(worstAt, JSON.stringify(cs)).toBe('');
}

// Sizes chosen around the tiles and blocks of every kernel: portable 4×8 (MC 128, KC 256),
// AVX2 6×16 (MC 96, KC 384), AVX-512 6×64 (MC 96, KC 384, NC 3072), skinny m <= 16.
const cases: Case[] = [
  { m: 1, n: 1, k: 1 },
  { m: 2, n: 3, k: 1 },
  { m: 17, n: 1, k: 5 },
  { m: 5, n: 7, k: 3 },
  { m: 6, n: 64, k: 32 },
  { m: 7, n: 65, k: 33 },
  { m: 13, n: 63, k: 17 },
  { m: 17, n: 129, k: 31 },
  { m: 25, n: 17, k: 257 },
  { m: 18, n: 33, k: 385 },
  { m: 97, n: 70, k: 40 },
  { m: 145, n: 20, k: 9 },
  { m: 31, n: 3100, k: 3 },
  { m: 40, n: 48, k: 769 },
  { m: 130, n: 200, k: 120 }, // above the threading threshold
  { m: 64, n: 300, k: 100, transA: true, transB: true, alpha: -0.5, beta: 0.25 },
  { m: 100, n: 90, k: 70, padA: 3, padB: 5, padC: 2, alpha: 2, beta: 1 },
  { m: 33, n: 40, k: 50, transA: true, padA: 1, beta: -1 },
  { m: 33, n: 40, k: 50, transB: true, padB: 2, padC: 7 },
  // Transposed B through several k blocks, with partial 16-wide transposes at every edge.
  { m: 40, n: 70, k: 400, transB: true, beta: 0.5 },
  { m: 20, n: 33, k: 777, transB: true, padB: 3 },
  { m: 20, n: 30, k: 0, beta: 0.5 },
  { m: 20, n: 30, k: 0 },
  { m: 20, n: 30, k: 10, alpha: 0, beta: 2 },
  // Batches: independent items, broadcast A (shared weights) and broadcast B.
  { batch: 3, m: 9, n: 11, k: 13, transB: true },
  { batch: 4, m: 30, n: 20, k: 10, broadcastA: true, beta: 0.5 },
  { batch: 5, m: 21, n: 19, k: 40, broadcastB: true, transA: true },
  { batch: 24, m: 40, n: 40, k: 32, transB: true }, // many small items: threads over the batch
  { batch: 2, m: 150, n: 140, k: 60, transA: true, transB: true },
];

// Skinny (decode) shapes: every m up to 16, both B layouts, k tails of the vector width.
for (const m of [1, 2, 3, 4, 5, 7, 8, 13, 16]) {
  cases.push({ m, n: 37, k: 45, transB: true });
  cases.push({ m, n: 70, k: 33, transB: false });
}
cases.push({ m: 1, n: 1000, k: 300, transB: true, alpha: 0.5, beta: 0.5 }); // threaded matvec
cases.push({ m: 16, n: 1000, k: 300, transB: false, padB: 3, padC: 1 });
cases.push({ m: 11, n: 130, k: 77, transA: true, transB: true, padA: 2 });
cases.push({ m: 9, n: 150, k: 61, transA: true, transB: false, beta: 1 });
cases.push({ batch: 3, m: 1, n: 64, k: 64, transB: true, broadcastB: true });
// Narrow (n <= 16 < m: W·x with x a column) in every layout, including threaded.
cases.push({ m: 100, n: 1, k: 50 });
cases.push({ m: 70, n: 5, k: 33, transB: true, alpha: 1.5 });
cases.push({ m: 40, n: 16, k: 20, transA: true, padA: 3 });
cases.push({ m: 37, n: 3, k: 19, transA: true, transB: true, beta: 0.5, padC: 2 });
cases.push({ m: 3000, n: 2, k: 100, beta: 1 });
cases.push({ m: 2000, n: 3, k: 90, transA: true });

const paths = ['portable', 'avx2', 'avx512'] as const;

describe.skipIf(addon === null)('native gemm vs float64 reference', () => {
  const lib = addon as GemmAddon;
  const initialThreads = addon?.cpuInfo().threads ?? 1;
  const initialPath = (addon?.cpuInfo().kernelPath ?? 'portable') as (typeof paths)[number];
  afterAll(() => {
    lib.setKernelPath(initialPath);
    lib.setNumThreads(initialThreads);
  });

  for (const path of paths) {
    for (const threads of [1, 2]) {
      it(`${path}, ${threads} thread(s)`, (ctx) => {
        if (!lib.setKernelPath(path)) {
          ctx.skip();
          return;
        }
        lib.setNumThreads(threads);
        cases.forEach((cs, i) => check(lib, cs, 1000 * i + threads));
      });
    }
  }

  it('shared C (strideC = 0) accumulates the batch in order when beta = 1', () => {
    lib.setKernelPath(initialPath);
    const m = 3, n = 4, k = 5, batch = 3;
    const a = randomArray(batch * m * k, 7);
    const b = randomArray(batch * k * n, 8);
    const c = new Float32Array(m * n).fill(1);
    lib.gemm(a, b, c, batch, m, n, k, false, false, k, n, n, m * k, k * n, 0, 1, 1);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 1;
        for (let t = 0; t < batch; t++)
          for (let p = 0; p < k; p++) s += a[t * m * k + i * k + p] * b[t * k * n + p * n + j];
        expect(c[i * n + j]).toBeCloseTo(s, 5);
      }
  });
});

describe.skipIf(addon === null)('native gemm argument checks', () => {
  const lib = addon as GemmAddon;
  const f = (len: number) => new Float32Array(len);

  it('refuses buffers too short for the sizes, strides and leading dimensions', () => {
    // A 4×5 needs 20 elements.
    expect(() => lib.gemm(f(19), f(30), f(24), 1, 4, 6, 5, false, false, 5, 6, 6, 0, 0, 0, 1, 0)).toThrow(
      /gemm: a is too short.*m=4, k=5.*a\.length is 19/,
    );
    expect(() => lib.gemm(f(20), f(29), f(24), 1, 4, 6, 5, false, false, 5, 6, 6, 0, 0, 0, 1, 0)).toThrow(
      /gemm: b is too short/,
    );
    expect(() => lib.gemm(f(20), f(30), f(23), 1, 4, 6, 5, false, false, 5, 6, 6, 0, 0, 0, 1, 0)).toThrow(
      /gemm: c is too short/,
    );
    // Transposed B stored 6×5; a batch of 2 with strideA 20 needs 40 elements of A.
    expect(() => lib.gemm(f(39), f(30), f(48), 2, 4, 6, 5, false, true, 5, 5, 6, 20, 0, 24, 1, 0)).toThrow(
      /gemm: a is too short.*batch=2/,
    );
    // A padded leading dimension is reached too: the last row of C starts at 3·8.
    expect(() => lib.gemm(f(20), f(30), f(29), 1, 4, 6, 5, false, false, 5, 6, 8, 0, 0, 0, 1, 0)).toThrow(RangeError);
    // Leading dimension below the row length.
    expect(() => lib.gemm(f(20), f(30), f(24), 1, 4, 6, 5, false, false, 4, 6, 6, 0, 0, 0, 1, 0)).toThrow(
      /leading dimension of a \(4\) is smaller than its row length k = 5/,
    );
    // Exactly long enough passes.
    expect(() => lib.gemm(f(20), f(30), f(24), 1, 4, 6, 5, false, false, 5, 6, 6, 0, 0, 0, 1, 0)).not.toThrow();
  });

  it('refuses negative or fractional sizes, wrong types and overlapping output', () => {
    expect(() => lib.gemm(f(20), f(30), f(24), 1, -4, 6, 5, false, false, 5, 6, 6, 0, 0, 0, 1, 0)).toThrow(
      /gemm: 'm' must be an integer/,
    );
    expect(() => lib.gemm(f(20), f(30), f(24), 1, 4, 6, 2.5, false, false, 5, 6, 6, 0, 0, 0, 1, 0)).toThrow(RangeError);
    const wrongA = new Float64Array(20) as unknown as Float32Array;
    expect(() => lib.gemm(wrongA, f(30), f(24), 1, 4, 6, 5, false, false, 5, 6, 6, 0, 0, 0, 1, 0)).toThrow(
      /gemm: 'a' must be a Float32Array/,
    );
    const wrongFlag = 0 as unknown as boolean;
    expect(() => lib.gemm(f(20), f(30), f(24), 1, 4, 6, 5, wrongFlag, false, 5, 6, 6, 0, 0, 0, 1, 0)).toThrow(TypeError);
    const call = lib.gemm as unknown as (...args: unknown[]) => void;
    expect(() => call(f(20), f(30), f(24), 1, 4, 6, 5)).toThrow(/gemm: expected 17 arguments/);
    const shared = new Float32Array(64);
    expect(() =>
      lib.gemm(shared.subarray(0, 20), f(30), shared.subarray(10, 34), 1, 4, 6, 5, false, false, 5, 6, 6, 0, 0, 0, 1, 0),
    ).toThrow(/must not share memory/);
  });
});
