/**
 * `weft train t5`: pre-train a small T5 on a text file with span corruption (the same training flags
 * and conventions as `weft train gpt`; --block-size is the encoder input length). After training it
 * shows one held-out corrupted example, the spans the model fills in greedily and the true ones.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { TrainConfig } from '../train/config.js';
import { DEFAULT_T5_SHAPE, trainT5, type T5Shape, type TrainT5Result } from '../train/train-t5.js';
import { Generator } from '../tensor/random.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parsePositiveNumber, parseUnitInterval, summary, type TrainFlags, loopConfigFromFlags } from './train.js';

export const DEFAULT_T5_OUT = 'runs/t5';

export interface TrainT5Flags extends Omit<TrainFlags, 'nLayer' | 'nHead' | 'nEmbd' | 'bias' | 'tokenizer'> {
  variant?: string;
  dModel?: number;
  dKv?: number;
  dFf?: number;
  numLayers?: number;
  numHeads?: number;
}

const parseVariant = (value: string): 'v1.0' | 'v1.1' => {
  if (value !== 'v1.0' && value !== 'v1.1') throw new InvalidArgumentError('expected v1.0 (ReLU FFN, tied head) or v1.1 (gated GELU, separate head).');
  return value;
};

export async function runTrainT5(flags: TrainT5Flags, io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<TrainT5Result> {
  const config = loopConfigFromFlags(flags);
  const model: Partial<T5Shape> = {
    variant: flags.variant as T5Shape['variant'] | undefined,
    dModel: flags.dModel,
    dKv: flags.dKv,
    dFf: flags.dFf,
    numLayers: flags.numLayers,
    numHeads: flags.numHeads,
    dropout: flags.dropout,
  };
  const result = await trainT5({ config, model, outDir: flags.out ?? DEFAULT_T5_OUT, resume: flags.resume, json: flags.json, stdout: io.stdout, stderr: io.stderr });
  if (!flags.json) {
    io.stdout.write(`${summary(result)}\n`);
    // One held-out example: what the model fills into the sentinels, against the truth.
    const { x, y } = result.dataset.batch('val', 1, result.config.blockSize, new Generator(result.config.seed));
    const tok = result.tokenizer;
    const predicted = result.model.eval().generateGreedy(x, { maxNewTokens: y.shape[1]! });
    io.stdout.write(`input:     ${JSON.stringify(tok.decode(Array.from(x.i32('train t5'))))}\n`);
    io.stdout.write(`predicted: ${JSON.stringify(tok.decode(predicted[0]!))}\n`);
    io.stdout.write(`target:    ${JSON.stringify(tok.decode(Array.from(y.i32('train t5'))))}\n`);
  }
  return result;
}

const d = TrainConfig.parse({ data: '-' });
const m = DEFAULT_T5_SHAPE;

/** Adds `t5` under the `train` command. */
export function registerTrainT5(train: Command, io?: CommandIO): void {
  train
    .command('t5')
    .description('pre-train a small T5 on a text file with span corruption (noise density 0.15, mean span 3, <extra_id_N> sentinels)')
    .option('--data <file>', 'UTF-8 text file to train on (required unless --resume)')
    .option('--variant <v>', `v1.0 (ReLU FFN, tied head) or v1.1 (gated GELU, separate head) (default: ${m.variant})`, parseVariant)
    .option('--d-model <n>', `model width (default: ${m.dModel})`, parsePositiveInt)
    .option('--d-kv <n>', `width of each attention head (default: ${m.dKv})`, parsePositiveInt)
    .option('--d-ff <n>', `feed-forward width (default: ${m.dFf})`, parsePositiveInt)
    .option('--num-layers <n>', `encoder and decoder layers (default: ${m.numLayers})`, parsePositiveInt)
    .option('--num-heads <n>', `attention heads (default: ${m.numHeads})`, parsePositiveInt)
    .option('--block-size <n>', `encoder input length in tokens after corruption (default: ${d.blockSize})`, parsePositiveInt)
    .option('--batch-size <n>', `examples per micro-batch (default: ${d.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training iterations (default: ${d.maxIters})`, parseNonNegativeInt)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, parsePositiveNumber)
    .option('--min-lr <x>', `learning rate at the end of the cosine decay (default: ${d.minLr})`, parseNonNegativeNumber)
    .option('--warmup-iters <n>', `linear warm-up iterations (default: ${d.warmupIters})`, parseNonNegativeInt)
    .option('--lr-decay-iters <n>', `iteration where the cosine decay reaches --min-lr (default: ${d.lrDecayIters})`, parsePositiveInt)
    .option('--eval-interval <n>', `evaluate and checkpoint every n iterations (default: ${d.evalInterval})`, parsePositiveInt)
    .option('--eval-iters <n>', `batches per split in each evaluation (default: ${d.evalIters})`, parsePositiveInt)
    .option('--log-interval <n>', `plain-text progress line every n iterations (default: ${d.logInterval})`, parsePositiveInt)
    .option('--dropout <p>', `dropout probability (default: ${m.dropout})`, parseUnitInterval)
    .option('--weight-decay <x>', `AdamW weight decay (default: ${d.weightDecay})`, parseNonNegativeNumber)
    .option('--beta1 <x>', `AdamW β1 (default: ${d.beta1})`, parseUnitInterval)
    .option('--beta2 <x>', `AdamW β2 (default: ${d.beta2})`, parseUnitInterval)
    .option('--grad-clip <x>', `clip the global gradient norm to x; 0 = off (default: ${d.gradClip})`, parseNonNegativeNumber)
    .option('--gradient-accumulation-steps <n>', `micro-batches per iteration (default: ${d.gradientAccumulationSteps})`, parsePositiveInt)
    .option('--seed <n>', `seed for initialisation, batches and dropout (default: ${d.seed})`, parseNonNegativeInt)
    .option('--out <dir>', `run directory for checkpoints and metrics.jsonl (default: ${DEFAULT_T5_OUT})`)
    .option('--resume', 'continue the run in --out where its checkpoint left off')
    .option('--json', 'print one JSON line per iteration and per evaluation instead of the progress bar')
    .action(async (flags: TrainT5Flags) => {
      await runTrainT5(flags, io);
    });
}
