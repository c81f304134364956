/**
 * Pre-training a small BERT on a text corpus with its two objectives, MLM and NSP (BERT §3.1):
 * documents are separated by blank lines, sentences are a document's lines (or, for a one-line
 * document, its sentence-ending punctuation). A WordPiece tokenizer is trained on the corpus (or
 * loaded); each step draws NSP pairs, MLM-corrupts them and takes an AdamW step on MLM + NSP loss.
 * Held-out accuracy comes from the last tenth of the documents, never trained on.
 * The run directory ends up holding config.json + model.safetensors (HF BertForPreTraining) and
 * tokenizer.json, which `weft fill-mask` and transformers both read.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MLM_IGNORE, MLMMasker } from '../data/objectives/mlm.js';
import { NSPSampler } from '../data/objectives/nsp.js';
import { BertForPreTraining } from '../models/bert.js';
import { AdamW, clipGradNorm, cosineWithWarmup } from '../optim/index.js';
import { noGrad } from '../tensor/autograd.js';
import { argmax } from '../tensor/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { trainTokenizer } from '../tokenizers/trainers/index.js';
import { UsageError } from './config.js';
import type { OutputStream } from './progress.js';

export interface TrainBertOptions {
  data: string;
  outDir: string;
  /** A tokenizer file or directory (tokenizer.json, vocab.txt); default: train WordPiece on --data. */
  tokenizer?: string;
  vocabSize?: number;
  hiddenSize?: number;
  numLayers?: number;
  numHeads?: number;
  intermediateSize?: number;
  maxLength?: number;
  batchSize?: number;
  maxIters?: number;
  lr?: number;
  warmupIters?: number;
  evalInterval?: number;
  evalBatches?: number;
  dropout?: number;
  seed?: number;
  json?: boolean;
  stdout?: OutputStream;
  stderr?: OutputStream;
}

export const BERT_DEFAULTS = {
  vocabSize: 2000,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 256,
  maxLength: 64,
  batchSize: 16,
  maxIters: 300,
  lr: 1e-3,
  warmupIters: 30,
  evalInterval: 100,
  evalBatches: 4,
  dropout: 0.1,
  seed: 1337,
} as const;

export interface BertEvaluation {
  iter: number;
  loss: number;
  mlmAccuracy: number;
  nspAccuracy: number;
}

export interface TrainBertResult {
  outDir: string;
  iterations: number;
  trainLoss: number;
  eval: BertEvaluation;
  numParameters: number;
  wallSeconds: number;
}

/** Documents (blank-line separated) as lists of sentences. */
export function splitDocuments(text: string): string[][] {
  return text
    .split(/\r?\n\s*\r?\n/)
    .map((doc) => {
      const lines = doc.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
      return lines.length === 1 ? lines[0]!.split(/(?<=[.!?])\s+/).filter((s) => s.length > 0) : lines;
    })
    .filter((d) => d.length > 0);
}

interface Batch {
  ids: Tensor;
  tokenTypeIds: Tensor;
  attentionMask: Tensor;
  mlmLabels: Tensor;
  nspLabels: Tensor;
}

function drawBatch(sampler: NSPSampler, masker: MLMMasker, B: number, T: number): Batch {
  const ids = new Int32Array(B * T);
  const types = new Int32Array(B * T);
  const mask = new Int32Array(B * T);
  const labels = new Int32Array(B * T);
  const nsp = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const ex = sampler.sample();
    const m = masker.mask(ex.ids);
    ids.set(m.inputIds, b * T);
    labels.set(m.labels, b * T);
    types.set(ex.tokenTypeIds, b * T);
    mask.set(ex.attentionMask, b * T);
    nsp[b] = ex.label;
  }
  const t = (a: Int32Array): Tensor => Tensor.fromArray(a, [B, T], 'i32');
  return { ids: t(ids), tokenTypeIds: t(types), attentionMask: t(mask), mlmLabels: t(labels), nspLabels: Tensor.fromArray(nsp, [B], 'i32') };
}

