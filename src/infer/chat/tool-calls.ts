/**
 * Tool calls in a model's text → OpenAI `tool_calls`, whole or streamed as deltas.
 *
 * Formats:
 * - 'hermes' (Qwen2.5, Hermes, the default template): `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`,
 *   possibly several, possibly after some text.
 * - 'llama3-json' (Llama 3.1/3.2): the whole reply is one JSON object `{"name": …, "parameters": {…}}`.
 *
 * A call is committed only once its text is complete and parses (a tool-call block closed, the JSON
 * object ended), so malformed tool-call text simply stays content; nothing here throws on model
 * output. Whitespace that only separates content from a tool call is dropped. The streaming parser
 * lets content through as it arrives, holding back only what may be the start of a tool-call
 * marker (and trailing whitespace, until it is known not to precede one); `parseToolCalls` runs
 * the same machine over the whole text, so streamed and non-streamed results agree exactly.
 */
import { randomBytes } from 'node:crypto';
import type { OpenAIToolCall, OpenAIToolCallDelta } from './types.js';

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

export interface ToolCallChunk {
  content?: string;
  toolCallDeltas?: OpenAIToolCallDelta[];
}

/** A fresh OpenAI-style call id. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/** Length of the longest suffix of `s` that is a proper prefix of `marker`. */
function heldPrefix(s: string, marker: string): number {
  for (let k = Math.min(s.length, marker.length - 1); k > 0; k--) if (marker.startsWith(s.slice(s.length - k))) return k;
  return 0;
}

/** `{"name": string, "arguments"|"parameters": …}` → name and arguments as JSON text; null when it is not one. */
function parseCall(text: string): { name: string; arguments: string } | null {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return null;
  const o = obj as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') return null;
  const args = o.arguments !== undefined ? o.arguments : o.parameters;
  if (args === undefined) return { name: o.name, arguments: '{}' };
  // Some models write the arguments as a JSON string already.
  if (typeof args === 'string') return { name: o.name, arguments: args };
  return { name: o.name, arguments: JSON.stringify(args) };
}

