/**
 * Mixtral on the inference engine's paged KV cache (src/infer/adapters/mixtral.ts): chunked prefill
 * and one-token decode steps, with a second sequence sharing every step, must give the model's own
 * forward logits for each position (dropless routing: batching never changes a token's experts).
 */
import { describe, expect, it } from 'vitest';
import { MixtralPagedModel, mixtralAdapter } from '../../src/infer/adapters/mixtral.js';
import { BLOCK_SIZE, PagedKVCache } from '../../src/infer/paged-kv.js';
import { Mixtral } from '../../src/models/mixtral.js';
import { Llama } from '../../src/models/llama.js';
import { Generator, noGrad, Tensor } from '../../src/tensor/index.js';

function ids(n: number, vocab: number, seed: number): number[] {
  const g = new Generator(seed);
  return Array.from({ length: n }, () => g.int(0, vocab));
}

describe('Mixtral paged adapter', () => {
  it('equals Mixtral.forward for every position, two sequences per step', () => {
    const vocab = 61;
    const model = new Mixtral(
      { vocabSize: vocab, hiddenSize: 32, intermediateSize: 40, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 128, initializerRange: 0.2, nExperts: 4, topK: 2 },
      { generator: new Generator(5) },
    ).eval();
    const adapter = mixtralAdapter(model)!;
    expect(adapter).toBeInstanceOf(MixtralPagedModel);
    expect(adapter.family).toBe('mixtral');
    expect(mixtralAdapter(new Llama({ vocabSize: 8, hiddenSize: 8, intermediateSize: 8, nLayer: 1, nHead: 2, maxPositionEmbeddings: 8 }))).toBeNull();

    const chunks = [17, 23, 1, 1, 1, 9, 1];
    const total = chunks.reduce((a, b) => a + b, 0);
    const tokens = ids(total, vocab, 1);
    const other = ids(total, vocab, 2);
    const kv = new PagedKVCache({ ...adapter.kvShape, numBlocks: 32 });
    const tableA: number[] = [];
    const tableB: number[] = [];
    const grow = (table: number[], len: number): void => {
      while (table.length * BLOCK_SIZE < len) table.push(kv.allocate()!);
    };
    const paged: Float32Array[] = [];
    let pos = 0;
    for (const n of chunks) {
      grow(tableA, pos + n);
      grow(tableB, pos + n);
      const logits = adapter.forward(
        [
          { tokens: other.slice(pos, pos + n), start: pos, blockTable: tableB, logits: 'last' },
          { tokens: tokens.slice(pos, pos + n), start: pos, blockTable: tableA, logits: 'all' },
        ],
        kv,
      );
      expect(logits.shape).toEqual([n + 1, vocab]);
      const data = logits.f32('test');
      for (let r = 1; r <= n; r++) paged.push(data.slice(r * vocab, (r + 1) * vocab));
      logits.dispose();
      pos += n;
    }
    const dense = noGrad(() => model.forward(Tensor.fromArray(Int32Array.from(tokens), [1, total], 'i32')).logits.f32('test').slice());
    let maxErr = 0;
    paged.forEach((row, t) => {
      for (let v = 0; v < vocab; v++) maxErr = Math.max(maxErr, Math.abs(row[v]! - dense[t * vocab + v]!));
    });
    expect(maxErr).toBeLessThan(2e-4);
  });
});
