import { afterAll, describe, expect, it } from 'vitest';
import { type QuantFormat, QUANT_FORMATS, dequantizeMatrix, quantizeMatrix } from '../../../src/compress/quant/formats.js';
import { int8Gemm, quantAddon, quantMatmul, quantizeActivationsQ8 } from '../../../src/compress/quant/kernels.js';
import { nativeAddonExports } from '../../../src/tensor/backend/native.js';

const addon = quantAddon();
const control = nativeAddonExports() as { setKernelPath?: (p: string) => boolean; setNumThreads?: (n: number) => void; cpuInfo?: () => { kernelPath: string; threads: number } } | null;
const bestPath = control?.cpuInfo?.().kernelPath ?? 'portable';
const initialThreads = control?.cpuInfo?.().threads ?? 1;
afterAll(() => {
  control?.setKernelPath?.(bestPath);
  control?.setNumThreads?.(initialThreads);
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() + r() + r()) * scale;
  return out;
}

/** y = x · Wᵀ in float64, and Σ |x_p|·|w_p| per output (the scale of rounding error). */
function f64Matmul(x: Float32Array, w: Float32Array, m: number, n: number, k: number): { y: Float64Array; mag: Float64Array } {
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let a = 0;
      for (let p = 0; p < k; p++) {
        s += x[i * k + p]! * w[j * k + p]!;
        a += Math.abs(x[i * k + p]! * w[j * k + p]!);
      }
      y[i * n + j] = s;
      mag[i * n + j] = a;
    }
  }
  return { y, mag };
}

const kFor = (format: QuantFormat): number => (format === 'tq2' ? 512 : format === 'q4_g128' ? 384 : 96);
const paths = ['avx512', 'avx2', 'portable'].filter((p) => control?.setKernelPath?.(p) === true);
control?.setKernelPath?.(bestPath);

describe.skipIf(addon === null)('native quantized matmul', () => {
  for (const format of QUANT_FORMATS) {
    for (const path of paths) {
      it(`${format} on ${path}: equals the scalar _ref (same integers, f32 sums in another order)`, () => {
        control!.setKernelPath!(path);
        const [m, n, k] = [3, 37, kFor(format)];
        const w = randn(n * k, 1, 0.05);
        const x = randn(m * k, 2);
        const bias = randn(n, 3);
        const q = quantizeMatrix(w, n, k, format);
        const fast = quantMatmul(q, x, m, { bias });
        const ref = quantMatmul(q, x, m, { bias, ref: true });
        const { mag } = f64Matmul(quantizeActivationsQ8(x, m, k), dequantizeMatrix(q), m, n, k);
        // Each output sums k/32 block terms in f32 in a different order: ≤ (k/32 + 8)·2^-24·Σ|terms|.
        for (let i = 0; i < m * n; i++) expect(Math.abs(fast[i]! - ref[i]!)).toBeLessThanOrEqual(((k / 32 + 8) * 2 ** -24 * mag[i]!) * 4 + 1e-6);
        control!.setKernelPath!(bestPath);
      });
    }

    it(`${format}: _ref equals dequantize(W) · dequantize(Q8(x)) and is close to the f32 product`, () => {
      const [m, n, k] = [2, 9, kFor(format)];
      const w = randn(n * k, 4, 0.05);
      const x = randn(m * k, 5);
      const q = quantizeMatrix(w, n, k, format);
      const ref = quantMatmul(q, x, m, { ref: true });
      const xq = quantizeActivationsQ8(x, m, k);
      const wd = dequantizeMatrix(q);
      const exact = f64Matmul(xq, wd, m, n, k);
      // The same quantities in another form: only f32 rounding separates them.
      for (let i = 0; i < m * n; i++) expect(Math.abs(ref[i]! - exact.y[i]!)).toBeLessThanOrEqual((k / 32 + 8) * 2 ** -24 * exact.mag[i]! * 4 + 1e-6);
      // Against the unquantized activations: each activation moves by at most half its block's step
      // (amax/254), so |Δy_ij| ≤ Σ_p |w_p|·step_p/2 (+ rounding).
      const { y } = f64Matmul(x, wd, m, n, k);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let bound = 0;
          for (let b = 0; b < k / 32; b++) {
            let amax = 0;
            for (let t = 0; t < 32; t++) amax = Math.max(amax, Math.abs(x[i * k + b * 32 + t]!));
            for (let t = 0; t < 32; t++) bound += (Math.abs(wd[j * k + b * 32 + t]!) * amax) / 254;
          }
          expect(Math.abs(ref[i * n + j]! - y[i * n + j]!)).toBeLessThanOrEqual(bound * 1.001 + 1e-5);
        }
      }
    });

    it(`${format}: the TypeScript fallback computes the same values`, () => {
      const [m, n, k] = [1, 5, kFor(format)];
      const q = quantizeMatrix(randn(n * k, 6, 0.05), n, k, format);
      const x = randn(m * k, 7);
      const ref = quantMatmul(q, x, m, { ref: true });
      const js = quantMatmul(q, x, m, { js: true });
      const { mag } = f64Matmul(quantizeActivationsQ8(x, m, k), dequantizeMatrix(q), m, n, k);
      for (let i = 0; i < m * n; i++) expect(Math.abs(js[i]! - ref[i]!)).toBeLessThanOrEqual(k * 2 ** -23 * mag[i]! + 1e-6);
    });
  }

  it('thread count does not change a single bit (each output is computed whole by one thread)', () => {
    const [m, n, k] = [4, 301, 1024];
    const w = randn(n * k, 8, 0.05);
    const x = randn(m * k, 9);
    for (const format of QUANT_FORMATS) {
      const q = quantizeMatrix(w, n, k, format);
      control!.setNumThreads!(1);
      const one = quantMatmul(q, x, m);
      control!.setNumThreads!(2);
      const two = quantMatmul(q, x, m);
      control!.setNumThreads!(3);
      const three = quantMatmul(q, x, m);
      expect(two).toEqual(one);
      expect(three).toEqual(one);
    }
    control!.setNumThreads!(initialThreads);
  });

  it('k not a multiple of the block is a clear error; n and m may be anything', () => {
    expect(() => quantMatmul({ format: 'int8', rows: 2, cols: 40, data: new Uint8Array(80), rowScales: new Float32Array(2) }, new Float32Array(40), 1)).toThrow(
      /multiple of 32/,
    );
    expect(() => addon!.quantMatmul('q8_0', new Uint8Array(34), null, new Float32Array(40), null, new Float32Array(1), 1, 1, 40)).toThrow(/k \(the input width, 40\) must be a multiple of 32/);
    expect(() => addon!.quantMatmul('q4_0', new Uint8Array(17), null, new Float32Array(32), null, new Float32Array(1), 1, 1, 32)).toThrow(/'w' has 17 elements, expected n · bytes per row = 18/);
    expect(() => addon!.quantMatmul('q5', new Uint8Array(17), null, new Float32Array(32), null, new Float32Array(1), 1, 1, 32)).toThrow(/'format' must be one of/);
    const q = quantizeMatrix(randn(1 * 64, 10), 1, 64, 'q4_0');
    expect(quantMatmul(q, randn(64, 11), 1).length).toBe(1);
    expect(quantMatmul(q, new Float32Array(0), 0).length).toBe(0);
  });
});

