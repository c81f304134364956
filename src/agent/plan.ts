/**
 * Plan-and-execute (Wang et al. 2023; LangChain's PlanAndExecute): a planner writes a numbered list
 * of steps; an executor runs each step with the tool loop (seeing the goal and what earlier steps
 * found); when a step fails — its run hit a limit, or it answered "FAILED: …" — a re-planner
 * revises the remaining steps in the light of what happened. A final call writes the answer from
 * the step results. One Budget holds for the whole goal, so limits are never multiplied by steps.
 */
import { Agent, type AgentMode, type AgentResult, Budget, type Limits, type StopReason } from './loop.js';
import { isAborted, type ToolExecutor, UNTRUSTED_DATA_RULE } from './tools/tool.js';
import { Tracer } from './trace.js';
import { type AgentMessage, type ChatModel, estimateTokens, messageTokens } from './types.js';

/** The numbered steps in a plan ("1. …", "2) …", "Step 3: …"); non-numbered lines continue the previous step. */
export function parsePlan(text: string): string[] {
  const steps: string[] = [];
  for (const line of text.replace(/```[a-z]*\n?/gi, '').split('\n')) {
    const m = /^\s*(?:step\s*)?(\d+)\s*[.):-]\s*(.+)$/i.exec(line);
    if (m !== null) steps.push(m[2]!.trim());
    else if (steps.length > 0 && line.trim() !== '' && /^\s+/.test(line)) steps[steps.length - 1] += ` ${line.trim()}`;
  }
  return steps.filter((s) => s !== '');
}

export interface PlanOptions {
  model: ChatModel;
  executor: ToolExecutor;
  /** How each step runs (default: 'tools' when the model supports it, else 'react'). */
  mode?: AgentMode;
  limits?: Partial<Limits>;
  /** Model calls one step's tool loop may make (default 5). */
  maxStepsPerTask?: number;
  /** Re-plans allowed (default 2). */
  maxReplans?: number;
  /** Most plan steps kept (default 8). */
  maxPlanSteps?: number;
  tracer?: Tracer;
  signal?: AbortSignal;
  maxOutputTokens?: number;
}

export interface PlanStepRecord {
  step: string;
  ok: boolean;
  result: string;
  stopReason: StopReason;
}

export interface PlanResult {
  answer: string | null;
  stopReason: StopReason;
  detail: string;
  plans: string[][];
  executed: PlanStepRecord[];
  steps: number;
  usage: { promptTokens: number; completionTokens: number };
  ms: number;
}

const PLANNER = [
  'You are a planner. Break the user\'s goal into a short numbered list of concrete steps (at most 6), one per line, "1. ...".',
  'Each step must be doable with the available tools or by reasoning. The last step produces the answer. Reply with the list only.',
].join('\n');

const REPLANNER = [
  'You revise plans. A step of the plan failed. Given the goal, what was done (with results) and why the step failed,',
  'write a new numbered list of the steps that remain (one per line, "1. ..."), avoiding what failed. Reply with the list only.',
  UNTRUSTED_DATA_RULE,
].join('\n');

const EXECUTOR_NOTE = 'You are executing one step of a larger plan. Do only this step, then give its result. If the step cannot be done, answer "FAILED: <reason>".';

const FINALIZER = ['Write the final answer to the goal from the results of the executed steps. Be concise. Reply with the answer only.', UNTRUSTED_DATA_RULE].join('\n');

export class PlanAndExecute {
  constructor(private readonly options: PlanOptions) {}

  private async ask(budget: Budget, tracer: Tracer, messages: AgentMessage[]): Promise<string> {
    const limit = budget.exhausted();
    if (limit !== null) throw new LimitReached(limit.reason, limit.detail);
    budget.step();
    const t0 = performance.now();
    const timeout = AbortSignal.timeout(Math.max(1, budget.remainingMs()));
    const signal = this.options.signal !== undefined ? AbortSignal.any([this.options.signal, timeout]) : timeout;
    const r = await this.options.model.chat({ messages, maxTokens: this.options.maxOutputTokens ?? 512, temperature: 0, signal });
    const count = (t: string): number => this.options.model.countTokens?.(t) ?? estimateTokens(t);
    const usage = r.usage ?? { promptTokens: messageTokens(messages, count), completionTokens: count(r.content ?? '') };
    budget.spend(usage);
    tracer.record({ type: 'model_call', step: budget.steps, messages, content: r.content, toolCalls: [], usage, ms: performance.now() - t0 });
    return r.content ?? '';
  }

  async run(goal: string): Promise<PlanResult> {
    const o = this.options;
    const started = performance.now();
    const budget = new Budget(o.limits);
    const tracer = o.tracer ?? new Tracer();
    const toolList = o.executor.specs().map((t) => `- ${t.name}: ${t.description}`).join('\n') || '(none)';
    const plans: string[][] = [];
    const executed: PlanStepRecord[] = [];
    const maxPlanSteps = o.maxPlanSteps ?? 8;
    tracer.record({ type: 'run_start', goal, mode: 'plan', model: o.model.id, tools: o.executor.specs().map((s) => s.name), limits: { ...budget.limits } });
    const done = (stopReason: StopReason, answer: string | null, detail: string): PlanResult => {
      const ms = performance.now() - started;
      tracer.record({ type: 'run_end', stopReason, answer, detail, steps: budget.steps, usage: { ...budget.usage }, ms });
      return { answer, stopReason, detail, plans, executed, steps: budget.steps, usage: { ...budget.usage }, ms };
    };
    const results = (): string => executed.map((e, i) => `${i + 1}. ${e.step}\n   result${e.ok ? '' : ' (FAILED)'}: <tool_output tool="step">${e.result}</tool_output>`).join('\n');

    try {
      const first = await this.ask(budget, tracer, [
        { role: 'system', content: PLANNER },
        { role: 'user', content: `Tools:\n${toolList}\n\nGoal: ${goal}` },
      ]);
      let plan = parsePlan(first).slice(0, maxPlanSteps);
      if (plan.length === 0) plan = [goal];
      plans.push([...plan]);
      tracer.record({ type: 'plan', revision: 0, steps: [...plan] });
      let replans = 0;
      while (plan.length > 0) {
        const step = plan.shift()!;
        const agent = new Agent({
          model: o.model,
          executor: o.executor,
          mode: o.mode,
          budget: budget.child(o.maxStepsPerTask ?? 5),
          tracer,
          instructions: EXECUTOR_NOTE,
          signal: o.signal,
          maxOutputTokens: o.maxOutputTokens,
        });
        const context = executed.length === 0 ? '' : `Steps done so far:\n${results()}\n\n`;
        const r: AgentResult = await agent.run(`Overall goal: ${goal}\n\n${context}Current step: ${step}`);
        if (r.stopReason === 'token_budget' || r.stopReason === 'time_limit' || r.stopReason === 'aborted' || (r.stopReason === 'max_steps' && budget.rootExhausted())) {
          executed.push({ step, ok: false, result: r.detail, stopReason: r.stopReason });
          tracer.record({ type: 'plan_step', index: executed.length - 1, step, ok: false, result: r.detail });
          return done(r.stopReason, null, r.detail);
        }
        const failed = r.stopReason !== 'final_answer' || /^\s*FAILED\b/i.test(r.answer ?? '');
        const result = r.answer ?? r.detail;
        executed.push({ step, ok: !failed, result, stopReason: r.stopReason });
        tracer.record({ type: 'plan_step', index: executed.length - 1, step, ok: !failed, result });
        if (failed) {
          if (replans >= (o.maxReplans ?? 2)) return done('max_steps', null, `step "${step}" failed and the re-plan limit (${o.maxReplans ?? 2}) is reached: ${result}`);
          replans++;
          const revised = await this.ask(budget, tracer, [
            { role: 'system', content: REPLANNER },
            { role: 'user', content: `Tools:\n${toolList}\n\nGoal: ${goal}\n\nDone so far:\n${results()}\n\nThe step "${step}" failed: ${result}\nRemaining steps were:\n${plan.map((s, i) => `${i + 1}. ${s}`).join('\n') || '(none)'}` },
          ]);
          plan = parsePlan(revised).slice(0, maxPlanSteps);
          plans.push([...plan]);
          tracer.record({ type: 'plan', revision: replans, steps: [...plan], reason: `step "${step}" failed` });
        }
      }
      const answer = await this.ask(budget, tracer, [
        { role: 'system', content: FINALIZER },
        { role: 'user', content: `Goal: ${goal}\n\nExecuted steps:\n${results()}` },
      ]);
      return done('final_answer', answer.trim(), 'plan executed');
    } catch (e) {
      if (e instanceof LimitReached) return done(e.reason, null, e.message);
      if (isAborted(o.signal)) return done('aborted', null, 'the run was aborted');
      const msg = e instanceof Error ? e.message : String(e);
      if (budget.remainingMs() <= 0) return done('time_limit', null, `wall-clock limit of ${budget.limits.timeLimitMs} ms reached`);
      return done('model_error', null, msg);
    }
  }
}

class LimitReached extends Error {
  constructor(
    readonly reason: StopReason,
    detail: string,
  ) {
    super(detail);
  }
}
