/**
 * PaLM-style model: parity with a PyTorch reference written from the paper
 * (scripts/fixtures/palm_ref.py: logits, loss and every parameter gradient; float64 truth, rtol
 * 1e-4), cached decoding = full recomputation, and save → load through the registry.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PaLM, type PaLMConfigInput } from '../../src/models/palm.js';
import { loadPretrained } from '../../src/models/registry.js';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { type BackendName, Tensor, nativeAvailable, setBackend } from '../../src/tensor/index.js';
import { Generator } from '../../src/tensor/random.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'palm');

interface Fixture {
  config: PaLMConfigInput;
  ids: ArraySpec;
  targets: ArraySpec;
  weights: Record<string, ArraySpec>;
  logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
}


const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];
const cases = ['palm', 'palm_theta'].map((n) => [n, JSON.parse(readFileSync(join(DIR, `${n}.json`), 'utf8')) as Fixture] as const);

afterAll(() => {
  setBackend(nativeAvailable() ? 'native' : 'js');
});

describe.each(backends)('PaLM vs the PyTorch reference from the paper (%s backend)', (backend) => {
  it.each(cases)('%s: logits, loss and every parameter gradient', (_name, fx) => {
    setBackend(backend);
    const model = new PaLM(fx.config);
    model.loadStateDict(new Map(Object.entries(fx.weights).map(([k, v]) => [k, arrayTensor(v)])));
    const { logits, loss } = model.forward(arrayTensor(fx.ids), arrayTensor(fx.targets));
    expect(logits.shape).toEqual(fx.logits.shape);
    expect(mismatch(logits.toArray(), decodeArray(fx.logits)), 'logits').toBeNull();
    expect(mismatch([loss!.item()], [fx.loss]), 'loss').toBeNull();
    loss!.backward();
    const params = new Map(model.namedParameters());
    expect([...params.keys()].sort()).toEqual(Object.keys(fx.grads).sort());
    for (const [name, spec] of Object.entries(fx.grads)) {
      const g = params.get(name)!.grad;
      expect(g, `${name} has no gradient`).not.toBeNull();
      expect(mismatch((g as Tensor).toArray(), decodeArray(spec)), `gradient of ${name}`).toBeNull();
    }
  });
});

const small: PaLMConfigInput = { vocabSize: 19, blockSize: 12, nLayer: 2, nHead: 4, nEmbd: 32, ffnDim: 64 };

describe('PaLM decoding', () => {
  it('the multi-query KV cache gives the logits of full recomputation, in chunks of 1, 3 and 2', () => {
    const model = new PaLM(small, { generator: new Generator(4) });
    // Larger weights than the init so that every position's logits differ visibly.
    for (const p of model.parameters()) if (p.ndim === 2) p.storage.data.forEach((v, i, a) => ((a as Float32Array)[i] = v * 20));
    const ids = Tensor.fromArray(Int32Array.from([3, 18, 7, 7, 0, 11, 5, 2, 9, 14, 1, 6]), [2, 6], 'i32');
    const full = model.forward(ids).logits.toArray();
    const cache = model.newCache();
    const V = small.vocabSize;
    const stitched = new Float32Array(full.length);
    let pos = 0;
    for (const len of [1, 3, 2]) {
      const part = model.forwardCached(ids.narrow(1, pos, len).contiguous(), cache).toArray();
      for (let b = 0; b < 2; b++) stitched.set(part.slice(b * len * V, (b + 1) * len * V), (b * 6 + pos) * V);
      pos += len;
    }
    let worst = 0;
    let spread = 0;
    for (let i = 0; i < full.length; i++) {
      worst = Math.max(worst, Math.abs(stitched[i]! - full[i]!));
      spread = Math.max(spread, Math.abs(full[i]!));
    }
    expect(spread).toBeGreaterThan(0.1);
    expect(worst).toBeLessThan(1e-4 * Math.max(1, spread));
    expect(cache.length).toBe(6);
    // The cache holds one key head per layer: [B, 1, T, D].
    expect(cache.layers[0]!.k.shape).toEqual([2, 1, 6, 8]);
  });

  it('greedy generation through the cache equals argmax over full recomputation', () => {
    const model = new PaLM(small, { generator: new Generator(9) });
    for (const p of model.parameters()) if (p.ndim === 2) p.storage.data.forEach((v, i, a) => ((a as Float32Array)[i] = v * 20));
    const prompt = [4, 8, 15];
    const got = model.generateGreedy(Tensor.fromArray(Int32Array.from(prompt), [1, 3], 'i32'), 6);
    const seq = [...prompt];
    for (let s = 0; s < 6; s++) {
      const logits = model.forward(Tensor.fromArray(Int32Array.from(seq), [1, seq.length], 'i32')).logits.toArray();
      const last = Array.from(logits.slice((seq.length - 1) * 19, seq.length * 19));
      seq.push(last.indexOf(Math.max(...last)));
    }
    expect(got).toEqual(seq.slice(3));
  });
});

describe('PaLM save / load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-palm-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round trips through the registry; a misshapen key head is named with both shapes', async () => {
    const model = new PaLM(small, { generator: new Generator(1) });
    const ids = Tensor.fromArray(Int32Array.from([1, 2, 3, 4]), [1, 4], 'i32');
    await model.savePretrained(dir);
    const loaded = await loadPretrained(dir);
    expect(loaded).toBeInstanceOf(PaLM);
    expect((loaded as PaLM).forward(ids).logits.toArray()).toEqual(model.forward(ids).logits.toArray());
    const sd = model.stateDict();
    sd.set('layers.1.attn.k_proj.weight', Tensor.zeros([32, 32]));
    await saveSafetensors(join(dir, 'model.safetensors'), sd);
    await expect(PaLM.fromPretrained(dir)).rejects.toThrow(/layers\.1\.attn\.k_proj\.weight has shape \[32, 32\], expected \[8, 32\]/);
  });

  it('rejects bad configs and ids clearly', () => {
    expect(() => new PaLM({ ...small, nHead: 3 })).toThrow(/nEmbd must be divisible by nHead/);
    const model = new PaLM(small);
    expect(() => model.forward(Tensor.fromArray(Int32Array.from([1, 19]), [1, 2], 'i32'))).toThrow(/ids value 19 at flat position 1 is outside the vocabulary \[0, 19\)/);
    expect(() => model.forward(Tensor.fromArray(new Int32Array(13), [1, 13], 'i32'))).toThrow(/sequence length 13 exceeds blockSize 12/);
  });
});
