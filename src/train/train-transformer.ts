/**
 * Training the original Transformer end to end on a generated seq2seq task: reverse (or sort) a
 * string of digits. Held-out examples are a fixed hash-defined tenth of all digit strings that the
 * training sampler never draws, so exact match on them measures generalisation, not memory.
 * `weft train transformer` is a thin layer over this.
 *
 * Training runs on the shared Trainer, so the run directory follows `weft train gpt`'s
 * conventions: progress bar or --json lines, metrics.jsonl, a crash-safe checkpoint at every
 * evaluation, exact --resume and a stop on a non-finite loss. The digit task's own measure, exact
 * match of greedy decoding on held-out strings, runs between Trainer segments: the Trainer is run
 * up to the next evaluation boundary, the held-out strings are decoded, and the next segment
 * resumes from the checkpoint that boundary just wrote. Resuming is exact, so a segmented run
 * logs and saves exactly what one uninterrupted Trainer run would, and early stopping needs no
 * hook in the Trainer. Decoding draws from no generator, so it never shifts the training stream.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Tokenizer } from '../data/tokenizer.js';
import { writeFileAtomic } from '../io/atomic.js';
import { Transformer } from '../models/transformer.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { hasCheckpoint, loadTrainerState } from './checkpoint.js';
import { parseTrainConfig, type TrainConfig, type TrainConfigInput, UsageError, definedOnly } from './config.js';
import { type OutputStream, ProgressReporter, runOutput } from './progress.js';
import { Trainer, type TrainableModel, type TrainResult } from './trainer.js';

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
/** Digit d is token d + 3. */
const DIGIT0 = 3;
export const DIGIT_VOCAB = 13;

export type DigitTask = 'reverse' | 'sort';

/** The model's shape; fixed for a run (a resumed run reads it from its directory). */
export interface TransformerShape {
  dModel: number;
  nHead: number;
  nLayers: number;
  dFF: number;
  dropout: number;
}

export const DEFAULT_TRANSFORMER_SHAPE: TransformerShape = { dModel: 64, nHead: 4, nLayers: 2, dFF: 256, dropout: 0 };

/**
 * The task and how it is scored; saved as transformer_task.json in the run directory. The task
 * and the string lengths are fixed for a run; the rest may change on --resume.
 */
export const DigitTaskSettings = z.object({
  task: z.enum(['reverse', 'sort']),
  minLength: z.number().int().positive(),
  maxLength: z.number().int().positive(),
  /** Training iterations in all (the checkpoint's own maxIters is the segment's end). */
  maxIters: z.number().int().positive(),
  labelSmoothing: z.number().min(0).lt(1),
  /** Held-out examples scored (greedy decoding, exact match) at each evaluation and at the end. */
  evalExamples: z.number().int().positive(),
  /** Stop early once held-out exact match reaches this. */
  targetAccuracy: z.number().gt(0).max(1),
  /** Beam size of the final beam-search evaluation (0 = skip it). */
  beamSize: z.number().int().nonnegative(),
});
export type DigitTaskSettings = z.infer<typeof DigitTaskSettings>;

export const DEFAULT_DIGIT_TASK: DigitTaskSettings = {
  task: 'reverse',
  minLength: 1,
  maxLength: 10,
  maxIters: 3000,
  labelSmoothing: 0,
  evalExamples: 500,
  targetAccuracy: 0.995,
  beamSize: 4,
};

/** Trainer defaults for a fresh run (the rest are TrainConfig's); the paper's β2 0.98, weight decay 0.01. */
export const TRANSFORMER_TRAIN_DEFAULTS = {
  batchSize: 64,
  lr: 1e-3,
  warmupIters: 100,
  evalInterval: 250,
  evalIters: 4,
  weightDecay: 0.01,
  beta2: 0.98,
  seed: 1,
} as const satisfies Partial<TrainConfigInput>;

export const TASK_FILE = 'transformer_task.json';

/** True for the held-out tenth of digit strings (FNV-1a hash; fixed across runs and seeds). */
export function isHeldOut(digits: readonly number[]): boolean {
  let h = 0x811c9dc5;
  for (const d of [...digits, 10]) h = Math.imul(h ^ d, 0x01000193) >>> 0;
  return h % 10 === 0;
}

export function solve(task: DigitTask, digits: readonly number[]): number[] {
  return task === 'reverse' ? [...digits].reverse() : [...digits].sort((a, b) => a - b);
}

function sample(g: Generator, minLength: number, maxLength: number, heldOut: boolean): number[] {
  for (;;) {
    const len = g.int(minLength, maxLength + 1);
    const digits = Array.from({ length: len }, () => g.int(0, 10));
    if (isHeldOut(digits) === heldOut) return digits;
  }
}

