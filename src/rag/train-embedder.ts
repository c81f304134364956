/**
 * Contrastive fine-tuning of a Weft BERT encoder into a better sentence embedder:
 *  - pairs (anchor, positive) from the user: MultipleNegativesRanking / InfoNCE with in-batch
 *    negatives (every other positive in the batch is a negative; Henderson et al. 2017,
 *    sentence-transformers' MultipleNegativesRankingLoss);
 *  - unlabelled text: SimCSE (Gao et al. 2021) — each sentence encoded twice with different dropout
 *    masks is its own positive, the batch's other sentences are negatives.
 * loss = CE(sim(a_i, p_j) / τ, j = i) with cosine similarity and τ = 0.05 (scale 20, as both papers).
 * The result is saved as a sentence-transformers directory that `SentenceTransformer.load`,
 * `weft rag ingest --embedder` and Python's sentence-transformers all read.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { AdamW, clipGradNorm, cosineWithWarmup } from '../optim/index.js';
import { Generator } from '../tensor/random.js';
import { crossEntropy, div, matmul } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';
import { type ProgressReporter } from '../train/progress.js';
import { poolHidden, SentenceTransformer } from './embeddings.js';

export interface TextPair {
  anchor: string;
  positive: string;
}

export interface TrainEmbedderOptions {
  /** The encoder to start from (sentence-transformers or BERT directory). */
  model: SentenceTransformer;
  /** Labelled pairs, or null for SimCSE on `texts`. */
  pairs?: readonly TextPair[];
  texts?: readonly string[];
  outDir: string;
  batchSize?: number;
  steps?: number;
  lr?: number;
  warmupSteps?: number;
  /** τ in sim / τ (default 0.05). */
  temperature?: number;
  weightDecay?: number;
  gradClip?: number;
  seed?: number;
  progress?: ProgressReporter;
}

export interface TrainEmbedderResult {
  steps: number;
  firstLoss: number;
  lastLoss: number;
  outDir: string;
}

/** InfoNCE over a batch: rows of `a` against rows of `b` (both L2-normalised [B, C]); the diagonal holds the positives. */
export function inBatchContrastiveLoss(a: Tensor, b: Tensor, temperature: number): Tensor {
  const B = a.shape[0]!;
  const logits = div(matmul(a, b, { transB: true }), temperature);
  return crossEntropy(logits, Tensor.fromArray(Int32Array.from({ length: B }, (_, i) => i), [B], 'i32'));
}

export async function trainEmbedder(options: TrainEmbedderOptions): Promise<TrainEmbedderResult> {
  const { model: st } = options;
  const batchSize = options.batchSize ?? 16;
  const steps = options.steps ?? 100;
  const temperature = options.temperature ?? 0.05;
  const pairs = options.pairs ?? null;
  const texts = options.texts ?? [];
  const n = pairs !== null ? pairs.length : texts.length;
  if (batchSize < 2) throw new RangeError('trainEmbedder: batchSize must be at least 2 (in-batch negatives need other examples)');
  if (n < 2) throw new RangeError(`trainEmbedder: need at least 2 ${pairs !== null ? 'pairs' : 'texts'}, got ${n}`);
  if (pairs === null && st.model.config.hiddenDropoutProb === 0 && st.model.config.attentionProbsDropoutProb === 0) {
    throw new RangeError('trainEmbedder: SimCSE needs dropout (both dropout probabilities of this model are 0); give labelled pairs instead');
  }
  const params = st.model.namedParameters().filter(([name]) => name.startsWith('bert.embeddings.') || name.startsWith('bert.encoder.'));
  const lr = options.lr ?? 2e-5;
  const opt = new AdamW(params, { lr, weightDecay: options.weightDecay ?? 0.01 });
  const warmup = options.warmupSteps ?? Math.floor(steps / 10);
  const schedule = cosineWithWarmup({ lr, minLr: lr / 10, warmupIters: warmup, lrDecayIters: Math.max(steps, warmup + 1) });
  const rng = new Generator(options.seed ?? 1);
  const order: number[] = [];
  let firstLoss = NaN;
  let lastLoss = NaN;
  await mkdir(options.outDir, { recursive: true });
  const metrics = join(options.outDir, 'metrics.jsonl');
  st.model.train();
  let tokens = 0;
  const encode = (batch: readonly string[]): Tensor => {
    const { ids, mask, maskTensor, lengths } = st.tokenize(batch);
    tokens += lengths.reduce((a, b) => a + b, 0);
    return poolHidden(st.model.encode(ids, { attentionMask: maskTensor }), mask, st.spec.pooling, true);
  };
  for (let step = 0; step < steps; step++) {
    const t0 = performance.now();
    // Epoch-wise shuffling without repeats inside a batch (a duplicate would be a false negative).
    const batch: number[] = [];
    while (batch.length < Math.min(batchSize, n)) {
      if (order.length === 0) {
        const perm = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(rng.uniform() * (i + 1));
          [perm[i], perm[j]] = [perm[j]!, perm[i]!];
        }
        order.push(...perm);
      }
      const next = order.shift()!;
      if (!batch.includes(next)) batch.push(next);
    }
    opt.lr = schedule(step);
    let loss: Tensor;
    tokens = 0;
    if (pairs !== null) {
      const a = batch.map((i) => pairs[i]!.anchor);
      const p = batch.map((i) => pairs[i]!.positive);
      loss = inBatchContrastiveLoss(encode(a), encode(p), temperature);
    } else {
      const b = batch.map((i) => texts[i]!);
      // Two forward passes, two dropout masks: the SimCSE positive pair.
      loss = inBatchContrastiveLoss(encode(b), encode(b), temperature);
    }
    loss.backward();
    if ((options.gradClip ?? 1) > 0) clipGradNorm(opt, options.gradClip ?? 1);
    opt.step();
    opt.zeroGrad();
    const value = loss.item();
    if (!Number.isFinite(value)) throw new Error(`trainEmbedder: the loss is ${value} at step ${step}; lower --lr`);
    if (step === 0) firstLoss = value;
    lastLoss = value;
    const ms = performance.now() - t0;
    const record = { iter: step, loss: value, lr: opt.lr, ms, tokens_per_s: (tokens / ms) * 1000 };
    appendFileSync(metrics, `${JSON.stringify(record)}\n`);
    options.progress?.iteration(record);
  }
  options.progress?.finish();
  st.model.eval();
  await st.save(options.outDir);
  return { steps, firstLoss, lastLoss, outDir: options.outDir };
}
