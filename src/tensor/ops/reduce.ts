/**
 * Reductions over any set of axes, with keepdim (PyTorch semantics).
 *
 * The backend reduces x viewed as [outer, n, inner] over n. Adjacent reduced axes (and size-1 axes
 * between them, which reducing leaves unchanged) merge into one such call; separate runs are reduced
 * one after another, last first, keeping each reduced axis as size 1 so earlier axes keep their place.
 */
import { noGrad, record } from '../autograd.js';
import { getBackend } from '../backend/index.js';
import type { ArgReduceOp, ReduceOp } from '../backend/backend.js';
import { type Shape, formatShape, normAxes, normAxis, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { div, eq, exp, mul, square, sub } from './elementwise.js';
import { checkF32, outData, scoped } from './util.js';

/** Axes to reduce: one, several, or undefined for all. An empty list reduces nothing. */
export type Dims = number | readonly number[] | undefined;

interface ReducePlan {
  /** Sorted, normalised axes. */
  axes: number[];
  /** Result shape with reduced axes kept as 1. */
  keepShape: number[];
  /** Result shape as returned (keepShape when keepdim). */
  outShape: number[];
  /** Elements folded into each result element. */
  count: number;
}

function plan(x: Tensor, dims: Dims, keepdim: boolean, op: string): ReducePlan {
  // A 0-d tensor accepts dim 0 / -1 (as PyTorch) but has no axis to reduce.
  const axes = x.ndim === 0 ? (normAxes(dims, 1, op), []) : normAxes(dims, x.ndim, op);
  const keepShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keepdim ? keepShape : x.shape.filter((_, i) => !axes.includes(i));
  const count = numel(axes.map((a) => x.shape[a]!));
  return { axes, keepShape, outShape, count };
}

/** Drops a temporary tensor object once a view of it has been taken (the view holds the memory). */
function reshapeOwned(t: Tensor, shape: Shape): Tensor {
  const r = t.reshape(shape);
  if (r !== t) t.dispose();
  return r;
}

/**
 * op over `axes` of a dense copy of x, as a new dense tensor of `p.outShape`. No autograd.
 */
function reduceKernel(op: ReduceOp, x: Tensor, p: ReducePlan, name: string): Tensor {
  if (p.count === 0 && numel(p.keepShape) > 0) {
    if (op === 'sum') return Tensor.zeros(p.outShape);
    if (op === 'logsumexp') return Tensor.full(p.outShape, -Infinity); // log of an empty sum
    throw new RangeError(`${name}: cannot reduce over an empty dim (shape ${formatShape(x.shape)}, dims [${p.axes.join(', ')}])`);
  }
  const backend = getBackend();
  const source = noGrad(() => x.contiguous());
  let cur = source;
  let shape = [...x.shape];
  const reduced = shape.map((d, i) => p.axes.includes(i) || d === 1);
  for (let end = shape.length - 1; end >= 0; end--) {
    if (!reduced[end]) continue;
    let start = end;
    while (start > 0 && reduced[start - 1]) start--;
    const n = numel(shape.slice(start, end + 1));
    if (n !== 1) {
      const nextShape = shape.map((d, i) => (i >= start && i <= end ? 1 : d));
      const next = Tensor.empty(nextShape);
      backend.reduce(op, cur.f32(name), numel(shape.slice(0, start)), n, numel(shape.slice(end + 1)), outData(next));
      if (cur !== x) cur.dispose();
      cur = next;
      shape = nextShape;
    }
    end = start;
  }
  if (cur === x) {
    // Nothing to reduce (only size-1 axes): the result is still a new tensor.
    cur = Tensor.empty(x.shape);
    outData(cur).set(x.f32(name));
  }
  return reshapeOwned(cur, p.outShape);
}

/** A gradient of the result shape, viewed as x's shape (broadcast over the reduced axes). */
function expandBack(g: Tensor, p: ReducePlan, shape: Shape): Tensor {
  const kept = g.reshape(p.keepShape);
  const out = kept.expand([...shape]);
  kept.dispose();
  return out;
}

// ---------------------------------------------------------------------------------------------

export function sum(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  checkF32(x, 'sum');
  const p = plan(x, dims, keepdim, 'sum');
  const out = reduceKernel('sum', x, p, 'sum');
  return record(out, 'sum', [x], (g) => [expandBack(g, p, x.shape)]);
}

/** Arithmetic mean; over an empty axis it is NaN (0/0), as PyTorch. */
export function mean(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  checkF32(x, 'mean');
  const p = plan(x, dims, keepdim, 'mean');
  const out = reduceKernel('sum', x, p, 'mean');
  // Sum, then divide in place (PyTorch's CPU mean is sum().div_(n)).
  const o = outData(out);
  const divisor = { data: new Float32Array([p.count]), offset: 0, strides: [0] };
  getBackend().binary('div', { data: o, offset: 0, strides: [1] }, divisor, [o.length], o);
  return record(out, 'mean', [x], (g) =>
    scoped((tmp) => [tmp(expandBack(tmp(div(g, p.count)), p, x.shape))]),
  );
}

/**
 * Largest value over dims. Backward as torch.amax: the gradient is split evenly among all
 * elements equal to the maximum.
 */
export function max(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  return extremum('max', x, dims, keepdim);
}

/** Smallest value over dims; gradient split evenly among all minimal elements (torch.amin). */
export function min(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  return extremum('min', x, dims, keepdim);
}

function extremum(op: 'max' | 'min', x: Tensor, dims: Dims, keepdim: boolean): Tensor {
  checkF32(x, op);
  const p = plan(x, dims, keepdim, op);
  const out = reduceKernel(op, x, p, op);
  return record(
    out,
    op,
    [x],
    (g) =>
      scoped((tmp) => {
        const outKeep = tmp(out.reshape(p.keepShape));
        const mask = tmp(eq(x, outKeep));
        const count = tmp(sum(mask, p.axes, true));
        const share = tmp(div(tmp(g.reshape(p.keepShape)), count));
        return [mul(share, mask)];
      }),
    [out],
  );
}

/** log Σ exp over dims, computed stably (max-shifted) by the kernel. */
export function logsumexp(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  checkF32(x, 'logsumexp');
  const p = plan(x, dims, keepdim, 'logsumexp');
  const out = reduceKernel('logsumexp', x, p, 'logsumexp');
  // d lse / dx = softmax(x) = exp(x − lse).
  return record(
    out,
    'logsumexp',
    [x],
    (g) =>
      scoped((tmp) => {
        const soft = tmp(exp(tmp(sub(x, tmp(out.reshape(p.keepShape))))));
        return [mul(soft, tmp(g.reshape(p.keepShape)))];
      }),
    [out],
  );
}

export interface VarOptions {
  /** Subtracted from the count in the divisor: 1 = unbiased (default), 0 = population variance. */
  correction?: number;
  keepdim?: boolean;
}

/** Variance over dims, two-pass (mean first, then squared deviations): no cancellation. */
export function variance(x: Tensor, dims?: Dims, options: VarOptions = {}): Tensor {
  const { correction = 1, keepdim = false } = options;
  checkF32(x, 'var');
  const p = plan(x, dims, keepdim, 'var');
  const out = noGrad(() =>
    scoped((tmp) => {
      const centered = tmp(sub(x, tmp(mean(x, p.axes, true))));
      const ss = tmp(sum(tmp(square(centered)), p.axes, keepdim));
      // PyTorch divides by max(0, n − correction): a non-positive divisor gives Inf/NaN, not a sign flip.
      return [div(ss, Math.max(0, p.count - correction))];
    }),
  )[0]!;
  return record(out, 'var', [x], (g) =>
    scoped((tmp) => {
      const centered = tmp(sub(x, tmp(mean(x, p.axes, true))));
      const scale = tmp(mul(tmp(g.reshape(p.keepShape)), 2 / (p.count - correction)));
      return [mul(centered, scale)];
    }),
  );
}
export { variance as var };

/** Index of the max (no dim: into the flattened tensor), i32. The first one wins ties; NaN is the max. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argReduce('argmax', x, dim, keepdim);
}

/** Index of the min (no dim: into the flattened tensor), i32. */
export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argReduce('argmin', x, dim, keepdim);
}

