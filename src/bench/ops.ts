/**
 * Memory-bound kernels (softmax, layerNorm, add, gelu) on N elements, as effective bandwidth
 * (bytes read + written per second), against a plain memcpy of the same size as the anchor: these
 * kernels can at best stream their inputs and outputs once, so memcpy is their ceiling.
 */
import type { Backend } from '../tensor/backend/backend.js';
import { benchAddon, bestTime, fillRandom, runNumpy, round } from './common.js';

export interface OpsRecord {
  op: string;
  elements: number;
  /** Bytes read and written by one call. */
  bytes: number;
  gbps: number;
  threads: number;
  backend: string;
  /** memcpy bandwidth (read + write) for the same number of elements, and our fraction of it. */
  memcpy_gbps: number;
  ratio: number;
  anchor: string;
}

export interface BenchOpsOptions {
  backend: Backend;
  threads: number;
  elements: number;
  /** Row length for softmax / layerNorm. */
  cols: number;
  minSeconds?: number;
  numpy?: boolean;
}

/**
 * memcpy of `elements` f32 (read + write bytes per second) on the same threads as the kernels (the
 * native pool), else NumPy's single-threaded copy, else TypedArray.set.
 */
function memcpyAnchor(
  elements: number,
  threads: number,
  minSeconds: number,
  numpy: boolean,
): { gbps: number; anchor: string } {
  const addon = benchAddon();
  if (addon !== null) {
    const src = fillRandom(new Float32Array(elements), 9);
    const dst = new Float32Array(elements);
    const sec = bestTime(() => addon.memcpyBench(src, dst, threads > 1), minSeconds);
    return { gbps: (8 * elements) / sec / 1e9, anchor: `memcpy (native, ${threads} thread(s))` };
  }
  if (numpy) {
    const r = runNumpy(['--memcpy', String(elements)], 1);
    if (!('error' in r) && r.records[0]?.gbps !== undefined) return { gbps: r.records[0].gbps, anchor: 'numpy copyto' };
  }
  const src = fillRandom(new Float32Array(elements), 9);
  const dst = new Float32Array(elements);
  const sec = bestTime(() => dst.set(src), minSeconds);
  return { gbps: (8 * elements) / sec / 1e9, anchor: 'TypedArray.set' };
}

export function benchOps(opts: BenchOpsOptions): OpsRecord[] {
  const { backend, elements: n, cols } = opts;
  if (n % cols !== 0) throw new Error(`bench ops: elements (${n}) must be a multiple of cols (${cols})`);
  const rows = n / cols;
  const minSeconds = opts.minSeconds ?? 0.3;
  const x = fillRandom(new Float32Array(n), 1);
  const y = fillRandom(new Float32Array(n), 2);
  const out = new Float32Array(n);
  const weight = fillRandom(new Float32Array(cols), 3);
  const bias = fillRandom(new Float32Array(cols), 4);
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  const dense = { offset: 0, strides: [1] };

  const cases: { op: string; bytes: number; run: () => void }[] = [
    { op: 'softmax', bytes: 8 * n, run: () => backend.softmax(x, rows, cols, false, out) },
    {
      op: 'layerNorm',
      bytes: 8 * n + 8 * rows,
      run: () => backend.layerNorm(x, weight, bias, rows, cols, 1e-5, out, mean, rstd),
    },
    {
      op: 'add',
      bytes: 12 * n,
      run: () => backend.binary('add', { data: x, ...dense }, { data: y, ...dense }, [n], out),
    },
    { op: 'gelu', bytes: 8 * n, run: () => backend.unary('gelu', x, out) },
  ];
  const anchor = memcpyAnchor(n, opts.threads, minSeconds, opts.numpy ?? true);
  return cases.map((c) => {
    const gbps = c.bytes / bestTime(c.run, minSeconds) / 1e9;
    return {
      op: c.op,
      elements: n,
      bytes: c.bytes,
      gbps: round(gbps),
      threads: opts.threads,
      backend: backend.name,
      memcpy_gbps: round(anchor.gbps),
      ratio: round(gbps / anchor.gbps, 3),
      anchor: anchor.anchor,
    };
  });
}
