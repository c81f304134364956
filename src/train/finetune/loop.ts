/**
 * The fine-tuning loop every task shares: epochs over shuffled mini-batches, AdamW on the trainable
 * parameters only (optionally one optimizer per layer group for layer-wise learning-rate decay),
 * linear warm-up then linear decay, gradient clipping, an evaluation after each epoch, early stopping
 * on the validation metric, and the best epoch's weights restored at the end.
 */
import { AdamW, clipGradNorm, linearWithWarmup } from '../../optim/index.js';
import { Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { epochBatches } from './data.js';

export interface ParamGroup {
  params: [string, Tensor][];
  /** Multiplies the learning rate (layer-wise decay gives lower layers smaller rates). */
  lrScale: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  /** The validation metric (higher is better) and any others the task reports. */
  metric: number;
  metrics: Record<string, number>;
  seconds: number;
}

export interface FinetuneLoopOptions<E> {
  model: Module;
  groups: ParamGroup[];
  train: readonly E[];
  lossOf: (batch: E[]) => Tensor;
  /** Validation: the main metric (higher is better) plus extras; runs in eval mode. */
  evaluate: () => { metric: number; metrics: Record<string, number> };
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay?: number;
  warmupFraction?: number;
  gradClip?: number;
  /** Stop after this many epochs without improvement (default: never). */
  patience?: number;
  seed?: number;
  onStep?: (step: number, totalSteps: number, loss: number) => void;
  onEpoch?: (r: EpochRecord) => void;
}

export interface FinetuneLoopResult {
  history: EpochRecord[];
  bestEpoch: number;
  bestMetric: number;
  steps: number;
  seconds: number;
}

export function runFinetuneLoop<E>(o: FinetuneLoopOptions<E>): FinetuneLoopResult {
  const groups = o.groups.filter((g) => g.params.length > 0);
  if (groups.length === 0) throw new Error('fine-tuning: no trainable parameters (check --method)');
  if (o.train.length === 0) throw new Error('fine-tuning: the training set is empty');
  const optimizers = groups.map((g) => ({ opt: new AdamW(g.params, { lr: o.lr * g.lrScale, weightDecay: o.weightDecay ?? 0.01 }), scale: g.lrScale }));
  const stepsPerEpoch = Math.ceil(o.train.length / o.batchSize);
  const totalSteps = stepsPerEpoch * o.epochs;
  const schedule = linearWithWarmup({ lr: o.lr, minLr: 0, warmupIters: Math.round(totalSteps * (o.warmupFraction ?? 0.06)), lrDecayIters: totalSteps });
  const allParams = groups.flatMap((g) => g.params.map(([, p]) => p));
  const g = new Generator(o.seed ?? 1);
  const history: EpochRecord[] = [];
  let best = -Infinity;
  let bestEpoch = 0;
  let snapshot: Float32Array[] | null = null;
  let step = 0;
  const started = performance.now();
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const t0 = performance.now();
    o.model.train();
    let lossSum = 0;
    let n = 0;
    for (const idx of epochBatches(o.train.length, o.batchSize, g)) {
      const loss = o.lossOf(idx.map((i) => o.train[i]!));
      const value = loss.item();
      if (!Number.isFinite(value)) throw new Error(`fine-tuning: loss is ${value} at step ${step + 1}; try a lower --lr`);
      loss.backward();
      if ((o.gradClip ?? 1) > 0) clipGradNorm(allParams, o.gradClip ?? 1);
      const lr = schedule(step);
      for (const { opt, scale } of optimizers) {
        opt.lr = lr * scale;
        opt.step();
      }
      o.model.zeroGrad();
      lossSum += value;
      n++;
      step++;
      o.onStep?.(step, totalSteps, value);
    }
    o.model.eval();
    const { metric, metrics } = o.evaluate();
    const record: EpochRecord = { epoch, trainLoss: lossSum / n, metric, metrics, seconds: (performance.now() - t0) / 1000 };
    history.push(record);
    o.onEpoch?.(record);
    if (metric > best) {
      best = metric;
      bestEpoch = epoch;
      snapshot = allParams.map((p) => p.f32('finetune.snapshot').slice());
    } else if (o.patience !== undefined && epoch - bestEpoch >= o.patience) {
      break;
    }
  }
  // The best epoch's weights, not the last one's.
  if (snapshot !== null) allParams.forEach((p, i) => p.f32('finetune.restore').set(snapshot![i]!));
  o.model.eval();
  return { history, bestEpoch, bestMetric: best, steps: step, seconds: (performance.now() - started) / 1000 };
}

/** Depth of a parameter in the network: 0 for embeddings, i + 1 for block i, layers + 1 above. */
export function parameterDepth(name: string, nLayers: number): number {
  const m = /\.(?:h|layer|layers|block)\.(\d+)\./.exec(name);
  if (m !== null) return Number(m[1]) + 1;
  if (/embed|wte|wpe|word_embeddings|position_embeddings|token_type/.test(name)) return 0;
  return nLayers + 1;
}

/** Number of blocks, from parameter names. */
export function countLayers(names: readonly string[]): number {
  let max = -1;
  for (const n of names) {
    const m = /\.(?:h|layer|layers|block)\.(\d+)\./.exec(n);
    if (m !== null) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

/**
 * Trainable parameters in groups: one group, or with layer-wise decay d one per depth with learning
 * rate scaled by d^(top − depth) (Howard & Ruder 2018; used for BERT fine-tuning by Sun et al. 2019).
 */
export function parameterGroups(named: readonly [string, Tensor][], layerDecay = 1): ParamGroup[] {
  const trainable = named.filter(([, p]) => p.requiresGrad);
  if (layerDecay === 1) return [{ params: [...trainable], lrScale: 1 }];
  if (!(layerDecay > 0 && layerDecay < 1)) throw new RangeError(`layer-wise decay must be in (0, 1], got ${layerDecay}`);
  const L = countLayers(named.map(([n]) => n));
  const byDepth = new Map<number, [string, Tensor][]>();
  for (const e of trainable) {
    const d = parameterDepth(e[0], L);
    byDepth.set(d, [...(byDepth.get(d) ?? []), e]);
  }
  return [...byDepth].map(([d, params]) => ({ params, lrScale: Math.pow(layerDecay, L + 1 - d) }));
}

/** Freezes the embeddings and the first n blocks (partial fine-tuning). */
export function freezeBelow(named: readonly [string, Tensor][], n: number): void {
  const L = countLayers(named.map(([name]) => name));
  if (n > L) throw new RangeError(`freeze:${n}: the model has only ${L} blocks`);
  for (const [name, p] of named) if (parameterDepth(name, L) <= n) p.requiresGrad = false;
}
