/**
 * The production path: the compiled server (dist/) hosting its engine in a worker thread. With an
 * engine whose every step holds its thread for 50 ms (as a forward pass does), 64 concurrent
 * streams decode while GET /health keeps answering promptly, because the HTTP event loop never
 * runs engine code. Skips, saying why, when dist/ is missing or older than src/serve (build with
 * `npm run build`); vitest cannot start TypeScript worker entries directly.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectFraming, metricValue } from './helpers.js';

const root = resolve(import.meta.dirname, '../..');
const distServe = join(root, 'dist/serve');

function distProblem(): string | null {
  if (!existsSync(join(distServe, 'worker.js')) || !existsSync(join(distServe, 'index.js'))) return 'dist/serve is not built (run `npm run build`)';
  const newestSrc = Math.max(...readdirSync(join(root, 'src/serve')).map((f) => statSync(join(root, 'src/serve', f)).mtimeMs));
  const oldestDist = Math.min(...readdirSync(distServe).filter((f) => f.endsWith('.js')).map((f) => statSync(join(distServe, f)).mtimeMs));
  if (oldestDist < newestSrc) return 'dist/serve is older than src/serve (run `npm run build`)';
  return null;
}
const problem = distProblem();
if (problem !== null) console.warn(`serve worker tests skipped: ${problem}`);

type ServeModule = typeof import('../../src/serve/index.js');

describe.skipIf(problem !== null)('serve: engine in a worker thread (dist)', () => {
  it('64 streams decode while /health answers in < 50 ms; cancel and embeddings cross the thread boundary', { timeout: 120_000 }, async () => {
    // The server runs in its own process (as in production), so these HTTP clients don't share its event loop.
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [join(root, 'test/serve/fixtures/serve-busy.mjs'), root], {
      stdio: ['ignore', 'pipe', 'inherit'],
      // 50 ms engine steps; replies long enough (120 steps) that none of the 64 ends before the checks below.
      env: { ...process.env, WEFT_TEST_BUSY_MS: '50', WEFT_TEST_REPLY_LEN: '120', WEFT_API_KEY: '' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const ready = Date.now() + 30_000;
      while (!/URL (\S+)/.test(out)) {
        if (Date.now() > ready || child.exitCode !== null) throw new Error(`the server did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const url = /URL (\S+)/.exec(out)![1]!;
      const post = (body: unknown, signal?: AbortSignal): Promise<Response> =>
        fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
      const probeHealth = async (times: number): Promise<number[]> => {
        const latencies: number[] = [];
        for (let i = 0; i < times; i++) {
          const t0 = performance.now();
          const r = await fetch(`${url}/health`);
          await r.text();
          latencies.push(performance.now() - t0);
          expect(r.status).toBe(200);
          await new Promise((r) => setTimeout(r, 13));
        }
        return latencies.sort((a, b) => a - b);
      };
      const idle = await probeHealth(10);
      const running = async (): Promise<number | undefined> => metricValue(await (await fetch(`${url}/metrics`)).text(), 'weft:num_requests_running');
      const streams = Array.from({ length: 64 }, () => post({ model: 'busy', prompt: 'hello', max_tokens: 120, stream: true }).then((r) => r.text()));
      const until = Date.now() + 30_000;
      while ((await running()) !== 64) {
        if (Date.now() > until) throw new Error('the 64 streams never all ran');
        await new Promise((r) => setTimeout(r, 20));
      }
      // A 65th sequence is over capacity (maxBatch 64, maxQueue 0).
      expect((await post({ model: 'busy', prompt: 'x' })).status).toBe(429);
      const latencies = await probeHealth(20);
      const median = latencies[10]!;
      console.log(
        `/health under 64 decoding streams (50 ms engine steps in the worker): median ${median.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms` +
          ` (idle server: median ${idle[5]!.toFixed(1)} ms)`,
      );
      expect(median).toBeLessThan(50);
      for (const t of await Promise.all(streams)) {
        expectFraming(t);
        const content = t
          .split('\n\n')
          .filter((e) => e.startsWith('data: {'))
          .map((e) => (JSON.parse(e.slice(6)) as { choices: { text: string }[] }).choices[0]!.text)
          .join('');
        expect(content).toBe('x'.repeat(120));
      }
      // Disconnect → cancel crosses to the worker and the KV usage returns to zero.
      const controller = new AbortController();
      const r = await post({ model: 'busy', prompt: 'hello', max_tokens: 120, stream: true }, controller.signal);
      await r.body!.getReader().read();
      controller.abort();
      const until2 = Date.now() + 10_000;
      for (;;) {
        const m = await (await fetch(`${url}/metrics`)).text();
        if (/finished_reason="abort"\} 1/.test(m) && metricValue(m, 'weft:kv_cache_usage_perc') === 0 && metricValue(m, 'weft:num_requests_running') === 0) break;
        if (Date.now() > until2) throw new Error(`the cancelled stream never finished:\n${m}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const emb = (await (await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'busy', input: 'abc' }) })).json()) as { data: { embedding: number[] }[] };
      expect(emb.data[0]!.embedding).toEqual([1, 0, 0, 0]);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('a model that fails to load is reported, not hung', async () => {
    const mod = (await import(pathToFileURL(join(distServe, 'index.js')).href)) as ServeModule;
    await expect(mod.WorkerHost.start({ modelPath: '/nonexistent/model' }, pathToFileURL(join(root, 'test/serve/fixtures/no-such-factory.mjs')).href)).rejects.toThrow(/no-such-factory|Cannot find/);
  });
});

const storiesDir = resolve(root, '../shared/data/models/stories260K');
const haveStories = existsSync(join(storiesDir, 'stories260K.bin')) && existsSync(join(storiesDir, 'tok512.bin'));
if (problem === null && !haveStories) console.warn(`serve CLI test skipped: ${storiesDir}/stories260K.bin not found`);

describe.skipIf(problem !== null || !haveStories)('weft serve (dist CLI, real engine in its worker)', () => {
  it('prints its URL when ready, serves, and exits 0 on SIGTERM', { timeout: 120_000 }, async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [join(root, 'dist/cli/index.js'), 'serve', join(storiesDir, 'stories260K.bin'), '--port', '0', '--max-batch', '64'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WEFT_API_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const until = Date.now() + 60_000;
      while (!/ready in/.test(stdout)) {
        if (Date.now() > until || child.exitCode !== null) throw new Error(`weft serve did not become ready:\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const url = /at (http:\/\/\S+)/.exec(stdout)![1]!;
      expect(stdout).toContain('stories260K.bin ready');
      expect(stderr).toContain('listening on');
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const r = (await (
        await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stories260K.bin', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }) })
      ).json()) as { choices: { text: string }[] };
      expect(r.choices[0]!.text.length).toBeGreaterThan(0);
      // 64 streams on the real engine: /health still answers promptly (the engine runs in its worker).
      const streams = Array.from({ length: 64 }, (_, i) =>
        fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stories260K.bin', prompt: `Once upon a time ${i}`, max_tokens: 200, temperature: 0, ignore_eos: true, stream: true }) }).then((x) => x.text()),
      );
      const deadline = Date.now() + 30_000;
      while (metricValue(await (await fetch(`${url}/metrics`)).text(), 'weft:num_requests_running') !== 64) {
        if (Date.now() > deadline) throw new Error('the 64 streams never all ran');
        await new Promise((r) => setTimeout(r, 20));
      }
      const latencies: number[] = [];
      for (let i = 0; i < 15; i++) {
        const t0 = performance.now();
        expect((await fetch(`${url}/health`)).status).toBe(200);
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 17));
      }
      latencies.sort((a, b) => a - b);
      console.log(`/health while 64 stories260K streams decode (real engine in the worker): median ${latencies[7]!.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
      expect(latencies[7]!).toBeLessThan(50);
      for (const t of await Promise.all(streams)) expectFraming(t);
      // A long stream in flight when SIGTERM arrives finishes (grace period), then the process exits 0.
      const inflight = fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stories260K.bin', prompt: 'Once', max_tokens: 64, temperature: 0, ignore_eos: true }) }).then((x) => x.json() as Promise<{ usage: { completion_tokens: number } }>);
      await new Promise((r) => setTimeout(r, 100));
      child.kill('SIGTERM');
      expect((await inflight).usage.completion_tokens).toBe(64);
      expect(await exited).toBe(0);
      expect(stderr).toContain('SIGTERM');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
