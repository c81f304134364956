/**
 * LoRA parity with Hugging Face PEFT 0.12 (fixtures from scripts/fixtures/peft_hf.py): Weft loads the
 * HF base model and PEFT's saved adapter, and must reproduce PEFT's logits, loss and the gradient of
 * every LoRA matrix; then merge/unmerge/merge-and-unload must keep the outputs, and an adapter Weft
 * saves must hold exactly PEFT's tensor names and values.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPretrained } from '../../../src/models/registry.js';
import '../../../src/models/index.js';
import { Tensor, crossEntropy, noGrad } from '../../../src/tensor/index.js';
import type { Module } from '../../../src/nn/module.js';
import { loadSafetensors } from '../../../src/io/safetensors.js';
import {
  injectLora,
  loadLoraAdapter,
  loraLayers,
  mergeAdapter,
  mergeAndUnload,
  saveLoraAdapter,
  setActiveAdapter,
  trainableParameters,
  unmergeAdapter,
} from '../../../src/train/peft/lora.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'peft');

interface Fixture {
  ids: ArraySpec;
  labels: ArraySpec;
  logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
  trainable: number;
  total: number;
}

type LM = Module & { forward(ids: Tensor): { logits: Tensor } };

function fixture(name: string): Fixture {
  return JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as Fixture;
}

/** HF's causal-LM loss: logits[:, :-1] against labels[:, 1:], −100 ignored. */
function causalLoss(logits: Tensor, labels: Int32Array, B: number, T: number): Tensor {
  const V = logits.shape[2]!;
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const l = labels[b * T + t + 1]!;
      targets[b * T + t] = l === -100 ? -1 : l;
    }
  }
  return crossEntropy(logits.reshape([B * T, V]), Tensor.fromArray(targets, [B * T], 'i32'), { ignoreIndex: -1 });
}

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe.each(['lora-gpt2', 'lora-llama'])('LoRA parity with PEFT: %s', (name) => {
  const fx = fixture(name);
  const ids = arrayTensor(fx.ids);
  const [B, T] = ids.shape as [number, number];

  async function load(): Promise<LM> {
    const model = (await loadPretrained(join(DIR, name, 'base'))) as LM;
    await loadLoraAdapter(model, join(DIR, name, 'adapter'));
    return model;
  }

  it('matches logits, loss, gradients and trainable counts', async () => {
    const model = await load();
    model.train();
    const { logits } = model.forward(ids);
    expect(mismatch(logits.dense(), decodeArray(fx.logits))).toBeNull();
    const loss = causalLoss(logits, decodeArray(fx.labels) as Int32Array, B, T);
    expect(loss.item()).toBeCloseTo(fx.loss, 5);
    loss.backward();
    const params = new Map(model.namedParameters());
    let compared = 0;
    for (const [peftName, spec] of Object.entries(fx.grads)) {
      // base_model.model.<path>.lora_A.default.weight → <path>.lora_A.default.weight
      const path = peftName.replace(/^base_model\.model\./, '');
      const p = params.get(path);
      expect(p, `parameter ${path}`).toBeDefined();
      expect(mismatch(p!.grad!.dense(), decodeArray(spec)), path).toBeNull();
      compared++;
    }
    expect(compared).toBeGreaterThan(0);
    // Base weights are frozen: only the adapters have gradients.
    for (const [path, p] of params) if (!/\.lora_[AB]\./.test(path)) expect(p.grad, path).toBeNull();
    expect(trainableParameters(model)).toEqual({ trainable: fx.trainable, total: fx.total });
  });

  it('merging gives the same logits; unmerging and unloading restore the exact base', async () => {
    const model = await load();
    model.eval();
    const want = noGrad(() => model.forward(ids).logits.dense());
    mergeAdapter(model);
    expect(mismatch(noGrad(() => model.forward(ids).logits.dense()), want)).toBeNull();
    unmergeAdapter(model);
    setActiveAdapter(model, null);
    const base = (await loadPretrained(join(DIR, name, 'base'))) as LM;
    const baseLogits = noGrad(() => base.forward(ids).logits.dense());
    expect(mismatch(noGrad(() => model.forward(ids).logits.dense()), baseLogits)).toBeNull();
    setActiveAdapter(model, 'default');
    mergeAndUnload(model);
    expect(loraLayers(model)).toHaveLength(0);
    expect([...model.stateDict().keys()].some((k) => k.includes('lora_'))).toBe(false);
    expect(mismatch(noGrad(() => model.forward(ids).logits.dense()), want)).toBeNull();
  });

  it('saves PEFT tensor names and values, and loads them back', async () => {
    const model = await load();
    const dir = mkdtempSync(join(tmpdir(), 'weft-lora-'));
    tmp.push(dir);
    await saveLoraAdapter(model, dir);
    const ours = await loadSafetensors(join(dir, 'adapter_model.safetensors'));
    const theirs = await loadSafetensors(join(DIR, name, 'adapter', 'adapter_model.safetensors'));
    expect([...ours.tensors.keys()].sort()).toEqual([...theirs.tensors.keys()].sort());
    for (const [k, t] of theirs.tensors) expect(mismatch(ours.tensors.get(k)!.dense(), t.dense(), 0, 0), k).toBeNull();
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, bias: 'none' });
    const again = (await loadPretrained(join(DIR, name, 'base'))) as LM;
    await loadLoraAdapter(again, dir);
    expect(mismatch(noGrad(() => again.forward(ids).logits.dense()), decodeArray(fx.logits))).toBeNull();
  });
});