export interface DigitBatch {
  src: Tensor;
  tgtIn: Tensor;
  targets: Tensor;
}

/** src = digits EOS PAD…, tgtIn = BOS answer PAD…, targets = answer EOS PAD…. */
export function encodeBatch(task: DigitTask, examples: readonly number[][], maxLength: number): DigitBatch {
  const B = examples.length;
  const T = maxLength + 1;
  const src = new Int32Array(B * T);
  const tgtIn = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  examples.forEach((digits, b) => {
    const answer = solve(task, digits);
    digits.forEach((d, i) => (src[b * T + i] = d + DIGIT0));
    src[b * T + digits.length] = EOS;
    tgtIn[b * T] = BOS;
    answer.forEach((d, i) => {
      tgtIn[b * T + i + 1] = d + DIGIT0;
      targets[b * T + i] = d + DIGIT0;
    });
    targets[b * T + answer.length] = EOS;
  });
  return { src: Tensor.fromArray(src, [B, T], 'i32'), tgtIn: Tensor.fromArray(tgtIn, [B, T], 'i32'), targets: Tensor.fromArray(targets, [B, T], 'i32') };
}

/**
 * Digit-task batches shaped for the Trainer's `batch(split, B, T, generator) → {x, y}`:
 *
 *   x  i32 [2, B, T]  planes: src, tgtIn
 *   y  i32 [B, T]     targets
 *
 * with T = maxLength + 1. 'train' draws strings outside the held-out tenth, 'val' inside it.
 * Every draw comes from `generator`, so a batch is a function of the generator's state alone.
 */
export class DigitDataset {
  constructor(
    readonly task: DigitTask,
    readonly minLength: number,
    readonly maxLength: number,
  ) {}

  batch(split: 'train' | 'val', batchSize: number, blockSize: number, generator: Generator): { x: Tensor; y: Tensor } {
    const T = this.maxLength + 1;
    if (blockSize !== T) throw new RangeError(`DigitDataset.batch: blockSize ${blockSize} must be maxLength + 1 = ${T}`);
    const examples = Array.from({ length: batchSize }, () => sample(generator, this.minLength, this.maxLength, split === 'val'));
    const { src, tgtIn, targets } = encodeBatch(this.task, examples, this.maxLength);
    const x = new Int32Array(2 * batchSize * T);
    x.set(src.i32('DigitDataset.batch'), 0);
    x.set(tgtIn.i32('DigitDataset.batch'), batchSize * T);
    src.dispose();
    tgtIn.dispose();
    return { x: Tensor.fromArray(x, [2, batchSize, T], 'i32'), y: targets };
  }
}

/** The Trainer's view of a Transformer: forward(x, y) on a packed digit batch. */
export function trainableTransformer(model: Transformer, labelSmoothing: number): TrainableModel {
  return {
    forward: (x, y) => {
      const op = 'trainableTransformer';
      if (x.shape.length !== 3 || x.shape[0] !== 2) throw new RangeError(`${op}: x must be [2, B, T] (src, tgtIn), got [${x.shape.join(', ')}]`);
      const B = x.shape[1]!;
      const T = x.shape[2]!;
      const xs = x.i32(op);
      const src = Tensor.fromArray(xs.slice(0, B * T), [B, T], 'i32');
      const tgtIn = Tensor.fromArray(xs.slice(B * T), [B, T], 'i32');
      // Not disposed here: the embedding's backward still reads the ids.
      return model.forward(src, tgtIn, y, { labelSmoothing });
    },
    train: (mode) => model.train(mode),
    eval: () => model.eval(),
    namedParameters: () => model.namedParameters(),
    savePretrained: (dir) => model.savePretrained(dir),
  };
}

/** Digits as text ("407") ↔ token ids; the run's tokenizer.json. */
export class DigitTokenizer implements Tokenizer {
  readonly vocabSize = DIGIT_VOCAB;

  encode(text: string): number[] {
    return [...text].map((c) => {
      if (!/^[0-9]$/.test(c)) throw new RangeError(`DigitTokenizer.encode: ${JSON.stringify(c)} is not a digit`);
      return Number(c) + DIGIT0;
    });
  }

  decode(ids: readonly number[]): string {
    return ids
      .filter((id) => id >= DIGIT0 && id < DIGIT_VOCAB)
      .map((id) => String(id - DIGIT0))
      .join('');
  }

  toJSON(): unknown {
    return { type: 'weft-digits', pad: PAD, bos: BOS, eos: EOS, digit0: DIGIT0, vocabSize: DIGIT_VOCAB };
  }
}

