/**
 * Training the original Transformer end to end on a generated seq2seq task: reverse (or sort) a
 * string of digits. Held-out examples are a fixed hash-defined tenth of all digit strings that the
 * training sampler never draws, so exact match on them measures generalisation, not memory.
 * `weft train transformer` is a thin layer over this.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transformer } from '../models/transformer.js';
import { AdamW, clipGradNorm, cosineWithWarmup } from '../optim/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import type { OutputStream } from './progress.js';

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
/** Digit d is token d + 3. */
const DIGIT0 = 3;
export const DIGIT_VOCAB = 13;

export type DigitTask = 'reverse' | 'sort';

export interface TrainTransformerOptions {
  task: DigitTask;
  minLength: number;
  maxLength: number;
  dModel: number;
  nHead: number;
  nLayers: number;
  dFF: number;
  dropout: number;
  batchSize: number;
  maxIters: number;
  lr: number;
  warmupIters: number;
  labelSmoothing: number;
  /** Held-out examples scored (greedy decoding, exact match) at each evaluation and at the end. */
  evalExamples: number;
  evalInterval: number;
  /** Stop early once held-out exact match reaches this (1 = never stop early). */
  targetAccuracy: number;
  /** Beam size of the final beam-search evaluation (0 = skip it). */
  beamSize: number;
  seed: number;
  outDir: string;
  json: boolean;
  stdout: OutputStream;
}

export const DEFAULT_TRANSFORMER_TRAINING: Omit<TrainTransformerOptions, 'outDir' | 'stdout'> = {
  task: 'reverse',
  minLength: 1,
  maxLength: 10,
  dModel: 64,
  nHead: 4,
  nLayers: 2,
  dFF: 256,
  dropout: 0,
  batchSize: 64,
  maxIters: 3000,
  lr: 1e-3,
  warmupIters: 100,
  labelSmoothing: 0,
  evalExamples: 500,
  evalInterval: 250,
  targetAccuracy: 0.995,
  beamSize: 4,
  seed: 1,
  json: false,
};

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

export interface TrainTransformerResult {
  iter: number;
  loss: number;
  greedyExactMatch: number;
  beamExactMatch: number | null;
  evalExamples: number;
  wallSeconds: number;
  numParameters: number;
  outDir: string;
}

export async function trainTransformer(o: TrainTransformerOptions): Promise<TrainTransformerResult> {
  const started = performance.now();
  const log = (record: Record<string, unknown>, text: string): void => void o.stdout.write(o.json ? `${JSON.stringify(record)}\n` : `${text}\n`);
  if (o.minLength < 1 || o.maxLength < o.minLength) throw new RangeError(`--min-length ${o.minLength} / --max-length ${o.maxLength}: need 1 ≤ min ≤ max`);
  const model = new Transformer(
    {
      srcVocabSize: DIGIT_VOCAB,
      tgtVocabSize: DIGIT_VOCAB,
      dModel: o.dModel,
      nHead: o.nHead,
      nEncoderLayers: o.nLayers,
      nDecoderLayers: o.nLayers,
      dFF: o.dFF,
      maxLength: o.maxLength + 2,
      dropout: o.dropout,
      shareEmbeddings: true,
      padId: PAD,
      bosId: BOS,
      eosId: EOS,
    },
    { generator: new Generator(o.seed) },
  );
  const data = new Generator(o.seed + 1);
  const heldOutGen = new Generator(0x5eed);
  const heldOut = Array.from({ length: o.evalExamples }, () => sample(heldOutGen, o.minLength, o.maxLength, true));
  const optimizer = new AdamW(model.namedParameters(), { lr: o.lr, betas: [0.9, 0.98], weightDecay: 0.01 });
  const schedule = cosineWithWarmup({ lr: o.lr, minLr: o.lr / 10, warmupIters: Math.min(o.warmupIters, o.maxIters), lrDecayIters: o.maxIters });
  if (!o.json) o.stdout.write(`Transformer: ${(model.numParameters() / 1e6).toFixed(3)}M parameters; task ${o.task} of ${o.minLength}–${o.maxLength} digits; ${o.evalExamples} held-out examples\n`);
  model.train();
  let iter = 0;
  let loss = NaN;
  let accuracy = 0;
  while (iter < o.maxIters) {
    optimizer.lr = schedule(iter);
    const batch = encodeBatch(o.task, Array.from({ length: o.batchSize }, () => sample(data, o.minLength, o.maxLength, false)), o.maxLength);
    const out = model.forward(batch.src, batch.tgtIn, batch.targets, { labelSmoothing: o.labelSmoothing });
    loss = out.loss!.item();
    out.loss!.backward();
    clipGradNorm(optimizer, 1);
    optimizer.step();
    optimizer.zeroGrad();
    iter++;
    if (iter % o.evalInterval === 0 || iter === o.maxIters) {
      accuracy = exactMatch(model, o.task, heldOut, o.maxLength);
      const s = (performance.now() - started) / 1000;
      log({ iter, loss, exact_match: accuracy, seconds: s }, `iter ${iter}: loss ${loss.toFixed(4)}, held-out exact match ${(100 * accuracy).toFixed(1)}% (${s.toFixed(1)} s)`);
      if (accuracy >= o.targetAccuracy) break;
    }
  }
  const beamExactMatch = o.beamSize > 0 ? exactMatch(model, o.task, heldOut, o.maxLength, o.beamSize) : null;
  mkdirSync(o.outDir, { recursive: true });
  await model.savePretrained(o.outDir);
  const result: TrainTransformerResult = {
    iter,
    loss,
    greedyExactMatch: accuracy,
    beamExactMatch,
    evalExamples: o.evalExamples,
    wallSeconds: (performance.now() - started) / 1000,
    numParameters: model.numParameters(),
    outDir: o.outDir,
  };
  writeFileSync(join(o.outDir, 'result.json'), JSON.stringify({ task: o.task, ...result }, null, 2) + '\n');
  return result;
}
