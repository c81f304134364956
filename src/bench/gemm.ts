/**
 * GEMM and matrix-vector benchmarks: ours through the active Backend (what users run), NumPy/OpenBLAS
 * on the same shapes in the same run as the anchor, and the ratio.
 */
import type { Backend, GemmParams } from '../tensor/backend/backend.js';
import { benchAddon, bestTime, fillRandom, runNumpy, round, type NumpyRecord } from './common.js';

export interface GemmShape {
  m: number;
  n: number;
  k: number;
  /** B stored n×k and used transposed (the Linear layout: x · Wᵀ). */
  transB: boolean;
}

/** Shapes from a small GPT's training step (attention/FFN), in the Linear layout. */
export const LLM_SHAPES: readonly GemmShape[] = [
  { m: 768, n: 384, k: 128, transB: true },
  { m: 768, n: 128, k: 512, transB: true },
  { m: 64, n: 3072, k: 768, transB: true },
];

export interface GemmRecord {
  op: 'gemm';
  m: number;
  n: number;
  k: number;
  transB: boolean;
  gflops: number;
  threads: number;
  backend: string;
  kernel: string;
  numpy_gflops: number | null;
  ratio: number | null;
  anchor: string;
}

export interface MatvecRecord {
  op: 'matvec';
  m: 1;
  n: number;
  k: number;
  /** Weights stored n×k (Linear layout) when true, k×n otherwise. */
  transB: boolean;
  /** Effective memory bandwidth: bytes of W, x and y over the time of one product. */
  gbps: number;
  gflops: number;
  threads: number;
  backend: string;
  kernel: string;
  numpy_gbps: number | null;
  ratio: number | null;
  anchor: string;
}

export interface BenchGemmOptions {
  backend: Backend;
  threads: number;
  /** Run NumPy on the same shapes (default true). */
  numpy?: boolean;
  /** Total timed seconds per shape and side (default 0.3). */
  minSeconds?: number;
  /** Alternations of ours and NumPy per shape (default 3); each side reports its best. */
  rounds?: number;
}

function params(s: GemmShape): GemmParams {
  return {
    batch: 1,
    m: s.m,
    n: s.n,
    k: s.k,
    transA: false,
    transB: s.transB,
    lda: s.k,
    ldb: s.transB ? s.k : s.n,
    ldc: s.n,
    strideA: 0,
    strideB: 0,
    strideC: 0,
    alpha: 1,
    beta: 0,
  };
}

function kernelName(backend: Backend): string {
  if (backend.name !== 'native') return 'js';
  return benchAddon()?.gemmInfo().kernel ?? 'native';
}

/** Seconds for one product of `s` on `backend` (best of repetitions). */
export function timeGemm(backend: Backend, s: GemmShape, minSeconds = 0.3): number {
  const a = fillRandom(new Float32Array(s.m * s.k), 1);
  const b = fillRandom(new Float32Array(s.k * s.n), 2);
  const c = new Float32Array(s.m * s.n);
  const p = params(s);
  return bestTime(() => backend.gemm(a, b, c, p), minSeconds);
}

function numpyAnchor(args: string[], threads: number, enabled: boolean): { records: NumpyRecord[]; anchor: string } {
  if (!enabled) return { records: [], anchor: 'numpy disabled (--no-numpy)' };
  const r = runNumpy(args, threads);
  if ('error' in r) return { records: [], anchor: r.error };
  // The script names the BLAS and its core type (and OPENBLAS_CORETYPE when set, which slows it).
  return { records: r.records, anchor: r.records.find((x) => x.blas !== undefined)?.blas ?? 'numpy' };
}

