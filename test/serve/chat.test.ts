/**
 * Chat completions over the fake engine with the real chat templates (src/infer/chat): rendering,
 * streaming deltas (role first, content, finish, usage), n > 1, logprobs, response_format and tool
 * calling (auto / required / named / none) as the engine receives them and as clients read them.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineRequest } from '../../src/infer/api.js';
import { fakeTokenizer, type FakeEngine } from './fake-engine.js';
import { postJSON, readSSE, startFake, type Running } from './helpers.js';

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

/** The fake answers with a Hermes tool call when the prompt lists tools, else with plain text. */
function reply(req: EngineRequest): string {
  const prompt = fakeTokenizer().decode(req.promptIds);
  if (prompt.includes('<tools>')) return 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
  if (req.constraint?.type === 'json_schema' || req.constraint?.type === 'json_object') return '{"answer": 42}';
  return `Sure${req.sampling.seed !== undefined ? ` #${req.sampling.seed}` : ''}!`;
}

describe('serve: chat completions', () => {
  let s: Running & { engine: FakeEngine };
  let client: OpenAI;
  beforeAll(async () => {
    s = await startFake({ reply, contextLength: 1024 });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => s.close());

  const lastPrompt = (): string => fakeTokenizer().decode(s.engine.submitted.at(-1)!.promptIds);

  it('renders the messages with the chat template and answers', async () => {
    const r = await client.chat.completions.create({
      model: 'fake-model',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hello' }] },
      ],
      max_tokens: 50,
    });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'Sure!' });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(lastPrompt()).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n');
    expect(r.usage).toMatchObject({ prompt_tokens: lastPrompt().length, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 0 } });
    // The template's end of turn is a stop string.
    expect(s.engine.submitted.at(-1)!.sampling.stop).toContain('<|im_end|>');
    // max_tokens defaults to the rest of the context.
    await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }] });
    expect(s.engine.submitted.at(-1)!.sampling.maxTokens).toBe(1024 - lastPrompt().length);
  });

  it('the render extension returns what the engine receives', async () => {
    const messages = [{ role: 'user', content: 'What is up?' }];
    const r = await postJSON(`${s.url}/v1/chat/render`, { messages });
    const rendered = r.json as { prompt: string; token_count: number; tokens: number[] };
    await client.chat.completions.create({ model: 'fake-model', messages: messages as OpenAI.ChatCompletionMessageParam[], max_tokens: 5 });
    expect(rendered.prompt).toBe(lastPrompt());
    expect(rendered.tokens).toEqual(s.engine.submitted.at(-1)!.promptIds);
    expect(rendered.token_count).toBe(rendered.tokens.length);
    const tok = await postJSON(`${s.url}/tokenize`, { messages });
    expect((tok.json as { tokens: number[] }).tokens).toEqual(rendered.tokens);
  });

  it('streams: role delta first, content deltas, finish chunk, usage chunk, [DONE]', async () => {
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true }, max_tokens: 50 }),
    });
    const events = await readSSE(r);
    type Chunk = { object: string; choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[]; usage: unknown };
    const chunks = events.slice(0, -1) as Chunk[];
    expect(events.at(-1)).toBe('[DONE]');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    const content = chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? '')).join('');
    expect(content).toBe('Sure!');
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish).toHaveLength(1);
    expect(finish[0]!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 5 });
    // With the SDK
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }], stream: true, max_tokens: 50 });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('Sure!');
  });

  it('n = 2 with a seed: two choices, seeds seed and seed + 1', async () => {
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }], n: 2, seed: 10, max_tokens: 50 });
    expect(r.choices.map((c) => [c.index, c.message.content])).toEqual([
      [0, 'Sure #10!'],
      [1, 'Sure #11!'],
    ]);
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }], n: 2, seed: 10, max_tokens: 50, stream: true });
    const texts = ['', ''];
    for await (const c of stream) for (const ch of c.choices) texts[ch.index] += ch.delta.content ?? '';
    expect(texts).toEqual(['Sure #10!', 'Sure #11!']);
  });

  it('logprobs in the chat shape', async () => {
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }], logprobs: true, top_logprobs: 3, max_tokens: 2 });
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp.map((t) => t.token)).toEqual(['S', 'u']);
    expect(lp[0]!.logprob).toBe(-0.25);
    expect(lp[0]!.bytes).toEqual([83]);
    expect(lp[0]!.top_logprobs).toHaveLength(3);
    expect(s.engine.submitted.at(-1)!.sampling.logprobs).toBe(3);
    const bad = await postJSON(`${s.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }], top_logprobs: 2 });
    expect(bad.status).toBe(400);
  });

  it('response_format json_schema / json_object become engine constraints', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'integer' } }, required: ['answer'] };
    const r = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'Answer?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
      max_tokens: 50,
    });
    expect(s.engine.submitted.at(-1)!.constraint).toEqual({ type: 'json_schema', schema });
    expect(JSON.parse(r.choices[0]!.message.content!)).toEqual({ answer: 42 });
    await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Answer?' }], response_format: { type: 'json_object' }, max_tokens: 50 });
    expect(s.engine.submitted.at(-1)!.constraint).toEqual({ type: 'json_object' });
  });

  it("tool_choice 'auto': tools rendered, the reply parsed into tool_calls", async () => {
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER_TOOL], max_tokens: 200 });
    expect(lastPrompt()).toContain('"name": "get_weather"');
    expect(s.engine.submitted.at(-1)!.constraint).toBeUndefined();
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBe('Let me check.');
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe('function');
    expect(call.id).toMatch(/^call_/);
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
  });

  it('tool calls stream as deltas, and a tool result renders back', async () => {
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER_TOOL], max_tokens: 200, stream: true });
    let content = '';
    let name = '';
    let args = '';
    let id = '';
    let finish: string | null = null;
    for await (const c of stream) {
      const ch = c.choices[0];
      if (ch === undefined) continue;
      content += ch.delta.content ?? '';
      for (const d of ch.delta.tool_calls ?? []) {
        expect(d.index).toBe(0);
        if (d.id) id = d.id;
        name += d.function?.name ?? '';
        args += d.function?.arguments ?? '';
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    expect(content).toBe('Let me check.');
    expect(name).toBe('get_weather');
    expect(id).toMatch(/^call_/);
    expect(JSON.parse(args)).toEqual({ city: 'Paris' });
    expect(finish).toBe('tool_calls');
    // Round trip: the assistant's call and the tool's answer go back through the template.
    await client.chat.completions.create({
      model: 'fake-model',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: 'get_weather', arguments: args } }] },
        { role: 'tool', tool_call_id: id, content: '{"temp_c": 21}' },
      ],
      tools: [WEATHER_TOOL],
      tool_choice: 'none',
      max_tokens: 50,
    });
    expect(lastPrompt()).toContain('<tool_response>\n{"temp_c": 21}\n</tool_response>');
    expect(lastPrompt()).toContain('"city": "Paris"');
  });

  it("tool_choice 'required' and a named function constrain decoding; 'none' renders no tools", async () => {
    await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Weather?' }], tools: [WEATHER_TOOL], tool_choice: 'required', max_tokens: 200 });
    expect(s.engine.submitted.at(-1)!.constraint).toEqual({ type: 'tool_calls', tools: [{ name: 'get_weather', parameters: WEATHER_TOOL.function.parameters }], format: 'hermes' });
    const named = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 200,
    });
    expect(s.engine.submitted.at(-1)!.constraint).toMatchObject({ type: 'tool_calls', name: 'get_weather', format: 'hermes' });
    expect(named.choices[0]!.finish_reason).toBe('tool_calls');
    const none = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Weather?' }], tools: [WEATHER_TOOL], tool_choice: 'none', max_tokens: 50 });
    expect(lastPrompt()).not.toContain('get_weather');
    expect(none.choices[0]!.message.content).toBe('Sure!');
    expect(none.choices[0]!.message.tool_calls).toBeUndefined();
  });

  it('tool errors: unknown named function, tool_choice without tools → 400', async () => {
    const unknown = await postJSON(`${s.url}/v1/chat/completions`, {
      model: 'fake-model',
      messages: [{ role: 'user', content: 'x' }],
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function', function: { name: 'nope' } },
    });
    expect(unknown.status).toBe(400);
    expect((unknown.json as { error: { param: string } }).error.param).toBe('tool_choice.function.name');
    const noTools = await postJSON(`${s.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'user', content: 'x' }], tool_choice: 'required' });
    expect(noTools.status).toBe(400);
  });

  it('chat prompt + max_completion_tokens over the context → 400 context_length_exceeded', async () => {
    const r = await postJSON(`${s.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'user', content: 'x'.repeat(900) }], max_completion_tokens: 200 });
    expect(r.status).toBe(400);
    expect((r.json as { error: { code: string; param: string } }).error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
  });
});

describe('serve: a model whose template raises', () => {
  it('answers 400 with the template\'s message', async () => {
    const s = await startFake({
      tokenizerConfig: { chat_template: "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}" },
    });
    try {
      const r = await postJSON(`${s.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'y' }] });
      expect(r.status).toBe(400);
      expect((r.json as { error: { message: string; code: string } }).error).toMatchObject({ code: 'chat_template_error' });
      expect((r.json as { error: { message: string } }).error.message).toContain('System role not supported');
    } finally {
      await s.close();
    }
  });
});
