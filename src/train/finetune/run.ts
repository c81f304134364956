/**
 * `weft finetune` end to end: load a pre-trained model directory, apply a method (full, freeze:N,
 * prompt:P, prefix:P, lora:R), train a task (classify, tokens, qa, seq2seq, sft, dpo) with the
 * shared loop, evaluate, and save what the method produced — a full model, a PEFT adapter, or a
 * prompt, plus a task head — next to a finetune.json that `weft predict` reads back.
 */
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { noGrad } from '../../tensor/autograd.js';
import { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { loadPretrained } from '../../models/registry.js';
import '../../models/index.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import type { Tokenizer } from '../../tokenizers/tokenizer.js';
import { accuracy, f1Score } from '../../eval/metrics/index.js';
import { embeddingLM } from '../peft/embedding-lm.js';
import { injectLora, loadLoraAdapter, saveLoraAdapter } from '../peft/lora.js';
import { PromptEmbedding, loadPromptAdapter, savePromptAdapter } from '../peft/prompt-tuning.js';
import { PrefixEncoder, injectPrefix } from '../peft/prefix-tuning.js';
import { DEFAULT_TEMPLATE, SequenceClassifier, type ClassifierMode } from './classify.js';
import { DEFAULT_SFT_TEMPLATE, type LabelledSequence, causalBatch, dpoLoss, sequenceLogProbs, sftExample, sftLoss } from './causal.js';
import { type DataRecord, field, loadRecords } from './data.js';
import { type EpochRecord, freezeBelow, parameterGroups, runFinetuneLoop } from './loop.js';
import { setupDomainTask } from './domain.js';
import { DEFAULT_TOKENS_FIELDS, type TaskSetup, type TokensFields, Tagger, TokenClassifier, setupTokensTask } from './tokens.js';
import { DEFAULT_QA_FIELDS, type QAExample, type QAFields, QuestionAnswering, Reader, setupQATask } from './qa.js';
import { DEFAULT_SEQ2SEQ_FIELDS, type Seq2SeqFields, asT5, encodeWithEos, generateTargets, setupSeq2SeqTask } from './seq2seq.js';

export type FinetuneTask = 'classify' | 'tokens' | 'qa' | 'seq2seq' | 'sft' | 'dpo' | 'lm';
export type FinetuneMethod = { kind: 'full' } | { kind: 'freeze'; layers: number } | { kind: 'prompt'; tokens: number } | { kind: 'prefix'; tokens: number } | { kind: 'lora'; rank: number };

export function parseMethod(s: string): FinetuneMethod {
  if (s === 'full') return { kind: 'full' };
  const m = /^(freeze|prompt|prefix|lora):(\d+)$/.exec(s);
  if (m === null) throw new RangeError(`--method ${JSON.stringify(s)}: expected full, freeze:N, prompt:P, prefix:P or lora:R`);
  const n = Number(m[2]);
  if (m[1] === 'freeze') return { kind: 'freeze', layers: n };
  if (n < 1) throw new RangeError(`--method ${s}: the number must be ≥ 1`);
  if (m[1] === 'prompt') return { kind: 'prompt', tokens: n };
  if (m[1] === 'prefix') return { kind: 'prefix', tokens: n };
  return { kind: 'lora', rank: n };
}

export function methodName(m: FinetuneMethod): string {
  return m.kind === 'full' ? 'full' : m.kind === 'freeze' ? `freeze:${m.layers}` : m.kind === 'lora' ? `lora:${m.rank}` : `${m.kind}:${m.tokens}`;
}

export interface FinetuneOptions {
  model: string;
  task: FinetuneTask;
  train: string;
  eval: string;
  method: FinetuneMethod;
  out: string;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  maxLength?: number;
  seed?: number;
  patience?: number;
  layerDecay?: number;
  /** Re-initialise the weights: the "trained from scratch on the task" baseline. */
  scratch?: boolean;
  textField?: string;
  labelField?: string;
  promptField?: string;
  responseField?: string;
  chosenField?: string;
  rejectedField?: string;
  /** classify: 'head' (a new linear layer) or 'verbalizer' (label words; default for prompt/prefix). */
  head?: 'head' | 'verbalizer';
  template?: string;
  labelWords?: string[];
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: string[];
  beta?: number;
  /** tokens: word-list and tag-list fields (or textField + `entities`). */
  tokensField?: string;
  tagsField?: string;
  /** qa: fields of the question, the context and a flat answer (SQuAD's `answers` is read too). */
  questionField?: string;
  contextField?: string;
  answerField?: string;
  /** qa: longest answer in tokens (default 30) and tokens shared by context windows (default 128). */
  maxAnswerLength?: number;
  docStride?: number;
  /** seq2seq: source and target fields, and the target length (default: maxLength). */
  sourceField?: string;
  targetField?: string;
  maxTargetLength?: number;
  onEpoch?: (r: EpochRecord) => void;
  onStep?: (step: number, total: number, loss: number) => void;
}

export interface FinetuneResult {
  task: FinetuneTask;
  method: string;
  bestEpoch: number;
  metric: number;
  metrics: Record<string, number>;
  trainable: number;
  total: number;
  savedBytes: number;
  seconds: number;
  history: EpochRecord[];
  /** --task lm: the held-out metrics before training. */
  initialMetrics?: Record<string, number>;
}

/** What finetune.json records, so predict can rebuild the model. */
export interface FinetuneManifest {
  task: FinetuneTask;
  method: string;
  base: string;
  labels?: string[];
  mode?: ClassifierMode;
  maxLength: number;
  template?: string;
  loraAlpha?: number;
  /** tokens / qa / seq2seq: the field names training used (predict reads the same ones). */
  tokensFields?: TokensFields;
  qaFields?: QAFields;
  seq2seqFields?: Seq2SeqFields;
  maxAnswerLength?: number;
  docStride?: number;
  maxTargetLength?: number;
  result: Omit<FinetuneResult, 'history'>;
}

/** LoRA targets that exist in each family (attention projections, as the LoRA paper adapts Wq/Wv). */
function defaultLoraTargets(model: Module): string[] {
  const names = new Set(model.namedModules().map(([p]) => p.split('.').pop()!));
  for (const set of [['q_proj', 'v_proj'], ['query', 'value'], ['c_attn'], ['q', 'v']]) if (set.every((n) => names.has(n))) return set;
  throw new Error('LoRA: no default target modules for this model; give --lora-targets');
}

async function loadBase(dir: string, scratch: boolean, seed: number): Promise<Module> {
  const model = await loadPretrained(dir);
  if (scratch) {
    // Same architecture, fresh weights drawn like an untrained model's (normal 0.02; norms at 1/0).
    const g = new Generator(seed);
    noGrad(() => {
      for (const [name, p] of model.namedParameters()) {
        const d = p.f32('scratch');
        if (/norm|LayerNorm|ln_/i.test(name)) d.fill(/bias/.test(name) ? 0 : 1);
        else if (p.ndim === 1) d.fill(0);
        else for (let i = 0; i < d.length; i++) d[i] = g.normal() * 0.02;
      }
    });
  }
  return model;
}

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    n += f.isDirectory() ? await dirBytes(p) : statSync(p).size;
  }
  return n;
}

