/**
 * `weft bench serve --base-url http://127.0.0.1:8000 --requests 200 --concurrency 1,4,16,64 [--json]`:
 * load-tests any OpenAI-compatible server the way vLLM's benchmark_serving does. For each
 * concurrency level, `--requests` streaming completions (fixed prompt length, exactly
 * `--max-tokens` output tokens via ignore_eos) are kept `concurrency` at a time in flight; it
 * reports request throughput, output tokens/s, and TTFT, TPOT, ITL and E2EL (mean, p50, p90, p99).
 * The anchor is the same server at concurrency 1: `speedup_vs_c1` is output tokens/s over that.
 */
import type { Command } from 'commander';
import { formatDuration, type OutputStream } from '../train/progress.js';
import { round } from './common.js';

export interface ServeBenchOptions {
  baseUrl: string;
  requests: number;
  concurrency: number[];
  maxTokens: number;
  promptLen: number;
  apiKey?: string;
  /** Model id (default: the first of GET /v1/models). */
  model?: string;
  /** Progress lines go here (default: none). */
  progress?: OutputStream;
}

export interface LatencySummary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface ServeBenchRecord {
  model: string;
  concurrency: number;
  requests: number;
  completed: number;
  failed: number;
  prompt_len: number;
  max_tokens: number;
  duration_s: number;
  /** Tokens the completed requests produced, and prompt + output tokens (the server's usage counts). */
  output_tokens: number;
  total_tokens: number;
  request_throughput: number;
  output_tokens_per_s: number;
  total_tokens_per_s: number;
  ttft_ms: LatencySummary;
  tpot_ms: LatencySummary;
  itl_ms: LatencySummary;
  e2el_ms: LatencySummary;
  /** output tokens/s over the concurrency-1 level of the same run (null when 1 was not measured). */
  speedup_vs_c1: number | null;
  errors: string[];
}

interface RequestOutcome {
  ok: boolean;
  error?: string;
  promptTokens: number;
  outputTokens: number;
  ttftMs: number;
  e2elMs: number;
  itlMs: number[];
}

/** The q-quantile (0..1) by linear interpolation, numpy's default. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(values: readonly number[]): LatencySummary {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.length === 0 ? NaN : s.reduce((a, b) => a + b, 0) / s.length;
  return { mean: round(mean, 3), p50: round(quantile(s, 0.5), 3), p90: round(quantile(s, 0.9), 3), p99: round(quantile(s, 0.99), 3) };
}

function headers(apiKey: string | undefined): Record<string, string> {
  return { 'content-type': 'application/json', ...(apiKey !== undefined ? { authorization: `Bearer ${apiKey}` } : {}) };
}

async function getJSON(url: string, apiKey: string | undefined, body?: unknown): Promise<unknown> {
  const r = await fetch(url, body === undefined ? { headers: headers(apiKey) } : { method: 'POST', headers: headers(apiKey), body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as unknown;
}

/** Token-id prompts of exactly `len` tokens, each rotated differently so no two share a prefix. */
async function makePrompts(o: ServeBenchOptions, model: string, count: number): Promise<number[][]> {
  const seedText = 'The quick brown fox jumps over the lazy dog while the cat sleeps in the warm afternoon sun. ';
  let ids: number[] = [];
  try {
    const t = (await getJSON(`${o.baseUrl}/tokenize`, o.apiKey, { model, prompt: seedText.repeat(4), add_special_tokens: false })) as { tokens?: number[] };
    ids = t.tokens ?? [];
  } catch {
    // A server without vLLM's /tokenize: small ids are valid in every vocabulary worth benchmarking.
  }
  if (ids.length === 0) ids = Array.from({ length: 64 }, (_, i) => 10 + i);
  return Array.from({ length: count }, (_, r) => Array.from({ length: o.promptLen }, (_, i) => ids[(i + r * 7) % ids.length]!));
}

