/**
 * A bounded soak: 10,000 quick requests (completions, chat, streaming) over real HTTP against the
 * fake engine. Afterwards nothing is in flight and the heap (after a forced GC) is where it was
 * after the warm-up: per-request state is not retained.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type Running } from './helpers.js';
import type { FakeEngine } from './fake-engine.js';

/** A GC function: the global one under --expose-gc, else one obtained by turning the flag on now. */
function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function heapAfterGC(gc: () => void, engine: FakeEngine): Promise<number> {
  engine.submitted.length = 0; // the fake's own log of requests is not the server's memory
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

describe('serve: soak', () => {
  let s: Running & { engine: FakeEngine };
  beforeAll(async () => {
    s = await startFake({ reply: () => 'ok', maxRunning: 64 }, { maxBatch: 64, maxQueue: 64 });
  });
  afterAll(() => s.close());

  it('10,000 requests keep memory flat and leave nothing in flight', { timeout: 300_000 }, async () => {
    const gc = gcFunction();
    const bodies = [
      { path: '/v1/completions', body: JSON.stringify({ model: 'fake-model', prompt: 'hi', max_tokens: 2 }) },
      { path: '/v1/chat/completions', body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) },
      { path: '/v1/completions', body: JSON.stringify({ model: 'fake-model', prompt: 'hi', max_tokens: 2, stream: true, stream_options: { include_usage: true } }) },
    ];
    let sent = 0;
    let failures = 0;
    const run = async (total: number): Promise<void> => {
      const worker = async (): Promise<void> => {
        while (sent < total) {
          const b = bodies[sent++ % bodies.length]!;
          const r = await fetch(`${s.url}${b.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b.body });
          const text = await r.text();
          if (r.status !== 200 || text.length === 0) failures++;
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
    };
    await run(1000); // warm-up: JIT, connection pool, metric label sets
    const before = await heapAfterGC(gc, s.engine);
    sent = 0;
    await run(10_000);
    const after = await heapAfterGC(gc, s.engine);
    expect(failures).toBe(0);
    expect(s.server.inflight).toBe(0);
    expect(s.engine.stats().running + s.engine.stats().waiting).toBe(0);
    const growthMB = (after - before) / 2 ** 20;
    console.log(`soak: heap after warm-up ${(before / 2 ** 20).toFixed(1)} MiB, after 10,000 requests ${(after / 2 ** 20).toFixed(1)} MiB (${growthMB >= 0 ? '+' : ''}${growthMB.toFixed(2)} MiB)`);
    // Retaining even 1 KB per request would add ~10 MiB.
    expect(growthMB).toBeLessThan(5);
  });
});
