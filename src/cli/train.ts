/**
 * `weft train gpt`: pre-train a GPT on a text file. Flag names and defaults follow nanoGPT's
 * train.py options and its CPU `train_shakespeare_char` run (no biases unless --bias).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { DEFAULT_GPT_SHAPE, type GPTShape, trainGPT, type TrainGPTResult } from '../train/train-gpt.js';
import { definedOnly, TrainConfig, type TrainConfigInput } from '../train/config.js';
import type { OutputStream } from '../train/progress.js';
import type { MoEConfigInput } from '../nn/moe.js';
import { registerTrainBert } from './train-bert.js';
import { registerTrainT5 } from './train-t5.js';
import { registerTrainLlama } from './train-llama.js';
import { registerTrainTransformer } from './train-transformer.js';
import { registerTrainPaLM } from './train-palm.js';
import { registerTrainEmbedder } from './train-embedder.js';

export interface CommandIO {
  stdout: OutputStream;
  stderr: OutputStream;
}

const defaultIO = (): CommandIO => ({ stdout: process.stdout, stderr: process.stderr });

/** Commander argument parsers whose errors say what the flag takes. */
export const parsePositiveInt = (value: string): number => {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer, e.g. 4.');
  return n;
};
export const parseNonNegativeInt = (value: string): number => {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected an integer ≥ 0, e.g. 0 or 100.');
  return n;
};
export const parsePositiveNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number > 0, e.g. 1e-3.');
  return n;
};
export const parseNonNegativeNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0, e.g. 0.1.');
  return n;
};
export const parseTopP = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a number in (0, 1], e.g. 0.9.');
  return n;
};
export const parseUnitInterval = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('expected a number in [0, 1), e.g. 0.9.');
  return n;
};

/** Raw option values as commander hands them over (undefined = flag not given). */
export interface TrainFlags {
  data?: string;
  tokenizer?: string;
  nLayer?: number;
  nHead?: number;
  nEmbd?: number;
  blockSize?: number;
  batchSize?: number;
  maxIters?: number;
  lr?: number;
  minLr?: number;
  warmupIters?: number;
  lrDecayIters?: number;
  evalInterval?: number;
  evalIters?: number;
  logInterval?: number;
  dropout?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  gradClip?: number;
  gradientAccumulationSteps?: number;
  seed?: number;
  bias?: boolean;
  moeExperts?: number;
  moeTopK?: number;
  moeEvery?: number;
  moeExpertHidden?: number;
  moeCapacityFactor?: number | null;
  moeAuxCoef?: number;
  moeZCoef?: number;
  out?: string;
  resume?: boolean;
  json?: boolean;
}

export const DEFAULT_OUT = 'runs/gpt';

/** The training-loop flags every `weft train <family>` shares. */
export type LoopFlags = Pick<
  TrainFlags,
  | 'data'
  | 'batchSize'
  | 'blockSize'
  | 'maxIters'
  | 'lr'
  | 'minLr'
  | 'warmupIters'
  | 'lrDecayIters'
  | 'evalInterval'
  | 'evalIters'
  | 'logInterval'
  | 'weightDecay'
  | 'beta1'
  | 'beta2'
  | 'gradClip'
  | 'gradientAccumulationSteps'
  | 'seed'
>;

/** The TrainConfig fields given on the command line (absent flags left out, so --resume keeps saved values). */
export function loopConfigFromFlags(flags: LoopFlags): Partial<TrainConfigInput> {
  return definedOnly({
    data: flags.data,
    batchSize: flags.batchSize,
    blockSize: flags.blockSize,
    maxIters: flags.maxIters,
    lr: flags.lr,
    minLr: flags.minLr,
    warmupIters: flags.warmupIters,
    lrDecayIters: flags.lrDecayIters,
    evalInterval: flags.evalInterval,
    evalIters: flags.evalIters,
    logInterval: flags.logInterval,
    weightDecay: flags.weightDecay,
    beta1: flags.beta1,
    beta2: flags.beta2,
    gradClip: flags.gradClip,
    gradientAccumulationSteps: flags.gradientAccumulationSteps,
    seed: flags.seed,
  });
}


