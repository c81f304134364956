/**
 * GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers"), following the authors' fasterquant: quantize a Linear weight W [out, in] column by
 * column, each time spreading the column's rounding error over the columns not yet quantized with the
 * inverse Hessian of the layer's reconstruction loss ‖WX − QX‖², H = 2/N Σ x xᵀ.
 *
 *   dead inputs (H_jj = 0): H_jj = 1, W[:, j] = 0;  optional act-order: columns by diag(H) descending
 *   H += percDamp · mean(diag H) · I;  U = upper Cholesky factor of H⁻¹
 *   per block of `blockSize` columns: q_i = quant(w_i); e = (w_i − q_i)/U_ii; w_{i+1…} −= e U_{i,i+1…}
 *   (inside the block), then the columns after the block in one lazy rank-`blockSize` update
 *   groups: (scale, zero) from the not-yet-quantized W at the group's first column (with act-order:
 *   fixed up front from the original W, the reference's static_groups, so groups stay contiguous and
 *   pack into block formats)
 *
 * Float64 throughout. The grid per format (what packQuantized can store):
 *   q4_1 / q4_g128  asymmetric 4-bit, x = d·q + m (d, m rounded to f16 before use so the error
 *                   feedback sees the values the file will hold)
 *   q4_0            symmetric 4-bit, x = d·(q − 8), d = 2·max|w| / 15 (GPTQ's sym grid)
 *   q8_0 / int8     symmetric 8-bit, x = d·q, q ∈ [−127, 127] (q8_0 groups of 32 with f16 d; int8 per row, f32 d)
 */
import { f16BitsToF32, f32ToF16Bits } from '../tensor/backend/f16.js';
import { packQuantized, type QuantFormat, type QuantizedMatrix } from './quant/formats.js';

export interface GPTQGrid {
  /** Largest code (2^bits − 1 asymmetric; 15 for q4_0; 254 for the 8-bit symmetric formats, stored as q − 127). */
  maxq: number;
  symmetric: boolean;
  /** Columns sharing one (scale, zero); ≤ 0 or ≥ cols: one per row. */
  groupSize: number;
  /** How scales (and mins) are stored: f16 for block formats, f32 for int8, none for a pure reference run. */
  paramRounding: 'f16' | 'f32' | 'none';
}

export interface GPTQOptions {
  /** Columns per lazy batch (default 128, the paper's B). */
  blockSize?: number;
  /** Dampening as a fraction of the mean diagonal of H (default 0.01). */
  percDamp?: number;
  /** Quantize columns in order of decreasing H_jj (default false). */
  actOrder?: boolean;
}

export interface GPTQResult {
  rows: number;
  cols: number;
  /** Codes 0…maxq, row-major [rows, cols]. */
  codes: Uint8Array;
  /** Per (row, group), groups row-major: x = scale · code + min. */
  scales: Float64Array;
  mins: Float64Array;
  /** The integer zero points (min = −scale · zero unless f16 rounding moved min). */
  zeros: Float64Array;
  groupSize: number;
  /** scale · code + min, [rows, cols]. */
  dequantized: Float32Array;
}

/** The running H = 2/N Σ x xᵀ of one layer's inputs (add_batch's form). */
export class HessianAccumulator {
  readonly h: Float64Array;
  n = 0;

  constructor(readonly cols: number) {
    this.h = new Float64Array(cols * cols);
  }

  /** x: [rows, cols] row-major. */
  add(x: Float32Array, rows: number): void {
    const C = this.cols;
    if (x.length < rows * C) throw new RangeError(`HessianAccumulator.add: ${x.length} values are fewer than ${rows}×${C}`);
    const total = this.n + rows;
    const keep = this.n / total;
    const h = this.h;
    for (let i = 0; i < h.length; i++) h[i]! *= keep;
    const f = 2 / total;
    for (let r = 0; r < rows; r++) {
      const o = r * C;
      for (let i = 0; i < C; i++) {
        const xi = x[o + i]! * f;
        if (xi === 0) continue;
        const hi = i * C;
        for (let j = 0; j <= i; j++) h[hi + j]! += xi * x[o + j]!;
      }
    }
    for (let i = 0; i < C; i++) for (let j = 0; j < i; j++) h[j * C + i] = h[i * C + j]!;
    this.n = total;
  }
}

