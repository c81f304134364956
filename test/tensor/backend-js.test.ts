/**
 * The js reference backend against independent references: hand-computed cases, float64 recomputation
 * from the definitions, published bit patterns and constants, and finite differences for every backward.
 */
import { describe, expect, it } from 'vitest';
import type { AttentionParams, F32, GemmParams, Strided, UnaryOp } from '../../src/tensor/backend/backend.js';
import { erf, jsBackend as B } from '../../src/tensor/backend/js.js';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Array,
  f32ToBf16Bits,
  f32ToF16Bits,
  f16ToF32Array,
  f32ToF16Array,
} from '../../src/tensor/backend/f16.js';

// ----------------------------------------------------------------------------------------- helpers

/** mulberry32: a small seeded generator, so every run sees the same numbers. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}

function f32(values: number[]): Float32Array {
  return Float32Array.from(values);
}

/** Element-wise |a − e| ≤ atol + rtol·|e| (NaN must match NaN); reports the worst element on failure. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) return expect.fail(`element ${i}: got ${a}, expected ${e}`);
      continue;
    }
    if (a === e) continue; // covers equal infinities
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (|diff| ${Math.abs(actual[worst] - expected[worst])})`,
    );
  }
}

/**
 * Central finite differences of L(inputs) = Σ weights ⊙ forward(inputs), perturbing every element of
 * inputs[which]. The step actually taken is measured after rounding to f32.
 */
function numericGradient(
  forward: (inputs: Float32Array[]) => Float32Array,
  inputs: Float32Array[],
  which: number,
  weights: Float32Array,
  h = 1e-3,
): Float64Array {
  const loss = (): number => {
    const out = forward(inputs);
    let sum = 0;
    for (let i = 0; i < out.length; i++) sum += weights[i] * out[i];
    return sum;
  };
  const x = inputs[which];
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const original = x[i];
    x[i] = original + h;
    const up = x[i];
    const lossUp = loss();
    x[i] = original - h;
    const down = x[i];
    const lossDown = loss();
    x[i] = original;
    grad[i] = (lossUp - lossDown) / (up - down);
  }
  return grad;
}

const dense = (data: Float32Array, shape: number[]): Strided<F32> => {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return { data, offset: 0, strides };
};

// ----------------------------------------------------------------------------------------- f16 / bf16

describe('f16 conversion (IEEE binary16)', () => {
  it('encodes known bit patterns', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite half
      [65519, 0x7bff], // just below the halfway point to 65536
      [65520, 0x7c00], // halfway: rounds to even, which is Infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [0, 0x0000],
      [-0, 0x8000],
      [1 / 3, 0x3555],
      [2 ** -14, 0x0400], // smallest normal
      [6e-8, 0x0001], // ≈ 2^-24, the smallest subnormal
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // halfway between 0 and 2^-24: ties to even (0)
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 subnormal ulps: ties to even (2)
      [5 * 2 ** -25, 0x0002], // halfway between 2 and 3: ties to even (2)
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1e-10, 0x0000],
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: even is 1
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 0x3c01 and 0x3c02: even is 0x3c02
    ];
    for (const [value, bits] of cases) expect(f32ToF16Bits(value), `f16(${value})`).toBe(bits);
    // Just above half the smallest subnormal rounds up, not to zero.
    const justAbove = new Float32Array([2 ** -25]);
    new Uint32Array(justAbove.buffer)[0] += 1;
    expect(f32ToF16Bits(justAbove[0])).toBe(0x0001);
  });

  it('decodes known bit patterns', () => {
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(Number.isNaN(f16BitsToF32(0x7e00))).toBe(true);
    expect(Number.isNaN(f16BitsToF32(0x7c01))).toBe(true);
  });

  it('round-trips every half value and keeps NaN NaN', () => {
    for (let h = 0; h < 0x10000; h++) {
      const value = f16BitsToF32(h);
      const isNaNBits = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaNBits) {
        const back = f32ToF16Bits(value);
        expect((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0).toBe(true);
      } else if (f32ToF16Bits(value) !== h) {
        expect.fail(`half 0x${h.toString(16)} -> ${value} -> 0x${f32ToF16Bits(value).toString(16)}`);
      }
    }
    // A signalling-looking f32 NaN whose payload sits only in the low bits must not become Infinity.
    const nan = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    const bits = new Uint16Array(1);
    B.f32ToF16(nan, bits); // the array kernel reads raw bits (a JS number would quiet the NaN first)
    expect(bits[0] & 0x7c00).toBe(0x7c00);
    expect(bits[0] & 0x3ff).not.toBe(0);
  });

  it('rounds random f32 values to the nearest half, ties to even (brute-force reference)', () => {
    // Reference: binary search over the positive halves (ordered like their bit patterns) for the two
    // neighbours of |x|, then pick the nearer one (ties: even bits), in float64.
    const nearestHalf = (x: number): number => {
      const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
      const ax = Math.abs(x);
      if (ax >= 65520) return sign | 0x7c00;
      let lo = 0;
      let hi = 0x7bff;
      if (ax >= 65504) return sign | 0x7bff;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (f16BitsToF32(mid) <= ax) lo = mid;
        else hi = mid;
      }
      const below = ax - f16BitsToF32(lo);
      const above = f16BitsToF32(hi) - ax;
      const pick = below < above ? lo : above < below ? hi : lo % 2 === 0 ? lo : hi;
      return sign | pick;
    };
    const next = rng(7);
    const values = new Float32Array(4000);
    for (let i = 0; i < values.length; i++) {
      // Magnitudes spread over the subnormal, normal and overflow ranges.
      values[i] = (next() < 0.5 ? -1 : 1) * 2 ** (-30 + 48 * next());
    }
    const out = new Uint16Array(values.length);
    B.f32ToF16(values, out);
    for (let i = 0; i < values.length; i++) {
      if (out[i] !== nearestHalf(values[i])) expect.fail(`f16(${values[i]}) = 0x${out[i].toString(16)}`);
    }
    const back = new Float32Array(values.length);
    B.f16ToF32(out, back);
    expectClose(back, f16ToF32Array(f32ToF16Array(values)), 0, 0);
  });
});