async function oneRequest(o: ServeBenchOptions, model: string, prompt: number[]): Promise<RequestOutcome> {
  const start = performance.now();
  const out: RequestOutcome = { ok: false, promptTokens: prompt.length, outputTokens: 0, ttftMs: 0, e2elMs: 0, itlMs: [] };
  try {
    const r = await fetch(`${o.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: headers(o.apiKey),
      body: JSON.stringify({ model, prompt, max_tokens: o.maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
    });
    if (!r.ok || r.body === null) {
      out.error = `HTTP ${r.status}: ${(await r.text()).slice(0, 200)}`;
      return out;
    }
    const decoder = new TextDecoder();
    let buf = '';
    let last = 0;
    let chunks = 0;
    let sawDone = false;
    for await (const bytes of r.body) {
      buf += decoder.decode(bytes as Uint8Array, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!event.startsWith('data: ')) continue;
        const data = event.slice(6);
        if (data === '[DONE]') {
          sawDone = true;
          continue;
        }
        const chunk = JSON.parse(data) as { choices?: { text?: string }[]; usage?: { completion_tokens: number; prompt_tokens: number } | null; error?: { message: string } };
        if (chunk.error !== undefined) throw new Error(chunk.error.message);
        if (chunk.usage) {
          out.outputTokens = chunk.usage.completion_tokens;
          out.promptTokens = chunk.usage.prompt_tokens;
        }
        if ((chunk.choices?.[0]?.text ?? '') !== '') {
          const now = performance.now();
          if (chunks === 0) out.ttftMs = now - start;
          else out.itlMs.push(now - last);
          last = now;
          chunks++;
        }
      }
    }
    out.e2elMs = performance.now() - start;
    if (!sawDone) throw new Error('the stream ended without data: [DONE]');
    if (out.outputTokens === 0) out.outputTokens = chunks;
    out.ok = true;
  } catch (e) {
    out.error = e instanceof Error ? e.message : String(e);
  }
  return out;
}

async function runLevel(o: ServeBenchOptions, model: string, prompts: number[][], concurrency: number): Promise<Omit<ServeBenchRecord, 'speedup_vs_c1'>> {
  const outcomes: RequestOutcome[] = [];
  let next = 0;
  const started = performance.now();
  const tick = (): void => {
    o.progress?.write(`\rbench serve: concurrency ${concurrency}: ${outcomes.length}/${o.requests} requests, ${formatDuration((performance.now() - started) / 1000)}\x1b[K`);
  };
  const worker = async (): Promise<void> => {
    while (next < o.requests) {
      const prompt = prompts[next++ % prompts.length]!;
      outcomes.push(await oneRequest(o, model, prompt));
      tick();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, o.requests) }, worker));
  const durationS = (performance.now() - started) / 1000;
  o.progress?.write('\r\x1b[K');
  const ok = outcomes.filter((r) => r.ok);
  const outTokens = ok.reduce((a, r) => a + r.outputTokens, 0);
  const inTokens = ok.reduce((a, r) => a + r.promptTokens, 0);
  const tpot = ok.filter((r) => r.outputTokens > 1).map((r) => (r.e2elMs - r.ttftMs) / (r.outputTokens - 1));
  return {
    model,
    concurrency,
    requests: o.requests,
    completed: ok.length,
    failed: outcomes.length - ok.length,
    prompt_len: o.promptLen,
    max_tokens: o.maxTokens,
    duration_s: round(durationS, 3),
    output_tokens: outTokens,
    total_tokens: outTokens + inTokens,
    request_throughput: round(ok.length / durationS, 3),
    output_tokens_per_s: round(outTokens / durationS, 2),
    total_tokens_per_s: round((outTokens + inTokens) / durationS, 2),
    ttft_ms: summarize(ok.map((r) => r.ttftMs)),
    tpot_ms: summarize(tpot),
    itl_ms: summarize(ok.flatMap((r) => r.itlMs)),
    e2el_ms: summarize(ok.map((r) => r.e2elMs)),
    errors: [...new Set(outcomes.filter((r) => !r.ok).map((r) => r.error ?? 'unknown'))].slice(0, 5),
  };
}

export async function benchServe(o: ServeBenchOptions): Promise<ServeBenchRecord[]> {
  const baseUrl = o.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  const opts = { ...o, baseUrl };
  const models = (await getJSON(`${baseUrl}/v1/models`, o.apiKey)) as { data?: { id: string }[] };
  const model = o.model ?? models.data?.[0]?.id;
  if (model === undefined) throw new Error(`${baseUrl}/v1/models lists no model`);
  const prompts = await makePrompts(opts, model, Math.max(1, o.requests));
  // Warm-up: the first request pays for lazy initialisation on the server.
  const warm = await oneRequest({ ...opts, maxTokens: Math.min(4, o.maxTokens) }, model, prompts[0]!);
  if (!warm.ok) throw new Error(`warm-up request failed: ${warm.error ?? 'unknown error'}`);
  const records: ServeBenchRecord[] = [];
  let c1: number | null = null;
  for (const c of o.concurrency) {
    const r = await runLevel(opts, model, prompts, c);
    if (c === 1) c1 = r.output_tokens_per_s;
    records.push({ ...r, speedup_vs_c1: null });
  }
  for (const r of records) r.speedup_vs_c1 = c1 === null || c1 === 0 ? null : round(r.output_tokens_per_s / c1, 2);
  return records;
}

function positiveIntList(text: string, flag: string): number[] {
  const list = text.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || !list.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`bench serve: ${flag} takes positive integers separated by commas, e.g. 1,4,16,64; got '${text}'`);
  return list;
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench serve: ${flag} must be a positive integer, got '${text}'`);
  return n;
}

export function formatServeBench(records: readonly ServeBenchRecord[]): string[] {
  const lines: string[] = [];
  const r0 = records[0];
  if (r0 === undefined) return lines;
  lines.push(`serving benchmark — model ${r0.model}, prompt ${r0.prompt_len} tokens, ${r0.max_tokens} output tokens per request (ignore_eos), streaming`);
  lines.push('  conc  done  fail   req/s   out tok/s  ×c1    TTFT ms mean/p50/p90/p99     TPOT ms mean/p99   ITL ms mean/p99   E2EL ms mean/p99');
  const f = (x: number, w: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-').padStart(w);
  for (const r of records) {
    lines.push(
      `${String(r.concurrency).padStart(6)}${String(r.completed).padStart(6)}${String(r.failed).padStart(6)}${f(r.request_throughput, 8, 2)}${f(r.output_tokens_per_s, 12)}` +
        `${(r.speedup_vs_c1 === null ? '-' : r.speedup_vs_c1.toFixed(2)).padStart(6)}   ` +
        `${f(r.ttft_ms.mean, 7)}/${f(r.ttft_ms.p50, 6)}/${f(r.ttft_ms.p90, 6)}/${f(r.ttft_ms.p99, 6)}` +
        `   ${f(r.tpot_ms.mean, 7, 2)}/${f(r.tpot_ms.p99, 7, 2)}  ${f(r.itl_ms.mean, 7, 2)}/${f(r.itl_ms.p99, 7, 2)}  ${f(r.e2el_ms.mean, 8)}/${f(r.e2el_ms.p99, 8)}`,
    );
    for (const e of r.errors) lines.push(`        error: ${e}`);
  }
  return lines;
}

export function registerServeBench(bench: Command): void {
  bench
    .command('serve')
    .description("load-test an OpenAI-compatible server like vLLM's benchmark_serving: throughput, TTFT, TPOT, ITL, E2EL per concurrency")
    .option('--base-url <url>', 'the server (default: http://127.0.0.1:8000)', 'http://127.0.0.1:8000')
    .option('--requests <n>', 'requests per concurrency level', '200')
    .option('--concurrency <list>', 'concurrency levels, comma-separated', '1,4,16,64')
    .option('--max-tokens <n>', 'output tokens per request (exact: ignore_eos)', '128')
    .option('--prompt-len <n>', 'prompt tokens per request', '32')
    .option('--model <id>', 'model id (default: the first of GET /v1/models)')
    .option('--api-key <key>', 'Bearer key (default: $WEFT_API_KEY)')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { baseUrl: string; requests: string; concurrency: string; maxTokens: string; promptLen: string; model?: string; apiKey?: string; json?: boolean }) => {
      const records = await benchServe({
        baseUrl: opts.baseUrl,
        requests: positiveInt(opts.requests, '--requests'),
        concurrency: positiveIntList(opts.concurrency, '--concurrency'),
        maxTokens: positiveInt(opts.maxTokens, '--max-tokens'),
        promptLen: positiveInt(opts.promptLen, '--prompt-len'),
        apiKey: opts.apiKey ?? (process.env.WEFT_API_KEY || undefined),
        model: opts.model,
        progress: process.stderr.isTTY ? process.stderr : undefined,
      });
      if (opts.json === true) {
        for (const r of records) console.log(JSON.stringify(r));
        return;
      }
      for (const line of formatServeBench(records)) console.log(line);
    });
}