/** torch.round: halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function roundParam(x: number, mode: GPTQGrid['paramRounding']): number {
  if (mode === 'f16') return f16BitsToF32(f32ToF16Bits(x));
  if (mode === 'f32') return Math.fround(x);
  return x;
}

interface GroupParams {
  scale: Float64Array;
  zero: Float64Array;
  min: Float64Array;
}

/** quant.py's find_params over columns [c0, c1) of a column-major matrix (one entry per row). */
function findParams(colMajor: Float64Array, rows: number, c0: number, c1: number, grid: GPTQGrid): GroupParams {
  const scale = new Float64Array(rows);
  const zero = new Float64Array(rows);
  const min = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let lo = 0;
    let hi = 0;
    for (let c = c0; c < c1; c++) {
      const v = colMajor[c * rows + r]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (grid.symmetric) {
      hi = Math.max(-lo, hi);
      lo = -hi;
    }
    if (lo === 0 && hi === 0) {
      lo = -1;
      hi = 1;
    }
    let s = (hi - lo) / grid.maxq;
    let z = grid.symmetric ? Math.floor((grid.maxq + 1) / 2) : roundHalfEven(-lo / s);
    s = roundParam(s, grid.paramRounding);
    if (s === 0) {
      // f16 underflow of a tiny range: fall back to the smallest normal f16 step.
      s = 6.103515625e-5;
      z = grid.symmetric ? z : roundHalfEven(-lo / s);
    }
    scale[r] = s;
    zero[r] = z;
    min[r] = grid.symmetric || grid.paramRounding === 'none' ? -s * z : roundParam(-s * z, grid.paramRounding);
  }
  return { scale, zero, min };
}

/** Lower Cholesky factor of a symmetric positive-definite n×n matrix (row-major); throws if not PD. */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let k = 0; k < j; k++) d -= l[j * n + k]! * l[j * n + k]!;
    if (!(d > 0)) throw new RangeError(`cholesky: the matrix is not positive definite at pivot ${j} (${d}); raise the dampening`);
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

/** Upper factor U of H⁻¹ = UᵀU (torch: cholesky(cholesky_inverse(cholesky(H)), upper=True)). */
function inverseCholeskyUpper(h: Float64Array, n: number): Float64Array {
  const l = cholesky(h, n);
  // L⁻¹ (lower triangular) by forward substitution.
  const li = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    li[j * n + j] = 1 / l[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= l[i * n + k]! * li[k * n + j]!;
      li[i * n + j] = s / l[i * n + i]!;
    }
  }
  // H⁻¹ = L⁻ᵀ L⁻¹.
  const hinv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += li[k * n + i]! * li[k * n + j]!;
      hinv[i * n + j] = s;
      hinv[j * n + i] = s;
    }
  }
  const l2 = cholesky(hinv, n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = l2[i * n + j]!;
  return u;
}

