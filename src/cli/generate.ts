/**
 * `weft generate --model <HF dir | llama2.c .bin | .gguf> [--tokenizer <file>] --prompt "…"
 * --max-new-tokens N --temperature 0 [--json]`: continue a prompt with a pretrained causal LM.
 * The tokenizer comes from --tokenizer, else from the model itself (the .gguf's vocabulary, the
 * tokenizer files of an HF directory, a tokenizer.bin / tok*.bin next to a llama2.c checkpoint).
 */
import type { Command } from 'commander';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { generate as generateGPT } from '../infer/generate.js';
import { loadLlama2c } from '../io/llama2c.js';
import { loadAnyModel, loadGGUFModel } from '../compress/index.js';
import { GPT } from '../models/gpt.js';
import { Llama } from '../models/llama.js';
import { PaLM } from '../models/palm.js';
import { loadTokenizer, llama2cTokenizer, tokenizerFromGGUF, type Tokenizer } from '../tokenizers/index.js';
import { UsageError } from '../train/config.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parseTopP } from './train.js';
import { tokenStreamer } from './stream-text.js';

export interface GenerateFlags {
  model: string;
  tokenizer?: string;
  prompt?: string;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  json?: boolean;
}

export const GENERATE_DEFAULTS = { prompt: '', maxNewTokens: 64, temperature: 0.8, seed: 1 } as const;

export interface GenerateResult {
  prompt_ids: number[];
  /** The generated ids only. */
  ids: number[];
  /** decode(ids). */
  text: string;
}

/** A model `weft generate` can drive, with a uniform generation call. */
export interface LoadedGenerator {
  model: Llama | GPT | PaLM;
  /** New ids only. */
  generate(prompt: readonly number[], opts: { maxNewTokens: number; temperature: number; topK?: number; topP?: number; seed: number; onToken?: (id: number) => void }): number[];
}

/** Loads a checkpoint by its form: a directory (HF), a .gguf file, or a llama2.c .bin. */
export async function loadCausalLM(path: string): Promise<LoadedGenerator> {
  if (!existsSync(path)) throw new UsageError(`--model: ${path} does not exist`);
  let model: Llama | GPT | PaLM;
  if (statSync(path).isDirectory()) {
    const m = await loadAnyModel(path);
    if (!(m instanceof Llama) && !(m instanceof GPT) && !(m instanceof PaLM)) throw new UsageError(`--model: ${path} is not a causal language model (${m.constructor.name})`);
    model = m;
  } else if (path.endsWith('.gguf')) {
    model = loadGGUFModel(path);
  } else if (path.endsWith('.bin')) {
    model = loadLlama2c(path);
  } else {
    throw new UsageError(`--model: ${path}: expected an HF model directory, a .gguf file or a llama2.c .bin checkpoint`);
  }
  if (model instanceof Llama) {
    const llama = model;
    return { model, generate: (prompt, o) => llama.generate(prompt, o) };
  }
  if (model instanceof PaLM) {
    const palm = model.eval();
    return { model, generate: (prompt, o) => palm.generate(prompt, o) };
  }
  const gpt = model;
  return { model, generate: (prompt, o) => generateGPT(gpt, prompt, o).slice(prompt.length) };
}

/** The tokenizer for a checkpoint when --tokenizer is not given. */
export function defaultTokenizer(modelPath: string): Tokenizer {
  if (statSync(modelPath).isDirectory()) return loadTokenizer(modelPath);
  if (modelPath.endsWith('.gguf')) return tokenizerFromGGUF(modelPath);
  const dir = dirname(modelPath);
  const candidates = readdirSync(dir)
    .filter((f) => f === 'tokenizer.bin' || /^tok\d*\.bin$/.test(f))
    .sort();
  if (candidates.length === 0) {
    throw new UsageError(`--tokenizer: none given and no tokenizer.bin / tok*.bin next to ${basename(modelPath)}; pass --tokenizer <file>`);
  }
  return llama2cTokenizer(join(dir, candidates[0]!));
}

export async function runGenerate(flags: GenerateFlags, io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<GenerateResult> {
  const loaded = await loadCausalLM(flags.model);
  const tokenizer = flags.tokenizer !== undefined ? loadTokenizer(flags.tokenizer) : defaultTokenizer(flags.model);
  const vocab = loaded.model.config.vocabSize;
  const prompt = flags.prompt ?? GENERATE_DEFAULTS.prompt;
  const promptIds = tokenizer.encode(prompt);
  if (promptIds.length === 0) throw new UsageError('--prompt: encodes to no tokens (and the tokenizer adds no BOS); give some text');
  const bad = promptIds.find((id) => id >= vocab);
  if (bad !== undefined) throw new UsageError(`--prompt: token id ${bad} is outside the model's vocabulary (${vocab}); is --tokenizer the model's?`);
  const stream = flags.json !== true;
  if (stream) io.stdout.write(prompt);
  const ids = loaded.generate(promptIds, {
    maxNewTokens: flags.maxNewTokens ?? GENERATE_DEFAULTS.maxNewTokens,
    temperature: flags.temperature ?? GENERATE_DEFAULTS.temperature,
    topK: flags.topK,
    topP: flags.topP,
    seed: flags.seed ?? GENERATE_DEFAULTS.seed,
    onToken: stream ? tokenStreamer((ids) => tokenizer.decode(ids), (text) => void io.stdout.write(text)) : undefined,
  });
  const result: GenerateResult = { prompt_ids: promptIds, ids, text: tokenizer.decode(ids) };
  io.stdout.write(stream ? '\n' : `${JSON.stringify(result)}\n`);
  return result;
}

export function registerGenerate(program: Command, io?: CommandIO): void {
  program
    .command('generate')
    .description('continue a prompt with a pretrained model (HF directory, llama2.c .bin or .gguf)')
    .requiredOption('--model <path>', 'HF model directory (config.json + model.safetensors), llama2.c .bin, or .gguf')
    .option('--tokenizer <file>', 'tokenizer file or directory (default: found with the model)')
    .option('--prompt <text>', 'text to continue (default: empty; LLaMA tokenizers still add BOS)')
    .option('--max-new-tokens <n>', `tokens to generate (default: ${GENERATE_DEFAULTS.maxNewTokens})`, parseNonNegativeInt)
    .option('--temperature <x>', `softmax temperature; 0 = greedy (default: ${GENERATE_DEFAULTS.temperature})`, parseNonNegativeNumber)
    .option('--top-k <n>', 'sample among the k most likely tokens (default: off)', parsePositiveInt)
    .option('--top-p <p>', 'nucleus sampling (default: off)', parseTopP)
    .option('--seed <n>', `sampling seed (default: ${GENERATE_DEFAULTS.seed})`, parseNonNegativeInt)
    .option('--json', 'print {"prompt_ids":[...],"ids":[...],"text":"..."} (ids and text: the generated tokens only)')
    .action(async (flags: GenerateFlags) => {
      await runGenerate(flags, io);
    });
}
