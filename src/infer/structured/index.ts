/** Structured output: JSON / JSON Schema / tool-call constraints enforced token by token. */
export { tokenVocabulary, type TokenVocabulary } from './vocabulary.js';
export { createConstraint, constraintProgram, StructuredConstraint, TOOL_CALL_FORMATS, MAX_PARALLEL_CALLS, warmVocabulary } from './constraint.js';
export { compileSchema, SchemaError, type SchemaNode } from './schema.js';
export { MAX_WS } from './matcher.js';
