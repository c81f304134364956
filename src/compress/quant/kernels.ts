/**
 * Typed view of the native quantized kernels (native/quant.cc) with plain-TypeScript fallbacks.
 *
 * quantMatmul: y[m, n] = x[m, k] · Wᵀ (+ bias) with W a QuantizedMatrix [n, k]. Each activation row
 * is quantized once into Q8 blocks of 32 (llama.cpp's quantize_row_q8_0), each block dot product is
 * an exact integer sum scaled by d_w · d_x — on AVX-512 VNNI (vpdpbusd), AVX2 (vpmaddubsw) or scalar
 * code, chosen at run time. int8Gemm: W8A8 — per-token dynamic activation quantization and an INT8
 * GEMM (blocked, VNNI). `ref: true` runs the scalar oracle; without the addon the TypeScript
 * fallback computes the same quantities (dequantized weights times dequantized Q8 activations).
 * q4_0 matrices are repacked once, eight rows interleaved (native/quant.h, q4_0x8), and streamed in
 * that layout: eight rows' block dot products in whole registers, the scales converted eight at once.
 */
import { nativeAddonExports } from '../../tensor/backend/native.js';
import { type QuantizedMatrix, checkQuantizedMatrix, dequantizeMatrix } from './formats.js';

export interface QuantAddon {
  quantMatmul(
    format: string,
    w: Uint8Array,
    rowScales: Float32Array | null,
    x: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    m: number,
    n: number,
    k: number,
    ref?: boolean,
    packed?: Uint8Array | null,
  ): void;
  /** q4_0 rows regrouped eight at a time (q4_0x8) for quantMatmul's `packed` argument. */
  quantRepack?(format: string, w: Uint8Array, n: number, k: number): Uint8Array;
  int8Gemm(w: Uint8Array | Int8Array, rowScales: Float32Array, x: Float32Array, bias: Float32Array | null, y: Float32Array, m: number, n: number, k: number, ref?: boolean): void;
  quantizeActQ8(x: Float32Array, m: number, k: number, scalar?: boolean): { q: Int8Array; d: Float32Array };
  quantKernelInfo(): { kernel: string };
}

let cached: QuantAddon | null | undefined;

/** The addon's quantized kernels, or null when the native addon (or this build of it) lacks them. */
export function quantAddon(): QuantAddon | null {
  if (cached !== undefined) return cached;
  const addon = nativeAddonExports();
  cached = addon !== null && typeof addon.quantMatmul === 'function' && typeof addon.int8Gemm === 'function' ? (addon as unknown as QuantAddon) : null;
  return cached;
}

/** Which kernel runs: 'avx512 vnni', 'avx2 maddubs', 'portable scalar', or 'js' without the addon. */
export function quantKernelName(): string {
  return quantAddon()?.quantKernelInfo().kernel ?? 'js';
}

export interface QuantMatmulOptions {
  bias?: Float32Array | null;
  /** Output buffer of m·n floats (allocated when absent). */
  out?: Float32Array;
  /** Run the scalar reference kernel (single-threaded test oracle). */
  ref?: boolean;
  /** Force the TypeScript fallback even when the addon is present (tests). */
  js?: boolean;
}

const f = Math.fround;

/** C's roundf (halves away from zero), as an integer (never −0: the codes are integers). */
function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) || 0 : Math.round(x);
}

/** Q8 blocks of 32 per row (llama.cpp's quantize_row_q8_0), returned dequantized: d·q per element. */
export function quantizeActivationsQ8(x: Float32Array, m: number, k: number): Float32Array {
  if (k % 32 !== 0) throw new RangeError(`quantizeActivationsQ8: k (${k}) must be a multiple of 32`);
  const out = new Float32Array(m * k);
  for (let b = 0; b < (m * k) / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    for (let j = 0; j < 32; j++) out[b * 32 + j] = f(roundf(f(x[b * 32 + j]! * id)) * d);
  }
  return out;
}

/** Per-token symmetric quantization (one scale per row), returned dequantized. */
export function quantizeActivationsPerToken(x: Float32Array, m: number, k: number): Float32Array {
  const out = new Float32Array(m * k);
  for (let i = 0; i < m; i++) {
    let amax = 0;
    for (let p = 0; p < k; p++) amax = Math.max(amax, Math.abs(x[i * k + p]!));
    const s = f(amax / 127);
    const id = s !== 0 ? f(1 / s) : 0;
    for (let p = 0; p < k; p++) out[i * k + p] = f(roundf(f(x[i * k + p]! * id)) * s);
  }
  return out;
}

