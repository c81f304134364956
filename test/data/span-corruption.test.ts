/**
 * T5 span corruption: the noise mask has exactly T5's counts (round(L·0.15) noise tokens, round(noise/3)
 * spans, first token kept) for every length; span lengths follow the uniform random composition the
 * reference's shuffled segmentation produces (exact distribution, checked empirically); sentinels
 * are placed as in the paper's example and inputs + targets reconstruct the text; random_spans_helper's
 * lengths (512 → 568 tokens / 114 targets) make corrupted inputs exactly the requested length.
 */
import { describe, expect, it } from 'vitest';
import {
  applyNoiseMask,
  noiseCounts,
  randomSpansNoiseMask,
  roundHalfEven,
  spanCorruption,
  spanCorruptionLengths,
  t5SentinelId,
  textToText,
} from '../../src/data/objectives/span-corruption.js';
import { Generator } from '../../src/tensor/random.js';

function spans(mask: Uint8Array, value: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== value) continue;
    if (i === 0 || mask[i - 1] !== value) out.push(0);
    out[out.length - 1]! += 1;
  }
  return out;
}

function binom(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

describe('randomSpansNoiseMask', () => {
  it('rounds half to even like NumPy', () => {
    expect([0.5, 1.5, 2.5, -0.5, 2.4, 2.6, 3].map(roundHalfEven)).toEqual([0, 2, 2, -0, 2, 3, 3]);
  });

  it('has exactly T5’s noise and span counts for every length, never noise at position 0', () => {
    const g = new Generator(1);
    for (let L = 2; L <= 300; L++) {
      const mask = randomSpansNoiseMask(L, { generator: g });
      const { noiseTokens, noiseSpans } = noiseCounts(L);
      expect(noiseTokens).toBe(Math.min(Math.max(roundHalfEven(L * 0.15), 1), L - 1));
      expect(mask.reduce((a, b) => a + b, 0), `L=${L}`).toBe(noiseTokens);
      expect(spans(mask, 1).length, `L=${L}`).toBe(noiseSpans);
      expect(mask[0]).toBe(0);
    }
    // The density and mean span length T5 uses, at its 568-token pre-training length.
    expect(noiseCounts(568)).toEqual({ noiseTokens: 85, noiseSpans: 28 });
  });

  it('span lengths follow the uniform random composition (noise and kept segments)', () => {
    // L = 100: 15 noise tokens in 5 spans, 85 kept tokens in 5 segments. For a uniform composition of
    // n into k parts, P(a part has length j) = C(n−j−1, k−2) / C(n−1, k−1).
    const g = new Generator(2);
    const samples = 3000;
    const noiseHist = new Float64Array(16);
    const keepFirst: number[] = [];
    for (let s = 0; s < samples; s++) {
      const mask = randomSpansNoiseMask(100, { generator: g });
      for (const len of spans(mask, 1)) noiseHist[len]! += 1;
      keepFirst.push(spans(mask, 0)[0]!);
    }
    const total = samples * 5;
    for (let j = 1; j <= 6; j++) {
      const p = binom(15 - j - 1, 3) / binom(14, 4);
      const sd = Math.sqrt((p * (1 - p)) / total);
      expect(Math.abs(noiseHist[j]! / total - p), `P(noise span = ${j})`).toBeLessThan(5 * sd + 1e-3);
    }
    const meanSpan = noiseHist.reduce((a, c, j) => a + c * j, 0) / total;
    expect(meanSpan).toBeCloseTo(3, 10); // 15 / 5 exactly
    // Kept segments: mean 85/5 = 17; the first segment's mean too (exchangeable parts).
    const meanFirst = keepFirst.reduce((a, b) => a + b, 0) / samples;
    expect(Math.abs(meanFirst - 17)).toBeLessThan(0.6);
  });

  it('the corrupted fraction and mean span length match density 0.15 and mean 3 over lengths', () => {
    const g = new Generator(3);
    let noise = 0;
    let tokens = 0;
    let nSpans = 0;
    for (let s = 0; s < 200; s++) {
      const L = 200 + g.int(0, 400);
      const mask = randomSpansNoiseMask(L, { generator: g });
      noise += mask.reduce((a, b) => a + b, 0);
      tokens += L;
      nSpans += spans(mask, 1).length;
    }
    expect(Math.abs(noise / tokens - 0.15)).toBeLessThan(0.002);
    expect(Math.abs(noise / nSpans - 3)).toBeLessThan(0.1);
  });

  it('rejects bad arguments with the function name', () => {
    expect(() => randomSpansNoiseMask(1)).toThrow(/randomSpansNoiseMask: length/);
    expect(() => randomSpansNoiseMask(10, { noiseDensity: 1.5 })).toThrow(/noiseDensity/);
  });
});

describe('sentinels and targets', () => {
  it('reproduces the paper’s example', () => {
    const words = 'Thank you for inviting me to your party last week .'.split(' ');
    const vocab = [...words, '</s>', '<extra_id_1>', '<extra_id_0>'];
    const id = (w: string): number => vocab.indexOf(w);
    const mask = [0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0];
    const ex = applyNoiseMask(words.map(id), mask, { sentinelId: t5SentinelId(vocab.length), eosId: id('</s>') });
    expect(ex.inputs.map((i) => vocab[i]).join(' ')).toBe('Thank you <extra_id_0> me to your party <extra_id_1> week . </s>');
    expect(ex.targets.map((i) => vocab[i]).join(' ')).toBe('<extra_id_0> for inviting <extra_id_1> last </s>');
  });

  it('inputs and targets together give back the tokens; sentinels count up in order', () => {
    const g = new Generator(4);
    const V = 1000;
    const sentinel = t5SentinelId(V);
    for (let s = 0; s < 50; s++) {
      const L = 20 + g.int(0, 200);
      const tokens = Array.from({ length: L }, () => g.int(2, 900));
      const { inputs, targets } = spanCorruption(tokens, { sentinelId: sentinel }, { generator: g });
      const isSentinel = (t: number): boolean => t > V - 1 - 100;
      const inSent = inputs.filter(isSentinel);
      expect(inSent).toEqual(inSent.map((_, i) => sentinel(i)));
      expect(targets.filter(isSentinel)).toEqual(inSent);
      expect(isSentinel(targets[0]!)).toBe(true);
      // Re-insert each target span at its sentinel.
      const spansOf = new Map<number, number[]>();
      let cur = -1;
      for (const t of targets) {
        if (isSentinel(t)) spansOf.set((cur = t), []);
        else spansOf.get(cur)!.push(t);
      }
      expect(inputs.flatMap((t) => (isSentinel(t) ? spansOf.get(t)! : [t]))).toEqual(tokens);
    }
  });

  it('random_spans_helper lengths make inputs exactly the requested length', () => {
    expect(spanCorruptionLengths(512)).toEqual({ tokensLength: 568, targetsLength: 114 });
    const g = new Generator(5);
    for (const inputsLength of [16, 33, 64, 128, 512]) {
      const { tokensLength, targetsLength } = spanCorruptionLengths(inputsLength);
      const tokens = Array.from({ length: tokensLength }, (_, i) => 2 + (i % 50));
      const ex = spanCorruption(tokens, { sentinelId: t5SentinelId(100), eosId: 1 }, { generator: g });
      expect(ex.inputs.length).toBe(inputsLength);
      expect(ex.targets.length).toBe(targetsLength);
    }
  });

  it('formats text-to-text tasks with a prefix', () => {
    expect(textToText('translate English to French', 'The house is wonderful.')).toBe('translate English to French: The house is wonderful.');
  });
});