/** GPTQ of w [rows, cols] (row-major) given H [cols, cols]. */
export function gptqQuantize(w: Float32Array, rows: number, cols: number, hessian: Float64Array, grid: GPTQGrid, options: GPTQOptions = {}): GPTQResult {
  const op = 'gptqQuantize';
  if (w.length !== rows * cols) throw new RangeError(`${op}: w has ${w.length} values, expected ${rows}×${cols}`);
  if (hessian.length !== cols * cols) throw new RangeError(`${op}: H has ${hessian.length} values, expected ${cols}×${cols}`);
  const blockSize = options.blockSize ?? 128;
  const percDamp = options.percDamp ?? 0.01;
  const actOrder = options.actOrder ?? false;
  const g = grid.groupSize > 0 && grid.groupSize < cols ? grid.groupSize : cols;
  if (cols % g !== 0) throw new RangeError(`${op}: cols ${cols} is not a multiple of the group size ${g}`);
  const nGroups = cols / g;
  const grouped = g < cols;

  // Column-major working copy: column c is W[c*rows … (c+1)*rows).
  let W = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) W[c * rows + r] = w[r * cols + c]!;
  let H = Float64Array.from(hessian);
  // Per-row parameters come from W before dead columns are zeroed (the reference's order).
  let params = grouped ? null : findParams(W, rows, 0, cols, grid);
  for (let j = 0; j < cols; j++) {
    if (H[j * cols + j] === 0) {
      H[j * cols + j] = 1;
      W.fill(0, j * rows, (j + 1) * rows);
    }
  }
  const staticGroups = grouped && actOrder ? Array.from({ length: nGroups }, (_, k) => findParams(W, rows, k * g, (k + 1) * g, grid)) : null;
  const perm = Array.from({ length: cols }, (_, i) => i);
  if (actOrder) {
    perm.sort((a, b) => H[b * cols + b]! - H[a * cols + a]! || a - b);
    const Wp = new Float64Array(rows * cols);
    const Hp = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) {
      Wp.set(W.subarray(perm[i]! * rows, (perm[i]! + 1) * rows), i * rows);
      for (let j = 0; j < cols; j++) Hp[i * cols + j] = H[perm[i]! * cols + perm[j]!]!;
    }
    W = Wp;
    H = Hp;
  }
  let diagMean = 0;
  for (let j = 0; j < cols; j++) diagMean += H[j * cols + j]!;
  const damp = (percDamp * diagMean) / cols;
  for (let j = 0; j < cols; j++) H[j * cols + j]! += damp;
  const U = inverseCholeskyUpper(H, cols);

  const codes = new Uint8Array(rows * cols);
  const dq = new Float32Array(rows * cols);
  const scales = new Float64Array(rows * nGroups);
  const mins = new Float64Array(rows * nGroups);
  const zeros = new Float64Array(rows * nGroups);
  const roundAsym = !grid.symmetric && grid.paramRounding !== 'none';
  const err = new Float64Array(rows);

  for (let i1 = 0; i1 < cols; i1 += blockSize) {
    const i2 = Math.min(i1 + blockSize, cols);
    const count = i2 - i1;
    const W1 = W.slice(i1 * rows, i2 * rows);
    const Err1 = new Float64Array(count * rows);
    for (let i = 0; i < count; i++) {
      const colP = i1 + i;
      const col = perm[colP]!;
      if (grouped) {
        if (staticGroups !== null) params = staticGroups[Math.floor(col / g)]!;
        // Not-yet-quantized W outside this block's working copy, as the reference reads it.
        else if (colP % g === 0) params = findParams(W, rows, colP, colP + g, grid);
      }
      const p = params!;
      const grp = Math.floor(col / g);
      const d = U[colP * cols + colP]!;
      const wcol = W1.subarray(i * rows, (i + 1) * rows);
      for (let r = 0; r < rows; r++) {
        const s = p.scale[r]!;
        const x = wcol[r]!;
        const q = roundAsym ? Math.min(grid.maxq, Math.max(0, roundHalfEven((x - p.min[r]!) / s))) : Math.min(grid.maxq, Math.max(0, roundHalfEven(x / s) + p.zero[r]!));
        const v = s * q + p.min[r]!;
        codes[r * cols + col] = q;
        dq[r * cols + col] = v;
        scales[r * nGroups + grp] = s;
        mins[r * nGroups + grp] = p.min[r]!;
        zeros[r * nGroups + grp] = p.zero[r]!;
        err[r] = (x - v) / d;
      }
      Err1.set(err, i * rows);
      for (let j = i; j < count; j++) {
        const hij = U[colP * cols + i1 + j]!;
        if (hij === 0) continue;
        const o = j * rows;
        for (let r = 0; r < rows; r++) W1[o + r]! -= err[r]! * hij;
      }
    }
    // Lazy batch update of every column after the block.
    for (let j = i2; j < cols; j++) {
      const o = j * rows;
      for (let i = 0; i < count; i++) {
        const hij = U[(i1 + i) * cols + j]!;
        if (hij === 0) continue;
        const e = i * rows;
        for (let r = 0; r < rows; r++) W[o + r]! -= Err1[e + r]! * hij;
      }
    }
  }
  return { rows, cols, codes, scales, mins, zeros, groupSize: g, dequantized: dq };
}

/** The GPTQ grid that packs into `format`. */
export function gptqGridFor(format: QuantFormat, cols: number): GPTQGrid {
  switch (format) {
    case 'q4_1':
      return { maxq: 15, symmetric: false, groupSize: 32, paramRounding: 'f16' };
    case 'q4_g128':
      return { maxq: 15, symmetric: false, groupSize: 128, paramRounding: 'f16' };
    case 'q4_0':
      return { maxq: 15, symmetric: true, groupSize: 32, paramRounding: 'f16' };
    case 'q8_0':
      return { maxq: 254, symmetric: true, groupSize: 32, paramRounding: 'f16' };
    case 'int8':
      return { maxq: 254, symmetric: true, groupSize: cols, paramRounding: 'f32' };
    default:
      throw new RangeError(`GPTQ: format '${format}' is not supported (use q4_0, q4_1, q4_g128, q8_0 or int8)`);
  }
}

/** Packs a GPTQ result into the format's bytes (codes shifted to the format's range). */
export function packGPTQ(result: GPTQResult, format: QuantFormat): QuantizedMatrix {
  const { rows, cols } = result;
  const scales = Float32Array.from(result.scales);
  if (format === 'q8_0' || format === 'int8') {
    const codes = new Int8Array(rows * cols);
    for (let i = 0; i < codes.length; i++) codes[i] = result.codes[i]! - 127;
    return packQuantized(format, rows, cols, codes, scales);
  }
  if (format === 'q4_0') return packQuantized(format, rows, cols, result.codes, scales);
  return packQuantized(format, rows, cols, result.codes, scales, Float32Array.from(result.mins));
}

/** GPTQ of one matrix straight into `format`'s bytes. */
export function gptqMatrix(w: Float32Array, rows: number, cols: number, hessian: Float64Array, format: QuantFormat, options: GPTQOptions = {}): QuantizedMatrix {
  return packGPTQ(gptqQuantize(w, rows, cols, hessian, gptqGridFor(format, cols), options), format);
}
