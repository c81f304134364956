/**
 * T5 behaviour beyond the HF parity fixtures: incremental decoding with the self-attention KV cache
 * and precomputed cross-attention K/V equals full recomputation (token by token and in chunks, with a
 * padded encoder row, positions reaching the log-spaced buckets); greedy generation equals argmax over
 * full recomputation; savePretrained → fromPretrained round-trips; bad checkpoints name the tensor
 * and the expected vs found shape. With WEFT_HF_CHECK_DIR set, writes both variants and their logits
 * for scripts/fixtures/check_t5_hf_load.py (loads them in transformers and compares).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { T5ForConditionalGeneration, relativePositionBucket, t5Preset, type T5Config } from '../../src/models/t5.js';
import { loadPretrained } from '../../src/models/registry.js';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

const shape = { vocabSize: 23, dModel: 16, dKv: 4, dFf: 20, numLayers: 2, numDecoderLayers: 2, numHeads: 3, relativeAttentionNumBuckets: 8, relativeAttentionMaxDistance: 16, dropoutRate: 0 };
const variants: [string, T5Config][] = [
  ['v1.0', t5Preset('v1.0', shape)],
  ['v1.1', t5Preset('v1.1', shape)],
];

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-t5-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function ids(rows: number[][]): Tensor {
  return Tensor.fromArray(Int32Array.from(rows.flat()), [rows.length, rows[0]!.length], 'i32');
}

function randomIds(g: Generator, B: number, T: number, V: number): number[][] {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => g.int(0, V)));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A model whose weights are far from the init so every term moves the logits. */
function perturbed(config: T5Config, seed: number): T5ForConditionalGeneration {
  const m = new T5ForConditionalGeneration(config, { generator: new Generator(seed) });
  const g = new Generator(seed + 100);
  for (const [, p] of m.namedParameters()) p.storage.data.set(p.toArray().map((v) => v + 0.2 * g.normal()));
  return m.eval();
}

