/**
 * RequestSampler: parameter validation, greedy, penalties by hand, partial top-k selection against a
 * full sort, empirical frequencies of many seeded draws against distribution() (chi-square with a
 * fixed seed, so it cannot flake but would fail on a biased draw), seed reproducibility and
 * independence from other requests, logprobs (OpenAI semantics) with token text and bytes.
 */
import { describe, expect, it } from 'vitest';
import type { SamplingParams } from '../../src/infer/api.js';
import { RequestSampler, selectPrefix, topKIndices } from '../../src/infer/sampler.js';
import { Generator } from '../../src/tensor/random.js';

const tokenText = (id: number): { token: string; bytes: number[] } => ({ token: `t${id}`, bytes: [...Buffer.from(`t${id}`, 'utf8')] });
const params = (p: Partial<SamplingParams>): SamplingParams => ({ maxTokens: 16, temperature: 1, ...p });

function randomRow(seed: number, V: number, scale = 2): Float32Array {
  const g = new Generator(seed);
  return Float32Array.from({ length: V }, () => g.normal() * scale);
}

/** Pearson chi-square of `n` draws against the expected probabilities (bins with tiny expectation merged). */
function chiSquare(counts: Map<number, number>, ids: Int32Array, probs: Float64Array, n: number): { stat: number; dof: number } {
  let stat = 0;
  let dof = -1;
  let restExpected = 0;
  let restObserved = 0;
  const inSupport = new Set<number>();
  ids.forEach((id, i) => {
    inSupport.add(id);
    const e = probs[i]! * n;
    const o = counts.get(id) ?? 0;
    if (e < 5) {
      restExpected += e;
      restObserved += o;
      return;
    }
    stat += (o - e) ** 2 / e;
    dof++;
  });
  if (restExpected > 0) {
    stat += (restObserved - restExpected) ** 2 / restExpected;
    dof++;
  }
  for (const id of counts.keys()) if (!inSupport.has(id)) throw new Error(`drew ${id}, outside the support`);
  return { stat, dof };
}

function draws(sampler: RequestSampler, row: Float32Array, n: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const { tokenId } = sampler.sample(row.slice());
    counts.set(tokenId, (counts.get(tokenId) ?? 0) + 1);
  }
  return counts;
}

describe('RequestSampler: validation', () => {
  const bad: [Partial<SamplingParams>, RegExp][] = [
    [{ temperature: -1 }, /temperature must be a finite number ≥ 0/],
    [{ temperature: NaN }, /temperature/],
    [{ topK: 1.5 }, /topK must be an integer ≥ 0/],
    [{ topP: 0 }, /topP must be in \(0, 1\]/],
    [{ topP: 1.2 }, /topP/],
    [{ minP: -0.1 }, /minP must be in \[0, 1\]/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty must be a finite number > 0/],
    [{ presencePenalty: 3 }, /presencePenalty must be in \[-2, 2\]/],
    [{ frequencyPenalty: -2.5 }, /frequencyPenalty/],
    [{ seed: 1.5 }, /seed must be an integer/],
    [{ logprobs: 21 }, /logprobs must be an integer in \[0, 20\]/],
    [{ logitBias: { 99: 1 } }, /logitBias key "99" must be a token id in \[0, 10\)/],
    [{ logitBias: { 3: 101 } }, /logitBias\[3\] must be a number in \[-100, 100\]/],
  ];
  for (const [p, msg] of bad) {
    it(`rejects ${JSON.stringify(p)}`, () => {
      expect(() => new RequestSampler(params(p), [], 10, tokenText)).toThrow(RangeError);
      expect(() => new RequestSampler(params(p), [], 10, tokenText)).toThrow(msg);
    });
  }
  it('rejects a logits row of the wrong size, out-of-vocabulary prompt ids and accepted ids', () => {
    const s = new RequestSampler(params({ temperature: 0, repetitionPenalty: 1.1 }), [1, 2], 10, tokenText);
    expect(() => s.sample(new Float32Array(9))).toThrow(/expected the vocabulary size 10/);
    expect(() => new RequestSampler(params({ repetitionPenalty: 1.1 }), [12], 10, tokenText)).toThrow(/prompt token 12 at position 0/);
    expect(() => s.accept(10)).toThrow(/outside the vocabulary/);
  });
  it('refuses an all −∞ row', () => {
    const s = new RequestSampler(params({ temperature: 0.8 }), [], 4, tokenText);
    expect(() => s.sample(new Float32Array(4).fill(-Infinity))).toThrow(/every logit is −∞/);
  });
});