/** Turns flags into a trainGPT call (no commander defaults: an absent flag is undefined, so --resume keeps the saved value). */
export async function runTrain(flags: TrainFlags, io: CommandIO = defaultIO()): Promise<TrainGPTResult> {
  if (flags.tokenizer !== undefined && flags.tokenizer !== 'char') {
    throw new InvalidArgumentError(`--tokenizer ${flags.tokenizer}: only 'char' is available (BPE tokenizers come later); pass --tokenizer char`);
  }
  const config: Partial<TrainConfigInput> = { ...loopConfigFromFlags(flags), ...definedOnly({ tokenizer: flags.tokenizer as 'char' | undefined }) };
  const model: Partial<GPTShape> = { nLayer: flags.nLayer, nHead: flags.nHead, nEmbd: flags.nEmbd, dropout: flags.dropout, bias: flags.bias };
  const result = await trainGPT({
    config,
    model,
    moe: moeFromFlags(flags),
    outDir: flags.out ?? DEFAULT_OUT,
    resume: flags.resume,
    json: flags.json,
    stdout: io.stdout,
    stderr: io.stderr,
  });
  if (!flags.json) {
    io.stdout.write(`${summary(result)}\n`);
    io.stdout.write(`sample from it: weft sample ${result.outDir} --prompt "ROMEO:" --max-new-tokens 200\n`);
  }
  return result;
}

/** The --moe-* flags as a GPT-MoE config (undefined when none is given: a dense GPT, or the checkpoint's model on --resume). */
export function moeFromFlags(flags: TrainFlags): MoEConfigInput | undefined {
  const given = definedOnly({
    topK: flags.moeTopK,
    every: flags.moeEvery,
    expertHidden: flags.moeExpertHidden,
    capacityFactor: flags.moeCapacityFactor,
    auxLossCoef: flags.moeAuxCoef,
    zLossCoef: flags.moeZCoef,
  });
  if (flags.moeExperts === undefined) {
    if (Object.keys(given).length > 0 && flags.resume !== true) {
      throw new InvalidArgumentError('the --moe-* flags need --moe-experts <n> (e.g. --moe-experts 8 --moe-top-k 2)');
    }
    return Object.keys(given).length > 0 ? (given as MoEConfigInput) : undefined;
  }
  return { nExperts: flags.moeExperts, ...given };
}

/** --moe-capacity-factor: a number > 0, or 'dropless' (also 0) for no capacity limit. */
export const parseCapacityFactor = (value: string): number | null => {
  if (value.trim() === 'dropless' || value.trim() === '0') return null;
  return parsePositiveNumber(value);
};

export function summary(r: TrainGPTResult): string {
  const losses = r.valLoss === null ? '' : `train loss ${r.trainLoss!.toFixed(4)}, val loss ${r.valLoss.toFixed(4)}; `;
  return `done at iteration ${r.iter}: ${losses}${r.msPerIter.toFixed(1)} ms/iter over ${r.iterations} iterations, ${formatWall(r.wallSeconds)} in all; checkpoint in ${r.outDir}`;
}

