/**
 * The training loop — nanoGPT's train.py, minus the distributed parts:
 *
 *   for iter in [start, maxIters):
 *     if iter % evalInterval == 0: evaluate (mean loss over evalIters train and val batches),
 *                                  log it, save a checkpoint (nanoGPT's always_save_checkpoint)
 *     lr = cosineWithWarmup(iter)
 *     gradientAccumulationSteps × { batch; forward; (loss / steps).backward() }
 *     clip the global gradient norm; AdamW step; zero the gradients
 *   at maxIters: a last evaluation and checkpoint.
 *
 * Determinism: every random draw comes from a named Generator whose state the checkpoint saves
 * (`data` for batch offsets, the model's for dropout, the process default), and evaluations draw
 * their batches from a generator re-seeded at each evaluation, so evaluating (or not) never shifts
 * the training stream. That is why 100 straight iterations and 50 + resume + 50 are identical.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tokenizer } from '../data/tokenizer.js';
import type { TextDataset } from '../data/text-dataset.js';
import { writeFileAtomic } from '../io/atomic.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { AdamW, clipGradNorm, cosineWithWarmup, optimizerStateFromSafetensors, optimizerStateToSafetensors } from '../optim/index.js';
import { noGrad } from '../tensor/autograd.js';
import { defaultGenerator, Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  loadTrainerState,
  OPTIMIZER_FILE,
  saveCheckpoint,
  TOKENIZER_FILE,
  type TrainerState,
} from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { MetricsLog } from './metrics.js';
import type { EvaluationRecord, IterationRecord, ProgressReporter } from './progress.js';

/** What the trainer needs from a model (GPT fits). */
export interface TrainableModel {
  forward(ids: Tensor, targets?: Tensor): { logits: Tensor; loss: Tensor | null };
  train(mode?: boolean): unknown;
  eval(): unknown;
  namedParameters(): [string, Tensor][];
  /** Writes config.json + model.safetensors into `dir`. */
  savePretrained(dir: string): Promise<void>;
}

/** A run stopped because the loss (or the gradient norm) stopped being a finite number. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly iter: number,
    what: string,
    value: number,
    lastCheckpointIter: number | null,
  ) {
    super(
      `${what} is ${value} at iteration ${iter}; training stopped. ` +
        (lastCheckpointIter === null
          ? 'No checkpoint was saved before it. '
          : `The last good checkpoint (iteration ${lastCheckpointIter}) is intact. `) +
        'Try a lower --lr, a longer --warmup-iters or a smaller --grad-clip.',
    );
    this.name = 'NonFiniteLossError';
  }
}

export interface TrainerOptions {
  model: TrainableModel;
  tokenizer: Tokenizer;
  /** Where batches come from: a TextDataset, or a ShardDataset over `weft data prepare` shards. */
  dataset: Pick<TextDataset, 'batch'>;
  config: TrainConfig;
  /** The run directory (runs/<name>): checkpoints and metrics.jsonl. */
  outDir: string;
  /** Generators the model draws from (dropout), by role; saved and restored with the checkpoint. */
  generators?: Record<string, Generator>;
  progress: ProgressReporter;
  /** Continue from the checkpoint in outDir (model weights must already be loaded into `model`). */
  resume?: boolean;
}

export interface TrainResult {
  iter: number;
  trainLoss: number | null;
  valLoss: number | null;
  /** Mean milliseconds per training iteration in this process (excluding evaluations and saves). */
  msPerIter: number;
  iterations: number;
}

/** The data generator's stream: distinct from the model's generator even with the same seed. */
const DATA_STREAM = 0xda7an;
/** The evaluation batches' stream, re-seeded at every evaluation. */
const EVAL_STREAM = 0xe7a1n;

export class Trainer {
  readonly optimizer: AdamW;
  readonly metrics: MetricsLog;
  /** Iterations completed. */
  iter = 0;
  bestValLoss: number | null = null;
  tokensSeen = 0;
  private readonly generators: Record<string, Generator>;
  private readonly schedule: (iter: number) => number;
  private lastCheckpointIter: number | null = null;
  private readonly resumed: boolean;

  constructor(private readonly options: TrainerOptions) {
    const { model, config } = options;
    this.generators = {
      data: new Generator().seedPcg(BigInt(config.seed), DATA_STREAM),
      ...options.generators,
      default: defaultGenerator,
    };
    this.optimizer = new AdamW(model.namedParameters(), {
      lr: config.lr,
      betas: [config.beta1, config.beta2],
      weightDecay: config.weightDecay,
    });
    this.schedule = cosineWithWarmup({
      lr: config.lr,
      minLr: config.minLr,
      warmupIters: config.warmupIters,
      lrDecayIters: config.lrDecayIters,
    });
    mkdirSync(options.outDir, { recursive: true });
    this.metrics = new MetricsLog(join(options.outDir, 'metrics.jsonl'));
    this.resumed = options.resume === true;
    if (this.resumed) this.restore(loadTrainerState(options.outDir));
    else this.metrics.reset();
  }

  get config(): TrainConfig {
    return this.options.config;
  }

  /** Restores optimizer, generators, iteration and log position from the run directory's checkpoint. */
  private restore(state: TrainerState): void {
    const path = join(this.options.outDir, OPTIMIZER_FILE);
    this.optimizer.loadStateDict(optimizerStateFromSafetensors(parseSafetensors(readFileSync(path), path), path));
    for (const [role, g] of Object.entries(this.generators)) {
      const saved = state.rng[role];
      if (saved === undefined) throw new Error(`${this.options.outDir}: the checkpoint has no state for the '${role}' generator`);
      g.setState(saved);
    }
    this.iter = state.iter;
    this.lastCheckpointIter = state.iter;
    this.bestValLoss = state.bestValLoss;
    this.tokensSeen = state.tokensSeen;
    this.metrics.truncate(state.metricsBytes);
  }