describe('RequestSampler: greedy and penalties', () => {
  it('temperature 0 is argmax (lowest id on ties) and ignores top-k/p and the seed', () => {
    const row = Float32Array.from([0.1, 3, 3, -1]);
    for (const seed of [1, 2]) {
      const s = new RequestSampler(params({ temperature: 0, topK: 2, topP: 0.1, seed }), [], 4, tokenText);
      expect(s.sample(row.slice()).tokenId).toBe(1);
    }
  });

  it('repetition penalty divides positive and multiplies negative logits of prompt and output tokens, once each', () => {
    const s = new RequestSampler(params({ temperature: 0, repetitionPenalty: 2 }), [0, 0, 1], 4, tokenText);
    s.accept(2);
    s.accept(2);
    const row = Float32Array.from([4, -1, 3, 1]);
    s.processLogits(row);
    expect([...row]).toEqual([2, -2, 1.5, 1]);
  });

  it('presence and frequency penalties use output counts only (not the prompt)', () => {
    const s = new RequestSampler(params({ temperature: 0, presencePenalty: 0.5, frequencyPenalty: 0.25 }), [3, 3, 3], 4, tokenText);
    for (const id of [1, 1, 1, 2]) s.accept(id);
    const row = Float32Array.from([1, 1, 1, 1]);
    s.processLogits(row);
    expect([...row]).toEqual([1, 1 - 0.75 - 0.5, 1 - 0.25 - 0.5, 1]);
  });

  it('logit bias can force or ban a token', () => {
    const row = Float32Array.from([5, 1, 0]);
    expect(new RequestSampler(params({ temperature: 0, logitBias: { 2: 100 } }), [], 3, tokenText).sample(row.slice()).tokenId).toBe(2);
    const banned = new RequestSampler(params({ temperature: 1, logitBias: { 0: -100 }, seed: 3 }), [], 3, tokenText);
    for (let i = 0; i < 200; i++) expect(banned.sample(row.slice()).tokenId).not.toBe(0);
  });
});

