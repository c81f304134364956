/**
 * `weft agent run | chat | transcript` parsed by commander in their documented forms, against a
 * fake OpenAI-compatible server that replies by a script; chat keeps its session on disk.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentIO, registerAgent } from '../../src/cli/agent.js';

let server: Server;
let url: string;
const replies: unknown[] = [];
const requests: { messages: { role: string; content: string | null }[]; tools?: { function: { name: string } }[] }[] = [];
const dir = mkdtempSync(join(tmpdir(), 'weft-agent-clitest-'));

const text = (content: string): unknown => ({ choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }] });
const toolCall = (name: string, args: unknown): unknown => ({ choices: [{ message: { role: 'assistant', content: null, tool_calls: [{ id: `c${replies.length}`, type: 'function', function: { name, arguments: JSON.stringify(args) } }] }, finish_reason: 'tool_calls' }] });

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push(JSON.parse(body) as (typeof requests)[number]);
      const next = replies.shift() ?? text('(script exhausted)');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(next));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function cli(stdin?: PassThrough): { run: (args: string[]) => Promise<void>; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, ...(stdin !== undefined ? { stdin } : {}) } as unknown as AgentIO;
  const program = new Command().exitOverride();
  registerAgent(program, io);
  return { run: async (args) => void (await program.parseAsync(['node', 'weft', 'agent', ...args])), out, err };
}

describe('weft agent CLI', () => {
  it('run --model <url> --tools … --mode tools --max-steps N --trace <file> "goal"', async () => {
    replies.push(toolCall('calculator', { expression: '12*12' }), text('144'));
    const c = cli();
    const trace = join(dir, 'run.jsonl');
    await c.run(['run', '--model', url, '--tools', 'calculator,time', '--mode', 'tools', '--max-steps', '3', '--trace', trace, 'What is 12*12?']);
    expect(c.out.join('')).toBe('144\n');
    expect(requests.at(-2)!.tools!.map((t) => t.function.name)).toEqual(['calculator', 'current_time']);
    const t = cli();
    await t.run(['transcript', trace]);
    expect(t.out.join('')).toMatch(/Goal: What is 12\*12\?[\s\S]*✓ calculator[\s\S]*Answer: 144/);
  });

  it('run --mode react and --mode plan', async () => {
    replies.push(text('Thought: add\nAction: calculator\nAction Input: 2+2'), text('Final Answer: 4'));
    const c = cli();
    await c.run(['run', '--model', url, '--mode', 'react', '--quiet', '2+2?']);
    expect(c.out.join('')).toBe('4\n');
    expect(requests.at(-1)!.tools).toBeUndefined();
    replies.push(text('1. Compute 5*5.'), toolCall('calculator', { expression: '5*5' }), text('25'), text('It is 25.'));
    const p = cli();
    await p.run(['run', '--model', url, '--mode', 'plan', '--quiet', '--json', '5*5?']);
    expect(JSON.parse(p.out.join(''))).toMatchObject({ answer: 'It is 25.', stopReason: 'final_answer', steps: 4 });
  });

  it('--tools rag --store <dir>: retrieval over a store made by weft rag ingest (LanceDB, keyword-only)', async () => {
    const { runIngest } = await import('../../src/cli/rag.js');
    const docs = join(dir, 'docs');
    mkdirSync(docs);
    writeFileSync(join(docs, 'kernels.md'), '# Kernels\n\nThe GEMM micro-kernel uses a 32x12 register tile on AVX-512.\n');
    writeFileSync(join(docs, 'pets.md'), '# Pets\n\nThe office dog is named Biscuit.\n');
    const store = join(dir, 'store');
    const quiet = { stdout: { write: () => true }, stderr: { write: () => true } } as unknown as Parameters<typeof runIngest>[2];
    await runIngest(docs, { store }, quiet);
    replies.push(toolCall('search_documents', { query: 'office dog name' }), text('Biscuit'));
    const c = cli();
    await c.run(['run', '--model', url, '--tools', 'rag', '--store', store, '--quiet', 'What is the office dog called?']);
    const observation = requests.at(-1)!.messages.find((m) => m.role === 'tool')!.content!;
    expect(observation).toMatch(/^<tool_output tool="search_documents">\n\[1\] \S*pets\.md[^\n]*\n[\s\S]*Biscuit/);
    expect(c.out.join('')).toBe('Biscuit\n');
    await expect(cli().run(['run', '--model', url, '--tools', 'rag', 'x'])).rejects.toThrow(/--store/);
    await expect(cli().run(['run', '--model', url, '--tools', 'rag', '--store', join(dir, 'nostore'), 'x'])).rejects.toThrow(/holds no Weft RAG store/);
  });

  it('eval --model <url> --json: one line per task and a summary', async () => {
    const c = cli();
    await c.run(['eval', '--model', url, '--json']);
    const lines = c.out.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(11);
    expect(lines.at(-1)).toMatchObject({ summary: { tasks: 10, mode: 'tools' } });
    expect(typeof (lines.at(-1)!.summary as { rate: number }).rate).toBe('number');
  });

  it('refuses bad flags with a way out', async () => {
    await expect(cli().run(['run', '--model', url, '--tools', 'calculator,shell', 'x'])).rejects.toThrow(/unknown tool group 'shell'/);
    await expect(cli().run(['run', '--model', url, '--mode', 'magic', 'x'])).rejects.toThrow();
    await expect(cli().run(['run', '--model', '/nonexistent/model', 'x'])).rejects.toThrow(/neither a URL/);
  });

  it('dangerous tools need --yes when there is no terminal to ask', async () => {
    const ws = join(dir, 'ws');
    replies.push(toolCall('write_file', { path: 'a.txt', content: 'hi' }), text('could not write'));
    const c = cli();
    await c.run(['run', '--model', url, '--tools', 'files', '--workspace', ws, '--quiet', 'write a.txt']);
    expect(JSON.stringify(requests.at(-1)!.messages)).toContain('rerun with --yes');
    replies.push(toolCall('write_file', { path: 'a.txt', content: 'hi' }), text('written'));
    await cli().run(['run', '--model', url, '--tools', 'files', '--workspace', ws, '--yes', '--quiet', 'write a.txt']);
    expect(readFileSync(join(ws, 'a.txt'), 'utf8')).toBe('hi');
  });

  it('chat --session <id> remembers the conversation and long-term facts across runs', async () => {
    const memDir = join(dir, 'mem');
    replies.push(toolCall('remember', { text: 'The user is called Ada.' }), text('Nice to meet you, Ada.'), text('Bye.'));
    const stdin = new PassThrough();
    const c = cli(stdin);
    const done = c.run(['chat', '--model', url, '--session', 'ada', '--memory-dir', memDir, '--quiet']);
    // Lines typed ahead are queued, not lost, while the agent works.
    stdin.end('My name is Ada.\nGoodbye\n');
    await done;
    expect(c.out.join('')).toBe('Nice to meet you, Ada.\nBye.\n');
    const saved = JSON.parse(readFileSync(join(memDir, 'ada', 'conversation.json'), 'utf8')) as { messages: { content: string | null }[] };
    expect(saved.messages.map((m) => m.content)).toContain('My name is Ada.');
    expect(JSON.parse(readFileSync(join(memDir, 'ada', 'memories.json'), 'utf8')).entries[0].text).toBe('The user is called Ada.');

    // A new process: the history is sent again, and recall finds the fact.
    replies.push(toolCall('recall', { query: 'user name' }), text('You are Ada.'));
    const stdin2 = new PassThrough();
    const c2 = cli(stdin2);
    const done2 = c2.run(['chat', '--model', url, '--session', 'ada', '--memory-dir', memDir, '--quiet']);
    stdin2.end('Who am I?\n');
    await done2;
    const first = requests.at(-2)!;
    expect(first.messages.map((m) => m.content)).toEqual(expect.arrayContaining(['My name is Ada.', 'Nice to meet you, Ada.', 'Who am I?']));
    expect(JSON.stringify(requests.at(-1)!.messages)).toContain('The user is called Ada.');
    expect(c2.out.join('')).toBe('You are Ada.\n');
  });
});