describe.each(variants)('T5 %s', (_name, config) => {
  it('cached decoding equals full recomputation (step by step and in chunks)', () => {
    const model = perturbed(config, 3);
    const g = new Generator(4);
    const src = ids(randomIds(g, 2, 9, shape.vocabSize));
    const mask = Tensor.fromArray(Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]), [2, 9]);
    const T = 14; // offsets past maxExact (4 causal buckets exact) reach the log buckets
    const dec = randomIds(g, 2, T, shape.vocabSize);
    const full = model.forward({ inputIds: src, attentionMask: mask, decoderInputIds: ids(dec) }).logits.toArray();
    const V = shape.vocabSize;
    for (const chunks of [Array<number>(T).fill(1), [5, 1, 6, 2]]) {
      const state = model.startDecoding(src, { attentionMask: mask, maxLength: T });
      let pos = 0;
      for (const n of chunks) {
        const step = model.decodeCached(ids(dec.map((r) => r.slice(pos, pos + n))), state).toArray();
        for (let b = 0; b < 2; b++) {
          const want = full.slice((b * T + pos) * V, (b * T + pos + n) * V);
          expect(maxAbsDiff(step.slice(b * n * V, (b + 1) * n * V), want), `chunks ${chunks.join(',')} at ${pos}`).toBeLessThan(1e-4);
        }
        pos += n;
      }
      expect(state.cache.length).toBe(T);
    }
  });

  it('the padding mask matters and changes only through masked keys', () => {
    const model = perturbed(config, 5);
    const src = ids([[3, 4, 5, 6, 7]]);
    const dec = ids([[0, 8, 9]]);
    const a = model.forward({ inputIds: src, decoderInputIds: dec }).logits.toArray();
    const masked = model.forward({ inputIds: src, decoderInputIds: dec, attentionMask: Tensor.fromArray(Float32Array.from([1, 1, 1, 0, 0]), [1, 5]) }).logits.toArray();
    const short = model.forward({ inputIds: ids([[3, 4, 5]]), decoderInputIds: dec }).logits.toArray();
    expect(maxAbsDiff(a, masked)).toBeGreaterThan(1e-3);
    // Masking the last two keys = dropping them (bidirectional buckets only depend on offsets).
    expect(maxAbsDiff(masked, short)).toBeLessThan(1e-4);
  });

  it('greedy generation equals argmax over full recomputation', () => {
    const model = perturbed(config, 6);
    const src = ids([[5, 6, 7, 8, 9, 10]]);
    const got = model.generateGreedy(src, { maxNewTokens: 8 })[0]!;
    const want: number[] = [];
    const prefix = [config.decoderStartTokenId];
    for (let i = 0; i < 8; i++) {
      const logits = model.forward({ inputIds: src, decoderInputIds: ids([prefix]) }).logits;
      const V = config.vocabSize;
      const row = logits.toArray().slice((prefix.length - 1) * V, prefix.length * V);
      const best = row.indexOf(Math.max(...row));
      want.push(best);
      prefix.push(best);
      if (best === config.eosTokenId) break;
    }
    expect(got).toEqual(want);
  });

  it('savePretrained → fromPretrained (and the registry) reproduce the logits', async () => {
    const model = perturbed(config, 7);
    const dir = join(root, `rt-${config.gated ? 'v11' : 'v10'}`);
    await model.savePretrained(dir);
    const inputs = { inputIds: ids([[3, 4, 5, 6]]), decoderInputIds: ids([[0, 2, 7]]) };
    const want = model.forward(inputs).logits.toArray();
    const back = await T5ForConditionalGeneration.fromPretrained(dir);
    expect(back.config).toEqual(model.config);
    expect(maxAbsDiff(back.eval().forward(inputs).logits.toArray(), want)).toBe(0);
    const viaRegistry = await loadPretrained(dir);
    expect(viaRegistry).toBeInstanceOf(T5ForConditionalGeneration);
    const { tensors } = await loadSafetensors(join(dir, 'model.safetensors'));
    expect(tensors.has('lm_head.weight')).toBe(!config.tieWordEmbeddings);
  });

  it('a misshapen or missing tensor fails with its name and shapes', async () => {
    const model = perturbed(config, 8);
    const dir = join(root, `bad-${config.gated ? 'v11' : 'v10'}`);
    await model.savePretrained(dir);
    const file = join(dir, 'model.safetensors');
    const { tensors } = await loadSafetensors(file);
    const name = 'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight';
    tensors.set(name, Tensor.zeros([7, 3]));
    await saveSafetensors(file, tensors);
    await expect(T5ForConditionalGeneration.fromPretrained(dir)).rejects.toThrow(`${name} has shape [7, 3], expected [8, 3]`);
    tensors.delete(name);
    await saveSafetensors(file, tensors);
    await expect(T5ForConditionalGeneration.fromPretrained(dir)).rejects.toThrow(`missing tensors: ${name} (expected [8, 3])`);
  });

  it.skipIf(process.env.WEFT_HF_CHECK_DIR === undefined)('writes the model and its logits for check_t5_hf_load.py', async () => {
    const out = join(process.env.WEFT_HF_CHECK_DIR!, config.gated ? 'v1_1' : 'v1_0');
    const model = perturbed(config, 9);
    await model.savePretrained(join(out, 'model'));
    const g = new Generator(10);
    const inputIds = randomIds(g, 2, 12, shape.vocabSize);
    const decoderIds = randomIds(g, 2, 10, shape.vocabSize);
    const logits = model.forward({ inputIds: ids(inputIds), decoderInputIds: ids(decoderIds) }).logits;
    await writeFile(join(out, 'logits.json'), JSON.stringify({ input_ids: inputIds, decoder_input_ids: decoderIds, shape: logits.shape, logits: logits.toArray() }));
  });
});

describe('relative position buckets', () => {
  it('exact near offsets, log-spaced far ones, direction halves and causal clipping', () => {
    // Bidirectional, 32 buckets: 16 per direction, 8 exact offsets.
    expect([0, -1, -7].map((r) => relativePositionBucket(r, true, 32, 128))).toEqual([0, 1, 7]);
    expect([1, 7].map((r) => relativePositionBucket(r, true, 32, 128))).toEqual([17, 23]);
    expect(relativePositionBucket(-1000, true, 32, 128)).toBe(15);
    expect(relativePositionBucket(1000, true, 32, 128)).toBe(31);
    // Causal: later keys are all bucket 0; earlier ones use all 32 buckets.
    expect(relativePositionBucket(5, false, 32, 128)).toBe(0);
    expect(relativePositionBucket(-15, false, 32, 128)).toBe(15);
    expect(relativePositionBucket(-1000, false, 32, 128)).toBe(31);
  });
});
