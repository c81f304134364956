/**
 * generate(): the KV-cache path gives the same tokens as recomputing every step (nanoGPT's generate),
 * also past blockSize (the context window slides, cropped as nanoGPT) and for prompts longer than
 * blockSize; seeding, stop sequences and predicates, streaming, and argument errors.
 */
import { describe, expect, it } from 'vitest';
import { generate } from '../../src/infer/index.js';
import { GPT } from '../../src/models/index.js';
import { Generator } from '../../src/tensor/index.js';

const cfg = { vocabSize: 17, blockSize: 12, nLayer: 2, nHead: 2, nEmbd: 16 };

function model(seed: number): GPT {
  const g = new Generator(seed);
  const m = new GPT(cfg, { generator: g });
  // Peaked distributions (weights far from GPT-2's init) so sampling is not nearly uniform.
  for (const [, p] of m.namedParameters()) p.storage.data.set(p.toArray().map((v) => v + 0.4 * g.normal()));
  return m;
}

describe('generate', () => {
  const m = model(1);

  it('cache and no-cache paths agree, greedy and sampled, within and beyond blockSize', () => {
    for (const [prompt, n] of [
      [[3], 11], // fills the block exactly
      [[1, 2, 3, 4, 5], 20], // slides past blockSize
      [Array.from({ length: 15 }, (_, i) => i % 17), 5], // prompt longer than blockSize: cropped
    ] as const) {
      for (const opts of [{ temperature: 0 }, { temperature: 1, seed: 5 }, { temperature: 0.7, topK: 5, topP: 0.9, seed: 9 }]) {
        const cached = generate(m, prompt, { maxNewTokens: n, ...opts });
        const plain = generate(m, prompt, { maxNewTokens: n, ...opts, useCache: false });
        expect(cached.length).toBe(prompt.length + n);
        expect(cached.slice(0, prompt.length)).toEqual([...prompt]);
        expect(cached, JSON.stringify({ prompt, opts })).toEqual(plain);
      }
    }
  });

  it('samples reproducibly from a seed and differently from another seed', () => {
    const run = (seed: number): number[] => generate(m, [1, 2], { maxNewTokens: 30, temperature: 1.2, seed });
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
    // A caller-owned generator advances: two calls continue the stream.
    const g = new Generator(3);
    const first = generate(m, [1, 2], { maxNewTokens: 30, temperature: 1.2, generator: g });
    expect(first).toEqual(run(3));
    expect(generate(m, [1, 2], { maxNewTokens: 30, temperature: 1.2, generator: g })).not.toEqual(first);
  });

  it('streams each new token to onToken and stops after a stop sequence (kept) or predicate', () => {
    const streamed: number[] = [];
    const full = generate(m, [4], { maxNewTokens: 20, temperature: 1, seed: 2, onToken: (id) => streamed.push(id) });
    expect(streamed).toEqual(full.slice(1));
    const stopSeq = full.slice(6, 8);
    const firstEnd = full.findIndex((_, i) => i >= 2 && full[i - 1] === stopSeq[0] && full[i] === stopSeq[1]);
    const stopped = generate(m, [4], { maxNewTokens: 20, temperature: 1, seed: 2, stop: [[99, 98], stopSeq] });
    expect(stopped).toEqual(full.slice(0, firstEnd + 1));
    const byPredicate = generate(m, [4], { maxNewTokens: 20, temperature: 1, seed: 2, stop: (ids) => ids.length === 7 });
    expect(byPredicate).toEqual(full.slice(0, 7));
  });

  it('runs in eval mode and restores the previous mode', () => {
    const d = new GPT({ ...cfg, dropout: 0.5 }, { generator: new Generator(2) });
    d.train();
    const a = generate(d, [1], { maxNewTokens: 8, temperature: 0 });
    expect(d.training).toBe(true);
    expect(generate(d, [1], { maxNewTokens: 8, temperature: 0 })).toEqual(a); // no dropout noise
    d.eval();
    generate(d, [1], { maxNewTokens: 1 });
    expect(d.training).toBe(false);
  });

  it('refuses bad arguments', () => {
    expect(generate(m, [1, 2], { maxNewTokens: 0 })).toEqual([1, 2]);
    expect(() => generate(m, [], { maxNewTokens: 3 })).toThrow(/prompt is empty/);
    expect(() => generate(m, [1, 17], { maxNewTokens: 3 })).toThrow(/prompt token 17 at position 1 is outside the vocabulary \[0, 17\)/);
    expect(() => generate(m, [1], { maxNewTokens: -1 })).toThrow(/maxNewTokens/);
    expect(() => generate(m, [1], { maxNewTokens: 2, temperature: NaN })).toThrow(/temperature/);
    expect(() => generate(m, [1], { maxNewTokens: 2, stop: [[]] })).toThrow(/stop sequence 0/);
  });
});