function formatWall(s: number): string {
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

const d = TrainConfig.parse({ data: '-' });
const m = DEFAULT_GPT_SHAPE;

export function registerTrain(program: Command, io?: CommandIO): void {
  const train = program.command('train').description('train a model');
  registerTrainBert(train, io);
  registerTrainT5(train, io);
  registerTrainLlama(train, io);
  registerTrainTransformer(train, io);
  registerTrainPaLM(train, io);
  registerTrainEmbedder(train, io);
  train
    .command('gpt')
    .description('pre-train a GPT on a text file (nanoGPT\'s options; defaults: its CPU shakespeare_char run)')
    .option('--data <file>', 'UTF-8 text file to train on (required unless --resume)')
    .option('--tokenizer <kind>', 'tokenizer: char (default: char)')
    .option('--n-layer <n>', `transformer blocks (default: ${m.nLayer})`, parsePositiveInt)
    .option('--n-head <n>', `attention heads (default: ${m.nHead})`, parsePositiveInt)
    .option('--n-embd <n>', `embedding width, a multiple of --n-head (default: ${m.nEmbd})`, parsePositiveInt)
    .option('--block-size <n>', `context length in tokens (default: ${d.blockSize})`, parsePositiveInt)
    .option('--batch-size <n>', `sequences per micro-batch (default: ${d.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training iterations (default: ${d.maxIters})`, parseNonNegativeInt)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, parsePositiveNumber)
    .option('--min-lr <x>', `learning rate at the end of the cosine decay (default: ${d.minLr})`, parseNonNegativeNumber)
    .option('--warmup-iters <n>', `linear warm-up iterations (default: ${d.warmupIters})`, parseNonNegativeInt)
    .option('--lr-decay-iters <n>', `iteration where the cosine decay reaches --min-lr (default: ${d.lrDecayIters})`, parsePositiveInt)
    .option('--eval-interval <n>', `evaluate and checkpoint every n iterations (default: ${d.evalInterval})`, parsePositiveInt)
    .option('--eval-iters <n>', `batches per split in each evaluation (default: ${d.evalIters})`, parsePositiveInt)
    .option('--log-interval <n>', `plain-text progress line every n iterations (default: ${d.logInterval})`, parsePositiveInt)
    .option('--dropout <p>', `dropout probability (default: ${m.dropout})`, parseUnitInterval)
    .option('--weight-decay <x>', `AdamW weight decay on matrices and embeddings (default: ${d.weightDecay})`, parseNonNegativeNumber)
    .option('--beta1 <x>', `AdamW β1 (default: ${d.beta1})`, parseUnitInterval)
    .option('--beta2 <x>', `AdamW β2 (default: ${d.beta2})`, parseUnitInterval)
    .option('--grad-clip <x>', `clip the global gradient norm to x; 0 = off (default: ${d.gradClip})`, parseNonNegativeNumber)
    .option('--gradient-accumulation-steps <n>', `micro-batches per iteration (default: ${d.gradientAccumulationSteps})`, parsePositiveInt)
    .option('--seed <n>', `seed for initialisation, batches and dropout (default: ${d.seed})`, parseNonNegativeInt)
    .option('--bias', 'biases in Linear and LayerNorm layers (default: off, as nanoGPT\'s shakespeare_char)')
    .option('--moe-experts <n>', 'GPT-MoE: experts per routed FFN (default: none, a dense GPT)', parsePositiveInt)
    .option('--moe-top-k <n>', 'GPT-MoE: experts per token (default: 2)', parsePositiveInt)
    .option('--moe-every <n>', 'GPT-MoE: a routed FFN in every n-th block (default: 2, every other)', parsePositiveInt)
    .option('--moe-expert-hidden <n>', 'GPT-MoE: hidden width of each expert (default: 4·n-embd)', parsePositiveInt)
    .option('--moe-capacity-factor <x>', "GPT-MoE: training capacity factor, or 'dropless' (default: 1.25; eval is dropless)", parseCapacityFactor)
    .option('--moe-aux-coef <x>', 'GPT-MoE: load-balancing loss coefficient α (default: 0.01)', parseNonNegativeNumber)
    .option('--moe-z-coef <x>', 'GPT-MoE: router z-loss coefficient (default: 0.001)', parseNonNegativeNumber)
    .option('--out <dir>', `run directory for checkpoints and metrics.jsonl (default: ${DEFAULT_OUT})`)
    .option('--resume', 'continue the run in --out exactly where its checkpoint left off')
    .option('--json', 'print one JSON line per iteration and per evaluation instead of the progress bar')
    .action(async (flags: TrainFlags) => {
      await runTrain(flags, io);
    });
}
