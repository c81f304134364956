/**
 * BERT's pre-training objectives. MLM: exactly round(15%) of the non-special tokens are predicted,
 * special tokens never are, and the 80/10/10 [MASK]/random/kept split holds — measured over many
 * draws from a seeded generator against binomial bounds (4.5σ; deterministic, so never flaky). NSP:
 * half the pairs are real continuations, the others come from another document, and the
 * [CLS] A [SEP] B [SEP] layout, segment ids, padding and truncation are right.
 */
import { describe, expect, it } from 'vitest';
import { MLM_IGNORE, MLMMasker, maskTokens } from '../../src/data/objectives/mlm.js';
import { IS_NEXT, NOT_NEXT, NSPSampler, packPair } from '../../src/data/objectives/nsp.js';
import { Generator } from '../../src/tensor/random.js';

const [PAD, UNK, CLS, SEP, MASK] = [0, 1, 2, 3, 4];
const SPECIAL = [PAD, UNK, CLS, SEP];
const V = 1000;

/** |observed − p| within 4.5 binomial standard deviations over n trials. */
function expectRate(count: number, n: number, p: number, what: string): void {
  const sigma = Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(count / n - p), `${what}: ${count}/${n} vs ${p}`).toBeLessThan(4.5 * sigma);
}

describe('MLM masking', () => {
  it('predicts exactly round(15%) of the non-special tokens and never a special one', () => {
    const g = new Generator(1);
    const masker = new MLMMasker({ maskId: MASK, vocabSize: V, specialIds: SPECIAL, generator: g });
    for (let trial = 0; trial < 300; trial++) {
      const len = 8 + g.int(0, 60);
      const body = Array.from({ length: len }, () => g.int(5, V));
      const padding = g.int(0, 10);
      const ids = [CLS, ...body.slice(0, len >> 1), SEP, ...body.slice(len >> 1), SEP, ...Array<number>(padding).fill(PAD)];
      const { inputIds, labels } = masker.mask(ids);
      let predicted = 0;
      ids.forEach((id, i) => {
        if (SPECIAL.includes(id)) {
          expect(labels[i]).toBe(MLM_IGNORE);
          expect(inputIds[i]).toBe(id);
        } else if (labels[i] !== MLM_IGNORE) {
          predicted++;
          expect(labels[i]).toBe(id);
        } else {
          expect(inputIds[i]).toBe(id); // not chosen: untouched
        }
      });
      expect(predicted).toBe(Math.max(1, Math.round(len * 0.15)));
    }
  });

  it('splits the chosen tokens 80% [MASK] / 10% random / 10% kept, random ids never special', () => {
    const masker = new MLMMasker({ maskId: MASK, vocabSize: V, specialIds: SPECIAL, generator: new Generator(2) });
    const ordinary = V - SPECIAL.length - 1; // [MASK] is never a random replacement either
    let chosen = 0;
    let masked = 0;
    let randomOther = 0;
    let same = 0;
    const positions = new Array<number>(40).fill(0);
    const g = new Generator(3);
    for (let trial = 0; trial < 4000; trial++) {
      const ids = [CLS, ...Array.from({ length: 40 }, () => g.int(5, V)), SEP];
      const { inputIds, labels } = masker.mask(ids);
      for (let i = 0; i < ids.length; i++) {
        if (labels[i] === MLM_IGNORE) continue;
        chosen++;
        positions[i - 1]!++;
        if (inputIds[i] === MASK) masked++;
        else if (inputIds[i] === ids[i]) same++;
        else {
          randomOther++;
          expect(SPECIAL.includes(inputIds[i]!) || inputIds[i] === MASK).toBe(false);
        }
      }
    }
    expect(chosen).toBe(4000 * 6);
    expectRate(masked, chosen, 0.8, '[MASK]');
    // A random draw equals the original with probability 1/ordinary: it then counts as kept.
    expectRate(randomOther, chosen, 0.1 * (1 - 1 / ordinary), 'random');
    expectRate(same, chosen, 0.1 + 0.1 / ordinary, 'kept');
    // Positions are chosen uniformly: each of the 40 is picked with probability 6/40 per sequence.
    for (const [i, c] of positions.entries()) expectRate(c, 4000, 6 / 40, `position ${i}`);
  });

  it('is deterministic for a seed, validates its options', () => {
    const opts = { maskId: MASK, vocabSize: V, specialIds: SPECIAL };
    const ids = Array.from({ length: 50 }, (_, i) => 5 + i);
    const a = maskTokens(ids, { ...opts, generator: new Generator(9) });
    const b = maskTokens(ids, { ...opts, generator: new Generator(9) });
    expect(a).toEqual(b);
    expect(maskTokens([CLS, SEP, PAD], opts).labels.every((l) => l === MLM_IGNORE)).toBe(true);
    expect(() => new MLMMasker({ ...opts, maskId: V })).toThrow(/maskId 1000 is outside/);
    expect(() => new MLMMasker({ ...opts, maskReplaceProb: 0.95, randomReplaceProb: 0.1 })).toThrow(/sum ≤ 1/);
  });
});

