/**
 * The request bodies the server accepts, as zod schemas: OpenAI's shapes for completions, chat
 * completions and embeddings (with vLLM's extra sampling fields top_k, min_p, repetition_penalty,
 * ignore_eos), and vLLM's /tokenize and /detokenize. Unknown fields are ignored, as vLLM does.
 * A failed parse becomes a 400 whose `param` names the first offending field.
 */
import { z } from 'zod';
import { badRequest, type ApiError } from './errors.js';

const tokenId = z.number().int().min(0);
const tokenIds = z.array(tokenId);

const stop = z.union([z.string(), z.array(z.string()).max(16)], {
  error: 'expected a string or an array of at most 16 strings',
});

/** Sampling fields shared by completions and chat completions. */
const samplingFields = {
  model: z.string({ error: 'expected the model id (a string; GET /v1/models lists it)' }),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  stop: stop.nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, 'logit_bias keys are token ids'), z.number().min(-100).max(100)).nullish(),
  seed: z.number().int().nullish(),
  user: z.string().nullish(),
  // vLLM extras
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).max(10).nullish(),
  ignore_eos: z.boolean().nullish(),
  stop_token_ids: tokenIds.nullish(),
};

export const completionRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds.min(1), z.array(tokenIds.min(1)).min(1)], {
    error: 'expected a string, an array of strings, an array of token ids, or an array of token-id arrays',
  }),
  logprobs: z.number().int().min(0).max(20).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  best_of: z.number().int().min(1).nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const messageContent = z.union([z.string(), z.array(textPart)], {
  error: 'expected a string or an array of {"type":"text","text":…} parts (images and audio are not supported)',
});

const toolCall = z.object({
  id: z.string(),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

const message = z.discriminatedUnion(
  'role',
  [
    z.object({ role: z.enum(['system', 'developer']), content: messageContent, name: z.string().nullish() }),
    z.object({ role: z.literal('user'), content: messageContent, name: z.string().nullish() }),
    z.object({
      role: z.literal('assistant'),
      content: messageContent.nullish(),
      name: z.string().nullish(),
      tool_calls: z.array(toolCall).nullish(),
    }),
    z.object({ role: z.literal('tool'), content: messageContent, tool_call_id: z.string() }),
  ],
  { error: "expected a message with role 'system', 'developer', 'user', 'assistant' or 'tool'" },
);
export type ChatRequestMessage = z.infer<typeof message>;

const jsonSchemaObject = z.record(z.string(), z.unknown());

const tool = z.object({
  type: z.literal('function'),
  function: z.object({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'function names are 1-64 letters, digits, _ or -'),
    description: z.string().nullish(),
    parameters: jsonSchemaObject.nullish(),
    strict: z.boolean().nullish(),
  }),
});
export type ChatTool = z.infer<typeof tool>;

const toolChoice = z.union(
  [z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) })],
  { error: "expected 'none', 'auto', 'required' or {\"type\":\"function\",\"function\":{\"name\":…}}" },
);

const responseFormat = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.object({ name: z.string(), description: z.string().nullish(), schema: jsonSchemaObject.nullish(), strict: z.boolean().nullish() }),
    }),
  ],
  { error: "expected {\"type\":\"text\"}, {\"type\":\"json_object\"} or {\"type\":\"json_schema\",\"json_schema\":{…}}" },
);
export type ResponseFormat = z.infer<typeof responseFormat>;

export const chatRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(message).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  response_format: responseFormat.nullish(),
  tools: z.array(tool).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** Our extension: what a chat request's messages render to (the playground shows it). */
export const chatRenderSchema = z.object({
  model: z.string().nullish(),
  messages: z.array(message).min(1),
  tools: z.array(tool).nullish(),
  add_generation_prompt: z.boolean().nullish(),
});

export const embeddingRequestSchema = z.object({
  model: z.string({ error: 'expected the model id (a string; GET /v1/models lists it)' }),
  input: z.union([z.string(), z.array(z.string()).min(1), tokenIds.min(1), z.array(tokenIds.min(1)).min(1)], {
    error: 'expected a string, an array of strings, an array of token ids, or an array of token-id arrays',
  }),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().nullish(),
});
export type EmbeddingRequest = z.infer<typeof embeddingRequestSchema>;

export const tokenizeRequestSchema = z.union(
  [
    z.object({ model: z.string().nullish(), prompt: z.string(), add_special_tokens: z.boolean().nullish() }),
    z.object({ model: z.string().nullish(), messages: z.array(message).min(1), add_generation_prompt: z.boolean().nullish() }),
  ],
  { error: 'expected {"prompt": string} or {"messages": [...]}' },
);

export const detokenizeRequestSchema = z.object({ model: z.string().nullish(), tokens: tokenIds });

/** A JSON path as OpenAI writes `param`: messages[0].content. */
function paramName(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** Parses `body` or throws a 400 naming the first offending field. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('The request body must be a JSON object.', null, 'invalid_request_body');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw zodToApiError(result.error);
}

export function zodToApiError(error: z.ZodError): ApiError {
  const issue = error.issues[0]!;
  const param = paramName(issue.path);
  let message = issue.message;
  if (issue.code === 'invalid_type' && message.endsWith('received undefined')) message = `missing required field (${message.replace('Invalid input: ', '')})`;
  return badRequest(param === null ? message : `${param}: ${message}`, param, 'invalid_value');
}
