/**
 * Domain-adaptive pre-training (Gururangan et al. 2020): continue the model's own pre-training
 * objective — next-token prediction for a causal LM, masked-token prediction for BERT — on unlabelled
 * text from the target domain, before fine-tuning on the task. The metric is held-out perplexity on
 * that domain text (for MLM, over a fixed masking of the held-out set, so epochs compare).
 */
import { crossEntropy } from '../../tensor/index.js';
import { noGrad } from '../../tensor/autograd.js';
import { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { MLM_IGNORE, MLMMasker } from '../../data/objectives/mlm.js';
import type { EmbeddingLM } from '../peft/embedding-lm.js';
import type { ClassifierTokenizer } from './classify.js';
import { causalBatch, sftLoss } from './causal.js';
import { type DataRecord, field } from './data.js';

export interface DomainTask {
  lossOf: (batch: DataRecord[]) => Tensor;
  evaluate: () => { metric: number; metrics: Record<string, number> };
}

export function setupDomainTask(
  lm: EmbeddingLM,
  tokenizer: ClassifierTokenizer,
  o: { train: DataRecord[]; eval: DataRecord[]; trainSource: string; evalSource: string; textField: string; maxLength: number; batchSize: number; seed: number },
): DomainTask {
  const budget = Math.min(o.maxLength, lm.maxLength);
  const encodeAll = (rs: DataRecord[], src: string): number[][] =>
    rs.map((r, i) => tokenizer.encode(field(r, o.textField, i, src), { addSpecialTokens: false }).slice(0, lm.kind === 'masked' ? budget - 2 : budget)).filter((ids) => ids.length >= 2);
  const train = encodeAll(o.train, o.trainSource);
  const held = encodeAll(o.eval, o.evalSource);
  if (held.length === 0) throw new Error(`${o.evalSource}: no held-out text of at least 2 tokens in field '${o.textField}'`);
  const index = new Map(o.train.map((r, i) => [r, train[i]]));
  const mean = <T>(items: readonly T[], loss: (chunk: T[]) => Tensor): number => {
    let total = 0;
    let n = 0;
    noGrad(() => {
      for (let i = 0; i < items.length; i += o.batchSize) {
        const chunk = items.slice(i, i + o.batchSize);
        total += loss(chunk).item() * chunk.length;
        n += chunk.length;
      }
    });
    return total / n;
  };

  if (lm.kind === 'causal') {
    const clm = (seqs: number[][]): Tensor => sftLoss(lm, causalBatch(seqs.map((ids) => ({ ids, labels: ids }))));
    return {
      lossOf: (batch) => clm(batch.map((r) => index.get(r)).filter((s): s is number[] => s !== undefined)),
      evaluate: () => {
        const loss = mean(held, clm);
        return { metric: -loss, metrics: { eval_loss: loss, perplexity: Math.exp(loss) } };
      },
    };
  }

  const id = (t: string): number => {
    const v = tokenizer.tokenToId(t);
    if (v === undefined) throw new Error(`masked-LM domain pre-training needs ${t} in the tokenizer`);
    return v;
  };
  const [cls, sep, mask, pad] = [id('[CLS]'), id('[SEP]'), id('[MASK]'), tokenizer.tokenToId('[PAD]') ?? 0];
  const specialIds = [cls, sep, mask, pad, tokenizer.tokenToId('[UNK]') ?? pad];
  const masker = (seed: number): MLMMasker => new MLMMasker({ maskId: mask, vocabSize: lm.vocabSize, specialIds, generator: new Generator(seed) });
  const trainMasker = masker(o.seed);
  const mlm = (examples: { inputIds: Int32Array; labels: Int32Array }[]): Tensor => {
    const B = examples.length;
    const T = Math.max(...examples.map((e) => e.inputIds.length));
    const ids = new Int32Array(B * T).fill(pad);
    const labels = new Int32Array(B * T).fill(MLM_IGNORE);
    const attention = new Int32Array(B * T);
    examples.forEach((e, b) => {
      ids.set(e.inputIds, b * T);
      labels.set(e.labels, b * T);
      attention.fill(1, b * T, b * T + e.inputIds.length);
    });
    const hidden = lm.hidden(lm.embed(Tensor.fromArray(ids, [B, T], 'i32')), Tensor.fromArray(attention, [B, T], 'i32'));
    const logits = lm.logits(hidden);
    return crossEntropy(logits.reshape([B * T, lm.vocabSize]), Tensor.fromArray(labels, [B * T], 'i32'), { ignoreIndex: MLM_IGNORE });
  };
  const wrap = (ids: number[]): number[] => [cls, ...ids, sep];
  // The held-out set is masked once, so every evaluation scores the same positions.
  const heldMasker = masker(o.seed + 1);
  const heldExamples = held.map((ids) => heldMasker.mask(wrap(ids)));
  return {
    lossOf: (batch) => mlm(batch.map((r) => index.get(r)).filter((s): s is number[] => s !== undefined).map((ids) => trainMasker.mask(wrap(ids)))),
    evaluate: () => {
      const loss = mean(heldExamples, mlm);
      return { metric: -loss, metrics: { eval_loss: loss, perplexity: Math.exp(loss) } };
    },
  };
}
