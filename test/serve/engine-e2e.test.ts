/**
 * The server over the real engine (src/infer/engine.ts) and real models, driven by the official
 * `openai` client.
 * - stories260K, the llama2.c checkpoint (skips, saying why, when ../shared/data is absent):
 *   completions reproduce run.c's greedy reference; chat, streaming with usage, n = 2, logprobs,
 *   json_schema, embeddings, prefix-cache hits; 16 concurrent greedy requests each return exactly
 *   what they return alone; a timeout or a disconnect frees the sequence's KV blocks (/metrics).
 * - a random-weight LLaMA written as an HF directory here (always runs): tool calls with
 *   tool_choice 'required' / named and json_schema, enforced by constrained decoding.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Llama } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { fakeTokenizer } from './fake-engine.js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngineBundle } from '../../src/serve/engine-factory.js';
import type { EngineBundle } from '../../src/serve/host.js';
import { tokenizerFromSavedJSON } from '../../src/data/tokenizer.js';
import { metricValue, startServer, waitFor, type Running } from './helpers.js';

const dir = '../shared/data/models/stories260K';
const have = existsSync(`${dir}/stories260K.bin`) && existsSync(`${dir}/tok512.bin`);
if (!have) console.warn(`serve engine e2e tests skipped: ${dir}/stories260K.bin and tok512.bin not found`);

// run.c's greedy continuation of BOS (the same reference test/infer/engine.test.ts uses).
const RUNC_IDS = '403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385'.split(' ').map(Number);

describe.skipIf(!have)('serve: real engine, stories260K', () => {
  let s: Running;
  let bundle: EngineBundle;
  let client: OpenAI;
  const model = 'stories260K.bin';
  beforeAll(async () => {
    bundle = await createEngineBundle({ modelPath: `${dir}/stories260K.bin`, tokenizer: `${dir}/tok512.bin`, maxBatch: 16 });
    s = await startServer(bundle, { maxBatch: 16 });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => s?.close());

  it('serves the model under its file name, with its context', async () => {
    const models = await client.models.list();
    expect(models.data[0]).toMatchObject({ id: model, max_model_len: 512 });
  });

  it("greedy completion of BOS reproduces run.c's reference", async () => {
    const r = await client.completions.create({ model, prompt: [1], max_tokens: 32, temperature: 0, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    const tok = tokenizerFromSavedJSON(bundle.info.tokenizerJSON);
    const expected = tok.decode([1, ...RUNC_IDS]).slice(tok.decode([1]).length);
    expect(r.choices[0]!.text).toBe(expected);
    expect(r.choices[0]!.text).toContain('Once upon a time, there was a little girl named Lily.');
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage).toMatchObject({ prompt_tokens: 1, completion_tokens: 32 });
  });

  it('text prompts are tokenized like the model tokenizes them (BOS added)', async () => {
    const t = (await (await fetch(`${s.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Once upon a time' }) })).json()) as { tokens: number[] };
    expect(t.tokens[0]).toBe(1);
    const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
    expect(r.usage!.prompt_tokens).toBe(t.tokens.length);
  });

  it('16 concurrent greedy requests each return exactly what they return alone', async () => {
    const prompts = ['Once upon a time', 'The cat', 'Lily and Ben went', 'One day, a little bird', 'Tom had a red ball', 'The sun was', 'Sue liked to', 'A big dog'];
    const alone: string[] = [];
    for (const p of prompts) alone.push((await client.completions.create({ model, prompt: p, max_tokens: 24, temperature: 0 })).choices[0]!.text);
    const together = await Promise.all([...prompts, ...prompts].map((p) => client.completions.create({ model, prompt: p, max_tokens: 24, temperature: 0 })));
    expect(together.map((r) => r.choices[0]!.text)).toEqual([...alone, ...alone]);
  });

  it('chat, streaming with usage, n = 2 seeded and reproducible, logprobs', async () => {
    const chat = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 16, temperature: 0 });
    expect(chat.choices[0]!.message.role).toBe('assistant');
    expect(typeof chat.choices[0]!.message.content).toBe('string');
    expect(chat.usage!.completion_tokens).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(chat.choices[0]!.message.content);
    expect(usage).toMatchObject({ completion_tokens: chat.usage!.completion_tokens, prompt_tokens: chat.usage!.prompt_tokens });

    const two = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 1, n: 2, seed: 42 });
    const again = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 1, n: 2, seed: 42 });
    expect(two.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(two.choices.map((c) => c.text)).toEqual(again.choices.map((c) => c.text));
    expect(two.choices[0]!.text).not.toBe(two.choices[1]!.text);

    const lp = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = lp.choices[0]!.logprobs!.content!;
    expect(content.length).toBe(lp.usage!.completion_tokens);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(3);
      // Greedy: the chosen token is the most likely one.
      expect(t.top_logprobs[0]!.logprob).toBeCloseTo(t.logprob, 5);
    }
  });

  it('json_schema output parses and validates', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['name', 'age'], additionalProperties: false };
    const r = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Who is Lily?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
      max_tokens: 120,
      temperature: 0,
    });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    const value = JSON.parse(r.choices[0]!.message.content!) as { name: unknown; age: unknown };
    expect(Object.keys(value).sort()).toEqual(['age', 'name']);
    expect(typeof value.name).toBe('string');
    expect((value.name as string).length).toBeLessThanOrEqual(12);
    expect(Number.isInteger(value.age) && (value.age as number) >= 0 && (value.age as number) <= 99).toBe(true);
  });

  it('a repeated prompt hits the prefix cache: cached_tokens and the metrics show it', async () => {
    const prompt = 'Once upon a time, there was a little girl named Lily. She liked to play in the park with her friends every day after school.';
    const first = await client.completions.create({ model, prompt, max_tokens: 4, temperature: 0 });
    const hitsBefore = metricValue(await (await fetch(`${s.url}/metrics`)).text(), 'weft:prefix_cache_hits_total')!;
    const second = await client.completions.create({ model, prompt, max_tokens: 4, temperature: 0 });
    const m = await (await fetch(`${s.url}/metrics`)).text();
    expect(first.usage!.prompt_tokens).toBeGreaterThan(16);
    expect(second.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(16);
    expect(second.choices[0]!.text).toBe(first.choices[0]!.text);
    expect(metricValue(m, 'weft:prefix_cache_hits_total')!).toBeGreaterThan(hitsBefore);
    expect(metricValue(m, 'weft:prefix_cache_queries_total')!).toBeGreaterThan(0);
  });

  it('embeddings: unit vectors of the hidden size, deterministic', async () => {
    const r = await client.embeddings.create({ model, input: ['Once upon a time', 'The cat sat', 'Once upon a time'] });
    const [a, b, c] = r.data.map((d) => d.embedding);
    expect(a!.length).toBe(64);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 4);
    expect(c).toEqual(a);
    expect(b).not.toEqual(a);
  });

  it('a request over the timeout is answered 408 and its KV blocks are freed', async () => {
    const t = await startServer(bundle, { timeoutS: 0.3 });
    try {
      const r = await fetch(`${t.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, prompt: 'Once', max_tokens: 480, temperature: 0, ignore_eos: true }),
      });
      expect(r.status).toBe(408);
      expect(t.server.inflight).toBe(0);
      expect(metricValue(await (await fetch(`${t.url}/metrics`)).text(), 'weft:kv_cache_usage_perc')).toBe(0);
    } finally {
      await t.server.app.close(); // the engine is shared with the main server of this file
    }
  });

  it('a client that disconnects mid-stream frees its KV blocks', async () => {
    const controller = new AbortController();
    const r = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt: 'Once upon a time', max_tokens: 400, temperature: 0, ignore_eos: true, stream: true }),
      signal: controller.signal,
    });
    const reader = r.body!.getReader();
    await reader.read();
    await reader.read();
    const during = await (await fetch(`${s.url}/metrics`)).text();
    expect(metricValue(during, 'weft:kv_cache_usage_perc')).toBeGreaterThan(0);
    controller.abort();
    await waitFor(() => s.server.inflight === 0, 10_000, 'the cancelled sequence to finish');
    const after = await (await fetch(`${s.url}/metrics`)).text();
    expect(metricValue(after, 'weft:kv_cache_usage_perc')).toBe(0);
    expect(metricValue(after, 'weft:num_requests_running')).toBe(0);
    expect(after).toMatch(/finished_reason="abort"\} [1-9]/);
  });
});

/**
 * A random-weight LLaMA saved as an HF directory (config.json, model.safetensors, a character
 * tokenizer.json, no chat template: the documented ChatML default with Hermes tool calls). Its
 * output is noise, so whatever comes out valid is the constraint's doing: tool calls and JSON.
 */