function eosId(tok: Tokenizer): number | null {
  for (const t of ['<|endoftext|>', '</s>', '<eos>', '[SEP]']) {
    const id = tok.tokenToId(t);
    if (id !== undefined) return id;
  }
  return null;
}

export async function runFinetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const seed = o.seed ?? 1;
  const maxLength = o.maxLength ?? 128;
  const tokenizer = loadTokenizer(o.model);
  const model = await loadBase(o.model, o.scratch === true, seed);
  const trainRecords = loadRecords(o.train);
  const evalRecords = loadRecords(o.eval);
  const g = new Generator(seed + 1);
  // Freeze everything first for the parameter-efficient methods; they unfreeze what they add.
  const m = o.method;
  const headTask = o.task === 'tokens' || o.task === 'qa' || o.task === 'seq2seq';
  if (headTask && (m.kind === 'prompt' || m.kind === 'prefix')) throw new Error(`--task ${o.task} supports --method full, freeze:N and lora:R (not ${methodName(m)})`);
  if (o.task === 'seq2seq') asT5(model, '--task seq2seq');
  // T5's shared embedding is named neither like GPT's nor BERT's: freeze:N freezes it explicitly.
  if (o.task === 'seq2seq' && m.kind === 'freeze') for (const [name, p] of model.namedParameters()) if (name === 'shared.weight') p.requiresGrad = false;
  if (m.kind === 'prompt' || m.kind === 'prefix' || m.kind === 'lora') for (const p of model.parameters()) p.requiresGrad = false;
  if (m.kind === 'freeze') freezeBelow(model.namedParameters(), m.layers);
  let prefix: PrefixEncoder | null = null;
  if (m.kind === 'prefix') prefix = injectPrefix(model, m.tokens, g);
  const loraAlpha = o.loraAlpha ?? (m.kind === 'lora' ? 2 * m.rank : 0);
  if (m.kind === 'lora') {
    injectLora(model, { r: m.rank, loraAlpha, loraDropout: o.loraDropout ?? 0.05, targetModules: o.loraTargets ?? defaultLoraTargets(model), taskType: LORA_TASK_TYPES[o.task] }, { generator: g });
  }
  // T5 is not an embeddings-in LM; seq2seq never needs that view (prompt/prefix are refused above).
  const lm = o.task === 'seq2seq' ? null : embeddingLM(model);
  let prompt: PromptEmbedding | null = null;
  if (m.kind === 'prompt') {
    prompt = new PromptEmbedding(m.tokens, lm!.hiddenSize, { generator: g });
    prompt.initialise({ kind: 'vocab' }, lm!.wordEmbeddings, g);
  }

  const manifest: Partial<FinetuneManifest> = { task: o.task, method: methodName(m), base: resolve(o.model), maxLength, loraAlpha };
  let trainRoot: Module = model;
  let lossOf: (batch: DataRecord[]) => Tensor;
  let evaluate: () => { metric: number; metrics: Record<string, number> };
  let initialMetrics: Record<string, number> | undefined;
  const batchSize = o.batchSize ?? 16;

  if (o.task === 'classify') {
    const textField = o.textField ?? 'sentence';
    const labelField = o.labelField ?? 'label';
    const labelsOf = (rs: DataRecord[], src: string): string[] => rs.map((r, i) => field(r, labelField, i, src));
    const labels = [...new Set(labelsOf(trainRecords, o.train))].sort();
    if (labels.length < 2) throw new Error(`${o.train}: field '${labelField}' has ${labels.length} distinct value(s); classification needs at least 2`);
    const useVerbalizer = (o.head ?? (m.kind === 'prompt' || m.kind === 'prefix' ? 'verbalizer' : 'head')) === 'verbalizer';
    const mode: ClassifierMode = useVerbalizer
      ? { kind: 'verbalizer', template: o.template ?? DEFAULT_TEMPLATE, labelWords: o.labelWords ?? labels }
      : { kind: 'head' };
    const clf = new SequenceClassifier(model, tokenizer, labels.length, mode, g);
    if (prompt !== null) clf.usePrompt(prompt);
    trainRoot = clf;
    manifest.labels = labels;
    manifest.mode = mode;
    const labelIndex = (r: DataRecord, i: number, src: string): number => {
      const k = labels.indexOf(field(r, labelField, i, src));
      if (k < 0) throw new Error(`${src}: record ${i + 1} has label ${JSON.stringify(r[labelField])}, not one of the training labels ${labels.join(', ')}`);
      return k;
    };
    const evalTexts = evalRecords.map((r, i) => field(r, textField, i, o.eval));
    const evalLabels = evalRecords.map((r, i) => labelIndex(r, i, o.eval));
    trainRecords.forEach((r, i) => {
      field(r, textField, i, o.train);
      labelIndex(r, i, o.train);
    });
    lossOf = (batch) =>
      clf.loss(
        clf.makeBatch(
          batch.map((r) => String(r[textField])),
          maxLength,
        ),
        batch.map((r) => labels.indexOf(String(r[labelField]))),
      );
    evaluate = () => {
      const pred = noGrad(() => clf.predict(evalTexts, maxLength));
      const acc = accuracy(pred, evalLabels);
      const macroF1 = f1Score(pred, evalLabels, { average: 'macro' });
      return { metric: acc, metrics: { accuracy: acc, f1: macroF1 } };
    };
  } else if (headTask) {
    const common = { train: trainRecords, eval: evalRecords, trainSource: o.train, evalSource: o.eval };
    let setup: TaskSetup;
    if (o.task === 'tokens') {
      const fields: TokensFields = { tokens: o.tokensField ?? DEFAULT_TOKENS_FIELDS.tokens, tags: o.tagsField ?? DEFAULT_TOKENS_FIELDS.tags, text: o.textField ?? DEFAULT_TOKENS_FIELDS.text };
      const t = setupTokensTask(model, tokenizer, { ...common, fields, maxLength, generator: g });
      manifest.labels = [...t.tagger.labels];
      manifest.tokensFields = fields;
      setup = t;
    } else if (o.task === 'qa') {
      const fields: QAFields = { question: o.questionField ?? DEFAULT_QA_FIELDS.question, context: o.contextField ?? DEFAULT_QA_FIELDS.context, answer: o.answerField ?? DEFAULT_QA_FIELDS.answer, answerStart: DEFAULT_QA_FIELDS.answerStart };
      const options = { maxLength, docStride: o.docStride ?? 128, maxAnswerLength: o.maxAnswerLength ?? 30 };
      setup = setupQATask(model, tokenizer, { ...common, fields, options, generator: g });
      Object.assign(manifest, { qaFields: fields, docStride: options.docStride, maxAnswerLength: options.maxAnswerLength });
    } else {
      const fields: Seq2SeqFields = { source: o.sourceField ?? DEFAULT_SEQ2SEQ_FIELDS.source, target: o.targetField ?? DEFAULT_SEQ2SEQ_FIELDS.target };
      const maxTargetLength = o.maxTargetLength ?? maxLength;
      setup = setupSeq2SeqTask(asT5(model, '--task seq2seq'), tokenizer, { ...common, fields, maxLength, maxTargetLength, batchSize });
      Object.assign(manifest, { seq2seqFields: fields, maxTargetLength });
    }
    trainRoot = setup.root;
    lossOf = setup.lossOf;
    evaluate = setup.evaluate;
  } else if (o.task === 'lm') {
    if (lm === null) throw new Error('--task lm (domain-adaptive pre-training) supports GPT, LLaMA and BERT models');
    if (prompt !== null || prefix !== null) throw new Error('--task lm continues pre-training: use full, freeze:N or lora:R');
    const domain = setupDomainTask(lm, tokenizer, { train: trainRecords, eval: evalRecords, trainSource: o.train, evalSource: o.eval, textField: o.textField ?? 'text', maxLength, batchSize, seed });
    lossOf = domain.lossOf;
    evaluate = domain.evaluate;
    // The domain perplexity before adaptation, to show what the continued pre-training bought.
    model.eval();
    initialMetrics = noGrad(() => domain.evaluate().metrics);
  } else {
    if (lm === null || lm.kind !== 'causal') throw new Error(`--task ${o.task} needs a causal LM (GPT, LLaMA); ${o.model} is a masked LM`);
    const promptField = o.promptField ?? 'prompt';
    const template = o.template ?? DEFAULT_SFT_TEMPLATE;
    manifest.template = template;
    const eos = eosId(tokenizer);
    const seqOf = (r: DataRecord, i: number, src: string, responseField: string): LabelledSequence =>
      sftExample(tokenizer, field(r, promptField, i, src), field(r, responseField, i, src), { template, eosId: eos, maxLength: Math.min(maxLength, lm.maxLength - (prompt?.numVirtualTokens ?? 0)) });
    if (o.task === 'sft') {
      const responseField = o.responseField ?? 'response';
      const train = trainRecords.map((r, i) => seqOf(r, i, o.train, responseField));
      const evalSeqs = evalRecords.map((r, i) => seqOf(r, i, o.eval, responseField));
      const index = new Map(trainRecords.map((r, i) => [r, train[i]!]));
      lossOf = (batch) => sftLoss(lm, causalBatch(batch.map((r) => index.get(r)!)), prompt);
      evaluate = () => {
        let total = 0;
        let n = 0;
        noGrad(() => {
          for (let i = 0; i < evalSeqs.length; i += batchSize) {
            const chunk = evalSeqs.slice(i, i + batchSize);
            total += sftLoss(lm, causalBatch(chunk), prompt).item() * chunk.length;
            n += chunk.length;
          }
        });
        const loss = total / n;
        return { metric: -loss, metrics: { eval_loss: loss, perplexity: Math.exp(loss) } };
      };
    } else {
      const chosenField = o.chosenField ?? 'chosen';
      const rejectedField = o.rejectedField ?? 'rejected';
      const beta = o.beta ?? 0.1;
      const pairs = (rs: DataRecord[], src: string) => rs.map((r, i) => ({ chosen: seqOf(r, i, src, chosenField), rejected: seqOf(r, i, src, rejectedField) }));
      const trainPairs = pairs(trainRecords, o.train);
      const evalPairs = pairs(evalRecords, o.eval);
      // The reference policy is the starting model, frozen: its log-probs of every pair are constants,
      // computed once here (in batches) instead of again at every step and evaluation.
      const ref = embeddingLM(await loadBase(o.model, o.scratch === true, seed));
      const withRef = (ps: typeof trainPairs) => {
        const chosen = new Float32Array(ps.length);
        const rejected = new Float32Array(ps.length);
        noGrad(() => {
          for (let i = 0; i < ps.length; i += batchSize) {
            const chunk = ps.slice(i, i + batchSize);
            chosen.set(sequenceLogProbs(ref, causalBatch(chunk.map((p) => p.chosen))).f32('dpo'), i);
            rejected.set(sequenceLogProbs(ref, causalBatch(chunk.map((p) => p.rejected))).f32('dpo'), i);
          }
        });
        return ps.map((p, i) => ({ ...p, refChosen: chosen[i]!, refRejected: rejected[i]! }));
      };
      const trainWithRef = withRef(trainPairs);
      const evalWithRef = withRef(evalPairs);
      const stats = (ps: typeof trainWithRef) =>
        dpoLoss(
          sequenceLogProbs(lm, causalBatch(ps.map((p) => p.chosen)), prompt),
          sequenceLogProbs(lm, causalBatch(ps.map((p) => p.rejected)), prompt),
          Float32Array.from(ps, (p) => p.refChosen),
          Float32Array.from(ps, (p) => p.refRejected),
          beta,
        );
      const index = new Map(trainRecords.map((r, i) => [r, trainWithRef[i]!]));
      lossOf = (batch) => stats(batch.map((r) => index.get(r)!)).loss;
      evaluate = () =>
        noGrad(() => {
          const s = stats(evalWithRef);
          return { metric: s.rewardAccuracy, metrics: { reward_accuracy: s.rewardAccuracy, reward_margin: s.rewardMargin, chosen_reward: s.chosenReward, rejected_reward: s.rejectedReward, loss: s.loss.item() } };
        });
    }
  }

  const named: [string, Tensor][] = [...trainRoot.namedParameters()];
  if (trainRoot === model && prompt !== null) named.push(...prompt.namedParameters('prompt'));
  if (prefix !== null && !named.some(([, p]) => p === prefix.keys)) named.push(...prefix.namedParameters('prefix'));
  const loop = runFinetuneLoop({
    model: trainRoot,
    groups: parameterGroups(named, o.layerDecay ?? 1),
    train: trainRecords,
    lossOf,
    evaluate,
    epochs: o.epochs ?? 3,
    batchSize,
    lr: o.lr ?? (m.kind === 'full' || m.kind === 'freeze' ? 5e-4 : m.kind === 'lora' ? 2e-3 : 3e-2),
    patience: o.patience,
    seed,
    onEpoch: o.onEpoch,
    onStep: o.onStep,
  });
  // Totals over the model plus what the method added (head, prompt, prefix, LoRA), each tensor once.
  const all = new Set<Tensor>([...model.parameters(), ...named.map(([, p]) => p)]);
  let trainable = 0;
  let total = 0;
  for (const p of all) {
    total += p.numel;
    if (p.requiresGrad) trainable += p.numel;
  }

  // Save what the method produced.
  await mkdir(o.out, { recursive: true });
  let savedBytes = 0;
  const head = trainRoot instanceof SequenceClassifier || trainRoot instanceof TokenClassifier ? trainRoot.classifier : trainRoot instanceof QuestionAnswering ? trainRoot.qa_outputs : null;
  if (head !== null) {
    await saveSafetensors(join(o.out, 'head.safetensors'), new Map(head.namedParameters(trainRoot instanceof QuestionAnswering ? 'qa_outputs' : 'classifier')), { format: 'pt' });
    savedBytes += statSync(join(o.out, 'head.safetensors')).size;
  }
  if (m.kind === 'lora') {
    await saveLoraAdapter(model, join(o.out, 'adapter'), { baseModel: resolve(o.model) });
    savedBytes += await dirBytes(join(o.out, 'adapter'));
  } else if (m.kind === 'prompt') {
    await savePromptAdapter(prompt!, join(o.out, 'adapter'), { baseModel: resolve(o.model), taskType: LORA_TASK_TYPES[o.task] });
    savedBytes += await dirBytes(join(o.out, 'adapter'));
  } else if (m.kind === 'prefix') {
    await saveSafetensors(join(o.out, 'prefix.safetensors'), new Map(prefix!.namedParameters()), { format: 'pt', num_virtual_tokens: String(prefix!.numVirtualTokens) });
    savedBytes += statSync(join(o.out, 'prefix.safetensors')).size;
  } else {
    const saver = model as Module & { savePretrained(dir: string): Promise<void> };
    await saver.savePretrained(join(o.out, 'model'));
    // The tokenizer travels with the weights, so the directory is a complete model.
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']) {
      if (existsSync(join(o.model, f))) await copyFile(join(o.model, f), join(o.out, 'model', f));
    }
    savedBytes += await dirBytes(join(o.out, 'model'));
    manifest.base = resolve(join(o.out, 'model'));
  }
  const best = loop.history.find((h) => h.epoch === loop.bestEpoch)!;
  const result: FinetuneResult = {
    task: o.task,
    method: methodName(m),
    bestEpoch: loop.bestEpoch,
    metric: loop.bestMetric,
    metrics: best.metrics,
    trainable,
    total,
    savedBytes,
    seconds: loop.seconds,
    history: loop.history,
    ...(initialMetrics === undefined ? {} : { initialMetrics }),
  };
  const { history: _h, ...summary } = result;
  void _h;
  await writeFileAtomic(join(o.out, 'finetune.json'), JSON.stringify({ ...manifest, result: summary }, null, 2) + '\n');
  return result;
}

