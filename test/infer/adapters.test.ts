import { describe, expect, it } from 'vitest';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { setBackend } from '../../src/tensor/backend/index.js';
import type { Module } from '../../src/nn/module.js';
import { Llama } from '../../src/models/llama.js';
import { GPT } from '../../src/models/gpt.js';
import { PaLM } from '../../src/models/palm.js';
import { adapterFor, type PagedModel } from '../../src/infer/adapters/index.js';
import { BLOCK_SIZE, PagedKVCache } from '../../src/infer/paged-kv.js';

function ids(n: number, vocab: number, seed: number): number[] {
  const g = new Generator(seed);
  return Array.from({ length: n }, () => g.nextU32() % vocab);
}

/**
 * Feeds `tokens` through the adapter in the given chunk sizes (chunked prefill, then one-token
 * decode steps), two sequences interleaved in the same steps, and returns every position's logits
 * of the first sequence.
 */
function pagedLogits(adapter: PagedModel, tokens: number[], other: number[], chunks: number[]): Float32Array[] {
  const kv = new PagedKVCache({ ...adapter.kvShape, numBlocks: 32 });
  const tableA: number[] = [];
  const tableB: number[] = [];
  const grow = (table: number[], len: number): void => {
    while (table.length * BLOCK_SIZE < len) table.push(kv.allocate()!);
  };
  const rows: Float32Array[] = [];
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
    const V = adapter.vocabSize;
    expect(logits.shape).toEqual([n + 1, V]);
    const data = logits.f32('test');
    for (let r = 1; r <= n; r++) rows.push(data.slice(r * V, (r + 1) * V));
    logits.dispose();
    pos += n;
  }
  return rows;
}

function denseLogits(model: Module & { forward(ids: Tensor): { logits: Tensor } }, tokens: number[]): Float32Array {
  return noGrad(() => model.forward(Tensor.fromArray(Int32Array.from(tokens), [1, tokens.length], 'i32')).logits.f32('test').slice());
}

function check(model: Module & { forward(ids: Tensor): { logits: Tensor } }, vocab: number, family: string): void {
  model.eval();
  const adapter = adapterFor(model);
  expect(adapter.family).toBe(family);
  const chunks = [17, 23, 1, 1, 1, 9, 1];
  const total = chunks.reduce((a, b) => a + b, 0);
  const tokens = ids(total, vocab, 1);
  const other = ids(total, vocab, 2);
  const paged = pagedLogits(adapter, tokens, other, chunks);
  const dense = denseLogits(model, tokens);
  let maxErr = 0;
  paged.forEach((row, t) => {
    for (let v = 0; v < vocab; v++) maxErr = Math.max(maxErr, Math.abs(row[v]! - dense[t * vocab + v]!));
  });
  expect(maxErr).toBeLessThan(2e-4);
}

describe('paged adapters equal the models’ own forward()', () => {
  it('LLaMA with grouped-query attention', () => {
    const m = new Llama({ vocabSize: 97, hiddenSize: 48, intermediateSize: 96, nLayer: 2, nHead: 6, nKVHead: 2, maxPositionEmbeddings: 128, initializerRange: 0.2 }, { generator: new Generator(3) });
    check(m, 97, 'llama');
  });

  it('Qwen2 (q/k/v biases, untied head)', () => {
    const m = new Llama(
      { modelType: 'qwen2', qkvBias: true, vocabSize: 101, hiddenSize: 32, intermediateSize: 64, nLayer: 2, nHead: 4, nKVHead: 1, maxPositionEmbeddings: 128, ropeTheta: 1e6, initializerRange: 0.2 },
      { generator: new Generator(4) },
    );
    // Biases start at zero; make them matter.
    for (const [name, p] of m.namedParameters()) if (name.endsWith('.bias')) p.f32('test').set(ids(p.numel, 1000, 9).map((x) => x / 1000 - 0.5));
    check(m, 101, 'qwen2');
  });

  it('GPT-2', () => {
    const m = new GPT({ vocabSize: 89, blockSize: 128, nLayer: 2, nHead: 4, nEmbd: 32, bias: true, activation: 'gelu_new' }, { generator: new Generator(5) });
    for (const [name, p] of m.namedParameters()) if (name.endsWith('.bias')) p.f32('test').set(ids(p.numel, 1000, 8).map((x) => x / 5000 - 0.1));
    check(m, 89, 'gpt2');
  });

  it('PaLM (parallel blocks, multi-query attention)', () => {
    const m = new PaLM({ vocabSize: 83, blockSize: 128, nLayer: 2, nHead: 4, nEmbd: 32, ffnDim: 64 }, { generator: new Generator(6) });
    check(m, 83, 'palm');
  });

  it('on the js backend (no native kernels: the TypeScript reference paths)', () => {
    setBackend('js');
    try {
      const m = new Llama({ vocabSize: 61, hiddenSize: 24, intermediateSize: 48, nLayer: 1, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 128, initializerRange: 0.2 }, { generator: new Generator(8) });
      check(m, 61, 'llama');
    } finally {
      setBackend('native');
    }
  });

  it('hidden states are the final-norm output of every token', () => {
    const m = new Llama({ vocabSize: 50, hiddenSize: 16, intermediateSize: 32, nLayer: 1, nHead: 2, maxPositionEmbeddings: 64, tieWordEmbeddings: true }, { generator: new Generator(1) });
    const adapter = adapterFor(m);
    const kv = new PagedKVCache({ ...adapter.kvShape, numBlocks: 4 });
    const t = ids(20, 50, 3);
    const h = adapter.hiddenStates([{ tokens: t, start: 0, blockTable: [kv.allocate()!, kv.allocate()!], logits: 'none' }], kv);
    expect(h.shape).toEqual([20, 16]);
    // The head applied to them gives the model's logits.
    const dense = denseLogits(m, t);
    const w = m.model.embed_tokens.weight.f32('t');
    const hd = h.f32('t');
    let maxErr = 0;
    for (let r = 0; r < 20; r++) {
      for (let v = 0; v < 50; v++) {
        let dot = 0;
        for (let c = 0; c < 16; c++) dot += hd[r * 16 + c]! * w[v * 16 + c]!;
        maxErr = Math.max(maxErr, Math.abs(dot - dense[r * 50 + v]!));
      }
    }
    expect(maxErr).toBeLessThan(1e-4);
  });
});
