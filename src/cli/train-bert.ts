/**
 * `weft train bert`: pre-train a small BERT with MLM + NSP on a text corpus (documents separated by
 * blank lines), with a WordPiece tokenizer trained on it or loaded with --tokenizer. The same
 * Trainer, conventions and run directory as `weft train gpt` (progress bar or --json lines,
 * metrics.jsonl, checkpoints at every evaluation, --resume); --max-length is the block size.
 */
import type { Command } from 'commander';
import { TrainConfig } from '../train/config.js';
import { BERT_TRAIN_DEFAULTS, DEFAULT_BERT_SHAPE, trainBert, type BertShape, type TrainBertResult } from '../train/train-bert.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parsePositiveNumber, parseUnitInterval, summary, loopConfigFromFlags } from './train.js';

export interface TrainBertFlags {
  data?: string;
  tokenizer?: string;
  vocabSize?: number;
  hiddenSize?: number;
  nLayer?: number;
  nHead?: number;
  intermediateSize?: number;
  maxLength?: number;
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
  out?: string;
  resume?: boolean;
  json?: boolean;
}

export const DEFAULT_BERT_OUT = 'runs/bert';

/** Turns flags into a trainBert call (no commander defaults: an absent flag is undefined, so --resume keeps the saved value). */
export async function runTrainBert(flags: TrainBertFlags, io?: CommandIO): Promise<TrainBertResult> {
  const stdout = io?.stdout ?? process.stdout;
  const config = loopConfigFromFlags({ ...flags, blockSize: flags.maxLength });
  const model: Partial<BertShape> = {
    tokenizer: flags.tokenizer,
    vocabSize: flags.vocabSize,
    hiddenSize: flags.hiddenSize,
    numLayers: flags.nLayer,
    numHeads: flags.nHead,
    intermediateSize: flags.intermediateSize,
    dropout: flags.dropout,
  };
  const r = await trainBert({ config, model, outDir: flags.out ?? DEFAULT_BERT_OUT, resume: flags.resume, json: flags.json, stdout, stderr: io?.stderr ?? process.stderr });
  if (flags.json !== true) {
    stdout.write(`${summary(r)}\n`);
    stdout.write(`try it: weft fill-mask --model ${r.outDir} --text "the [MASK] of the city"\n`);
  }
  return r;
}

const d = { ...TrainConfig.parse({ data: '-' }), ...BERT_TRAIN_DEFAULTS };
const m = DEFAULT_BERT_SHAPE;

/** Adds `bert` under the `train` command. */
export function registerTrainBert(train: Command, io?: CommandIO): void {
  train
    .command('bert')
    .description('pre-train a small BERT (MLM + NSP) on a text file; documents are separated by blank lines')
    .option('--data <file>', 'UTF-8 text file to train on (required unless --resume)')
    .option('--tokenizer <path>', 'tokenizer.json, vocab.txt or a directory holding one (default: train WordPiece on --data)')
    .option('--vocab-size <n>', `WordPiece vocabulary size when training the tokenizer (default: ${m.vocabSize})`, parsePositiveInt)
    .option('--hidden-size <n>', `hidden width, a multiple of --n-head (default: ${m.hiddenSize})`, parsePositiveInt)
    .option('--n-layer <n>', `encoder layers (default: ${m.numLayers})`, parsePositiveInt)
    .option('--n-head <n>', `attention heads (default: ${m.numHeads})`, parsePositiveInt)
    .option('--intermediate-size <n>', `feed-forward width (default: ${m.intermediateSize})`, parsePositiveInt)
    .option('--max-length <n>', `tokens per [CLS] A [SEP] B [SEP] example, padding included (default: ${d.blockSize})`, parsePositiveInt)
    .option('--batch-size <n>', `examples per micro-batch (default: ${d.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training iterations (default: ${d.maxIters})`, parseNonNegativeInt)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, parsePositiveNumber)
    .option('--min-lr <x>', 'learning rate at the end of the cosine decay (default: --lr / 10)', parseNonNegativeNumber)
    .option('--warmup-iters <n>', `linear warm-up iterations (default: ${d.warmupIters})`, parseNonNegativeInt)
    .option('--lr-decay-iters <n>', 'iteration where the cosine decay reaches --min-lr (default: --max-iters of the first run)', parsePositiveInt)
    .option('--eval-interval <n>', `evaluate and checkpoint every n iterations (default: ${d.evalInterval})`, parsePositiveInt)
    .option('--eval-iters <n>', `batches per split in each evaluation (default: ${d.evalIters})`, parsePositiveInt)
    .option('--log-interval <n>', `plain-text progress line every n iterations (default: ${d.logInterval})`, parsePositiveInt)
    .option('--dropout <p>', `dropout probability (default: ${m.dropout})`, parseUnitInterval)
    .option('--weight-decay <x>', `AdamW weight decay (default: ${d.weightDecay})`, parseNonNegativeNumber)
    .option('--beta1 <x>', `AdamW β1 (default: ${d.beta1})`, parseUnitInterval)
    .option('--beta2 <x>', `AdamW β2 (default: ${d.beta2})`, parseUnitInterval)
    .option('--grad-clip <x>', `clip the global gradient norm to x; 0 = off (default: ${d.gradClip})`, parseNonNegativeNumber)
    .option('--gradient-accumulation-steps <n>', `micro-batches per iteration (default: ${d.gradientAccumulationSteps})`, parsePositiveInt)
    .option('--seed <n>', `seed for initialisation, masking, pairs and dropout (default: ${d.seed})`, parseNonNegativeInt)
    .option('--out <dir>', `run directory: config.json, model.safetensors, tokenizer.json, checkpoint, metrics.jsonl (default: ${DEFAULT_BERT_OUT})`)
    .option('--resume', 'continue the run in --out where its checkpoint left off')
    .option('--json', 'print one JSON line per iteration and per evaluation instead of the progress bar')
    .action(async (flags: TrainBertFlags) => {
      await runTrainBert(flags, io);
    });
}