describe('several adapters on one base', () => {
  it('switches between adapters; a fresh adapter (B = 0) leaves the base output', async () => {
    const name = 'lora-llama';
    const fx = fixture(name);
    const ids = arrayTensor(fx.ids);
    const model = (await loadPretrained(join(DIR, name, 'base'))) as LM;
    const base = noGrad(() => model.forward(ids).logits.dense());
    await loadLoraAdapter(model, join(DIR, name, 'adapter'), { adapterName: 'task' });
    injectLora(model, { r: 2, loraAlpha: 4, targetModules: ['k_proj', 'q_proj'] }, { adapterName: 'fresh' });
    setActiveAdapter(model, 'task');
    expect(mismatch(noGrad(() => model.forward(ids).logits.dense()), decodeArray(fx.logits))).toBeNull();
    // 'fresh' has B = 0 on q/k and is absent from v/down: the base model's output.
    setActiveAdapter(model, 'fresh');
    expect(mismatch(noGrad(() => model.forward(ids).logits.dense()), base)).toBeNull();
    expect(() => setActiveAdapter(model, 'missing')).toThrow(/no adapter 'missing'.*task, fresh/);
  });

  it('names the layers it could have targeted when nothing matches', async () => {
    const model = (await loadPretrained(join(DIR, 'lora-llama', 'base'))) as LM;
    expect(() => injectLora(model, { r: 2, loraAlpha: 4, targetModules: ['query'] })).toThrow(/q_proj/);
  });
});

/**
 * With WEFT_PEFT_CHECK_DIR set, writes adapters Weft trained-from-fresh (random B) plus the logits
 * Weft computes with them, for scripts/fixtures/check_peft_load.py to load in PEFT and compare.
 */
describe.runIf(process.env.WEFT_PEFT_CHECK_DIR !== undefined)('export for the PEFT load check', () => {
  it.each(['lora-gpt2', 'lora-llama'])('%s', async (name) => {
    const out = join(process.env.WEFT_PEFT_CHECK_DIR!, name);
    const model = (await loadPretrained(join(DIR, name, 'base'))) as LM;
    injectLora(model, { r: 3, loraAlpha: 6, targetModules: name === 'lora-gpt2' ? ['c_attn', 'c_fc'] : ['q_proj', 'k_proj', 'up_proj'] });
    noGrad(() => {
      let s = 1;
      for (const [path, p] of model.namedParameters()) {
        if (!path.includes('lora_B')) continue;
        const d = p.f32('check');
        for (let i = 0; i < d.length; i++) d[i] = Math.sin(s++ * 12.9898) * 0.3;
      }
    });
    await saveLoraAdapter(model, join(out, 'adapter'));
    const fx = fixture(name);
    const ids = arrayTensor(fx.ids);
    const logits = noGrad(() => model.forward(ids).logits);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(out, 'logits.json'), JSON.stringify({ base: join(DIR, name, 'base'), ids: [...ids.i32('check')], shape: ids.shape, logits: [...logits.dense()] }));
  });
});
