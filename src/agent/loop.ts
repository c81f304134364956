/**
 * The tool loops. Both run the same cycle — ask the model, execute what it asks for through the
 * ToolExecutor (the only gate to tools), feed the fenced result back, repeat — and differ only in
 * how calls are written:
 *  - 'tools': OpenAI function calling (`tools` offered, `tool_calls` answered, `tool` messages back);
 *  - 'react': the ReAct text protocol (Thought / Action / Action Input / Observation), for models
 *    without function calling.
 * Every run ends with a stated reason: a final answer, or one of the limits (steps, token budget,
 * wall clock), a repeated identical action, a model error, or an abort. Tool errors never end a run:
 * they are results the model reads and can recover from.
 */
import type { ConversationBuffer } from './memory.js';
import { parseReact, reactSystemPrompt } from './react.js';
import { fenceToolOutput, isAborted, type ToolExecutor, UNTRUSTED_DATA_RULE } from './tools/tool.js';
import { Tracer } from './trace.js';
import { type AgentMessage, type ChatModel, type ChatResponse, estimateTokens, messageTokens, type ToolCall, type Usage } from './types.js';

export type AgentMode = 'tools' | 'react';

export type StopReason = 'final_answer' | 'max_steps' | 'token_budget' | 'time_limit' | 'repeated_action' | 'model_error' | 'aborted';

export interface Limits {
  /** Model calls allowed (default 10). */
  maxSteps: number;
  /** Prompt + completion tokens allowed over the run (default 100 000). */
  maxTokens: number;
  /** Wall-clock limit in ms (default 5 minutes). */
  timeLimitMs: number;
  /** The same tool with the same arguments this many times stops the run (default 3). */
  repeatLimit: number;
}

export const DEFAULT_LIMITS: Limits = { maxSteps: 10, maxTokens: 100_000, timeLimitMs: 300_000, repeatLimit: 3 };

/**
 * What a run may still spend. Plan-and-execute shares one budget between its planner, executor
 * runs and re-planner (each executor run through a child() with its own step cap), so the limits
 * hold for the whole goal.
 */
export class Budget {
  readonly limits: Limits;
  private readonly state: { steps: number; usage: Usage; actions: Map<string, number>; deadline: number };
  private readonly now: () => number;
  private readonly cap: { base: number; max: number } | null;

  constructor(limits: Partial<Limits> = {}, now: () => number = Date.now, parent?: { budget: Budget; maxSteps: number }) {
    if (parent !== undefined) {
      this.limits = parent.budget.limits;
      this.state = parent.budget.state;
      this.now = parent.budget.now;
      this.cap = { base: parent.budget.state.steps, max: parent.maxSteps };
      return;
    }
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    for (const [k, v] of Object.entries(this.limits)) if (!(v > 0)) throw new RangeError(`agent limits: ${k} must be positive, got ${v}`);
    this.now = now;
    this.state = { steps: 0, usage: { promptTokens: 0, completionTokens: 0 }, actions: new Map(), deadline: now() + this.limits.timeLimitMs };
    this.cap = null;
  }

  /** A budget that spends from this one and also stops after `maxSteps` model calls of its own. */
  child(maxSteps: number): Budget {
    return new Budget({}, this.now, { budget: this, maxSteps });
  }

  get steps(): number {
    return this.state.steps;
  }

  /** Counts one model call. */
  step(): number {
    return ++this.state.steps;
  }

  get usage(): Usage {
    return this.state.usage;
  }

  spend(usage: Usage): void {
    this.state.usage.promptTokens += usage.promptTokens;
    this.state.usage.completionTokens += usage.completionTokens;
  }

  get tokens(): number {
    return this.state.usage.promptTokens + this.state.usage.completionTokens;
  }

  remainingMs(): number {
    return this.state.deadline - this.now();
  }

  /** The limit that stops the next model call, if any. */
  exhausted(): { reason: StopReason; detail: string } | null {
    if (this.state.steps >= this.limits.maxSteps) return { reason: 'max_steps', detail: `step limit of ${this.limits.maxSteps} model calls reached` };
    if (this.tokens >= this.limits.maxTokens) return { reason: 'token_budget', detail: `token budget of ${this.limits.maxTokens} spent (${this.tokens} used)` };
    if (this.remainingMs() <= 0) return { reason: 'time_limit', detail: `wall-clock limit of ${this.limits.timeLimitMs} ms reached` };
    if (this.cap !== null && this.state.steps - this.cap.base >= this.cap.max) return { reason: 'max_steps', detail: `this part of the run used its ${this.cap.max} model calls` };
    return null;
  }

  /** True when the whole run (not just a child's cap) is out of budget. */
  rootExhausted(): boolean {
    return this.state.steps >= this.limits.maxSteps || this.tokens >= this.limits.maxTokens || this.remainingMs() <= 0;
  }

  /** Counts an action; returns how many times this exact action has now been requested. */
  countAction(tool: string, args: string): number {
    const key = `${tool}\u0000${canonicalArguments(args)}`;
    const n = (this.state.actions.get(key) ?? 0) + 1;
    this.state.actions.set(key, n);
    return n;
  }
}

