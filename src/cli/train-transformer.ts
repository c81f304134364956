/**
 * `weft train transformer`: train the original Transformer on a generated digit task (reverse or
 * sort) and report held-out exact match with greedy and beam-search decoding. Training runs on the
 * shared Trainer: progress bar or --json lines, runs/<name>/metrics.jsonl, a checkpoint at every
 * evaluation, exact --resume.
 */
import { type Command, InvalidArgumentError } from 'commander';
import {
  DEFAULT_DIGIT_TASK as T,
  DEFAULT_TRANSFORMER_SHAPE as S,
  TRANSFORMER_TRAIN_DEFAULTS as D,
  trainTransformer,
  type TrainTransformerResult,
} from '../train/train-transformer.js';
import { type CommandIO, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber, parseUnitInterval } from './train.js';

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
  lrDecayIters?: number;
  evalExamples?: number;
  evalInterval?: number;
  evalIters?: number;
  logInterval?: number;
  targetAccuracy?: number;
  beamSize?: number;
  seed?: number;
  out?: string;
  resume?: boolean;
  json?: boolean;
}

export const DEFAULT_TRANSFORMER_OUT = 'runs/transformer';

const parseAccuracy = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a fraction in (0, 1], e.g. 0.99.');
  return n;
};

/** Turns flags into a trainTransformer call (no commander defaults: an absent flag is undefined, so --resume keeps the saved value). */
export async function runTrainTransformer(flags: Flags, io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<TrainTransformerResult> {
  const task = flags.task;
  if (task !== undefined && task !== 'reverse' && task !== 'sort') throw new InvalidArgumentError(`--task ${task}: expected 'reverse' or 'sort'`);
  if (flags.dModel !== undefined || flags.nHead !== undefined) {
    const dModel = flags.dModel ?? S.dModel;
    const nHead = flags.nHead ?? S.nHead;
    if (dModel % nHead !== 0 || dModel % 2 !== 0) throw new InvalidArgumentError(`--d-model ${dModel} must be even and divisible by --n-head ${nHead}`);
  }
  if (flags.minLength !== undefined || flags.maxLength !== undefined) {
    const minLength = flags.minLength ?? T.minLength;
    const maxLength = flags.maxLength ?? T.maxLength;
    if (minLength > maxLength) throw new InvalidArgumentError(`--min-length ${minLength} exceeds --max-length ${maxLength}`);
  }
  const r = await trainTransformer({
    task: {
      task,
      minLength: flags.minLength,
      maxLength: flags.maxLength,
      maxIters: flags.maxIters,
      labelSmoothing: flags.labelSmoothing,
      evalExamples: flags.evalExamples,
      targetAccuracy: flags.targetAccuracy,
      beamSize: flags.beamSize,
    },
    model: { dModel: flags.dModel, nHead: flags.nHead, nLayers: flags.nLayer, dFF: flags.dFf, dropout: flags.dropout },
    config: {
      batchSize: flags.batchSize,
      lr: flags.lr,
      warmupIters: flags.warmupIters,
      lrDecayIters: flags.lrDecayIters,
      evalInterval: flags.evalInterval,
      evalIters: flags.evalIters,
      logInterval: flags.logInterval,
      seed: flags.seed,
    },
    outDir: flags.out ?? DEFAULT_TRANSFORMER_OUT,
    resume: flags.resume,
    json: flags.json,
    stdout: io.stdout,
    stderr: io.stderr,
  });
  const line = flags.json
    ? JSON.stringify({ done: true, iter: r.iter, greedy_exact_match: r.greedyExactMatch, beam_exact_match: r.beamExactMatch, seconds: r.wallSeconds })
    : `done at iteration ${r.iter}: held-out exact match ${(100 * r.greedyExactMatch).toFixed(1)}% greedy` +
      (r.beamExactMatch === null ? '' : `, ${(100 * r.beamExactMatch).toFixed(1)}% beam search`) +
      ` on ${r.evalExamples} examples, ${r.wallSeconds.toFixed(1)} s; model in ${r.outDir}`;
  io.stdout.write(`${line}\n`);
  return r;
}

export function registerTrainTransformer(train: Command, io?: CommandIO): void {
  train
    .command('transformer')
    .description('train the original Transformer (Vaswani et al.) on a generated digit task; reports held-out exact match')
    .option('--task <name>', `reverse or sort the digits (default: ${T.task})`)
    .option('--min-length <n>', `shortest digit string (default: ${T.minLength})`, parsePositiveInt)
    .option('--max-length <n>', `longest digit string (default: ${T.maxLength})`, parsePositiveInt)
    .option('--d-model <n>', `model width (default: ${S.dModel})`, parsePositiveInt)
    .option('--n-head <n>', `attention heads (default: ${S.nHead})`, parsePositiveInt)
    .option('--n-layer <n>', `encoder and decoder layers each (default: ${S.nLayers})`, parsePositiveInt)
    .option('--d-ff <n>', `feed-forward width (default: ${S.dFF})`, parsePositiveInt)
    .option('--dropout <p>', `residual and embedding dropout (default: ${S.dropout})`, parseUnitInterval)
    .option('--label-smoothing <x>', `label smoothing of the loss (default: ${T.labelSmoothing})`, parseUnitInterval)
    .option('--batch-size <n>', `examples per step (default: ${D.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training steps at most (default: ${T.maxIters})`, parsePositiveInt)
    .option('--lr <x>', `peak learning rate (default: ${D.lr})`, parsePositiveNumber)
    .option('--warmup-iters <n>', `linear warm-up steps (default: ${D.warmupIters})`, parseNonNegativeInt)
    .option('--lr-decay-iters <n>', 'step where the cosine decay reaches --lr / 10 (default: --max-iters of the first run)', parsePositiveInt)
    .option('--eval-examples <n>', `held-out examples scored (default: ${T.evalExamples})`, parsePositiveInt)
    .option('--eval-interval <n>', `evaluate, checkpoint and score held-out exact match every n steps (default: ${D.evalInterval})`, parsePositiveInt)
    .option('--eval-iters <n>', `batches per split in each loss evaluation (default: ${D.evalIters})`, parsePositiveInt)
    .option('--log-interval <n>', 'plain-text progress line every n steps (default: 10)', parsePositiveInt)
    .option('--target-accuracy <x>', `stop once greedy exact match reaches x (default: ${T.targetAccuracy})`, parseAccuracy)
    .option('--beam-size <n>', `beam size of the final evaluation, 0 = skip (default: ${T.beamSize})`, parseNonNegativeInt)
    .option('--seed <n>', `seed (default: ${D.seed})`, parseNonNegativeInt)
    .option('--out <dir>', `run directory: model, checkpoint, metrics.jsonl, result.json (default: ${DEFAULT_TRANSFORMER_OUT})`)
    .option('--resume', 'continue the run in --out where its checkpoint left off')
    .option('--json', 'one JSON line per iteration, evaluation and exact-match score, and a final summary line')
    .action(async (flags: Flags) => {
      await runTrainTransformer(flags, io);
    });
}
