/** A deterministic fake ChatModel: replies from a script, in order; records every request. */
import type { ChatModel, ChatRequest, ChatResponse, ToolCall } from '../../src/agent/types.js';

export type ScriptEntry = ChatResponse | string | Error | ((request: ChatRequest) => ChatResponse | string | Promise<ChatResponse | string>);

let callSeq = 0;

/** A reply that calls tools: call('calculator', { expression: '1+1' }). */
export function call(name: string, args: unknown, id?: string): ToolCall {
  return { id: id ?? `call_${++callSeq}`, name, arguments: typeof args === 'string' ? args : JSON.stringify(args) };
}

export function calls(...toolCalls: ToolCall[]): ChatResponse {
  return { content: null, toolCalls };
}

export class ScriptedModel implements ChatModel {
  readonly id = 'scripted';
  readonly requests: ChatRequest[] = [];
  private i = 0;

  constructor(
    private readonly script: ScriptEntry[],
    readonly supportsTools = true,
    private readonly usage?: { promptTokens: number; completionTokens: number },
  ) {}

  get remaining(): number {
    return this.script.length - this.i;
  }

  async chat(request: ChatRequest): Promise<ChatResponse> {
    this.requests.push({ ...request, messages: request.messages.map((m) => ({ ...m })) });
    const entry = this.script[this.i++];
    if (entry === undefined) throw new Error(`scripted model: no reply left for call ${this.i}`);
    const value = typeof entry === 'function' ? await entry(request) : entry;
    if (value instanceof Error) throw value;
    const r = typeof value === 'string' ? { content: value, toolCalls: [] } : value;
    return this.usage !== undefined ? { ...r, usage: this.usage } : r;
  }
}
