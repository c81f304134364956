/**
 * KV cache: logits computed incrementally against the cache equal logits recomputed from scratch by
 * GPT.forward, at every step, for several prompts, step sizes and batch sizes, on each backend; and
 * the cache's bookkeeping and errors.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { KVCache } from '../../src/infer/index.js';
import { GPT } from '../../src/models/index.js';
import { type BackendName, Generator, Tensor, nativeAvailable, noGrad, setBackend } from '../../src/tensor/index.js';

const cfg = { vocabSize: 29, blockSize: 24, nLayer: 3, nHead: 4, nEmbd: 32, activation: 'gelu_new' as const };

/** Random weights well away from GPT-2's tiny init so attention is far from uniform. */
function model(seed: number, bias = true): GPT {
  const g = new Generator(seed);
  const m = new GPT({ ...cfg, bias }, { generator: g });
  for (const [, p] of m.namedParameters()) p.storage.data.set(p.toArray().map((v) => v + 0.25 * g.normal()));
  return m.eval();
}

function idsTensor(rows: number[][]): Tensor {
  return Tensor.fromArray(Int32Array.from(rows.flat()), [rows.length, rows[0]!.length], 'i32');
}

/** |got − want| ≤ 1e-5 + 1e-4·|want| everywhere, else the worst index. */
function closeTo(got: ArrayLike<number>, want: ArrayLike<number>): string | null {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= 1e-5 + 1e-4 * Math.abs(want[i]!))) return `at ${i}: ${got[i]} vs ${want[i]}`;
  }
  return null;
}

/** Logits [B, t, V] of positions [from, from + t) from a full forward of the sequence so far. */
function reference(m: GPT, seqs: number[][], from: number, t: number): number[] {
  const full = noGrad(() => m.forward(idsTensor(seqs.map((s) => s.slice(0, from + t)))).logits);
  return full.narrow(1, from, t).toArray();
}

const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];
afterAll(() => {
  setBackend(nativeAvailable() ? 'native' : 'js');
});

describe.each(backends)('cached logits equal recomputed logits (%s backend)', (backend) => {
  it.each([
    { name: 'prompt 5, then one token at a time to the full block', batch: 1, prompt: 5, chunks: [1] },
    { name: 'prompt 1, steps of 3', batch: 1, prompt: 1, chunks: [3] },
    { name: 'batch 3, prompt 7, mixed steps', batch: 3, prompt: 7, chunks: [1, 4, 2] },
    { name: 'bias=false, prompt 12, steps of 1', batch: 2, prompt: 12, chunks: [1], bias: false },
  ])('$name', ({ batch, prompt, chunks, bias }) => {
    setBackend(backend);
    const m = model(batch * 100 + prompt, bias ?? true);
    const g = new Generator(prompt);
    const seqs = Array.from({ length: batch }, () => Array.from({ length: cfg.blockSize }, () => g.int(0, cfg.vocabSize)));
    const cache = KVCache.forModel(m, batch);
    let pos = 0;
    let step = 0;
    let size = prompt;
    while (pos < cfg.blockSize) {
      const t = Math.min(size, cfg.blockSize - pos);
      const got = m.forwardCached(idsTensor(seqs.map((s) => s.slice(pos, pos + t))), cache);
      expect(got.shape).toEqual([batch, t, cfg.vocabSize]);
      expect(closeTo(got.toArray(), reference(m, seqs, pos, t)), `step ${step} (positions ${pos}..${pos + t - 1})`).toBeNull();
      pos += t;
      expect(cache.length).toBe(pos);
      size = chunks[step++ % chunks.length]!;
    }
    // The cache is full now: one more token is a clear error.
    expect(() => m.forwardCached(idsTensor(seqs.map(() => [1])), cache)).toThrow(/KV cache full: 24 cached \+ 1 new tokens > 24/);
  });
});

describe('KVCache', () => {
  it('lastOnly gives the last position of the full result', () => {
    const m = model(5);
    const seq = [[3, 1, 4, 1, 5, 9, 2, 6]];
    const all = m.forwardCached(idsTensor(seq), KVCache.forModel(m));
    const last = m.forwardCached(idsTensor(seq), KVCache.forModel(m), { lastOnly: true });
    expect(last.shape).toEqual([1, 1, cfg.vocabSize]);
    expect(last.toArray()).toEqual(all.narrow(1, 7, 1).toArray());
  });

  it('holds the keys of every position; reset and truncate rewind', () => {
    const m = model(6);
    const cache = KVCache.forModel(m, 1, 10);
    m.forwardCached(idsTensor([[1, 2, 3]]), cache);
    expect(cache.keysView(0).shape).toEqual([1, 4, 3, 8]);
    expect(cache.valuesView(2).shape).toEqual([1, 4, 3, 8]);
    const keys3 = cache.keysView(1).toArray();
    cache.truncate(2);
    m.forwardCached(idsTensor([[3]]), cache);
    expect(cache.keysView(1).toArray()).toEqual(keys3); // position 2 recomputed identically
    expect(cache.remaining).toBe(7);
    cache.reset();
    expect(cache.length).toBe(0);
    expect(() => cache.truncate(1)).toThrow(/truncate: length 1 out of range \[0, 0\]/);
  });

  it('refuses misuse with the problem named', () => {
    const m = model(7);
    expect(() => KVCache.forModel(m, 1, 25)).toThrow(/maxLength 25 exceeds the model's blockSize 24/);
    expect(() => new KVCache({ nLayer: 0, batch: 1, nHead: 1, headDim: 1, maxLength: 1 })).toThrow(/nLayer must be a positive integer/);
    const small = KVCache.forModel(m, 1, 4);
    expect(() => m.forwardCached(idsTensor([[1, 2, 3, 4, 5]]), small)).toThrow(/KV cache full: 0 cached \+ 5 new tokens > 4/);
    expect(() => m.forwardCached(idsTensor([[1], [2]]), small)).toThrow(/does not fit this model and batch/);
    const otherModel = new GPT({ ...cfg, nHead: 2 });
    expect(() => otherModel.forwardCached(idsTensor([[1]]), small)).toThrow(/heads 4.*heads 2/);
    expect(() => small.write(3, new Float32Array(32), new Float32Array(32), 1)).toThrow(/layer 3 out of range/);
    expect(() => small.write(0, new Float32Array(31), new Float32Array(32), 1)).toThrow(/expected \[1, 4, 1, 8\] = 32/);
    expect(() => m.forwardCached(idsTensor([[1, 29]]), small)).toThrow(/ids value 29/);
    expect(small.length).toBe(0); // nothing was written by the failed calls
  });
});
