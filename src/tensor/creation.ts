/** Creating tensors: constants, ranges, from JS data, and seeded random draws. */
import { type DType, isDType, type StorageArray } from './dtype.js';
import { type Generator, defaultGenerator } from './random.js';
import { checkShape, formatShape, numel, type Shape } from './shape.js';
import { type NestedArray, Tensor, type TensorOptions } from './tensor.js';

export interface RandomOptions {
  generator?: Generator;
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts: TensorOptions | undefined): Tensor {
  if (opts?.requiresGrad) t.requiresGrad_(true);
  return t;
}

function dtypeOf(opts: TensorOptions | undefined, fallback: DType = 'f32'): DType {
  const dt = opts?.dtype ?? fallback;
  if (!isDType(dt)) throw new TypeError(`unknown dtype '${String(dt)}': use f32, i32, bf16 or f16`);
  return dt;
}

/** Fills a new tensor from f32 values, converting when the dtype is bf16/f16/i32. */
function fromValues(values: ArrayLike<number>, shape: Shape, dtype: DType): Tensor {
  if (dtype === 'i32') {
    const a = new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) a[i] = Math.trunc(values[i]!);
    return Tensor.fromArray(a, shape, 'i32');
  }
  const f = Tensor.fromArray(values instanceof Float32Array ? values : Float32Array.from(values), shape, 'f32');
  return dtype === 'f32' ? f : f.to(dtype);
}

export function zeros(shape: Shape, opts?: TensorOptions): Tensor {
  return finish(Tensor.zeros(shape, dtypeOf(opts)), opts);
}

export function ones(shape: Shape, opts?: TensorOptions): Tensor {
  return full(shape, 1, opts);
}

export function full(shape: Shape, value: number, opts?: TensorOptions): Tensor {
  checkShape(shape, 'full');
  const dt = dtypeOf(opts);
  if (dt === 'f32' || dt === 'i32') return finish(Tensor.full(shape, value, dt), opts);
  return finish(fromValues(new Float32Array(numel(shape)).fill(value), shape, dt), opts);
}

export function zerosLike(t: Tensor, opts?: TensorOptions): Tensor {
  return zeros(t.shape, { dtype: t.dtype, ...opts });
}

export function onesLike(t: Tensor, opts?: TensorOptions): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, ...opts });
}

export function fullLike(t: Tensor, value: number, opts?: TensorOptions): Tensor {
  return full(t.shape, value, { dtype: t.dtype, ...opts });
}

/** arange(end) or arange(start, end, step): values start, start+step, … < end (i32 when all are integers). */
export function arange(start: number, end?: number, step = 1, opts?: TensorOptions): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  if (step === 0 || !Number.isFinite(step)) throw new RangeError(`arange: step must be finite and non-zero, got ${step}`);
  const n = Math.max(0, Math.ceil((e - s) / step));
  const allInt = Number.isInteger(s) && Number.isInteger(step) && Number.isInteger(e);
  const dt = dtypeOf(opts, allInt ? 'i32' : 'f32');
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = s + i * step;
  return finish(fromValues(values, [n], dt), opts);
}

/** Identity matrix n×m (m defaults to n). */
export function eye(n: number, m = n, opts?: TensorOptions): Tensor {
  checkShape([n, m], 'eye');
  const values = new Float32Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) values[i * m + i] = 1;
  return finish(fromValues(values, [n, m], dtypeOf(opts)), opts);
}

export interface TensorFromOptions extends TensorOptions {
  /** Shape for flat input (default: inferred from nesting, or [length] for a typed array). */
  shape?: Shape;
}

function nestedShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = (cur as readonly NestedArray[])[0]!;
  }
  return shape;
}

function flattenNested(data: NestedArray, shape: Shape, out: number[], dim = 0): void {
  if (dim === shape.length) {
    if (typeof data !== 'number') throw new TypeError('tensor: ragged nested array (mixed depths)');
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new TypeError(`tensor: ragged nested array: expected length ${shape[dim]} at depth ${dim}`);
  }
  for (const x of data as readonly NestedArray[]) flattenNested(x, shape, out, dim + 1);
}

/** A tensor from nested arrays, a number, or a typed array (copied). */
export function tensor(data: NestedArray | StorageArray, opts?: TensorFromOptions): Tensor {
  let values: ArrayLike<number>;
  let shape: number[];
  let dt: DType;
  if (ArrayBuffer.isView(data)) {
    values = data;
    shape = opts?.shape ? [...opts.shape] : [data.length];
    dt = dtypeOf(opts, data instanceof Int32Array ? 'i32' : 'f32');
    if (data instanceof Uint16Array) throw new TypeError('tensor: pass bf16/f16 bits with fromArray(bits, shape, dtype)');
  } else {
    shape = nestedShape(data);
    const flat: number[] = [];
    flattenNested(data, shape, flat);
    values = flat;
    if (opts?.shape) shape = [...opts.shape];
    dt = dtypeOf(opts);
  }
  if (numel(shape) !== values.length) {
    throw new RangeError(`tensor: ${values.length} values do not fill shape ${formatShape(shape)}`);
  }
  const copy = dt === 'i32' ? Int32Array.from(values, Math.trunc) : Float32Array.from(values);
  const t = dt === 'i32' ? Tensor.fromArray(copy, shape, 'i32') : fromValues(copy, shape, dt);
  return finish(t, opts);
}

export function fromArray(data: StorageArray, shape: Shape, dtype?: DType): Tensor {
  return Tensor.fromArray(data, shape, dtype);
}

/** Uniform [0, 1). */
export function rand(shape: Shape, opts?: RandomOptions): Tensor {
  checkShape(shape, 'rand');
  const g = opts?.generator ?? defaultGenerator;
  const a = new Float32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = g.uniform();
  return finish(Tensor.fromArray(a, shape), opts);
}

/** Standard normal. */
export function randn(shape: Shape, opts?: RandomOptions): Tensor {
  checkShape(shape, 'randn');
  const g = opts?.generator ?? defaultGenerator;
  const a = new Float32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = g.normal();
  return finish(Tensor.fromArray(a, shape), opts);
}

/** Uniform integers in [low, high), as i32. */
export function randint(low: number, high: number, shape: Shape, opts?: { generator?: Generator }): Tensor {
  checkShape(shape, 'randint');
  if (!Number.isInteger(low) || !Number.isInteger(high) || low >= high) {
    throw new RangeError(`randint: need integers low < high, got [${low}, ${high})`);
  }
  const g = opts?.generator ?? defaultGenerator;
  const a = new Int32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = g.int(low, high);
  return Tensor.fromArray(a, shape, 'i32');
}
