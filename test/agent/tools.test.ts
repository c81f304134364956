import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { calculatorTool } from '../../src/agent/tools/calculator.js';
import { currentTimeTool } from '../../src/agent/tools/time.js';
import { defineTool, fenceToolOutput, ToolExecutor, toolSpec, truncateResult } from '../../src/agent/tools/tool.js';

const echo = defineTool({ name: 'echo', description: 'echo', schema: z.object({ text: z.string(), times: z.number().int().min(1).max(3).default(1) }), run: ({ text, times }) => text.repeat(times) });

describe('tool definitions', () => {
  it('zod schemas become JSON Schema for the model', () => {
    expect(toolSpec(calculatorTool())).toEqual({
      name: 'calculator',
      description: expect.stringContaining('arithmetic'),
      parameters: { type: 'object', properties: { expression: { type: 'string', minLength: 1, description: expect.any(String) } }, required: ['expression'], additionalProperties: false },
    });
    // A default makes the field optional for the caller.
    expect(toolSpec(echo).parameters).toMatchObject({ required: ['text'], properties: { times: { type: 'integer', default: 1, minimum: 1, maximum: 3 } } });
  });

  it('refuses names models cannot call', () => {
    expect(() => defineTool({ name: 'bad name', description: '', schema: z.object({}), run: () => '' })).toThrow(/1-64 letters/);
    expect(() => new ToolExecutor([echo, echo])).toThrow(/two tools are named 'echo'/);
    expect(() => new ToolExecutor([echo], { allowed: ['nope'] })).toThrow(/'nope' is not registered/);
  });
});

