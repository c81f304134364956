/** The tensor engine's public surface. Importing this module also installs the Tensor method sugar. */
export { Tensor, type NestedArray, type TensorOptions, copyInto, sumToShape } from './tensor.js';
export { type DType, type StorageArray } from './dtype.js';
export { type Shape, broadcastShapes } from './shape.js';
export { noGrad, enableGrad, isGradEnabled, needsGrad, record, type GradNode } from './autograd.js';
export { Generator, defaultGenerator, manualSeed, type GeneratorState } from './random.js';
export { clearPool, poolStats } from './storage.js';
export { getBackend, setBackend, nativeAvailable, backendByName, type BackendName } from './backend/index.js';
export type { Backend } from './backend/backend.js';
export * from './creation.js';
export * from './ops/shape.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/indexing.js';
export * from './ops/matmul.js';
export * from './ops/nn.js';
