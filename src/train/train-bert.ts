/**
 * Pre-training a small BERT on a text corpus with its two objectives, MLM and NSP (BERT §3.1),
 * through the shared Trainer (progress bar / --json lines, runs/<name>/metrics.jsonl, crash-safe
 * checkpoints at every evaluation, exact --resume, stop on a non-finite loss).
 *
 * Documents are separated by blank lines, sentences are a document's lines (or, for a one-line
 * document, its sentence-ending punctuation). A WordPiece tokenizer is trained on the corpus (or
 * loaded) and saved as tokenizer.json in the run directory. Each batch draws NSP pairs and
 * MLM-corrupts them with the generator the Trainer hands in — its `data` generator for training,
 * which the checkpoint saves, so the batch stream resumes exactly. The last tenth of the documents
 * is held out. The run directory holds config.json + model.safetensors (HF BertForPreTraining) and
 * tokenizer.json, which `weft fill-mask` and transformers both read.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { MLM_IGNORE, MLMMasker, type MLMOptions } from '../data/objectives/mlm.js';
import { NSPSampler, type NSPOptions } from '../data/objectives/nsp.js';
import { BertForPreTraining } from '../models/bert.js';
import { noGrad } from '../tensor/autograd.js';
import { argmax } from '../tensor/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { trainTokenizer } from '../tokenizers/trainers/index.js';
import { hasCheckpoint, loadTrainerState } from './checkpoint.js';
import { parseTrainConfig, type TrainConfig, type TrainConfigInput, UsageError, definedOnly } from './config.js';
import { type OutputStream, ProgressReporter, runOutput } from './progress.js';
import { Trainer, type TrainableModel, type TrainResult } from './trainer.js';

/** The model's shape and the tokenizer; fixed for a run (a resumed run reads them from its directory). */
export interface BertShape {
  /** A tokenizer file or directory (tokenizer.json, vocab.txt); default: train WordPiece on the data. */
  tokenizer?: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  dropout: number;
}

export const DEFAULT_BERT_SHAPE: BertShape = { vocabSize: 2000, hiddenSize: 64, numLayers: 2, numHeads: 2, intermediateSize: 256, dropout: 0.1 };

/**
 * Training defaults for a fresh BERT run (the rest are TrainConfig's). --max-length is the
 * Trainer's blockSize. BERT's own recipe: weight decay 0.01, β2 0.999; the cosine decays to lr/10
 * at --max-iters unless --min-lr / --lr-decay-iters say otherwise.
 */
export const BERT_TRAIN_DEFAULTS = {
  blockSize: 64,
  batchSize: 16,
  maxIters: 300,
  lr: 1e-3,
  warmupIters: 30,
  evalInterval: 100,
  evalIters: 4,
  weightDecay: 0.01,
  beta2: 0.999,
  seed: 1337,
} as const satisfies Partial<TrainConfigInput>;

export interface TrainBertOptions {
  /** Training settings; `data` is required unless resuming. */
  config: Partial<TrainConfigInput>;
  model?: Partial<BertShape>;
  outDir: string;
  resume?: boolean;
  json?: boolean;
  stdout?: OutputStream;
  stderr?: OutputStream;
}

/** Held-out MLM and NSP accuracy after training (the same batches every time for a given seed). */
export interface BertAccuracy {
  iter: number;
  val_mlm_accuracy: number;
  val_nsp_accuracy: number;
}

export interface TrainBertResult extends TrainResult {
  outDir: string;
  config: TrainConfig;
  numParameters: number;
  wallSeconds: number;
  accuracy: BertAccuracy;
  model: BertForPreTraining;
  tokenizer: Tokenizer;
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

/** One MLM + NSP batch, unpacked. */
export interface BertBatch {
  ids: Tensor;
  tokenTypeIds: Tensor;
  attentionMask: Tensor;
  mlmLabels: Tensor;
  nspLabels: Tensor;
}

/**
 * NSP pairs with MLM corruption, shaped for the Trainer's `batch(split, B, T, generator) → {x, y}`:
 *
 *   x  i32 [3, B, T]   planes: input ids (after masking), token type ids, attention mask
 *   y  i32 [B, T + 1]  per row: the MLM labels (MLM_IGNORE where nothing is predicted), then the NSP label
 *
 * `unpackBertBatch` turns them back into BertForPreTraining's inputs. Every draw comes from
 * `generator`, so a batch is a function of the generator's state alone.
 */
export class BertPretrainingDataset {
  /** One sampler + masker per (split, generator): they hold the generator they draw from. */
  private readonly drawers = { train: new WeakMap<Generator, Drawer>(), val: new WeakMap<Generator, Drawer>() };

