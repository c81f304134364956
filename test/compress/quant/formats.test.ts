import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  QUANT_FORMATS,
  blockBytes,
  dequantizeMatrix,
  groupSize,
  isAsymmetric,
  packQuantized,
  quantizeMatrix,
  quantizedByteLength,
  type QuantFormat,
} from '../../../src/compress/quant/formats.js';
import { dequantizeGGUF } from '../../../src/io/gguf-tensors.js';
import type { GGUFTensorInfo } from '../../../src/io/gguf.js';
import { f16BitsToF32 } from '../../../src/tensor/backend/f16.js';

interface Fixture {
  rows: number;
  cols: number;
  weights: string;
  cases: { format: QuantFormat; quantized: string; dequantized: string }[];
}
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/quant/gguf_blocks.json', import.meta.url), 'utf8')) as Fixture;
const bytesOf = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
const f32Of = (b64: string): Float32Array => {
  const b = bytesOf(b64);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
};

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.2;
  }
  return out;
}

describe('quant formats: block sizes', () => {
  it('match GGUF (Q8_0 34, Q4_0 18, Q4_1 20, TQ2_0 66 bytes) and the documented groups', () => {
    expect([blockBytes('q8_0'), blockBytes('q4_0'), blockBytes('q4_1'), blockBytes('q4_g128'), blockBytes('tq2')]).toEqual([34, 18, 20, 68, 66]);
    expect([groupSize('q8_0'), groupSize('q4_0'), groupSize('q4_1'), groupSize('q4_g128'), groupSize('tq2'), groupSize('int8', 96)]).toEqual([32, 32, 32, 128, 256, 96]);
    expect(quantizedByteLength('q4_0', 3, 64)).toBe(3 * 2 * 18);
    expect(() => blockBytes('int8')).toThrow(/per-row/);
  });
});

describe('quant formats: llama.cpp reference (gguf-py fixture)', () => {
  const w = f32Of(fixture.weights);
  for (const c of fixture.cases) {
    it(`${c.format}: we read gguf-py's bytes as it does`, () => {
      const q = { format: c.format, rows: fixture.rows, cols: fixture.cols, data: bytesOf(c.quantized) };
      expect(dequantizeMatrix(q)).toEqual(f32Of(c.dequantized));
    });
    if (c.format !== 'tq2') {
      // tq2 quantizes with BitNet's absmean scale, ggml's TQ2_0 reference with amax: same layout, other codes.
      it(`${c.format}: our round-to-nearest bytes equal ggml's quantize_row_${c.format}_ref`, () => {
        const q = quantizeMatrix(w, fixture.rows, fixture.cols, c.format);
        expect(Buffer.from(q.data).equals(Buffer.from(bytesOf(c.quantized)))).toBe(true);
      });
    }
  }
});

describe('quant formats: cross-check with src/io/gguf-tensors dequantizers', () => {
  const types: [QuantFormat, string, number][] = [
    ['q8_0', 'Q8_0', 34],
    ['q4_0', 'Q4_0', 18],
    ['q4_1', 'Q4_1', 20],
  ];
  for (const [format, typeName, bb] of types) {
    it(`${format}`, () => {
      const rows = 5;
      const cols = 96;
      const q = quantizeMatrix(randomMatrix(rows, cols, 7), rows, cols, format);
      const info: GGUFTensorInfo = { name: 'w', dims: [cols, rows], type: 0, typeName, offset: 0, byteSize: (rows * cols * bb) / 32 };
      expect(q.data.length).toBe(info.byteSize);
      expect(dequantizeGGUF(info, q.data)).toEqual(dequantizeMatrix(q));
    });
  }
});

