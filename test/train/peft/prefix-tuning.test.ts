/**
 * Prefix tuning: the prefixed attention must stay causal (GPT) and keep ignoring padding (BERT)
 * with the prefix in front, the prefix must actually steer the output, and its gradient must match
 * finite differences.
 */
import { describe, expect, it } from 'vitest';
import { BertForPreTraining } from '../../../src/models/bert.js';
import { GPT } from '../../../src/models/gpt.js';
import { Generator } from '../../../src/tensor/random.js';
import { Tensor, noGrad, sum, mul } from '../../../src/tensor/index.js';
import { injectPrefix } from '../../../src/train/peft/prefix-tuning.js';
import { mismatch } from '../../tensor/fixtures.js';

const ids = (a: number[]) => Tensor.fromArray(Int32Array.from(a), [1, a.length], 'i32');

describe('prefix tuning', () => {
  it('GPT: causal with the prefix; the prefix steers the output; gradients match finite differences', () => {
    const gpt = new GPT({ vocabSize: 20, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 8, dropout: 0 }, { generator: new Generator(1) });
    gpt.eval();
    const before = noGrad(() => gpt.forward(ids([1, 2, 3, 4])).logits.dense());
    const prefix = injectPrefix(gpt, 3, new Generator(2));
    for (const p of gpt.parameters()) if (p !== prefix.keys && p !== prefix.values) p.requiresGrad = false;
    const a = noGrad(() => gpt.forward(ids([1, 2, 3, 4])).logits.dense());
    const b = noGrad(() => gpt.forward(ids([1, 2, 3, 9, 9])).logits.dense());
    // Positions 0–2 see the same tokens (and the same prefix): identical; the prefix changed the output.
    expect(mismatch(b.subarray(0, 3 * 20), a.subarray(0, 3 * 20), 1e-6, 1e-7)).toBeNull();
    expect(mismatch(a, before)).not.toBeNull();
    // d/dv of Σ logits·w by central differences on a few prefix values.
    const w = Tensor.fromArray(Float32Array.from({ length: 4 * 20 }, (_, i) => Math.sin(i)), [1, 4, 20]);
    const f = (): number => noGrad(() => sum(mul(gpt.forward(ids([1, 2, 3, 4])).logits, w)).item());
    const loss = sum(mul(gpt.forward(ids([1, 2, 3, 4])).logits, w));
    loss.backward();
    const grad = prefix.values.grad!.dense();
    const v = prefix.values.f32('t');
    for (const i of [0, 7, 40, v.length - 1]) {
      const x = v[i]!;
      const h = 1e-2;
      v[i] = x + h;
      const up = f();
      v[i] = x - h;
      const down = f();
      v[i] = x;
      expect(grad[i]!).toBeCloseTo((up - down) / (2 * h), 2);
    }
  });

  it('BERT: padding stays masked with the prefix in front', () => {
    const bert = new BertForPreTraining(
      { vocabSize: 20, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16, maxPositionEmbeddings: 16, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 },
      { generator: new Generator(3) },
    );
    bert.eval();
    injectPrefix(bert, 2, new Generator(4));
    const short = noGrad(() => bert.encode(ids([2, 5, 6, 3]), { attentionMask: Tensor.fromArray(Int32Array.from([1, 1, 1, 1]), [1, 4], 'i32') }).dense());
    const padded = noGrad(() => bert.encode(ids([2, 5, 6, 3, 0, 0]), { attentionMask: Tensor.fromArray(Int32Array.from([1, 1, 1, 1, 0, 0]), [1, 6], 'i32') }).dense());
    expect(mismatch(padded.subarray(0, 4 * 8), short, 1e-5, 1e-6)).toBeNull();
  });
});