/** Index just past the JSON object starting at s[start] ('{'), or -1 while it is unfinished. */
function jsonObjectEnd(s: string, start: number): number {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

const LEADING_WS = /^\s+/;
const TRAILING_WS = /\s+$/;

export class ToolCallStreamParser {
  private buf = '';
  /** hermes: inside a <tool_call> block; llama3-json: 'start' until the first non-space character. */
  private mode: 'content' | 'block' | 'start' | 'json' = 'content';
  /** Whitespace held back: it is dropped if a tool call follows. */
  private heldWs = '';
  /** A tool call just ended: whitespace right after it is dropped. */
  private afterCall = false;
  private calls = 0;
  private readonly format: 'hermes' | 'llama3-json';

  /** `format`: 'hermes' or 'llama3-json' (anything else is read as hermes). */
  constructor(format: string) {
    this.format = format === 'llama3-json' ? 'llama3-json' : 'hermes';
    if (this.format === 'llama3-json') this.mode = 'start';
  }

  /** Number of tool calls emitted so far. */
  get toolCallCount(): number {
    return this.calls;
  }

  push(textDelta: string): ToolCallChunk {
    const out: Required<ToolCallChunk> = { content: '', toolCallDeltas: [] };
    this.buf += textDelta;
    if (this.format === 'hermes') this.pumpHermes(out, false);
    else this.pumpLlama(out, false);
    return result(out);
  }

  /** End of the text: flushes held-back text; an unterminated tool call counts if its JSON is complete. */
  finish(): ToolCallChunk {
    const out: Required<ToolCallChunk> = { content: '', toolCallDeltas: [] };
    if (this.format === 'hermes') this.pumpHermes(out, true);
    else this.pumpLlama(out, true);
    if (!this.afterCall) out.content += this.heldWs;
    this.heldWs = '';
    return result(out);
  }

  private content(out: Required<ToolCallChunk>, text: string): void {
    let t = text;
    if (this.afterCall) {
      t = t.replace(LEADING_WS, '');
      if (t === '') return;
      this.afterCall = false;
    }
    const all = this.heldWs + t;
    const m = TRAILING_WS.exec(all);
    const cut = m === null ? all.length : m.index;
    out.content += all.slice(0, cut);
    this.heldWs = all.slice(cut);
  }

  private call(out: Required<ToolCallChunk>, call: { name: string; arguments: string }): void {
    const index = this.calls++;
    out.toolCallDeltas.push({ index, id: toolCallId(), type: 'function', function: { name: call.name, arguments: '' } });
    out.toolCallDeltas.push({ index, function: { arguments: call.arguments } });
    this.heldWs = '';
    this.afterCall = true;
  }

  private pumpHermes(out: Required<ToolCallChunk>, final: boolean): void {
    for (;;) {
      if (this.mode === 'content') {
        const i = this.buf.indexOf(OPEN);
        if (i >= 0) {
          this.content(out, this.buf.slice(0, i));
          this.buf = this.buf.slice(i + OPEN.length);
          this.mode = 'block';
          continue;
        }
        const hold = final ? 0 : heldPrefix(this.buf, OPEN);
        this.content(out, this.buf.slice(0, this.buf.length - hold));
        this.buf = this.buf.slice(this.buf.length - hold);
        return;
      }
      const j = this.buf.indexOf(CLOSE);
      if (j < 0 && !final) return;
      const inner = j < 0 ? this.buf : this.buf.slice(0, j);
      const call = parseCall(inner.trim());
      if (call !== null) this.call(out, call);
      else this.content(out, OPEN + inner + (j < 0 ? '' : CLOSE));
      this.buf = j < 0 ? '' : this.buf.slice(j + CLOSE.length);
      this.mode = 'content';
      if (j < 0) return;
    }
  }

  private pumpLlama(out: Required<ToolCallChunk>, final: boolean): void {
    if (this.mode === 'start') {
      const t = this.buf.replace(LEADING_WS, '');
      if (t === '') {
        if (final) {
          this.content(out, this.buf);
          this.buf = '';
        }
        return;
      }
      this.mode = t.startsWith('{') ? 'json' : 'content';
    }
    if (this.mode === 'json') {
      const start = this.buf.indexOf('{');
      const end = jsonObjectEnd(this.buf, start);
      if (end < 0 && !final) return;
      const call = end < 0 ? null : parseCall(this.buf.slice(start, end));
      if (call !== null) {
        this.call(out, call);
        this.buf = this.buf.slice(end);
      }
      this.mode = 'content';
    }
    this.content(out, this.buf);
    this.buf = '';
  }
}

function result(out: Required<ToolCallChunk>): ToolCallChunk {
  const r: ToolCallChunk = {};
  if (out.content !== '') r.content = out.content;
  if (out.toolCallDeltas.length > 0) r.toolCallDeltas = out.toolCallDeltas;
  return r;
}

/** Assembles streamed deltas into complete calls (what an OpenAI client does). */
export function assembleToolCalls(deltas: readonly OpenAIToolCallDelta[]): OpenAIToolCall[] {
  const calls: OpenAIToolCall[] = [];
  for (const d of deltas) {
    let c = calls[d.index];
    if (c === undefined) {
      c = { id: d.id ?? '', type: 'function', function: { name: '', arguments: '' } };
      calls[d.index] = c;
    }
    if (d.id !== undefined) c.id = d.id;
    if (d.function?.name !== undefined) c.function.name += d.function.name;
    if (d.function?.arguments !== undefined) c.function.arguments += d.function.arguments;
  }
  return calls;
}

/** The tool calls in a complete reply, and the content around them (null when there is none). */
export function parseToolCalls(text: string, format: string): { content: string | null; toolCalls: OpenAIToolCall[] } {
  const p = new ToolCallStreamParser(format);
  const a = p.push(text);
  const b = p.finish();
  const content = (a.content ?? '') + (b.content ?? '');
  return { content: content === '' ? null : content, toolCalls: assembleToolCalls([...(a.toolCallDeltas ?? []), ...(b.toolCallDeltas ?? [])]) };
}