/** Fraction of examples whose decoded output is exactly the answer. */
export function exactMatch(model: Transformer, task: DigitTask, examples: readonly number[][], maxLength: number, beamSize = 0): number {
  model.eval();
  let correct = 0;
  const chunk = 100;
  for (let i = 0; i < examples.length; i += chunk) {
    const part = examples.slice(i, i + chunk);
    const { src } = encodeBatch(task, part, maxLength);
    const outputs =
      beamSize > 0
        ? part.map((_, b) => model.beamSearch(src.narrow(0, b, 1).contiguous(), { beamSize, maxNewTokens: maxLength + 1 }))
        : model.greedyDecode(src, maxLength + 1);
    part.forEach((digits, b) => {
      const want = solve(task, digits).map((d) => d + DIGIT0);
      const got = outputs[b]!;
      if (got.length === want.length && got.every((t, j) => t === want[j])) correct++;
    });
  }
  model.train();
  return correct / examples.length;
}

/** The fixed held-out strings scored by exact match (the same for every run and seed). */
export function heldOutExamples(n: number, minLength: number, maxLength: number): number[][] {
  const g = new Generator(0x5eed);
  return Array.from({ length: n }, () => sample(g, minLength, maxLength, true));
}

export interface TrainTransformerOptions {
  /** The task and its scoring; on --resume only maxIters, labelSmoothing, evalExamples, targetAccuracy and beamSize may change. */
  task?: Partial<DigitTaskSettings>;
  model?: Partial<TransformerShape>;
  /** Trainer settings (data and blockSize are set from the task). */
  config?: Partial<Omit<TrainConfigInput, 'data' | 'blockSize' | 'maxIters'>>;
  outDir: string;
  resume?: boolean;
  json?: boolean;
  stdout?: OutputStream;
  stderr?: OutputStream;
}

/** One held-out exact-match measurement, printed with --json. */
export interface ExactMatchRecord {
  iter: number;
  exact_match: number;
  seconds: number;
}

export interface TrainTransformerResult {
  iter: number;
  loss: number;
  valLoss: number | null;
  greedyExactMatch: number;
  beamExactMatch: number | null;
  evalExamples: number;
  wallSeconds: number;
  numParameters: number;
  outDir: string;
  config: TrainConfig;
  task: DigitTaskSettings;
}


function readTaskSettings(outDir: string): DigitTaskSettings {
  const path = join(outDir, TASK_FILE);
  if (!existsSync(path)) throw new UsageError(`--resume: ${path} is missing; ${outDir} is not a 'weft train transformer' run`);
  const parsed = DigitTaskSettings.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new UsageError(`${path}: not a digit-task description (${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message})`);
  return parsed.data;
}

