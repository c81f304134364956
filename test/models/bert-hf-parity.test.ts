/**
 * Parity with Hugging Face's BertForPreTraining (fixtures written by scripts/fixtures/bert_hf.py):
 * Weft loads the HF-saved directory with BertForPreTraining.fromPretrained, runs one forward (with
 * segment ids and a padding mask) and backward of MLM + NSP loss, and must match HF's MLM logits,
 * NSP logits, loss and the gradient of EVERY parameter (reference: HF in float64 from the same f32
 * weights; rtol 1e-4, atol 1e-5), on each backend. Also the real checkpoint bert-tiniest (skipped
 * when ../shared is absent) and the registry dispatch on model_type 'bert'.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BertForPreTraining } from '../../src/models/bert.js';
import { loadPretrained } from '../../src/models/registry.js';
import { type BackendName, Tensor, logsumexp, nativeAvailable, setBackend } from '../../src/tensor/index.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIR = join(HERE, '..', 'fixtures', 'bert');
const TINIEST = join(HERE, '..', '..', '..', 'shared', 'data', 'models', 'bert-tiniest');

interface Fixture {
  name: string;
  model_dir: string;
  activation: string;
  ids: ArraySpec;
  token_type_ids: ArraySpec;
  attention_mask: ArraySpec;
  mlm_labels: ArraySpec;
  nsp_labels: ArraySpec;
  mlm_logits: ArraySpec;
  nsp_logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
}


const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];
const cases = ['gelu', 'gelu_new'].map((n) => JSON.parse(readFileSync(join(DIR, `${n}.json`), 'utf8')) as Fixture);

afterAll(() => {
  setBackend(nativeAvailable() ? 'native' : 'js');
});

describe.each(backends)('BERT vs HF BertForPreTraining (%s backend)', (backend) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s: MLM and NSP logits, loss and every parameter gradient', async (_name, fx) => {
    setBackend(backend);
    const model = await BertForPreTraining.fromPretrained(join(DIR, fx.model_dir));
    expect(model.config.hiddenAct).toBe(fx.activation);
    const out = model.forward(arrayTensor(fx.ids), {
      tokenTypeIds: arrayTensor(fx.token_type_ids),
      attentionMask: arrayTensor(fx.attention_mask),
      mlmLabels: arrayTensor(fx.mlm_labels),
      nspLabels: arrayTensor(fx.nsp_labels),
    });
    expect(out.mlmLogits.shape).toEqual(fx.mlm_logits.shape);
    expect(mismatch(out.mlmLogits.toArray(), decodeArray(fx.mlm_logits)), 'MLM logits').toBeNull();
    expect(mismatch(out.nspLogits!.toArray(), decodeArray(fx.nsp_logits)), 'NSP logits').toBeNull();
    expect(mismatch([out.loss!.item()], [fx.loss]), 'loss').toBeNull();
    out.loss!.backward();

    const params = new Map(model.namedParameters());
    expect([...params.keys()].sort()).toEqual(Object.keys(fx.grads).sort());
    for (const [name, spec] of Object.entries(fx.grads)) {
      const g = params.get(name)!.grad as Tensor | null;
      expect(g, `${name} has no gradient`).not.toBeNull();
      expect(g!.shape, name).toEqual(spec.shape);
      expect(mismatch(g!.toArray(), decodeArray(spec)), `gradient of ${name}`).toBeNull();
    }
  });
});

describe('BERT checkpoints', () => {
  it('the padding mask makes padded positions irrelevant to the real ones', async () => {
    const fx = cases[0]!;
    const model = await BertForPreTraining.fromPretrained(join(DIR, fx.model_dir));
    const ids = arrayTensor(fx.ids);
    const mask = arrayTensor(fx.attention_mask);
    const types = arrayTensor(fx.token_type_ids);
    const [B, T] = ids.shape as [number, number];
    const base = model.forward(ids, { attentionMask: mask, tokenTypeIds: types }).mlmLogits.toArray();
    // Change the ids under the padding of sequence 1: its real positions must not move.
    const changed = ids.toArray().map((v, i) => (mask.toArray()[i] === 0 ? (v + 7) % 40 : v));
    const moved = model.forward(Tensor.fromArray(Int32Array.from(changed), [B, T], 'i32'), { attentionMask: mask, tokenTypeIds: types }).mlmLogits.toArray();
    const V = 40;
    const m = mask.toArray();
    let realDiffers = 0;
    let padDiffers = 0;
    for (let i = 0; i < B * T; i++) {
      for (let v = 0; v < V; v++) {
        const d = Math.abs(base[i * V + v]! - moved[i * V + v]!);
        if (m[i] === 1) realDiffers = Math.max(realDiffers, d);
        else padDiffers = Math.max(padDiffers, d);
      }
    }
    expect(realDiffers).toBeLessThan(1e-5);
    // Sanity: the change did reach the model (the padded positions' own logits moved).
    expect(padDiffers).toBeGreaterThan(1e-3);
  });

  it('a wrong tensor shape fails naming the tensor and both shapes', async () => {
    const model = new BertForPreTraining({ vocabSize: 40, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32, maxPositionEmbeddings: 16 });
    const sd = new Map(model.stateDict());
    sd.set('bert.encoder.layer.1.intermediate.dense.weight', Tensor.zeros([31, 16]));
    expect(() => model.loadHFTensors(sd)).toThrow(/bert\.encoder\.layer\.1\.intermediate\.dense\.weight has shape \[31, 16\], expected \[32, 16\]/);
    sd.delete('bert.encoder.layer.1.intermediate.dense.weight');
    expect(() => model.loadHFTensors(sd)).toThrow(/missing tensors: bert\.encoder\.layer\.1\.intermediate\.dense\.weight/);
  });

  it.skipIf(!existsSync(TINIEST))('../shared bert-tiniest (BertLMHeadModel) loads through the registry and matches transformers', async () => {
    const fx = JSON.parse(readFileSync(join(DIR, 'tiniest.json'), 'utf8')) as { ids: ArraySpec; attention_mask: ArraySpec; logits_first_256: ArraySpec; logsumexp: ArraySpec };
    const loaded = await loadPretrained(TINIEST);
    expect(loaded).toBeInstanceOf(BertForPreTraining);
    const model = loaded as BertForPreTraining;
    expect(model.config.pooler).toBe(false);
    expect(model.config.nspHead).toBe(false);
    const { mlmLogits, nspLogits } = model.forward(arrayTensor(fx.ids), { attentionMask: arrayTensor(fx.attention_mask) });
    expect(nspLogits).toBeNull();
    expect(mlmLogits.shape).toEqual([1, 8, 30522]);
    expect(mismatch(mlmLogits.narrow(2, 0, 256).contiguous().toArray(), decodeArray(fx.logits_first_256)), 'first 256 logits').toBeNull();
    expect(mismatch(logsumexp(mlmLogits, -1).toArray(), decodeArray(fx.logsumexp)), 'logsumexp').toBeNull();
  });
});
