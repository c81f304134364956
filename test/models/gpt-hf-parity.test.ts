/**
 * Parity with Hugging Face's GPT2LMHeadModel (fixtures written by scripts/fixtures/gpt2_hf.py with
 * transformers): Weft loads the HF-saved model directory with GPT.fromPretrained, runs one forward
 * and backward of nanoGPT's loss, and must match HF's logits, loss and the gradient of EVERY
 * parameter (reference: HF in float64 from the same f32 weights; rtol 1e-4, atol 1e-5), on each
 * backend. Cases: activation 'gelu' (erf) and 'gelu_new' (tanh), random biases and LayerNorm affines.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { GPT } from '../../src/models/index.js';
import { type BackendName, Tensor, nativeAvailable, setBackend } from '../../src/tensor/index.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'gpt2');

interface Fixture {
  name: string;
  model_dir: string;
  activation: string;
  ids: ArraySpec;
  targets: ArraySpec;
  logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
}


const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];
const cases = ['gelu', 'gelu_new'].map((n) => JSON.parse(readFileSync(join(DIR, `${n}.json`), 'utf8')) as Fixture);

afterAll(() => {
  setBackend(nativeAvailable() ? 'native' : 'js');
});

describe.each(backends)('GPT vs HF GPT2LMHeadModel (%s backend)', (backend) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s: logits, loss and every parameter gradient', async (_name, fx) => {
    setBackend(backend);
    const model = await GPT.fromPretrained(join(DIR, fx.model_dir));
    expect(model.config.activation).toBe(fx.activation);
    expect(model.config.bias).toBe(true);
    const ids = arrayTensor(fx.ids);
    const targets = arrayTensor(fx.targets);
    const { logits, loss } = model.forward(ids, targets);
    expect(logits.shape).toEqual(fx.logits.shape);
    expect(mismatch(logits.toArray(), decodeArray(fx.logits)), 'logits').toBeNull();
    expect(loss).not.toBeNull();
    expect(mismatch([loss!.item()], [fx.loss]), 'loss').toBeNull();
    loss!.backward();

    const params = new Map(model.namedParameters());
    // Every HF parameter has a gradient in the fixture and a counterpart here, and vice versa.
    expect([...params.keys()].sort()).toEqual(Object.keys(fx.grads).sort());
    for (const [name, spec] of Object.entries(fx.grads)) {
      const p = params.get(name)!;
      expect(p.grad, `${name} has no gradient`).not.toBeNull();
      expect((p.grad as Tensor).shape, name).toEqual(spec.shape);
      expect(mismatch((p.grad as Tensor).toArray(), decodeArray(spec)), `gradient of ${name}`).toBeNull();
    }
  });
});