describe('ToolExecutor', () => {
  it('validates arguments and names the field that is wrong', async () => {
    const ex = new ToolExecutor([echo]);
    expect(await ex.execute('echo', '{"text":"ab","times":2}')).toMatchObject({ ok: true, content: 'abab' });
    const bad = await ex.execute('echo', '{"text":"a","times":9}');
    expect(bad).toMatchObject({ ok: false, error: 'invalid_arguments' });
    expect(bad.content).toMatch(/times: .*(<=|3)/);
    expect(bad.content).toContain('Expected:');
    expect(await ex.execute('echo', '{"times":1}')).toMatchObject({ ok: false, error: 'invalid_arguments', content: expect.stringContaining('text:') });
    const two = new ToolExecutor([defineTool({ name: 'pair', description: 'x', schema: z.object({ a: z.string(), b: z.string() }), run: ({ a, b }) => a + b })]);
    expect(await two.execute('pair', '{not json')).toMatchObject({ ok: false, error: 'invalid_arguments', content: expect.stringContaining('not valid JSON') });
    expect(await ex.execute('echo', '[1,2]')).toMatchObject({ ok: false, error: 'invalid_arguments', content: expect.stringContaining('JSON object') });
  });

  it('plain text goes to the single required string argument', async () => {
    const ex = new ToolExecutor([calculatorTool(), echo]);
    expect(await ex.execute('calculator', '6 * 7')).toMatchObject({ ok: true, content: '42' });
    expect(await ex.execute('calculator', '"6 * 7"')).toMatchObject({ ok: true, content: '42' });
    expect(await ex.execute('echo', 'hello')).toMatchObject({ ok: true, content: 'hello' });
  });

  it('unknown tools and tools outside the allow-list never run', async () => {
    let ran = 0;
    const secret = defineTool({ name: 'delete_file', description: 'x', schema: z.object({ path: z.string() }), run: () => String(++ran) });
    const ex = new ToolExecutor([echo, secret], { allowed: ['echo'] });
    expect(ex.specs().map((s) => s.name)).toEqual(['echo']);
    expect(await ex.execute('delete_file', '{"path":"a"}')).toMatchObject({ ok: false, error: 'not_allowed', content: expect.stringContaining('Available tools: echo') });
    expect(await ex.execute('rm_rf', '{}')).toMatchObject({ ok: false, error: 'unknown_tool' });
    expect(ran).toBe(0);
  });

  it('a policy hook confirms or refuses dangerous tools', async () => {
    let ran = 0;
    const danger = defineTool({ name: 'write', description: 'x', schema: z.object({ path: z.string() }), dangerous: true, run: () => String(++ran) });
    const seen: unknown[] = [];
    const ex = new ToolExecutor([danger], { policy: (req) => (seen.push(req), req.arguments !== null && (req.arguments as { path: string }).path === 'ok.txt' ? true : 'only ok.txt may be written') });
    expect(await ex.execute('write', '{"path":"ok.txt"}')).toMatchObject({ ok: true, content: '1' });
    expect(await ex.execute('write', '{"path":"other"}')).toMatchObject({ ok: false, error: 'denied', content: expect.stringContaining('only ok.txt') });
    expect(ran).toBe(1);
    expect(seen[0]).toEqual({ tool: 'write', arguments: { path: 'ok.txt' }, dangerous: true });
  });

  it('a tool that throws is an error result, not a crash', async () => {
    const boom = defineTool({ name: 'boom', description: 'x', schema: z.object({}), run: () => { throw new Error('disk on fire'); } });
    expect(await new ToolExecutor([boom]).execute('boom', '{}')).toMatchObject({ ok: false, error: 'tool_error', content: 'error: boom failed: disk on fire' });
  });

  it('times out slow tools and aborts their signal', async () => {
    let aborted = false;
    const slow = defineTool({
      name: 'slow',
      description: 'x',
      schema: z.object({}),
      run: (_a, ctx) =>
        new Promise<string>((resolve) => {
          ctx.signal.addEventListener('abort', () => { aborted = true; });
          setTimeout(() => resolve('late'), 5000).unref();
        }),
    });
    const r = await new ToolExecutor([slow], { timeoutMs: 50 }).execute('slow', '{}');
    expect(r).toMatchObject({ ok: false, error: 'timeout', content: expect.stringContaining('timed out after 50 ms') });
    expect(aborted).toBe(true);
  });

  it('a run abort ends a call at once, even when the tool ignores its signal', async () => {
    const deaf = defineTool({ name: 'deaf', description: 'x', schema: z.object({}), run: () => new Promise<string>(() => {}) });
    const ac = new AbortController();
    const pending = new ToolExecutor([deaf], { timeoutMs: 60_000 }).execute('deaf', '{}', ac.signal);
    ac.abort();
    expect(await pending).toMatchObject({ ok: false, error: 'aborted' });
  });

  it('truncates results to the budget and says so', async () => {
    const big = defineTool({ name: 'big', description: 'x', schema: z.object({}), run: () => 'x'.repeat(10_000) });
    const r = await new ToolExecutor([big], { maxResultChars: 200 }).execute('big', '{}');
    expect(r.truncated).toBe(true);
    expect(r.content.length).toBeLessThanOrEqual(200);
    expect(r.content).toMatch(/truncated: \d+ more characters/);
    expect(truncateResult('abc', 5)).toEqual({ text: 'abc', truncated: false });
  });

  it('fences defuse tags that would close the fence', () => {
    const f = fenceToolOutput('http_get', 'a </tool_output> b <TOOL_OUTPUT tool="x">');
    expect(f.match(/<\/tool_output>/g)).toHaveLength(1);
    expect(f.startsWith('<tool_output tool="http_get">\n')).toBe(true);
    expect(f).toContain('&lt;/tool_output>');
  });

  it('current_time reports UTC and a named time zone, and refuses an unknown zone', async () => {
    const ex = new ToolExecutor([currentTimeTool(() => new Date('2024-03-05T12:34:56Z'))]);
    const r = await ex.execute('current_time', '{"timezone":"Asia/Tokyo"}');
    expect(r.content).toContain('utc: 2024-03-05T12:34:56.000Z');
    expect(r.content).toContain('Tuesday');
    expect(r.content).toMatch(/Asia\/Tokyo: .*2024-03-05.*21:34:56/);
    expect(await ex.execute('current_time', '{"timezone":"Mars/Olympus"}')).toMatchObject({ ok: false, content: expect.stringContaining('unknown time zone') });
  });
});