describe.skipIf(addon?.quantRepack === undefined)('q4_0 repacked eight rows at a time (q4_0x8)', () => {
  it('the repacked bytes follow the documented order: per group and block, 8 scales then chunk u, byte 4r + e = row r byte 4u + e', () => {
    const [n, k] = [19, 96];
    const q = quantizeMatrix(randn(n * k, 20, 0.05), n, k, 'q4_0');
    const packed = addon!.quantRepack!('q4_0', q.data, n, k);
    const nb = k / 32;
    const want = new Uint8Array(Math.floor(n / 8) * nb * 144);
    for (let g = 0; g < Math.floor(n / 8); g++) {
      for (let b = 0; b < nb; b++) {
        const at = (g * nb + b) * 144;
        for (let r = 0; r < 8; r++) {
          const blk = (8 * g + r) * nb * 18 + b * 18;
          want[at + 2 * r] = q.data[blk]!;
          want[at + 2 * r + 1] = q.data[blk + 1]!;
          for (let u = 0; u < 4; u++) for (let e = 0; e < 4; e++) want[at + 16 + 32 * u + 4 * r + e] = q.data[blk + 2 + 4 * u + e]!;
        }
      }
    }
    expect(packed).toEqual(want);
  });

  for (const path of paths.filter((p) => p !== 'portable')) {
    it(`${path}: whole groups through the repacked kernel, the tail through the row kernel, both equal the scalar _ref`, () => {
      control!.setKernelPath!(path);
      for (const [m, n, k] of [
        [1, 8, 32],
        [1, 45, 2048],
        [5, 27, 160],
      ] as const) {
        const q = quantizeMatrix(randn(n * k, n + k, 0.05), n, k, 'q4_0');
        const x = randn(m * k, m + k);
        const packed = addon!.quantRepack!('q4_0', q.data, n, k);
        const viaPacked = new Float32Array(m * n);
        const viaRows = new Float32Array(m * n);
        const ref = new Float32Array(m * n);
        addon!.quantMatmul('q4_0', q.data, null, x, null, viaPacked, m, n, k, false, packed);
        addon!.quantMatmul('q4_0', q.data, null, x, null, viaRows, m, n, k, false, null);
        addon!.quantMatmul('q4_0', q.data, null, x, null, ref, m, n, k, true);
        const { mag } = f64Matmul(quantizeActivationsQ8(x, m, k), dequantizeMatrix(q), m, n, k);
        for (let i = 0; i < m * n; i++) {
          const tol = (k / 32 + 8) * 2 ** -24 * mag[i]! * 4 + 1e-6;
          expect(Math.abs(viaPacked[i]! - ref[i]!)).toBeLessThanOrEqual(tol);
          expect(Math.abs(viaRows[i]! - ref[i]!)).toBeLessThanOrEqual(tol);
        }
        // quantMatmul repacks q4_0 itself (cached per matrix) and must give the repacked kernel's bits.
        expect(quantMatmul(q, x, m)).toEqual(viaPacked);
      }
      control!.setKernelPath!(bestPath);
    });
  }

  it('refuses packed bytes of the wrong size or for another format, naming the argument', () => {
    const q = quantizeMatrix(randn(16 * 64, 21, 0.05), 16, 64, 'q4_0');
    const x = randn(64, 22);
    const y = new Float32Array(16);
    expect(() => addon!.quantMatmul('q4_0', q.data, null, x, null, y, 1, 16, 64, false, new Uint8Array(10))).toThrow(/'packed' has 10 elements/);
    const q8 = quantizeMatrix(randn(16 * 64, 23, 0.05), 16, 64, 'q8_0');
    expect(() => addon!.quantMatmul('q8_0', q8.data, null, x, null, y, 1, 16, 64, false, new Uint8Array(288))).toThrow(/q4_0 weights only/);
    expect(() => addon!.quantRepack!('q8_0', q8.data, 16, 64)).toThrow(/only q4_0/);
    expect(() => addon!.quantRepack!('q4_0', q.data, 15, 64)).toThrow(/'w' has/);
  });
});