describe('serve: real engine, random LLaMA directory (constrained decoding)', () => {
  let s: Running;
  let client: OpenAI;
  let dir: string;
  const model = 'tiny-llama';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-serve-llama-'));
    const tok = fakeTokenizer();
    const llama = new Llama(
      { vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 2048, tieWordEmbeddings: true },
      { generator: new Generator(7) },
    );
    await llama.savePretrained(join(dir, model));
    writeFileSync(join(dir, model, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
    const bundle = await createEngineBundle({ modelPath: join(dir, model), maxBatch: 8 });
    s = await startServer(bundle, { maxBatch: 8 });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tools: OpenAI.ChatCompletionTool[] = [
    { type: 'function', function: { name: 'get_weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] } }, required: ['city'], additionalProperties: false } } },
    { type: 'function', function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'], additionalProperties: false } } },
  ];
  const checkCall = (call: OpenAI.ChatCompletionMessageFunctionToolCall): void => {
    const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
    expect(call.id).toMatch(/^call_/);
    if (call.function.name === 'add') {
      expect(Object.keys(args).sort()).toEqual(['a', 'b']);
      for (const v of [args.a, args.b]) expect(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 99).toBe(true);
    } else {
      expect(call.function.name).toBe('get_weather');
      expect(['Paris', 'Oslo']).toContain(args.city);
    }
  };

  it("tool_choice 'required' and a named function: valid tool calls, finish_reason tool_calls", async () => {
    const required = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools, tool_choice: 'required', max_tokens: 200, temperature: 0 });
    expect(required.choices[0]!.finish_reason).toBe('tool_calls');
    const calls = required.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(calls.length).toBeGreaterThanOrEqual(1);
    calls.forEach(checkCall);
    const named = await client.chat.completions.create({ model, messages: [{ role: 'user', content: '2 + 3?' }], tools, tool_choice: { type: 'function', function: { name: 'add' } }, max_tokens: 200, temperature: 0.8, seed: 5 });
    expect(named.choices[0]!.finish_reason).toBe('tool_calls');
    const namedCalls = named.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(namedCalls.map((c) => c.function.name)).toEqual(namedCalls.map(() => 'add'));
    namedCalls.forEach(checkCall);
  });

  it('streamed tool-call deltas assemble into the same valid call', async () => {
    const body = { model, messages: [{ role: 'user' as const, content: '2 + 3?' }], tools, tool_choice: { type: 'function' as const, function: { name: 'add' } }, max_tokens: 200, temperature: 0 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true });
    let args = '';
    let name = '';
    let finish: string | null = null;
    for await (const c of stream) {
      for (const d of c.choices[0]?.delta.tool_calls ?? []) {
        if (d.index === 0) {
          name += d.function?.name ?? '';
          args += d.function?.arguments ?? '';
        }
      }
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    const first = (whole.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[])[0]!;
    expect(name).toBe('add');
    expect(JSON.parse(args)).toEqual(JSON.parse(first.function.arguments));
    expect(finish).toBe('tool_calls');
  });

  it('json_schema holds even for a model that emits noise', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['ok', 'n'], additionalProperties: false };
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Answer.' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema } }, max_tokens: 200, n: 2, temperature: 1, seed: 1 });
    for (const c of r.choices) {
      expect(c.finish_reason).toBe('stop');
      const v = JSON.parse(c.message.content!) as { ok: unknown; n: unknown };
      expect(typeof v.ok).toBe('boolean');
      expect(Number.isInteger(v.n) && (v.n as number) >= 1 && (v.n as number) <= 9).toBe(true);
    }
  });
});