describe('RequestSampler: partial selection', () => {
  it('topKIndices equals a full sort (descending, lower id first on ties) for every k', () => {
    const row = randomRow(5, 300);
    row[10] = row[20]!; // a tie
    row[7] = NaN;
    const sorted = Array.from({ length: 300 }, (_, i) => i)
      .filter((i) => !Number.isNaN(row[i]))
      .sort((a, b) => row[b]! - row[a]! || a - b);
    for (const k of [1, 2, 7, 64, 299, 400]) expect([...topKIndices(row, k)]).toEqual(sorted.slice(0, k));
  });

  it('selectPrefix (weighted quickselect) finds the same prefix as a sort and a cumulative walk', () => {
    const g = new Generator(21);
    for (const n of [5, 17, 100, 3000]) {
      const logits = Float32Array.from({ length: n }, () => Math.round(g.normal() * 8) / 4); // many ties
      const sorted = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
      const w = (id: number): number => Math.exp(logits[id]!);
      const total = sorted.reduce((a, id) => a + w(id), 0);
      for (const p of [0.01, 0.3, 0.77, 0.999]) {
        let cum = 0;
        let keep = 0;
        while (keep < n && cum < p * total) cum += w(sorted[keep++]!);
        const ids = Int32Array.from({ length: n }, (_, i) => i);
        const weights = Float64Array.from(ids, w);
        const got = selectPrefix(ids, weights, n, logits, p * total, false);
        expect(got).toBe(keep);
        expect([...ids.subarray(0, got)].sort((a, b) => a - b)).toEqual(sorted.slice(0, keep).sort((a, b) => a - b));
        ids.forEach((id, j) => expect(weights[j]).toBe(w(id)));
      }
      for (const k of [1, Math.min(7, n), Math.max(1, n >> 1)]) {
        const ids = Int32Array.from({ length: n }, (_, i) => i);
        expect(selectPrefix(ids, new Float64Array(n), n, logits, k, true)).toBe(k);
        expect([...ids.subarray(0, k)].sort((a, b) => a - b)).toEqual(sorted.slice(0, k).sort((a, b) => a - b));
      }
    }
  });

  it('a large top-k (the selection path) keeps exactly the k best', () => {
    const V = 5000;
    const row = randomRow(13, V, 1);
    const d = new RequestSampler(params({ temperature: 1, topK: 1000 }), [], V, tokenText).distribution(row);
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
    expect([...d.ids]).toEqual(order.slice(0, 1000));
    const z = order.slice(0, 1000).reduce((a, id) => a + Math.exp(row[id]! - row[order[0]!]!), 0);
    d.ids.forEach((id, i) => expect(d.probs[i]).toBeCloseTo(Math.exp(row[id]! - row[order[0]!]!) / z, 12));
  });

  it('top-p on a large vocabulary (nucleus beyond the first partial selection) matches a full sort', () => {
    const V = 50000;
    const row = randomRow(11, V, 0.5); // flat: the 0.9 nucleus spans thousands of tokens
    const s = new RequestSampler(params({ temperature: 1, topP: 0.9 }), [], V, tokenText);
    const d = s.distribution(row);
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
    const w = order.map((id) => Math.exp(row[id]! - row[order[0]!]!));
    const total = w.reduce((a, b) => a + b, 0);
    let cum = 0;
    let keep = 0;
    while (keep < V) {
      cum += w[keep]! / total;
      keep++;
      if (cum >= 0.9) break;
    }
    expect(d.ids.length).toBe(keep);
    expect(keep).toBeGreaterThan(1000);
    expect([...d.ids]).toEqual(order.slice(0, keep));
    const kept = w.slice(0, keep).reduce((a, b) => a + b, 0);
    d.ids.forEach((id, i) => expect(d.probs[i]).toBeCloseTo(Math.exp(row[id]! - row[order[0]!]!) / kept, 12));
  });
});

describe('RequestSampler: seeded draws follow the distribution', () => {
  const V = 40;
  const row = randomRow(7, V, 1.5);
  const cases: Partial<SamplingParams>[] = [
    { temperature: 1 },
    { temperature: 0.6 },
    { temperature: 1.3, topK: 8 },
    { temperature: 1, topP: 0.75 },
    { temperature: 1, minP: 0.1 },
    { temperature: 0.9, topK: 15, topP: 0.9, minP: 0.05 },
  ];
  for (const p of cases) {
    it(`chi-square of 20000 draws, ${JSON.stringify(p)}`, () => {
      const s = new RequestSampler(params({ ...p, seed: 1234 }), [], V, tokenText);
      const dist = s.distribution(row.slice());
      const n = 20000;
      const counts = draws(s, row, n);
      const { stat, dof } = chiSquare(counts, dist.ids, dist.probs, n);
      // 99.9th percentile of chi-square ≈ dof + 3.1·sqrt(2·dof) + 6 for these sizes: a fair draw passes,
      // a draw from the untruncated or untempered softmax fails by orders of magnitude.
      expect(stat).toBeLessThan(dof + 3.1 * Math.sqrt(2 * dof) + 6);
      expect(dof).toBeGreaterThan(0);
    });
  }

  it('draws never leave the truncated support (top-k 3)', () => {
    const s = new RequestSampler(params({ temperature: 2, topK: 3, seed: 9 }), [], V, tokenText);
    const allowed = new Set(topKIndices(row, 3));
    for (let i = 0; i < 2000; i++) expect(allowed.has(s.sample(row.slice()).tokenId)).toBe(true);
  });

  it('a wrong distribution is detected (the test can fail)', () => {
    const s = new RequestSampler(params({ temperature: 1, seed: 1234 }), [], V, tokenText);
    const hot = new RequestSampler(params({ temperature: 1.5 }), [], V, tokenText).distribution(row.slice());
    const counts = draws(s, row, 20000);
    const { stat, dof } = chiSquare(counts, hot.ids, hot.probs, 20000);
    expect(stat).toBeGreaterThan(dof + 3.1 * Math.sqrt(2 * dof) + 6);
  });
});

