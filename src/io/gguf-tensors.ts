/**
 * GGUF tensor data: reads the tensors a GGUF header (src/io/gguf.ts) describes and dequantises them
 * to float32 on load — F32, F16, BF16, Q8_0, Q4_0 and Q4_1 (ggml's block formats: 32 values per
 * block sharing an f16 scale, and for Q4_1 an f16 minimum). ggml lists dims fastest-first, so a
 * tensor with dims [ne0, ne1] is the row-major [ne1, ne0] matrix (PyTorch's [out, in] for weights).
 */
import { readFileSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import { type GGUFFile, type GGUFTensorInfo, parseGGUF } from './gguf.js';

/** IEEE half → float. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Dequantises one tensor's bytes (exactly info.byteSize of them) to float32. */
export function dequantizeGGUF(info: GGUFTensorInfo, bytes: Uint8Array): Float32Array {
  const n = info.dims.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== info.byteSize) {
    throw new RangeError(`gguf: tensor '${info.name}' ${info.typeName}: got ${bytes.byteLength} bytes, expected ${info.byteSize}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (info.typeName) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    case 'F16': {
      // A table of all 65,536 halves would cost more than it saves on small files.
      for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'Q8_0':
      for (let b = 0; b < n / 32; b++) {
        const at = b * 34;
        const d = f16ToF32(view.getUint16(at, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = view.getInt8(at + 2 + j) * d;
      }
      return out;
    case 'Q4_0':
      for (let b = 0; b < n / 32; b++) {
        const at = b * 18;
        const d = f16ToF32(view.getUint16(at, true));
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 2 + j]!;
          out[b * 32 + j] = ((q & 0xf) - 8) * d;
          out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return out;
    case 'Q4_1':
      for (let b = 0; b < n / 32; b++) {
        const at = b * 20;
        const d = f16ToF32(view.getUint16(at, true));
        const m = f16ToF32(view.getUint16(at + 2, true));
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 4 + j]!;
          out[b * 32 + j] = (q & 0xf) * d + m;
          out[b * 32 + j + 16] = (q >> 4) * d + m;
        }
      }
      return out;
    default:
      throw new RangeError(`gguf: tensor '${info.name}' has type ${info.typeName}, which Weft does not dequantise (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)`);
  }
}

export interface GGUFWithTensors {
  file: GGUFFile;
  /** The file's bytes (tensor data at file.dataOffset + info.offset). */
  bytes: Uint8Array;
  /** name → float32 tensor, row-major with ggml's dims reversed. */
  tensors: Map<string, Tensor>;
}

/**
 * Parses GGUF bytes and dequantises every tensor, except those `keepRaw` names: they get zeros of
 * their shape, for a caller that reads their blocks itself (quantized layers), saving the work.
 */
export function parseGGUFTensors(bytes: Uint8Array, source = '<buffer>', keepRaw?: (info: GGUFTensorInfo) => boolean): GGUFWithTensors {
  const file = parseGGUF(bytes, source);
  const tensors = new Map<string, Tensor>();
  for (const info of file.tensors) {
    const shape = [...info.dims].reverse();
    if (keepRaw?.(info) === true) {
      tensors.set(info.name, Tensor.zeros(shape));
      continue;
    }
    const start = file.dataOffset + info.offset;
    tensors.set(info.name, Tensor.fromArray(dequantizeGGUF(info, bytes.subarray(start, start + info.byteSize)), shape));
  }
  return { file, bytes, tensors };
}

/** Reads a .gguf file with its tensors dequantised to float32 (but those `keepRaw` names: see parseGGUFTensors). */
export function readGGUFTensors(path: string, keepRaw?: (info: GGUFTensorInfo) => boolean): GGUFWithTensors {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`gguf: cannot read ${path}: ${(e as Error).message}`);
  }
  return parseGGUFTensors(bytes, path, keepRaw);
}
