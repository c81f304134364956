/**
 * Quantized weight formats: the pure-TypeScript reference (quantize, dequantize, pack). Native
 * kernels (kernels.ts) read exactly these bytes, and q8_0 / q4_0 / q4_1 / tq2 are byte-for-byte
 * ggml's Q8_0 / Q4_0 / Q4_1 / TQ2_0 blocks, so a matrix can be written into a GGUF file as is.
 *
 * A matrix is [rows, cols] row-major (PyTorch's Linear weight [out, in]); blocks run along a row,
 * so cols must be a multiple of the group size. Layouts (little-endian, f16 = IEEE half):
 *   q8_0    34 B / 32 weights: f16 d, int8 q[32];                    x = d·q
 *   q4_0    18 B / 32: f16 d, 16 B nibbles (element j < 16 = low nibble of byte j, j + 16 = high);
 *                                                                     x = d·(q − 8)
 *   q4_1    20 B / 32: f16 d, f16 m, 16 B nibbles (same order);       x = d·q + m
 *   q4_g128 68 B / 128: f16 d, f16 m, 64 B (j < 64 low nibble of byte j, j + 64 high); x = d·q + m
 *   int8    per-row symmetric: int8 codes row-major, one f32 scale per row in rowScales; x = s·q
 *   tq2     66 B / 256 (ggml TQ2_0): 64 B of 2-bit codes, then f16 d; within each 128-weight half,
 *           byte m holds elements m, m+32, m+64, m+96 in bit pairs 0-1, 2-3, 4-5, 6-7; code c ∈ {0,1,2}
 *           and x = d·(c − 1). Quantized BitNet b1.58-style: d = mean |w| of the block.
 *
 * Round-to-nearest follows ggml's quantize_row_*_ref arithmetic step for step (float32 operations,
 * C's roundf and truncating casts), so our q8_0/q4_0/q4_1 bytes equal llama.cpp's for the same input.
 */
import { f16BitsToF32, f32ToF16Bits } from '../../tensor/backend/f16.js';

export type QuantFormat = 'q8_0' | 'q4_0' | 'q4_1' | 'q4_g128' | 'int8' | 'tq2';

export const QUANT_FORMATS: readonly QuantFormat[] = ['q8_0', 'q4_0', 'q4_1', 'q4_g128', 'int8', 'tq2'];

export interface QuantizedMatrix {
  format: QuantFormat;
  rows: number;
  cols: number;
  /** Packed bytes (for int8: the int8 codes, row-major, viewed as bytes). */
  data: Uint8Array;
  /** int8 only: one f32 scale per row. */
  rowScales?: Float32Array;
}

export function isQuantFormat(x: unknown): x is QuantFormat {
  return typeof x === 'string' && (QUANT_FORMATS as readonly string[]).includes(x);
}

interface FormatInfo {
  /** Weights per group (0: the whole row). */
  group: number;
  /** Bytes per group (0: per-row format). */
  blockBytes: number;
  /** ggml type code when the blocks are GGUF's, else undefined. */
  ggmlType?: number;
  asymmetric: boolean;
}

const INFO: Record<QuantFormat, FormatInfo> = {
  q8_0: { group: 32, blockBytes: 34, ggmlType: 8, asymmetric: false },
  q4_0: { group: 32, blockBytes: 18, ggmlType: 2, asymmetric: false },
  q4_1: { group: 32, blockBytes: 20, ggmlType: 3, asymmetric: true },
  q4_g128: { group: 128, blockBytes: 68, asymmetric: true },
  int8: { group: 0, blockBytes: 0, asymmetric: false },
  tq2: { group: 256, blockBytes: 66, ggmlType: 35, asymmetric: false },
};

function checkFormat(format: string, op: string): FormatInfo {
  if (!isQuantFormat(format)) throw new RangeError(`${op}: unknown format '${format}' (supported: ${QUANT_FORMATS.join(', ')})`);
  return INFO[format];
}

/** Weights sharing one scale: 32 (q8_0, q4_0, q4_1), 128 (q4_g128), 256 (tq2), or `cols` for per-row int8. */
export function groupSize(format: QuantFormat, cols?: number): number {
  const info = checkFormat(format, 'groupSize');
  if (info.group === 0) {
    if (cols === undefined) throw new RangeError(`groupSize: '${format}' has one group per row; pass cols`);
    return cols;
  }
  return info.group;
}

/** Bytes per block of `groupSize(format)` weights (34, 18, 20, 68, 66); per-row int8 has none. */
export function blockBytes(format: QuantFormat): number {
  const info = checkFormat(format, 'blockBytes');
  if (info.blockBytes === 0) throw new RangeError(`blockBytes: '${format}' is a per-row format without blocks`);
  return info.blockBytes;
}

