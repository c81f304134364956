/**
 * KV cache for autoregressive decoding: per layer, keys and values preallocated as
 * [batch, heads, maxLength, headDim] so appending a step writes in place and each head's first
 * `length` rows are a dense block the attention kernel reads without a copy.
 */
import { Tensor } from '../tensor/tensor.js';

export interface KVCacheShape {
  nLayer: number;
  batch: number;
  nHead: number;
  headDim: number;
  /** Positions the cache can hold (at most the model's blockSize). */
  maxLength: number;
}

export class KVCache {
  readonly nLayer: number;
  readonly batch: number;
  readonly nHead: number;
  readonly headDim: number;
  readonly maxLength: number;
  private readonly keys: Float32Array[];
  private readonly values: Float32Array[];
  private len = 0;

  constructor(shape: KVCacheShape) {
    for (const [k, v] of Object.entries(shape)) {
      if (!Number.isInteger(v) || (v as number) <= 0) throw new RangeError(`KVCache: ${k} must be a positive integer, got ${String(v)}`);
    }
    ({ nLayer: this.nLayer, batch: this.batch, nHead: this.nHead, headDim: this.headDim, maxLength: this.maxLength } = shape);
    const size = this.batch * this.nHead * this.maxLength * this.headDim;
    this.keys = Array.from({ length: this.nLayer }, () => new Float32Array(size));
    this.values = Array.from({ length: this.nLayer }, () => new Float32Array(size));
  }

  /** A cache sized for `model`'s config (maxLength defaults to, and may not exceed, its blockSize). */
  static forModel(
    model: { config: { nLayer: number; nHead: number; nEmbd: number; blockSize: number } },
    batch = 1,
    maxLength = model.config.blockSize,
  ): KVCache {
    const c = model.config;
    if (maxLength > c.blockSize) {
      throw new RangeError(`KVCache.forModel: maxLength ${maxLength} exceeds the model's blockSize ${c.blockSize}`);
    }
    return new KVCache({ nLayer: c.nLayer, batch, nHead: c.nHead, headDim: c.nEmbd / c.nHead, maxLength });
  }

  /** Positions cached so far (all layers). */
  get length(): number {
    return this.len;
  }

  /** Free positions left. */
  get remaining(): number {
    return this.maxLength - this.len;
  }

  /**
   * Writes `t` new positions of one layer at [length, length + t): k and v dense [batch, heads, t, headDim].
   * Does not advance; the model calls `advance(t)` once every layer has written.
   */
  write(layer: number, k: Float32Array, v: Float32Array, t: number): void {
    this.checkLayer(layer, 'write');
    if (!Number.isInteger(t) || t < 1) throw new RangeError(`KVCache.write: t must be a positive integer, got ${t}`);
    if (this.len + t > this.maxLength) {
      throw new RangeError(`KVCache.write: cache full: ${this.len} cached + ${t} new > maxLength ${this.maxLength}`);
    }
    const D = this.headDim;
    const rows = this.batch * this.nHead;
    if (k.length !== rows * t * D || v.length !== rows * t * D) {
      throw new RangeError(
        `KVCache.write: k/v have ${k.length}/${v.length} elements, expected [${this.batch}, ${this.nHead}, ${t}, ${D}] = ${rows * t * D}`,
      );
    }
    const K = this.keys[layer]!;
    const V = this.values[layer]!;
    for (let r = 0; r < rows; r++) {
      const dst = (r * this.maxLength + this.len) * D;
      K.set(k.subarray(r * t * D, (r + 1) * t * D), dst);
      V.set(v.subarray(r * t * D, (r + 1) * t * D), dst);
    }
  }

  /** Marks `t` written positions as cached. */
  advance(t: number): void {
    if (!Number.isInteger(t) || t < 0 || this.len + t > this.maxLength) {
      throw new RangeError(`KVCache.advance: cannot advance ${this.len} by ${t} (maxLength ${this.maxLength})`);
    }
    this.len += t;
  }

  /** Forgets everything (the buffers are reused). */
  reset(): void {
    this.len = 0;
  }

  /** Keeps only the first `length` positions (e.g. to rewind after speculative steps). */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.len) {
      throw new RangeError(`KVCache.truncate: length ${length} out of range [0, ${this.len}]`);
    }
    this.len = length;
  }

  /** Raw key buffer of a layer, [batch, heads, maxLength, headDim]; rows ≥ length are stale. */
  keyData(layer: number): Float32Array {
    this.checkLayer(layer, 'keyData');
    return this.keys[layer]!;
  }

  valueData(layer: number): Float32Array {
    this.checkLayer(layer, 'valueData');
    return this.values[layer]!;
  }

  /** The cached keys of a layer as a tensor view [batch, heads, length, headDim] (no copy; not contiguous). */
  keysView(layer: number): Tensor {
    return this.view(this.keyData(layer));
  }

  valuesView(layer: number): Tensor {
    return this.view(this.valueData(layer));
  }

  private view(data: Float32Array): Tensor {
    const D = this.headDim;
    const whole = Tensor.fromArray(data, [this.batch, this.nHead, this.maxLength, D]);
    // A slice of a fresh wrapper: the cache's buffer stays owned by the cache.
    return whole.narrow(2, 0, this.len);
  }

  private checkLayer(layer: number, op: string): void {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayer) {
      throw new RangeError(`KVCache.${op}: layer ${layer} out of range [0, ${this.nLayer})`);
    }
  }
}
