export { KVCache, type KVCacheShape } from '../nn/kv-cache.js';
export { type SamplingOptions, sampleNext, candidateDistribution, argmax, checkSamplingOptions } from '../nn/sampling.js';
export { generate, type GenerateOptions } from './generate.js';
