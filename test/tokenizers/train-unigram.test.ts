import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  digamma,
  marginals,
  suffixArray,
  suffixTreeNodes,
  TrainingModel,
  twoBest,
  UnigramTrainer,
  viterbi,
  type Lattice,
  type Piece,
} from '../../src/tokenizers/trainers/unigram.js';

const codes = (s: string): Int32Array => Int32Array.from([...s].map((c) => c.codePointAt(0)!));

/** Every segmentation of the lattice: [node indices]. */
function allPaths(lat: Lattice): number[][] {
  const out: number[][] = [];
  const walk = (pos: number, path: number[]): void => {
    if (pos === lat.length) {
      out.push(path);
      return;
    }
    for (let i = 0; i < lat.size; i++) if (lat.starts[i] === pos) walk(lat.ends[i], [...path, i]);
  };
  walk(0, []);
  return out;
}

const pathScore = (lat: Lattice, path: number[]): number => path.reduce((s, i) => s + lat.scores[i], 0);
const idsScore = (model: TrainingModel, lat: Lattice, ids: number[]): number =>
  ids.reduce((s, id) => s + (id === 0 ? Math.min(...[...lat.scores.subarray(0, lat.size)].filter((_, i) => lat.ids[i] === 0)) : model.pieces[id][1]), 0);

const pieceSets = fc
  .uniqueArray(fc.stringMatching(/^[abc]{1,3}$/), { minLength: 1, maxLength: 10 })
  .chain((ps) => fc.tuple(fc.constant(ps), fc.array(fc.double({ min: -8, max: -0.1, noNaN: true }), { minLength: ps.length, maxLength: ps.length })))
  .map(([ps, scores]): Piece[] => [['<UNK>', Number.NaN], ...ps.map((p, i): Piece => [p, scores[i]])]);