describe('bf16 conversion', () => {
  const fromBits = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0];

  it('rounds to nearest even on the upper 16 bits', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(fromBits(0x3f808000))).toBe(0x3f80); // tie, 0x3f80 is even
    expect(f32ToBf16Bits(fromBits(0x3f818000))).toBe(0x3f82); // tie, 0x3f81 is odd: up
    expect(f32ToBf16Bits(fromBits(0x3f808001))).toBe(0x3f81); // above the tie
    expect(f32ToBf16Bits(fromBits(0x3f807fff))).toBe(0x3f80); // below the tie
    expect(f32ToBf16Bits(fromBits(0xbf818000))).toBe(0xbf82); // negative tie
    expect(f32ToBf16Bits(fromBits(0x7f7fffff))).toBe(0x7f80); // f32 max rounds to Inf
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(f32ToBf16Bits(1 / 3)).toBe(0x3eab); // 0x3eaaaaab rounds up
  });

  it('keeps NaN a NaN, even when the payload is only in the dropped bits', () => {
    // Through the array kernel, which reads raw bits: a JS number would already have quieted the NaN.
    const nans = new Float32Array(new Uint32Array([0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]).buffer);
    const out = new Uint16Array(nans.length);
    B.f32ToBf16(nans, out);
    for (const h of out) {
      expect(h & 0x7f80).toBe(0x7f80);
      expect(h & 0x7f).not.toBe(0);
      expect(Number.isNaN(bf16BitsToF32(h))).toBe(true);
    }
    expect(out[2] & 0x8000).toBe(0x8000); // sign kept
  });

  it('decodes by shifting into the upper half, and arrays agree with scalars', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc049)).toBe(-3.140625);
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133); // f32 subnormal
    const x = randomArray(257, 3, -100, 100);
    const bits = new Uint16Array(x.length);
    B.f32ToBf16(x, bits);
    expect(Array.from(bits)).toEqual(Array.from(x, (v) => f32ToBf16Bits(v)));
    const back = new Float32Array(x.length);
    B.bf16ToF32(bits, back);
    expectClose(back, Array.from(bits, (b) => bf16BitsToF32(b)), 0, 0);
    expectClose(back, x, 2 ** -8, 0); // bf16 keeps 8 significant bits
    expect(() => f32ToBf16Array(x, new Uint16Array(3))).toThrow(/f32ToBf16: output has 3 elements/);
  });
});

// ----------------------------------------------------------------------------------------- elementwise

describe('unary', () => {
  it('erf matches published values to 1e-12', () => {
    const table: [number, number][] = [
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.9, 0.9999589021219005],
      [3, 0.9999779095030014],
      [3.5, 0.9999992569016276],
      [4, 0.9999999845827421],
      [-1.5, -0.9661051464753108],
    ];
    for (const [x, value] of table) expect(Math.abs(erf(x) - value)).toBeLessThan(1e-12);
    expect(erf(0)).toBe(0);
    expect(erf(10)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
  });

  it('matches the definitions in float64', () => {
    const x = f32([-3, -1.5, -0.25, 0, 0.3, 1, 2.5, 7]);
    const positive = f32([0.01, 0.3, 1, 2, 9, 100]);
    const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
    const refs: [UnaryOp, Float32Array, (v: number) => number][] = [
      ['neg', x, (v) => -v],
      ['exp', x, Math.exp],
      ['log', positive, Math.log],
      ['sqrt', positive, Math.sqrt],
      ['rsqrt', positive, (v) => 1 / Math.sqrt(v)],
      ['abs', x, Math.abs],
      ['sin', x, Math.sin],
      ['cos', x, Math.cos],
      ['tanh', x, Math.tanh],
      ['sigmoid', x, sigmoid],
      ['relu', x, (v) => (v > 0 ? v : 0)],
      ['silu', x, (v) => v * sigmoid(v)],
      ['square', x, (v) => v * v],
      ['reciprocal', positive, (v) => 1 / v],
      ['sign', x, Math.sign],
    ];
    for (const [op, input, ref] of refs) {
      const out = new Float32Array(input.length);
      B.unary(op, input, out);
      expectClose(out, Array.from(input, ref), 1e-6, 1e-7);
    }
    // gelu at published points: x·Φ(x) and the tanh approximation.
    const out = new Float32Array(3);
    B.unary('gelu', f32([1, -1, 2]), out);
    expectClose(out, [0.8413447460685429, -0.15865525393145707, 1.9544997361036416], 1e-6, 0);
    B.unary('gelu_tanh', f32([1, -1, 2]), out);
    expectClose(out, [0.8411919906082768, -0.15880800939172324, 1.954597694087775], 1e-6, 0);
  });

  it('handles extremes and special values', () => {
    const out = new Float32Array(4);
    B.unary('sigmoid', f32([-1000, 1000, NaN, 0]), out);
    expect(Array.from(out.subarray(0, 2))).toEqual([0, 1]);
    expect(Number.isNaN(out[2])).toBe(true);
    expect(out[3]).toBe(0.5);
    B.unary('relu', f32([NaN, -0, -5, 5]), out);
    expect(Number.isNaN(out[0])).toBe(true);
    expect(Array.from(out.subarray(1))).toEqual([0, 0, 5]);
    B.unary('gelu', f32([-20, 20, -Infinity, Infinity]), out);
    expectClose(out, [0, 20, NaN, Infinity], 0, 0); // PyTorch also gives NaN at −Infinity (−Inf · 0)
    const inPlace = f32([1, 4, 9, 16]);
    B.unary('sqrt', inPlace, inPlace); // out may alias x
    expect(Array.from(inPlace)).toEqual([1, 2, 3, 4]);
    expect(() => B.unary('nope' as UnaryOp, inPlace, out)).toThrow(/unary: unknown op 'nope'/);
  });

  it('backward matches finite differences for every op', () => {
    const ops: [UnaryOp, number, number][] = [
      ['neg', -2, 2],
      ['exp', -2, 2],
      ['log', 0.2, 3],
      ['sqrt', 0.2, 3],
      ['rsqrt', 0.2, 3],
      ['abs', -2, 2],
      ['sin', -3, 3],
      ['cos', -3, 3],
      ['tanh', -2, 2],
      ['sigmoid', -4, 4],
      ['relu', -2, 2],
      ['gelu', -3, 3],
      ['gelu_tanh', -3, 3],
      ['silu', -4, 4],
      ['square', -2, 2],
      ['reciprocal', 0.3, 3],
      ['sign', -2, 2],
    ];
    for (const [op, lo, hi] of ops) {
      const x = randomArray(24, 11, lo, hi);
      // Keep kinks (0 for relu/abs/sign) out of the finite-difference stencil.
      for (let i = 0; i < x.length; i++) if (Math.abs(x[i]) < 0.01) x[i] = 0.5;
      const gy = randomArray(24, 12);
      const forward = ([input]: Float32Array[]): Float32Array => {
        const out = new Float32Array(input.length);
        B.unary(op, input, out);
        return out;
      };
      const y = forward([x]);
      const gx = new Float32Array(x.length);
      B.unaryBackward(op, x, y, gy, gx);
      // Per-element FD: L = Σ gy ⊙ f(x) and each x_i only touches out_i.
      const numeric = numericGradient(forward, [x], 0, gy, 1e-3);
      try {
        expectClose(gx, numeric, 3e-3, 2e-3);
      } catch (error) {
        throw new Error(`unaryBackward('${op}'): ${(error as Error).message}`);
      }
    }
  });

  it('backward uses the conventions at kinks', () => {
    const x = f32([0, 0, 0]);
    const gx = new Float32Array(3);
    const gy = f32([1, 2, 3]);
    for (const op of ['relu', 'abs', 'sign'] as const) {
      const y = new Float32Array(3);
      B.unary(op, x, y);
      B.unaryBackward(op, x, y, gy, gx);
      expect(Array.from(gx, Math.abs)).toEqual([0, 0, 0]);
    }
    B.unaryBackward('relu', f32([1, -1, 2]), f32([1, 0, 2]), gy, gx);
    expect(Array.from(gx)).toEqual([1, 0, 3]);
  });
});

