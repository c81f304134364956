/**
 * bf16 and IEEE binary16 (f16) conversions, bit-exact, shared by the js backend and the tensor layer.
 *
 * Both directions work on raw bits (Uint16 for the half formats, the f32 bit pattern via a Uint32 view)
 * so rounding is exact and NaN payloads survive where the format can hold them.
 */

// One scratch word for reinterpreting a float32 as its bits and back.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

function bitsToF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

// ---------------------------------------------------------------- bf16

/** bf16 bits of `x` (upper 16 bits of the f32, rounded to nearest even). NaN becomes a quiet NaN. */
export function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7fffffff) >>> 0 > 0x7f800000) {
    // NaN: truncating could clear every mantissa bit left (turning it into Inf); set the quiet bit.
    return ((bits >>> 16) | 0x0040) & 0xffff;
  }
  // Adding 0x7fff plus the lowest kept bit rounds halfway cases to even. Inf stays Inf (low bits 0),
  // and the largest finite values round up to Inf as IEEE requires.
  const lowestKeptBit = (bits >>> 16) & 1;
  return Math.floor(((bits >>> 0) + 0x7fff + lowestKeptBit) / 0x10000) & 0xffff;
}

export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

export function bf16BitsToF32(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}

// ---------------------------------------------------------------- f16 (IEEE binary16)

/** binary16 bits of the f32 with bit pattern `bits`: round to nearest even, overflow to ±Inf, subnormals kept. */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;

  if (exponent === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and is made quiet (so it never becomes Inf).
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7c00 | 0x0200 | (mantissa >>> 13);
  }

  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00; // too large even before rounding

  if (halfExponent <= 0) {
    // Subnormal half (or zero): value = m · 2^-24, so m = significand · 2^(exponent - 126),
    // a right shift of the 24-bit significand by 14 - halfExponent.
    if (halfExponent < -10) return sign; // below half the smallest subnormal: rounds to ±0
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent; // 14..24
    let m = significand >>> shift;
    const remainder = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (m & 1) === 1)) m++;
    // m may round up to 0x400, which is exactly the encoding of the smallest normal.
    return sign | m;
  }

  let half = sign | (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and from the top exponent gives Inf: both correct.
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half++;
  return half;
}

export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** f32 bit pattern of the binary16 value `h` (exact: every half is representable in f32). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0; // Inf / NaN
  if (exponent !== 0) return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0; // ±0
  // Subnormal half: normalise into an f32 exponent.
  let m = mantissa;
  let e = -14;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

export function f16BitsToF32(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h));
}

// ---------------------------------------------------------------- arrays

function u32View(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

function checkLengths(kernel: string, inLength: number, outLength: number): void {
  if (outLength < inLength) {
    throw new RangeError(`${kernel}: output has ${outLength} elements, input has ${inLength}`);
  }
}

export function f32ToBf16Array(x: Float32Array, out: Uint16Array = new Uint16Array(x.length)): Uint16Array {
  checkLengths('f32ToBf16', x.length, out.length);
  const bits = u32View(x);
  for (let i = 0; i < x.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}

export function bf16ToF32Array(x: Uint16Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  checkLengths('bf16ToF32', x.length, out.length);
  const bits = u32View(out);
  for (let i = 0; i < x.length; i++) bits[i] = x[i] << 16;
  return out;
}

export function f32ToF16Array(x: Float32Array, out: Uint16Array = new Uint16Array(x.length)): Uint16Array {
  checkLengths('f32ToF16', x.length, out.length);
  const bits = u32View(x);
  for (let i = 0; i < x.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

export function f16ToF32Array(x: Uint16Array, out: Float32Array = new Float32Array(x.length)): Float32Array {
  checkLengths('f16ToF32', x.length, out.length);
  const bits = u32View(out);
  for (let i = 0; i < x.length; i++) bits[i] = f16BitsToF32Bits(x[i]);
  return out;
}
