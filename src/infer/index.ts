export { KVCache, type KVCacheShape } from './kv-cache.js';
export { type SamplingOptions, sampleNext, candidateDistribution, argmax, checkSamplingOptions } from './sampling.js';
export { generate, type GenerateOptions } from './generate.js';