/** Arguments compared by value: JSON with sorted keys, else the trimmed text. */
export function canonicalArguments(args: string): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sort(x)]));
    return v;
  };
  try {
    return JSON.stringify(sort(JSON.parse(args)));
  } catch {
    return args.trim().replace(/\s+/g, ' ');
  }
}

/**
 * The turns without tool calls left unanswered (a run stopped between a call and its result):
 * OpenAI endpoints refuse a history where an assistant's tool_calls lack their tool messages.
 */
export function answeredTurns(turns: readonly AgentMessage[]): AgentMessage[] {
  const answered = new Set(turns.filter((m) => m.role === 'tool' && m.toolCallId !== undefined).map((m) => m.toolCallId!));
  const dropped = new Set<string>();
  for (const m of turns) if (m.toolCalls !== undefined && m.toolCalls.some((c) => !answered.has(c.id))) for (const c of m.toolCalls) dropped.add(c.id);
  return turns.filter((m) => !(m.toolCalls?.some((c) => dropped.has(c.id)) ?? false) && !(m.role === 'tool' && dropped.has(m.toolCallId ?? '')));
}

export interface AgentOptions {
  model: ChatModel;
  executor: ToolExecutor;
  /** Default: 'tools' when the model supports function calling, else 'react'. */
  mode?: AgentMode;
  limits?: Partial<Limits>;
  /** Shared with an enclosing run (plan-and-execute); overrides `limits`. */
  budget?: Budget;
  tracer?: Tracer;
  /** Prepended to the built-in instructions. */
  instructions?: string;
  /** Conversation memory: its history precedes the goal, and the run's turns are added to it. */
  memory?: ConversationBuffer;
  /** Per model call (default 1024). */
  maxOutputTokens?: number;
  temperature?: number;
  /** tool_choice for the first model call in 'tools' mode (default 'auto'). */
  firstToolChoice?: 'auto' | 'required';
  signal?: AbortSignal;
}

export interface ToolCallRecord {
  step: number;
  tool: string;
  arguments: string;
  ok: boolean;
  error?: string;
  result: string;
}

export interface AgentResult {
  answer: string | null;
  stopReason: StopReason;
  /** Why the run stopped, in words. */
  detail: string;
  /** Model calls made by this run. */
  steps: number;
  usage: Usage;
  toolCalls: ToolCallRecord[];
  /** The run's conversation (system prompt, goal, every turn). */
  messages: AgentMessage[];
  ms: number;
}

const TOOLS_SYSTEM = ['You are an agent that reaches the user\'s goal by calling the tools you are given when they help, then answering.', 'When you have the answer, reply with it directly (no tool call).', UNTRUSTED_DATA_RULE].join('\n');

export class Agent {
  readonly mode: AgentMode;
  private readonly options: AgentOptions;

  constructor(options: AgentOptions) {
    this.options = options;
    this.mode = options.mode ?? (options.model.supportsTools ? 'tools' : 'react');
    if (this.mode === 'tools' && !options.model.supportsTools) throw new Error(`agent: model ${options.model.id} does not support function calling; use mode 'react'`);
  }

  private countTokens(text: string): number {
    return this.options.model.countTokens?.(text) ?? estimateTokens(text);
  }