function argReduce(op: ArgReduceOp, x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  checkF32(x, op);
  const xs = x.f32(op);
  let outer = 1;
  let n = x.numel;
  let inner = 1;
  let outShape: number[] = keepdim ? x.shape.map(() => 1) : [];
  if (dim !== undefined && x.ndim > 0) {
    const d = normAxis(dim, x.ndim, op);
    outer = numel(x.shape.slice(0, d));
    n = x.shape[d]!;
    inner = numel(x.shape.slice(d + 1));
    outShape = x.shape.map((s, i) => (i === d ? 1 : s)).filter((_, i) => keepdim || i !== d);
  } else if (dim !== undefined) {
    normAxis(dim, 1, op); // a 0-d tensor accepts dim 0 / -1, as PyTorch
  }
  if (n === 0 && outer * inner > 0) {
    throw new RangeError(`${op}: cannot take ${op} over an empty dim (shape ${formatShape(x.shape)})`);
  }
  const out = Tensor.empty(outShape, 'i32');
  getBackend().argReduce(op, xs, outer, n, inner, out.storage.data as Int32Array);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Method sugar
// ---------------------------------------------------------------------------------------------

declare module '../tensor.js' {
  interface Tensor {
    sum(dims?: Dims, keepdim?: boolean): Tensor;
    mean(dims?: Dims, keepdim?: boolean): Tensor;
    max(dims?: Dims, keepdim?: boolean): Tensor;
    min(dims?: Dims, keepdim?: boolean): Tensor;
    logsumexp(dims?: Dims, keepdim?: boolean): Tensor;
    var(dims?: Dims, options?: VarOptions): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor;
    argmin(dim?: number, keepdim?: boolean): Tensor;
  }
}

const reductions = { sum, mean, max, min, logsumexp } as const;
for (const [name, fn] of Object.entries(reductions)) {
  Object.defineProperty(Tensor.prototype, name, {
    value: function (this: Tensor, dims?: Dims, keepdim?: boolean): Tensor {
      return fn(this, dims, keepdim);
    },
    writable: true,
    configurable: true,
  });
}

Tensor.prototype.var = function (this: Tensor, dims?: Dims, options?: VarOptions): Tensor {
  return variance(this, dims, options);
};
Tensor.prototype.argmax = function (this: Tensor, dim?: number, keepdim?: boolean): Tensor {
  return argmax(this, dim, keepdim);
};
Tensor.prototype.argmin = function (this: Tensor, dim?: number, keepdim?: boolean): Tensor {
  return argmin(this, dim, keepdim);
};