  constructor(
    readonly train: readonly (readonly number[])[][],
    readonly val: readonly (readonly number[])[][],
    private readonly nsp: Omit<NSPOptions, 'generator' | 'maxLength'>,
    private readonly mlm: Omit<MLMOptions, 'generator'>,
  ) {
    // Fail now, naming the split, rather than at the first batch.
    for (const split of ['train', 'val'] as const) {
      try {
        new NSPSampler(this[split], { ...nsp, maxLength: 5 });
      } catch (err) {
        throw new RangeError(`the ${split} split (${this[split].length} documents): ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  batch(split: 'train' | 'val', batchSize: number, blockSize: number, generator: Generator): { x: Tensor; y: Tensor } {
    const B = batchSize;
    const T = blockSize;
    let d = this.drawers[split].get(generator);
    if (d === undefined || d.maxLength !== T) {
      d = { maxLength: T, sampler: new NSPSampler(this[split], { ...this.nsp, maxLength: T, generator }), masker: new MLMMasker({ ...this.mlm, generator }) };
      this.drawers[split].set(generator, d);
    }
    const x = new Int32Array(3 * B * T);
    const y = new Int32Array(B * (T + 1));
    for (let b = 0; b < B; b++) {
      const ex = d.sampler.sample();
      const m = d.masker.mask(ex.ids);
      x.set(m.inputIds, b * T);
      x.set(ex.tokenTypeIds, (B + b) * T);
      x.set(ex.attentionMask, (2 * B + b) * T);
      y.set(m.labels, b * (T + 1));
      y[b * (T + 1) + T] = ex.label;
    }
    return { x: Tensor.fromArray(x, [3, B, T], 'i32'), y: Tensor.fromArray(y, [B, T + 1], 'i32') };
  }
}

interface Drawer {
  maxLength: number;
  sampler: NSPSampler;
  masker: MLMMasker;
}

/** Splits the dataset's packed {x, y} back into BertForPreTraining's named inputs. */
export function unpackBertBatch(x: Tensor, y?: Tensor): Omit<BertBatch, 'mlmLabels' | 'nspLabels'> & Partial<Pick<BertBatch, 'mlmLabels' | 'nspLabels'>> {
  const op = 'unpackBertBatch';
  if (x.shape.length !== 3 || x.shape[0] !== 3) throw new RangeError(`${op}: x must be [3, B, T] (ids, token types, attention mask), got [${x.shape.join(', ')}]`);
  const B = x.shape[1]!;
  const T = x.shape[2]!;
  const xs = x.i32(op);
  const plane = (p: number): Tensor => Tensor.fromArray(xs.slice(p * B * T, (p + 1) * B * T), [B, T], 'i32');
  const inputs = { ids: plane(0), tokenTypeIds: plane(1), attentionMask: plane(2) };
  if (y === undefined) return inputs;
  if (y.shape.length !== 2 || y.shape[0] !== B || y.shape[1] !== T + 1) throw new RangeError(`${op}: y must be [${B}, ${T + 1}] (MLM labels, then the NSP label), got [${y.shape.join(', ')}]`);
  const ys = y.i32(op);
  const labels = new Int32Array(B * T);
  const nsp = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    labels.set(ys.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    nsp[b] = ys[b * (T + 1) + T]!;
  }
  return { ...inputs, mlmLabels: Tensor.fromArray(labels, [B, T], 'i32'), nspLabels: Tensor.fromArray(nsp, [B], 'i32') };
}

/** The Trainer's view of a BERT: forward(x, y) on a packed batch; the loss is MLM + NSP. */
export function trainableBert(model: BertForPreTraining): TrainableModel {
  return {
    forward: (x, y) => {
      const { ids, ...rest } = unpackBertBatch(x, y);
      const out = model.forward(ids, rest);
      return { logits: out.mlmLogits, loss: out.loss };
    },
    train: (mode) => model.train(mode),
    eval: () => model.eval(),
    namedParameters: () => model.namedParameters(),
    savePretrained: (dir) => model.savePretrained(dir),
  };
}

/** Held-out MLM / NSP accuracy over `batches` batches from a generator seeded with `seed`. */
export function bertAccuracy(model: BertForPreTraining, dataset: BertPretrainingDataset, config: TrainConfig, iter: number): BertAccuracy {
  const g = new Generator(config.seed + 2);
  const wasTraining = model.training;
  model.eval();
  let mlmRight = 0;
  let mlmTotal = 0;
  let nspRight = 0;
  let nspTotal = 0;
  try {
    noGrad(() => {
      for (let i = 0; i < config.evalIters; i++) {
        const { x, y } = dataset.batch('val', config.batchSize, config.blockSize, g);
        const b = unpackBertBatch(x, y);
        const out = model.forward(b.ids, b);
        const pred = argmax(out.mlmLogits, -1).i32('bertAccuracy');
        const labels = b.mlmLabels!.i32('bertAccuracy');
        for (let k = 0; k < labels.length; k++) {
          if (labels[k] === MLM_IGNORE) continue;
          mlmTotal++;
          if (pred[k] === labels[k]) mlmRight++;
        }
        const nspPred = argmax(out.nspLogits!, -1).i32('bertAccuracy');
        const nspLabels = b.nspLabels!.i32('bertAccuracy');
        for (let k = 0; k < nspLabels.length; k++) {
          nspTotal++;
          if (nspPred[k] === nspLabels[k]) nspRight++;
        }
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return { iter, val_mlm_accuracy: mlmRight / Math.max(1, mlmTotal), val_nsp_accuracy: nspRight / Math.max(1, nspTotal) };
}

function specialId(tokenizer: Tokenizer, token: string): number {
  const id = tokenizer.tokenToId(token);
  if (id === undefined) throw new UsageError(`--tokenizer: the vocabulary has no ${token} token; BERT needs [PAD], [UNK], [CLS], [SEP] and [MASK]`);
  return id;
}

function readCorpus(path: string): string {
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`--data ${path}: no such file; pass a UTF-8 text file (documents separated by blank lines)`);
  return readFileSync(path, 'utf8');
}


export async function trainBert(options: TrainBertOptions): Promise<TrainBertResult> {
  const started = performance.now();
  const { stdout, stderr, json, note } = runOutput(options);
  const { outDir } = options;
  const resume = options.resume === true;
  const given = definedOnly(options.config);
  const shapeGiven = definedOnly(options.model ?? {});
  const modelGenerator = new Generator(0);
  let config: TrainConfig;
  let tokenizer: Tokenizer;
  let model: BertForPreTraining;
  let text: string;

  if (resume) {
    if (!hasCheckpoint(outDir)) throw new UsageError(`--resume: ${outDir} holds no checkpoint (no trainer_state.json); drop --resume or pass the --out of an existing run`);
    const shapeFlags = Object.keys(shapeGiven);
    if (shapeFlags.length > 0) throw new UsageError(`--resume keeps the saved model and tokenizer: drop the model and tokenizer flags (${shapeFlags.join(', ')})`);
    const state = loadTrainerState(outDir);
    config = parseTrainConfig({ ...state.trainConfig, ...given });
    text = readCorpus(config.data);
    tokenizer = loadTokenizer(outDir);
    model = await BertForPreTraining.fromPretrained(outDir, { generator: modelGenerator });
    model.train();
    note(`resuming ${outDir} at iteration ${state.iter} (max iters ${config.maxIters})`);
  } else {
    if (given.data === undefined) throw new UsageError('--data: required; pass a UTF-8 text file whose documents are separated by blank lines');
    const merged = { ...BERT_TRAIN_DEFAULTS, ...given };
    config = parseTrainConfig({
      ...merged,
      data: given.data,
      minLr: given.minLr ?? merged.lr / 10,
      lrDecayIters: given.lrDecayIters ?? Math.max(merged.maxIters, merged.warmupIters, 1),
    });
    const s: BertShape = { ...DEFAULT_BERT_SHAPE, ...shapeGiven };
    if (s.hiddenSize % s.numHeads !== 0) throw new UsageError(`--hidden-size ${s.hiddenSize} is not divisible by --n-head ${s.numHeads}`);
    text = readCorpus(config.data);
    tokenizer = s.tokenizer !== undefined ? loadTokenizer(s.tokenizer) : trainTokenizer([text], { type: 'wordpiece', vocabSize: s.vocabSize });
    const pad = specialId(tokenizer, '[PAD]');
    modelGenerator.manualSeed(config.seed);
    model = new BertForPreTraining(
      {
        vocabSize: tokenizer.vocabSize,
        hiddenSize: s.hiddenSize,
        numHiddenLayers: s.numLayers,
        numAttentionHeads: s.numHeads,
        intermediateSize: s.intermediateSize,
        maxPositionEmbeddings: config.blockSize,
        hiddenDropoutProb: s.dropout,
        attentionProbsDropoutProb: s.dropout,
        padTokenId: pad,
      },
      { generator: modelGenerator },
    );
    if (hasCheckpoint(outDir)) note(`note: ${outDir} holds a checkpoint; this new run replaces it at its first save (pass --resume to continue it instead)`);
  }
  if (config.blockSize > model.config.maxPositionEmbeddings) throw new UsageError(`--max-length ${config.blockSize} exceeds the model's ${model.config.maxPositionEmbeddings} positions`);
  if (config.blockSize < 5) throw new UsageError(`--max-length ${config.blockSize}: an NSP pair [CLS] A [SEP] B [SEP] needs at least 5 tokens`);

  const [pad, unk, cls, sep, maskId] = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => specialId(tokenizer, t)) as [number, number, number, number, number];
  const docs = splitDocuments(text);
  if (docs.length < 4) throw new UsageError(`--data ${config.data}: ${docs.length} documents; NSP needs at least 4 (separate documents with blank lines)`);
  const encoded = docs.map((d) => d.map((sentence) => tokenizer.encode(sentence, { addSpecialTokens: false })));
  const nVal = Math.max(2, Math.floor(encoded.length / 10));
  let dataset: BertPretrainingDataset;
  try {
    dataset = new BertPretrainingDataset(encoded.slice(0, encoded.length - nVal), encoded.slice(encoded.length - nVal), { clsId: cls, sepId: sep, padId: pad }, { maskId, vocabSize: tokenizer.vocabSize, specialIds: [pad, unk, cls, sep] });
  } catch (err) {
    throw new UsageError(`--data ${config.data}: ${err instanceof Error ? err.message : String(err)}`);
  }

  mkdirSync(outDir, { recursive: true });
  const c = model.config;
  note(`BERT: ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${c.numHiddenLayers} layers, ${c.numAttentionHeads} heads, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, length ${config.blockSize})`);
  note(`data: ${config.data}: ${dataset.train.length} train / ${dataset.val.length} held-out documents; run dir ${outDir}`);
  const progress = new ProgressReporter({ out: stdout, err: stderr, json, maxIters: config.maxIters, logInterval: config.logInterval });
  const trainer = new Trainer({ model: trainableBert(model), tokenizer, dataset, config, outDir, generators: { model: modelGenerator }, progress, resume });
  const result = await trainer.run();
  // After the last checkpoint, from its own generator: this never shifts the training stream.
  const accuracy = bertAccuracy(model, dataset, config, result.iter);
  if (json) stdout.write(`${JSON.stringify(accuracy)}\n`);
  else stdout.write(`held-out @ ${accuracy.iter}: MLM accuracy ${(100 * accuracy.val_mlm_accuracy).toFixed(1)}%, NSP accuracy ${(100 * accuracy.val_nsp_accuracy).toFixed(1)}%\n`);
  return { ...result, outDir, config, numParameters: model.numParameters(), wallSeconds: (performance.now() - started) / 1000, accuracy, model, tokenizer };
}
