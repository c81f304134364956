/**
 * `weft agent run | chat | transcript`: a goal reached with tools, by any OpenAI-compatible endpoint
 * (`--model http://host/v1`) or a local Weft model directory (`--model <dir>`), with the
 * function-calling, ReAct or plan-and-execute loop; `chat` keeps a session's conversation and
 * long-term memory under --memory-dir; `transcript` prints a --trace file for people.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Agent, type AgentMode, type AgentResult, type Limits } from '../agent/loop.js';
import { LocalChatModel } from '../agent/local.js';
import { OpenAIChatClient } from '../agent/llm.js';
import { ConversationBuffer, LongTermMemory, sessionDir } from '../agent/memory.js';
import { PlanAndExecute, type PlanResult } from '../agent/plan.js';
import { runSuite } from '../agent/suite.js';
import { calculatorTool } from '../agent/tools/calculator.js';
import { codeTool } from '../agent/tools/code.js';
import { fileTools, Workspace } from '../agent/tools/files.js';
import { httpTools } from '../agent/tools/http.js';
import { ragTool } from '../agent/tools/rag.js';
import { currentTimeTool } from '../agent/tools/time.js';
import { type PolicyRequest, type Tool, ToolExecutor, type ToolPolicy } from '../agent/tools/tool.js';
import { readTrace, renderTranscript, type TimedTraceEvent, Tracer } from '../agent/trace.js';
import type { ChatModel } from '../agent/types.js';
import { CachedEmbedder, EmbeddingCache, type Embedder } from '../rag/embeddings.js';
import { readRagConfig } from '../rag/ingest.js';
import type { VectorStore } from '../rag/store.js';
import { openStore } from '../rag/stores/index.js';
import { UsageError } from '../train/config.js';
import type { OutputStream } from '../train/progress.js';
import { embedderFrom, stateDirFor } from './rag.js';
import { parsePositiveInt, parsePositiveNumber } from './train.js';

export const TOOL_GROUPS = ['calculator', 'rag', 'http', 'files', 'code', 'time'] as const;
export type ToolGroup = (typeof TOOL_GROUPS)[number];

export interface AgentIO {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Interactive input (chat, confirmations); default process.stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export interface AgentFlags {
  model: string;
  modelName?: string;
  apiKey?: string;
  tokenizer?: string;
  tools?: ToolGroup[];
  store?: string;
  workspace?: string;
  allowHosts?: string[];
  mode?: AgentMode | 'plan';
  maxSteps?: number;
  maxTokens?: number;
  timeLimit?: number;
  trace?: string;
  session?: string;
  memoryDir?: string;
  memoryTokens?: number;
  yes?: boolean;
  json?: boolean;
  quiet?: boolean;
}

const isUrl = (s: string): boolean => /^https?:\/\//.test(s);

const parseList = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

const parseTools = (value: string): ToolGroup[] => {
  const names = parseList(value);
  for (const n of names) if (!(TOOL_GROUPS as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown tool group '${n}'; choose from ${TOOL_GROUPS.join(', ')}`);
  return names as ToolGroup[];
};

export async function modelFrom(flags: Pick<AgentFlags, 'model' | 'modelName' | 'apiKey' | 'tokenizer'>): Promise<ChatModel & { close?: () => Promise<void> }> {
  if (isUrl(flags.model)) return new OpenAIChatClient({ baseURL: flags.model, model: flags.modelName, apiKey: flags.apiKey ?? process.env.OPENAI_API_KEY });
  if (!existsSync(flags.model)) throw new UsageError(`--model: ${flags.model} is neither a URL (http://host/v1) nor an existing model directory or file`);
  return LocalChatModel.load(flags.model, { tokenizer: flags.tokenizer });
}

async function openRagStore(spec: string): Promise<VectorStore> {
  const stateDir = stateDirFor(spec);
  const cfg = readRagConfig(stateDir);
  if (cfg === null) throw new UsageError(`--store: ${spec} holds no Weft RAG store; create it with weft rag ingest <path> --store ${spec}`);
  let embedder: Embedder | null = null;
  if (cfg.embedder !== null) embedder = new CachedEmbedder(await embedderFrom(cfg.embedder, cfg.embedderModel), await EmbeddingCache.open(join(stateDir, 'embedding-cache.bin')));
  return openStore(spec, embedder);
}

interface Toolbox {
  tools: Tool[];
  close: () => Promise<void>;
}

export async function buildTools(flags: AgentFlags, extra: Tool[] = []): Promise<Toolbox> {
  const groups = flags.tools ?? ['calculator', 'time'];
  const tools: Tool[] = [];
  const closers: (() => Promise<void>)[] = [];
  for (const g of new Set(groups)) {
    switch (g) {
      case 'calculator':
        tools.push(calculatorTool());
        break;
      case 'time':
        tools.push(currentTimeTool());
        break;
      case 'rag': {
        if (flags.store === undefined) throw new UsageError('--tools rag needs --store <rag store> (made with weft rag ingest)');
        const store = await openRagStore(flags.store);
        closers.push(() => store.close());
        tools.push(ragTool(store));
        break;
      }
      case 'http':
        if (flags.allowHosts === undefined || flags.allowHosts.length === 0) throw new UsageError('--tools http needs --allow-hosts host1,host2 (requests to any other host are refused)');
        tools.push(...httpTools({ allowHosts: flags.allowHosts }));
        break;
      case 'files': {
        if (flags.workspace === undefined) throw new UsageError('--tools files needs --workspace <dir> (files outside it cannot be read or written)');
        if (!existsSync(flags.workspace)) mkdirSync(flags.workspace, { recursive: true });
        if (!statSync(flags.workspace).isDirectory()) throw new UsageError(`--workspace: ${flags.workspace} is not a directory`);
        tools.push(...fileTools(new Workspace(flags.workspace)));
        break;
      }
      case 'code':
        tools.push(codeTool());
        break;
    }
  }
  tools.push(...extra);
  return { tools, close: async () => void (await Promise.all(closers.map((c) => c()))) };
}

/**
 * Lines from an input, queued as they arrive (readline drops lines nobody is waiting for, and a
 * pending question never settles when the input ends); null once the input is closed.
 */
