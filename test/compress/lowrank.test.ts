/**
 * Truncated SVD against numpy.linalg.svd (scripts/fixtures/compress_svd.py): singular values, the
 * Eckart–Young error of every rank-k reconstruction, orthonormal factors; and the factorised model
 * computes B(Ax) and saves/loads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { factorizeModel, loadLowRankLlama, lowRankFactors, LowRankLinear, rankForEnergy, saveLowRankLlama, svd } from '../../src/compress/lowrank.js';
import { Llama } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { f32FromBase64, readFixture } from './fixtures.js';

interface SVDCase {
  name: string;
  rows: number;
  cols: number;
  a: string;
  singularValues: number[];
  bestErrorByRank: number[];
}
const fx = readFixture<{ cases: SVDCase[] }>('svd.json');

describe('svd (one-sided Jacobi) against numpy', () => {
  for (const c of fx.cases) {
    it(c.name, () => {
      const a = f32FromBase64(c.a);
      const res = svd(a, c.rows, c.cols);
      const r = Math.min(c.rows, c.cols);
      expect(res.s.length).toBe(r);
      const s0 = c.singularValues[0]!;
      c.singularValues.forEach((s, i) => expect(Math.abs(res.s[i]! - s)).toBeLessThan(1e-9 * s0 + 1e-12));
      // Orthonormal columns of U and V where σ > 0.
      const nonzero = c.singularValues.filter((s) => s > 1e-9 * s0).length;
      for (const [mat, n] of [[res.u, c.rows], [res.v, c.cols]] as const) {
        for (let i = 0; i < nonzero; i++) {
          for (let j = 0; j <= i; j++) {
            let dot = 0;
            for (let k = 0; k < n; k++) dot += mat[k * r + i]! * mat[k * r + j]!;
            expect(Math.abs(dot - (i === j ? 1 : 0))).toBeLessThan(1e-8);
          }
        }
      }
      // Every truncation reaches the best possible error.
      for (const k of [1, 2, Math.max(1, Math.floor(r / 2)), r]) {
        const { a: A, b: B } = lowRankFactors(res, k);
        let err = 0;
        for (let i = 0; i < c.rows; i++) {
          for (let j = 0; j < c.cols; j++) {
            let v = 0;
            for (let t = 0; t < k; t++) v += B[i * k + t]! * A[t * c.cols + j]!;
            err += (a[i * c.cols + j]! - v) ** 2;
          }
        }
        expect(Math.sqrt(err)).toBeCloseTo(c.bestErrorByRank[k]!, 4);
      }
    });
  }

  it('picks the smallest rank that keeps the requested energy', () => {
    const s = new Float64Array([3, 2, 1, 0.5]);
    // σ² = 9, 4, 1, 0.25 of 14.25
    expect(rankForEnergy(s, 0.6)).toBe(1);
    expect(rankForEnergy(s, 0.9)).toBe(2);
    expect(rankForEnergy(s, 0.99)).toBe(4);
    expect(rankForEnergy(s, 1)).toBe(4);
    expect(() => rankForEnergy(s, 0)).toThrow(/energy/);
  });
});

describe('factorised LLaMA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-lowrank-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const config = { vocabSize: 40, hiddenSize: 32, intermediateSize: 96, nLayer: 2, nHead: 4, maxPositionEmbeddings: 16, tieWordEmbeddings: true };

  it('leaves layers alone where factors would not be smaller; lower rank shrinks the model; save and load round-trip', async () => {
    const model = new Llama(config, { generator: new Generator(3) });
    const ids = Tensor.fromArray(Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 40), [2, 8], 'i32');
    const ref = model.logits(ids).f32().slice();
    const full = new Llama(config, { generator: new Generator(3) });
    // Rank 32 of [96, 32] is exact but saves nothing: left alone, the model unchanged.
    expect(factorizeModel(full, { rank: 32, include: /mlp\.(gate|up)_proj$/ }).every((r) => r.rank === null)).toBe(true);
    expect(full.logits(ids).f32()).toEqual(ref);
    const exact = new Llama(config, { generator: new Generator(3) });
    const rep = factorizeModel(exact, { energy: 1, include: /self_attn\.q_proj$/ });
    expect(rep.every((r) => r.rank === null)).toBe(true); // 32×32 at full rank saves nothing
    const small = new Llama(config, { generator: new Generator(3) });
    const reports = factorizeModel(small, { rank: 4 });
    expect(reports.filter((r) => r.rank === 4).length).toBe(2 * 7);
    expect(small.numParameters()).toBeLessThan(model.numParameters());
    const q = small.model.layers.items[0]!.self_attn.q_proj as unknown as LowRankLinear;
    expect(q).toBeInstanceOf(LowRankLinear);
    expect(q.a.weight.shape).toEqual([4, 32]);
    const out = small.logits(ids).f32().slice();
    expect(out.some((v, i) => Math.abs(v - ref[i]!) > 1e-6)).toBe(true);
    const ranks = Object.fromEntries(reports.filter((r) => r.rank !== null).map((r) => [r.name, r.rank!]));
    await saveLowRankLlama(small, dir, ranks);
    const loaded = await loadLowRankLlama(dir);
    const again = loaded.logits(ids).f32();
    again.forEach((v, i) => expect(v).toBeCloseTo(out[i]!, 5));
    // Greedy decoding through the KV-cache path works on the factorised layers too.
    expect(loaded.generate([1, 2, 3], { maxNewTokens: 4, temperature: 0 })).toEqual(small.generate([1, 2, 3], { maxNewTokens: 4, temperature: 0 }));
  });
});
