/**
 * The HTTP layer over a fake engine, driven by the official `openai` client and by raw fetch:
 * routes, OpenAI's response and error shapes, SSE framing, n > 1, logprobs, embeddings, admission
 * (429 + Retry-After), disconnect → cancel, timeout → 408, API keys, CORS, graceful shutdown.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessHost } from '../../src/serve/host.js';
import { WeftServer, apiKeyMatches } from '../../src/serve/server.js';
import { fakeBundle } from './fake-engine.js';
import { metricValue, postJSON, readSSE, startFake, waitFor, type Running } from './helpers.js';
import type { FakeEngine } from './fake-engine.js';

describe('serve: completions, embeddings, tokenize over a fake engine', () => {
  let s: Running & { engine: FakeEngine };
  let client: OpenAI;
  beforeAll(async () => {
    s = await startFake({ reply: (req) => `Hi ${req.sampling.seed ?? 'x'}.`, contextLength: 64 });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused' });
  });
  afterAll(() => s.close());

  it('lists the model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['fake-model']);
    const one = await client.models.retrieve('fake-model');
    expect(one.id).toBe('fake-model');
  });

  it('completes a prompt with usage', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: 'abc', max_tokens: 20, seed: 7 });
    expect(r.object).toBe('text_completion');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.text).toBe('Hi 7.');
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
    const sub = s.engine.submitted.at(-1)!;
    expect(sub.promptIds).toHaveLength(3);
    expect(sub.sampling).toMatchObject({ maxTokens: 20, seed: 7, temperature: 1 });
  });

  it('stops at max_tokens with finish_reason length', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: 'abc', max_tokens: 2 });
    expect(r.choices[0]!.text).toBe('Hi');
    expect(r.choices[0]!.finish_reason).toBe('length');
  });

  it('maps every sampling field onto the engine request', async () => {
    await postJSON(`${s.url}/v1/completions`, {
      model: 'fake-model', prompt: [5, 6, 7], max_tokens: 3, temperature: 0.5, top_p: 0.9, top_k: 40, min_p: 0.05,
      repetition_penalty: 1.1, presence_penalty: 0.5, frequency_penalty: -0.5, logit_bias: { '12': 3 }, stop: 'x', ignore_eos: true, stop_token_ids: [0],
    });
    expect(s.engine.submitted.at(-1)).toMatchObject({
      promptIds: [5, 6, 7],
      sampling: { maxTokens: 3, temperature: 0.5, topP: 0.9, topK: 40, minP: 0.05, repetitionPenalty: 1.1, presencePenalty: 0.5, frequencyPenalty: -0.5, logitBias: { 12: 3 }, stop: ['x'], ignoreEos: true, stopTokenIds: [0] },
    });
  });

  it('n = 2 gives two indexed choices, seeded seed + i', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: 'abc', max_tokens: 10, n: 2, seed: 3 });
    expect(r.choices.map((c) => [c.index, c.text])).toEqual([
      [0, 'Hi 3.'],
      [1, 'Hi 4.'],
    ]);
    expect(r.usage?.completion_tokens).toBe(10);
    expect(r.usage?.prompt_tokens).toBe(3);
  });

  it('several prompts: choices per prompt × n', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: ['ab', 'cde'], max_tokens: 10, n: 2, seed: 1 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(r.usage?.prompt_tokens).toBe(5);
    expect(s.engine.submitted.slice(-4).map((q) => q.promptIds.length)).toEqual([2, 2, 3, 3]);
  });

  it('cached_tokens counts each prompt once, whatever n', async () => {
    const prompt = 'a prompt of more than sixteen characters';
    const first = await client.completions.create({ model: 'fake-model', prompt, max_tokens: 2 });
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    const again = await client.completions.create({ model: 'fake-model', prompt, max_tokens: 2, n: 3 });
    expect(again.usage?.prompt_tokens_details?.cached_tokens).toBe(32);
    const two = await client.completions.create({ model: 'fake-model', prompt: [prompt, prompt], max_tokens: 2, n: 2 });
    expect(two.usage?.prompt_tokens_details?.cached_tokens).toBe(64);
    expect(two.usage?.prompt_tokens).toBe(2 * prompt.length);
  });

  it('logprobs in the completions shape', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: 'abc', max_tokens: 2, logprobs: 2, seed: 1 });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toEqual(['H', 'i']);
    expect(lp.token_logprobs).toEqual([-0.25, -0.25]);
    expect(lp.text_offset).toEqual([0, 1]);
    expect(Object.keys(lp.top_logprobs![0]!)).toHaveLength(2);
    expect(s.engine.submitted.at(-1)!.sampling.logprobs).toBe(2);
  });

  it('echo prepends the prompt', async () => {
    const r = await client.completions.create({ model: 'fake-model', prompt: 'abc', max_tokens: 10, echo: true, seed: 2 });
    expect(r.choices[0]!.text).toBe('abcHi 2.');
  });

  it('streams completions in OpenAI framing with a usage chunk', async () => {
    const stream = await client.completions.create({ model: 'fake-model', prompt: 'abc', max_tokens: 20, seed: 5, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text;
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hi 5.');
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
    // Raw framing: data: {...}\n\n … data: [DONE]\n\n, usage chunk with empty choices last.
    const r = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', prompt: 'abc', max_tokens: 20, stream: true, stream_options: { include_usage: true } }),
    });
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await readSSE(r);
    expect(events.at(-1)).toBe('[DONE]');
    const usageChunk = events.at(-2) as { choices: unknown[]; usage: { completion_tokens: number } };
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage.completion_tokens).toBe(5);
    const normal = events.slice(0, -2) as { usage: unknown }[];
    expect(normal.every((e) => e.usage === null)).toBe(true);
  });

  it('embeddings: float and base64 (the client default) agree and are unit length', async () => {
    const r = await client.embeddings.create({ model: 'fake-model', input: ['hello', 'abc'] });
    expect(r.data).toHaveLength(2);
    const v = r.data[0]!.embedding;
    expect(v).toHaveLength(8);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    const f = await client.embeddings.create({ model: 'fake-model', input: 'hello', encoding_format: 'float' });
    expect(f.data[0]!.embedding).toEqual(v);
    expect(r.usage.prompt_tokens).toBe(8);
  });

  it('tokenize / detokenize round trip', async () => {
    const t = await postJSON(`${s.url}/tokenize`, { prompt: 'Hey!' });
    expect(t.status).toBe(200);
    const tok = t.json as { count: number; tokens: number[]; max_model_len: number };
    expect(tok.count).toBe(4);
    expect(tok.max_model_len).toBe(64);
    const d = await postJSON(`${s.url}/detokenize`, { tokens: tok.tokens });
    expect(d.json).toEqual({ prompt: 'Hey!' });
  });

  it('health, playground and metrics', async () => {
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const page = await fetch(`${s.url}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('/v1/chat/completions');
    expect(html).not.toMatch(/https?:\/\/(?!localhost)/);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    for (const name of [
      'weft:time_to_first_token_seconds_bucket', 'weft:inter_token_latency_seconds_bucket', 'weft:e2e_request_latency_seconds_bucket',
      'weft:request_queue_time_seconds_bucket', 'weft:time_per_output_token_seconds_bucket', 'weft:num_requests_running', 'weft:num_requests_waiting',
      'weft:kv_cache_usage_perc', 'weft:prefix_cache_hits_total', 'weft:prefix_cache_queries_total', 'weft:prompt_tokens_total',
      'weft:generation_tokens_total', 'weft:request_success_total',
    ]) {
      expect(metricValue(m, name), name).toBeDefined();
    }
    expect(metricValue(m, 'weft:generation_tokens_total')).toBeGreaterThan(0);
    expect(m).toMatch(/weft:request_success_total\{model_name="fake-model",finished_reason="length"\} [1-9]/);
  });
});

describe('serve: errors in OpenAI shape', () => {
  let s: Running & { engine: FakeEngine };
  let client: OpenAI;
  beforeAll(async () => {
    s = await startFake({ contextLength: 32 });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => s.close());

  const expectError = (json: unknown, param: string | null, code?: string): void => {
    const e = (json as { error: { message: string; type: string; param: string | null; code: string | null } }).error;
    expect(typeof e.message).toBe('string');
    expect(typeof e.type).toBe('string');
    expect(e.param).toBe(param);
    if (code !== undefined) expect(e.code).toBe(code);
  };

  it('malformed JSON → 400', async () => {
    const r = await postJSON(`${s.url}/v1/completions`, '{"model": "fake-model", "prompt": ');
    expect(r.status).toBe(400);
    expectError(r.json, null, 'invalid_json');
  });

  it('wrong types → 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ model: 'fake-model', prompt: 'a', max_tokens: 'ten' }, 'max_tokens'],
      [{ model: 'fake-model', prompt: 'a', temperature: 3 }, 'temperature'],
      [{ model: 'fake-model', prompt: 7 }, 'prompt'],
      [{ prompt: 'a' }, 'model'],
      [{ model: 'fake-model', prompt: 'a', stop: [1] }, 'stop'],
      [{ model: 'fake-model', prompt: 'a', logit_bias: { x: 1 } }, 'logit_bias.x'],
      [{ model: 'fake-model', prompt: 'a', n: 0 }, 'n'],
    ];
    for (const [body, param] of cases) {
      const r = await postJSON(`${s.url}/v1/completions`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expectError(r.json, param);
      expect((r.json as { error: { message: string } }).error.message).toContain(param);
    }
    const chat = await postJSON(`${s.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'user' }] });
    expect(chat.status).toBe(400);
    expectError(chat.json, 'messages[0].content');
    const role = await postJSON(`${s.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'robot', content: 'x' }] });
    expect(role.status).toBe(400);
    expectError(role.json, 'messages[0].role');
  });

  it('the SDK raises BadRequestError / NotFoundError', async () => {
    await expect(client.completions.create({ model: 'nope', prompt: 'a' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.completions.create({ model: 'fake-model', prompt: 'a', max_tokens: 0 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('unknown model → 404 model_not_found', async () => {
    const r = await postJSON(`${s.url}/v1/completions`, { model: 'gpt-4', prompt: 'a' });
    expect(r.status).toBe(404);
    expectError(r.json, 'model', 'model_not_found');
  });

  it('prompt + max_tokens over the context → 400 context_length_exceeded, nothing submitted', async () => {
    const before = s.engine.submitted.length;
    const r = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'x'.repeat(30), max_tokens: 3 });
    expect(r.status).toBe(400);
    expectError(r.json, 'prompt', 'context_length_exceeded');
    expect((r.json as { error: { message: string } }).error.message).toMatch(/32/);
    const long = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'x'.repeat(40) });
    expect(long.status).toBe(400);
    expectError(long.json, 'prompt', 'context_length_exceeded');
    const emb = await postJSON(`${s.url}/v1/embeddings`, { model: 'fake-model', input: 'x'.repeat(40) });
    expect(emb.status).toBe(400);
    expectError(emb.json, 'input', 'context_length_exceeded');
    expect(s.engine.submitted.length).toBe(before);
    // Exactly at the limit is fine.
    const fits = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'x'.repeat(29), max_tokens: 3 });
    expect(fits.status).toBe(200);
  });

  it('token ids outside the vocabulary, untokenizable text, empty prompt → 400', async () => {
    const big = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: [1, 99999] });
    expect(big.status).toBe(400);
    expectError(big.json, 'prompt', 'invalid_token_id');
    const odd = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'naïve' });
    expect(odd.status).toBe(400);
    expectError(odd.json, 'prompt', 'tokenization_error');
    const empty = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: '' });
    expect(empty.status).toBe(400);
    expectError(empty.json, 'prompt', 'empty_prompt');
    const detok = await postJSON(`${s.url}/detokenize`, { tokens: [100000] });
    expect(detok.status).toBe(400);
  });

  it('unknown routes → 404 in OpenAI shape', async () => {
    const r = await postJSON(`${s.url}/v1/nothing`, {});
    expect(r.status).toBe(404);
    expectError(r.json, null, 'not_found');
  });
});

describe('serve: admission, cancellation, timeouts', () => {
  it('overload gives 429 with Retry-After, and the server keeps serving', async () => {
    // Each admitted request takes 100 steps of 20 ms, so none finishes while the 12 arrive.
    const s = await startFake({ stepMs: 20, maxRunning: 2, reply: () => 'x'.repeat(100) }, { maxBatch: 2, maxQueue: 2 });
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, () => postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'a', max_tokens: 100 })),
      );
      const ok = results.filter((r) => r.status === 200);
      const limited = results.filter((r) => r.status === 429);
      expect(ok.length).toBe(4);
      expect(limited.length).toBe(8);
      for (const r of limited) {
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect((r.json as { error: { type: string; code: string } }).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
      }
      expect(s.engine.submitted.length).toBe(4);
      // n counts: a request for 5 sequences never fits 4 slots.
      const tooMany = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'a', n: 5 });
      expect(tooMany.status).toBe(429);
      const after = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'a', max_tokens: 2 });
      expect(after.status).toBe(200);
      expect(await (await fetch(`${s.url}/metrics`)).text()).toMatch(/weft:request_errors_total\{model_name="fake-model",reason="rate_limit_exceeded"\} 9\n/);
    } finally {
      await s.close();
    }
  });

  it('a client that disconnects mid-stream has its sequence cancelled and its KV freed', async () => {
    const s = await startFake({ stepMs: 10, reply: () => 'x'.repeat(200) }, { timeoutS: 30 });
    try {
      const controller = new AbortController();
      const r = await fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake-model', prompt: 'a'.repeat(40), max_tokens: 200, stream: true }),
        signal: controller.signal,
      });
      const reader = r.body!.getReader();
      await reader.read(); // first chunk arrived: the sequence is decoding
      await waitFor(async () => metricValue(await (await fetch(`${s.url}/metrics`)).text(), 'weft:kv_cache_usage_perc')! > 0, 5000, 'KV in use');
      controller.abort();
      const id = s.engine.submitted.at(-1)!.id;
      await waitFor(() => s.engine.cancelled.includes(id), 5000, 'engine.cancel');
      await waitFor(() => s.server.inflight === 0, 5000, 'sequence finished');
      const m = await (await fetch(`${s.url}/metrics`)).text();
      expect(metricValue(m, 'weft:kv_cache_usage_perc')).toBe(0);
      expect(metricValue(m, 'weft:num_requests_running')).toBe(0);
      expect(m).toMatch(/finished_reason="abort"\} 1/);
    } finally {
      await s.close();
    }
  });

  it('a non-streaming client that disconnects is cancelled too', async () => {
    const s = await startFake({ stepMs: 10, reply: () => 'x'.repeat(500), contextLength: 2048 });
    try {
      const controller = new AbortController();
      const p = fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake-model', prompt: 'a', max_tokens: 500 }),
        signal: controller.signal,
      }).catch(() => null);
      await waitFor(() => s.engine.submitted.length === 1, 5000, 'submission');
      controller.abort();
      await p;
      await waitFor(() => s.engine.cancelled.includes(s.engine.submitted[0]!.id), 5000, 'engine.cancel');
    } finally {
      await s.close();
    }
  });

  it('a request over --timeout is answered 408 and cancelled', async () => {
    const s = await startFake({ stepMs: 20, reply: () => 'x'.repeat(500), contextLength: 2048 }, { timeoutS: 0.2 });
    try {
      const r = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'a', max_tokens: 500 });
      expect(r.status).toBe(408);
      expect((r.json as { error: { code: string } }).error.code).toBe('timeout');
      expect(s.engine.submitted[0]!.timeoutMs).toBe(200);
      expect(s.server.inflight).toBe(0);
      // Streaming: an error event, then [DONE].
      const sr = await fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake-model', prompt: 'a', max_tokens: 500, stream: true }),
      });
      const events = await readSSE(sr);
      expect(events.at(-1)).toBe('[DONE]');
      expect((events.at(-2) as { error: { code: string } }).error.code).toBe('timeout');
    } finally {
      await s.close();
    }
  });
});

describe('serve: auth, CORS, lifecycle', () => {
  it('API keys: Bearer required except /health; wrong keys refused', async () => {
    const s = await startFake({}, { apiKey: 'sekrit' });
    try {
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
      const none = await fetch(`${s.url}/v1/models`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: { type: string } }).error.type).toBe('authentication_error');
      expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Bearer sekrit' } })).status).toBe(200);
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sekrit' });
      expect((await client.completions.create({ model: 'fake-model', prompt: 'a', max_tokens: 2 })).choices[0]!.text).toBe('He');
      await expect(new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'bad', maxRetries: 0 }).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    } finally {
      await s.close();
    }
  });

  it('key comparison is by digest (any length), exact', () => {
    expect(apiKeyMatches('abc', 'abc')).toBe(true);
    expect(apiKeyMatches('abc', 'abcd')).toBe(false);
    expect(apiKeyMatches('', 'x')).toBe(false);
  });

  it('refuses a non-loopback address without a key', () => {
    const saved = process.env.WEFT_API_KEY;
    delete process.env.WEFT_API_KEY;
    try {
      expect(() => new WeftServer({ host: '0.0.0.0' })).toThrow(/--api-key/);
      expect(() => new WeftServer({ host: '0.0.0.0', apiKey: 'k' })).not.toThrow();
      expect(() => new WeftServer({ host: '0.0.0.0', allowUnauthenticated: true })).not.toThrow();
      expect(() => new WeftServer({ host: '127.0.0.1' })).not.toThrow();
      process.env.WEFT_API_KEY = 'from-env';
      expect(() => new WeftServer({ host: '0.0.0.0' })).not.toThrow();
    } finally {
      if (saved === undefined) delete process.env.WEFT_API_KEY;
      else process.env.WEFT_API_KEY = saved;
    }
  });

  it('CORS: preflight and allow-origin for the configured origin only', async () => {
    const s = await startFake({}, { cors: 'http://app.example', apiKey: 'k' });
    try {
      const pre = await fetch(`${s.url}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('http://app.example');
      expect(pre.headers.get('access-control-allow-headers')).toBe('authorization,content-type');
      const other = await fetch(`${s.url}/health`, { headers: { origin: 'http://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const stream = await fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { origin: 'http://app.example', authorization: 'Bearer k', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake-model', prompt: 'a', max_tokens: 2, stream: true }),
      });
      expect(stream.headers.get('access-control-allow-origin')).toBe('http://app.example');
      await stream.text();
    } finally {
      await s.close();
    }
  });

  it('/health is 503 while loading and after a load failure; requests get 503', async () => {
    const server = new WeftServer({ port: 0 });
    const url = await server.listen();
    try {
      let resolve!: (h: InProcessHost) => void;
      const loading = server.load(new Promise<InProcessHost>((r) => (resolve = r)));
      const h = await fetch(`${url}/health`);
      expect(h.status).toBe(503);
      expect(await h.json()).toEqual({ status: 'loading' });
      const r = await postJSON(`${url}/v1/completions`, { model: 'fake-model', prompt: 'a' });
      expect(r.status).toBe(503);
      expect((r.json as { error: { code: string } }).error.code).toBe('model_loading');
      resolve(new InProcessHost(fakeBundle()));
      await loading;
      expect((await fetch(`${url}/health`)).status).toBe(200);
    } finally {
      await server.shutdown(100);
    }
    const failed = new WeftServer({ port: 0 });
    const url2 = await failed.listen();
    try {
      await expect(failed.load(Promise.reject(new Error('no such model')))).rejects.toThrow('no such model');
      const h = await fetch(`${url2}/health`);
      expect(h.status).toBe(503);
      expect(await h.json()).toEqual({ status: 'failed', error: 'no such model' });
    } finally {
      await failed.shutdown(100);
    }
  });

  it('graceful shutdown: stops admitting, lets in-flight finish, then closes', async () => {
    const s = await startFake({ stepMs: 10, reply: () => 'abcdefghijklmnopqrst' });
    const inflight = postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'a', max_tokens: 20 });
    await waitFor(() => s.server.inflight === 1, 5000, 'admission');
    const closing = s.server.shutdown(5000);
    const refused = await postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'a', max_tokens: 2 }).catch(() => null);
    if (refused !== null) {
      expect(refused.status).toBe(503);
      expect((refused.json as { error: { code: string } }).error.code).toBe('shutting_down');
    }
    const done = await inflight;
    expect(done.status).toBe(200);
    expect((done.json as { choices: { text: string }[] }).choices[0]!.text).toBe('abcdefghijklmnopqrst');
    await closing;
    await expect(fetch(`${s.url}/health`)).rejects.toThrow();
  });

  it('graceful shutdown cancels what outlives the grace period', async () => {
    const s = await startFake({ stepMs: 20, reply: () => 'x'.repeat(1000), contextLength: 2048 });
    const inflight = postJSON(`${s.url}/v1/completions`, { model: 'fake-model', prompt: 'a', max_tokens: 1000 });
    await waitFor(() => s.server.inflight === 1, 5000, 'admission');
    await s.server.shutdown(100);
    expect(s.engine.cancelled).toHaveLength(1);
    await inflight.catch(() => null);
  });
});