describe('RequestSampler: seeds', () => {
  const V = 100;
  const rows = Array.from({ length: 30 }, (_, i) => randomRow(100 + i, V));
  const run = (s: RequestSampler, interleave?: RequestSampler): number[] =>
    rows.map((r) => {
      if (interleave !== undefined) interleave.sample(r.slice());
      const { tokenId } = s.sample(r.slice());
      s.accept(tokenId);
      return tokenId;
    });
  const p = params({ temperature: 1.1, topP: 0.95, repetitionPenalty: 1.1, seed: 42 });

  it('the same seed gives the same tokens, whatever other requests draw in between', () => {
    const alone = run(new RequestSampler(p, [1, 2, 3], V, tokenText));
    const busy = run(new RequestSampler(p, [1, 2, 3], V, tokenText), new RequestSampler(params({ temperature: 1 }), [], V, tokenText));
    expect(busy).toEqual(alone);
  });

  it('different seeds and different sequence indices give different tokens; index 0 is the plain seed', () => {
    const a = run(new RequestSampler(p, [], V, tokenText));
    const b = run(new RequestSampler({ ...p, seed: 43 }, [], V, tokenText));
    const c = run(new RequestSampler(p, [], V, tokenText, { sequenceIndex: 1 }));
    const a0 = run(new RequestSampler(p, [], V, tokenText, { sequenceIndex: 0 }));
    expect(b).not.toEqual(a);
    expect(c).not.toEqual(a);
    expect(a0).toEqual(a);
  });

  it('without a seed, two requests differ', () => {
    const q = params({ temperature: 1 });
    expect(run(new RequestSampler(q, [], V, tokenText))).not.toEqual(run(new RequestSampler(q, [], V, tokenText)));
  });
});

describe('RequestSampler: logprobs', () => {
  it('are the log-softmax after penalties and bias, before temperature and truncation; top-N sorted with text and bytes', () => {
    const row = Float32Array.from([2, 1, 0.5, -Infinity, 3]);
    const s = new RequestSampler(params({ temperature: 0.2, topK: 1, logprobs: 3, logitBias: { 1: 1.5 } }), [], 5, tokenText);
    const { tokenId, logprob } = s.sample(row.slice());
    expect(tokenId).toBe(4);
    const processed = [2, 2.5, 0.5, -Infinity, 3];
    const lse = Math.log(processed.reduce((a, l) => a + Math.exp(l), 0));
    expect(logprob!.tokenId).toBe(4);
    expect(logprob!.logprob).toBeCloseTo(3 - lse, 6);
    expect(logprob!.token).toBe('t4');
    expect(logprob!.bytes).toEqual([0x74, 0x34]);
    expect(logprob!.top.map((t) => t.tokenId)).toEqual([4, 1, 0]);
    logprob!.top.forEach((t) => expect(t.logprob).toBeCloseTo(processed[t.tokenId]! - lse, 6));
  });

  it('never lists masked (−∞) tokens, and logprobs 0 gives only the chosen token', () => {
    const row = Float32Array.from([1, -Infinity, -Infinity]);
    const s = new RequestSampler(params({ temperature: 0, logprobs: 3 }), [], 3, tokenText);
    expect(s.sample(row.slice()).logprob!.top.map((t) => t.tokenId)).toEqual([0]);
    const none = new RequestSampler(params({ temperature: 0, logprobs: 0 }), [], 3, tokenText).sample(row.slice()).logprob!;
    expect(none.top).toEqual([]);
    expect(none.logprob).toBeCloseTo(0, 12);
    expect(new RequestSampler(params({ temperature: 0 }), [], 3, tokenText).sample(row.slice()).logprob).toBeUndefined();
  });
});
