/**
 * Parity with Hugging Face's LlamaForCausalLM and Qwen2ForCausalLM (fixtures written by
 * scripts/fixtures/llama_hf.py with transformers): Weft loads the HF-saved directory with
 * Llama.fromPretrained, runs one forward and backward, and must match HF's logits, loss and the
 * gradient of every parameter (reference: HF in float64 from the same f32 weights; rtol 1e-4,
 * atol 1e-5) on each backend. Cases: GQA + linear rope scaling + rope_theta (untied head), dynamic
 * NTK scaling past the context (tied), Qwen2 multi-query with q/k/v biases (tied). Then the cached
 * decoder must give the same logits as the full forward, and a Weft-saved directory must load back
 * with the same tensors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Llama } from '../../src/models/llama.js';
import { loadPretrained } from '../../src/models/registry.js';
import { type BackendName, Tensor, nativeAvailable, setBackend } from '../../src/tensor/index.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'llama');

interface Fixture {
  name: string;
  model_dir: string;
  model_type: string;
  ids: ArraySpec;
  targets: ArraySpec;
  logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
}


const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];
const cases = ['llama_gqa_linear', 'llama_dynamic', 'qwen2_mqa_tied'].map((n) => JSON.parse(readFileSync(join(DIR, `${n}.json`), 'utf8')) as Fixture);

afterAll(() => {
  setBackend(nativeAvailable() ? 'native' : 'js');
});

describe.each(backends)('LLaMA / Qwen2 vs HF transformers (%s backend)', (backend) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s: logits, loss and every parameter gradient', async (_name, fx) => {
    setBackend(backend);
    const model = await Llama.fromPretrained(join(DIR, fx.model_dir));
    expect(model.config.modelType).toBe(fx.model_type);
    const { logits, loss } = model.forward(arrayTensor(fx.ids), arrayTensor(fx.targets));
    expect(logits.shape).toEqual(fx.logits.shape);
    expect(mismatch(logits.toArray(), decodeArray(fx.logits)), 'logits').toBeNull();
    expect(mismatch([loss!.item()], [fx.loss]), 'loss').toBeNull();
    loss!.backward();
    const params = new Map(model.namedParameters());
    expect([...params.keys()].sort()).toEqual(Object.keys(fx.grads).sort());
    for (const [name, spec] of Object.entries(fx.grads)) {
      const g = params.get(name)!.grad as Tensor | null;
      expect(g, `${name} has no gradient`).not.toBeNull();
      expect(mismatch(g!.toArray(), decodeArray(spec)), `gradient of ${name}`).toBeNull();
    }
  });
});

describe('LLaMA decoding and directories', () => {
  it.each(cases.filter((c) => c.name !== 'llama_dynamic').map((c) => [c.name, c] as const))(
    '%s: cached decoding (a prefix, then one token at a time) equals the full forward',
    async (_name, fx) => {
      const model = await loadPretrained(join(DIR, fx.model_dir));
      expect(model).toBeInstanceOf(Llama);
      const llama = model as Llama;
      const ids = arrayTensor(fx.ids);
      const [B, T] = ids.shape as [number, number];
      const full = llama.logits(ids).toArray();
      const cache = llama.newCache(B, T);
      const parts = [llama.forwardCached(ids.narrow(1, 0, 3).contiguous(), cache)];
      for (let t = 3; t < T; t++) parts.push(llama.forwardCached(ids.narrow(1, t, 1).contiguous(), cache));
      // Reassemble [B, T, V] from the per-step [B, t, V] pieces.
      const V = llama.config.vocabSize;
      const got = new Float32Array(B * T * V);
      let t0 = 0;
      for (const p of parts) {
        const t = p.shape[1]!;
        const d = p.toArray();
        for (let b = 0; b < B; b++) got.set(d.slice(b * t * V, (b + 1) * t * V), (b * T + t0) * V);
        t0 += t;
      }
      expect(mismatch(got, full)).toBeNull();
    },
  );

  it.each(cases.map((c) => [c.name, c] as const))('%s: savePretrained → fromPretrained keeps config and tensors', async (_name, fx) => {
    const model = await Llama.fromPretrained(join(DIR, fx.model_dir));
    const out = mkdtempSync(join(tmpdir(), 'weft-llama-'));
    try {
      await model.savePretrained(out);
      const back = await Llama.fromPretrained(out);
      expect(back.config).toEqual(model.config);
      for (const [name, t] of model.stateDict()) expect(back.stateDict().get(name)!.toArray(), name).toEqual(t.toArray());
      // For scripts/fixtures/check_llama_hf_load.py: the saved directory and Weft's logits, to load in transformers.
      const check = process.env.WEFT_HF_CHECK_DIR;
      if (check !== undefined) {
        const ids = arrayTensor(fx.ids);
        await model.savePretrained(join(check, fx.name, 'model'));
        const logits = model.logits(ids);
        const ids2d = Array.from({ length: ids.shape[0]! }, (_, b) => Array.from(ids.toArray().slice(b * ids.shape[1]!, (b + 1) * ids.shape[1]!)));
        writeFileSync(join(check, fx.name, 'logits.json'), JSON.stringify({ ids: ids2d, shape: logits.shape, logits: Array.from(logits.toArray()) }));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a wrong or missing tensor fails with its name and expected vs found shape', async () => {
    const model = await Llama.fromPretrained(join(DIR, 'llama_gqa_linear'));
    const sd = new Map(model.stateDict());
    sd.set('model.layers.1.self_attn.k_proj.weight', Tensor.zeros([16, 16]));
    sd.delete('model.norm.weight');
    sd.set('model.layers.0.extra.weight', Tensor.zeros([2]));
    let message = '';
    try {
      model.loadHFTensors(sd, 'broken.safetensors');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('broken.safetensors');
    expect(message).toContain('missing tensors: model.norm.weight [16]');
    expect(message).toContain('unexpected tensors: model.layers.0.extra.weight');
    expect(message).toContain('model.layers.1.self_attn.k_proj.weight has shape [16, 16], expected [8, 16]');
  });
});
