/**
 * Training hyper-parameters. Defaults are nanoGPT's `train_shakespeare_char` run on a CPU
 * (block 64, batch 12, 4 layers × 4 heads × 128, 2000 iterations, lr 1e-3 → 1e-4, β2 0.99):
 * the configuration nanoGPT documents at val loss ≈ 1.88.
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const nonNegative = z.number().nonnegative();

export const TrainConfig = z
  .object({
    /** The text file the run trains on (kept for resuming and for the record). */
    data: z.string().min(1),
    tokenizer: z.literal('char').default('char'),
    batchSize: positiveInt.default(12),
    blockSize: positiveInt.default(64),
    maxIters: nonNegativeInt.default(2000),
    lr: z.number().positive().default(1e-3),
    minLr: nonNegative.default(1e-4),
    warmupIters: nonNegativeInt.default(100),
    lrDecayIters: positiveInt.default(2000),
    evalInterval: positiveInt.default(250),
    evalIters: positiveInt.default(20),
    logInterval: positiveInt.default(10),
    weightDecay: nonNegative.default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.99),
    /** Clip the global gradient norm to this; 0 turns clipping off (nanoGPT's convention). */
    gradClip: nonNegative.default(1),
    gradientAccumulationSteps: positiveInt.default(1),
    seed: nonNegativeInt.default(1337),
  })
  .refine((c) => c.minLr <= c.lr, { message: 'min-lr must not exceed --lr', path: ['minLr'] })
  .refine((c) => c.lrDecayIters >= c.warmupIters, { message: 'the decay must end after the warm-up: pass a value ≥ --warmup-iters', path: ['lrDecayIters'] });
export type TrainConfig = z.infer<typeof TrainConfig>;
export type TrainConfigInput = z.input<typeof TrainConfig>;

/** camelCase config key → its command-line flag, for error messages that name what to change. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** A problem the user fixes by changing a flag or a path; the CLI prints its message without a stack. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses a config, turning the first problem into an error that names the flag. */
export function parseTrainConfig(input: TrainConfigInput): TrainConfig {
  const r = TrainConfig.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  throw new UsageError(`${flagName(key)}: ${issue.message}`);
}

/** `o` without its undefined entries: a flag left out must not override a saved or default value. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
