/**
 * Any OpenAI-compatible chat endpoint (weft serve, vLLM, llama.cpp's server, OpenAI) as a ChatModel:
 * POST {baseURL}/chat/completions with `tools` / `tool_choice`, answered with `tool_calls`;
 * agent messages become OpenAI messages (assistant `tool_calls`, `tool` messages with
 * `tool_call_id`). Transient failures (network, 429, 5xx) are retried with backoff; the answer is
 * validated with zod so a malformed reply is an error that says what was wrong.
 */
import { z } from 'zod';
import type { AgentMessage, ChatModel, ChatRequest, ChatResponse } from './types.js';

export interface OpenAIChatClientOptions {
  /** Base URL up to and including /v1 (or the full …/chat/completions URL). */
  baseURL: string;
  /** `model` sent with each request (default 'default'). */
  model?: string;
  apiKey?: string;
  /** Retries after a network error, 429 or 5xx (default 2). */
  maxRetries?: number;
  /** Set false for endpoints that reject `tools` (the agent then uses ReAct). Default true. */
  supportsTools?: boolean;
  fetch?: typeof fetch;
}

const ToolCallSchema = z.object({
  id: z.string().optional(),
  type: z.string().optional(),
  function: z.object({ name: z.string(), arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).optional() }),
});

const ResponseSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullable().optional(), tool_calls: z.array(ToolCallSchema).nullable().optional() }).loose(),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }).loose().nullable().optional(),
});

/** Agent messages in OpenAI's wire form. */
export function toOpenAIMessages(messages: readonly AgentMessage[]): Record<string, unknown>[] {
  return messages.map((m) => {
    if (m.role === 'tool') return { role: 'tool', tool_call_id: m.toolCallId ?? '', content: m.content ?? '' };
    if (m.role === 'assistant' && m.toolCalls !== undefined && m.toolCalls.length > 0) {
      return { role: 'assistant', content: m.content, tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) };
    }
    return { role: m.role, content: m.content ?? '' };
  });
}

export class OpenAIChatClient implements ChatModel {
  readonly id: string;
  readonly supportsTools: boolean;
  private readonly url: string;
  private calls = 0;

  constructor(private readonly options: OpenAIChatClientOptions) {
    const base = options.baseURL.replace(/\/+$/, '');
    this.url = base.endsWith('/chat/completions') ? base : `${base}/chat/completions`;
    this.id = `${options.model ?? 'default'}@${this.url}`;
    this.supportsTools = options.supportsTools ?? true;
  }

  async chat(request: ChatRequest): Promise<ChatResponse> {
    const body: Record<string, unknown> = {
      model: this.options.model ?? 'default',
      messages: toOpenAIMessages(request.messages),
      max_tokens: request.maxTokens ?? 1024,
      temperature: request.temperature ?? 0,
    };
    if (request.tools !== undefined && request.tools.length > 0) {
      body.tools = request.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
      body.tool_choice = request.toolChoice ?? 'auto';
    }
    if (request.stop !== undefined && request.stop.length > 0) body.stop = request.stop.slice(0, 4);
    const doFetch = this.options.fetch ?? fetch;
    const retries = this.options.maxRetries ?? 2;
    let lastError = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(250 * 2 ** (attempt - 1), request.signal);
      let res: Response;
      try {
        res = await doFetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.options.apiKey !== undefined ? { authorization: `Bearer ${this.options.apiKey}` } : {}) },
          body: JSON.stringify(body),
          signal: request.signal,
        });
      } catch (e) {
        if (request.signal?.aborted === true) throw e;
        lastError = `cannot reach ${this.url}: ${(e as Error).message}`;
        continue;
      }
      const text = await res.text();
      if (res.status === 429 || res.status >= 500) {
        lastError = `${this.url} answered ${res.status}: ${text.slice(0, 300)}`;
        continue;
      }
      if (!res.ok) throw new Error(`${this.url} answered ${res.status}: ${text.slice(0, 500)}`);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error(`${this.url} did not answer with JSON: ${text.slice(0, 200)}`);
      }
      const parsed = ResponseSchema.safeParse(json);
      if (!parsed.success) throw new Error(`${this.url} answered without choices[0].message: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
      const choice = parsed.data.choices[0]!;
      const toolCalls = (choice.message.tool_calls ?? []).map((c, i) => ({
        id: c.id ?? `call_${this.calls}_${i}`,
        name: c.function.name,
        arguments: typeof c.function.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function.arguments ?? {}),
      }));
      this.calls++;
      const usage = parsed.data.usage;
      return {
        content: choice.message.content ?? null,
        toolCalls,
        ...(usage !== undefined && usage !== null ? { usage: { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } } : {}),
        ...(choice.finish_reason !== undefined && choice.finish_reason !== null ? { finishReason: choice.finish_reason } : {}),
      };
    }
    throw new Error(`chat failed after ${retries + 1} attempts: ${lastError}`);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      },
      { once: true },
    );
  });
}
