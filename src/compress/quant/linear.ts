/**
 * QuantizedLinear: an inference-only drop-in for nn Linear (y = x Wᵀ + b) whose weight is a
 * QuantizedMatrix, multiplied by the native kernels (dequantized inside the dot products). It keeps
 * Linear's `inFeatures` / `outFeatures`; the bias (if any) is a buffer, so state dicts still carry it.
 */
import { formatShape } from '../../tensor/shape.js';
import { Tensor } from '../../tensor/tensor.js';
import { Module } from '../../nn/module.js';
import { type QuantizedMatrix, checkQuantizedMatrix, groupSize } from './formats.js';
import { int8Gemm, quantMatmul } from './kernels.js';

export interface QuantizedLinearOptions {
  /**
   * How activations are quantized: 'blocks' (default) — Q8 blocks of 32 per row, weight-only
   * accuracy; 'per-token' — W8A8, one scale per row and the INT8 GEMM (int8 weights only).
   */
  activations?: 'blocks' | 'per-token';
}

export class QuantizedLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Tensor | null;
  readonly activations: 'blocks' | 'per-token';

  constructor(
    readonly qweight: QuantizedMatrix,
    bias: Tensor | null,
    options: QuantizedLinearOptions = {},
  ) {
    super();
    checkQuantizedMatrix(qweight, 'QuantizedLinear');
    this.inFeatures = qweight.cols;
    this.outFeatures = qweight.rows;
    this.activations = options.activations ?? 'blocks';
    if (this.activations === 'per-token' && qweight.format !== 'int8') {
      throw new RangeError(`QuantizedLinear: per-token activations (W8A8) need int8 weights, got ${qweight.format}`);
    }
    if (this.activations === 'blocks' && qweight.cols % 32 !== 0) {
      throw new RangeError(
        `QuantizedLinear: input width ${qweight.cols} is not a multiple of 32, the activation block; ` +
          `use activations: 'per-token' (int8) or keep this layer in f32`,
      );
    }
    if (bias !== null) {
      if (bias.ndim !== 1 || bias.shape[0] !== qweight.rows) {
        throw new RangeError(`QuantizedLinear: bias ${formatShape(bias.shape)} must be [${qweight.rows}] (one per output)`);
      }
      this.bias = this.registerBuffer('bias', bias.dtype === 'f32' ? bias : bias.to('f32'));
    } else {
      this.bias = null;
    }
  }

  get format(): QuantizedMatrix['format'] {
    return this.qweight.format;
  }

  get groupSize(): number {
    return groupSize(this.qweight.format, this.qweight.cols);
  }

  /** x [..., inFeatures] → [..., outFeatures]. No gradient flows (inference only). */
  forward(x: Tensor): Tensor {
    const op = 'QuantizedLinear.forward';
    const k = this.inFeatures;
    if (x.ndim === 0 || x.shape[x.ndim - 1] !== k) {
      throw new RangeError(`${op}: input ${formatShape(x.shape)} must end in ${k} (inFeatures)`);
    }
    const input = x.dtype === 'f32' ? x : x.to('f32');
    const m = input.numel / k;
    const out = Tensor.empty([...input.shape.slice(0, -1), this.outFeatures]);
    const options = { bias: this.bias === null ? null : this.bias.f32(op), out: out.f32(op) };
    if (this.activations === 'per-token') int8Gemm(this.qweight, input.f32(op), m, options);
    else quantMatmul(this.qweight, input.f32(op), m, options);
    if (input !== x) input.dispose();
    return out;
  }
}
