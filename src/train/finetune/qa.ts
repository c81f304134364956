/**
 * Extractive question answering, as Hugging Face's BertForQuestionAnswering and its run_qa example:
 * [CLS] question [SEP] context [SEP] (segment ids 0 then 1), the context alone truncated into
 * overlapping windows (doc stride) when the pair is longer than --max-length, a Linear(C, 2)
 * `qa_outputs` giving start and end logits per token, loss (CE(start) + CE(end)) / 2 with the
 * answer's token span found through the tokenizer's character offsets ([CLS] for a window that does
 * not contain the answer), and decoding the best start ≤ end span of at most maxAnswerLength tokens
 * over all windows (score = start logit + end logit), mapped back to the context's characters.
 * Metrics: SQuAD exact match and F1 from weft/eval.
 */
import { noGrad } from '../../tensor/autograd.js';
import { crossEntropy } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { type EmbeddingLM, embeddingLM } from '../peft/embedding-lm.js';
import { exactMatch, squadF1 } from '../../eval/metrics/index.js';
import type { DataRecord } from './data.js';
import { type OffsetTokenizer, type SpecialIds, type TaskSetup, specialIds, tokenStates } from './tokens.js';

export interface QAExample {
  question: string;
  context: string;
  /** Gold answers (texts and their character starts in the context); empty when unknown (predict). */
  answers: { text: string; start: number }[];
}

/** One window of one example, ready for the model. */
export interface QAFeature {
  ids: number[];
  typeIds: number[];
  /** Per position: the character span in the context, or null outside the context. */
  contextOffsets: ([number, number] | null)[];
  /** Target positions (0 = [CLS]: the answer is not in this window). */
  start: number;
  end: number;
}

/** Reads a SQuAD record ({answers: {text: [..], answer_start: [..]}}) or a flat one (answer, answer_start). */
export function qaExample(r: DataRecord, i: number, source: string, fields: { question: string; context: string; answer: string; answerStart: string }, needAnswer: boolean): QAExample {
  const str = (name: string): string => {
    const v = r[name];
    if (typeof v !== 'string') throw new Error(`${source}: record ${i + 1} has no string field '${name}' (fields: ${Object.keys(r).join(', ')}); map yours with --question-field/--context-field`);
    return v;
  };
  const question = str(fields.question);
  const context = str(fields.context);
  const answers: { text: string; start: number }[] = [];
  const a = r.answers;
  if (a !== undefined && typeof a === 'object' && a !== null && !Array.isArray(a)) {
    const { text, answer_start: starts } = a as { text?: unknown; answer_start?: unknown };
    if (!Array.isArray(text) || !Array.isArray(starts) || text.length !== starts.length) {
      throw new Error(`${source}: record ${i + 1}: 'answers' must be {text: [...], answer_start: [...]} of equal lengths`);
    }
    text.forEach((t, k) => answers.push({ text: String(t), start: Number(starts[k]) }));
  } else if (r[fields.answer] !== undefined) {
    const text = String(r[fields.answer]);
    const given = r[fields.answerStart];
    const start = given === undefined ? context.indexOf(text) : Number(given);
    answers.push({ text, start });
  }
  for (const ans of answers) {
    if (!(Number.isInteger(ans.start) && ans.start >= 0 && context.slice(ans.start, ans.start + ans.text.length) === ans.text)) {
      throw new Error(`${source}: record ${i + 1}: answer ${JSON.stringify(ans.text)} is not in the context at ${ans.start}`);
    }
  }
  if (needAnswer && answers.length === 0) throw new Error(`${source}: record ${i + 1} has no answer ('answers' or '${fields.answer}')`);
  return { question, context, answers };
}

export interface QAEncodeOptions {
  maxLength: number;
  /** Tokens shared by consecutive windows (HF's doc_stride). */
  docStride: number;
}

