/**
 * The ReAct text protocol (Yao et al. 2022) for models without function calling:
 *
 *   Thought: …
 *   Action: calculator
 *   Action Input: {"expression": "2 + 2"}
 *   Observation: …          (written by the agent, never by the model)
 *   …
 *   Final Answer: …
 *
 * The parser is tolerant of what models actually write: any case, extra spaces or markdown bold
 * around the labels, code fences around the whole reply or around the input, JSON or plain-text
 * action input, `Action: tool[input]` (the paper's form), `Action: tool(...)`, and an
 * "Observation:" the model invented (everything from there on is dropped).
 */
import type { ToolSpec } from './types.js';
import { UNTRUSTED_DATA_RULE } from './tools/tool.js';

export type ReactStep =
  | { kind: 'final'; thought: string; answer: string }
  | { kind: 'action'; thought: string; tool: string; input: string }
  | { kind: 'invalid'; thought: string; error: string };

/** Removes ``` fences (with an optional language) around text, keeping what they hold. */
export function stripFences(text: string): string {
  const t = text.trim();
  const m = /^```[a-zA-Z0-9_-]*[ \t]*\n?([\s\S]*?)\n?```$/.exec(t);
  return m === null ? t : m[1]!.trim();
}

const label = (name: string): string => `^[ \\t>*_#-]*${name}[ \\t*_]*:[ \\t*_]*`;
const FINAL = new RegExp(label('final[ \\t_]*answer'), 'im');
const ACTION = new RegExp(label('action'), 'im');
const ACTION_INPUT = new RegExp(label('action[ \\t_]*input'), 'im');
const OBSERVATION = new RegExp(label('observation'), 'im');
const THOUGHT = new RegExp(label('thought'), 'im');

export function parseReact(raw: string): ReactStep {
  let text = raw.replace(/\r\n/g, '\n');
  // The whole reply inside a fence.
  text = stripFences(text);
  // Anything from an invented Observation on is not the model's to write.
  const obs = OBSERVATION.exec(text);
  if (obs !== null) text = text.slice(0, obs.index);
  const thoughtMatch = THOUGHT.exec(text);
  const firstLabel = (re: RegExp): number => re.exec(text)?.index ?? -1;
  const finalAt = firstLabel(FINAL);
  // "Action Input:" also matches /action/; find an Action line that is not Action Input.
  let actionAt = -1;
  let actionLen = 0;
  for (const m of text.matchAll(new RegExp(ACTION.source, 'gim'))) {
    const rest = text.slice(m.index);
    if (new RegExp(ACTION_INPUT.source, 'i').exec(rest)?.index === 0) continue;
    actionAt = m.index;
    actionLen = m[0].length;
    break;
  }
  const thoughtEnd = [finalAt, actionAt].filter((i) => i >= 0).reduce((a, b) => Math.min(a, b), text.length);
  const thought = (thoughtMatch !== null && thoughtMatch.index < thoughtEnd ? text.slice(thoughtMatch.index + thoughtMatch[0].length, thoughtEnd) : text.slice(0, thoughtEnd)).trim();
  if (finalAt >= 0 && (actionAt < 0 || finalAt < actionAt)) {
    const m = FINAL.exec(text)!;
    return { kind: 'final', thought, answer: stripFences(text.slice(m.index + m[0].length)).trim() };
  }
  if (actionAt < 0) {
    return { kind: 'invalid', thought, error: 'no "Action:" line and no "Final Answer:" line' };
  }
  const afterAction = text.slice(actionAt + actionLen);
  const lineEnd = afterAction.indexOf('\n');
  let toolText = (lineEnd < 0 ? afterAction : afterAction.slice(0, lineEnd)).trim();
  let input: string | null = null;
  // Action: tool[input] / tool(input) on one line.
  const inline = /^`?([A-Za-z0-9_-]+)`?\s*(\[([\s\S]*)\]|\(([\s\S]*)\))\s*$/.exec(toolText);
  if (inline !== null) {
    toolText = inline[1]!;
    const inner = (inline[3] ?? inline[4] ?? '').trim();
    if (inner !== '') input = inner;
  }
  const tool = toolText.replace(/^[`'"*]+|[`'"*.:]+$/g, '').trim();
  if (tool === '') return { kind: 'invalid', thought, error: '"Action:" names no tool' };
  const inputMatch = ACTION_INPUT.exec(afterAction);
  if (inputMatch !== null) {
    let rest = afterAction.slice(inputMatch.index + inputMatch[0].length);
    // A later Final Answer is not part of the input.
    const fin = FINAL.exec(rest);
    if (fin !== null) rest = rest.slice(0, fin.index);
    input = stripFences(rest).trim();
    // A plain-text input wrapped in one pair of quotes.
    const q = /^"([^"]*)"$|^'([^']*)'$/.exec(input);
    if (q !== null && !input.startsWith('"{')) input = q[1] ?? q[2] ?? input;
  }
  return { kind: 'action', thought, tool, input: input ?? '' };
}

/** The system prompt that teaches the protocol and lists the tools with their argument schemas. */
export function reactSystemPrompt(tools: readonly ToolSpec[], extra?: string): string {
  const list = tools.map((t) => `- ${t.name}: ${t.description}\n  arguments (JSON Schema): ${JSON.stringify(t.parameters)}`).join('\n');
  return [
    ...(extra !== undefined && extra !== '' ? [extra, ''] : []),
    'You solve the task step by step, using tools when they help. You have these tools:',
    list === '' ? '(none)' : list,
    '',
    'Use exactly this format:',
    'Thought: what you will do next and why',
    `Action: the tool to use, one of [${tools.map((t) => t.name).join(', ')}]`,
    'Action Input: the arguments as a JSON object',
    'Then stop and wait: the Observation (the tool result) will be given to you.',
    'Repeat Thought/Action/Action Input as needed. When you know the answer, write:',
    'Thought: I know the answer.',
    'Final Answer: the answer',
    '',
    UNTRUSTED_DATA_RULE,
  ].join('\n');
}
