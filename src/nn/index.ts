export { Module, ModuleList, type StateDict, type LoadOptions } from './module.js';
export { Linear, Conv1D, Embedding, LayerNorm, RMSNorm, Dropout, type LayerInit } from './layers.js';
export { normal_, uniform_, constant_, zeros_, ones_ } from './init.js';
export { KVCache, type KVCacheShape } from './kv-cache.js';
export { type SamplingOptions, sampleNext, candidateDistribution, argmax, checkSamplingOptions } from './sampling.js';
export { SparseMoE, GeluExpert, SwiGLUExpert, groupedLinear, loadBalancingLoss, parseMoEConfig, type MoEConfig } from './moe.js';
