/**
 * Tensor: storage + layout (shape, element strides, offset) + the op that made it.
 * Views (reshape of contiguous data, transpose, permute, slice, expand, squeeze/unsqueeze) share
 * storage and cost nothing; kernels that need dense input get it through `contiguous()`.
 */
import { getBackend } from './backend/index.js';
import type { Strided } from './backend/backend.js';
import { type BackwardOptions, type GradNode, noGrad, record, runBackward } from './autograd.js';
import { type DType, type StorageArray, isDType } from './dtype.js';
import { allocate, Storage } from './storage.js';
import {
  type Shape,
  broadcastShapes,
  checkShape,
  contiguousStrides,
  formatShape,
  inferShape,
  normAxis,
  numel,
  shapesEqual,
} from './shape.js';

export type NestedArray = number | readonly NestedArray[];

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

export class Tensor {
  /** Whether gradients flow to this tensor. Set on leaves by the user; on results by autograd. */
  requiresGrad = false;
  /** Accumulated gradient (leaves only), same shape as the tensor. */
  grad: Tensor | null = null;
  /** The backward node of the op that produced this tensor; null for leaves. */
  gradFn: GradNode | null = null;
  private disposed = false;

  constructor(
    public readonly storage: Storage,
    public readonly shape: readonly number[],
    public readonly strides: readonly number[],
    public readonly offset: number,
  ) {}

  // ---------- construction ----------

