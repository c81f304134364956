/**
 * Chat templates: a model's Jinja `chat_template` from tokenizer_config.json rendered with
 * @huggingface/jinja, the way transformers' `apply_chat_template` renders it (trim_blocks and
 * lstrip_blocks, `bos_token` / `eos_token`, `add_generation_prompt`, `tools`, `raise_exception`).
 *
 * Messages are passed as Hugging Face templates expect them: an assistant's tool-call `arguments`
 * (JSON text in OpenAI's API) become objects, because templates print them with `| tojson`.
 */
import { Template } from '@huggingface/jinja';
import type { ChatMessage, OpenAITool } from './types.js';

/**
 * The template used when a model has none: ChatML (`<|im_start|>role\n…<|im_end|>\n`), and with
 * tools a system section that lists them and asks for Hermes-style calls
 * (`<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`), which is also how earlier tool
 * calls and tool results (`<tool_response>`) are written back into the conversation.
 */
export const DEFAULT_CHAT_TEMPLATE = [
  '{%- if tools %}',
  "{{- '<|im_start|>system\\n' }}",
  "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}",
  "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}",
  "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}",
  '{{- \'\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n\' }}',
  "{%- elif messages[0].role == 'system' %}",
  "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}",
  '{%- endif %}',
  '{%- for message in messages %}',
  "{%- if message.role == 'system' and loop.first %}",
  "{%- elif message.role == 'assistant' and message.tool_calls %}",
  "{{- '<|im_start|>assistant' }}",
  "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}",
  '{%- for tc in message.tool_calls %}',
  '{{- \'\\n<tool_call>\\n{"name": "\' + tc.function.name + \'", "arguments": \' }}{{- tc.function.arguments | tojson }}{{- \'}\\n</tool_call>\' }}',
  '{%- endfor %}',
  "{{- '<|im_end|>\\n' }}",
  "{%- elif message.role == 'tool' %}",
  "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}",
  "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}",
  "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}",
  '{%- else %}',
  "{{- '<|im_start|>' + message.role + '\\n' }}{%- if message.content %}{{- message.content }}{%- endif %}{{- '<|im_end|>\\n' }}",
  '{%- endif %}',
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join('\n');

export interface RenderOptions {
  tools?: readonly OpenAITool[];
  addGenerationPrompt: boolean;
}

export interface ChatTemplate {
  /** The Jinja source used without tools. */
  readonly source: string;
  /** The tool-call syntax the model writes: 'hermes' or 'llama3-json' (see tool-calls.ts). */
  readonly toolCallFormat: string;
  /** True when the model had no chat_template and the default ChatML one is used. */
  readonly isDefault: boolean;
  /** Strings that end an assistant turn in this template's text form (e.g. '<|im_end|>' for the default). */
  readonly stop: readonly string[];
  render(messages: readonly ChatMessage[], opts: RenderOptions): string;
}

/** Error raised by a template (`raise_exception`) or while rendering it; the server answers 400. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

/** The tool-call syntax a template teaches: Hermes tags, or Llama 3.1's bare JSON with "parameters". */
export function detectToolCallFormat(source: string): string {
  if (source.includes('<tool_call>')) return 'hermes';
  if (source.includes('<|python_tag|>') || source.includes('"parameters": dictionary of argument name') || source.includes('<|start_header_id|>ipython')) return 'llama3-json';
  return 'hermes';
}

function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  // tokenizer_config.json may store an AddedToken object.
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

function compile(source: string, what: string): Template {
  try {
    return new Template(source);
  } catch (e) {
    throw new ChatTemplateError(`${what}: the Jinja template does not parse: ${(e as Error).message}`);
  }
}

/** Messages in the form HF templates expect (tool-call arguments as objects; absent fields left out). */
function templateMessages(messages: readonly ChatMessage[]): Record<string, unknown>[] {
  return messages.map((m) => {
    const out: Record<string, unknown> = { role: m.role, content: m.content };
    if (m.name !== undefined) out.name = m.name;
    if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
    if (m.tool_calls !== undefined) {
      out.tool_calls = m.tool_calls.map((tc) => {
        let args: unknown = tc.function.arguments;
        try {
          args = JSON.parse(tc.function.arguments);
        } catch {
          // Not JSON: the template gets the text as it is.
        }
        return { id: tc.id, type: tc.type, function: { name: tc.function.name, arguments: args } };
      });
    }
    return out;
  });
}

function readTemplates(raw: unknown): { main: string; toolUse: string | null } | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string') return { main: raw, toolUse: null };
  if (Array.isArray(raw)) {
    const named = new Map<string, string>();
    raw.forEach((entry, i) => {
      const e = entry as { name?: unknown; template?: unknown };
      if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || typeof e.template !== 'string') {
        throw new ChatTemplateError(`tokenizer_config.json chat_template[${i}] must be {"name": string, "template": string}`);
      }
      named.set(e.name, e.template);
    });
    const main = named.get('default') ?? (raw.length > 0 ? (raw[0] as { template: string }).template : undefined);
    if (main === undefined) return null;
    return { main, toolUse: named.get('tool_use') ?? null };
  }
  throw new ChatTemplateError('tokenizer_config.json chat_template must be a string or a list of {"name", "template"}');
}

/** The chat template of a model (from its tokenizer_config.json), or the documented default when it has none. */
export function chatTemplateFor(tokenizerConfig: Record<string, unknown> | null): ChatTemplate {
  const templates = readTemplates(tokenizerConfig?.chat_template);
  const isDefault = templates === null;
  const main = templates?.main ?? DEFAULT_CHAT_TEMPLATE;
  const toolUse = templates?.toolUse ?? null;
  const compiled = compile(main, 'chat_template');
  const compiledTools = toolUse === null ? null : compile(toolUse, 'chat_template tool_use');
  const specials: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = tokenText(tokenizerConfig?.[key]);
    if (v !== undefined) specials[key] = v;
  }
  return {
    source: main,
    toolCallFormat: detectToolCallFormat(toolUse ?? main),
    isDefault,
    stop: isDefault ? ['<|im_end|>'] : [],
    render(messages, opts) {
      // As transformers: the tool_use template whenever tools are passed (even an empty list).
      const useTools = opts.tools !== undefined;
      const template = useTools && compiledTools !== null ? compiledTools : compiled;
      try {
        return template.render({
          ...specials,
          messages: templateMessages(messages),
          tools: opts.tools ?? null,
          documents: null,
          add_generation_prompt: opts.addGenerationPrompt,
        });
      } catch (e) {
        // raise_exception (defined by @huggingface/jinja) throws its message as it is.
        throw new ChatTemplateError(`chat template: ${(e as Error).message}`);
      }
    },
  };
}
