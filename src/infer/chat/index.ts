/** Chat: templates (tokenizer_config.json chat_template via @huggingface/jinja) and tool-call parsing. */
export type { ChatMessage, OpenAITool, OpenAIToolCall, OpenAIToolCallDelta } from './types.js';
export { chatTemplateFor, detectToolCallFormat, DEFAULT_CHAT_TEMPLATE, ChatTemplateError, type ChatTemplate, type RenderOptions } from './template.js';
export { parseToolCalls, ToolCallStreamParser, assembleToolCalls, toolCallId, type ToolCallChunk } from './tool-calls.js';