class LineReader {
  private readonly rl: Interface;
  private readonly queue: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;

  constructor(
    input: NodeJS.ReadableStream,
    private readonly prompts: OutputStream,
  ) {
    this.rl = createInterface({ input, terminal: false });
    this.rl.on('line', (line) => {
      if (this.waiting !== null) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.queue.push(line);
    });
    this.rl.on('close', () => {
      this.closed = true;
      this.waiting?.(null);
      this.waiting = null;
    });
  }

  next(prompt: string): Promise<string | null> {
    this.prompts.write(prompt);
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(): void {
    this.rl.close();
  }
}

/** Dangerous tools (writes, POSTs, code): --yes allows them; otherwise ask on a terminal; otherwise refuse. */
function policyFor(flags: AgentFlags, reader: () => LineReader | null): ToolPolicy {
  return async (req: PolicyRequest) => {
    if (flags.yes === true) return true;
    const r = reader();
    if (r === null) return `${req.tool} needs confirmation; rerun with --yes to allow it without asking`;
    const answer = await r.next(`allow ${req.tool} ${JSON.stringify(req.arguments).slice(0, 300)}? [y/N] `);
    return answer !== null && /^y(es)?$/i.test(answer.trim()) ? true : 'the user declined';
  };
}

function limitsFrom(flags: AgentFlags): Partial<Limits> {
  return {
    ...(flags.maxSteps !== undefined ? { maxSteps: flags.maxSteps } : {}),
    ...(flags.maxTokens !== undefined ? { maxTokens: flags.maxTokens } : {}),
    ...(flags.timeLimit !== undefined ? { timeLimitMs: flags.timeLimit * 1000 } : {}),
  };
}

function liveTranscript(io: AgentIO, flags: AgentFlags): ((e: TimedTraceEvent) => void) | undefined {
  if (flags.quiet === true || flags.json === true) return undefined;
  return (e) => {
    if (e.type === 'run_end' || e.type === 'run_start') return;
    io.stderr.write(renderTranscript([e], { maxResultChars: 300 }));
  };
}

export async function runAgent(goal: string, flags: AgentFlags, io: AgentIO = { stdout: process.stdout, stderr: process.stderr }): Promise<AgentResult | PlanResult> {
  if (goal.trim() === '') throw new UsageError('give a goal, e.g. weft agent run --model http://localhost:8000/v1 "What is 17 * 23?"');
  const model = await modelFrom(flags);
  let memory: LongTermMemory | undefined;
  if (flags.session !== undefined) memory = await LongTermMemory.open({ dir: sessionDir(flags.memoryDir ?? '.weft-agent', flags.session) });
  const box = await buildTools(flags, memory?.tools() ?? []);
  let reader: LineReader | null = null;
  const stdin = io.stdin ?? process.stdin;
  const getReader = (): LineReader | null => {
    if (reader === null && stdin.isTTY === true) reader = new LineReader(stdin, io.stderr);
    return reader;
  };
  try {
    const executor = new ToolExecutor(box.tools, { policy: policyFor(flags, getReader) });
    const tracer = new Tracer(flags.trace, liveTranscript(io, flags));
    const mode = flags.mode ?? (model.supportsTools ? 'tools' : 'react');
    const result =
      mode === 'plan'
        ? await new PlanAndExecute({ model, executor, limits: limitsFrom(flags), tracer }).run(goal)
        : await new Agent({ model, executor, mode, limits: limitsFrom(flags), tracer }).run(goal);
    if (flags.json === true) {
      io.stdout.write(`${JSON.stringify({ answer: result.answer, stopReason: result.stopReason, detail: result.detail, steps: result.steps, usage: result.usage, ms: Math.round(result.ms) })}\n`);
    } else {
      if (result.stopReason !== 'final_answer') io.stderr.write(`agent stopped: ${result.stopReason} (${result.detail})\n`);
      if (result.answer !== null) io.stdout.write(`${result.answer}\n`);
    }
    return result;
  } finally {
    (reader as LineReader | null)?.close();
    await box.close();
    await model.close?.();
  }
}

export async function runChat(flags: AgentFlags, io: AgentIO = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  const model = await modelFrom(flags);
  const session = flags.session ?? 'default';
  const dir = sessionDir(flags.memoryDir ?? '.weft-agent', session);
  const buffer = new ConversationBuffer({ dir, maxTokens: flags.memoryTokens ?? 2000 });
  const longTerm = await LongTermMemory.open({ dir });
  const box = await buildTools(flags, longTerm.tools());
  const reader = new LineReader(io.stdin ?? process.stdin, io.stderr);
  const executor = new ToolExecutor(box.tools, { policy: policyFor(flags, () => reader) });
  const tracer = new Tracer(flags.trace, liveTranscript(io, flags));
  io.stderr.write(`weft agent chat — session '${session}' (${buffer.messages.length} earlier messages, ${longTerm.size} memories); tools: ${executor.allowedNames().join(', ')}. Empty line or /exit to quit.\n`);
  let turns = 0;
  try {
    for (;;) {
      const line = await reader.next('> ');
      if (line === null) break;
      const text = line.trim();
      if (text === '' || text === '/exit' || text === '/quit') break;
      const mode = flags.mode === 'plan' ? undefined : flags.mode;
      const r = await new Agent({ model, executor, mode, limits: limitsFrom(flags), tracer, memory: buffer }).run(text);
      await buffer.save();
      turns++;
      if (r.answer !== null) io.stdout.write(`${r.answer}\n`);
      else io.stdout.write(`(stopped: ${r.stopReason}: ${r.detail})\n`);
    }
  } finally {
    reader.close();
    await buffer.save();
    await box.close();
    await model.close?.();
  }
  return turns;
}

export interface EvalFlags {
  model: string;
  modelName?: string;
  apiKey?: string;
  tokenizer?: string;
  mode?: AgentMode;
  maxSteps?: number;
  json?: boolean;
}

/** Runs the built-in task suite (src/agent/suite.ts) and prints success per task and the rate. */
export async function runEval(flags: EvalFlags, io: AgentIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const model = await modelFrom(flags);
  try {
    const r = await runSuite(model, {
      mode: flags.mode,
      maxSteps: flags.maxSteps,
      onTask: (o) =>
        io.stdout.write(
          flags.json === true
            ? `${JSON.stringify(o)}\n`
            : `${o.success ? 'PASS' : 'FAIL'} ${o.id.padEnd(16)} ${o.stopReason} after ${o.steps} steps, ${o.tokens} tokens, ${o.ms} ms${o.error !== undefined ? ` (${o.error})` : ''}\n`,
        ),
    });
    const summary = { model: model.id, mode: flags.mode ?? (model.supportsTools ? 'tools' : 'react'), tasks: r.outcomes.length, passed: r.passed, rate: r.rate };
    io.stdout.write(flags.json === true ? `${JSON.stringify({ summary })}\n` : `${r.passed}/${r.outcomes.length} tasks passed (${(100 * r.rate).toFixed(0)}%)\n`);
    return r.rate;
  } finally {
    await model.close?.();
  }
}

const commonOptions = (cmd: Command): Command =>
  cmd
    .requiredOption('--model <dir|url>', 'OpenAI-compatible base URL (http://host/v1, e.g. weft serve) or a local Weft model directory')
    .option('--model-name <name>', "model name sent to a URL (default: 'default')")
    .option('--api-key <key>', 'bearer key for the URL (default: OPENAI_API_KEY)')
    .option('--tokenizer <file>', 'tokenizer for a local model (default: found with the model)')
    .option('--tools <list>', `comma-separated tool groups: ${TOOL_GROUPS.join(', ')} (default: calculator,time)`, parseTools)
    .option('--store <dir>', 'RAG store for --tools rag (made with weft rag ingest)')
    .option('--workspace <dir>', 'the only directory --tools files may read and write')
    .option('--allow-hosts <list>', 'hosts --tools http may reach (host, host:port or *.domain)', parseList)
    .addOption(new Option('--mode <mode>', 'tools (function calling), react (text protocol) or plan (plan-and-execute); default: tools').choices(['tools', 'react', 'plan']))
    .option('--max-steps <n>', 'model calls allowed (default: 10)', parsePositiveInt)
    .option('--max-tokens <n>', 'token budget for the whole run (default: 100000)', parsePositiveInt)
    .option('--time-limit <s>', 'wall-clock limit in seconds (default: 300)', parsePositiveNumber)
    .option('--trace <file>', 'write every step as JSON lines (print it with weft agent transcript)')
    .option('--session <id>', 'session id: long-term memory (remember/recall tools) under --memory-dir')
    .option('--memory-dir <dir>', 'where sessions live (default: .weft-agent)')
    .option('--yes', 'allow dangerous tools (write_file, http_post, run_python) without asking')
    .option('--quiet', 'do not print the live transcript on stderr');

export function registerAgent(program: Command, io?: AgentIO): void {
  const agent = program.command('agent').description('agents: reach a goal with tools (function calling, ReAct, plan-and-execute), with memory and traces');
  commonOptions(agent.command('run').description('run the agent on one goal and print its answer').argument('<goal>', 'what to achieve'))
    .option('--json', 'print {"answer","stopReason","detail","steps","usage","ms"} instead of the answer')
    .action(async (goal: string, flags: AgentFlags) => {
      await runAgent(goal, flags, io);
    });
  commonOptions(agent.command('chat').description('interactive conversation with memory (--session <id> keeps it between runs)'))
    .option('--memory-tokens <n>', 'conversation tokens kept before the oldest turns are summarised (default: 2000)', parsePositiveInt)
    .action(async (flags: AgentFlags) => {
      await runChat(flags, io);
    });
  agent
    .command('eval')
    .description('run the built-in task suite (arithmetic, retrieval, date, files, memory, an injection attempt) and report the success rate')
    .requiredOption('--model <dir|url>', 'OpenAI-compatible base URL or a local Weft model directory')
    .option('--model-name <name>', "model name sent to a URL (default: 'default')")
    .option('--api-key <key>', 'bearer key for the URL (default: OPENAI_API_KEY)')
    .option('--tokenizer <file>', 'tokenizer for a local model')
    .addOption(new Option('--mode <mode>', 'tools or react (default: tools)').choices(['tools', 'react']))
    .option('--max-steps <n>', 'model calls per task (default: 8)', parsePositiveInt)
    .option('--json', 'JSON lines: one per task, then {"summary"}')
    .action(async (flags: EvalFlags) => {
      await runEval(flags, io);
    });
  agent
    .command('transcript')
    .description('print a --trace file as a readable transcript')
    .argument('<trace>', 'JSON-lines trace written by --trace')
    .action((file: string) => {
      if (!existsSync(file)) throw new UsageError(`${file} does not exist`);
      (io?.stdout ?? process.stdout).write(renderTranscript(readTrace(file)));
    });
}