/** The windows of one example; the first gold answer gives the training targets. */
export function qaFeatures(tokenizer: OffsetTokenizer, special: SpecialIds, ex: QAExample, o: QAEncodeOptions): QAFeature[] {
  if (special.cls === null || special.sep === null) throw new Error('extractive QA needs a BERT-style encoder ([CLS] question [SEP] context [SEP])');
  // The question is never split across windows; an overlong one is cut to half the budget.
  const q = tokenizer.encodeFull(ex.question, null, { addSpecialTokens: false }).ids.slice(0, Math.floor((o.maxLength - 3) / 2));
  const c = tokenizer.encodeFull(ex.context, null, { addSpecialTokens: false });
  const room = o.maxLength - q.length - 3;
  if (room < 1) throw new RangeError(`--max-length ${o.maxLength} leaves no room for the context`);
  const stride = Math.min(o.docStride, room - 1);
  const gold = ex.answers[0];
  const out: QAFeature[] = [];
  for (let from = 0; ; from += room - stride) {
    const to = Math.min(c.ids.length, from + room);
    const ids = [special.cls, ...q, special.sep];
    const typeIds = ids.map(() => 0);
    const contextOffsets: ([number, number] | null)[] = ids.map(() => null);
    for (let t = from; t < to; t++) {
      ids.push(c.ids[t]!);
      typeIds.push(1);
      contextOffsets.push(c.offsets[t]!);
    }
    ids.push(special.sep);
    typeIds.push(1);
    contextOffsets.push(null);
    let start = 0;
    let end = 0;
    if (gold !== undefined && to > from) {
      const sChar = gold.start;
      const eChar = gold.start + gold.text.length;
      // run_qa's rule: the window holds the answer when its context tokens span both ends.
      const base = q.length + 2;
      if (c.offsets[from]![0] <= sChar && c.offsets[to - 1]![1] >= eChar) {
        let s = from;
        while (s + 1 < to && c.offsets[s + 1]![0] <= sChar) s++;
        let e = to - 1;
        while (e - 1 >= s && c.offsets[e - 1]![1] >= eChar) e--;
        start = base + (s - from);
        end = base + (e - from);
      }
    }
    out.push({ ids, typeIds, contextOffsets, start, end });
    if (to >= c.ids.length) break;
  }
  return out;
}

export interface QABatch {
  ids: Tensor;
  typeIds: Tensor;
  attentionMask: Tensor;
}

