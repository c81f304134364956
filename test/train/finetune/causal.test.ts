/**
 * SFT scores response tokens only, and DPO matches TRL's sigmoid loss and its gradients on a PEFT
 * LoRA policy (fixtures from scripts/fixtures/peft_hf.py, computed with PyTorch + PEFT).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import '../../../src/models/index.js';
import { loadPretrained } from '../../../src/models/registry.js';
import { noGrad } from '../../../src/tensor/index.js';
import { embeddingLM } from '../../../src/train/peft/embedding-lm.js';
import { loadLoraAdapter } from '../../../src/train/peft/lora.js';
import { SFT_IGNORE, causalBatch, dpoLoss, sequenceLogProbs, sftExample, sftLoss } from '../../../src/train/finetune/causal.js';
import { type ArraySpec, decodeArray, mismatch } from '../../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'peft');

describe('SFT', () => {
  it('masks the prompt: the loss equals HF causal-LM loss with prompt labels at −100', async () => {
    const fx = JSON.parse(readFileSync(join(DIR, 'lora-gpt2.json'), 'utf8')) as { ids: ArraySpec; labels: ArraySpec; loss: number };
    const model = await loadPretrained(join(DIR, 'lora-gpt2', 'base'));
    await loadLoraAdapter(model, join(DIR, 'lora-gpt2', 'adapter'));
    const ids = decodeArray(fx.ids) as Int32Array;
    const labels = decodeArray(fx.labels) as Int32Array;
    const T = 7;
    const seqs = [0, 1].map((b) => {
      const row = [...ids.subarray(b * T, (b + 1) * T)];
      return { ids: row, labels: row.map((id, t) => (labels[b * T + t] === -100 ? SFT_IGNORE : id)) };
    });
    expect(sftLoss(embeddingLM(model), causalBatch(seqs)).item()).toBeCloseTo(fx.loss, 5);
  });

  it('builds examples whose labels cover exactly the response and EOS', () => {
    const tok = { encode: (s: string) => [...s].map((c) => c.charCodeAt(0) % 50) };
    const ex = sftExample(tok, 'hi', 'yo', { template: '<{prompt}>', eosId: 63, maxLength: 32 });
    expect(ex.ids).toEqual([...'<hi>', ...'yo'].map((c) => c.charCodeAt(0) % 50).concat([63]));
    expect(ex.labels).toEqual([SFT_IGNORE, SFT_IGNORE, SFT_IGNORE, SFT_IGNORE, ...ex.ids.slice(4)]);
    const { targets } = causalBatch([ex, { ids: [1, 2], labels: [SFT_IGNORE, 2] }]);
    // Position t is scored against label t + 1; padding is never scored.
    const I = SFT_IGNORE;
    expect([...targets.i32('t')]).toEqual([I, I, I, ex.ids[4], ex.ids[5], 63, I, 2, I, I, I, I, I, I]);
    expect(() => sftExample(tok, 'a long prompt', 'x', { eosId: null, maxLength: 4 })).toThrow(/over --max-length 4/);
  });
});

describe('DPO parity with TRL (sigmoid loss) on a PEFT LoRA policy', () => {
  interface Fx {
    prompt: ArraySpec;
    chosen: ArraySpec;
    rejected: ArraySpec;
    beta: number;
    loss: number;
    policy_chosen: ArraySpec;
    policy_rejected: ArraySpec;
    ref_chosen: ArraySpec;
    ref_rejected: ArraySpec;
    grads: Record<string, ArraySpec>;
  }

  it('matches log-probs, loss, rewards and LoRA gradients', async () => {
    const fx = JSON.parse(readFileSync(join(DIR, 'dpo-gpt2.json'), 'utf8')) as Fx;
    const prompt = decodeArray(fx.prompt) as Int32Array;
    const seqsOf = (spec: ArraySpec) => {
      const resp = decodeArray(spec) as Int32Array;
      return [0, 1].map((b) => {
        const p = [...prompt.subarray(b * 3, b * 3 + 3)];
        const r = [...resp.subarray(b * 4, b * 4 + 4)];
        return { ids: [...p, ...r], labels: [...p.map(() => SFT_IGNORE), ...r] };
      });
    };
    const ref = embeddingLM(await loadPretrained(join(DIR, 'lora-gpt2', 'base')));
    const policyModel = await loadPretrained(join(DIR, 'lora-gpt2', 'base'));
    await loadLoraAdapter(policyModel, join(DIR, 'lora-gpt2', 'adapter'));
    const policy = embeddingLM(policyModel);
    const chosen = causalBatch(seqsOf(fx.chosen));
    const rejected = causalBatch(seqsOf(fx.rejected));
    const refC = noGrad(() => sequenceLogProbs(ref, chosen).f32('t').slice());
    const refR = noGrad(() => sequenceLogProbs(ref, rejected).f32('t').slice());
    expect(mismatch(refC, decodeArray(fx.ref_chosen))).toBeNull();
    expect(mismatch(refR, decodeArray(fx.ref_rejected))).toBeNull();
    const pc = sequenceLogProbs(policy, chosen);
    const pr = sequenceLogProbs(policy, rejected);
    expect(mismatch(pc.dense(), decodeArray(fx.policy_chosen))).toBeNull();
    expect(mismatch(pr.dense(), decodeArray(fx.policy_rejected))).toBeNull();
    const stats = dpoLoss(pc, pr, refC, refR, fx.beta);
    expect(stats.loss.item()).toBeCloseTo(fx.loss, 5);
    stats.loss.backward();
    const params = new Map(policyModel.namedParameters());
    for (const [name, spec] of Object.entries(fx.grads)) {
      const p = params.get(name.replace(/^base_model\.model\./, ''))!;
      expect(mismatch(p.grad!.dense(), decodeArray(spec), 1e-3, 1e-6), name).toBeNull();
    }
    const c = decodeArray(fx.policy_chosen);
    const r = decodeArray(fx.policy_rejected);
    const rc = decodeArray(fx.ref_chosen);
    const rr = decodeArray(fx.ref_rejected);
    const diff = [0, 1].map((i) => c[i]! - rc[i]! - (r[i]! - rr[i]!));
    expect(stats.rewardAccuracy).toBe(diff.filter((d) => d > 0).length / 2);
    expect(stats.rewardMargin).toBeCloseTo((fx.beta * (diff[0]! + diff[1]!)) / 2, 5);
  });
});