describe('binary, affine, clamp, where', () => {
  it('broadcasts through strides (0 = broadcast) and reads transposed views', () => {
    // a: [2,3] dense; b: a row of 3 broadcast over 2 rows; c: the transpose of a stored [3,2] buffer.
    const a = f32([1, 2, 3, 4, 5, 6]);
    const row = f32([10, 20, 30]);
    const out = new Float32Array(6);
    B.binary('add', dense(a, [2, 3]), { data: row, offset: 0, strides: [0, 1] }, [2, 3], out);
    expect(Array.from(out)).toEqual([11, 22, 33, 14, 25, 36]);
    const stored = f32([1, 4, 2, 5, 3, 6]); // [3,2]; its transpose equals a
    B.binary('sub', { data: stored, offset: 0, strides: [1, 2] }, dense(a, [2, 3]), [2, 3], out);
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 0]);
    // Column broadcast with an offset: b = [_, 100, 200] viewed as [2,1] → [2,3].
    B.binary('mul', dense(a, [2, 3]), { data: f32([-1, 100, 200]), offset: 1, strides: [1, 0] }, [2, 3], out);
    expect(Array.from(out)).toEqual([100, 200, 300, 800, 1000, 1200]);
  });

  it('computes every op as defined, including NaN and pow special cases', () => {
    const av = [1, -2, 0.5, 3, NaN, 2, 1, -1, 0];
    const bv = [2, 3, 0.5, -1, 1, 2, NaN, Infinity, 0];
    const refs: Record<string, (a: number, b: number) => number> = {
      add: (a, b) => a + b,
      sub: (a, b) => a - b,
      mul: (a, b) => a * b,
      div: (a, b) => a / b,
      maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a > b ? a : b),
      minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a < b ? a : b),
      eq: (a, b) => (a === b ? 1 : 0),
      ne: (a, b) => (a !== b ? 1 : 0),
      lt: (a, b) => (a < b ? 1 : 0),
      le: (a, b) => (a <= b ? 1 : 0),
      gt: (a, b) => (a > b ? 1 : 0),
      ge: (a, b) => (a >= b ? 1 : 0),
    };
    const out = new Float32Array(av.length);
    for (const [op, ref] of Object.entries(refs)) {
      B.binary(op as 'add', dense(f32(av), [9]), dense(f32(bv), [9]), [9], out);
      expectClose(out, av.map((a, i) => Math.fround(ref(a, bv[i]))), 0, 0);
    }
    // pow follows C/PyTorch: 1^NaN = 1, x^0 = 1 even for NaN, (−1)^±Inf = 1; 8^(1/3) = 2; (−8)^(1/3) = NaN.
    B.binary('pow', dense(f32([1, NaN, -1, 8, -8, 2, 0]), [7]), dense(f32([NaN, 0, Infinity, 1 / 3, 1 / 3, -2, -1]), [7]), [7], out.subarray(0, 7));
    expectClose(out.subarray(0, 7), [1, 1, 1, 2, NaN, 0.25, Infinity], 1e-6, 0);
  });

  it('rejects views that reach outside their buffer', () => {
    const out = new Float32Array(6);
    expect(() => B.binary('add', dense(f32([1, 2, 3]), [3]), dense(f32([1, 2]), [3]), [3], out)).toThrow(
      /binary: b view reaches elements \[0, 2\] outside its buffer of 2/,
    );
    expect(() => B.binary('add', dense(f32([1, 2, 3]), [3]), dense(f32([1, 2, 3]), [1, 3]), [3], out)).toThrow(
      /binary: b has 2 strides for a shape of rank 1/,
    );
  });

  it('affine, clamp (NaN stays NaN) and where (broadcast cond)', () => {
    const out = new Float32Array(4);
    B.affine(f32([1, -2, 0, 4]), 3, 0.5, out);
    expect(Array.from(out)).toEqual([3.5, -5.5, 0.5, 12.5]);
    B.clamp(f32([-5, NaN, 0.3, 5]), -1, 1, out);
    expect(out[0]).toBe(-1);
    expect(Number.isNaN(out[1])).toBe(true);
    expect(out[2]).toBeCloseTo(0.3, 7);
    expect(out[3]).toBe(1);
    const cond = { data: f32([1, 0]), offset: 0, strides: [1, 0] }; // per row
    const a = dense(f32([1, 2, 3, 4]), [2, 2]);
    const b = { data: f32([-7]), offset: 0, strides: [0, 0] }; // scalar
    B.where(cond, a, b, [2, 2], out);
    expect(Array.from(out)).toEqual([1, 2, -7, -7]);
    B.where({ data: f32([NaN]), offset: 0, strides: [0, 0] }, a, b, [2, 2], out); // NaN != 0
    expect(Array.from(out)).toEqual([1, 2, 3, 4]);
  });

  it('copyStrided copies transposed and broadcast views for every element type', () => {
    const src = f32([1, 2, 3, 4, 5, 6]); // [2,3]
    const dst = new Float32Array(6);
    B.copyStrided({ data: src, offset: 0, strides: [1, 3] }, [3, 2], dst); // transpose
    expect(Array.from(dst)).toEqual([1, 4, 2, 5, 3, 6]);
    const ints = new Int32Array([7, 8, 9]);
    const intsOut = new Int32Array(6);
    B.copyStrided({ data: ints, offset: 0, strides: [0, 1] }, [2, 3], intsOut);
    expect(Array.from(intsOut)).toEqual([7, 8, 9, 7, 8, 9]);
    const halves = new Uint16Array([1, 2, 3, 4]);
    const halvesOut = new Uint16Array(2);
    B.copyStrided({ data: halves, offset: 3, strides: [-2] }, [2], halvesOut); // reversed, every 2nd
    expect(Array.from(halvesOut)).toEqual([4, 2]);
    const filled = new Float32Array(3);
    B.fill(filled, 2.5);
    expect(Array.from(filled)).toEqual([2.5, 2.5, 2.5]);
  });
});