function specialId(tokenizer: Tokenizer, token: string): number {
  const id = tokenizer.tokenToId(token);
  if (id === undefined) throw new UsageError(`--tokenizer: the vocabulary has no ${token} token; BERT needs [PAD], [UNK], [CLS], [SEP] and [MASK]`);
  return id;
}

export async function trainBert(options: TrainBertOptions): Promise<TrainBertResult> {
  const started = performance.now();
  const o = { ...BERT_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof BERT_DEFAULTS & TrainBertOptions;
  const stdout = o.stdout ?? process.stdout;
  const notes = o.json === true ? (o.stderr ?? process.stderr) : stdout;
  const note = (s: string): void => void notes.write(`${s}\n`);
  if (!existsSync(o.data) || !statSync(o.data).isFile()) throw new UsageError(`--data ${o.data}: no such file; pass a UTF-8 text file (documents separated by blank lines)`);
  if (o.hiddenSize % o.numHeads !== 0) throw new UsageError(`--hidden-size ${o.hiddenSize} is not divisible by --n-head ${o.numHeads}`);
  const text = readFileSync(o.data, 'utf8');
  const docs = splitDocuments(text);
  if (docs.length < 4) throw new UsageError(`--data ${o.data}: ${docs.length} documents; NSP needs at least 4 (separate documents with blank lines)`);

  const tokenizer = o.tokenizer !== undefined ? loadTokenizer(o.tokenizer) : trainTokenizer([text], { type: 'wordpiece', vocabSize: o.vocabSize });
  const [pad, unk, cls, sep, maskId] = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => specialId(tokenizer, t)) as [number, number, number, number, number];
  const encoded = docs.map((d) => d.map((s) => tokenizer.encode(s, { addSpecialTokens: false })));
  const nVal = Math.max(2, Math.floor(encoded.length / 10));
  const trainDocs = encoded.slice(0, encoded.length - nVal);
  const valDocs = encoded.slice(encoded.length - nVal);

  const seed = o.seed;
  const dataGen = new Generator(seed + 1);
  const nspOpts = { clsId: cls, sepId: sep, padId: pad, maxLength: o.maxLength };
  const mlmOpts = { maskId, vocabSize: tokenizer.vocabSize, specialIds: [pad, unk, cls, sep] };
  let sampler: NSPSampler;
  try {
    sampler = new NSPSampler(trainDocs, { ...nspOpts, generator: dataGen });
    new NSPSampler(valDocs, nspOpts);
  } catch (e) {
    throw new UsageError(`--data ${o.data}: ${(e as Error).message}`);
  }
  const masker = new MLMMasker({ ...mlmOpts, generator: dataGen });

  const modelGen = new Generator(seed);
  const model = new BertForPreTraining(
    {
      vocabSize: tokenizer.vocabSize,
      hiddenSize: o.hiddenSize,
      numHiddenLayers: o.numLayers,
      numAttentionHeads: o.numHeads,
      intermediateSize: o.intermediateSize,
      maxPositionEmbeddings: o.maxLength,
      hiddenDropoutProb: o.dropout,
      attentionProbsDropoutProb: o.dropout,
      padTokenId: pad,
    },
    { generator: modelGen },
  );
  note(`BERT: ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${o.numLayers} layers, ${o.numHeads} heads, hidden ${o.hiddenSize}, vocab ${tokenizer.vocabSize}, length ${o.maxLength})`);
  note(`data: ${o.data}: ${trainDocs.length} train / ${valDocs.length} held-out documents; run dir ${o.outDir}`);

  const evaluate = (iter: number): BertEvaluation => {
    // The same held-out batches at every evaluation (a fresh generator), so the numbers compare.
    const g = new Generator(seed + 2);
    const valSampler = new NSPSampler(valDocs, { ...nspOpts, generator: g });
    const valMasker = new MLMMasker({ ...mlmOpts, generator: g });
    model.eval();
    let loss = 0;
    let mlmRight = 0;
    let mlmTotal = 0;
    let nspRight = 0;
    let nspTotal = 0;
    noGrad(() => {
      for (let i = 0; i < o.evalBatches; i++) {
        const b = drawBatch(valSampler, valMasker, o.batchSize, o.maxLength);
        const out = model.forward(b.ids, b);
        loss += out.loss!.item() / o.evalBatches;
        const pred = argmax(out.mlmLogits, -1).i32('evaluate');
        const labels = b.mlmLabels.i32('evaluate');
        for (let k = 0; k < labels.length; k++) {
          if (labels[k] === MLM_IGNORE) continue;
          mlmTotal++;
          if (pred[k] === labels[k]) mlmRight++;
        }
        const nspPred = argmax(out.nspLogits!, -1).i32('evaluate');
        const nspLabels = b.nspLabels.i32('evaluate');
        for (let k = 0; k < nspLabels.length; k++) {
          nspTotal++;
          if (nspPred[k] === nspLabels[k]) nspRight++;
        }
      }
    });
    model.train();
    return { iter, loss, mlmAccuracy: mlmRight / Math.max(1, mlmTotal), nspAccuracy: nspRight / Math.max(1, nspTotal) };
  };
  const report = (e: BertEvaluation): void => {
    if (o.json === true) stdout.write(`${JSON.stringify({ type: 'eval', ...e })}\n`);
    else stdout.write(`eval @ ${e.iter}: held-out loss ${e.loss.toFixed(4)}, MLM accuracy ${(100 * e.mlmAccuracy).toFixed(1)}%, NSP accuracy ${(100 * e.nspAccuracy).toFixed(1)}%\n`);
  };

  const optimizer = new AdamW(model.namedParameters(), { lr: o.lr, weightDecay: 0.01 });
  const schedule = cosineWithWarmup({ lr: o.lr, minLr: o.lr / 10, warmupIters: o.warmupIters, lrDecayIters: Math.max(o.maxIters, o.warmupIters) });
  model.train();
  let trainLoss = NaN;
  let last = evaluate(0);
  report(last);
  for (let iter = 0; iter < o.maxIters; iter++) {
    optimizer.lr = schedule(iter);
    const b = drawBatch(sampler, masker, o.batchSize, o.maxLength);
    const out = model.forward(b.ids, b);
    const loss = out.loss!;
    trainLoss = loss.item();
    if (!Number.isFinite(trainLoss)) throw new Error(`loss is ${trainLoss} at iteration ${iter}; try a lower --lr`);
    loss.backward();
    clipGradNorm(optimizer, 1.0);
    optimizer.step();
    optimizer.zeroGrad();
    if (o.json === true) stdout.write(`${JSON.stringify({ type: 'iter', iter, loss: trainLoss, mlmLoss: out.mlmLoss!.item(), nspLoss: out.nspLoss!.item(), lr: optimizer.lr })}\n`);
    else if ((iter + 1) % 10 === 0) stdout.write(`iter ${iter + 1}: loss ${trainLoss.toFixed(4)} (MLM ${out.mlmLoss!.item().toFixed(4)}, NSP ${out.nspLoss!.item().toFixed(4)}), lr ${optimizer.lr.toExponential(2)}\n`);
    if ((iter + 1) % o.evalInterval === 0 && iter + 1 < o.maxIters) {
      last = evaluate(iter + 1);
      report(last);
    }
  }
  if (o.maxIters > 0) {
    last = evaluate(o.maxIters);
    report(last);
  }
  mkdirSync(o.outDir, { recursive: true });
  await model.savePretrained(o.outDir);
  tokenizer.save(join(o.outDir, 'tokenizer.json'));
  return { outDir: o.outDir, iterations: o.maxIters, trainLoss, eval: last, numParameters: model.numParameters(), wallSeconds: (performance.now() - started) / 1000 };
}
