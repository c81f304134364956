/**
 * GPTQ against the transcription of the authors' fasterquant in scripts/fixtures/compress_gptq.py:
 * the same W, calibration X and options must give the same codes and (scale, zero) per group,
 * apart from rounding ties (float64 on both sides, so at most a handful of codes may differ by one).
 */
import { describe, expect, it } from 'vitest';
import { HessianAccumulator, gptqGridFor, gptqMatrix, gptqQuantize } from '../../src/compress/gptq.js';
import { dequantizeMatrix, quantizeMatrix } from '../../src/compress/quant/formats.js';
import { f32FromBase64, i8FromBase64, readFixture } from './fixtures.js';

interface GPTQCase {
  name: string;
  bits: number;
  blockSize: number;
  groupSize: number;
  actOrder: boolean;
  codes: string;
  scales: number[];
  zeros: number[];
  outputError: number;
}
interface GPTQFixture {
  rows: number;
  cols: number;
  n: number;
  W: string;
  X: string;
  hDiagonal: number[];
  cases: GPTQCase[];
}

const fx = readFixture<GPTQFixture>('gptq.json');
const W = f32FromBase64(fx.W);
const X = f32FromBase64(fx.X);

function hessian(): HessianAccumulator {
  const acc = new HessianAccumulator(fx.cols);
  // The fixture accumulated in chunks of 64 rows (add_batch's running average); so do we.
  for (let r = 0; r < fx.n; r += 64) acc.add(X.subarray(r * fx.cols, Math.min(fx.n, r + 64) * fx.cols), Math.min(64, fx.n - r));
  return acc;
}

/** ‖X (W − Q)ᵀ‖²_F. */
function outputError(q: Float32Array): number {
  let total = 0;
  for (let t = 0; t < fx.n; t++) {
    for (let r = 0; r < fx.rows; r++) {
      let s = 0;
      for (let c = 0; c < fx.cols; c++) s += X[t * fx.cols + c]! * (W[r * fx.cols + c]! - q[r * fx.cols + c]!);
      total += s * s;
    }
  }
  return total;
}

describe('GPTQ parity with the reference fasterquant', () => {
  const acc = hessian();
  it('accumulates H = 2/N Σ x xᵀ', () => {
    fx.hDiagonal.forEach((v, j) => expect(acc.h[j * fx.cols + j]).toBeCloseTo(v, 6));
    expect(acc.n).toBe(fx.n);
  });

  for (const c of fx.cases) {
    it(c.name, () => {
      const grid = { maxq: 2 ** c.bits - 1, symmetric: false, groupSize: c.groupSize, paramRounding: 'none' as const };
      const res = gptqQuantize(W, fx.rows, fx.cols, acc.h, grid, { blockSize: c.blockSize, actOrder: c.actOrder });
      const want = i8FromBase64(c.codes);
      let mismatches = 0;
      for (let i = 0; i < want.length; i++) {
        const diff = Math.abs(res.codes[i]! - want[i]!);
        expect(diff).toBeLessThanOrEqual(1);
        if (diff !== 0) mismatches++;
      }
      expect(mismatches).toBeLessThanOrEqual(2);
      const nGroups = c.groupSize === -1 ? 1 : fx.cols / c.groupSize;
      expect(res.scales.length).toBe(fx.rows * nGroups);
      res.scales.forEach((s, i) => expect(s).toBeCloseTo(c.scales[i]!, 9));
      res.zeros.forEach((z, i) => expect(z).toBe(c.zeros[i]));
      expect(outputError(res.dequantized)).toBeCloseTo(c.outputError, 2);
    });
  }

  it('beats round-to-nearest on the layer output for every packed format', () => {
    for (const format of ['q4_0', 'q4_1', 'q8_0', 'int8'] as const) {
      const gptq = dequantizeMatrix(gptqMatrix(W, fx.rows, fx.cols, acc.h, format));
      const rtn = dequantizeMatrix(quantizeMatrix(W, fx.rows, fx.cols, format));
      expect(outputError(gptq), format).toBeLessThan(outputError(rtn));
    }
  });

  it('packs values the error feedback saw (f16 scales applied before quantizing)', () => {
    const res = gptqQuantize(W, fx.rows, fx.cols, acc.h, gptqGridFor('q4_1', fx.cols));
    const packed = dequantizeMatrix(gptqMatrix(W, fx.rows, fx.cols, acc.h, 'q4_1'));
    for (let i = 0; i < packed.length; i++) expect(packed[i]).toBeCloseTo(res.dequantized[i]!, 3);
  });
});