describe('Unigram trainer building blocks', () => {
  it('digamma matches known values', () => {
    expect(digamma(1)).toBeCloseTo(-0.5772156649015329, 9);
    expect(digamma(0.5)).toBeCloseTo(-1.9635100260214235, 9);
    expect(digamma(10)).toBeCloseTo(2.251752589066721, 9);
    expect(digamma(123.4)).toBeCloseTo(Math.log(123.4) - 1 / (2 * 123.4) - 1 / (12 * 123.4 ** 2), 8);
  });

  it('suffixArray sorts the suffixes (against a naive sort)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 60 }), (arr) => {
        const text = Int32Array.from(arr);
        const naive = arr
          .map((_, i) => i)
          .sort((i, j) => {
            for (let k = 0; ; k++) {
              if (i + k >= arr.length) return -1;
              if (j + k >= arr.length) return 1;
              if (arr[i + k] !== arr[j + k]) return arr[i + k] - arr[j + k];
            }
          });
        expect([...suffixArray(text)]).toEqual(naive);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('suffixTreeNodes lists the repeated right-branching substrings with their occurrence counts (against brute force)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 40 }), (arr) => {
        const text = Int32Array.from(arr);
        const got: string[] = [];
        const sa = suffixArray(text);
        suffixTreeNodes(text, sa, (l, r, d) => {
          if (d >= 1) got.push(`${arr.slice(sa[l], sa[l] + d).join('')}:${r - l}`);
        });
        const want = new Set<string>();
        for (let len = 1; len <= arr.length; len++) {
          const occ = new Map<string, number[]>();
          for (let p = 0; p + len <= arr.length; p++) {
            const k = arr.slice(p, p + len).join('');
            occ.set(k, [...(occ.get(k) ?? []), p]);
          }
          for (const [k, ps] of occ) {
            const next = new Set(ps.map((p) => (p + len < arr.length ? arr[p + len] : -1)));
            if (ps.length >= 2 && next.size >= 2) want.add(`${k}:${ps.length}`);
          }
        }
        expect(got.sort()).toEqual([...want].sort());
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it('forward-backward gives the exact expected piece counts and log Z (against enumerating every segmentation)', () => {
    fc.assert(
      fc.property(pieceSets, fc.stringMatching(/^[abcd]{1,7}$/), fc.integer({ min: 1, max: 5 }), (pieces, sentence, freq) => {
        const model = new TrainingModel(pieces);
        const lat = model.lattice(codes(sentence));
        const paths = allPaths(lat);
        const scores = paths.map((p) => pathScore(lat, p));
        const logZ = Math.log(scores.reduce((s, x) => s + Math.exp(x), 0));
        const want = new Float64Array(pieces.length);
        paths.forEach((p, k) => {
          for (const i of p) want[lat.ids[i]] += freq * Math.exp(scores[k] - logZ);
        });
        const got = new Float64Array(pieces.length);
        expect(marginals(lat, freq, got)).toBeCloseTo(logZ, 9);
        for (let i = 0; i < pieces.length; i++) expect(got[i]).toBeCloseTo(want[i], 9);
      }),
      { numRuns: 300, seed: 3 },
    );
  });

  it('viterbi and twoBest return the best and second-best segmentations (against enumeration)', () => {
    fc.assert(
      fc.property(pieceSets, fc.stringMatching(/^[abcd]{1,7}$/), (pieces, sentence) => {
        const model = new TrainingModel(pieces);
        const lat = model.lattice(codes(sentence));
        const scores = allPaths(lat)
          .map((p) => pathScore(lat, p))
          .sort((a, b) => b - a);
        expect(idsScore(model, lat, viterbi(lat))).toBeCloseTo(scores[0], 9);
        const best = twoBest(lat);
        expect(best.length).toBe(Math.min(2, scores.length));
        expect(idsScore(model, lat, best[0])).toBeCloseTo(scores[0], 9);
        if (scores.length > 1) expect(idsScore(model, lat, best[1])).toBeCloseTo(scores[1], 9);
        // Each path spells the sentence (the unknown stands for one character).
        for (const ids of best) {
          expect(ids.map((id) => (id === 0 ? '?' : model.pieces[id][0])).join('').length).toBe(sentence.length);
        }
      }),
      { numRuns: 300, seed: 5 },
    );
  });
});

describe('UnigramTrainer', () => {
  /** Words glued from a few true pieces, Zipf-like frequencies. */
  function syntheticCorpus(): Map<string, number> {
    const units = ['light', 'ing', 'moon', 'fish', 'er', 's', 'bird'];
    const wc = new Map<string, number>();
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let i = 0; i < 3000; i++) {
      let w = rand(2) === 0 ? '▁sun' : '▁star';
      const k = 1 + rand(3);
      for (let j = 0; j < k; j++) w += units[rand(units.length)];
      wc.set(w, (wc.get(w) ?? 0) + 1);
    }
    return wc;
  }

  it('recovers the pieces the words were built from, keeps every character and returns exactly vocabSize entries', () => {
    const wc = syntheticCorpus();
    const chars = new Set([...wc.keys()].flatMap((w) => [...w]));
    const vocabSize = 1 + chars.size + 12;
    const r = new UnigramTrainer({ vocabSize, unkToken: '<unk>' }).train(wc);
    expect(r.vocab.length).toBe(vocabSize);
    expect(r.vocab[0]).toEqual(['<unk>', 0]);
    expect(r.unkId).toBe(0);
    const pieces = new Set(r.vocab.map(([p]) => p));
    for (const c of chars) expect(pieces.has(c)).toBe(true);
    for (const unit of ['light', 'moon', 'fish', 'bird', 'ing', 'er']) expect(pieces.has(unit)).toBe(true);
    // Scores are log-probabilities, sorted.
    const scores = r.vocab.slice(1).map(([, s]) => s);
    expect(scores.every((s, i) => s < 0 && (i === 0 || s <= scores[i - 1]))).toBe(true);
  });

  it('is deterministic', () => {
    const wc = syntheticCorpus();
    const a = new UnigramTrainer({ vocabSize: 40, specialTokens: ['<pad>'], unkToken: '<unk>' }).train(wc);
    const b = new UnigramTrainer({ vocabSize: 40, specialTokens: ['<pad>'], unkToken: '<unk>' }).train(wc);
    expect(a).toEqual(b);
    expect(a.vocab.slice(0, 2)).toEqual([['<unk>', 0], ['<pad>', 0]]);
  });

  it('an unk token among the special tokens keeps its place', () => {
    const r = new UnigramTrainer({ vocabSize: 40, specialTokens: ['<pad>', '<unk>'], unkToken: '<unk>' }).train(syntheticCorpus());
    expect(r.unkId).toBe(1);
    expect(r.vocab.slice(0, 2).map(([p]) => p)).toEqual(['<pad>', '<unk>']);
  });

  it('fails clearly when the vocabulary cannot hold every character, and on bad options', () => {
    expect(() => new UnigramTrainer({ vocabSize: 5, unkToken: '<unk>' }).train(new Map([['abcdefg', 1]]))).toThrow(/7 distinct characters, more than vocabSize 5 leaves room for \(4 after special tokens\)/);
    expect(() => new UnigramTrainer({ vocabSize: 0 })).toThrow(/vocabSize must be a positive integer/);
    expect(() => new UnigramTrainer({ shrinkingFactor: 1 })).toThrow(/shrinkingFactor must be in \(0, 1\)/);
    expect(() => new UnigramTrainer({ vocabSize: 2, specialTokens: ['a', 'b'] })).toThrow(/leaves no room/);
  });
});
