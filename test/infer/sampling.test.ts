/**
 * Sampling: greedy, temperature, top-k (never outside the k best), top-p (the smallest prefix reaching
 * the mass), empirical frequencies against the intended distribution, and seeding.
 */
import { describe, expect, it } from 'vitest';
import { argmax, candidateDistribution, sampleNext } from '../../src/infer/index.js';
import { Generator } from '../../src/tensor/index.js';

const logits = Float32Array.from([0.5, 2.0, -1.0, 1.5, 2.0, 0.0, -3.0, 1.0]);

function softmax(xs: ArrayLike<number>, temperature = 1): number[] {
  const a = Array.from(xs, (v) => v / temperature);
  const m = Math.max(...a);
  const e = a.map((v) => Math.exp(v - m));
  const s = e.reduce((x, y) => x + y, 0);
  return e.map((v) => v / s);
}

function frequencies(n: number, draw: () => number, size: number): number[] {
  const counts = new Array<number>(size).fill(0);
  for (let i = 0; i < n; i++) counts[draw()]!++;
  return counts.map((c) => c / n);
}

describe('sampling', () => {
  it('temperature 0 is greedy: argmax, lowest id on ties, no randomness used', () => {
    const g = new Generator(1);
    const before = g.getState();
    expect(sampleNext(logits, { temperature: 0 }, g)).toBe(1);
    expect(g.getState()).toEqual(before);
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([NaN, -Infinity, -5])).toBe(2);
  });

  it('temperature scales the softmax', () => {
    for (const t of [0.5, 1, 2.5]) {
      const { ids, probs } = candidateDistribution(logits, { temperature: t });
      const want = softmax(logits, t);
      ids.forEach((id, i) => expect(probs[i]).toBeCloseTo(want[id]!, 12));
      expect(ids.length).toBe(8);
    }
  });

  it('top-k keeps exactly the k best (ties by lower id) and never samples outside them', () => {
    const { ids } = candidateDistribution(logits, { topK: 2 });
    expect([...ids]).toEqual([1, 4]);
    expect([...candidateDistribution(logits, { topK: 3 }).ids]).toEqual([1, 4, 3]);
    expect([...candidateDistribution(logits, { topK: 1 }).ids]).toEqual([1]);
    const big = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898) * 3);
    const order = Array.from({ length: 1000 }, (_, i) => i).sort((a, b) => big[b]! - big[a]! || a - b);
    const top = new Set(order.slice(0, 10));
    expect(new Set(candidateDistribution(big, { topK: 10 }).ids)).toEqual(top);
    const g = new Generator(2);
    for (let i = 0; i < 3000; i++) expect(top.has(sampleNext(big, { topK: 10, temperature: 1.5 }, g))).toBe(true);
    // Renormalised over the k kept tokens.
    const { probs } = candidateDistribution(big, { topK: 10 });
    const want = softmax(order.slice(0, 10).map((i) => big[i]!));
    probs.forEach((p, i) => expect(p).toBeCloseTo(want[i]!, 12));
  });

  it('top-p keeps the smallest most-likely prefix whose mass reaches p, renormalised', () => {
    const p = softmax(logits);
    const sorted = [1, 4, 3, 7, 0, 5, 2, 6];
    let cum = 0;
    const cums = sorted.map((id) => (cum += p[id]!));
    for (const topP of [0.1, 0.5, 0.8, 0.95, 1]) {
      const { ids, probs } = candidateDistribution(logits, { topP });
      const keep = topP === 1 ? 8 : cums.findIndex((c) => c >= topP) + 1;
      expect([...ids], `topP ${topP}`).toEqual(sorted.slice(0, keep));
      const mass = cums[keep - 1]!;
      ids.forEach((id, i) => expect(probs[i]).toBeCloseTo(p[id]! / mass, 12));
      // The prefix one shorter would not have reached p.
      if (keep > 1) expect(cums[keep - 2]!).toBeLessThan(topP);
    }
    // top-k then top-p, as HF applies them.
    expect([...candidateDistribution(logits, { topK: 5, topP: 0.7 }).ids]).toEqual([1, 4, 3]);
  });

  it('sampled frequencies match the distribution (top-k + top-p + temperature)', () => {
    const opts = { temperature: 0.8, topK: 5, topP: 0.9 };
    const { ids, probs } = candidateDistribution(logits, opts);
    const g = new Generator(3);
    const n = 40000;
    const f = frequencies(n, () => sampleNext(logits, opts, g), 8);
    const want = new Array<number>(8).fill(0);
    ids.forEach((id, i) => (want[id] = probs[i]!));
    for (let id = 0; id < 8; id++) {
      const sd = Math.sqrt((want[id]! * (1 - want[id]!)) / n);
      expect(Math.abs(f[id]! - want[id]!), `id ${id}`).toBeLessThanOrEqual(5 * sd + 1e-12);
    }
  });

  it('same seed, same draws; another seed, other draws', () => {
    const draw = (seed: number): number[] => {
      const g = new Generator(seed);
      return Array.from({ length: 50 }, () => sampleNext(logits, { temperature: 1.3 }, g));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('refuses bad options and unusable logits', () => {
    const g = new Generator(0);
    expect(() => sampleNext(logits, { temperature: -1 }, g)).toThrow(/temperature must be a finite number ≥ 0/);
    expect(() => sampleNext(logits, { topK: 0 }, g)).toThrow(/topK must be a positive integer/);
    expect(() => sampleNext(logits, { topP: 0 }, g)).toThrow(/topP must be in \(0, 1\]/);
    expect(() => sampleNext(logits, { topP: 1.5 }, g)).toThrow(/topP/);
    expect(() => sampleNext([], {}, g)).toThrow(/empty logits row/);
    expect(() => sampleNext([NaN, 1], {}, g)).toThrow(/NaN/);
    expect(() => sampleNext([-Infinity, -Infinity], {}, g)).toThrow(/all -Infinity/);
    // -Infinity entries are never drawn.
    for (let i = 0; i < 200; i++) expect(sampleNext([-Infinity, 0, 0.5], {}, g)).not.toBe(0);
  });
});