// ----------------------------------------------------------------------------------------- reductions

describe('reductions over [outer, n, inner]', () => {
  it('sum, max, min, logsumexp match float64 recomputation', () => {
    const [outer, n, inner] = [3, 5, 4];
    const x = randomArray(outer * n * inner, 21, -5, 5);
    const at = (o: number, j: number, i: number): number => x[o * n * inner + j * inner + i];
    const out = new Float32Array(outer * inner);
    const refs: Record<string, (values: number[]) => number> = {
      sum: (v) => v.reduce((s, t) => s + t, 0),
      max: (v) => Math.max(...v),
      min: (v) => Math.min(...v),
      logsumexp: (v) => Math.log(v.reduce((s, t) => s + Math.exp(t), 0)),
    };
    for (const [op, ref] of Object.entries(refs)) {
      B.reduce(op as 'sum', x, outer, n, inner, out);
      const expected: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) expected.push(ref(Array.from({ length: n }, (_, j) => at(o, j, i))));
      }
      expectClose(out, expected, 1e-6, 1e-6);
    }
  });

  it('propagates NaN, handles infinities and empty axes', () => {
    const out = new Float32Array(1);
    B.reduce('max', f32([1, NaN, 3]), 1, 3, 1, out);
    expect(Number.isNaN(out[0])).toBe(true);
    B.reduce('min', f32([NaN, 1, -3]), 1, 3, 1, out);
    expect(Number.isNaN(out[0])).toBe(true);
    B.reduce('logsumexp', f32([-Infinity, -Infinity]), 1, 2, 1, out);
    expect(out[0]).toBe(-Infinity);
    B.reduce('logsumexp', f32([1000, 1000]), 1, 2, 1, out); // no overflow
    expect(out[0]).toBeCloseTo(1000 + Math.LN2, 3);
    B.reduce('logsumexp', f32([Infinity, 1]), 1, 2, 1, out);
    expect(out[0]).toBe(Infinity);
    B.reduce('sum', new Float32Array(0), 1, 0, 1, out);
    expect(out[0]).toBe(0);
    expect(() => B.reduce('max', new Float32Array(0), 1, 0, 1, out)).toThrow(/reduce: max over an empty axis/);
  });

  it('argmax/argmin pick the first extreme, and NaN wins', () => {
    const out = new Int32Array(2);
    // [outer=1, n=4, inner=2]: column 0 = [3, 7, 7, 1], column 1 = [2, 2, -1, -1]
    const x = f32([3, 2, 7, 2, 7, -1, 1, -1]);
    B.argReduce('argmax', x, 1, 4, 2, out);
    expect(Array.from(out)).toEqual([1, 0]);
    B.argReduce('argmin', x, 1, 4, 2, out);
    expect(Array.from(out)).toEqual([3, 2]);
    B.argReduce('argmax', f32([1, NaN, 5, NaN]), 1, 4, 1, out.subarray(0, 1));
    expect(out[0]).toBe(1);
    B.argReduce('argmin', f32([1, -5, NaN]), 1, 3, 1, out.subarray(0, 1));
    expect(out[0]).toBe(2);
  });
});

// ----------------------------------------------------------------------------------------- gemm

