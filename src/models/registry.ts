/**
 * model_type (config.json) → how to build, load and save that family. Each family file registers
 * itself; `loadPretrained(dir)` reads config.json and dispatches, so callers (generate, serve, eval)
 * need no per-family switch. Unknown types fail with the list of supported ones.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

/** What every causal LM family offers to generation and evaluation. */
export interface CausalLM extends Module {
  /** Logits [B, T, V] for ids [B, T] (i32). */
  logits(ids: Tensor): Tensor;
  /** Maximum context length. */
  readonly contextLength: number;
  readonly vocabSize: number;
}

export interface ModelFamily {
  /** HF `model_type` values this family reads (e.g. ['llama', 'qwen2']). */
  modelTypes: readonly string[];
  /** Builds the model from a parsed config.json and loads the weights found in `dir`. */
  fromPretrained(dir: string, config: Record<string, unknown>): Promise<Module>;
}

const families = new Map<string, ModelFamily>();

export function registerFamily(family: ModelFamily): void {
  for (const t of family.modelTypes) families.set(t, family);
}

export function supportedModelTypes(): string[] {
  return [...families.keys()].sort();
}

/** Reads `dir/config.json` and loads the model with the family registered for its model_type. */
export async function loadPretrained(dir: string): Promise<Module> {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`${dir}: no config.json; expected a Hugging Face-shaped model directory`);
  const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const type = config.model_type;
  if (typeof type !== 'string') throw new Error(`${path}: no "model_type" field`);
  const family = families.get(type);
  if (family === undefined) {
    throw new Error(`${path}: model_type '${type}' is not supported (supported: ${supportedModelTypes().join(', ')})`);
  }
  return family.fromPretrained(dir, config);
}