  async run(goal: string): Promise<AgentResult> {
    const o = this.options;
    const started = performance.now();
    const budget = o.budget ?? new Budget(o.limits);
    const tracer = o.tracer ?? new Tracer();
    const specs = o.executor.specs();
    const stepsAtStart = budget.steps;
    const usageAtStart = { ...budget.usage };
    const system = this.mode === 'tools' ? [o.instructions, TOOLS_SYSTEM].filter((x) => x !== undefined && x !== '').join('\n\n') : reactSystemPrompt(specs, o.instructions);
    const history = o.memory !== undefined ? await o.memory.context(o.model, tracer) : [];
    const goalMessage: AgentMessage = { role: 'user', content: goal };
    const messages: AgentMessage[] = [{ role: 'system', content: system }, ...history, goalMessage];
    const newTurns: AgentMessage[] = [goalMessage];
    const toolCalls: ToolCallRecord[] = [];
    const counted = new WeakMap<AgentMessage, number>();
    if (o.budget === undefined) {
      tracer.record({ type: 'run_start', goal, mode: this.mode, model: o.model.id, tools: specs.map((s) => s.name), limits: { ...budget.limits } });
    }

    const finish = (stopReason: StopReason, answer: string | null, detail: string): AgentResult => {
      const usage = { promptTokens: budget.usage.promptTokens - usageAtStart.promptTokens, completionTokens: budget.usage.completionTokens - usageAtStart.completionTokens };
      const ms = performance.now() - started;
      if (o.memory !== undefined) {
        if (answer !== null && stopReason === 'final_answer') newTurns.push({ role: 'assistant', content: answer });
        o.memory.append(answeredTurns(newTurns));
      }
      if (o.budget === undefined) tracer.record({ type: 'run_end', stopReason, answer, detail, steps: budget.steps - stepsAtStart, usage, ms });
      return { answer, stopReason, detail, steps: budget.steps - stepsAtStart, usage, toolCalls, messages, ms };
    };

    const push = (m: AgentMessage): void => {
      messages.push(m);
      newTurns.push(m);
    };

    /** Executes one call; returns a stop result when the call repeats too often. */
    const act = async (step: number, call: ToolCall): Promise<{ content: string } | { stop: AgentResult }> => {
      const n = budget.countAction(call.name, call.arguments);
      if (n >= budget.limits.repeatLimit) {
        return { stop: finish('repeated_action', null, `the model asked for ${call.name} with the same arguments ${n} times (${call.arguments.slice(0, 200)}); stopped to avoid a loop`) };
      }
      const r = await o.executor.execute(call.name, call.arguments, o.signal);
      tracer.record({ type: 'tool_call', step, id: call.id, tool: call.name, arguments: call.arguments, ok: r.ok, ...(r.error !== undefined ? { error: r.error } : {}), result: r.content, truncated: r.truncated, ms: r.ms });
      toolCalls.push({ step, tool: call.name, arguments: call.arguments, ok: r.ok, ...(r.error !== undefined ? { error: r.error } : {}), result: r.content });
      return { content: fenceToolOutput(call.name, r.content) };
    };

    for (;;) {
      if (o.signal?.aborted === true) return finish('aborted', null, 'the run was aborted');
      const limit = budget.exhausted();
      if (limit !== null) return finish(limit.reason, null, limit.detail);
      // A prompt that alone would overrun the token budget is not sent.
      let promptEstimate = 0;
      for (const m of messages) {
        // Each message is counted once, not again at every later step.
        let n = counted.get(m);
        if (n === undefined) counted.set(m, (n = messageTokens([m], (t) => this.countTokens(t))));
        promptEstimate += n;
      }
      if (budget.tokens + promptEstimate > budget.limits.maxTokens) {
        return finish('token_budget', null, `the next prompt (~${promptEstimate} tokens) would exceed the token budget of ${budget.limits.maxTokens} (${budget.tokens} used)`);
      }
      const step = budget.step();
      const t0 = performance.now();
      const timeout = AbortSignal.timeout(Math.max(1, budget.remainingMs()));
      const signal = o.signal !== undefined ? AbortSignal.any([o.signal, timeout]) : timeout;
      let response: ChatResponse;
      const sent = messages.slice();
      try {
        response = await o.model.chat({
          messages: sent,
          maxTokens: o.maxOutputTokens ?? 1024,
          temperature: o.temperature ?? 0,
          signal,
          ...(this.mode === 'tools' ? { tools: specs, toolChoice: step === stepsAtStart + 1 ? (o.firstToolChoice ?? 'auto') : 'auto' } : { stop: ['\nObservation:', '\nobservation:'] }),
        });
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        tracer.record({ type: 'model_call', step, messages: sent, content: null, toolCalls: [], usage: { promptTokens: 0, completionTokens: 0 }, ms: performance.now() - t0, error: msg });
        if (isAborted(o.signal)) return finish('aborted', null, 'the run was aborted');
        if (timeout.aborted) return finish('time_limit', null, `wall-clock limit of ${budget.limits.timeLimitMs} ms reached during a model call`);
        return finish('model_error', null, msg);
      }
      const usage = response.usage ?? {
        promptTokens: promptEstimate,
        completionTokens: this.countTokens(response.content ?? '') + response.toolCalls.reduce((s, c) => s + this.countTokens(c.name) + this.countTokens(c.arguments), 0),
      };
      budget.spend(usage);
      tracer.record({ type: 'model_call', step, messages: sent, content: response.content, toolCalls: response.toolCalls, usage, ms: performance.now() - t0 });

      if (this.mode === 'tools') {
        if (response.toolCalls.length === 0) return finish('final_answer', response.content ?? '', 'the model answered');
        push({ role: 'assistant', content: response.content, toolCalls: response.toolCalls });
        for (const call of response.toolCalls) {
          const r = await act(step, call);
          if ('stop' in r) return r.stop;
          push({ role: 'tool', toolCallId: call.id, name: call.name, content: r.content });
        }
        continue;
      }

      // ReAct.
      const text = response.content ?? '';
      const parsed = parseReact(text);
      if (parsed.kind === 'final') return finish('final_answer', parsed.answer, 'the model gave a final answer');
      // Keep the model's turn only up to where it should have stopped.
      const cut = /\n\s*observation\s*:/i.exec(text);
      push({ role: 'assistant', content: (cut === null ? text : text.slice(0, cut.index)).trimEnd() });
      if (parsed.kind === 'invalid') {
        tracer.record({ type: 'parse_error', step, error: parsed.error });
        push({ role: 'user', content: `Observation: your reply could not be read (${parsed.error}). Reply with "Thought: ..." then either "Action: <tool>" and "Action Input: <JSON>", or "Final Answer: <answer>".` });
        continue;
      }
      const r = await act(step, { id: `react_${step}`, name: parsed.tool, arguments: parsed.input });
      if ('stop' in r) return r.stop;
      push({ role: 'user', content: `Observation: ${r.content}` });
    }
  }
}
