/** `weft sample runs/<name>`: continue a prompt with a trained model (nanoGPT's sample.py). */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Tokenizer, tokenizerFromSavedJSON } from '../data/tokenizer.js';
import { generate } from '../infer/generate.js';
import { GPT } from '../models/gpt.js';
import { recoverCheckpoint, TOKENIZER_FILE, TRAINER_STATE_FILE, loadTrainerState } from '../train/checkpoint.js';
import { UsageError } from '../train/config.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parseTopP } from './train.js';
import { tokenStreamer } from './stream-text.js';

export interface SampleFlags {
  prompt?: string;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  json?: boolean;
}

export const SAMPLE_DEFAULTS = { prompt: '\n', maxNewTokens: 200, temperature: 0.8, topK: 200, seed: 1 } as const;

export interface SampleResult {
  /** The whole sequence: prompt ids, then the generated ones. */
  ids: number[];
  /** decode(ids): the prompt followed by its continuation. */
  text: string;
}

export interface LoadedRun {
  model: GPT;
  tokenizer: Tokenizer;
}

/** Loads the model and tokenizer of a run directory (finishing an interrupted checkpoint first). */
export async function loadRun(dir: string): Promise<LoadedRun> {
  if (!existsSync(dir)) throw new UsageError(`${dir}: no such run directory; train one first (weft train gpt --data <file> --out ${dir})`);
  recoverCheckpoint(dir);
  // A trainer checkpoint lists the hash of every file: verify them before trusting the weights.
  if (existsSync(join(dir, TRAINER_STATE_FILE))) loadTrainerState(dir);
  const tokPath = join(dir, TOKENIZER_FILE);
  if (!existsSync(tokPath)) throw new UsageError(`${dir}: no ${TOKENIZER_FILE}; point at a run directory written by weft train`);
  const tokenizer = tokenizerFromSavedJSON(JSON.parse(readFileSync(tokPath, 'utf8')));
  const model = await GPT.fromPretrained(dir);
  if (model.config.vocabSize !== tokenizer.vocabSize) {
    throw new Error(`${dir}: the model's vocabulary (${model.config.vocabSize}) and ${TOKENIZER_FILE}'s (${tokenizer.vocabSize}) differ`);
  }
  return { model, tokenizer };
}

export async function runSample(dir: string, flags: SampleFlags, io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<SampleResult> {
  const prompt = flags.prompt ?? SAMPLE_DEFAULTS.prompt;
  const { model, tokenizer } = await loadRun(dir);
  if (prompt.length === 0) throw new UsageError('--prompt: empty; give at least one character (nanoGPT starts from "\\n")');
  let promptIds: number[];
  try {
    promptIds = tokenizer.encode(prompt);
  } catch (err) {
    throw new UsageError(`--prompt: ${err instanceof Error ? err.message : String(err)}; use characters from the training text`);
  }
  const stream = flags.json !== true;
  if (stream) io.stdout.write(prompt);
  const ids = generate(model, promptIds, {
    maxNewTokens: flags.maxNewTokens ?? SAMPLE_DEFAULTS.maxNewTokens,
    temperature: flags.temperature ?? SAMPLE_DEFAULTS.temperature,
    topK: flags.topK ?? SAMPLE_DEFAULTS.topK,
    topP: flags.topP,
    seed: flags.seed ?? SAMPLE_DEFAULTS.seed,
    onToken: stream ? tokenStreamer((ids) => tokenizer.decode(ids), (text) => void io.stdout.write(text)) : undefined,
  });
  const result = { ids, text: tokenizer.decode(ids) };
  io.stdout.write(stream ? '\n' : `${JSON.stringify(result)}\n`);
  return result;
}

export function registerSample(program: Command, io?: CommandIO): void {
  program
    .command('sample')
    .description('generate text from a trained run (prints the prompt and its continuation)')
    .argument('<run-dir>', 'run directory written by weft train (e.g. runs/quickstart)')
    .option('--prompt <text>', 'text to continue (default: "\\n")')
    .option('--max-new-tokens <n>', `tokens to generate (default: ${SAMPLE_DEFAULTS.maxNewTokens})`, parseNonNegativeInt)
    .option('--temperature <x>', `softmax temperature; 0 = greedy (default: ${SAMPLE_DEFAULTS.temperature})`, parseNonNegativeNumber)
    .option('--top-k <n>', `sample among the k most likely tokens (default: ${SAMPLE_DEFAULTS.topK})`, parsePositiveInt)
    .option('--top-p <p>', 'nucleus sampling: the smallest set of tokens with probability ≥ p (default: off)', parseTopP)
    .option('--seed <n>', `sampling seed (default: ${SAMPLE_DEFAULTS.seed})`, parseNonNegativeInt)
    .option('--json', 'print {"ids":[...],"text":"..."}: the whole sequence (prompt + continuation) and its text')
    .action(async (dir: string, flags: SampleFlags) => {
      await runSample(dir, flags, io);
    });
}
