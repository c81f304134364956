/** Agents: tools, the function-calling / ReAct / plan-and-execute loops, memory, traces, model back ends. */
export * from './types.js';
export * from './tools/tool.js';
export { calculatorTool, evaluateExpression, formatNumber, CalcError } from './tools/calculator.js';
export { Workspace, WorkspaceError, fileTools, type WorkspaceOptions } from './tools/files.js';
export { httpTools, urlRefusal, type HttpToolOptions } from './tools/http.js';
export { codeTool, type CodeToolOptions } from './tools/code.js';
export { currentTimeTool } from './tools/time.js';
export { ragTool, type RagToolOptions } from './tools/rag.js';
export { parseReact, reactSystemPrompt, stripFences, type ReactStep } from './react.js';
export { Agent, Budget, DEFAULT_LIMITS, answeredTurns, canonicalArguments, type AgentMode, type AgentOptions, type AgentResult, type Limits, type StopReason, type ToolCallRecord } from './loop.js';
export { PlanAndExecute, parsePlan, type PlanOptions, type PlanResult, type PlanStepRecord } from './plan.js';
export { ConversationBuffer, LongTermMemory, HashingEmbedder, sessionDir, type ConversationBufferOptions, type LongTermMemoryOptions, type MemoryEntry } from './memory.js';
export { Tracer, readTrace, renderTranscript, type TraceEvent, type TimedTraceEvent } from './trace.js';
export { OpenAIChatClient, toOpenAIMessages, type OpenAIChatClientOptions } from './llm.js';
export { LocalChatModel } from './local.js';
export { SUITE, runSuite, type SuiteTask, type SuiteOptions, type TaskOutcome, type TaskSetting } from './suite.js';
