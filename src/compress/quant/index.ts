/** Quantized weight formats, native kernels, the QuantizedLinear layer and whole-model quantization. */
export * from './formats.js';
export * from './kernels.js';
export * from './linear.js';
export * from './model.js';