/** PEFT's task_type per task (recorded in adapter_config.json). */
const LORA_TASK_TYPES: Record<FinetuneTask, string> = { classify: 'SEQ_CLS', tokens: 'TOKEN_CLS', qa: 'QUESTION_ANS', seq2seq: 'SEQ_2_SEQ_LM', sft: 'CAUSAL_LM', dpo: 'CAUSAL_LM', lm: 'CAUSAL_LM' };

/** A fine-tuned model rebuilt from `weft finetune`'s output, with the predictor its task needs. */
export interface Finetuned {
  manifest: FinetuneManifest;
  model: Module;
  tokenizer: Tokenizer;
  /** classify: a label per text. */
  classify?: (texts: string[]) => string[];
  /** tokens: a tag per word of each sentence. */
  tag?: (sentences: string[][]) => string[][];
  /** qa: the answer span of each (question, context). */
  answer?: (examples: { question: string; context: string }[]) => string[];
  /** seq2seq: the greedy-decoded target of each source. */
  generate?: (sources: string[], maxNewTokens?: number) => string[];
}

/** Rebuilds a fine-tuned model from `weft finetune`'s output directory and its predictor. */
export async function loadFinetuned(outDir: string): Promise<Finetuned> {
  const path = join(outDir, 'finetune.json');
  if (!existsSync(path)) throw new Error(`${outDir}: no finetune.json; pass the --out directory of weft finetune`);
  const manifest = JSON.parse(await readFile(path, 'utf8')) as FinetuneManifest;
  const baseDir = manifest.base;
  const model = await loadPretrained(baseDir);
  const tokenizer = loadTokenizer(existsSync(join(baseDir, 'tokenizer.json')) ? baseDir : manifest.base);
  const method = parseMethod(manifest.method);
  let prompt: PromptEmbedding | null = null;
  if (method.kind === 'lora') await loadLoraAdapter(model, join(outDir, 'adapter'));
  if (method.kind === 'prompt') prompt = await loadPromptAdapter(join(outDir, 'adapter'));
  if (method.kind === 'prefix') {
    const prefix = injectPrefix(model, method.tokens);
    const file = await loadSafetensors(join(outDir, 'prefix.safetensors'));
    prefix.loadStateDict(file.tensors);
  }
  model.eval();
  const loadHead = async (head: Module, prefix: string): Promise<void> => {
    const file = await loadSafetensors(join(outDir, 'head.safetensors'));
    head.loadStateDict(new Map([...file.tensors].map(([k, t]) => [k.replace(new RegExp(`^${prefix}\\.`), ''), t])));
  };
  if (manifest.task === 'tokens') {
    const clf = new TokenClassifier(model, tokenizer, manifest.labels!.length);
    await loadHead(clf.classifier, 'classifier');
    clf.eval();
    const tagger = new Tagger(clf, tokenizer, manifest.labels!, manifest.maxLength);
    return { manifest, model, tokenizer, tag: (sentences) => noGrad(() => tagger.tag(sentences)) };
  }
  if (manifest.task === 'qa') {
    const qa = new QuestionAnswering(model, tokenizer);
    await loadHead(qa.qa_outputs, 'qa_outputs');
    qa.eval();
    const reader = new Reader(qa, tokenizer, { maxLength: manifest.maxLength, docStride: manifest.docStride ?? 128, maxAnswerLength: manifest.maxAnswerLength ?? 30 });
    return { manifest, model, tokenizer, answer: (examples) => reader.answer(examples.map((e): QAExample => ({ ...e, answers: [] }))) };
  }
  if (manifest.task === 'seq2seq') {
    const t5 = asT5(model, 'seq2seq predict');
    const eos = t5.config.eosTokenId;
    const generate = (sources: string[], maxNewTokens?: number): string[] =>
      generateTargets(
        t5,
        tokenizer,
        sources.map((s) => encodeWithEos(tokenizer, s, eos, manifest.maxLength)),
        maxNewTokens ?? manifest.maxTargetLength ?? manifest.maxLength,
      );
    return { manifest, model, tokenizer, generate };
  }
  if (manifest.task !== 'classify') return { manifest, model, tokenizer };
  const labels = manifest.labels!;
  const clf = new SequenceClassifier(model, tokenizer, labels.length, manifest.mode!);
  if (prompt !== null) clf.usePrompt(prompt);
  if (clf.classifier !== null) {
    const head = await loadSafetensors(join(outDir, 'head.safetensors'));
    clf.classifier.loadStateDict(new Map([...head.tensors].map(([k, t]) => [k.replace(/^classifier\./, ''), t])));
  }
  clf.eval();
  return { manifest, model, tokenizer, classify: (texts) => noGrad(() => clf.predict(texts, manifest.maxLength)).map((k) => labels[k]!) };
}
