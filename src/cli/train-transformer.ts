/**
 * `weft train transformer`: train the original Transformer on a generated digit task (reverse or
 * sort) and report held-out exact match with greedy and beam-search decoding.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { DEFAULT_TRANSFORMER_TRAINING as D, type DigitTask, trainTransformer, type TrainTransformerResult } from '../train/train-transformer.js';
import type { OutputStream } from '../train/progress.js';
import { parseNonNegativeInt, parsePositiveInt, parsePositiveNumber, parseUnitInterval } from './train.js';

interface IO {
  stdout: OutputStream;
  stderr: OutputStream;
}

interface Flags {
  task?: string;
  minLength?: number;
  maxLength?: number;
  dModel?: number;
  nHead?: number;
  nLayer?: number;
  dFf?: number;
  dropout?: number;
  labelSmoothing?: number;
  batchSize?: number;
  maxIters?: number;
  lr?: number;
  warmupIters?: number;
  evalExamples?: number;
  evalInterval?: number;
  targetAccuracy?: number;
  beamSize?: number;
  seed?: number;
  out?: string;
  json?: boolean;
}

const parseAccuracy = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a fraction in (0, 1], e.g. 0.99.');
  return n;
};

export async function runTrainTransformer(flags: Flags, io: IO = { stdout: process.stdout, stderr: process.stderr }): Promise<TrainTransformerResult> {
  const task = flags.task ?? D.task;
  if (task !== 'reverse' && task !== 'sort') throw new InvalidArgumentError(`--task ${task}: expected 'reverse' or 'sort'`);
  const dModel = flags.dModel ?? D.dModel;
  const nHead = flags.nHead ?? D.nHead;
  if (dModel % nHead !== 0 || dModel % 2 !== 0) throw new InvalidArgumentError(`--d-model ${dModel} must be even and divisible by --n-head ${nHead}`);
  const minLength = flags.minLength ?? D.minLength;
  const maxLength = flags.maxLength ?? D.maxLength;
  if (minLength > maxLength) throw new InvalidArgumentError(`--min-length ${minLength} exceeds --max-length ${maxLength}`);
  const result = await trainTransformer({
    task: task as DigitTask,
    minLength,
    maxLength,
    dModel,
    nHead,
    nLayers: flags.nLayer ?? D.nLayers,
    dFF: flags.dFf ?? D.dFF,
    dropout: flags.dropout ?? D.dropout,
    labelSmoothing: flags.labelSmoothing ?? D.labelSmoothing,
    batchSize: flags.batchSize ?? D.batchSize,
    maxIters: flags.maxIters ?? D.maxIters,
    lr: flags.lr ?? D.lr,
    warmupIters: flags.warmupIters ?? D.warmupIters,
    evalExamples: flags.evalExamples ?? D.evalExamples,
    evalInterval: flags.evalInterval ?? D.evalInterval,
    targetAccuracy: flags.targetAccuracy ?? D.targetAccuracy,
    beamSize: flags.beamSize ?? D.beamSize,
    seed: flags.seed ?? D.seed,
    outDir: flags.out ?? 'runs/transformer',
    json: flags.json === true,
    stdout: io.stdout,
  });
  const r = result;
  const line = flags.json
    ? JSON.stringify({ done: true, iter: r.iter, greedy_exact_match: r.greedyExactMatch, beam_exact_match: r.beamExactMatch, seconds: r.wallSeconds })
    : `done at iteration ${r.iter}: held-out exact match ${(100 * r.greedyExactMatch).toFixed(1)}% greedy` +
      (r.beamExactMatch === null ? '' : `, ${(100 * r.beamExactMatch).toFixed(1)}% beam search`) +
      ` on ${r.evalExamples} examples, ${r.wallSeconds.toFixed(1)} s; model in ${r.outDir}`;
  io.stdout.write(`${line}\n`);
  return result;
}

export function registerTrainTransformer(train: Command, io?: IO): void {
  train
    .command('transformer')
    .description('train the original Transformer (Vaswani et al.) on a generated digit task; reports held-out exact match')
    .option('--task <name>', `reverse or sort the digits (default: ${D.task})`)
    .option('--min-length <n>', `shortest digit string (default: ${D.minLength})`, parsePositiveInt)
    .option('--max-length <n>', `longest digit string (default: ${D.maxLength})`, parsePositiveInt)
    .option('--d-model <n>', `model width (default: ${D.dModel})`, parsePositiveInt)
    .option('--n-head <n>', `attention heads (default: ${D.nHead})`, parsePositiveInt)
    .option('--n-layer <n>', `encoder and decoder layers each (default: ${D.nLayers})`, parsePositiveInt)
    .option('--d-ff <n>', `feed-forward width (default: ${D.dFF})`, parsePositiveInt)
    .option('--dropout <p>', `residual and embedding dropout (default: ${D.dropout})`, parseUnitInterval)
    .option('--label-smoothing <x>', `label smoothing of the loss (default: ${D.labelSmoothing})`, parseUnitInterval)
    .option('--batch-size <n>', `examples per step (default: ${D.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training steps at most (default: ${D.maxIters})`, parsePositiveInt)
    .option('--lr <x>', `peak learning rate (default: ${D.lr})`, parsePositiveNumber)
    .option('--warmup-iters <n>', `linear warm-up steps (default: ${D.warmupIters})`, parseNonNegativeInt)
    .option('--eval-examples <n>', `held-out examples scored (default: ${D.evalExamples})`, parsePositiveInt)
    .option('--eval-interval <n>', `score held-out exact match every n steps (default: ${D.evalInterval})`, parsePositiveInt)
    .option('--target-accuracy <x>', `stop once greedy exact match reaches x (default: ${D.targetAccuracy})`, parseAccuracy)
    .option('--beam-size <n>', `beam size of the final evaluation, 0 = skip (default: ${D.beamSize})`, parseNonNegativeInt)
    .option('--seed <n>', `seed (default: ${D.seed})`, parseNonNegativeInt)
    .option('--out <dir>', 'directory for the trained model and result.json (default: runs/transformer)')
    .option('--json', 'one JSON line per evaluation and a final summary line')
    .action(async (flags: Flags) => {
      await runTrainTransformer(flags, io);
    });
}
