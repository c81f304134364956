/**
 * `weft train bert`: pre-train a small BERT with MLM + NSP on a text corpus (documents separated by
 * blank lines), with a WordPiece tokenizer trained on it or loaded with --tokenizer.
 */
import type { Command } from 'commander';
import { BERT_DEFAULTS, trainBert, type TrainBertResult } from '../train/train-bert.js';
import { parseNonNegativeInt, parsePositiveInt, parsePositiveNumber, parseUnitInterval, type CommandIO } from './train.js';

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
  warmupIters?: number;
  evalInterval?: number;
  evalIters?: number;
  dropout?: number;
  seed?: number;
  out?: string;
  json?: boolean;
}

export const DEFAULT_BERT_OUT = 'runs/bert';

export async function runTrainBert(flags: TrainBertFlags, io?: CommandIO): Promise<TrainBertResult> {
  const stdout = io?.stdout ?? process.stdout;
  if (flags.data === undefined) throw new Error('--data: required; pass a UTF-8 text file whose documents are separated by blank lines');
  const r = await trainBert({
    data: flags.data,
    outDir: flags.out ?? DEFAULT_BERT_OUT,
    tokenizer: flags.tokenizer,
    vocabSize: flags.vocabSize,
    hiddenSize: flags.hiddenSize,
    numLayers: flags.nLayer,
    numHeads: flags.nHead,
    intermediateSize: flags.intermediateSize,
    maxLength: flags.maxLength,
    batchSize: flags.batchSize,
    maxIters: flags.maxIters,
    lr: flags.lr,
    warmupIters: flags.warmupIters,
    evalInterval: flags.evalInterval,
    evalBatches: flags.evalIters,
    dropout: flags.dropout,
    seed: flags.seed,
    json: flags.json,
    stdout,
    stderr: io?.stderr ?? process.stderr,
  });
  if (flags.json !== true) {
    stdout.write(`done: ${r.iterations} iterations in ${r.wallSeconds.toFixed(1)} s, train loss ${r.trainLoss.toFixed(4)}; model and tokenizer in ${r.outDir}\n`);
    stdout.write(`try it: weft fill-mask --model ${r.outDir} --text "the [MASK] of the city"\n`);
  }
  return r;
}

const d = BERT_DEFAULTS;

/** Adds `bert` under the `train` command. */
export function registerTrainBert(train: Command, io?: CommandIO): void {
  train
    .command('bert')
    .description('pre-train a small BERT (MLM + NSP) on a text file; documents are separated by blank lines')
    .option('--data <file>', 'UTF-8 text file to train on (required)')
    .option('--tokenizer <path>', 'tokenizer.json, vocab.txt or a directory holding one (default: train WordPiece on --data)')
    .option('--vocab-size <n>', `WordPiece vocabulary size when training the tokenizer (default: ${d.vocabSize})`, parsePositiveInt)
    .option('--hidden-size <n>', `hidden width, a multiple of --n-head (default: ${d.hiddenSize})`, parsePositiveInt)
    .option('--n-layer <n>', `encoder layers (default: ${d.numLayers})`, parsePositiveInt)
    .option('--n-head <n>', `attention heads (default: ${d.numHeads})`, parsePositiveInt)
    .option('--intermediate-size <n>', `feed-forward width (default: ${d.intermediateSize})`, parsePositiveInt)
    .option('--max-length <n>', `tokens per [CLS] A [SEP] B [SEP] example, padding included (default: ${d.maxLength})`, parsePositiveInt)
    .option('--batch-size <n>', `examples per step (default: ${d.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training steps (default: ${d.maxIters})`, parseNonNegativeInt)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, parsePositiveNumber)
    .option('--warmup-iters <n>', `linear warm-up steps (default: ${d.warmupIters})`, parseNonNegativeInt)
    .option('--eval-interval <n>', `evaluate on held-out documents every n steps (default: ${d.evalInterval})`, parsePositiveInt)
    .option('--eval-iters <n>', `held-out batches per evaluation (default: ${d.evalBatches})`, parsePositiveInt)
    .option('--dropout <p>', `dropout probability (default: ${d.dropout})`, parseUnitInterval)
    .option('--seed <n>', `seed for initialisation, masking and pairs (default: ${d.seed})`, parseNonNegativeInt)
    .option('--out <dir>', `run directory: config.json, model.safetensors, tokenizer.json (default: ${DEFAULT_BERT_OUT})`)
    .option('--json', 'print one JSON line per step and per evaluation')
    .action(async (flags: TrainBertFlags) => {
      await runTrainBert(flags, io);
    });
}
