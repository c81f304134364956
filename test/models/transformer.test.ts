/**
 * The original Transformer: parity with a PyTorch reference written from the paper
 * (scripts/fixtures/transformer_ref.py: logits, loss and every parameter gradient, float64 truth,
 * rtol 1e-4), incremental decoding = full recomputation, greedy / beam search agreement, and
 * save → load round trips with named errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Transformer, type TransformerConfigInput } from '../../src/models/transformer.js';
import { loadPretrained } from '../../src/models/registry.js';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { type BackendName, Tensor, nativeAvailable, setBackend } from '../../src/tensor/index.js';
import { Generator } from '../../src/tensor/random.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'transformer');

interface Fixture {
  config: TransformerConfigInput;
  src: ArraySpec;
  tgt_in: ArraySpec;
  targets: ArraySpec;
  weights: Record<string, ArraySpec>;
  logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
}


const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];
const cases = ['shared', 'separate'].map((n) => [n, JSON.parse(readFileSync(join(DIR, `${n}.json`), 'utf8')) as Fixture] as const);

function fromFixture(fx: Fixture): Transformer {
  const model = new Transformer(fx.config);
  model.loadStateDict(new Map(Object.entries(fx.weights).map(([k, v]) => [k, arrayTensor(v)])));
  return model;
}

afterAll(() => {
  setBackend(nativeAvailable() ? 'native' : 'js');
});

describe.each(backends)('Transformer vs the PyTorch reference from the paper (%s backend)', (backend) => {
  it.each(cases)('%s: logits, loss and every parameter gradient', (_name, fx) => {
    setBackend(backend);
    const model = fromFixture(fx);
    const { logits, loss } = model.forward(arrayTensor(fx.src), arrayTensor(fx.tgt_in), arrayTensor(fx.targets));
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

const small: TransformerConfigInput = { srcVocabSize: 13, tgtVocabSize: 13, dModel: 16, nHead: 4, nEncoderLayers: 2, nDecoderLayers: 2, dFF: 32, maxLength: 16 };
const src = Tensor.fromArray(Int32Array.from([5, 7, 3, 9, 11, 2, 0, 4, 8, 6, 3, 12, 4, 2]), [2, 7], 'i32');

describe('Transformer decoding', () => {
  it('incremental decoding with the cache equals full recomputation, in one step or many', () => {
    const model = new Transformer(small, { generator: new Generator(3) }).eval();
    const tgt = Tensor.fromArray(Int32Array.from([1, 4, 9, 9, 3, 7, 1, 12, 5, 6, 6, 3]), [2, 6], 'i32');
    const full = model.forward(src, tgt).logits.toArray();
    const state = model.encode(src);
    // Chunks of 1, 2 and 3 positions exercise the end-aligned causal mask with several new queries.
    const cache = model.startDecoding(state);
    const parts: Float32Array[] = [];
    for (const [start, len] of [[0, 1], [1, 2], [3, 3]] as const) {
      parts.push(Float32Array.from(model.decodeCached(tgt.narrow(1, start, len).contiguous(), cache).toArray()));
    }
    const V = small.tgtVocabSize;
    const stitched = new Float32Array(2 * 6 * V);
    let pos = 0;
    for (const [i, len] of [1, 2, 3].entries()) {
      for (let b = 0; b < 2; b++) stitched.set(parts[i]!.subarray(b * len * V, (b + 1) * len * V), (b * 6 + pos) * V);
      pos += len;
    }
    let worst = 0;
    for (let i = 0; i < full.length; i++) worst = Math.max(worst, Math.abs(stitched[i]! - full[i]!));
    expect(worst).toBeLessThan(1e-4);
    expect(cache.length).toBe(6);
  });

  it('greedy decoding agrees with argmax over full recomputation; beam 1 without penalty equals greedy', () => {
    const model = new Transformer(small, { generator: new Generator(5) }).eval();
    const greedy = model.greedyDecode(src, 6);
    for (let b = 0; b < 2; b++) {
      const row = src.narrow(0, b, 1).contiguous();
      // Recompute: at each step, run the whole prefix and take the last position's argmax.
      const prefix = [1];
      const want: number[] = [];
      for (let s = 0; s < 7; s++) {
        const logits = model.forward(row, Tensor.fromArray(Int32Array.from(prefix), [1, prefix.length], 'i32')).logits.toArray();
        const last = Array.from(logits.slice((prefix.length - 1) * 13, prefix.length * 13));
        const next = last.indexOf(Math.max(...last));
        if (next === 2 || want.length === 6) break;
        want.push(next);
        prefix.push(next);
      }
      expect(greedy[b]).toEqual(want);
      expect(model.beamSearch(row, { beamSize: 1, lengthPenalty: 0, maxNewTokens: 6 })).toEqual(want);
    }
  });

  it('beam search with a beam wider than the search space returns the exhaustive optimum (length penalty α from 0 to 3)', () => {
    const model = new Transformer(small, { generator: new Generator(11) }).eval();
    // Flatter output distributions (a smaller shared embedding) make EOS compete with longer
    // hypotheses, so the optimum changes with α and every kind of hypothesis is exercised.
    const table = model.shared!.weight.storage.data as Float32Array;
    table.forEach((v, i) => (table[i] = v * 0.15));
    const V = small.tgtVocabSize;
    const EOS = 2;
    for (let b = 0; b < 2; b++) {
      const row = src.narrow(0, b, 1).contiguous();
      // Log-probabilities after BOS and after BOS a, from full recomputation.
      const lp = (prefix: number[]): number[] => {
        const logits = model.forward(row, Tensor.fromArray(Int32Array.from([1, ...prefix]), [1, prefix.length + 1], 'i32')).logits.toArray().slice(prefix.length * V);
        const m = Math.max(...logits);
        const lse = m + Math.log(logits.reduce((s, x) => s + Math.exp(x - m), 0));
        return logits.map((x) => x - lse);
      };
      for (const alpha of [0, 0.6, 1.5, 2, 3]) {
        const penalty = (len: number): number => Math.pow((5 + len) / 6, alpha);
        // With maxNewTokens 2: [] + EOS, [a] + EOS, or [a, c] cut at the limit (no EOS).
        const first = lp([]);
        let best = { ids: [] as number[], score: first[EOS]! / penalty(0) };
        for (let a = 0; a < V; a++) {
          if (a === EOS) continue;
          const second = lp([a]);
          const hyps = [{ ids: [a], score: (first[a]! + second[EOS]!) / penalty(1) }];
          for (let c = 0; c < V; c++) if (c !== EOS) hyps.push({ ids: [a, c], score: (first[a]! + second[c]!) / penalty(2) });
          for (const h of hyps) if (h.score > best.score) best = h;
        }
        expect(model.beamSearch(row, { beamSize: 200, lengthPenalty: alpha, maxNewTokens: 2 })).toEqual(best.ids);
      }
    }
  });
});

describe('Transformer save / load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-transformer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('savePretrained → loadPretrained (registry) gives the same logits; a misshapen tensor is named', async () => {
    const model = new Transformer({ ...small, shareEmbeddings: false, tgtVocabSize: 15 }, { generator: new Generator(7) });
    const tgt = Tensor.fromArray(Int32Array.from([1, 4, 9, 1, 14, 5]), [2, 3], 'i32');
    await model.savePretrained(dir);
    const loaded = await loadPretrained(dir);
    expect(loaded).toBeInstanceOf(Transformer);
    expect((loaded as Transformer).forward(src, tgt).logits.toArray()).toEqual(model.forward(src, tgt).logits.toArray());

    const sd = model.stateDict();
    sd.set('decoder.layers.1.cross_attn.k_proj.weight', Tensor.zeros([16, 8]));
    await saveSafetensors(join(dir, 'model.safetensors'), sd);
    await expect(Transformer.fromPretrained(dir)).rejects.toThrow(/decoder\.layers\.1\.cross_attn\.k_proj\.weight has shape \[16, 8\], expected \[16, 16\]/);
    sd.delete('lm_head.weight');
    await saveSafetensors(join(dir, 'model.safetensors'), sd);
    await expect(Transformer.fromPretrained(dir)).rejects.toThrow(/missing tensors: lm_head\.weight/);
  });

  it('rejects bad ids and configs with clear messages', () => {
    expect(() => new Transformer({ ...small, dModel: 18 })).toThrow(/dModel must be divisible by nHead/);
    expect(() => new Transformer({ ...small, tgtVocabSize: 5 })).toThrow(/shareEmbeddings needs/);
    const model = new Transformer(small);
    const bad = Tensor.fromArray(Int32Array.from([1, 13]), [1, 2], 'i32');
    expect(() => model.encode(bad)).toThrow(/src value 13 at flat position 1 is outside the vocabulary \[0, 13\)/);
  });
});
