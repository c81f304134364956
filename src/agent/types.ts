/**
 * The shapes every agent part shares: messages in OpenAI's chat form (so the function-calling loop
 * speaks the protocol as it is), tool calls with their arguments as JSON text (as models send them),
 * and the one ChatModel interface every back end (an OpenAI-compatible URL, a local Weft model, a
 * scripted test model) implements, so the loops never care which one they drive.
 */
import { approxTokens } from '../rag/retrieve.js';

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, as the model wrote it (it may be malformed: the executor reports that to the model). */
  arguments: string;
}

export interface AgentMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  /** Assistant turns that call tools. */
  toolCalls?: ToolCall[];
  /** Tool turns: the call they answer. */
  toolCallId?: string;
  /** Tool turns: the tool's name. */
  name?: string;
}

/** A tool as the model sees it: OpenAI's `function` object. */
export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface ChatRequest {
  messages: readonly AgentMessage[];
  /** Offered tools (function calling); absent for text-only turns. */
  tools?: readonly ToolSpec[];
  toolChoice?: 'auto' | 'required' | 'none';
  maxTokens?: number;
  temperature?: number;
  /** Strings that end the reply (ReAct stops before a hallucinated "Observation:"). */
  stop?: readonly string[];
  signal?: AbortSignal;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface ChatResponse {
  content: string | null;
  toolCalls: ToolCall[];
  /** What the back end reported; loops estimate it when absent. */
  usage?: Usage;
  finishReason?: string;
}

/** Anything that continues a conversation. */
export interface ChatModel {
  readonly id: string;
  /** True when the back end takes `tools` and returns `toolCalls` (OpenAI function calling). */
  readonly supportsTools: boolean;
  chat(request: ChatRequest): Promise<ChatResponse>;
  /** Exact token count, when the back end has a tokenizer. */
  countTokens?(text: string): number;
}

/**
 * Token estimate when no tokenizer is given: src/rag's ~4 characters per token (OpenAI's rule of
 * thumb for English), 1 per CJK character. Budgets built on it are approximate by design.
 */
export const estimateTokens: (text: string) => number = approxTokens;

/** Tokens of a message list as a prompt (content, tool calls, a small per-message overhead). */
export function messageTokens(messages: readonly AgentMessage[], count: (text: string) => number = estimateTokens): number {
  let n = 0;
  for (const m of messages) {
    n += 4 + count(m.content ?? '');
    for (const c of m.toolCalls ?? []) n += count(c.name) + count(c.arguments);
  }
  return n;
}
