/**
 * Element types. Compute is f32 (with i32 for indices); bf16/f16 are storage formats, converted
 * with `tensor.to('f32')` before arithmetic — as in llama.cpp-style inference, not mixed precision.
 */
export type DType = 'f32' | 'i32' | 'bf16' | 'f16';

export type StorageArray = Float32Array | Int32Array | Uint16Array;

export const DTYPES: readonly DType[] = ['f32', 'i32', 'bf16', 'f16'];

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f32' || dtype === 'i32' ? 4 : 2;
}

export function allocArray(dtype: DType, length: number): StorageArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(length);
    case 'i32':
      return new Int32Array(length);
    case 'bf16':
    case 'f16':
      return new Uint16Array(length);
  }
}

export function dtypeOfArray(a: StorageArray): DType {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Int32Array) return 'i32';
  throw new TypeError('a Uint16Array is ambiguous (bf16 or f16): pass the dtype explicitly');
}
