/** Optimizers over flat parameter buffers, gradient clipping and learning-rate schedules. */
export { AdamW, type AdamWOptions } from './adamw.js';
export { SGD, type SGDOptions } from './sgd.js';
export { clipGradNorm, type HasFlatParams } from './clip.js';
export { FlatParams, decayRank2, type DecayFilter, type FlatEntry, type OptimizerState } from './flat.js';
export { cosineWithWarmup, linearWithWarmup, constantWithWarmup, type LRSchedule, type WarmupDecayOptions } from './schedules.js';
export {
  saveOptimizerState,
  loadOptimizerState,
  optimizerStateToSafetensors,
  optimizerStateFromSafetensors,
} from './state.js';
