/**
 * Loads a model for the inference engine: a Hugging Face-shaped directory (config.json's model_type
 * through the model registry; tokenizer.json / tokenizer_config.json / generation_config.json next
 * to it), a .gguf file (weights and the tokenizer it embeds), or a llama2.c .bin checkpoint with its
 * tokenizer (tok512.bin, …) given explicitly or lying next to it. EOS/BOS ids come from
 * generation_config.json, config.json, tokenizer_config.json or the GGUF metadata.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Tokenizer } from '../data/tokenizer.js';
import type { Module } from '../nn/module.js';
import '../models/index.js';
import { loadAnyModel, loadGGUFModel } from '../compress/index.js';
import { loadLlama2c } from '../io/llama2c.js';
import { ggufInt, ggufString, readGGUFFile } from '../io/gguf.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { tokenizerFromGGUFFile } from '../tokenizers/formats/gguf-vocab.js';
import { adapterFor } from './adapters/index.js';
import type { PagedModel } from './adapters/types.js';
import type { ModelDescription } from './api.js';

export interface LoadedModel extends ModelDescription {
  adapter: PagedModel;
  tokenizer: Tokenizer;
}

export interface LoadModelOptions {
  /** A tokenizer file or directory (required for llama2.c checkpoints without one next to them). */
  tokenizer?: string;
  /** The served id (default: the base name of the path). */
  modelId?: string;
}

/** Token id of a special token given as a string or {content} (tokenizer_config.json style). */
function specialId(tokenizer: Tokenizer, token: unknown): number | null {
  const text = typeof token === 'string' ? token : typeof token === 'object' && token !== null && typeof (token as { content?: unknown }).content === 'string' ? (token as { content: string }).content : null;
  if (text === null) return null;
  const lookup = (tokenizer as Partial<{ tokenToId(t: string): number | undefined }>).tokenToId;
  const id = typeof lookup === 'function' ? lookup.call(tokenizer, text) : undefined;
  return id ?? null;
}

function idList(v: unknown): number[] {
  if (typeof v === 'number' && Number.isInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
  return [];
}

function readJson(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch (e) {
    throw new Error(`loadModel: ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Builds the engine's view of an in-memory model (tests, benchmarks, programmatic use). */
export function loadedModelFrom(
  module: Module,
  tokenizer: Tokenizer,
  info: { modelId?: string; eosTokenIds?: number[]; bosTokenId?: number | null; tokenizerConfig?: Record<string, unknown> | null } = {},
): LoadedModel {
  const adapter = adapterFor(module);
  return {
    adapter,
    tokenizer,
    modelId: info.modelId ?? adapter.family,
    family: adapter.family,
    contextLength: adapter.contextLength,
    vocabSize: adapter.vocabSize,
    eosTokenIds: info.eosTokenIds ?? [],
    bosTokenId: info.bosTokenId ?? null,
    tokenizerConfig: info.tokenizerConfig ?? null,
  };
}

async function loadDirectory(dir: string, options: LoadModelOptions): Promise<LoadedModel> {
  const module = await loadAnyModel(dir);
  let tokenizer: Tokenizer;
  try {
    tokenizer = loadTokenizer(options.tokenizer ?? dir) as unknown as Tokenizer;
  } catch (e) {
    throw new Error(`loadModel: ${dir}: no usable tokenizer (${(e as Error).message}); pass --tokenizer <file>`);
  }
  const config = readJson(join(dir, 'config.json')) ?? {};
  const generation = readJson(join(dir, 'generation_config.json')) ?? {};
  const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'));
  let eos = idList(generation.eos_token_id);
  if (eos.length === 0) eos = idList(config.eos_token_id);
  if (eos.length === 0 && tokenizerConfig !== null) {
    const id = specialId(tokenizer, tokenizerConfig.eos_token);
    if (id !== null) eos = [id];
  }
  let bos: number | null = idList(generation.bos_token_id)[0] ?? idList(config.bos_token_id)[0] ?? null;
  if (bos === null && tokenizerConfig !== null) bos = specialId(tokenizer, tokenizerConfig.bos_token);
  return loadedModelFrom(module, tokenizer, { modelId: options.modelId ?? basename(dir), eosTokenIds: eos, bosTokenId: bos, tokenizerConfig });
}

function loadGGUF(path: string, options: LoadModelOptions): LoadedModel {
  const file = readGGUFFile(path);
  const module = loadGGUFModel(path);
  let tokenizer: Tokenizer;
  if (options.tokenizer !== undefined) {
    tokenizer = loadTokenizer(options.tokenizer) as unknown as Tokenizer;
  } else {
    try {
      tokenizer = tokenizerFromGGUFFile(file) as unknown as Tokenizer;
    } catch (e) {
      throw new Error(`loadModel: ${path}: ${(e as Error).message}; pass --tokenizer <file>`);
    }
  }
  const eos = ggufInt(file, 'tokenizer.ggml.eos_token_id');
  const eot = ggufInt(file, 'tokenizer.ggml.eot_token_id');
  const bos = ggufInt(file, 'tokenizer.ggml.bos_token_id');
  const template = ggufString(file, 'tokenizer.chat_template');
  const eosIds = [...new Set([eos, eot].filter((x): x is number => x !== undefined))];
  return loadedModelFrom(module, tokenizer, {
    modelId: options.modelId ?? basename(path),
    eosTokenIds: eosIds,
    bosTokenId: bos ?? null,
    tokenizerConfig: template === undefined ? null : { chat_template: template },
  });
}

function loadLlama2cFile(path: string, options: LoadModelOptions): LoadedModel {
  let tokPath = options.tokenizer;
  if (tokPath === undefined) {
    const dir = dirname(path);
    const candidate = readdirSync(dir)
      .sort()
      .find((f) => f === 'tokenizer.bin' || /^tok\d*\.bin$/.test(f));
    if (candidate === undefined) throw new Error(`loadModel: ${path} is a llama2.c checkpoint; give its tokenizer with --tokenizer <tok512.bin>`);
    tokPath = join(dir, candidate);
  }
  const module = loadLlama2c(path);
  const tokenizer = loadTokenizer(tokPath) as unknown as Tokenizer;
  // llama2.c's run.c ends a sample at BOS (1), which separates stories in its training data; 2 is </s>.
  return loadedModelFrom(module, tokenizer, { modelId: options.modelId ?? basename(path), eosTokenIds: [2, 1], bosTokenId: 1 });
}

/** Loads an HF directory, a .gguf file or a llama2.c .bin for the inference engine. */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  if (!existsSync(path)) throw new Error(`loadModel: ${path} does not exist`);
  if (statSync(path).isDirectory()) {
    if (!existsSync(join(path, 'config.json'))) {
      const gguf = readdirSync(path)
        .sort()
        .find((f) => f.endsWith('.gguf'));
      if (gguf !== undefined) return loadGGUF(join(path, gguf), { ...options, modelId: options.modelId ?? basename(path) });
      throw new Error(`loadModel: ${path} has no config.json (a Hugging Face model directory) and no .gguf file`);
    }
    return loadDirectory(path, options);
  }
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') === 'GGUF') return loadGGUF(path, options);
  if (path.endsWith('.bin')) return loadLlama2cFile(path, options);
  throw new Error(`loadModel: ${path} is not a model this engine loads (an HF directory with config.json, a .gguf file, or a llama2.c .bin checkpoint)`);
}
