/** Memory: summarising the oldest turns over a token budget, long-term recall, persistence per session. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/loop.js';
import { ConversationBuffer, HashingEmbedder, LongTermMemory, sessionDir } from '../../src/agent/memory.js';
import { calculatorTool } from '../../src/agent/tools/calculator.js';
import { ToolExecutor } from '../../src/agent/tools/tool.js';
import { Tracer } from '../../src/agent/trace.js';
import type { ChatRequest } from '../../src/agent/types.js';
import { call, calls, ScriptedModel } from './scripted.js';

const root = mkdtempSync(join(tmpdir(), 'weft-agent-mem-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('conversation buffer', () => {
  it('35. a later run sees the earlier turns (tool calls included)', async () => {
    const memory = new ConversationBuffer({ maxTokens: 10_000 });
    const executor = new ToolExecutor([calculatorTool()]);
    await new Agent({ model: new ScriptedModel([calls(call('calculator', { expression: '2*21' })), 'It is 42.']), executor, memory }).run('What is 2*21?');
    const model = new ScriptedModel(['You asked what 2*21 is; it is 42.']);
    const r = await new Agent({ model, executor, memory }).run('What did I ask before?');
    expect(model.requests[0]!.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
    expect(model.requests[0]!.messages[1]!.content).toBe('What is 2*21?');
    expect(r.answer).toContain('42');
    expect(memory.messages).toHaveLength(6);
  });

  it('36. over the budget, the oldest whole turns are summarised by the model', async () => {
    const memory = new ConversationBuffer({ maxTokens: 60 });
    for (let i = 1; i <= 4; i++) memory.append([{ role: 'user', content: `Fact ${i}: the code for door ${i} is ${1000 + i}. ${'pad '.repeat(10)}` }, { role: 'assistant', content: `Noted door ${i}.` }]);
    let summaryRequest: ChatRequest | undefined;
    const tracer = new Tracer();
    const model = new ScriptedModel([
      (req) => {
        summaryRequest = req;
        return 'Door codes: 1 → 1001, 2 → 1002, 3 → 1003.';
      },
      'The code for door 2 is 1002.',
    ]);
    const r = await new Agent({ model, executor: new ToolExecutor([]), memory, tracer }).run('Code for door 2?');
    // The summariser got the oldest turns, not the newest one.
    expect(summaryRequest!.messages[1]!.content).toContain('Fact 1');
    expect(summaryRequest!.messages[1]!.content).not.toContain('Fact 4');
    const sent = model.requests[1]!.messages;
    expect(sent[1]).toEqual({ role: 'system', content: 'Summary of the earlier conversation:\nDoor codes: 1 → 1001, 2 → 1002, 3 → 1003.' });
    expect(sent.some((m) => m.content?.startsWith('Fact 4'))).toBe(true);
    expect(sent.some((m) => m.content?.startsWith('Fact 1'))).toBe(false);
    expect(r.answer).toBe('The code for door 2 is 1002.');
    const ev = tracer.events.find((e) => e.type === 'memory_summary') as { summarisedMessages: number; tokensBefore: number; tokensAfter: number };
    expect(ev.summarisedMessages).toBeGreaterThanOrEqual(2);
    expect(ev.tokensAfter).toBeLessThan(ev.tokensBefore);
  });

  it('a run stopped between a tool call and its result leaves no dangling call in memory', async () => {
    const memory = new ConversationBuffer();
    const model = new ScriptedModel([calls(call('calculator', { expression: '1' }, 'k1'), call('calculator', { expression: '1' }, 'k2'))]);
    const r = await new Agent({ model, executor: new ToolExecutor([calculatorTool()]), memory, limits: { repeatLimit: 2 } }).run('loop');
    expect(r.stopReason).toBe('repeated_action');
    expect(memory.messages).toEqual([{ role: 'user', content: 'loop' }]);
  });

  it('counts with a tokenizer when given one', async () => {
    const words = (t: string): number => t.split(/\s+/).filter(Boolean).length;
    const memory = new ConversationBuffer({ maxTokens: 1000, countTokens: words });
    memory.append([{ role: 'user', content: 'one two three' }]);
    expect(memory.tokens()).toBe(4 + 3);
  });

  it('37. the buffer persists per session (atomic file), and sessions are isolated', async () => {
    const a = new ConversationBuffer({ dir: sessionDir(root, 'alice') });
    a.append([{ role: 'user', content: 'I am Alice' }, { role: 'assistant', content: 'Hi Alice' }]);
    a.summary = 'earlier: Alice likes tea';
    await a.save();
    const b = new ConversationBuffer({ dir: sessionDir(root, 'bob') });
    await b.save();
    const again = new ConversationBuffer({ dir: sessionDir(root, 'alice') });
    expect(again.messages.map((m) => m.content)).toEqual(['I am Alice', 'Hi Alice']);
    expect(again.summary).toBe('earlier: Alice likes tea');
    expect(new ConversationBuffer({ dir: sessionDir(root, 'bob') }).messages).toEqual([]);
    expect(readdirSync(join(root, 'alice'))).toEqual(['conversation.json']);
    expect(() => sessionDir(root, '../escape')).toThrow(/session id/);
    expect(() => sessionDir(root, '.hidden')).toThrow(/session id/);
  });
});

describe('long-term memory', () => {
  it('38. remember and recall tools; recall finds the related fact first', async () => {
    const mem = await LongTermMemory.open({ dir: sessionDir(root, 'ltm') });
    const executor = new ToolExecutor(mem.tools());
    const model = new ScriptedModel([
      calls(call('remember', { text: 'The user prefers green tea without sugar.' }), call('remember', { text: 'The project deadline is Friday the 13th.' }), call('remember', { text: 'The cat is called Miso.' })),
      'Saved.',
    ]);
    await new Agent({ model, executor }).run('Remember these facts');
    expect(mem.size).toBe(3);
    const hits = await mem.recall('what tea does the user like', 3);
    expect(hits[0]!.entry.text).toBe('The user prefers green tea without sugar.');
    const r = await executor.execute('recall', '{"query": "when is the deadline", "k": 1}');
    expect(r.content).toMatch(/^\[1\] The project deadline is Friday the 13th\./);
    // Remembering the same fact twice keeps one copy.
    await mem.remember('The cat is called Miso.');
    expect(mem.size).toBe(3);
  });

  it('39. memories persist per session and are recalled after reopening', async () => {
    const dir = sessionDir(root, 'persist');
    const first = await LongTermMemory.open({ dir });
    await first.remember('Server room door code is 4417.', ['security']);
    await first.remember('Lunch is at noon.');
    const file = join(dir, 'memories.json');
    expect(JSON.parse(readFileSync(file, 'utf8')).entries).toHaveLength(2);
    const reopened = await LongTermMemory.open({ dir });
    expect(reopened.size).toBe(2);
    expect((await reopened.recall('door code', 1))[0]!.entry).toMatchObject({ text: 'Server room door code is 4417.', tags: ['security'] });
    const other = await LongTermMemory.open({ dir: sessionDir(root, 'someone-else') });
    expect(await other.recall('door code')).toEqual([]);
    expect(existsSync(join(root, 'someone-else', 'memories.json'))).toBe(false);
  });

  it('the hashing embedder is deterministic, normalised and lexical', async () => {
    const e = new HashingEmbedder(256);
    const [a, b, c] = await e.embed(['green tea', 'Green  tea!', 'quantum physics']);
    const dot = (x: Float32Array, y: Float32Array): number => x.reduce((s, v, i) => s + v * y[i]!, 0);
    expect(dot(a!, a!)).toBeCloseTo(1, 5);
    expect(dot(a!, b!)).toBeCloseTo(1, 5);
    expect(Math.abs(dot(a!, c!))).toBeLessThan(0.5);
  });
});
