/**
 * Learning-rate schedules: functions from the iteration (0-based) to the learning rate. All start
 * with nanoGPT's linear warm-up, lr · (it + 1) / (warmupIters + 1), so the first step is never 0.
 */
export type LRSchedule = (iter: number) => number;

export interface WarmupDecayOptions {
  /** Peak learning rate (reached at the end of warm-up). */
  lr: number;
  /** Floor after decay. */
  minLr: number;
  warmupIters: number;
  /** Iteration at which the decay reaches minLr (nanoGPT's lr_decay_iters). */
  lrDecayIters: number;
}

function check(name: string, o: { lr: number; minLr?: number; warmupIters: number; lrDecayIters?: number }): void {
  const bad = (what: string): never => {
    throw new RangeError(`${name}: ${what}`);
  };
  if (!Number.isFinite(o.lr) || o.lr < 0) bad(`lr must be a finite number >= 0, got ${o.lr}`);
  if (o.minLr !== undefined && (!Number.isFinite(o.minLr) || o.minLr < 0)) bad(`minLr must be a finite number >= 0, got ${o.minLr}`);
  if (!Number.isSafeInteger(o.warmupIters) || o.warmupIters < 0) bad(`warmupIters must be an integer >= 0, got ${o.warmupIters}`);
  if (o.lrDecayIters !== undefined && (!Number.isSafeInteger(o.lrDecayIters) || o.lrDecayIters < o.warmupIters)) {
    bad(`lrDecayIters must be an integer >= warmupIters (${o.warmupIters}), got ${o.lrDecayIters}`);
  }
}

function checkIter(name: string, it: number): void {
  if (!Number.isSafeInteger(it) || it < 0) throw new RangeError(`${name}: iteration must be an integer >= 0, got ${it}`);
}

/** nanoGPT's get_lr: linear warm-up, cosine decay to minLr at lrDecayIters, then minLr. */
export function cosineWithWarmup(o: WarmupDecayOptions): LRSchedule {
  check('cosineWithWarmup', o);
  const { lr, minLr, warmupIters, lrDecayIters } = o;
  return (it) => {
    checkIter('cosineWithWarmup', it);
    if (it < warmupIters) return (lr * (it + 1)) / (warmupIters + 1);
    // nanoGPT divides by zero when the two coincide; there is nothing left to decay over.
    if (it > lrDecayIters || lrDecayIters === warmupIters) return minLr;
    const decayRatio = (it - warmupIters) / (lrDecayIters - warmupIters);
    const coeff = 0.5 * (1.0 + Math.cos(Math.PI * decayRatio));
    return minLr + coeff * (lr - minLr);
  };
}

/** Linear warm-up, then a straight line from lr to minLr at lrDecayIters, then minLr. */
export function linearWithWarmup(o: WarmupDecayOptions): LRSchedule {
  check('linearWithWarmup', o);
  const { lr, minLr, warmupIters, lrDecayIters } = o;
  return (it) => {
    checkIter('linearWithWarmup', it);
    if (it < warmupIters) return (lr * (it + 1)) / (warmupIters + 1);
    if (it > lrDecayIters || lrDecayIters === warmupIters) return minLr;
    const decayRatio = (it - warmupIters) / (lrDecayIters - warmupIters);
    return lr + (minLr - lr) * decayRatio;
  };
}

/** Linear warm-up, then lr forever. */
export function constantWithWarmup(o: { lr: number; warmupIters?: number }): LRSchedule {
  const warmupIters = o.warmupIters ?? 0;
  check('constantWithWarmup', { lr: o.lr, warmupIters });
  const { lr } = o;
  return (it) => {
    checkIter('constantWithWarmup', it);
    return it < warmupIters ? (lr * (it + 1)) / (warmupIters + 1) : lr;
  };
}
