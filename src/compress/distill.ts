/**
 * Knowledge distillation (Hinton et al. 2015; DistilBERT, Sanh et al. 2019): a student learns from a
 * teacher's softened distribution as well as from the data,
 *
 *   loss = α · T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α) · CE(z_s, y)   [+ β · MSE(h_s P, h_t)]
 *
 * KL averaged over positions (PyTorch's kl_div(…, reduction='batchmean') on [N, V] rows), T² keeping
 * the soft term's gradients on the scale of the hard term's; the optional hidden-state term matches
 * the student's last hidden states, projected by a learned P, to the teacher's.
 *
 * `fineTune` is the small training loop the compression methods share (distillation, QAT, pruning
 * with masks): AdamW with a cosine schedule, random windows from a TextDataset, hooks after each step.
 */
import { TextDataset } from '../data/text-dataset.js';
import { Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { AdamW, clipGradNorm, cosineWithWarmup } from '../optim/index.js';
import { noGrad } from '../tensor/autograd.js';
import { crossEntropy, linear, logSoftmax, mean, mul, softmax, square, sub, sum } from '../tensor/index.js';
import { Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

export interface DistillLossOptions {
  /** Weight of the soft (teacher) term, in [0, 1]. */
  alpha: number;
  /** Softmax temperature T > 0. */
  temperature: number;
  /** Targets equal to this are left out of the CE term (default −1, Weft's LM convention). */
  ignoreIndex?: number;
}

/** The distillation loss of student logits [..., V] against teacher logits (constants) and targets [...]. */
export function distillLoss(studentLogits: Tensor, teacherLogits: Tensor, targets: Tensor, options: DistillLossOptions): { loss: Tensor; kl: Tensor; ce: Tensor } {
  const { alpha, temperature: T } = options;
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`distillLoss: alpha must be in [0, 1], got ${alpha}`);
  if (!(T > 0)) throw new RangeError(`distillLoss: temperature must be > 0, got ${T}`);
  const V = studentLogits.shape[studentLogits.ndim - 1]!;
  if (teacherLogits.shape[teacherLogits.ndim - 1] !== V || teacherLogits.numel !== studentLogits.numel) {
    throw new RangeError(`distillLoss: teacher logits ${JSON.stringify(teacherLogits.shape)} do not match the student's ${JSON.stringify(studentLogits.shape)} (same vocabulary and positions needed)`);
  }
  const rows = studentLogits.numel / V;
  const { pt, logPt } = noGrad(() => {
    const scaled = teacherLogits.div(T);
    return { pt: softmax(scaled, -1), logPt: logSoftmax(scaled, -1) };
  });
  const logPs = logSoftmax(studentLogits.div(T), -1);
  const kl = sum(mul(pt, sub(logPt, logPs))).div(rows);
  const ce = crossEntropy(studentLogits, targets, { ignoreIndex: options.ignoreIndex ?? -1 });
  const loss = kl.mul(alpha * T * T).add(ce.mul(1 - alpha));
  return { loss, kl, ce };
}

/** β · mean((h_s Pᵀ − h_t)²) with P a Linear weight [teacherDim, studentDim] (PyTorch's mse_loss). */
export function hiddenStateLoss(studentHidden: Tensor, teacherHidden: Tensor, projection: Tensor | null, weight: number): Tensor {
  const projected = projection === null ? studentHidden : linear(studentHidden, projection);
  return mean(square(sub(projected, teacherHidden))).mul(weight);
}

/** What fineTune needs from a model (Llama and GPT fit). */
export interface LanguageModel extends Module {
  forward(ids: Tensor, targets?: Tensor): { logits: Tensor; loss: Tensor | null };
}

/** The input of a model's final norm (its last hidden state), captured during `fn`. */
function withFinalHidden<T>(model: Module, fn: (hidden: () => Tensor) => T): T {
  const norm = [...model.namedModules()].find(([name]) => name === 'model.norm' || name === 'transformer.ln_f')?.[1] as
    | (Module & { forward(x: Tensor): Tensor })
    | undefined;
  if (norm === undefined) throw new Error('distill: the model has no final norm (model.norm / transformer.ln_f) to take hidden states from');
  let captured: Tensor | null = null;
  const original = norm.forward.bind(norm);
  norm.forward = (x: Tensor): Tensor => {
    captured = x;
    return original(x);
  };
  try {
    return fn(() => {
      if (captured === null) throw new Error('distill: the final norm was not called');
      return captured;
    });
  } finally {
    delete (norm as { forward?: unknown }).forward;
  }
}

export interface FineTuneOptions {
  model: LanguageModel;
  dataset: Pick<TextDataset, 'batch'>;
  steps: number;
  batchSize: number;
  blockSize: number;
  lr: number;
  /** Default lr/10 at the end of a cosine decay with steps/10 warm-up iterations. */
  minLr?: number;
  weightDecay?: number;
  gradClip?: number;
  seed?: number;
  /** Distil from this teacher (its logits are constants); without it, plain next-token CE. */
  teacher?: LanguageModel;
  alpha?: number;
  temperature?: number;
  /** Hidden-state matching: weight β and whether to learn a projection (needed when widths differ). */
  hidden?: { weight: number };
  /** Called after each optimizer step (pruning re-applies its masks here). */
  afterStep?: (step: number) => void;
  /** Called with each step's loss (progress bars). */
  onStep?: (step: number, loss: number) => void;
}

/** Trains `model` for `steps` AdamW steps; returns the mean loss of the last 10% of steps. */
export function fineTune(o: FineTuneOptions): { finalLoss: number; projection: Linear | null } {
  const g = new Generator().seedPcg(BigInt(o.seed ?? 1337), 0xd157n);
  const teacher = o.teacher;
  let projection: Linear | null = null;
  if (o.hidden !== undefined) {
    if (teacher === undefined) throw new RangeError('fineTune: hidden-state matching needs a teacher');
    const dim = (m: Module): number => {
      const norm = new Map(m.namedModules()).get('model.norm') as (Module & { dim: number }) | undefined;
      if (norm === undefined) throw new Error('fineTune: hidden-state matching supports LLaMA-family models (model.norm)');
      return norm.dim;
    };
    projection = new Linear(dim(o.model), dim(teacher), { bias: false, generator: g });
  }
  const params = [...o.model.namedParameters(), ...(projection === null ? [] : projection.namedParameters('distill_projection'))];
  const opt = new AdamW(params, { lr: o.lr, betas: [0.9, 0.99], weightDecay: o.weightDecay ?? 0.1 });
  const warmup = Math.max(1, Math.floor(o.steps / 10));
  const schedule = cosineWithWarmup({ lr: o.lr, minLr: o.minLr ?? o.lr / 10, warmupIters: warmup, lrDecayIters: Math.max(warmup, o.steps) });
  teacher?.eval();
  o.model.train();
  const tail: number[] = [];
  for (let step = 0; step < o.steps; step++) {
    opt.lr = schedule(step);
    const { x, y } = o.dataset.batch('train', o.batchSize, o.blockSize, g);
    let loss: Tensor;
    if (teacher === undefined) {
      loss = o.model.forward(x, y).loss!;
    } else {
      const t = noGrad(() =>
        o.hidden === undefined ? { logits: teacher.forward(x).logits, hidden: null } : withFinalHidden(teacher, (h) => ({ logits: teacher.forward(x).logits, hidden: h() })),
      );
      const run = (hidden: (() => Tensor) | null): Tensor => {
        const zs = o.model.forward(x).logits;
        let l = distillLoss(zs, t.logits, y, { alpha: o.alpha ?? 0.5, temperature: o.temperature ?? 2 }).loss;
        if (hidden !== null && t.hidden !== null) l = l.add(hiddenStateLoss(hidden(), t.hidden, projection!.weight, o.hidden!.weight));
        return l;
      };
      loss = o.hidden === undefined ? run(null) : withFinalHidden(o.model, (h) => run(h));
    }
    const value = loss.item();
    if (!Number.isFinite(value)) throw new Error(`fineTune: the loss is ${value} at step ${step}; lower the learning rate`);
    loss.backward();
    if ((o.gradClip ?? 1) > 0) clipGradNorm(opt, o.gradClip ?? 1);
    opt.step();
    opt.zeroGrad();
    o.afterStep?.(step);
    o.onStep?.(step, value);
    if (step >= o.steps - Math.max(1, Math.floor(o.steps / 10))) tail.push(value);
  }
  o.model.eval();
  return { finalLoss: tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length), projection };
}