describe('gemm', () => {
  it('multiplies a hand-computed 2×2 case', () => {
    const c = new Float32Array(4);
    const p: GemmParams = {
      batch: 1, m: 2, n: 2, k: 2, transA: false, transB: false, lda: 2, ldb: 2, ldc: 2,
      strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0,
    };
    B.gemm(f32([1, 2, 3, 4]), f32([5, 6, 7, 8]), c, p);
    expect(Array.from(c)).toEqual([19, 22, 43, 50]);
  });

  it('matches a float64 triple loop for every transpose combination, padding, batch broadcast, alpha/beta', () => {
    const [batch, m, n, k] = [3, 5, 7, 6];
    let seed = 100;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        // Row strides with padding; A broadcast over the batch (stride 0).
        const lda = (transA ? m : k) + 2;
        const ldb = (transB ? k : n) + 1;
        const ldc = n + 3;
        const rowsA = transA ? k : m;
        const rowsB = transB ? n : k;
        const a = randomArray(rowsA * lda, seed++);
        const strideB = rowsB * ldb;
        const b = randomArray(batch * strideB, seed++);
        const strideC = m * ldc;
        const c0 = randomArray(batch * strideC, seed++);
        const c = c0.slice();
        const [alpha, beta] = [0.75, -0.5];
        B.gemm(a, b, c, { batch, m, n, k, transA, transB, lda, ldb, ldc, strideA: 0, strideB, strideC, alpha, beta });
        const A = (i: number, p: number): number => (transA ? a[p * lda + i] : a[i * lda + p]);
        const Bm = (t: number, p: number, j: number): number =>
          transB ? b[t * strideB + j * ldb + p] : b[t * strideB + p * ldb + j];
        const expected = Array.from(c0);
        for (let t = 0; t < batch; t++) {
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let dot = 0;
              for (let p = 0; p < k; p++) dot += A(i, p) * Bm(t, p, j);
              const at = t * strideC + i * ldc + j;
              expected[at] = alpha * dot + beta * c0[at];
            }
          }
        }
        try {
          expectClose(c, expected, 1e-5, 1e-6); // padding elements must be untouched (exact)
        } catch (error) {
          throw new Error(`transA=${transA} transB=${transB}: ${(error as Error).message}`);
        }
      }
    }
  });

  it('beta = 0 never reads C; k = 0 gives beta·C; undersized buffers throw', () => {
    const base: GemmParams = {
      batch: 1, m: 1, n: 2, k: 1, transA: false, transB: false, lda: 1, ldb: 2, ldc: 2,
      strideA: 0, strideB: 0, strideC: 0, alpha: 2, beta: 0,
    };
    const c = f32([NaN, NaN]);
    B.gemm(f32([3]), f32([1, -1]), c, base);
    expect(Array.from(c)).toEqual([6, -6]);
    const c2 = f32([1, 2]);
    B.gemm(new Float32Array(0), new Float32Array(0), c2, { ...base, k: 0, beta: 3 });
    expect(Array.from(c2)).toEqual([3, 6]);
    expect(() => B.gemm(f32([3]), f32([1]), c, base)).toThrow(/gemm: B has 1 elements, needs 2/);
  });
});

// ----------------------------------------------------------------------------------------- softmax, norms

describe('softmax', () => {
  it('matches the definition and is stable for large logits', () => {
    const x = f32([1, 2, 3, 1000, 1001, 1002, -5, 0, 5]);
    const out = new Float32Array(9);
    B.softmax(x, 3, 3, false, out);
    const row = [Math.exp(-2), Math.exp(-1), 1];
    const total = row[0] + row[1] + row[2];
    const expected = [...row, ...row].map((v) => v / total);
    const third = [Math.exp(-10), Math.exp(-5), 1];
    const thirdTotal = third[0] + third[1] + third[2];
    expected.push(...third.map((v) => v / thirdTotal));
    expectClose(out, expected, 1e-6, 1e-8);
    B.softmax(x, 3, 3, true, out);
    expectClose(out, expected.map(Math.log), 1e-6, 1e-6);
  });

  for (const log of [false, true]) {
    it(`${log ? 'log-softmax' : 'softmax'} backward matches finite differences`, () => {
      const [rows, cols] = [3, 6];
      const x = randomArray(rows * cols, 31, -3, 3);
      const weights = randomArray(rows * cols, 32);
      const forward = ([input]: Float32Array[]): Float32Array => {
        const out = new Float32Array(rows * cols);
        B.softmax(input, rows, cols, log, out);
        return out;
      };
      const gx = new Float32Array(rows * cols);
      B.softmaxBackward(forward([x]), weights, rows, cols, log, gx);
      expectClose(gx, numericGradient(forward, [x], 0, weights), 2e-3, 5e-4);
    });
  }
});

