/**
 * RequestSampler against Hugging Face's logits processors (scripts/fixtures/sampling_hf.py):
 * repetition penalty, OpenAI presence/frequency penalties, logit bias, temperature, top-k, top-p and
 * min-p give the same final distribution, and logprobs equal HF's log_softmax after the penalties.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SamplingParams } from '../../src/infer/api.js';
import { RequestSampler } from '../../src/infer/sampler.js';

interface Case {
  name: string;
  params: Omit<SamplingParams, 'maxTokens'>;
  logits: (number | null)[];
  prompt: number[];
  output: number[];
  logprobs: (number | null)[];
  probs: number[];
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/sampling/hf_processors.json', import.meta.url), 'utf8')) as { vocab: number; cases: Case[] };
const V = fixture.vocab;
const tokenText = (id: number): { token: string; bytes: number[] } => ({ token: String(id), bytes: [] });
const row = (xs: (number | null)[]): Float32Array => Float32Array.from(xs, (x) => (x === null ? -Infinity : x));

function sampler(c: Case, extra: Partial<SamplingParams> = {}): RequestSampler {
  const s = new RequestSampler({ maxTokens: 8, ...c.params, ...extra }, c.prompt, V, tokenText);
  for (const id of c.output) s.accept(id);
  return s;
}

describe('RequestSampler matches HF logits processors', () => {
  it('has the cases', () => expect(fixture.cases.length).toBeGreaterThanOrEqual(15));
  for (const c of fixture.cases) {
    it(c.name, () => {
      const s = sampler(c);
      const logits = row(c.logits);
      s.processLogits(logits);
      const d = s.distribution(logits);
      const dense = new Float64Array(V);
      d.ids.forEach((id, i) => (dense[id] = d.probs[i]!));
      for (let id = 0; id < V; id++) {
        const want = c.probs[id]!;
        // HF's float32 softmax underflows to 0 where Weft's float64 keeps ~1e-48 (a −100 bias).
        if (want === 0) expect(dense[id], `token ${id} should be filtered`).toBeLessThan(1e-30);
        else expect(Math.abs(dense[id]! - want), `token ${id}: ${dense[id]} vs ${want}`).toBeLessThan(2e-6 + 1e-5 * want);
      }
      // logprobs: the chosen token and the top 20 equal HF's log_softmax after penalties and bias.
      const { tokenId, logprob } = sampler(c, { logprobs: 20, seed: 1 }).sample(row(c.logits));
      expect(c.probs[tokenId]).toBeGreaterThan(0);
      expect(logprob!.logprob).toBeCloseTo(c.logprobs[tokenId]!, 5);
      const ranked = c.logprobs
        .map((l, id) => ({ id, l: l ?? -Infinity }))
        .filter((e) => Number.isFinite(e.l))
        .sort((a, b) => b.l - a.l || a.id - b.id)
        .slice(0, 20);
      expect(logprob!.top.map((t) => t.tokenId)).toEqual(ranked.map((e) => e.id));
      logprob!.top.forEach((t, i) => expect(t.logprob).toBeCloseTo(ranked[i]!.l, 5));
    });
  }
});
