/**
 * Autoregressive generation with a KV cache. While the sequence fits the model's blockSize, each step
 * feeds only the new token against the cache; beyond it, every step conditions on the last blockSize
 * tokens recomputed from scratch — exactly nanoGPT's `generate` crop, so cached and uncached runs
 * give the same tokens.
 */
import { noGrad } from '../tensor/autograd.js';
import { Generator, defaultGenerator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import type { GPT } from '../models/gpt.js';
import { KVCache } from '../nn/kv-cache.js';
import { type SamplingOptions, checkSamplingOptions, sampleNext } from '../nn/sampling.js';

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to add (the result may be shorter when a stop condition fires). */
  maxNewTokens: number;
  /** Seeds a fresh Generator for sampling (default: the process-wide generator). */
  seed?: number;
  /** Use this generator instead (its state advances). Takes precedence over `seed`. */
  generator?: Generator;
  /**
   * Stop after a token completes one of these id sequences (the stop sequence is kept in the output,
   * as HF does), or when the predicate returns true for the whole sequence so far.
   */
  stop?: number[][] | ((ids: number[]) => boolean);
  /** Called with each new token as soon as it is chosen (streaming). */
  onToken?: (id: number) => void;
  /** false: recompute every step without a cache (the reference path). Default true. */
  useCache?: boolean;
}

function lastRow(logits: Tensor): Float32Array {
  const V = logits.shape[logits.ndim - 1]!;
  const all = logits.f32('generate');
  return all.slice(all.length - V);
}

function endsWith(ids: readonly number[], seq: readonly number[]): boolean {
  if (seq.length === 0 || seq.length > ids.length) return false;
  const off = ids.length - seq.length;
  for (let i = 0; i < seq.length; i++) if (ids[off + i] !== seq[i]) return false;
  return true;
}

/**
 * Continues `prompt` (token ids) by up to maxNewTokens sampled tokens and returns the whole sequence
 * (prompt + new tokens), as nanoGPT's and HF's generate do. A prompt longer than blockSize is
 * conditioned on its last blockSize tokens. The model runs in eval mode (no dropout) and is put
 * back in its previous mode afterwards.
 */
export function generate(model: GPT, prompt: readonly number[], options: GenerateOptions): number[] {
  const op = 'generate';
  const { maxNewTokens, stop, onToken, useCache = true } = options;
  checkSamplingOptions(options, op);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RangeError(`${op}: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  }
  const { vocabSize, blockSize } = model.config;
  if (prompt.length === 0) throw new RangeError(`${op}: the prompt is empty; give at least one token id`);
  prompt.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`${op}: prompt token ${id} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
  });
  if (Array.isArray(stop)) {
    stop.forEach((s, i) => {
      if (!Array.isArray(s) || s.length === 0) throw new RangeError(`${op}: stop sequence ${i} must be a non-empty array of ids`);
    });
  }
  const generator = options.generator ?? (options.seed !== undefined ? new Generator(options.seed) : defaultGenerator);
  const sampling: SamplingOptions = { temperature: options.temperature ?? 1, topK: options.topK, topP: options.topP };
  const ids = [...prompt];
  const wasTraining = model.training;
  model.eval();
  try {
    const cache = useCache ? KVCache.forModel(model, 1) : null;
    for (let step = 0; step < maxNewTokens; step++) {
      let row: Float32Array;
      if (cache !== null) {
        if (ids.length > blockSize) cache.reset(); // window slides: positions shift, recompute (nanoGPT crop)
        const start = ids.length > blockSize ? ids.length - blockSize : cache.length;
        const feed = Tensor.fromArray(Int32Array.from(ids.slice(start)), [1, ids.length - start], 'i32');
        const logits = model.forwardCached(feed, cache, { lastOnly: true });
        row = lastRow(logits);
        logits.dispose();
      } else {
        const ctx = ids.slice(-blockSize);
        const input = Tensor.fromArray(Int32Array.from(ctx), [1, ctx.length], 'i32');
        const { logits } = noGrad(() => model.forward(input));
        row = lastRow(logits);
        logits.dispose();
      }
      const next = sampleNext(row, sampling, generator);
      ids.push(next);
      onToken?.(next);
      if (stop !== undefined && (typeof stop === 'function' ? stop(ids) : stop.some((s) => endsWith(ids, s)))) break;
    }
  } finally {
    model.train(wasTraining);
  }
  return ids;
}