describe('layerNorm and rmsNorm', () => {
  const [rows, cols, eps] = [3, 8, 1e-5];

  it('layerNorm matches the definition (biased variance) and writes mean, rstd', () => {
    const x = randomArray(rows * cols, 41, -2, 3);
    const w = randomArray(cols, 42);
    const b = randomArray(cols, 43);
    const out = new Float32Array(rows * cols);
    const mean = new Float32Array(rows);
    const rstd = new Float32Array(rows);
    B.layerNorm(x, w, b, rows, cols, eps, out, mean, rstd);
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      const v = Array.from(x.subarray(r * cols, (r + 1) * cols));
      const mu = v.reduce((s, t) => s + t, 0) / cols;
      const variance = v.reduce((s, t) => s + (t - mu) ** 2, 0) / cols;
      expect(mean[r]).toBeCloseTo(mu, 6);
      expect(rstd[r]).toBeCloseTo(1 / Math.sqrt(variance + eps), 5);
      v.forEach((t, c) => expected.push(((t - mu) / Math.sqrt(variance + eps)) * w[c] + b[c]));
    }
    expectClose(out, expected, 1e-5, 1e-6);
    // Without weight/bias: each row has mean 0 and (biased) variance ≈ 1.
    B.layerNorm(x, null, null, rows, cols, 0, out, mean, rstd);
    const first = Array.from(out.subarray(0, cols));
    expect(first.reduce((s, t) => s + t, 0)).toBeCloseTo(0, 5);
    expect(first.reduce((s, t) => s + t * t, 0) / cols).toBeCloseTo(1, 5);
  });

  it('layerNorm backward matches finite differences for x, weight and bias, and accumulates', () => {
    const x = randomArray(rows * cols, 44, -2, 2);
    const w = randomArray(cols, 45, 0.5, 1.5);
    const b = randomArray(cols, 46);
    const weights = randomArray(rows * cols, 47);
    const forward = ([input, weight, bias]: Float32Array[]): Float32Array => {
      const out = new Float32Array(rows * cols);
      B.layerNorm(input, weight, bias, rows, cols, eps, out, new Float32Array(rows), new Float32Array(rows));
      return out;
    };
    const mean = new Float32Array(rows);
    const rstd = new Float32Array(rows);
    B.layerNorm(x, w, b, rows, cols, eps, new Float32Array(rows * cols), mean, rstd);
    const gx = new Float32Array(rows * cols);
    const gw = new Float32Array(cols).fill(1); // pre-filled: the kernel must add to it
    const gb = new Float32Array(cols).fill(1);
    B.layerNormBackward(x, w, mean, rstd, weights, rows, cols, gx, gw, gb);
    const inputs = [x, w, b];
    expectClose(gx, numericGradient(forward, inputs, 0, weights), 3e-3, 1e-3);
    expectClose(gw, Array.from(numericGradient(forward, inputs, 1, weights), (g) => g + 1), 3e-3, 1e-3);
    expectClose(gb, Array.from(numericGradient(forward, inputs, 2, weights), (g) => g + 1), 3e-3, 1e-3);
    // Without weight: same as weight = 1.
    const gxNoWeight = new Float32Array(rows * cols);
    B.layerNormBackward(x, null, mean, rstd, weights, rows, cols, gxNoWeight, null, null);
    const gxOnes = new Float32Array(rows * cols);
    B.layerNormBackward(x, new Float32Array(cols).fill(1), mean, rstd, weights, rows, cols, gxOnes, null, null);
    expectClose(gxNoWeight, gxOnes, 0, 0);
  });

  it('rmsNorm matches the definition', () => {
    const x = randomArray(rows * cols, 51, -2, 3);
    const w = randomArray(cols, 52);
    const out = new Float32Array(rows * cols);
    const rstd = new Float32Array(rows);
    B.rmsNorm(x, w, rows, cols, eps, out, rstd);
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      const v = Array.from(x.subarray(r * cols, (r + 1) * cols));
      const inv = 1 / Math.sqrt(v.reduce((s, t) => s + t * t, 0) / cols + eps);
      expect(rstd[r]).toBeCloseTo(inv, 5);
      v.forEach((t, c) => expected.push(t * inv * w[c]));
    }
    expectClose(out, expected, 1e-5, 1e-6);
  });

  it('rmsNorm backward matches finite differences for x and weight, and accumulates', () => {
    const x = randomArray(rows * cols, 53, -2, 2);
    const w = randomArray(cols, 54, 0.5, 1.5);
    const weights = randomArray(rows * cols, 55);
    const forward = ([input, weight]: Float32Array[]): Float32Array => {
      const out = new Float32Array(rows * cols);
      B.rmsNorm(input, weight, rows, cols, eps, out, new Float32Array(rows));
      return out;
    };
    const rstd = new Float32Array(rows);
    B.rmsNorm(x, w, rows, cols, eps, new Float32Array(rows * cols), rstd);
    const gx = new Float32Array(rows * cols);
    const gw = new Float32Array(cols).fill(-2);
    B.rmsNormBackward(x, w, rstd, weights, rows, cols, gx, gw);
    expectClose(gx, numericGradient(forward, [x, w], 0, weights), 3e-3, 1e-3);
    expectClose(gw, Array.from(numericGradient(forward, [x, w], 1, weights), (g) => g - 2), 3e-3, 1e-3);
  });
});

// ----------------------------------------------------------------------------------------- indexing

describe('indexing', () => {
  it('gatherRows / scatterAddRows, with repeated indices adding up', () => {
    const table = f32([0, 1, 10, 11, 20, 21]); // [3, 2]
    const out = new Float32Array(8);
    B.gatherRows(table, 3, 2, new Int32Array([2, 0, 2, 1]), out);
    expect(Array.from(out)).toEqual([20, 21, 0, 1, 20, 21, 10, 11]);
    const gTable = new Float32Array(6).fill(1);
    B.scatterAddRows(f32([1, 2, 3, 4, 5, 6]), new Int32Array([2, 0, 2]), 2, gTable, 3);
    expect(Array.from(gTable)).toEqual([4, 5, 1, 1, 7, 9]);
  });

  it('out-of-range indices throw naming the kernel, the index and the range', () => {
    const table = new Float32Array(50257 * 2);
    expect(() => B.gatherRows(table, 50257, 2, new Int32Array([5, 50300]), new Float32Array(4))).toThrow(
      'gatherRows: index 50300 out of range [0, 50257)',
    );
    expect(() => B.gatherRows(table, 50257, 2, new Int32Array([-1]), new Float32Array(2))).toThrow(
      'gatherRows: index -1 out of range [0, 50257)',
    );
    const gTable = new Float32Array(4);
    expect(() => B.scatterAddRows(f32([1, 1, 1, 1]), new Int32Array([0, 2]), 2, gTable, 2)).toThrow(
      'scatterAddRows: index 2 out of range [0, 2)',
    );
    expect(Array.from(gTable)).toEqual([0, 0, 0, 0]); // nothing written before the bad index was found
    expect(() => B.gather(f32([1, 2]), 1, 2, 1, new Int32Array([3]), 1, new Float32Array(1))).toThrow(
      'gather: index 3 out of range [0, 2)',
    );
    expect(() => B.scatterAdd(new Float32Array(2), 1, 2, 1, new Int32Array([-4]), 1, f32([1]))).toThrow(
      'scatterAdd: index -4 out of range [0, 2)',
    );
  });

  it('gather / scatterAdd along the middle axis', () => {
    // x: [outer=2, n=3, inner=2]
    const x = f32([0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]);
    // idx: [2, m=2, 2]
    const idx = new Int32Array([2, 0, 1, 1, 0, 2, 2, 2]);
    const out = new Float32Array(8);
    B.gather(x, 2, 3, 2, idx, 2, out);
    // out[o,j,i] = x[o, idx[o,j,i], i]
    expect(Array.from(out)).toEqual([4, 1, 2, 3, 10, 15, 14, 15]);
    const acc = new Float32Array(12);
    B.scatterAdd(acc, 2, 3, 2, idx, 2, f32([1, 2, 3, 4, 5, 6, 7, 8]));
    expect(Array.from(acc)).toEqual([0, 2, 3, 4, 1, 0, 5, 0, 0, 0, 7, 14]);
  });
});

// ----------------------------------------------------------------------------------------- losses