const dequantCache = new WeakMap<Uint8Array, Float32Array>();

function dequantizedOf(q: QuantizedMatrix): Float32Array {
  let w = dequantCache.get(q.data);
  if (w === undefined) {
    w = dequantizeMatrix(q);
    dequantCache.set(q.data, w);
  }
  return w;
}

// q4_0 weights regrouped eight rows at a time (the layout the fast kernel streams), made on first
// use and kept as long as the matrix's bytes live. It costs the weight bytes a second time; the
// GGUF-layout bytes stay the matrix's data (saving, export, the tail rows).
const repackCache = new WeakMap<Uint8Array, Uint8Array | null>();

function repackedOf(addon: QuantAddon, q: QuantizedMatrix): Uint8Array | null {
  if (q.format !== 'q4_0' || q.rows < 8 || addon.quantRepack === undefined) return null;
  let packed = repackCache.get(q.data);
  if (packed === undefined) {
    packed = addon.quantRepack(q.format, q.data, q.rows, q.cols);
    repackCache.set(q.data, packed);
  }
  return packed;
}

function jsMatmul(xq: Float32Array, w: Float32Array, m: number, n: number, k: number, bias: Float32Array | null, out: Float32Array): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += xq[i * k + p]! * w[j * k + p]!;
      out[i * n + j] = s + (bias !== null ? bias[j]! : 0);
    }
  }
}

function checkOperands(op: string, q: QuantizedMatrix, x: Float32Array, m: number, bias: Float32Array | null, out: Float32Array | undefined): void {
  checkQuantizedMatrix(q, op);
  if (!Number.isInteger(m) || m < 0) throw new RangeError(`${op}: m must be a non-negative integer, got ${m}`);
  if (x.length !== m * q.cols) throw new RangeError(`${op}: x has ${x.length} values, expected m·k = ${m}·${q.cols}`);
  if (bias !== null && bias.length !== q.rows) throw new RangeError(`${op}: bias has ${bias.length} values, expected n = ${q.rows}`);
  if (out !== undefined && out.length !== m * q.rows) throw new RangeError(`${op}: out has ${out.length} values, expected m·n = ${m}·${q.rows}`);
}

/** y[m, n] = x[m, k] · Wᵀ + bias with W = q [n, k], weights dequantized inside the dot products. */
export function quantMatmul(q: QuantizedMatrix, x: Float32Array, m: number, options: QuantMatmulOptions = {}): Float32Array {
  const op = 'quantMatmul';
  const bias = options.bias ?? null;
  checkOperands(op, q, x, m, bias, options.out);
  const k = q.cols;
  const n = q.rows;
  const block = q.format === 'q4_g128' ? 128 : q.format === 'tq2' ? 256 : 32;
  if (k % block !== 0) {
    throw new RangeError(`${op}: k (the input width, ${k}) must be a multiple of ${block} for ${q.format}; leave this layer unquantized or pad it`);
  }
  const out = options.out ?? new Float32Array(m * n);
  const addon = options.js === true ? null : quantAddon();
  if (addon !== null) {
    const packed = options.ref === true ? null : repackedOf(addon, q);
    addon.quantMatmul(q.format, q.data, q.rowScales ?? null, x, bias, out, m, n, k, options.ref === true, packed);
  } else {
    jsMatmul(quantizeActivationsQ8(x, m, k), dequantizedOf(q), m, n, k, bias, out);
  }
  return out;
}

/**
 * W8A8: y = x · Wᵀ + bias with int8 per-row weights (format 'int8') and activations quantized per
 * token at run time; the INT8 GEMM for large m (prefill, batches).
 */
export function int8Gemm(q: QuantizedMatrix, x: Float32Array, m: number, options: QuantMatmulOptions = {}): Float32Array {
  const op = 'int8Gemm';
  if (q.format !== 'int8') throw new RangeError(`${op}: W8A8 needs int8 per-row weights, got ${q.format}; quantize with format 'int8'`);
  const bias = options.bias ?? null;
  checkOperands(op, q, x, m, bias, options.out);
  const k = q.cols;
  const n = q.rows;
  const out = options.out ?? new Float32Array(m * n);
  const addon = options.js === true ? null : quantAddon();
  if (addon !== null) {
    addon.int8Gemm(q.data, q.rowScales!, x, bias, out, m, n, k, options.ref === true);
  } else {
    jsMatmul(quantizeActivationsPerToken(x, m, k), dequantizedOf(q), m, n, k, bias, out);
  }
  return out;
}