export function qaBatch(features: readonly QAFeature[], padId: number): QABatch {
  const B = features.length;
  const T = Math.max(...features.map((f) => f.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const types = new Int32Array(B * T);
  const mask = new Int32Array(B * T);
  features.forEach((f, b) => {
    ids.set(f.ids, b * T);
    types.set(f.typeIds, b * T);
    mask.fill(1, b * T, b * T + f.ids.length);
  });
  return { ids: Tensor.fromArray(ids, [B, T], 'i32'), typeIds: Tensor.fromArray(types, [B, T], 'i32'), attentionMask: Tensor.fromArray(mask, [B, T], 'i32') };
}

/** A pre-trained encoder with BertForQuestionAnswering's `qa_outputs` head. */
export class QuestionAnswering extends Module {
  readonly model: Module;
  readonly lm: EmbeddingLM;
  readonly qa_outputs: Linear;
  readonly special: SpecialIds;

  constructor(model: Module, tokenizer: OffsetTokenizer, generator: Generator = defaultGenerator) {
    super();
    this.model = this.registerModule('model', model);
    this.lm = embeddingLM(model);
    if (this.lm.kind !== 'masked') throw new Error('--task qa needs a bidirectional encoder (BERT): a causal LM cannot see the context after a start token');
    this.special = specialIds(tokenizer, this.lm.kind);
    this.qa_outputs = this.registerModule('qa_outputs', new Linear(this.lm.hiddenSize, 2, { generator }));
  }

  /** Start and end logits stacked as [B, T, 2] (HF splits the last axis). */
  forward(batch: QABatch): Tensor {
    return this.qa_outputs.forward(tokenStates(this.model, this.lm, batch.ids, batch.attentionMask, batch.typeIds));
  }

  /** (CE(start) + CE(end)) / 2 over the batch. */
  loss(features: readonly QAFeature[]): Tensor {
    return qaLoss(this.forward(qaBatch(features, this.special.pad)), features.map((f) => f.start), features.map((f) => f.end));
  }

  /** The best answer text of each example over all its windows. */
  answer(examples: readonly { features: QAFeature[]; context: string }[], maxAnswerLength: number, batchSize = 32): string[] {
    const flat = examples.flatMap((ex, e) => ex.features.map((f) => ({ f, e })));
    const best = examples.map(() => ({ score: -Infinity, text: '' }));
    for (let i = 0; i < flat.length; i += batchSize) {
      const chunk = flat.slice(i, i + batchSize);
      const logits = this.forward(qaBatch(chunk.map((c) => c.f), this.special.pad));
      const T = logits.shape[1]!;
      const d = logits.dense();
      chunk.forEach(({ f, e }, b) => {
        const span = bestSpan(
          (t) => d[(b * T + t) * 2]!,
          (t) => d[(b * T + t) * 2 + 1]!,
          f.contextOffsets.map((o) => o !== null),
          maxAnswerLength,
        );
        if (span !== null && span.score > best[e]!.score) {
          best[e] = { score: span.score, text: examples[e]!.context.slice(f.contextOffsets[span.start]![0], f.contextOffsets[span.end]![1]) };
        }
      });
    }
    return best.map((b) => b.text);
  }
}

/** Logits [B, T, 2] → (CE(start) + CE(end)) / 2, as BertForQuestionAnswering. */
export function qaLoss(logits: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  const [B, T] = logits.shape as [number, number, number];
  const pick = (k: number): Tensor => logits.narrow(2, k, 1).reshape([B, T]);
  const s = crossEntropy(pick(0), Tensor.fromArray(Int32Array.from(starts), [B], 'i32'));
  const e = crossEntropy(pick(1), Tensor.fromArray(Int32Array.from(ends), [B], 'i32'));
  return s.add(e).div(2);
}

/** The best start ≤ end span inside the context with end − start + 1 ≤ maxLength, or null. */
export function bestSpan(startLogit: (t: number) => number, endLogit: (t: number) => number, inContext: readonly boolean[], maxLength: number): { start: number; end: number; score: number } | null {
  let best: { start: number; end: number; score: number } | null = null;
  for (let s = 0; s < inContext.length; s++) {
    if (!inContext[s]) continue;
    const ss = startLogit(s);
    for (let e = s; e < Math.min(inContext.length, s + maxLength); e++) {
      if (!inContext[e]) break;
      const score = ss + endLogit(e);
      if (best === null || score > best.score) best = { start: s, end: e, score };
    }
  }
  return best;
}

/** Mean SQuAD exact match and F1 of predicted answers against each example's gold answers. */
export function qaScores(predictions: readonly string[], gold: readonly (readonly string[])[]): { exact_match: number; f1: number } {
  let em = 0;
  let f1 = 0;
  predictions.forEach((p, i) => {
    em += exactMatch(p, gold[i]!);
    f1 += squadF1(p, gold[i]!);
  });
  const n = Math.max(1, predictions.length);
  return { exact_match: em / n, f1: f1 / n };
}

export interface QAFields {
  question: string;
  context: string;
  answer: string;
  answerStart: string;
}

export const DEFAULT_QA_FIELDS: QAFields = { question: 'question', context: 'context', answer: 'answer', answerStart: 'answer_start' };

export interface QAOptions extends QAEncodeOptions {
  maxAnswerLength: number;
}

/** Answers questions with a new or rebuilt head. */
export class Reader {
  constructor(
    readonly qa: QuestionAnswering,
    readonly tokenizer: OffsetTokenizer,
    readonly options: QAOptions,
  ) {}

  features(ex: QAExample): QAFeature[] {
    return qaFeatures(this.tokenizer, this.qa.special, ex, { ...this.options, maxLength: Math.min(this.options.maxLength, this.qa.lm.maxLength) });
  }

  answer(examples: readonly QAExample[]): string[] {
    return noGrad(() => this.qa.answer(examples.map((ex) => ({ features: this.features(ex), context: ex.context })), this.options.maxAnswerLength));
  }
}

export function setupQATask(
  model: Module,
  tokenizer: OffsetTokenizer,
  o: { train: DataRecord[]; eval: DataRecord[]; trainSource: string; evalSource: string; fields: QAFields; options: QAOptions; generator: Generator },
): TaskSetup & { reader: Reader } {
  const qa = new QuestionAnswering(model, tokenizer, o.generator);
  const reader = new Reader(qa, tokenizer, o.options);
  const train = o.train.map((r, i) => qaExample(r, i, o.trainSource, o.fields, true));
  const evalSet = o.eval.map((r, i) => qaExample(r, i, o.evalSource, o.fields, true));
  // Every window of a record trains (those without the answer point at [CLS]).
  const features = new Map(o.train.map((r, i) => [r, reader.features(train[i]!)]));
  return {
    root: qa,
    reader,
    lossOf: (batch) => qa.loss(batch.flatMap((r) => features.get(r)!)),
    evaluate: () => {
      const s = qaScores(
        reader.answer(evalSet),
        evalSet.map((ex) => ex.answers.map((a) => a.text)),
      );
      return { metric: s.f1, metrics: s };
    },
  };
}
