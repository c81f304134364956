/**
 * Shared pieces of the benchmarks: timing, the package root, the addon's benchmark helpers and the
 * NumPy anchor (bench/gemm_numpy.py, run in the same process tree and the same run as ours).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding weft's package.json, found by walking up from this file (src/ or dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'weft') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('weft bench: cannot find the weft package root (package.json)');
    dir = parent;
  }
}

/** Addon exports used only by the benchmarks (glue_gemm.cc). */
export interface BenchAddon {
  gemmInfo(): { kernel: string; threads: number };
  /** memcpy, on one thread or (parallel = true) split over the native pool. */
  memcpyBench(src: Float32Array, dst: Float32Array, parallel?: boolean): void;
}

let addonCache: BenchAddon | null | undefined;

/** The native addon's benchmark helpers, or null when the addon is not built. */
export function benchAddon(): BenchAddon | null {
  if (addonCache === undefined) {
    const path = join(packageRoot(), 'build', 'Release', 'weft.node');
    addonCache = existsSync(path) ? (createRequire(import.meta.url)(path) as BenchAddon) : null;
  }
  return addonCache;
}

/**
 * Best wall time of `fn` in seconds: one warm-up call, then repetitions until `minSeconds` have
 * been spent (at least 3, at most 200). The minimum is the figure least disturbed by other load.
 */
export function bestTime(fn: () => void, minSeconds = 0.3): number {
  fn();
  let best = Number.POSITIVE_INFINITY;
  let total = 0;
  for (let reps = 0; (total < minSeconds || reps < 3) && reps < 200; reps++) {
    const t0 = process.hrtime.bigint();
    fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, dt);
    total += dt;
  }
  return best;
}

/** Fills with reproducible values in [-1, 1) (no Math.random: runs compare like with like). */
export function fillRandom(out: Float32Array, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

/** One JSON line of bench/gemm_numpy.py. */
export interface NumpyRecord {
  op: 'gemm' | 'matvec' | 'memcpy';
  m?: number;
  n?: number;
  k?: number;
  transB?: boolean;
  elements?: number;
  seconds: number;
  gflops?: number;
  gbps?: number;
  blas?: string;
}

/** A Python that can import numpy: `python3` on PATH first, then Debian's /usr/bin/python3. */
export function findNumpyPython(): string | null {
  for (const exe of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(exe, ['-c', 'import numpy'], { stdio: 'ignore' });
    if (r.status === 0) return exe;
  }
  return null;
}

/**
 * Runs bench/gemm_numpy.py with the given arguments and the same thread count as ours; returns its
 * records, or null (with the reason) when NumPy is not available.
 */
export function runNumpy(args: string[], threads: number): { records: NumpyRecord[] } | { error: string } {
  const python = findNumpyPython();
  if (python === null) return { error: "no python3 with numpy found (tried 'python3' and /usr/bin/python3)" };
  const script = join(packageRoot(), 'bench', 'gemm_numpy.py');
  if (!existsSync(script)) return { error: `${script} is missing` };
  const r = spawnSync(python, [script, '--threads', String(threads), ...args], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0) return { error: `numpy anchor failed: ${(r.stderr || r.error?.message || '').trim()}` };
  const records = r.stdout
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as NumpyRecord);
  return { records };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