describe('NSP pairs', () => {
  it('packs [CLS] A [SEP] B [SEP] with segment ids and padding, truncating the longer segment', () => {
    const opts = { clsId: CLS, sepId: SEP, padId: PAD, maxLength: 10 };
    const p = packPair([10, 11], [20, 21, 22], opts);
    expect([...p.ids]).toEqual([CLS, 10, 11, SEP, 20, 21, 22, SEP, PAD, PAD]);
    expect([...p.tokenTypeIds]).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 0, 0]);
    expect([...p.attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    const t = packPair([10, 11, 12, 13, 14, 15], [20, 21, 22], { ...opts, maxLength: 8 });
    // Budget 5 tokens: A loses tokens while it is the longer (ties go to A), so 2 + 3.
    expect([...t.ids]).toEqual([CLS, 10, 11, SEP, 20, 21, 22, SEP]);
    expect(() => packPair([1], [2], { ...opts, maxLength: 4 })).toThrow(/maxLength/);
  });

  it('half the pairs are the real next sentence, the rest come from another document', () => {
    // Sentence s of document d is [100·d + s + 10] repeated, so its origin can be read back.
    const docs = Array.from({ length: 6 }, (_, d) => Array.from({ length: 3 + d }, (_, s) => Array<number>(1 + ((d + s) % 3)).fill(100 * d + s + 10)));
    const sampler = new NSPSampler(docs, { clsId: CLS, sepId: SEP, padId: PAD, maxLength: 12, generator: new Generator(4) });
    let next = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const ex = sampler.sample();
      const sep = ex.ids.indexOf(SEP);
      const a = ex.ids[1]!;
      const b = ex.ids[sep + 1]!;
      const [da, sa] = [Math.floor((a - 10) / 100), (a - 10) % 100];
      const [db, sb] = [Math.floor((b - 10) / 100), (b - 10) % 100];
      expect([da, sa]).toEqual([ex.a.doc, ex.a.sentence]);
      expect([db, sb]).toEqual([ex.b.doc, ex.b.sentence]);
      if (ex.label === IS_NEXT) {
        next++;
        expect(db).toBe(da);
        expect(sb).toBe(sa + 1);
      } else {
        expect(ex.label).toBe(NOT_NEXT);
        expect(db).not.toBe(da);
      }
      expect(ex.tokenTypeIds[sep + 1]).toBe(1);
      expect(ex.tokenTypeIds[sep]).toBe(0);
    }
    expectRate(next, n, 0.5, 'IsNext');
  });

  it('refuses corpora it cannot draw from', () => {
    const opts = { clsId: CLS, sepId: SEP, padId: PAD, maxLength: 12 };
    expect(() => new NSPSampler([[[5], [6]]], opts)).toThrow(/at least 2 documents/);
    expect(() => new NSPSampler([[[5]], [[6]]], opts)).toThrow(/two consecutive/);
  });
});
