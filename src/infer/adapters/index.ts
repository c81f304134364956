/**
 * The adapter registry: model module → PagedModel. Each family's factory returns null for modules
 * that are not its own; other families (e.g. MoE models) add theirs with registerAdapter.
 */
import type { Module } from '../../nn/module.js';
import { gptAdapter } from './gpt.js';
import { llamaAdapter } from './llama.js';
import { mixtralAdapter } from './mixtral.js';
import { palmAdapter } from './palm.js';
import type { AdapterFactory, PagedModel } from './types.js';

export type { AdapterFactory, KVShape, PagedModel, SequenceChunk } from './types.js';
export { LlamaPagedModel } from './llama.js';
export { GPTPagedModel } from './gpt.js';
export { PaLMPagedModel } from './palm.js';
// The building blocks a new family's adapter needs (see llama.ts for the pattern).
export { PagedDecoder, RopeTables, pagedAttentionCore, columns, selectRows, stepLayout, type StepLayout } from './common.js';

const factories: { name: string; factory: AdapterFactory }[] = [
  { name: 'llama', factory: llamaAdapter },
  { name: 'gpt2', factory: gptAdapter },
  { name: 'palm', factory: palmAdapter },
  { name: 'mixtral', factory: mixtralAdapter },
];

/** Adds a family (tried before the built-in ones, so it can also override them). */
export function registerAdapter(name: string, factory: AdapterFactory): void {
  factories.unshift({ name, factory });
}

export function supportedAdapters(): string[] {
  return factories.map((f) => f.name);
}

/** The paged adapter for a loaded model, or an error naming the families the engine runs. */
export function adapterFor(module: Module): PagedModel {
  for (const { factory } of factories) {
    const a = factory(module);
    if (a !== null) return a;
  }
  throw new Error(`inference engine: no paged adapter for ${module.constructor.name} (supported: ${supportedAdapters().join(', ')}); register one with registerAdapter`);
}