describe.skipIf(addon === null)('native W8A8 INT8 GEMM', () => {
  for (const path of paths) {
    it(`${path}: bit-identical to the scalar _ref (exact int32 sums, same float ops)`, () => {
      control!.setKernelPath!(path);
      for (const [m, n, k] of [
        [1, 5, 7],
        [7, 65, 130],
        [13, 130, 256],
        [6, 64, 33],
      ] as const) {
        const q = quantizeMatrix(randn(n * k, m + n, 0.05), n, k, 'int8');
        const x = randn(m * k, k);
        const bias = randn(n, 12);
        expect(int8Gemm(q, x, m, { bias })).toEqual(int8Gemm(q, x, m, { bias, ref: true }));
      }
      control!.setKernelPath!(bestPath);
    });
  }

  it('is close to the f32 product: per-token activation steps bound the error', () => {
    const [m, n, k] = [5, 33, 200];
    const q = quantizeMatrix(randn(n * k, 13, 0.05), n, k, 'int8');
    const wd = dequantizeMatrix(q);
    const x = randn(m * k, 14);
    const y = int8Gemm(q, x, m);
    const exact = f64Matmul(x, wd, m, n, k).y;
    for (let i = 0; i < m; i++) {
      let amax = 0;
      for (let p = 0; p < k; p++) amax = Math.max(amax, Math.abs(x[i * k + p]!));
      for (let j = 0; j < n; j++) {
        let bound = 0;
        for (let p = 0; p < k; p++) bound += (Math.abs(wd[j * k + p]!) * amax) / 254;
        expect(Math.abs(y[i * n + j]! - exact[i * n + j]!)).toBeLessThanOrEqual(bound * 1.001 + 1e-5);
      }
    }
    expect(int8Gemm(q, x, m, { js: true }).every((v, i) => Math.abs(v - y[i]!) <= 1e-4 * (1 + Math.abs(y[i]!)))).toBe(true);
  });

  it('refuses non-int8 weights with the way out', () => {
    expect(() => int8Gemm(quantizeMatrix(new Float32Array(32), 1, 32, 'q8_0'), new Float32Array(32), 1)).toThrow(/quantize with format 'int8'/);
  });
});

describe.skipIf(addon === null)('activation quantization', () => {
  it('SIMD and scalar Q8 blocks equal the TypeScript reference bit for bit (ties round away from zero)', () => {
    const k = 256;
    const x = randn(3 * k, 15);
    // Exact ties after scaling: amax 127 makes d = 1, so 0.5, −2.5, … are halves.
    x[0] = 127;
    x[1] = 0.5;
    x[2] = -2.5;
    x[3] = 1.5;
    x[4] = -0.5;
    const js = quantizeActivationsQ8(x, 3, k);
    for (const scalar of [false, true]) {
      const { q, d } = addon!.quantizeActQ8(x, 3, k, scalar);
      const deq = new Float32Array(3 * k);
      for (let i = 0; i < deq.length; i++) deq[i] = Math.fround(q[i]! * d[Math.floor(i / 32)]!);
      expect(deq).toEqual(js);
      expect(Array.from(q.subarray(0, 5))).toEqual([127, 1, -3, 2, -1]);
    }
  });
});
