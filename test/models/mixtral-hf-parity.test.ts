/**
 * Parity with Hugging Face's MixtralForCausalLM (fixture by scripts/fixtures/moe_hf.py): Weft loads
 * the HF-saved directory, runs one forward and backward, and must match HF's logits, every layer's
 * router logits, the load-balancing loss (load_balancing_loss_func over all layers), the loss
 * (CE + router_aux_loss_coef · aux, output_router_logits=true) and the gradient of every parameter
 * (reference: HF in float64 from the same f32 weights; rtol 1e-4, atol 1e-5) on each backend. Then
 * the cached decoder must match the full forward, and savePretrained must round-trip.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Mixtral, mixtralConfigFromHF } from '../../src/models/mixtral.js';
import { loadPretrained } from '../../src/models/registry.js';
import { type BackendName, Generator, nativeAvailable, setBackend, Tensor } from '../../src/tensor/index.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';
import { tempDir } from '../train/helpers.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'moe');

interface Fixture {
  model_dir: string;
  ids: ArraySpec;
  targets: ArraySpec;
  logits: ArraySpec;
  router_logits: ArraySpec[];
  aux: number;
  loss: number;
  grads: Record<string, ArraySpec>;
}

const fx = JSON.parse(readFileSync(join(DIR, 'mixtral_lm.json'), 'utf8')) as Fixture;
const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];

afterAll(() => setBackend(nativeAvailable() ? 'native' : 'js'));

describe.each(backends)('Mixtral vs HF MixtralForCausalLM (%s backend)', (backend) => {
  it('logits, router logits, aux loss, loss and every parameter gradient', async () => {
    setBackend(backend);
    const model = (await loadPretrained(join(DIR, fx.model_dir))) as Mixtral;
    expect(model).toBeInstanceOf(Mixtral);
    expect(model.config).toMatchObject({ nExperts: 4, topK: 2, outputRouterLogits: true, routerAuxLossCoef: 0.05 });
    const out = model.forward(arrayTensor(fx.ids), arrayTensor(fx.targets));
    expect(mismatch(out.logits.toArray(), decodeArray(fx.logits)), 'logits').toBeNull();
    expect(out.routerLogits.length).toBe(fx.router_logits.length);
    out.routerLogits.forEach((r, i) => expect(mismatch(r.toArray(), decodeArray(fx.router_logits[i]!)), `router logits of layer ${i}`).toBeNull());
    expect(mismatch([out.auxLoss.item()], [fx.aux]), 'aux loss').toBeNull();
    expect(mismatch([out.loss!.item()], [fx.loss]), 'loss').toBeNull();
    out.loss!.backward();
    const params = new Map(model.namedParameters());
    expect([...params.keys()].sort()).toEqual(Object.keys(fx.grads).sort());
    for (const [name, spec] of Object.entries(fx.grads)) {
      const g = params.get(name)!.grad;
      const got = g === null ? new Float32Array(params.get(name)!.numel) : g.toArray();
      expect(mismatch(got, decodeArray(spec)), `gradient of ${name}`).toBeNull();
    }
  });
});

describe('Mixtral', () => {
  it('the KV-cached decoder gives the full forward logits, one token at a time', async () => {
    const model = await Mixtral.fromPretrained(join(DIR, fx.model_dir));
    model.eval();
    const ids = arrayTensor(fx.ids);
    const [B, T] = ids.shape as [number, number];
    const full = model.logits(ids).toArray();
    const cache = model.newCache(B);
    const V = model.vocabSize;
    const prefix = 3;
    const idData = ids.i32('test');
    const take = (from: number, len: number): Tensor => {
      const rows: number[] = [];
      for (let b = 0; b < B; b++) for (let t = from; t < from + len; t++) rows.push(idData[b * T + t]!);
      return Tensor.fromArray(Int32Array.from(rows), [B, len], 'i32');
    };
    const first = model.forwardCached(take(0, prefix), cache).toArray();
    for (let b = 0; b < B; b++) {
      expect(mismatch(first.slice(b * prefix * V, (b + 1) * prefix * V), full.slice(b * T * V, (b * T + prefix) * V))).toBeNull();
    }
    for (let t = prefix; t < T; t++) {
      const step = model.forwardCached(take(t, 1), cache).toArray();
      for (let b = 0; b < B; b++) {
        expect(mismatch(step.slice(b * V, (b + 1) * V), full.slice((b * T + t) * V, (b * T + t + 1) * V)), `position ${t}`).toBeNull();
      }
    }
  });

  it('savePretrained → fromPretrained round-trips config and weights', async () => {
    const config = mixtralConfigFromHF(JSON.parse(readFileSync(join(DIR, fx.model_dir, 'config.json'), 'utf8')));
    const model = new Mixtral({ ...config, tieWordEmbeddings: true, nExperts: 3, topK: 1 }, { generator: new Generator(4) });
    const dir = tempDir('weft-mixtral-');
    await model.savePretrained(dir);
    const back = await Mixtral.fromPretrained(dir);
    expect(back.config).toEqual(model.config);
    expect(back.lm_head).toBeNull();
    const a = model.stateDict();
    for (const [name, t] of back.stateDict()) expect(t.toArray(), name).toEqual(a.get(name)!.toArray());
    const ids = arrayTensor(fx.ids);
    expect(back.logits(ids).toArray()).toEqual(model.logits(ids).toArray());
  });

  it('names what does not fit', async () => {
    const model = new Mixtral({ ...mixtralConfigFromHF(JSON.parse(readFileSync(join(DIR, fx.model_dir, 'config.json'), 'utf8'))), nExperts: 5 });
    const { tensors } = await import('../../src/io/safetensors.js').then((m) => m.loadModelWeights(join(DIR, fx.model_dir)));
    expect(() => model.loadHFTensors(tensors)).toThrow(/missing tensors: model\.layers\.0\.block_sparse_moe\.experts\.4\.w1\.weight.*gate\.weight has shape \[4, 16\], expected \[5, 16\]/);
    expect(() => mixtralConfigFromHF({ model_type: 'mixtral', vocab_size: 5, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 8, num_local_experts: 2, num_experts_per_tok: 3 })).toThrow(/topK 3 exceeds nExperts 2/);
  });
});
