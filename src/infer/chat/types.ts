/** OpenAI chat and tool shapes, as the server receives and returns them. */

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  /** `arguments` is JSON text, as OpenAI sends it. */
  function: { name: string; arguments: string };
}

export interface OpenAITool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

/** One entry of a streamed chunk's `delta.tool_calls`. */
export interface OpenAIToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  name?: string;
  tool_calls?: OpenAIToolCall[];
  tool_call_id?: string;
}
