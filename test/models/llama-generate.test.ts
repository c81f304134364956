/**
 * `weft generate` on real checkpoints: stories260K (llama2.c) must produce run.c's greedy ids with
 * the prompt encoded by its own tokenizer; llama-2-tiny-random.gguf (F16 matrices, Llama-2 vocab)
 * must load, agree with itself between cached and recomputed decoding, and generate.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runGenerate } from '../../src/cli/generate.js';
import { loadLlamaGGUF } from '../../src/io/llama-gguf.js';
import { Tensor } from '../../src/tensor/tensor.js';

const MODELS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'data', 'models');
const STORIES = join(MODELS, 'stories260K', 'stories260K.bin');
const GGUF = join(MODELS, 'llama-2-tiny-random', 'llama-2-tiny-random.gguf');

function capture(): { io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean } }; out: () => string } {
  let text = '';
  const sink = { write: (s: string): boolean => ((text += s), true) };
  return { io: { stdout: sink, stderr: { write: () => true } }, out: () => text };
}

describe.skipIf(!existsSync(STORIES))('weft generate: stories260K', () => {
  it('--json with an empty prompt gives BOS and run.c\'s 32 greedy ids', async () => {
    const { io, out } = capture();
    const r = await runGenerate({ model: STORIES, prompt: '', maxNewTokens: 32, temperature: 0, json: true }, io);
    const printed = JSON.parse(out()) as { prompt_ids: number[]; ids: number[]; text: string };
    expect(printed).toEqual(r);
    expect(r.prompt_ids).toEqual([1]);
    expect(r.ids.join(' ')).toBe('403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385');
    expect(r.text).toBe('Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One');
  });

  it('continues a prompt, streaming the prompt and its continuation', async () => {
    const { io, out } = capture();
    const r = await runGenerate({ model: STORIES, prompt: 'Once upon a time', maxNewTokens: 8, temperature: 0 }, io);
    expect(r.prompt_ids[0]).toBe(1);
    expect(r.ids).toHaveLength(8);
    expect(out()).toBe(`Once upon a time${r.text}\n`);
  });
});

describe.skipIf(!existsSync(GGUF))('llama-2-tiny-random.gguf', () => {
  it('loads (F16 dequantised, Llama-2 shape) and cached decoding equals recomputation', () => {
    const model = loadLlamaGGUF(GGUF);
    expect(model.config).toMatchObject({ hiddenSize: 8, nLayer: 1, nHead: 2, nKVHead: 2, intermediateSize: 32, vocabSize: 32000, maxPositionEmbeddings: 4096 });
    const seq = [1, 15043, 29892, 920, 526, 366, 29973];
    const full = model.logits(Tensor.fromArray(Int32Array.from(seq), [1, seq.length], 'i32')).toArray();
    const cache = model.newCache(1, 16);
    const cached: number[] = [];
    for (const id of seq) cached.push(...model.forwardCached(Tensor.fromArray(Int32Array.of(id), [1, 1], 'i32'), cache).toArray());
    let worst = 0;
    for (let i = 0; i < full.length; i++) worst = Math.max(worst, Math.abs(cached[i]! - full[i]!));
    expect(worst).toBeLessThan(1e-5);
    expect(full.every(Number.isFinite)).toBe(true);
  });

  it('weft generate --json runs with the GGUF\'s own tokenizer', async () => {
    const { io, out } = capture();
    const r = await runGenerate({ model: GGUF, prompt: 'Hello world', maxNewTokens: 5, temperature: 0, json: true }, io);
    expect(r.prompt_ids[0]).toBe(1);
    expect(r.ids).toHaveLength(5);
    expect(r.ids.every((id) => id >= 0 && id < 32000)).toBe(true);
    expect(JSON.parse(out())).toEqual(r);
  });
});