  /** An uninitialised dense tensor (memory may come from the pool; every kernel output overwrites it). */
  static empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape(shape, 'empty');
    const n = numel(shape);
    return new Tensor(new Storage(allocate(dtype, n, false), dtype), [...shape], contiguousStrides(shape), 0);
  }

  static zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape(shape, 'zeros');
    return new Tensor(new Storage(allocate(dtype, numel(shape), true), dtype), [...shape], contiguousStrides(shape), 0);
  }

  /** Wraps a dense typed array without copying. The tensor takes ownership of the array. */
  static fromArray(data: StorageArray, shape: Shape, dtype?: DType): Tensor {
    checkShape(shape, 'fromArray');
    const dt = dtype ?? inferArrayDType(data);
    if (dt === 'f32' && !(data instanceof Float32Array)) throw new TypeError(`fromArray: dtype f32 needs a Float32Array`);
    if (dt === 'i32' && !(data instanceof Int32Array)) throw new TypeError(`fromArray: dtype i32 needs an Int32Array`);
    if ((dt === 'bf16' || dt === 'f16') && !(data instanceof Uint16Array)) {
      throw new TypeError(`fromArray: dtype ${dt} needs a Uint16Array of raw bits`);
    }
    if (data.length !== numel(shape)) {
      throw new RangeError(`fromArray: ${data.length} elements do not fill shape ${formatShape(shape)} (${numel(shape)})`);
    }
    return new Tensor(new Storage(data, dt), [...shape], contiguousStrides(shape), 0);
  }

  // ---------- metadata ----------

  get dtype(): DType {
    return this.storage.dtype;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get numel(): number {
    return numel(this.shape);
  }

  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  size(dim?: number): number | readonly number[] {
    return dim === undefined ? this.shape : this.shape[normAxis(dim, this.ndim, 'size')]!;
  }

  /** Dense row-major layout (strides of size-1 dims don't matter). */
  isContiguous(): boolean {
    let expected = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const d = this.shape[i]!;
      if (d !== 1 && this.strides[i] !== expected) return false;
      expected *= d;
    }
    return true;
  }

  toString(): string {
    return `Tensor(shape=${formatShape(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---------- data access ----------

  private checkAlive(op: string): void {
    if (this.disposed || this.storage.released) {
      throw new Error(`${op}: the tensor was disposed; its memory may already be reused`);
    }
  }

  /** This tensor's layout as a kernel operand. */
  strided(): Strided<StorageArray> {
    this.checkAlive('strided');
    return { data: this.storage.data, offset: this.offset, strides: this.strides };
  }

  /**
   * The elements in row-major order: a zero-copy view when contiguous, else a copy. Treat it as
   * read-only unless you own the tensor.
   */
  dense(): StorageArray {
    this.checkAlive('dense');
    const n = this.numel;
    if (this.isContiguous()) return this.storage.data.subarray(this.offset, this.offset + n);
    return this.contiguous().storage.data;
  }

  /** Dense f32 elements (zero-copy when contiguous); throws for other dtypes with the way out. */
  f32(op = 'f32'): Float32Array {
    if (this.dtype !== 'f32') {
      throw new TypeError(`${op}: expected an f32 tensor, got ${this.dtype}; convert with .to('f32')`);
    }
    return this.dense() as Float32Array;
  }

  /** Dense i32 elements (zero-copy when contiguous); throws for other dtypes. */
  i32(op = 'i32'): Int32Array {
    if (this.dtype !== 'i32') {
      throw new TypeError(`${op}: expected an i32 index tensor, got ${this.dtype}; convert with .to('i32')`);
    }
    return this.dense() as Int32Array;
  }

  /** Elements as plain numbers in row-major order (bf16/f16 decoded). */
  toArray(): number[] {
    if (this.dtype === 'bf16' || this.dtype === 'f16') return this.to('f32').toArray();
    return Array.from(this.dense());
  }

  /** Nested arrays shaped like the tensor (a number for a scalar). */
  tolist(): NestedArray {
    const flat = this.toArray();
    if (this.ndim === 0) return flat[0]!;
    const build = (dim: number, start: number): NestedArray[] => {
      const size = this.shape[dim]!;
      const inner = numel(this.shape.slice(dim + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < size; i++) {
        out.push(dim === this.ndim - 1 ? flat[start + i]! : build(dim + 1, start + i * inner));
      }
      return out;
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new RangeError(`item: tensor has ${this.numel} elements, expected 1`);
    return this.toArray()[0]!;
  }

  // ---------- memory ----------

  /** Frees this tensor's memory now (returned to the pool once no view or graph uses it). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.release();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------- autograd ----------

  /** Accumulates gradients of this tensor into every leaf that requires grad. */
  backward(gradient?: Tensor, options: BackwardOptions = {}): void {
    let g = gradient;
    if (g === undefined) {
      if (this.numel !== 1) {
        throw new RangeError(`backward: gradient can be implied only for a scalar output, got ${formatShape(this.shape)}`);
      }
      g = Tensor.full(this.shape, 1);
    } else if (!shapesEqual(g.shape, this.shape)) {
      throw new RangeError(`backward: gradient shape ${formatShape(g.shape)} != tensor shape ${formatShape(this.shape)}`);
    }
    noGrad(() => runBackward(this, g, { accumulate, viewOf: (t) => t.alias(), exclusive }, options));
  }

  /** Same data, cut from the graph. */
  detach(): Tensor {
    return this.alias();
  }

  /** Marks a leaf as requiring grad (in place), PyTorch's `requires_grad_()`. */
  requiresGrad_(flag = true): this {
    if (!this.isLeaf) throw new Error('requiresGrad_: only leaves can change requiresGrad; use detach() first');
    if (flag && this.dtype !== 'f32') throw new TypeError(`requiresGrad_: only f32 tensors can require grad, got ${this.dtype}`);
    this.requiresGrad = flag;
    return this;
  }

  /** Clears the accumulated gradient (disposing it). */
  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  /** A new tensor object on the same storage and layout (its own reference), outside the graph. */
  alias(): Tensor {
    this.checkAlive('alias');
    this.storage.retain();
    return new Tensor(this.storage, this.shape, this.strides, this.offset);
  }

  private view(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    this.checkAlive('view');
    this.storage.retain();
    return new Tensor(this.storage, shape, strides, offset);
  }

  // ---------- dtype and copies ----------

  /** A dense copy (always copies). */
  clone(): Tensor {
    const out = Tensor.empty(this.shape, this.dtype);
    copyInto(this, out);
    return record(out, 'clone', [this], (g) => [g]);
  }

  /** This tensor if already dense row-major, else a dense copy. */
  contiguous(): Tensor {
    if (this.isContiguous()) return this;
    return this.clone();
  }

  /** Converts to another dtype (f32 ↔ bf16/f16/i32). f32 → i32 truncates toward zero. */
  to(dtype: DType): Tensor {
    if (!isDType(dtype)) throw new TypeError(`to: unknown dtype '${String(dtype)}': use f32, i32, bf16 or f16`);
    if (dtype === this.dtype) return this;
    const src = this.dense();
    const out = Tensor.empty(this.shape, dtype);
    const dst = out.storage.data;
    const b = getBackend();
    if (this.dtype === 'f32') {
      const x = src as Float32Array;
      if (dtype === 'bf16') b.f32ToBf16(x, dst as Uint16Array);
      else if (dtype === 'f16') b.f32ToF16(x, dst as Uint16Array);
      else for (let i = 0; i < x.length; i++) dst[i] = Math.trunc(x[i]!);
    } else if (dtype === 'f32') {
      if (this.dtype === 'bf16') b.bf16ToF32(src as Uint16Array, dst as Float32Array);
      else if (this.dtype === 'f16') b.f16ToF32(src as Uint16Array, dst as Float32Array);
      else (dst as Float32Array).set(src);
    } else {
      out.dispose();
      return this.to('f32').to(dtype);
    }
    // Only f32 → f32 would be differentiable; other casts leave the graph (bf16/f16 are storage formats).
    return out;
  }

  // ---------- views ----------

  /** Same elements, new shape (one dim may be -1). A view when the layout allows, else a copy. */
  reshape(...shape: (number | readonly number[])[]): Tensor {
    const target = inferShape(flattenShapeArgs(shape), this.numel, 'reshape');
    const strides = viewStrides(this.shape, this.strides, target);
    const out =
      strides !== null ? this.view(target, strides, this.offset) : this.contiguous().reshape(target);
    if (strides === null) return out; // the copy recorded its own graph
    const inShape = this.shape;
    return record(out, 'reshape', [this], (g) => [g.reshape(inShape)]);
  }

  /** Alias of reshape that refuses to copy (PyTorch's `view`). */
  viewAs(...shape: (number | readonly number[])[]): Tensor {
    const target = inferShape(flattenShapeArgs(shape), this.numel, 'view');
    if (viewStrides(this.shape, this.strides, target) === null) {
      throw new Error(`view: ${formatShape(this.shape)} with strides ${formatShape(this.strides)} cannot be viewed as ${formatShape(target)}; use reshape() (copies)`);
    }
    return this.reshape(target);
  }

  flatten(startDim = 0, endDim = -1): Tensor {
    if (this.ndim === 0) return this.reshape([1]);
    const s = normAxis(startDim, this.ndim, 'flatten');
    const e = normAxis(endDim, this.ndim, 'flatten');
    if (s > e) throw new RangeError(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
    const merged = numel(this.shape.slice(s, e + 1));
    return this.reshape([...this.shape.slice(0, s), merged, ...this.shape.slice(e + 1)]);
  }

  permute(...dims: (number | readonly number[])[]): Tensor {
    const order = flattenShapeArgs(dims).map((d) => normAxis(d, this.ndim, 'permute'));
    if (order.length !== this.ndim || new Set(order).size !== this.ndim) {
      throw new RangeError(`permute: [${order.join(', ')}] is not a permutation of ${this.ndim} dims`);
    }
    const out = this.view(
      order.map((d) => this.shape[d]!),
      order.map((d) => this.strides[d]!),
      this.offset,
    );
    const inverse = new Array<number>(order.length);
    order.forEach((d, i) => (inverse[d] = i));
    return record(out, 'permute', [this], (g) => [g.permute(inverse)]);
  }

  transpose(dim0 = -2, dim1 = -1): Tensor {
    const a = normAxis(dim0, this.ndim, 'transpose');
    const b = normAxis(dim1, this.ndim, 'transpose');
    const order = Array.from({ length: this.ndim }, (_, i) => i);
    order[a] = b;
    order[b] = a;
    return this.permute(order);
  }

  /** Transpose of the last two dims. */
  get mT(): Tensor {
    return this.transpose(-2, -1);
  }

  unsqueeze(dim: number): Tensor {
    const d = normAxis(dim, this.ndim + 1, 'unsqueeze');
    const shape = [...this.shape];
    const strides = [...this.strides];
    const stride = d < this.ndim ? this.strides[d]! * this.shape[d]! : 1;
    shape.splice(d, 0, 1);
    strides.splice(d, 0, stride);
    const out = this.view(shape, strides, this.offset);
    const inShape = this.shape;
    return record(out, 'unsqueeze', [this], (g) => [g.reshape(inShape)]);
  }

  /** Removes size-1 dims (all, or the given ones; a given dim that isn't 1 is left, as PyTorch). */
  squeeze(dim?: number | readonly number[]): Tensor {
    const drop = new Set(
      dim === undefined
        ? this.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)
        : (typeof dim === 'number' ? [dim] : dim).map((d) => normAxis(d, this.ndim, 'squeeze')).filter((i) => this.shape[i] === 1),
    );
    const shape = this.shape.filter((_, i) => !drop.has(i));
    const strides = this.strides.filter((_, i) => !drop.has(i));
    const out = this.view(shape, strides, this.offset);
    const inShape = this.shape;
    return record(out, 'squeeze', [this], (g) => [g.reshape(inShape)]);
  }

  /** Broadcasts to `shape` without copying (stride 0 on expanded dims). -1 keeps a dim. */
  expand(...shape: (number | readonly number[])[]): Tensor {
    const raw = flattenShapeArgs(shape);
    if (raw.length < this.ndim) {
      throw new RangeError(`expand: target ${formatShape(raw)} has fewer dims than ${formatShape(this.shape)}`);
    }
    const lead = raw.length - this.ndim;
    const target = raw.map((d, i) => (d === -1 && i >= lead ? this.shape[i - lead]! : d));
    checkShape(target, 'expand');
    const strides = target.map((d, i) => {
      if (i < lead) return 0;
      const own = this.shape[i - lead]!;
      if (own === d) return this.strides[i - lead]!;
      if (own === 1) return 0;
      throw new RangeError(`expand: cannot expand ${formatShape(this.shape)} to ${formatShape(target)} (dim ${i}: ${own} vs ${d})`);
    });
    const out = this.view(target, strides, this.offset);
    const inShape = this.shape;
    return record(out, 'expand', [this], (g) => [sumToShape(g, inShape)]);
  }

  broadcastTo(shape: Shape): Tensor {
    broadcastShapes(this.shape, shape, 'broadcastTo');
    return this.expand([...shape]);
  }

  /** Elements start, start+step, … < end along `dim` (negative start/end count from the end). */
  slice(dim: number, start = 0, end?: number, step = 1): Tensor {
    const d = normAxis(dim, this.ndim, 'slice');
    const size = this.shape[d]!;
    if (!Number.isInteger(step) || step < 1) throw new RangeError(`slice: step must be a positive integer, got ${step}`);
    const clampIdx = (i: number): number => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
    const s = clampIdx(start);
    const e = Math.max(clampIdx(end ?? size), s);
    const len = Math.ceil((e - s) / step);
    const shape = [...this.shape];
    const strides = [...this.strides];
    shape[d] = len;
    strides[d] = this.strides[d]! * step;
    const out = this.view(shape, strides, this.offset + s * this.strides[d]!);
    const inShape = this.shape;
    return record(out, 'slice', [this], (g) => {
      const full = Tensor.zeros(inShape);
      copyInto(g, full.slice(d, s, e, step));
      return [full];
    });
  }

  /** `length` elements from `start` along `dim`; unlike slice, out-of-range is an error. */
  narrow(dim: number, start: number, length: number): Tensor {
    const d = normAxis(dim, this.ndim, 'narrow');
    const size = this.shape[d]!;
    const s = start < 0 ? start + size : start;
    if (s < 0 || length < 0 || s + length > size) {
      throw new RangeError(`narrow: [${start}, ${start}+${length}) out of range for dim ${dim} of size ${size}`);
    }
    return this.slice(d, s, s + length);
  }

  /** Index `index` along `dim`, dropping that dim. */
  select(dim: number, index: number): Tensor {
    const d = normAxis(dim, this.ndim, 'select');
    const size = this.shape[d]!;
    const i = index < 0 ? index + size : index;
    if (!Number.isInteger(i) || i < 0 || i >= size) {
      throw new RangeError(`select: index ${index} out of range for dim ${dim} of size ${size}`);
    }
    return this.slice(d, i, i + 1).squeeze(d);
  }

  // ---------- creation helpers used across ops ----------

  static full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
    const out = Tensor.empty(shape, dtype);
    out.storage.data.fill(value);
    return out;
  }
}

function inferArrayDType(data: StorageArray): DType {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Int32Array) return 'i32';
  throw new TypeError('fromArray: a Uint16Array needs an explicit dtype (bf16 or f16)');
}

function flattenShapeArgs(args: readonly (number | readonly number[])[]): number[] {
  if (args.length === 1 && Array.isArray(args[0])) return [...(args[0] as readonly number[])];
  return args.map((a) => {
    if (typeof a !== 'number') throw new TypeError('shape arguments: pass numbers or one array of numbers');
    return a;
  });
}

/**
 * Strides that view (shape, strides) as `target` without copying, or null if impossible
 * (PyTorch's `computeStride`: merge input dims into contiguous chunks and split each chunk).
 */
function viewStrides(shape: Shape, strides: Shape, target: Shape): number[] | null {
  if (numel(shape) === 0) return contiguousStrides(target);
  const out = new Array<number>(target.length);
  // Walk input dims from the back, grouping runs that are mutually contiguous.
  let viewD = target.length - 1;
  let chunkBaseStride = strides[strides.length - 1] ?? 1;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d]!;
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBaseStride)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || target[viewD] === 1)) {
        out[viewD] = viewNumel * chunkBaseStride;
        viewNumel *= target[viewD]!;
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        chunkBaseStride = strides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  if (viewD !== -1) {
    // Leftover size-1 target dims.
    while (viewD >= 0) {
      if (target[viewD] !== 1) return null;
      out[viewD] = 1;
      viewD--;
    }
  }
  return out;
}

/** Writes `src`'s elements into `dst` (same shape; dst may be a strided view). No autograd. */
export function copyInto(src: Tensor, dst: Tensor): void {
  if (!shapesEqual(src.shape, dst.shape)) {
    throw new RangeError(`copy: shape ${formatShape(src.shape)} does not match ${formatShape(dst.shape)}`);
  }
  if (src.dtype !== dst.dtype) throw new TypeError(`copy: dtype ${src.dtype} does not match ${dst.dtype}`);
  const n = src.numel;
  if (n === 0) return;
  const dstData = dst.storage.data;
  if (dst.isContiguous()) {
    const out = dstData.subarray(dst.offset, dst.offset + n);
    if (src.isContiguous()) out.set(src.storage.data.subarray(src.offset, src.offset + n));
    else getBackend().copyStrided(src.strided(), src.shape, out);
    return;
  }
  // Strided destination (slice backward, concat into a slice): copy row blocks of the innermost
  // contiguous run with TypedArray.set (memcpy), else element by element.
  const s = src.dense();
  const nd = dst.ndim;
  const shape = dst.shape;
  const strides = dst.strides;
  const inner = shape[nd - 1]!;
  const innerContig = strides[nd - 1] === 1;
  const outer = n / inner;
  const idx = new Array<number>(nd).fill(0);
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    let base = dst.offset;
    for (let d = 0; d < nd - 1; d++) base += idx[d]! * strides[d]!;
    if (innerContig) {
      dstData.set(s.subarray(pos, pos + inner), base);
    } else {
      const st = strides[nd - 1]!;
      for (let i = 0; i < inner; i++) dstData[base + i * st] = s[pos + i]!;
    }
    pos += inner;
    for (let d = nd - 2; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
}

/** Sums a broadcast gradient back down to `shape` (the backward of broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  let cur = g.contiguous();
  // Reduce every broadcast dim: the leading extra ones and those where shape has 1.
  for (let d = g.ndim - 1; d >= 0; d--) {
    const want = d < lead ? 1 : shape[d - lead]!;
    if (cur.shape[d] !== want) {
      if (want !== 1) throw new RangeError(`sumToShape: ${formatShape(g.shape)} does not broadcast to ${formatShape(shape)}`);
      const next = reduceSumDim(cur, d);
      if (cur !== g) cur.dispose();
      cur = next;
    }
  }
  const out = cur.reshape(shape);
  if (out !== cur && cur !== g) cur.dispose();
  return out;
}

/** Sums dim `d` of a dense f32 tensor, keeping it as size 1. */
function reduceSumDim(x: Tensor, d: number): Tensor {
  const shape = [...x.shape];
  const outer = numel(shape.slice(0, d));
  const n = shape[d]!;
  const inner = numel(shape.slice(d + 1));
  shape[d] = 1;
  const out = Tensor.empty(shape);
  getBackend().reduce('sum', x.f32('sum'), outer, n, inner, out.storage.data as Float32Array);
  return out;
}

/** target + g, in target's memory when target is dense and owned by no one else. */
function accumulate(target: Tensor, g: Tensor): Tensor {
  const b = getBackend();
  const shape = target.shape;
  const gs = g.strided() as Strided<Float32Array>;
  if (target.isContiguous() && target.offset === 0 && target.storage.refCount === 1 && target.numel === target.storage.data.length) {
    const t = target.storage.data as Float32Array;
    b.binary('add', { data: t, offset: 0, strides: contiguousStrides(shape) }, gs, shape, t);
    return target;
  }
  const out = Tensor.empty(shape);
  b.binary('add', target.strided() as Strided<Float32Array>, gs, shape, out.storage.data as Float32Array);
  return out;
}

/** t when its memory is dense and exclusively its own, else a dense copy (for adopting as a .grad). */
function exclusive(t: Tensor): Tensor {
  if (t.isContiguous() && t.offset === 0 && t.storage.refCount === 1 && t.numel === t.storage.data.length) return t;
  const out = Tensor.empty(t.shape, t.dtype);
  copyInto(t, out);
  return out;
}