/** ggml's tensor type code for formats whose blocks are GGUF's (q8_0 8, q4_0 2, q4_1 3, tq2 35). */
export function ggmlTypeOf(format: QuantFormat): number | undefined {
  return checkFormat(format, 'ggmlTypeOf').ggmlType;
}

export function isAsymmetric(format: QuantFormat): boolean {
  return checkFormat(format, 'isAsymmetric').asymmetric;
}

/** Packed byte length of a rows×cols matrix (int8: the codes only; its scales live in rowScales). */
export function quantizedByteLength(format: QuantFormat, rows: number, cols: number): number {
  const info = checkFormat(format, 'quantizedByteLength');
  checkShape(format, rows, cols, 'quantizedByteLength');
  return info.group === 0 ? rows * cols : (rows * cols / info.group) * info.blockBytes;
}

function checkShape(format: QuantFormat, rows: number, cols: number, op: string): void {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols <= 0) {
    throw new RangeError(`${op}: rows (${rows}) and cols (${cols}) must be integers, cols > 0`);
  }
  const g = INFO[format].group;
  if (g !== 0 && cols % g !== 0) {
    throw new RangeError(
      `${op}: ${format} needs cols (the input width, ${cols}) to be a multiple of its block size ${g}; ` +
        `pick a format with a smaller group (int8 has none) or leave this layer unquantized`,
    );
  }
}

/** Validates a QuantizedMatrix's byte length and scales against its shape (kernels trust both). */
export function checkQuantizedMatrix(q: QuantizedMatrix, op = 'checkQuantizedMatrix'): void {
  checkShape(q.format, q.rows, q.cols, op);
  const want = quantizedByteLength(q.format, q.rows, q.cols);
  if (q.data.length !== want) throw new RangeError(`${op}: ${q.format} [${q.rows}, ${q.cols}] needs ${want} bytes, data has ${q.data.length}`);
  if (q.format === 'int8') {
    if (q.rowScales === undefined || q.rowScales.length !== q.rows) {
      throw new RangeError(`${op}: int8 [${q.rows}, ${q.cols}] needs rowScales with ${q.rows} entries, got ${q.rowScales?.length ?? 'none'}`);
    }
  }
}

// -----------------------------------------------------------------------------------------------
// float32 helpers matching C
// -----------------------------------------------------------------------------------------------

const f = Math.fround;

/** C's roundf: halves away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

function writeF16(bytes: Uint8Array, at: number, x: number): void {
  const h = f32ToF16Bits(x);
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
}

function readF16(bytes: Uint8Array, at: number): number {
  return f16BitsToF32(bytes[at]! | (bytes[at + 1]! << 8));
}

// -----------------------------------------------------------------------------------------------
// Quantize (round-to-nearest)
// -----------------------------------------------------------------------------------------------

/** ggml quantize_row_q8_0_ref for one block of 32 at w[at…]. */
function quantQ8Block(w: Float32Array, at: number, out: Uint8Array, o: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(w[at + j]!));
  const d = f(amax / 127);
  const id = d !== 0 ? f(1 / d) : 0;
  writeF16(out, o, d);
  for (let j = 0; j < 32; j++) out[o + 2 + j] = roundf(f(w[at + j]! * id)) & 0xff;
}

/** ggml quantize_row_q4_0_ref: d = (signed value of largest magnitude) / −8, q = min(15, (int)(x/d + 8.5)). */
function quantQ40Block(w: Float32Array, at: number, out: Uint8Array, o: number): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = w[at + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const d = f(max / -8);
  const id = d !== 0 ? f(1 / d) : 0;
  writeF16(out, o, d);
  for (let j = 0; j < 16; j++) {
    const x0 = f(w[at + j]! * id);
    const x1 = f(w[at + 16 + j]! * id);
    const q0 = Math.min(15, Math.trunc(f(x0 + 8.5)));
    const q1 = Math.min(15, Math.trunc(f(x1 + 8.5)));
    out[o + 2 + j] = q0 | (q1 << 4);
  }
}

