/**
 * Prompt-tuning parity with Hugging Face PEFT 0.12 (fixture from scripts/fixtures/peft_hf.py): a
 * frozen GPT-2 with PEFT's 5 virtual tokens prepended must give PEFT's logits over all P + T
 * positions, its loss (labels prefixed with −100 for the virtual tokens) and the gradient of the
 * prompt embeddings; a prompt Weft saves must hold PEFT's tensor and load back.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPretrained } from '../../../src/models/registry.js';
import '../../../src/models/index.js';
import { Tensor, crossEntropy } from '../../../src/tensor/index.js';
import { embeddingLM } from '../../../src/train/peft/embedding-lm.js';
import { loadPromptAdapter, savePromptAdapter } from '../../../src/train/peft/prompt-tuning.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'peft');

interface Fixture {
  ids: ArraySpec;
  labels: ArraySpec;
  logits: ArraySpec;
  loss: number;
  grads: Record<string, ArraySpec>;
}

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe('prompt tuning parity with PEFT (GPT-2)', () => {
  const fx = JSON.parse(readFileSync(join(DIR, 'prompt-gpt2.json'), 'utf8')) as Fixture;

  it('matches logits, loss and the prompt gradient; the base stays frozen', async () => {
    const model = await loadPretrained(join(DIR, 'prompt-gpt2', 'base'));
    for (const p of model.parameters()) p.requiresGrad = false;
    const lm = embeddingLM(model);
    const prompt = await loadPromptAdapter(join(DIR, 'prompt-gpt2', 'adapter'));
    const ids = arrayTensor(fx.ids);
    const [B, T] = ids.shape as [number, number];
    const P = prompt.numVirtualTokens;
    const logits = lm.logits(lm.hidden(prompt.prepend(lm.embed(ids))));
    expect(logits.shape).toEqual([B, P + T, 64]);
    expect(mismatch(logits.dense(), decodeArray(fx.logits))).toBeNull();
    // PEFT prefixes the labels with −100 for the virtual tokens; HF shifts inside the loss.
    const labels = decodeArray(fx.labels) as Int32Array;
    const L = P + T;
    const targets = new Int32Array(B * L).fill(-1);
    for (let b = 0; b < B; b++) {
      for (let t = P - 1; t + 1 < L; t++) {
        const l = labels[b * T + (t + 1 - P)]!;
        targets[b * L + t] = l === -100 ? -1 : l;
      }
    }
    const loss = crossEntropy(logits.reshape([B * L, 64]), Tensor.fromArray(targets, [B * L], 'i32'), { ignoreIndex: -1 });
    expect(loss.item()).toBeCloseTo(fx.loss, 5);
    loss.backward();
    expect(mismatch(prompt.embedding.weight.grad!.dense(), decodeArray(fx.grads['prompt_encoder.default.embedding.weight']!))).toBeNull();
    for (const p of model.parameters()) expect(p.grad).toBeNull();
  });

  it('saves PEFT layout and loads it back', async () => {
    const prompt = await loadPromptAdapter(join(DIR, 'prompt-gpt2', 'adapter'));
    const dir = mkdtempSync(join(tmpdir(), 'weft-prompt-'));
    tmp.push(dir);
    await savePromptAdapter(prompt, dir);
    const again = await loadPromptAdapter(dir);
    expect(mismatch(again.embedding.weight.dense(), prompt.embedding.weight.dense(), 0, 0)).toBeNull();
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'PROMPT_TUNING', num_virtual_tokens: 5, token_dim: 16 });
  });
});
