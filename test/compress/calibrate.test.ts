/**
 * Activation calibration: TensorRT's entropy (KL) calibration against the numpy reference in
 * scripts/fixtures/compress_kl.py (every candidate's divergence, the chosen bin count and threshold),
 * percentile and min–max observers, and input capture through wrapped Linear layers.
 */
import { describe, expect, it } from 'vitest';
import { ActivationStats, activationThreshold, collectActivationStats, collectLinearInputs, findLinears, klThreshold, percentileThreshold, perplexity } from '../../src/compress/calibrate.js';
import { Llama } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { readFixture } from './fixtures.js';

interface KLFixture {
  hist: number[];
  binWidth: number;
  numQuantizedBins: number;
  divergences: number[];
  bestBins: number;
  threshold: number;
}

describe('KL (entropy) calibration vs the numpy reference', () => {
  const fx = readFixture<KLFixture>('kl.json');
  const res = klThreshold(fx.hist, fx.binWidth, fx.numQuantizedBins);
  it('matches every candidate divergence', () => {
    expect(res.divergences.length).toBe(fx.divergences.length);
    fx.divergences.forEach((d, i) => expect(Math.abs(res.divergences[i]! - d)).toBeLessThan(1e-9 + 1e-9 * Math.abs(d)));
  });
  it('chooses the same threshold, well inside the outliers', () => {
    expect(res.bins).toBe(fx.bestBins);
    expect(res.threshold).toBeCloseTo(fx.threshold, 9);
    expect(res.threshold).toBeLessThan(fx.binWidth * 2048 * 0.5);
  });
});

describe('observers', () => {
  it('percentile is the nearest-rank value', () => {
    const v = Float32Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentileThreshold(v, 99)).toBe(990);
    expect(percentileThreshold(v, 100)).toBe(1000);
    expect(() => percentileThreshold(v, 0)).toThrow(/pct/);
  });
  it('min–max, percentile and KL thresholds order as expected on outlier-heavy data', () => {
    const g = new Generator(1);
    const stats = new ActivationStats(4);
    const x = new Float32Array(4 * 20000);
    for (let i = 0; i < x.length; i++) x[i] = g.normal() * (i % 4 === 0 ? 3 : 1);
    x[17] = 80;
    x[403] = -60;
    stats.observe(x, 20000, 4);
    expect(stats.absMax[1]).toBe(80);
    expect(stats.absMax[3]).toBe(60);
    const mm = activationThreshold(stats, 'minmax');
    const pct = activationThreshold(stats, 'percentile', { percentile: 99.99 });
    const kl = activationThreshold(stats, 'kl');
    expect(mm).toBe(80);
    expect(pct).toBeLessThan(mm);
    expect(kl).toBeLessThan(mm / 2);
    expect(kl).toBeGreaterThan(2);
  });
});

describe('capturing Linear inputs', () => {
  const model = new Llama({ vocabSize: 30, hiddenSize: 16, intermediateSize: 32, nLayer: 2, nHead: 2, maxPositionEmbeddings: 8, tieWordEmbeddings: true }, { generator: new Generator(5) });
  const ids = Tensor.fromArray(Int32Array.from({ length: 16 }, (_, i) => i % 30), [2, 8], 'i32');
  it('sees every token row of every layer and restores the layers after', () => {
    const layers = findLinears(model);
    expect(layers.map(([n]) => n)).toContain('model.layers.1.mlp.down_proj');
    expect(layers.length).toBe(14);
    const before = model.logits(ids).f32().slice();
    const stats = collectActivationStats(model, layers, [ids]);
    expect(stats.get('model.layers.0.mlp.down_proj')!.rows).toBe(16);
    expect(stats.get('model.layers.0.mlp.down_proj')!.channels).toBe(32);
    const inputs = collectLinearInputs(model, layers.slice(0, 1), [ids, ids], 20);
    expect(inputs.get('model.layers.0.self_attn.q_proj')!.rows).toBe(20);
    for (const [, l] of layers) expect(Object.prototype.hasOwnProperty.call(l, 'forward')).toBe(false);
    expect(model.logits(ids).f32()).toEqual(before);
  });
  it('perplexity of a random model is near the vocabulary size', () => {
    const stream = Int32Array.from({ length: 200 }, (_, i) => (i * 7) % 30);
    const ppl = perplexity(model, stream, 8);
    expect(ppl).toBeGreaterThan(20);
    expect(ppl).toBeLessThan(45);
  });
});
