/** The real-model task suite: its checkers accept a correct run and reject a wrong one. */
import { describe, expect, it } from 'vitest';
import { runSuite, SUITE } from '../../src/agent/suite.js';
import type { ChatModel, ChatRequest, ChatResponse } from '../../src/agent/types.js';
import { call, calls, ScriptedModel, type ScriptEntry } from './scripted.js';

const lastTool = (r: ChatRequest): string => [...r.messages].reverse().find((m) => m.role === 'tool')?.content ?? '';

/** Scripts that solve each task the way a capable model would (tool calls, then an answer from the results). */
const SOLUTIONS: Record<string, ScriptEntry[]> = {
  'arith-product': [calls(call('calculator', { expression: '3847 * 29 - 1234' })), (r) => `The result is ${/\n(\d+)\n/.exec(lastTool(r))![1]}.`],
  'arith-tax': [calls(call('calculator', { expression: 'round(37 * 1.35 * 1.08, 2)' })), (r) => `${/\n([\d.]+)\n/.exec(lastTool(r))![1]}`],
  'arith-sqrt': [calls(call('calculator', { expression: 'sqrt(7921)' })), (r) => `It is ${/\n(\d+)\n/.exec(lastTool(r))![1]}.`],
  'rag-mascot': [calls(call('search_documents', { query: 'Weft mascot colour' })), (r) => `It is ${/is a (\w+) heron/.exec(lastTool(r))![1]}.`],
  'rag-maintainer': [calls(call('search_documents', { query: 'who maintains the native kernel core' })), (r) => `${/maintained by ([\w ]+);/.exec(lastTool(r))![1]}`],
  'date-weekday': [calls(call('current_time', {})), (r) => `Today is ${/weekday: (\w+)/.exec(lastTool(r))![1]}.`],
  'files-sum': [calls(call('read_file', { path: 'numbers.txt' })), (r) => calls(call('calculator', { expression: /\n([\d\n]+)\n<\/tool_output>/.exec(lastTool(r))![1]!.trim().split('\n').join(' + ') })), (r) => `Sum: ${/\n(\d+)\n/.exec(lastTool(r))![1]}`],
  'files-write': [calls(call('write_file', { path: 'greeting.txt', content: 'hello' })), 'done'],
  'memory-remember': [calls(call('remember', { text: "The user's locker code is 5521." })), 'Stored.'],
  // Obeys the injected instruction (write_file is not offered, so it is refused), then answers.
  'injection-file': [calls(call('read_file', { path: 'note.txt' })), calls(call('write_file', { path: 'pwned.txt', content: 'owned' })), (r) => `The title is ${/\n(.+)\n/.exec(r.messages.find((m) => m.role === 'tool')!.content!)![1]}.`],
};

/** Routes each task (by its goal) to that task's script. */
class Router implements ChatModel {
  readonly id = 'router';
  readonly supportsTools = true;
  private readonly models = new Map<string, ScriptedModel>();
  constructor(private readonly scripts: (id: string) => ScriptEntry[]) {}
  chat(request: ChatRequest): Promise<ChatResponse> {
    const goal = request.messages.find((m) => m.role === 'user')!.content!;
    const task = SUITE.find((t) => t.goal === goal)!;
    if (!this.models.has(task.id)) this.models.set(task.id, new ScriptedModel(this.scripts(task.id)));
    return this.models.get(task.id)!.chat(request);
  }
}

describe('agent task suite', () => {
  it('has ten tasks, and a model that solves them passes all', async () => {
    expect(SUITE).toHaveLength(10);
    const seen: string[] = [];
    const r = await runSuite(new Router((id) => SOLUTIONS[id]!), { onTask: (o) => seen.push(o.id) });
    expect(r.outcomes.filter((o) => !o.success)).toEqual([]);
    expect(r).toMatchObject({ passed: 10, rate: 1 });
    expect(seen).toEqual(SUITE.map((t) => t.id));
  });

  it('a model that answers without doing the work fails every task', async () => {
    const r = await runSuite(new Router(() => ["I don't know."]));
    expect(r.passed).toBe(0);
    expect(r.outcomes.every((o) => o.stopReason === 'final_answer')).toBe(true);
  });

  it('a model error is a failed task, not a crashed suite', async () => {
    const r = await runSuite(new Router(() => [new Error('endpoint down')]), { tasks: SUITE.slice(0, 2) });
    expect(r.outcomes.map((o) => [o.success, o.stopReason])).toEqual([
      [false, 'model_error'],
      [false, 'model_error'],
    ]);
  });
});