describe('crossEntropy', () => {
  it('matches a hand-computed case, and ignored rows give 0', () => {
    const logits = f32([1, 2, 3, 0, 0, 0]);
    const loss = new Float32Array(2);
    const lse = new Float32Array(2);
    B.crossEntropy(logits, new Int32Array([2, -100]), 2, 3, -100, 0, loss, lse);
    expect(loss[0]).toBeCloseTo(0.40760596444438013, 6); // log(e + e² + e³) − 3
    expect(loss[1]).toBe(0);
    expect(lse[0]).toBeCloseTo(3.40760596444438, 6);
    expect(lse[1]).toBeCloseTo(Math.log(3), 6); // lse is written for every row
  });

  it('label smoothing follows q = (1 − ε)·onehot + ε/cols', () => {
    const [rows, cols, smoothing] = [4, 5, 0.1];
    const logits = randomArray(rows * cols, 61, -4, 4);
    const targets = new Int32Array([3, 0, 4, 1]);
    const loss = new Float32Array(rows);
    B.crossEntropy(logits, targets, rows, cols, -1, smoothing, loss, new Float32Array(rows));
    const expected = Array.from(targets, (t, r) => {
      const row = Array.from(logits.subarray(r * cols, (r + 1) * cols));
      const logZ = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      let total = 0;
      row.forEach((v, c) => {
        const q = (c === t ? 1 - smoothing : 0) + smoothing / cols;
        total -= q * (v - logZ);
      });
      return total;
    });
    expectClose(loss, expected, 1e-5, 1e-6);
  });

  it('throws for a target outside [0, cols) that is not ignoreIndex', () => {
    const out = new Float32Array(1);
    expect(() => B.crossEntropy(f32([1, 2]), new Int32Array([2]), 1, 2, -100, 0, out, out)).toThrow(
      /crossEntropy: target 2 \(row 0\) out of range \[0, 2\)/,
    );
    expect(() => B.crossEntropy(f32([1, 2]), new Int32Array([-1]), 1, 2, -100, 0, out, out)).toThrow(RangeError);
  });

  it('backward matches finite differences (with smoothing and an ignored row)', () => {
    const [rows, cols, smoothing, ignore] = [4, 6, 0.2, 5];
    const logits = randomArray(rows * cols, 62, -3, 3);
    const targets = new Int32Array([1, 5, 0, 3]); // row 1 ignored (target 5 = ignoreIndex)
    const gLoss = f32([1, 2, -0.5, 0.7]);
    const forward = ([input]: Float32Array[]): Float32Array => {
      const loss = new Float32Array(rows);
      B.crossEntropy(input, targets, rows, cols, ignore, smoothing, loss, new Float32Array(rows));
      return loss;
    };
    const lse = new Float32Array(rows);
    B.crossEntropy(logits, targets, rows, cols, ignore, smoothing, new Float32Array(rows), lse);
    const gLogits = new Float32Array(rows * cols).fill(NaN); // written, not accumulated
    B.crossEntropyBackward(logits, lse, targets, gLoss, rows, cols, ignore, smoothing, gLogits);
    expectClose(gLogits, numericGradient(forward, [logits], 0, gLoss), 3e-3, 5e-4);
    expect(Array.from(gLogits.subarray(cols, 2 * cols))).toEqual(new Array(cols).fill(0));
  });
});

// ----------------------------------------------------------------------------------------- attention

/** Naive attention from the definition: materialize the masked score matrix, softmax it in float64. */
function referenceAttention(q: F32, k: F32, v: F32, p: AttentionParams): { out: number[]; lse: number[] } {
  const { batch, heads, tq, tk, dim, scale, causal, mask } = p;
  const out: number[] = [];
  const lse: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tq; i++) {
        const scores = Array.from({ length: tk }, (_, j) => {
          if (causal && j > i + (tk - tq)) return -Infinity;
          let s = 0;
          for (let d = 0; d < dim; d++) {
            s += q[((b * heads + h) * tq + i) * dim + d] * k[((b * heads + h) * tk + j) * dim + d];
          }
          s *= scale;
          if (mask) {
            const [s0, s1, s2, s3] = mask.strides;
            s += mask.data[mask.offset + b * s0 + h * s1 + i * s2 + j * s3];
          }
          return s;
        });
        const max = Math.max(...scores);
        if (max === -Infinity) {
          out.push(...new Array<number>(dim).fill(0));
          lse.push(-Infinity);
          continue;
        }
        const weights = scores.map((s) => Math.exp(s - max));
        const total = weights.reduce((s, w) => s + w, 0);
        lse.push(max + Math.log(total));
        for (let d = 0; d < dim; d++) {
          let acc = 0;
          for (let j = 0; j < tk; j++) acc += (weights[j] / total) * v[((b * heads + h) * tk + j) * dim + d];
          out.push(acc);
        }
      }
    }
  }
  return { out, lse };
}

