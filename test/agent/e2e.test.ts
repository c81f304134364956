/**
 * End to end over HTTP:
 * - a tiny fake OpenAI-compatible server (node:http) that answers by a script and checks the
 *   protocol it receives (tools, tool_calls, tool messages with tool_call_id), driven through the
 *   OpenAIChatClient and through `weft agent run` (the CLI function, with --trace and --json);
 * - `weft serve` itself over a random-weight LLaMA: the function-calling loop gets a valid tool
 *   call (constrained decoding with tool_choice 'required') that the executor validates and runs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/loop.js';
import { OpenAIChatClient } from '../../src/agent/llm.js';
import { calculatorTool } from '../../src/agent/tools/calculator.js';
import { defineTool, ToolExecutor } from '../../src/agent/tools/tool.js';
import { readTrace, renderTranscript, Tracer } from '../../src/agent/trace.js';
import { runAgent } from '../../src/cli/agent.js';

interface WireMessage {
  role: string;
  content: string | null;
  tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}
interface WireRequest {
  model: string;
  messages: WireMessage[];
  tools?: { type: string; function: { name: string; parameters: unknown } }[];
  tool_choice?: string;
}

/** Answers like an OpenAI endpoint doing arithmetic with the calculator tool. */
function fakeReply(req: WireRequest): unknown {
  const last = req.messages[req.messages.length - 1]!;
  const usage = { prompt_tokens: 50, completion_tokens: 10, total_tokens: 60 };
  if (last.role === 'user') {
    const expr = /What is (.+)\?/.exec(last.content ?? '')?.[1] ?? '0';
    return { id: 'x', object: 'chat.completion', choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'calculator', arguments: JSON.stringify({ expression: expr }) } }] } }], usage };
  }
  if (last.role === 'tool') {
    const value = /\n(.+)\n<\/tool_output>/.exec(last.content ?? '')?.[1];
    return { id: 'y', object: 'chat.completion', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `The answer is ${value}.` } }], usage };
  }
  return { choices: [{ message: { role: 'assistant', content: 'confused' } }] };
}

