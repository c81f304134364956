/**
 * What the engine needs from a model family: one forward over a flat batch of tokens from many
 * sequences (each with its own start position and block table) against the paged KV cache.
 * Every projection and feed-forward runs as one matrix multiply over all the step's tokens (the
 * engine's GEMM); rotary/positions are per token; keys and values go into the sequences' blocks;
 * attention runs per sequence and head over its blocks, causal inside the new chunk.
 */
import type { Module } from '../../nn/module.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { PagedKVCache } from '../paged-kv.js';

/** One sequence's share of a step. */
export interface SequenceChunk {
  /** Token ids computed this step (their keys/values are written to the cache). */
  tokens: readonly number[];
  /** Position of tokens[0]: how many of the sequence's tokens are already in the cache. */
  start: number;
  /** The sequence's blocks, covering at least start + tokens.length positions. */
  blockTable: readonly number[];
  /** Rows to return logits for: none, the last token's, or every token's (prompt logprobs, speculative checks). */
  logits: 'none' | 'last' | 'all';
}

export interface KVShape {
  nLayer: number;
  kvHeads: number;
  headDim: number;
}

export interface PagedModel {
  /** 'llama', 'qwen2', 'gpt2', 'palm', … */
  readonly family: string;
  readonly vocabSize: number;
  /** Maximum positions (prompt + output). */
  readonly contextLength: number;
  readonly hiddenSize: number;
  readonly kvShape: KVShape;
  /** The model module (its weights are what the adapter reads). */
  readonly module: Module;
  /**
   * Runs one step. Returns logits [rows, vocabSize] for the requested rows, in batch order (per
   * sequence: none, 1 or tokens.length rows). The caller disposes the tensor.
   */
  forward(batch: readonly SequenceChunk[], kv: PagedKVCache): Tensor;
  /** Final-norm hidden states [allTokens, hiddenSize] of the batch's tokens (embeddings); the caller disposes. */
  hiddenStates(batch: readonly SequenceChunk[], kv: PagedKVCache): Tensor;
}

/** Builds an adapter for a loaded model module, or returns null when the module is not this family's. */
export type AdapterFactory = (module: Module) => PagedModel | null;
