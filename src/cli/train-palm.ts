/**
 * `weft train palm`: pre-train a PaLM-style model on a text file, with `weft train gpt`'s training
 * flags, run directory, checkpoints and --json output; the model flags are PaLM's.
 */
import type { Command } from 'commander';
import { DEFAULT_PALM_SHAPE as M, trainPaLM, type TrainPaLMResult } from '../train/train-palm.js';
import { TrainConfig } from '../train/config.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parsePositiveNumber, summary, loopConfigFromFlags } from './train.js';

interface Flags {
  data?: string;
  nLayer?: number;
  nHead?: number;
  nEmbd?: number;
  ffnDim?: number;
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
  weightDecay?: number;
  gradClip?: number;
  gradientAccumulationSteps?: number;
  seed?: number;
  out?: string;
  resume?: boolean;
  json?: boolean;
}

export const DEFAULT_PALM_OUT = 'runs/palm';

export async function runTrainPaLM(flags: Flags, io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<TrainPaLMResult> {
  const config = loopConfigFromFlags(flags);
  const result = await trainPaLM({
    config,
    model: { nLayer: flags.nLayer, nHead: flags.nHead, nEmbd: flags.nEmbd, ffnDim: flags.ffnDim },
    outDir: flags.out ?? DEFAULT_PALM_OUT,
    resume: flags.resume,
    json: flags.json,
    stdout: io.stdout,
    stderr: io.stderr,
  });
  if (!flags.json) io.stdout.write(`${summary(result)}\n`);
  return result;
}

const d = TrainConfig.parse({ data: '-' });

export function registerTrainPaLM(train: Command, io?: CommandIO): void {
  train
    .command('palm')
    .description('pre-train a PaLM-style model (parallel blocks, multi-query attention, SwiGLU, RoPE, no biases, tied embeddings) on a text file')
    .option('--data <file>', 'UTF-8 text file (or `weft data prepare` shard directory) to train on (required unless --resume)')
    .option('--n-layer <n>', `parallel blocks (default: ${M.nLayer})`, parsePositiveInt)
    .option('--n-head <n>', `query heads (one key/value head is shared) (default: ${M.nHead})`, parsePositiveInt)
    .option('--n-embd <n>', `embedding width; n-embd / n-head must be even (default: ${M.nEmbd})`, parsePositiveInt)
    .option('--ffn-dim <n>', 'SwiGLU hidden width (default: 4 × n-embd)', parsePositiveInt)
    .option('--block-size <n>', `context length in tokens (default: ${d.blockSize})`, parsePositiveInt)
    .option('--batch-size <n>', `sequences per micro-batch (default: ${d.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training iterations (default: ${d.maxIters})`, parseNonNegativeInt)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, parsePositiveNumber)
    .option('--min-lr <x>', `learning rate at the end of the cosine decay (default: ${d.minLr})`, parseNonNegativeNumber)
    .option('--warmup-iters <n>', `linear warm-up iterations (default: ${d.warmupIters})`, parseNonNegativeInt)
    .option('--lr-decay-iters <n>', `iteration where the cosine decay reaches --min-lr (default: ${d.lrDecayIters})`, parsePositiveInt)
    .option('--eval-interval <n>', `evaluate and checkpoint every n iterations (default: ${d.evalInterval})`, parsePositiveInt)
    .option('--eval-iters <n>', `batches per split in each evaluation (default: ${d.evalIters})`, parsePositiveInt)
    .option('--log-interval <n>', `progress line every n iterations (default: ${d.logInterval})`, parsePositiveInt)
    .option('--weight-decay <x>', `AdamW weight decay (default: ${d.weightDecay})`, parseNonNegativeNumber)
    .option('--grad-clip <x>', `clip the global gradient norm; 0 = off (default: ${d.gradClip})`, parseNonNegativeNumber)
    .option('--gradient-accumulation-steps <n>', `micro-batches per iteration (default: ${d.gradientAccumulationSteps})`, parsePositiveInt)
    .option('--seed <n>', `seed (default: ${d.seed})`, parseNonNegativeInt)
    .option('--out <dir>', `run directory (default: ${DEFAULT_PALM_OUT})`)
    .option('--resume', 'continue the run in --out where its checkpoint left off')
    .option('--json', 'one JSON line per iteration and per evaluation')
    .action(async (flags: Flags) => {
      await runTrainPaLM(flags, io);
    });
}