let server: Server;
let url: string;
const seen: WireRequest[] = [];
let auth: string | undefined;
let failNext = 0;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      auth = req.headers.authorization;
      if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      if (failNext > 0) {
        failNext--;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"busy"}');
        return;
      }
      const parsed = JSON.parse(body) as WireRequest;
      seen.push(parsed);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fakeReply(parsed)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('function calling against an OpenAI-compatible HTTP server', () => {
  it('speaks the protocol: tools offered, tool_calls answered by tool messages', async () => {
    seen.length = 0;
    const model = new OpenAIChatClient({ baseURL: url, model: 'm', apiKey: 'k1' });
    const r = await new Agent({ model, executor: new ToolExecutor([calculatorTool()]) }).run('What is (2 + 3) * 4?');
    expect(r).toMatchObject({ stopReason: 'final_answer', answer: 'The answer is 20.', steps: 2, usage: { promptTokens: 100, completionTokens: 20 } });
    expect(auth).toBe('Bearer k1');
    expect(seen[0]!.model).toBe('m');
    expect(seen[0]!.tools![0]).toMatchObject({ type: 'function', function: { name: 'calculator', parameters: { type: 'object', required: ['expression'] } } });
    expect(seen[0]!.tool_choice).toBe('auto');
    const second = seen[1]!.messages;
    expect(second.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(second[2]!.tool_calls![0]).toEqual({ id: 'call_1', type: 'function', function: { name: 'calculator', arguments: '{"expression":"(2 + 3) * 4"}' } });
    expect(second[3]).toMatchObject({ role: 'tool', tool_call_id: 'call_1' });
  });

  it('retries a 503, and reports a 404 clearly', async () => {
    failNext = 1;
    const model = new OpenAIChatClient({ baseURL: url });
    expect((await model.chat({ messages: [{ role: 'user', content: 'What is 1?' }] })).toolCalls).toHaveLength(1);
    const bad = new OpenAIChatClient({ baseURL: url.replace('/v1', '/nope') });
    await expect(bad.chat({ messages: [{ role: 'user', content: 'x' }] })).rejects.toThrow(/answered 404/);
  });

  it('weft agent run: answer on stdout, --trace JSON lines, --json summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-agent-cli-'));
    try {
      const out: string[] = [];
      const err: string[] = [];
      const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } } as unknown as Parameters<typeof runAgent>[2];
      const trace = join(dir, 't.jsonl');
      await runAgent('What is 2^10?', { model: url, tools: ['calculator'], trace, maxSteps: 4 }, io);
      expect(out.join('')).toBe('The answer is 1024.\n');
      expect(err.join('')).toContain('→ calculator({"expression":"2^10"})');
      const events = readTrace(trace);
      expect(events.map((e) => e.type)).toEqual(['run_start', 'model_call', 'tool_call', 'model_call', 'run_end']);
      expect(renderTranscript(events)).toContain('Answer: The answer is 1024.');
      out.length = 0;
      await runAgent('What is 7*6?', { model: url, json: true }, io);
      expect(JSON.parse(out.join(''))).toMatchObject({ answer: 'The answer is 42.', stopReason: 'final_answer', steps: 2 });
      await expect(runAgent('x', { model: url, tools: ['files'] }, io)).rejects.toThrow(/--workspace/);
      await expect(runAgent('x', { model: url, tools: ['http'] }, io)).rejects.toThrow(/--allow-hosts/);
      writeFileSync(join(dir, 'f'), '');
      expect(readFileSync(trace, 'utf8').endsWith('\n')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('function calling against weft serve (random-weight LLaMA)', () => {
  let close: (() => Promise<void>) | undefined;
  let serveUrl = '';
  let dir = '';
  let skip = '';
  beforeAll(async () => {
    try {
      const [{ Llama }, { Generator }, { createEngineBundle }, { InProcessHost }, { WeftServer }, { fakeTokenizer }] = await Promise.all([
        import('../../src/models/llama.js'),
        import('../../src/tensor/random.js'),
        import('../../src/serve/engine-factory.js'),
        import('../../src/serve/host.js'),
        import('../../src/serve/server.js'),
        import('../serve/fake-engine.js'),
      ]);
      dir = mkdtempSync(join(tmpdir(), 'weft-agent-serve-'));
      const tok = fakeTokenizer();
      const llama = new Llama({ vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 2048, tieWordEmbeddings: true }, { generator: new Generator(7) });
      await llama.savePretrained(join(dir, 'tiny'));
      writeFileSync(join(dir, 'tiny', 'tokenizer.json'), JSON.stringify(tok.toJSON()));
      const bundle = await createEngineBundle({ modelPath: join(dir, 'tiny'), maxBatch: 2 });
      const s = new WeftServer({ port: 0 });
      s.attach(new InProcessHost(bundle));
      serveUrl = await s.listen();
      close = () => s.shutdown(1000);
    } catch (e) {
      skip = `weft serve is not usable here: ${(e as Error).message}`;
      console.warn(`agent e2e against weft serve skipped: ${skip}`);
    }
  });
  afterAll(async () => {
    await close?.();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('the first call is a schema-valid tool call that the executor runs; the run ends with a stated reason', async (ctx) => {
    if (skip !== '') ctx.skip();
    let ran = 0;
    // Tight bounds keep a random model's constrained output short (an unbounded string could ramble to max_tokens).
    const add = defineTool({ name: 'add', description: 'adds two integers', schema: z.object({ a: z.number().int().min(0).max(99), b: z.number().int().min(0).max(99) }), run: ({ a, b }) => String((ran++, a + b)) });
    const model = new OpenAIChatClient({ baseURL: `${serveUrl}/v1`, model: 'tiny' });
    const tracer = new Tracer();
    const r = await new Agent({ model, executor: new ToolExecutor([add]), firstToolChoice: 'required', limits: { maxSteps: 2, repeatLimit: 5 }, maxOutputTokens: 200, tracer }).run('What is 2 + 2?');
    // A random model writes nonsense, but constrained decoding makes its first reply a valid call.
    expect(r.toolCalls.length).toBeGreaterThanOrEqual(1);
    const first = r.toolCalls[0]!;
    expect(first).toMatchObject({ tool: 'add', ok: true });
    const args = JSON.parse(first.arguments) as { a: number; b: number };
    expect(first.result).toBe(String(args.a + args.b));
    expect(ran).toBeGreaterThanOrEqual(1);
    // The tool result went back to the server as a tool message answering the call's id.
    const second = tracer.events.filter((e) => e.type === 'model_call')[1] as { messages: { role: string; toolCallId?: string }[] } | undefined;
    if (second !== undefined) expect(second.messages.find((m) => m.role === 'tool')?.toolCallId).toMatch(/^call_/);
    expect(['final_answer', 'max_steps']).toContain(r.stopReason);
  });

  it('the same loop over the local model directory (LocalChatModel: engine + chat template + tool-call parsing)', async (ctx) => {
    if (skip !== '') ctx.skip();
    const { LocalChatModel } = await import('../../src/agent/local.js');
    const model = await LocalChatModel.load(join(dir, 'tiny'));
    try {
      const add = defineTool({ name: 'add', description: 'adds two integers', schema: z.object({ a: z.number().int().min(0).max(99), b: z.number().int().min(0).max(99) }), run: ({ a, b }) => String(a + b) });
      const r = await new Agent({ model, executor: new ToolExecutor([add]), firstToolChoice: 'required', limits: { maxSteps: 1 }, maxOutputTokens: 200 }).run('What is 2 + 2?');
      expect(r.toolCalls[0]).toMatchObject({ tool: 'add', ok: true });
      expect(r.usage.promptTokens).toBeGreaterThan(100);
      expect(r.stopReason).toBe('max_steps');
    } finally {
      await model.close();
    }
  });
});
