import { describe, expect, it } from 'vitest';
import { copiesOf, docUniform, expectedCopies, planMix } from '../../src/data/pipeline/mix.js';

describe('mixing plan', () => {
  it('temperature sampling follows p_i ∝ n_i^α and keeps the total size', () => {
    const sizes = { en: 900, zh: 90, fr: 10 };
    const plan = planMix(sizes, { temperature: 0.3, maxLanguageEpochs: Infinity });
    const total = 1000;
    const z = 900 ** 0.3 + 90 ** 0.3 + 10 ** 0.3;
    for (const [l, n] of Object.entries(sizes)) {
      expect(plan.natural[l]).toBeCloseTo(n / total, 12);
      expect(plan.target[l]).toBeCloseTo(n ** 0.3 / z, 12);
      expect(plan.languageFactor[l]).toBeCloseTo(n ** 0.3 / z / (n / total), 10);
    }
    // Σ n_i · factor_i = N: the mixed corpus has the size of the original.
    expect(Object.entries(sizes).reduce((s, [l, n]) => s + n * plan.languageFactor[l]!, 0)).toBeCloseTo(total, 8);
    // Small languages go up, the large one down.
    expect(plan.languageFactor.fr).toBeGreaterThan(1);
    expect(plan.languageFactor.en).toBeLessThan(1);
  });

  it('α = 1 keeps natural sizes, α = 0 equalises, no temperature leaves sizes alone; weights tilt the target', () => {
    const sizes = { en: 800, zh: 200 };
    for (const f of Object.values(planMix(sizes, { temperature: 1 }).languageFactor)) expect(f).toBeCloseTo(1, 12);
    for (const f of Object.values(planMix(sizes).languageFactor)) expect(f).toBeCloseTo(1, 12);
    const flat = planMix(sizes, { temperature: 0 });
    expect(flat.target.en).toBeCloseTo(0.5, 12);
    expect(flat.target.zh).toBeCloseTo(0.5, 12);
    const weighted = planMix(sizes, { temperature: 1, languageWeights: { zh: 3 } });
    // q ∝ w·n: en 800, zh 600.
    expect(weighted.target.zh).toBeCloseTo(600 / 1400, 12);
    const dropped = planMix(sizes, { languageWeights: { zh: 0 } });
    expect(dropped.languageFactor.zh).toBe(0);
  });

  it('source weights and epochs multiply the copies', () => {
    const plan = planMix({ en: 100 }, { sourceWeights: { books: 1.5 }, epochs: { books: 2, web: 3 } });
    expect(expectedCopies(plan, 'en', 'books')).toBeCloseTo(3, 12);
    expect(expectedCopies(plan, 'en', 'web')).toBeCloseTo(3, 12);
    expect(expectedCopies(plan, 'en', 'wiki')).toBeCloseTo(1, 12);
    for (let i = 0; i < 50; i++) expect(copiesOf(plan, i, 'en', 'books')).toBe(3);
  });

  it('fractional copies are ⌊c⌋ + Bernoulli(c − ⌊c⌋), seeded per document', () => {
    const plan = planMix({ en: 900, zh: 100 }, { temperature: 0.3, seed: 5 });
    const c = expectedCopies(plan, 'zh', 's');
    expect(c).toBeGreaterThan(1);
    const n = 20_000;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const k = copiesOf(plan, i, 'zh', 's');
      expect(k === Math.floor(c) || k === Math.floor(c) + 1).toBe(true);
      sum += k;
    }
    const frac = c - Math.floor(c);
    // Mean within 4σ of the expectation.
    expect(Math.abs(sum / n - c)).toBeLessThan(4 * Math.sqrt((frac * (1 - frac)) / n));
    // Deterministic for a seed, different for another.
    const again = Array.from({ length: 64 }, (_, i) => copiesOf(plan, i, 'zh', 's'));
    expect(Array.from({ length: 64 }, (_, i) => copiesOf(plan, i, 'zh', 's'))).toEqual(again);
    const other = planMix({ en: 900, zh: 100 }, { temperature: 0.3, seed: 6 });
    expect(Array.from({ length: 64 }, (_, i) => copiesOf(other, i, 'zh', 's'))).not.toEqual(again);
    // The per-document draws are uniform: a coarse histogram check.
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < n; i++) bins[Math.floor(docUniform(9, i) * 10)]!++;
    for (const b of bins) expect(Math.abs(b - n / 10)).toBeLessThan(4 * Math.sqrt(n * 0.1 * 0.9));
  });

  it('caps a language at maxLanguageEpochs and gives its surplus to the others (UniMax), keeping the total size', () => {
    const sizes = { en: 900, zh: 90, fr: 10 };
    const uncapped = planMix(sizes, { temperature: 0.3, maxLanguageEpochs: Infinity });
    expect(uncapped.languageFactor.fr).toBeGreaterThan(14);
    const plan = planMix(sizes, { temperature: 0.3 });
    expect(plan.languageFactor.fr).toBe(4);
    // The surplus goes to en and zh in proportion to their n^α scores, so their ratio is unchanged.
    expect(plan.target.zh! / plan.target.en!).toBeCloseTo(uncapped.target.zh! / uncapped.target.en!, 12);
    expect(plan.languageFactor.zh).toBeGreaterThan(uncapped.languageFactor.zh!);
    expect(Object.entries(sizes).reduce((s, [l, n]) => s + n * plan.languageFactor[l]!, 0)).toBeCloseTo(1000, 8);
    // A cap that binds in the second round too: zh is pushed over it once fr is capped.
    const cascade = planMix({ en: 1_000_000, zh: 3000, fr: 10 }, { temperature: 0, maxLanguageEpochs: 2 });
    expect(cascade.languageFactor.fr).toBe(2);
    expect(cascade.languageFactor.zh).toBe(2);
    expect(cascade.languageFactor.en! * 1_000_000 + 2 * 3000 + 2 * 10).toBeCloseTo(1_003_010, 6);
    for (const f of Object.values(cascade.languageFactor)) expect(f).toBeLessThanOrEqual(2);
  });

  it('keeps "und" (too short to identify) at its natural size and balances the identified languages', () => {
    const plan = planMix({ en: 800, zh: 100, und: 100 }, { temperature: 0 });
    expect(plan.languageFactor.und).toBe(1);
    // α = 0 would give en and zh 0.45 each, but zh (natural 0.1) stops at 4 copies: 0.4, and en takes the rest.
    expect(plan.target.zh).toBeCloseTo(0.4, 12);
    expect(plan.languageFactor.zh).toBe(4);
    expect(plan.target.en).toBeCloseTo(0.5, 12);
    const loose = planMix({ en: 800, zh: 100, und: 100 }, { temperature: 0, maxLanguageEpochs: 10 });
    expect(loose.target.en).toBeCloseTo(0.45, 12);
    expect(loose.target.zh).toBeCloseTo(0.45, 12);
  });

  it('rejects bad settings with clear messages', () => {
    expect(() => planMix({ en: 1 }, { maxLanguageEpochs: 0.5 })).toThrow(/maxLanguageEpochs must be a number ≥ 1/);
    expect(() => planMix({ en: 1 }, { temperature: 1.5 })).toThrow(/temperature α must be in \[0, 1\]/);
    expect(() => planMix({ en: 1 }, { languageWeights: { en: -1 } })).toThrow(/language weight for "en" must be a finite number ≥ 0/);
    expect(() => planMix({ en: 1 }, { seed: -2 })).toThrow(/seed must be a non-negative integer/);
  });
});
