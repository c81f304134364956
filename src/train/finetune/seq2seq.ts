/**
 * Text-to-text fine-tuning of T5 (Raffel et al. 2020), as transformers' T5ForConditionalGeneration
 * with `labels`: source ids ‖ </s> into the encoder, target ids ‖ </s> as labels (padding −100),
 * the decoder fed the labels shifted right behind decoder_start_token_id (= pad), mean cross-entropy
 * over the target tokens. Evaluation: loss, greedy decoding (T5's cached generateGreedy), and
 * exact match and ROUGE-L of the decoded text against the target.
 */
import { noGrad } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { T5ForConditionalGeneration, T5_IGNORE_INDEX } from '../../models/t5.js';
import { rouge } from '../../eval/metrics/index.js';
import type { Module } from '../../nn/module.js';
import { type DataRecord, field } from './data.js';
import type { TaskSetup } from './tokens.js';

export interface Seq2SeqTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
}

export interface Seq2SeqPair {
  source: number[];
  target: number[];
}

export function asT5(model: Module, what: string): T5ForConditionalGeneration {
  if (!(model instanceof T5ForConditionalGeneration)) throw new Error(`${what} needs an encoder-decoder T5 model; got ${model.constructor.name}`);
  return model;
}

/** Text → ids ending in </s> (HF's T5 tokenizer appends it), cut to maxLength with the </s> kept. */
export function encodeWithEos(tokenizer: Seq2SeqTokenizer, text: string, eosId: number, maxLength: number): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (ids.at(-1) === eosId) ids.pop();
  return [...ids.slice(0, Math.max(0, maxLength - 1)), eosId];
}

export interface Seq2SeqBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  /** [B, T] target ids, T5_IGNORE_INDEX (−100) past each row's end. */
  labels: Tensor;
}

/** Right-pads sources with pad (mask 0) and targets with −100, as DataCollatorForSeq2Seq. */
export function seq2seqBatch(pairs: readonly Seq2SeqPair[], padId: number): Seq2SeqBatch {
  const B = pairs.length;
  const S = Math.max(...pairs.map((p) => p.source.length));
  const T = Math.max(...pairs.map((p) => p.target.length));
  const ids = new Int32Array(B * S).fill(padId);
  const mask = new Int32Array(B * S);
  const labels = new Int32Array(B * T).fill(T5_IGNORE_INDEX);
  pairs.forEach((p, b) => {
    ids.set(p.source, b * S);
    mask.fill(1, b * S, b * S + p.source.length);
    labels.set(p.target, b * T);
  });
  return { inputIds: Tensor.fromArray(ids, [B, S], 'i32'), attentionMask: Tensor.fromArray(mask, [B, S], 'i32'), labels: Tensor.fromArray(labels, [B, T], 'i32') };
}

/** T5's loss with labels (decoder inputs = labels shifted right). */
export function seq2seqLoss(model: T5ForConditionalGeneration, batch: Seq2SeqBatch): Tensor {
  return model.forward(batch).loss!;
}

/** Greedy decoding of each source, up to maxNewTokens, without </s> and padding. */
export function generateTargets(model: T5ForConditionalGeneration, tokenizer: Seq2SeqTokenizer, sources: readonly number[][], maxNewTokens: number, batchSize = 32): string[] {
  const out: string[] = [];
  const { eosTokenId, padTokenId } = model.config;
  for (let i = 0; i < sources.length; i += batchSize) {
    const chunk = sources.slice(i, i + batchSize);
    const batch = seq2seqBatch(
      chunk.map((source) => ({ source, target: [] })),
      padTokenId,
    );
    const gen = noGrad(() => model.generateGreedy(batch.inputIds, { maxNewTokens, attentionMask: batch.attentionMask }));
    for (const ids of gen) out.push(tokenizer.decode(ids.filter((id) => id !== eosTokenId && id !== padTokenId), { skipSpecialTokens: true }).trim());
  }
  return out;
}

/** Exact match (after trimming) and mean ROUGE-L F of generated texts against targets. */
export function seq2seqScores(predictions: readonly string[], targets: readonly string[]): { exact_match: number; rougeL: number } {
  let em = 0;
  let rl = 0;
  predictions.forEach((p, i) => {
    const t = targets[i]!;
    em += p.trim() === t.trim() ? 1 : 0;
    rl += rouge(p, t, { types: ['rougeL'] }).rougeL!.fmeasure;
  });
  const n = Math.max(1, predictions.length);
  return { exact_match: em / n, rougeL: rl / n };
}

export interface Seq2SeqFields {
  source: string;
  target: string;
}

export const DEFAULT_SEQ2SEQ_FIELDS: Seq2SeqFields = { source: 'source', target: 'target' };

export function setupSeq2SeqTask(
  model: T5ForConditionalGeneration,
  tokenizer: Seq2SeqTokenizer,
  o: { train: DataRecord[]; eval: DataRecord[]; trainSource: string; evalSource: string; fields: Seq2SeqFields; maxLength: number; maxTargetLength: number; batchSize: number },
): TaskSetup {
  const eos = model.config.eosTokenId;
  const pair = (r: DataRecord, i: number, src: string): Seq2SeqPair => ({
    source: encodeWithEos(tokenizer, field(r, o.fields.source, i, src), eos, o.maxLength),
    target: encodeWithEos(tokenizer, field(r, o.fields.target, i, src), eos, o.maxTargetLength),
  });
  const pairs = new Map(o.train.map((r, i) => [r, pair(r, i, o.trainSource)]));
  const evalPairs = o.eval.map((r, i) => pair(r, i, o.evalSource));
  const evalTargets = o.eval.map((r, i) => field(r, o.fields.target, i, o.evalSource));
  const pad = model.config.padTokenId;
  return {
    root: model,
    lossOf: (batch) => seq2seqLoss(model, seq2seqBatch(batch.map((r) => pairs.get(r)!), pad)),
    evaluate: () => {
      let total = 0;
      noGrad(() => {
        for (let i = 0; i < evalPairs.length; i += o.batchSize) {
          const chunk = evalPairs.slice(i, i + o.batchSize);
          total += seq2seqLoss(model, seq2seqBatch(chunk, pad)).item() * chunk.length;
        }
      });
      const predictions = generateTargets(
        model,
        tokenizer,
        evalPairs.map((p) => p.source),
        o.maxTargetLength,
      );
      const s = seq2seqScores(predictions, evalTargets);
      return { metric: s.rougeL, metrics: { ...s, eval_loss: total / Math.max(1, evalPairs.length) } };
    },
  };
}
