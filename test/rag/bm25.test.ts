/**
 * Weft's BM25 against rank_bm25 (scripts/fixtures/rag_bm25.py): the same Okapi term-frequency
 * saturation and length normalisation (k1 = 1.2, b = 0.75) with Lucene's idf, plus a hand-computed
 * score, RRF and CJK tokenisation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BM25Index, bm25Tokenize } from '../../src/rag/bm25.js';
import { reciprocalRankFusion } from '../../src/rag/retrieve.js';

const fx = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/rag/bm25_reference.json'), 'utf8')) as {
  docs: string[];
  queries: { query: string; tokens: string[]; scores: number[]; rank_bm25_okapi: number[] }[];
};

describe('BM25', () => {
  const idx = new BM25Index();
  fx.docs.forEach((d, i) => idx.add(`d${i}`, d));

  it('scores every document as the rank_bm25-based reference does', () => {
    for (const q of fx.queries) {
      expect(bm25Tokenize(q.query)).toEqual(q.tokens);
      const got = idx.scoresForTokens(q.tokens);
      q.scores.forEach((want, i) => expect(got.get(`d${i}`) ?? 0, `${q.query} / doc ${i}`).toBeCloseTo(want, 10));
    }
  });

  it('ranks as rank_bm25 BM25Okapi does where its idf is positive', () => {
    for (const q of fx.queries) {
      const order = (s: number[]): number[] => s.map((x, i) => [x, i] as const).filter(([x]) => x > 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
      expect(order(q.scores)).toEqual(order(q.rank_bm25_okapi));
    }
  });

  it('matches a hand computation', () => {
    // Two docs: "a b" and "a a c". N=2, avgdl=2.5. Query "c": n=1, idf=ln(1+(2-1+0.5)/1.5)=ln 2.
    // doc2: tf=1, dl=3: idf·(1·2.2)/(1+1.2·(0.25+0.75·3/2.5)) = ln2·2.2/(1+1.2·1.15) = ln2·2.2/2.38.
    const small = new BM25Index();
    small.add('x', 'a b');
    small.add('y', 'a a c');
    expect(small.scoresForTokens(['c']).get('y')).toBeCloseTo((Math.LN2 * 2.2) / 2.38, 12);
    expect(small.scoresForTokens(['c']).has('x')).toBe(false);
    small.remove('y');
    expect(small.size).toBe(1);
    expect(small.search('c', 5)).toEqual([]);
  });

  it('tokenises CJK into character bigrams', () => {
    expect(bm25Tokenize('刘备字玄德, Liu Bei!')).toEqual(['刘备', '备字', '字玄', '玄德', 'liu', 'bei']);
    expect(bm25Tokenize('曹')).toEqual(['曹']);
  });

  it('fuses rankings with RRF (k = 60)', () => {
    const f = reciprocalRankFusion([['a', 'b', 'c'], ['c', 'a']]);
    expect(f.get('a')).toBeCloseTo(1 / 61 + 1 / 62, 12);
    expect(f.get('b')).toBeCloseTo(1 / 62, 12);
    expect(f.get('c')).toBeCloseTo(1 / 63 + 1 / 61, 12);
  });
});