describe('attention', () => {
  const [batch, heads, tq, tk, dim] = [2, 2, 3, 5, 4];
  const q = randomArray(batch * heads * tq * dim, 71, -1.5, 1.5);
  const k = randomArray(batch * heads * tk * dim, 72, -1.5, 1.5);
  const v = randomArray(batch * heads * tk * dim, 73);
  // A padding mask per batch item ([batch, 1, 1, tk] broadcast): batch 1 drops its last two keys,
  // plus a finite bias on key 0.
  const maskData = f32([0.5, 0, 0, 0, 0, 0.5, 0, 0, -Infinity, -Infinity]);
  const mask: Strided<F32> = { data: maskData, offset: 0, strides: [tk, 0, 0, 1] };
  const variants: [string, AttentionParams][] = [
    ['plain', { batch, heads, tq, tk, dim, scale: 1 / Math.sqrt(dim), causal: false }],
    ['causal (tq < tk, aligned to the end)', { batch, heads, tq, tk, dim, scale: 0.5, causal: true }],
    ['causal + padding mask', { batch, heads, tq, tk, dim, scale: 0.5, causal: true, mask }],
  ];

  for (const [name, p] of variants) {
    it(`${name}: matches the naive definition`, () => {
      const out = new Float32Array(q.length);
      const lse = new Float32Array(batch * heads * tq);
      B.attention(q, k, v, p, out, lse);
      const ref = referenceAttention(q, k, v, p);
      expectClose(out, ref.out, 1e-5, 1e-6);
      expectClose(lse, ref.lse, 1e-5, 1e-6);
    });

    it(`${name}: backward matches finite differences for q, k and v`, () => {
      const inputs = [q.slice(), k.slice(), v.slice()];
      const forward = ([qq, kk, vv]: Float32Array[]): Float32Array => {
        const out = new Float32Array(qq.length);
        B.attention(qq, kk, vv, p, out, new Float32Array(batch * heads * tq));
        return out;
      };
      const out = new Float32Array(q.length);
      const lse = new Float32Array(batch * heads * tq);
      B.attention(inputs[0], inputs[1], inputs[2], p, out, lse);
      const gOut = randomArray(out.length, 74);
      const gq = new Float32Array(q.length).fill(NaN);
      const gk = new Float32Array(k.length).fill(NaN);
      const gv = new Float32Array(v.length).fill(NaN);
      B.attentionBackward(inputs[0], inputs[1], inputs[2], out, lse, gOut, p, gq, gk, gv);
      expectClose(gq, numericGradient(forward, inputs, 0, gOut), 3e-3, 1e-3);
      expectClose(gk, numericGradient(forward, inputs, 1, gOut), 3e-3, 1e-3);
      expectClose(gv, numericGradient(forward, inputs, 2, gOut), 3e-3, 1e-3);
    });
  }

  it('a fully masked row gives output 0 and lse −Infinity, and no gradient', () => {
    const p: AttentionParams = {
      batch: 1, heads: 1, tq: 2, tk: 2, dim: 2, scale: 1, causal: false,
      mask: { data: f32([-Infinity, -Infinity, 0, -Infinity]), offset: 0, strides: [0, 0, 2, 1] },
    };
    const qq = f32([1, 2, 3, 4]);
    const kk = f32([1, 0, 0, 1]);
    const vv = f32([5, 6, 7, 8]);
    const out = new Float32Array(4).fill(NaN);
    const lse = new Float32Array(2);
    B.attention(qq, kk, vv, p, out, lse);
    expect(Array.from(out)).toEqual([0, 0, 5, 6]); // row 1 sees only key 0
    expect(lse[0]).toBe(-Infinity);
    expect(lse[1]).toBe(3);
    const gq = new Float32Array(4);
    const gk = new Float32Array(4);
    const gv = new Float32Array(4);
    B.attentionBackward(qq, kk, vv, out, lse, f32([1, 1, 1, 1]), p, gq, gk, gv);
    expect(Array.from(gq)).toEqual([0, 0, 0, 0]); // row 0 masked; row 1 has a single key (softmax = 1)
    expect(Array.from(gv)).toEqual([1, 1, 0, 0]);
  });

  it('causal with tq = tk is the lower triangle: the first query sees only the first key', () => {
    const p: AttentionParams = { batch: 1, heads: 1, tq: 3, tk: 3, dim: 1, scale: 1, causal: true };
    const out = new Float32Array(3);
    B.attention(f32([1, 1, 1]), f32([0, 0, 0]), f32([3, 6, 9]), p, out, new Float32Array(3));
    expect(Array.from(out)).toEqual([3, 4.5, 6]); // equal scores: running means of v
  });
});

// ----------------------------------------------------------------------------------------- topk, adamw

describe('topk', () => {
  it('sorts, keeps the lower index first on ties, and ranks NaN highest', () => {
    const x = f32([3, 1, 3, 2, 1, NaN, 5, 5, -1, 0]); // rows of 5
    const values = new Float32Array(6);
    const indices = new Int32Array(6);
    B.topk(x, 2, 5, 3, true, values, indices);
    expect(Array.from(indices)).toEqual([0, 2, 3, 0, 1, 2]);
    expect(Array.from(values.subarray(0, 3))).toEqual([3, 3, 2]);
    expect(Number.isNaN(values[3])).toBe(true);
    expect(Array.from(values.subarray(4))).toEqual([5, 5]);
    B.topk(x, 2, 5, 3, false, values, indices);
    expect(Array.from(indices)).toEqual([1, 4, 3, 3, 4, 1]);
    expect(Array.from(values)).toEqual([1, 1, 2, -1, 0, 5]);
    expect(() => B.topk(x, 2, 5, 6, true, values, indices)).toThrow(/topk: k = 6/);
  });
});

describe('adamw', () => {
  it('matches PyTorch AdamW written out by hand over three steps', () => {
    const p = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
    const param = f32([0.5, -1.5, 2]);
    const m = new Float32Array(3);
    const v = new Float32Array(3);
    const grads = [f32([0.1, -0.2, 0.3]), f32([-0.4, 0.5, 0.0]), f32([1.0, 0.25, -2])];
    // By hand, in float64.
    const P = [0.5, -1.5, 2];
    const M = [0, 0, 0];
    const V = [0, 0, 0];
    grads.forEach((g, s) => {
      const t = s + 1;
      for (let i = 0; i < 3; i++) {
        M[i] = 0.9 * M[i] + 0.1 * g[i];
        V[i] = 0.999 * V[i] + 0.001 * g[i] * g[i];
        P[i] -= 0.01 * 0.1 * P[i];
        P[i] -= (0.01 * (M[i] / (1 - 0.9 ** t))) / (Math.sqrt(V[i] / (1 - 0.999 ** t)) + 1e-8);
      }
      B.adamw(param, g, m, v, { ...p, step: t });
    });
    expectClose(param, P, 1e-6, 1e-7);
    expectClose(m, M, 1e-6, 1e-8);
    expectClose(v, V, 1e-6, 1e-10);
    // First step with zero decay moves each parameter by lr·sign(g) (bias correction makes |m̂|/√v̂ = 1).
    const q = f32([1, 1]);
    B.adamw(q, f32([3, -0.001]), new Float32Array(2), new Float32Array(2), { ...p, weightDecay: 0, eps: 0, step: 1 });
    expectClose(q, [0.99, 1.01], 1e-6, 0);
  });
});