export function benchGemm(shapes: readonly GemmShape[], opts: BenchGemmOptions): GemmRecord[] {
  const kernel = kernelName(opts.backend);
  const rounds = Math.max(1, opts.rounds ?? 3);
  const minSeconds = (opts.minSeconds ?? 0.3) / rounds;
  // Shape by shape, ours and NumPy's alternating over a few rounds, best of each: both sides see
  // the same machine state (other load, clocks), so the ratio is fair even on a busy machine.
  return shapes.map((s) => {
    let best = Number.POSITIVE_INFINITY;
    let npGflops: number | null = null;
    let anchor = '';
    for (let r = 0; r < rounds; r++) {
      best = Math.min(best, timeGemm(opts.backend, s, minSeconds));
      const np = numpyAnchor(
        ['--gemm', `${s.m}x${s.n}x${s.k}${s.transB ? ':t' : ''}`, '--min-time', String(minSeconds)],
        opts.threads,
        opts.numpy ?? true,
      );
      anchor = np.anchor;
      const g = np.records.find((x) => x.op === 'gemm')?.gflops;
      if (g !== undefined) npGflops = Math.max(npGflops ?? 0, g);
    }
    const gflops = (2 * s.m * s.n * s.k) / best / 1e9;
    return {
      op: 'gemm',
      m: s.m,
      n: s.n,
      k: s.k,
      transB: s.transB,
      gflops: round(gflops),
      threads: opts.threads,
      backend: opts.backend.name,
      kernel,
      numpy_gflops: npGflops === null ? null : round(npGflops),
      ratio: npGflops === null ? null : round(gflops / npGflops, 3),
      anchor,
    };
  });
}

/**
 * y = W x for W of n×k (both layouts): bandwidth-bound, so the figure is bytes moved per second.
 * NumPy's anchor is the Linear layout (np.dot(W, x)).
 */
export function benchMatvec(n: number, k: number, opts: BenchGemmOptions): MatvecRecord[] {
  const kernel = kernelName(opts.backend);
  const bytes = 4 * (n * k + n + k);
  const rounds = Math.max(1, opts.rounds ?? 3);
  const minSeconds = (opts.minSeconds ?? 0.3) / rounds;
  const best = { nk: Number.POSITIVE_INFINITY, kn: Number.POSITIVE_INFINITY };
  let npGbps: number | null = null;
  let anchor = '';
  for (let r = 0; r < rounds; r++) {
    best.nk = Math.min(best.nk, timeGemm(opts.backend, { m: 1, n, k, transB: true }, minSeconds));
    best.kn = Math.min(best.kn, timeGemm(opts.backend, { m: 1, n, k, transB: false }, minSeconds));
    const np = numpyAnchor(['--matvec', `${n}x${k}`, '--min-time', String(minSeconds)], opts.threads, opts.numpy ?? true);
    anchor = np.anchor;
    const g = np.records.find((x) => x.op === 'matvec')?.gbps;
    if (g !== undefined) npGbps = Math.max(npGbps ?? 0, g);
  }
  return [true, false].map((transB) => {
    const sec = transB ? best.nk : best.kn;
    const gbps = bytes / sec / 1e9;
    return {
      op: 'matvec',
      m: 1,
      n,
      k,
      transB,
      gbps: round(gbps),
      gflops: round((2 * n * k) / sec / 1e9),
      threads: opts.threads,
      backend: opts.backend.name,
      kernel,
      numpy_gbps: npGbps === null ? null : round(npGbps),
      ratio: npGbps === null ? null : round(gbps / npGbps, 3),
      anchor,
    };
  });
}

/** Parses 'MxNxK' (optionally ':t' for the Linear layout) into a shape. */
export function parseShape(text: string, defaultTransB = false): GemmShape {
  const [dims, flag] = text.split(':');
  const parts = dims.split('x').map((x) => Number(x));
  if (parts.length !== 3 || parts.some((x) => !Number.isInteger(x) || x < 1) || (flag !== undefined && flag !== 't')) {
    throw new Error(`bench gemm: shape '${text}' is not MxNxK with positive integers (append ':t' for B transposed)`);
  }
  return { m: parts[0], n: parts[1], k: parts[2], transB: flag === 't' || defaultTransB };
}
