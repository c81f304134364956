/**
 * Parity with Hugging Face's T5ForConditionalGeneration (fixtures written by scripts/fixtures/t5_hf.py
 * with transformers): Weft loads the HF-saved directory with T5ForConditionalGeneration.fromPretrained,
 * runs transformers' `labels=` loss (decoder inputs = labels shifted right, −100 ignored) with a padded
 * encoder row, and must match HF's logits, loss and the gradient of EVERY parameter (reference: HF in
 * float64 from the same f32 weights; rtol 1e-4, atol 1e-5), on each backend. Cases: v1.0 (ReLU, tied
 * head) and v1.1 (gated GELU, separate head); both cover relative position bias (log buckets reached)
 * and cross-attention. The bucket function is also checked offset by offset against transformers'.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { T5ForConditionalGeneration, relativePositionBucket } from '../../src/models/t5.js';
import { type BackendName, Tensor, nativeAvailable, setBackend } from '../../src/tensor/index.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 't5');

interface Fixture {
  name: string;
  model_dir: string;
  feed_forward_proj: string;
  tie_word_embeddings: boolean;
  input_ids: ArraySpec;
  attention_mask: ArraySpec;
  labels: ArraySpec;
  logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
}


const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];
const cases = ['v1_0', 'v1_1'].map((n) => JSON.parse(readFileSync(join(DIR, `${n}.json`), 'utf8')) as Fixture);

afterAll(() => {
  setBackend(nativeAvailable() ? 'native' : 'js');
});

describe('T5 relative position buckets vs transformers', () => {
  const fx = JSON.parse(readFileSync(join(DIR, 'buckets.json'), 'utf8')) as Record<'offsets' | 'bidirectional' | 'causal', ArraySpec>;
  const offsets = decodeArray(fx.offsets);
  it.each([
    ['bidirectional', true],
    ['causal', false],
  ] as const)('%s, 32 buckets, max distance 128, offsets −300…300', (key, bidirectional) => {
    const want = decodeArray(fx[key]);
    const got = Array.from(offsets, (r) => relativePositionBucket(r, bidirectional, 32, 128));
    expect(got).toEqual(Array.from(want));
  });
});

describe.each(backends)('T5 vs HF T5ForConditionalGeneration (%s backend)', (backend) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s: logits, loss and every parameter gradient', async (_name, fx) => {
    setBackend(backend);
    const model = await T5ForConditionalGeneration.fromPretrained(join(DIR, fx.model_dir));
    expect(model.config.tieWordEmbeddings).toBe(fx.tie_word_embeddings);
    expect(model.config.gated).toBe(fx.feed_forward_proj.startsWith('gated'));
    const { logits, loss } = model.forward({
      inputIds: arrayTensor(fx.input_ids),
      attentionMask: arrayTensor(fx.attention_mask),
      labels: arrayTensor(fx.labels),
    });
    expect(logits.shape).toEqual(fx.logits.shape);
    expect(mismatch(logits.toArray(), decodeArray(fx.logits)), 'logits').toBeNull();
    expect(mismatch([loss!.item()], [fx.loss]), 'loss').toBeNull();
    loss!.backward();
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
