/** `weft bench serve` against a server over the fake engine: counts, token totals, percentiles. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchServe, formatServeBench, quantile, summarize } from '../../src/bench/serve.js';
import { startFake, type Running } from './helpers.js';
import type { FakeEngine } from './fake-engine.js';

describe('bench serve', () => {
  let s: Running & { engine: FakeEngine };
  beforeAll(async () => {
    s = await startFake({ reply: () => 'y'.repeat(100), stepMs: 2, maxRunning: 8 }, { apiKey: 'bench-key' });
  });
  afterAll(() => s.close());

  it('quantiles interpolate like numpy', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0.9)).toBeCloseTo(3.7, 10);
    expect(quantile([5], 0.99)).toBe(5);
    expect(summarize([3, 1, 2])).toEqual({ mean: 2, p50: 2, p90: 2.8, p99: 2.98 });
  });

  it('measures every level with exact token counts', async () => {
    const records = await benchServe({ baseUrl: `${s.url}/v1`, requests: 8, concurrency: [1, 4], maxTokens: 5, promptLen: 12, apiKey: 'bench-key' });
    expect(records.map((r) => r.concurrency)).toEqual([1, 4]);
    for (const r of records) {
      expect(r.model).toBe('fake-model');
      expect(r.completed).toBe(8);
      expect(r.failed).toBe(0);
      expect(r.output_tokens).toBe(40);
      expect(r.total_tokens).toBe(136);
      // The rates are those counts over the measured duration (which is rounded to 1 ms).
      expect(Math.abs(r.output_tokens_per_s * r.duration_s - 40)).toBeLessThanOrEqual((40 * 0.0005) / r.duration_s + 0.01);
      expect(r.ttft_ms.p50).toBeGreaterThan(0);
      expect(r.ttft_ms.p99).toBeGreaterThanOrEqual(r.ttft_ms.p50);
      expect(r.e2el_ms.mean).toBeGreaterThanOrEqual(r.ttft_ms.mean);
      expect(r.itl_ms.mean).toBeGreaterThan(0);
    }
    expect(records[0]!.speedup_vs_c1).toBe(1);
    // The prompts went in as 12 token ids each, with ignore_eos and greedy sampling.
    const sub = s.engine.submitted.at(-1)!;
    expect(sub.promptIds).toHaveLength(12);
    expect(sub.sampling).toMatchObject({ maxTokens: 5, temperature: 0, ignoreEos: true });
    const table = formatServeBench(records);
    expect(table[0]).toContain('fake-model');
    expect(table).toHaveLength(4);
  });

  it('failures are counted, not fatal', async () => {
    const records = await benchServe({ baseUrl: s.url, requests: 3, concurrency: [2], maxTokens: 300, promptLen: 4, apiKey: 'bench-key' }).catch((e: unknown) => e);
    // 4 + 300 fits the fake's 256-token context? No: the warm-up (4 tokens) passes, every measured request gets 400.
    expect(Array.isArray(records)).toBe(true);
    const r = (records as Awaited<ReturnType<typeof benchServe>>)[0]!;
    expect(r.completed).toBe(0);
    expect(r.failed).toBe(3);
    expect(r.errors[0]).toMatch(/HTTP 400/);
  });
});
