/**
 * The trace: every step of a run (the messages sent, the model's output, each tool call with its
 * arguments and result, tokens and time) as JSON lines, appended as they happen so a run that dies
 * still leaves its trace; and a renderer that prints a trace as a readable transcript.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AgentMessage, ToolCall, Usage } from './types.js';

export type TraceEvent =
  | { type: 'run_start'; goal: string; mode: string; model: string; tools: string[]; limits: Record<string, number> }
  | { type: 'model_call'; step: number; messages: AgentMessage[]; content: string | null; toolCalls: ToolCall[]; usage: Usage; ms: number; error?: string }
  | { type: 'parse_error'; step: number; error: string }
  | { type: 'tool_call'; step: number; id: string; tool: string; arguments: string; ok: boolean; error?: string; result: string; truncated: boolean; ms: number }
  | { type: 'plan'; revision: number; steps: string[]; reason?: string }
  | { type: 'plan_step'; index: number; step: string; ok: boolean; result: string }
  | { type: 'memory_summary'; summarisedMessages: number; summary: string; tokensBefore: number; tokensAfter: number }
  | { type: 'run_end'; stopReason: string; answer: string | null; detail?: string; steps: number; usage: Usage; ms: number };

export type TimedTraceEvent = TraceEvent & { t: number; ts: string };

export class Tracer {
  readonly events: TimedTraceEvent[] = [];
  private readonly started = performance.now();

  /**
   * `file`: JSON-lines destination (created or truncated); absent: kept in memory only.
   * `onEvent`: called with each event as it happens (a live transcript).
   */
  constructor(
    private readonly file?: string,
    private readonly onEvent?: (event: TimedTraceEvent) => void,
  ) {
    if (file !== undefined) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, '');
    }
  }

  record(event: TraceEvent): void {
    const e = { ...event, t: Math.round(performance.now() - this.started), ts: new Date().toISOString() } as TimedTraceEvent;
    this.events.push(e);
    if (this.file !== undefined) appendFileSync(this.file, `${JSON.stringify(e)}\n`);
    this.onEvent?.(e);
  }
}

export function readTrace(file: string): TimedTraceEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as TimedTraceEvent;
      } catch {
        throw new Error(`${file}:${i + 1}: not a JSON line`);
      }
    });
}

const indent = (s: string, pad = '    '): string =>
  s
    .split('\n')
    .map((l) => pad + l)
    .join('\n');

/** A trace as a transcript people read: goal, each step's thought/answer, tool calls and results, the end. */
export function renderTranscript(events: readonly TraceEvent[], options: { maxResultChars?: number } = {}): string {
  const max = options.maxResultChars ?? 600;
  const clip = (s: string): string => (s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s);
  const out: string[] = [];
  for (const e of events) {
    switch (e.type) {
      case 'run_start':
        out.push(`Goal: ${e.goal}`, `  mode ${e.mode}, model ${e.model}, tools: ${e.tools.join(', ') || 'none'}`);
        break;
      case 'model_call':
        if (e.error !== undefined) out.push(`[step ${e.step}] model error: ${e.error}`);
        else {
          out.push(`[step ${e.step}] model (${e.usage.promptTokens}+${e.usage.completionTokens} tokens, ${Math.round(e.ms)} ms)`);
          if (e.content !== null && e.content.trim() !== '') out.push(indent(e.content.trim()));
          for (const c of e.toolCalls) out.push(`    → ${c.name}(${c.arguments})`);
        }
        break;
      case 'parse_error':
        out.push(`[step ${e.step}] could not parse the reply: ${e.error}`);
        break;
      case 'tool_call':
        out.push(`  ${e.ok ? '✓' : '✗'} ${e.tool} ${e.ok ? '' : `[${e.error}] `}(${Math.round(e.ms)} ms${e.truncated ? ', truncated' : ''})`, indent(clip(e.result), '      '));
        break;
      case 'plan':
        out.push(`Plan${e.revision > 0 ? ` (revision ${e.revision}${e.reason !== undefined ? `: ${e.reason}` : ''})` : ''}:`, ...e.steps.map((s, i) => `  ${i + 1}. ${s}`));
        break;
      case 'plan_step':
        out.push(`Step ${e.index + 1} ${e.ok ? 'done' : 'FAILED'}: ${e.step}`, indent(clip(e.result)));
        break;
      case 'memory_summary':
        out.push(`(memory: ${e.summarisedMessages} old messages summarised, ${e.tokensBefore} → ${e.tokensAfter} tokens)`);
        break;
      case 'run_end':
        out.push(
          `End: ${e.stopReason}${e.detail !== undefined ? ` (${e.detail})` : ''} after ${e.steps} steps, ${e.usage.promptTokens + e.usage.completionTokens} tokens, ${(e.ms / 1000).toFixed(1)} s`,
          ...(e.answer !== null ? [`Answer: ${e.answer}`] : []),
        );
        break;
    }
  }
  return `${out.join('\n')}\n`;
}