/** ggml quantize_row_q4_1_ref, generalised to a group of `g` (32 → q4_1, 128 → q4_g128). */
function quantQ41Block(w: Float32Array, at: number, g: number, out: Uint8Array, o: number): void {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < g; j++) {
    const v = w[at + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const d = f(f(max - min) / 15);
  const id = d !== 0 ? f(1 / d) : 0;
  writeF16(out, o, d);
  writeF16(out, o + 2, min);
  const half = g / 2;
  for (let j = 0; j < half; j++) {
    const x0 = f(f(w[at + j]! - min) * id);
    const x1 = f(f(w[at + half + j]! - min) * id);
    const q0 = Math.min(15, Math.trunc(f(x0 + 0.5)));
    const q1 = Math.min(15, Math.trunc(f(x1 + 0.5)));
    out[o + 4 + j] = q0 | (q1 << 4);
  }
}

/** Byte index and shift of element e (0…255) of a tq2 block (ggml TQ2_0 order). */
function tq2Position(e: number): { byte: number; shift: number } {
  const halfIdx = e >> 7; // which 128-weight half
  const r = e & 127;
  return { byte: halfIdx * 32 + (r & 31), shift: 2 * (r >> 5) };
}

function packTq2Block(codes: ArrayLike<number>, at: number, d: number, out: Uint8Array, o: number): void {
  for (let b = 0; b < 64; b++) out[o + b] = 0;
  for (let e = 0; e < 256; e++) {
    const c = codes[at + e]!;
    if (c < -1 || c > 1 || !Number.isInteger(c)) throw new RangeError(`packQuantized: tq2 code ${c} at element ${at + e} is not −1, 0 or 1`);
    const { byte, shift } = tq2Position(e);
    out[o + byte] |= (c + 1) << shift;
  }
  writeF16(out, o + 64, d);
}

/** BitNet b1.58 absmean: d = mean |w|, code = clamp(round(w/d), −1, 1). */
function quantTq2Block(w: Float32Array, at: number, out: Uint8Array, o: number): void {
  let sum = 0;
  for (let j = 0; j < 256; j++) sum += Math.abs(w[at + j]!);
  const d = f(sum / 256);
  const id = d !== 0 ? f(1 / d) : 0;
  const codes = new Int8Array(256);
  for (let j = 0; j < 256; j++) codes[j] = Math.max(-1, Math.min(1, roundf(f(w[at + j]! * id))));
  packTq2Block(codes, 0, d, out, o);
}

/** Round-to-nearest quantization of a rows×cols row-major matrix. */
export function quantizeMatrix(w: Float32Array, rows: number, cols: number, format: QuantFormat): QuantizedMatrix {
  const op = 'quantizeMatrix';
  const info = checkFormat(format, op);
  checkShape(format, rows, cols, op);
  if (w.length !== rows * cols) throw new RangeError(`${op}: w has ${w.length} values, expected rows·cols = ${rows}·${cols}`);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i]!)) throw new RangeError(`${op}: weight ${i} (row ${Math.floor(i / cols)}) is ${w[i]}; quantize finite weights only`);
  }
  if (format === 'int8') {
    const codes = new Int8Array(rows * cols);
    const scales = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let amax = 0;
      for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(w[r * cols + c]!));
      const d = f(amax / 127);
      const id = d !== 0 ? f(1 / d) : 0;
      scales[r] = d;
      for (let c = 0; c < cols; c++) codes[r * cols + c] = roundf(f(w[r * cols + c]! * id));
    }
    return { format, rows, cols, data: new Uint8Array(codes.buffer), rowScales: scales };
  }
  const g = info.group;
  const nBlocks = (rows * cols) / g;
  const out = new Uint8Array(nBlocks * info.blockBytes);
  for (let b = 0; b < nBlocks; b++) {
    const at = b * g;
    const o = b * info.blockBytes;
    if (format === 'q8_0') quantQ8Block(w, at, out, o);
    else if (format === 'q4_0') quantQ40Block(w, at, out, o);
    else if (format === 'q4_1' || format === 'q4_g128') quantQ41Block(w, at, g, out, o);
    else quantTq2Block(w, at, out, o);
  }
  return { format, rows, cols, data: out };
}

// -----------------------------------------------------------------------------------------------
// Dequantize
// -----------------------------------------------------------------------------------------------

export function dequantizeMatrix(q: QuantizedMatrix): Float32Array {
  const op = 'dequantizeMatrix';
  checkQuantizedMatrix(q, op);
  const { format, rows, cols, data } = q;
  const out = new Float32Array(rows * cols);
  if (format === 'int8') {
    const codes = new Int8Array(data.buffer, data.byteOffset, data.length);
    const s = q.rowScales!;
    for (let r = 0; r < rows; r++) {
      const d = s[r]!;
      for (let c = 0; c < cols; c++) out[r * cols + c] = f(codes[r * cols + c]! * d);
    }
    return out;
  }
  const info = INFO[format];
  const g = info.group;
  const nBlocks = (rows * cols) / g;
  for (let b = 0; b < nBlocks; b++) {
    const o = b * info.blockBytes;
    const at = b * g;
    if (format === 'q8_0') {
      const d = readF16(data, o);
      for (let j = 0; j < 32; j++) out[at + j] = f(((data[o + 2 + j]! << 24) >> 24) * d);
    } else if (format === 'q4_0') {
      const d = readF16(data, o);
      for (let j = 0; j < 16; j++) {
        const byte = data[o + 2 + j]!;
        out[at + j] = f(((byte & 15) - 8) * d);
        out[at + 16 + j] = f(((byte >> 4) - 8) * d);
      }
    } else if (format === 'q4_1' || format === 'q4_g128') {
      const d = readF16(data, o);
      const m = readF16(data, o + 2);
      const half = g / 2;
      for (let j = 0; j < half; j++) {
        const byte = data[o + 4 + j]!;
        out[at + j] = f(f((byte & 15) * d) + m);
        out[at + half + j] = f(f((byte >> 4) * d) + m);
      }
    } else {
      const d = readF16(data, o + 64);
      for (let e = 0; e < 256; e++) {
        const { byte, shift } = tq2Position(e);
        out[at + e] = f((((data[o + byte]! >> shift) & 3) - 1) * d);
      }
    }
  }
  return out;
}