describe('quant formats: round trips', () => {
  // Worst-case error bounds: half a quantization step (q8_0/int8: d/2 with d = amax/127; q4_1: d/2
  // with d = range/15), plus the f16 rounding of d (2^-11 relative, times |q| ≤ 127). q4_0's codes
  // span −8d…7d with d = amax/8 signed toward the largest magnitude, so the other side saturates at
  // 7d: its bound is a whole step d.
  const bound: Record<QuantFormat, (amax: number) => number> = {
    q8_0: (a) => a / 127 / 2 + a * 2 ** -10,
    int8: (a) => a / 127 / 2 + 1e-7,
    q4_0: (a) => a / 8 + a * 2 ** -9,
    q4_1: (a) => (2 * a) / 15 / 2 + a * 2 ** -9,
    q4_g128: (a) => (2 * a) / 15 / 2 + a * 2 ** -9,
    tq2: () => Infinity,
  };
  for (const format of QUANT_FORMATS) {
    it(`${format}: dequantize(quantize(w)) within half a step`, () => {
      const rows = 3;
      const cols = 512;
      const w = randomMatrix(rows, cols, 11);
      const d = dequantizeMatrix(quantizeMatrix(w, rows, cols, format));
      const amax = 0.1;
      let worst = 0;
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(d[i]! - w[i]!));
      if (format === 'tq2') {
        // Ternary keeps signs: every weight maps to −d, 0 or d with d = mean |w| of its block.
        const vals = new Set(Array.from(d.subarray(0, 256), (x) => Math.abs(x)));
        expect(vals.size).toBeLessThanOrEqual(2);
      } else {
        expect(worst).toBeLessThanOrEqual(bound[format](amax));
        expect(worst).toBeGreaterThan(0);
      }
    });
  }

  it('packQuantized(unpacked codes and params) gives back the same bytes, every format', () => {
    const rows = 2;
    const cols = 256;
    const w = randomMatrix(rows, cols, 3);
    const half = (b: Uint8Array, at: number): number => f16BitsToF32(b[at]! | (b[at + 1]! << 8));
    for (const format of QUANT_FORMATS) {
      const q = quantizeMatrix(w, rows, cols, format);
      const g = groupSize(format, cols);
      const nG = (rows * cols) / g;
      const scales = new Float32Array(nG);
      const mins = new Float32Array(nG);
      const codes = format.startsWith('q4') ? new Uint8Array(rows * cols) : new Int8Array(rows * cols);
      for (let b = 0; b < nG; b++) {
        if (format === 'int8') {
          scales[b] = q.rowScales![b]!;
          for (let j = 0; j < g; j++) codes[b * g + j] = (q.data[b * g + j]! << 24) >> 24;
        } else if (format === 'q8_0') {
          scales[b] = half(q.data, b * 34);
          for (let j = 0; j < 32; j++) codes[b * 32 + j] = (q.data[b * 34 + 2 + j]! << 24) >> 24;
        } else if (format === 'tq2') {
          scales[b] = half(q.data, b * 66 + 64);
          // Decode through dequantize: code = value / d.
          const deq = dequantizeMatrix(q);
          for (let j = 0; j < 256; j++) codes[b * 256 + j] = scales[b] === 0 ? 0 : Math.round(deq[b * 256 + j]! / scales[b]!);
        } else {
          const bb = blockBytes(format);
          const head = format === 'q4_0' ? 2 : 4;
          scales[b] = half(q.data, b * bb);
          if (head === 4) mins[b] = half(q.data, b * bb + 2);
          for (let j = 0; j < g / 2; j++) {
            const byte = q.data[b * bb + head + j]!;
            codes[b * g + j] = byte & 15;
            codes[b * g + g / 2 + j] = byte >> 4;
          }
        }
      }
      const p = packQuantized(format, rows, cols, codes, scales, isAsymmetric(format) ? mins : undefined);
      expect(Buffer.from(p.data).equals(Buffer.from(q.data))).toBe(true);
      expect(p.rowScales).toEqual(q.rowScales);
    }
  });

  it('refuses bad input with errors that say what to do', () => {
    expect(() => quantizeMatrix(new Float32Array(40), 1, 40, 'q8_0')).toThrow(/multiple of its block size 32/);
    expect(() => quantizeMatrix(new Float32Array(40), 1, 40, 'int8')).not.toThrow();
    expect(() => quantizeMatrix(new Float32Array(32), 2, 32, 'q4_0')).toThrow(/expected rows·cols/);
    expect(() => quantizeMatrix(Float32Array.of(...new Array<number>(31).fill(0), NaN), 1, 32, 'q4_0')).toThrow(/finite/);
    expect(() => packQuantized('q4_0', 1, 32, new Uint8Array(32).fill(16), new Float32Array(1))).toThrow(/outside \[0, 15\]/);
    expect(() => packQuantized('q4_1', 1, 32, new Uint8Array(32), new Float32Array(1))).toThrow(/needs 1 mins/);
    expect(() => packQuantized('q8_0', 1, 32, new Int8Array(32), new Float32Array(2))).toThrow(/needs 1 scales/);
    expect(() => quantizeMatrix(new Float32Array(32), 1, 32, 'q3' as QuantFormat)).toThrow(/unknown format/);
  });
});
