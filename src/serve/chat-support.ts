/** The chat pieces the server uses (templates, tool-call parsing), from src/infer/chat, in one place. */
export { chatTemplateFor, parseToolCalls, ToolCallStreamParser, type ChatMessage, type ChatTemplate } from '../infer/chat/index.js';