export async function trainTransformer(options: TrainTransformerOptions): Promise<TrainTransformerResult> {
  const started = performance.now();
  const { stdout, stderr, json, note } = runOutput(options);
  const { outDir } = options;
  const resume = options.resume === true;
  const given = definedOnly(options.config ?? {});
  const taskGiven = definedOnly(options.task ?? {});
  const modelGenerator = new Generator(0);
  let config: TrainConfig;
  let task: DigitTaskSettings;
  let model: Transformer;

  if (resume) {
    if (!hasCheckpoint(outDir)) throw new UsageError(`--resume: ${outDir} holds no checkpoint (no trainer_state.json); drop --resume or pass the --out of an existing run`);
    const shapeFlags = Object.keys(definedOnly(options.model ?? {}));
    const fixed = (['task', 'minLength', 'maxLength'] as const).filter((k) => k in taskGiven);
    if (shapeFlags.length + fixed.length > 0) throw new UsageError(`--resume keeps the saved model and task: drop the model and task flags (${[...shapeFlags, ...fixed].join(', ')})`);
    const state = loadTrainerState(outDir);
    task = DigitTaskSettings.parse({ ...readTaskSettings(outDir), ...taskGiven });
    config = parseTrainConfig({ ...state.trainConfig, ...given });
    model = await Transformer.fromPretrained(outDir, { generator: modelGenerator });
    model.train();
    note(`resuming ${outDir} at iteration ${state.iter} (max iters ${task.maxIters})`);
  } else {
    const t = { ...DEFAULT_DIGIT_TASK, ...taskGiven };
    if (t.minLength < 1 || t.maxLength < t.minLength) throw new UsageError(`--min-length ${t.minLength} / --max-length ${t.maxLength}: need 1 ≤ min ≤ max`);
    const parsedTask = DigitTaskSettings.safeParse(t);
    if (!parsedTask.success) throw new UsageError(`${parsedTask.error.issues[0]!.path.join('.')}: ${parsedTask.error.issues[0]!.message}`);
    task = parsedTask.data;
    const merged = { ...TRANSFORMER_TRAIN_DEFAULTS, ...given };
    const lrDecayIters = given.lrDecayIters ?? task.maxIters;
    config = parseTrainConfig({
      ...merged,
      data: `digits:${task.task}:${task.minLength}-${task.maxLength}`,
      blockSize: task.maxLength + 1,
      maxIters: task.maxIters,
      minLr: given.minLr ?? merged.lr / 10,
      warmupIters: Math.min(merged.warmupIters, lrDecayIters),
      lrDecayIters,
    });
    const s: TransformerShape = { ...DEFAULT_TRANSFORMER_SHAPE, ...definedOnly(options.model ?? {}) };
    if (s.dModel % s.nHead !== 0 || s.dModel % 2 !== 0) throw new UsageError(`--d-model ${s.dModel} must be even and divisible by --n-head ${s.nHead}`);
    modelGenerator.manualSeed(config.seed);
    model = new Transformer(
      {
        srcVocabSize: DIGIT_VOCAB,
        tgtVocabSize: DIGIT_VOCAB,
        dModel: s.dModel,
        nHead: s.nHead,
        nEncoderLayers: s.nLayers,
        nDecoderLayers: s.nLayers,
        dFF: s.dFF,
        maxLength: task.maxLength + 2,
        dropout: s.dropout,
        shareEmbeddings: true,
        padId: PAD,
        bosId: BOS,
        eosId: EOS,
      },
      { generator: modelGenerator },
    );
    if (hasCheckpoint(outDir)) note(`note: ${outDir} holds a checkpoint; this new run replaces it at its first save (pass --resume to continue it instead)`);
  }
  mkdirSync(outDir, { recursive: true });
  await writeFileAtomic(join(outDir, TASK_FILE), `${JSON.stringify(task, null, 2)}\n`);

  const dataset = new DigitDataset(task.task, task.minLength, task.maxLength);
  const heldOut = heldOutExamples(task.evalExamples, task.minLength, task.maxLength);
  const tokenizer = new DigitTokenizer();
  const trainable = trainableTransformer(model, task.labelSmoothing);
  note(`Transformer: ${(model.numParameters() / 1e6).toFixed(3)}M parameters; task ${task.task} of ${task.minLength}–${task.maxLength} digits; ${task.evalExamples} held-out examples; run dir ${outDir}`);
  const progress = new ProgressReporter({ out: stdout, err: stderr, json, maxIters: task.maxIters, logInterval: config.logInterval });

  let iter = resume ? loadTrainerState(outDir).iter : 0;
  let accuracy: number | null = null;
  let last: TrainResult | null = null;
  let firstSegment = true;
  // Segments end at evaluation boundaries (where the Trainer evaluates and checkpoints anyway).
  while (iter < task.maxIters || firstSegment) {
    const end = Math.min(task.maxIters, (Math.floor(iter / config.evalInterval) + 1) * config.evalInterval);
    const segment = { ...config, maxIters: Math.max(end, iter) };
    const trainer = new Trainer({ model: trainable, tokenizer, dataset, config: segment, outDir, generators: { model: modelGenerator }, progress, resume: resume || !firstSegment });
    last = await trainer.run();
    firstSegment = false;
    iter = last.iter;
    accuracy = exactMatch(model, task.task, heldOut, task.maxLength);
    const record: ExactMatchRecord = { iter, exact_match: accuracy, seconds: (performance.now() - started) / 1000 };
    if (json) stdout.write(`${JSON.stringify(record)}\n`);
    else stdout.write(`held-out @ ${iter}: exact match ${(100 * accuracy).toFixed(1)}% (${record.seconds.toFixed(1)} s)\n`);
    if (accuracy >= task.targetAccuracy) break;
  }
  const greedyExactMatch = accuracy ?? exactMatch(model, task.task, heldOut, task.maxLength);
  const beamExactMatch = task.beamSize > 0 ? exactMatch(model, task.task, heldOut, task.maxLength, task.beamSize) : null;
  const state = loadTrainerState(outDir);
  const result: TrainTransformerResult = {
    iter,
    loss: last?.trainLoss ?? NaN,
    valLoss: last?.valLoss ?? null,
    greedyExactMatch,
    beamExactMatch,
    evalExamples: task.evalExamples,
    wallSeconds: (performance.now() - started) / 1000,
    numParameters: model.numParameters(),
    outDir,
    config: { ...state.trainConfig, maxIters: task.maxIters },
    task,
  };
  const record = {
    task: task.task,
    iter,
    loss: result.loss,
    valLoss: result.valLoss,
    greedyExactMatch,
    beamExactMatch,
    evalExamples: task.evalExamples,
    wallSeconds: result.wallSeconds,
    numParameters: result.numParameters,
  };
  await writeFileAtomic(join(outDir, 'result.json'), `${JSON.stringify(record, null, 2)}\n`);
  return result;
}