  /**
   * Mean loss over `evalIters` random batches of each split (nanoGPT's estimate_loss), without
   * gradients or dropout. The batches are the same at every evaluation, so losses are comparable
   * across iterations and runs.
   */
  evaluate(): { train: number; val: number } {
    const { model, dataset, config } = this.options;
    // Re-seeded each time: the same batches at every evaluation, and no draw from the training stream.
    const g = new Generator().seedPcg(BigInt(config.seed), EVAL_STREAM);
    model.eval();
    try {
      return noGrad(() => {
        const mean = (split: 'train' | 'val'): number => {
          let sum = 0;
          for (let k = 0; k < config.evalIters; k++) {
            const { x, y } = dataset.batch(split, config.batchSize, config.blockSize, g);
            const { logits, loss } = model.forward(x, y);
            sum += lossValue(loss);
            for (const t of [x, y, logits, loss]) t?.dispose();
          }
          return sum / config.evalIters;
        };
        return { train: mean('train'), val: mean('val') };
      });
    } finally {
      model.train();
    }
  }

  async run(): Promise<TrainResult> {
    try {
      return await this.loop();
    } finally {
      // End an in-place progress bar so an error message starts on its own line.
      this.options.progress.finish();
    }
  }

  private async loop(): Promise<TrainResult> {
    const { model, dataset, config, progress } = this.options;
    const steps = config.gradientAccumulationSteps;
    const tokensPerIter = config.batchSize * config.blockSize * steps;
    const startIter = this.iter;
    let last: { train: number; val: number } | null = null;
    let trainMs = 0;
    let iterations = 0;
    model.train();
    for (;;) {
      const it = this.iter;
      const atEval = it % config.evalInterval === 0 || it >= config.maxIters;
      // A resumed run's first iteration was evaluated and saved just before the checkpoint.
      if (atEval && !(this.resumed && it === startIter)) {
        const losses = this.evaluate();
        if (!Number.isFinite(losses.train) || !Number.isFinite(losses.val)) {
          const bad = Number.isFinite(losses.train) ? losses.val : losses.train;
          throw new NonFiniteLossError(it, `the evaluation loss`, bad, this.lastCheckpointIter);
        }
        last = losses;
        const record: EvaluationRecord = { iter: it, train_loss: losses.train, val_loss: losses.val };
        progress.evaluation(record);
        this.metrics.append(record);
        if (this.bestValLoss === null || losses.val < this.bestValLoss) this.bestValLoss = losses.val;
        if (it > 0) {
          await this.saveCheckpoint();
          progress.note(`saved checkpoint at iteration ${it} to ${this.options.outDir}`);
        }
      }
      if (it >= config.maxIters) break;

      const lr = this.schedule(it);
      this.optimizer.lr = lr;
      const t0 = performance.now();
      let lossSum = 0;
      for (let micro = 0; micro < steps; micro++) {
        const { x, y } = dataset.batch('train', config.batchSize, config.blockSize, this.generators.data!);
        const { logits, loss } = model.forward(x, y);
        const value = lossValue(loss);
        if (!Number.isFinite(value)) throw new NonFiniteLossError(it, 'the training loss', value, this.lastCheckpointIter);
        lossSum += value;
        const scaled = steps === 1 ? loss! : loss!.div(steps);
        scaled.backward();
        for (const t of new Set([x, y, logits, loss!, scaled])) t.dispose();
      }
      if (config.gradClip > 0) {
        const norm = clipGradNorm(this.optimizer, config.gradClip);
        if (!Number.isFinite(norm)) throw new NonFiniteLossError(it, 'the gradient norm', norm, this.lastCheckpointIter);
      }
      this.optimizer.step();
      this.optimizer.zeroGrad();
      const ms = performance.now() - t0;
      trainMs += ms;
      iterations++;
      this.iter = it + 1;
      this.tokensSeen += tokensPerIter;
      const record: IterationRecord = { iter: it, loss: lossSum / steps, lr, ms, tokens_per_s: (tokensPerIter * 1000) / ms };
      progress.iteration(record);
      this.metrics.append(record);
    }
    return {
      iter: this.iter,
      trainLoss: last?.train ?? null,
      valLoss: last?.val ?? null,
      msPerIter: iterations > 0 ? trainMs / iterations : 0,
      iterations,
    };
  }

  /** Writes the whole state crash-safely (see checkpoint.ts). */
  async saveCheckpoint(): Promise<void> {
    const { model, tokenizer, config, outDir } = this.options;
    const rng: TrainerState['rng'] = {};
    for (const [role, g] of Object.entries(this.generators)) rng[role] = g.getState();
    await saveCheckpoint(
      outDir,
      async (staging) => {
        await model.savePretrained(staging);
        await writeFileAtomic(join(staging, TOKENIZER_FILE), `${JSON.stringify(tokenizer.toJSON())}\n`);
        const { tensors, metadata } = optimizerStateToSafetensors(this.optimizer.stateDict());
        await writeFileAtomic(join(staging, OPTIMIZER_FILE), serializeSafetensors(tensors, metadata));
      },
      {
        iter: this.iter,
        trainConfig: config,
        bestValLoss: this.bestValLoss,
        tokensSeen: this.tokensSeen,
        rng,
        metricsBytes: this.metrics.size(),
      },
    );
    this.lastCheckpointIter = this.iter;
  }
}

function lossValue(loss: Tensor | null): number {
  if (loss === null) throw new Error('Trainer: the model returned no loss; forward(ids, targets) must compute one');
  return loss.item();
}