// -----------------------------------------------------------------------------------------------
// Pack already-chosen codes (GPTQ, AWQ, QAT)
// -----------------------------------------------------------------------------------------------

/**
 * Packs integer codes + per-group parameters into the format's bytes.
 * codes: rows×cols row-major — q4_*: 0…15; q8_0 / int8: −127…127; tq2: −1, 0, 1.
 * scales (and mins, asymmetric formats only): one per group, groups row-major (rows · cols/groupSize).
 * Dequantized value: q8_0/int8/tq2 s·q, q4_0 s·(q − 8), q4_1/q4_g128 s·q + m. Scales and mins of block
 * formats are stored as f16 (rounded to nearest even); int8's stay f32.
 */
export function packQuantized(
  format: QuantFormat,
  rows: number,
  cols: number,
  codes: Int8Array | Uint8Array,
  scales: Float32Array,
  mins?: Float32Array,
): QuantizedMatrix {
  const op = 'packQuantized';
  const info = checkFormat(format, op);
  checkShape(format, rows, cols, op);
  if (codes.length !== rows * cols) throw new RangeError(`${op}: codes has ${codes.length} entries, expected rows·cols = ${rows}·${cols}`);
  const g = info.group === 0 ? cols : info.group;
  const nGroups = (rows * cols) / g;
  if (scales.length !== nGroups) throw new RangeError(`${op}: ${format} [${rows}, ${cols}] needs ${nGroups} scales (one per group of ${g}), got ${scales.length}`);
  if (info.asymmetric) {
    if (mins === undefined || mins.length !== nGroups) throw new RangeError(`${op}: ${format} is asymmetric and needs ${nGroups} mins, got ${mins?.length ?? 'none'}`);
  } else if (mins !== undefined) {
    throw new RangeError(`${op}: ${format} is symmetric; mins must not be given (use q4_1 or q4_g128 for a zero point)`);
  }
  const range = (lo: number, hi: number): void => {
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]!;
      if (c < lo || c > hi) throw new RangeError(`${op}: ${format} code ${c} at element ${i} (row ${Math.floor(i / cols)}) is outside [${lo}, ${hi}]`);
    }
  };
  if (format === 'int8') {
    range(-127, 127);
    const data = new Int8Array(codes.length);
    data.set(codes);
    return { format, rows, cols, data: new Uint8Array(data.buffer), rowScales: Float32Array.from(scales) };
  }
  const out = new Uint8Array(nGroups * info.blockBytes);
  if (format === 'tq2') {
    for (let b = 0; b < nGroups; b++) packTq2Block(codes, b * 256, scales[b]!, out, b * 66);
    return { format, rows, cols, data: out };
  }
  if (format === 'q8_0') {
    range(-127, 127);
    for (let b = 0; b < nGroups; b++) {
      const o = b * 34;
      writeF16(out, o, scales[b]!);
      for (let j = 0; j < 32; j++) out[o + 2 + j] = codes[b * 32 + j]! & 0xff;
    }
    return { format, rows, cols, data: out };
  }
  range(0, 15);
  const header = info.asymmetric ? 4 : 2;
  const half = g / 2;
  for (let b = 0; b < nGroups; b++) {
    const o = b * info.blockBytes;
    writeF16(out, o, scales[b]!);
    if (info.asymmetric) writeF16(out, o + 2, mins![b]!);
    for (let j = 0; j < half; j++) out[o + header + j] = codes[b * g + j]! | (codes[b * g + half + j]! << 4);
  }
  return { format, rows, cols, data: out };
}

/** Bytes a quantized matrix occupies, scales included (file-size reporting). */
export function quantizedMatrixBytes(q: QuantizedMatrix): number {
  return q.data.length + (q.rowScales?.length ?? 0) * 4;
}
