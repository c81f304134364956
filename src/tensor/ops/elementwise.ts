/**
 * Elementwise ops with NumPy broadcasting: forward through the backend, backward beside it.
 *
 * Binary ops hand the backend strided views (broadcast dims get stride 0), so neither broadcasting
 * nor a transposed/sliced operand costs a copy. Unary kernels need dense input and call
 * `contiguous()` (free when already dense). Backward closures run with recording off and build
 * input gradients from these same ops or from the backend's fused `unaryBackward`.
 */
import { record } from '../autograd.js';
import { getBackend } from '../backend/index.js';
import type { BinaryOp, UnaryOp } from '../backend/backend.js';
import { type Shape, broadcastShapes } from '../shape.js';
import { Tensor, sumToShape } from '../tensor.js';
import { asTensor, broadcastView, checkF32, outData, scoped, type TensorLike } from './util.js';

export type { TensorLike } from './util.js';

/** Sums a gradient over broadcast dims down to `shape`, disposing the full-size temporary. */
function reduceTo(g: Tensor, shape: Shape, tmp: (t: Tensor) => Tensor): Tensor {
  const r = sumToShape(g, shape);
  if (r !== g) tmp(g);
  return r;
}

function binaryKernel(op: BinaryOp, a: Tensor, b: Tensor, name: string): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, name);
  const out = Tensor.empty(shape);
  getBackend().binary(op, broadcastView(a, shape), broadcastView(b, shape), shape, outData(out));
  return out;
}

/** x·scale + shift for a dense x: one pass with no broadcasting machinery (scalar fast path). */
function affineKernel(x: Tensor, scale: number, shift: number): Tensor {
  const out = Tensor.empty(x.shape);
  getBackend().affine(x.f32('affine'), scale, shift, outData(out));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------------

export function add(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number' && a instanceof Tensor && a.dtype === 'f32' && a.isContiguous()) {
    return record(affineKernel(a, 1, b), 'add', [a], (g) => [g]);
  }
  if (typeof a === 'number' && b instanceof Tensor) return add(b, a);
  const ta = asTensor(a, 'add');
  const tb = asTensor(b, 'add');
  const out = binaryKernel('add', ta, tb, 'add');
  return record(out, 'add', [ta, tb], (g) =>
    scoped((tmp) => [
      ta.requiresGrad ? reduceTo(g, ta.shape, tmp) : null,
      tb.requiresGrad ? reduceTo(g, tb.shape, tmp) : null,
    ]),
  );
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number' && a instanceof Tensor && a.dtype === 'f32' && a.isContiguous()) {
    return record(affineKernel(a, 1, -b), 'sub', [a], (g) => [g]);
  }
  if (typeof a === 'number' && b instanceof Tensor && b.dtype === 'f32' && b.isContiguous()) {
    return record(affineKernel(b, -1, a), 'sub', [b], (g) => [neg(g)]);
  }
  const ta = asTensor(a, 'sub');
  const tb = asTensor(b, 'sub');
  const out = binaryKernel('sub', ta, tb, 'sub');
  return record(out, 'sub', [ta, tb], (g) =>
    scoped((tmp) => [
      ta.requiresGrad ? reduceTo(g, ta.shape, tmp) : null,
      tb.requiresGrad ? reduceTo(tmp(neg(g)), tb.shape, tmp) : null,
    ]),
  );
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number' && a instanceof Tensor && a.dtype === 'f32' && a.isContiguous()) {
    return record(affineKernel(a, b, 0), 'mul', [a], (g) => [mul(g, b)]);
  }
  if (typeof a === 'number' && b instanceof Tensor) return mul(b, a);
  const ta = asTensor(a, 'mul');
  const tb = asTensor(b, 'mul');
  const out = binaryKernel('mul', ta, tb, 'mul');
  return record(out, 'mul', [ta, tb], (g) =>
    scoped((tmp) => [
      ta.requiresGrad ? reduceTo(mul(g, tb), ta.shape, tmp) : null,
      tb.requiresGrad ? reduceTo(mul(g, ta), tb.shape, tmp) : null,
    ]),
  );
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  // Division by a number stays a true division (not a multiply by 1/b) so results match PyTorch bit for bit.
  const ta = asTensor(a, 'div');
  const tb = asTensor(b, 'div');
  const out = binaryKernel('div', ta, tb, 'div');
  return record(out, 'div', [ta, tb], (g) =>
    scoped((tmp) => [
      ta.requiresGrad ? reduceTo(div(g, tb), ta.shape, tmp) : null,
      // d(a/b)/db = −a/b², written as PyTorch does: −g·a / (b·b).
      tb.requiresGrad ? reduceTo(neg(tmp(div(tmp(mul(g, ta)), tmp(mul(tb, tb))))), tb.shape, tmp) : null,
    ]),
  );
}

/** a^b elementwise (C pow semantics: pow(x, 0) = 1, pow(1, y) = 1). */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a, 'pow');
  const tb = asTensor(b, 'pow');
  const out = binaryKernel('pow', ta, tb, 'pow');
  return record(out, 'pow', [ta, tb], (g) =>
    scoped((tmp) => {
      let ga: Tensor | null = null;
      if (ta.requiresGrad) {
        if (typeof b === 'number') {
          // PyTorch: exponent 0 gives a zero gradient even where x^(−1) is infinite.
          ga = b === 0 ? Tensor.zeros(ta.shape) : reduceTo(mul(g, tmp(mul(tmp(pow(ta, b - 1)), b))), ta.shape, tmp);
        } else {
          const d = tmp(mul(tmp(pow(ta, tmp(sub(tb, 1)))), tb));
          ga = reduceTo(where(tmp(eq(tb, 0)), 0, tmp(mul(g, d))), ta.shape, tmp);
        }
      }
      let gb: Tensor | null = null;
      if (tb.requiresGrad) {
        // d(a^b)/db = a^b·log a, defined as 0 where a = 0 and b >= 0 (PyTorch's convention).
        const zeroBase = tmp(mul(tmp(eq(ta, 0)), tmp(ge(tb, 0))));
        const d = tmp(where(zeroBase, 0, tmp(mul(out, tmp(log(ta))))));
        gb = reduceTo(mul(g, d), tb.shape, tmp);
      }
      return [ga, gb];
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Unary functions (one backend kernel each, derivative from the fused unaryBackward kernel)
// ---------------------------------------------------------------------------------------------

function unaryOp(op: UnaryOp, x: Tensor, name: string): Tensor {
  checkF32(x, name);
  // The kernel needs dense input; if x is a view that requires grad, the copy is recorded too.
  const xc = x.contiguous();
  const out = Tensor.empty(xc.shape);
  getBackend().unary(op, xc.f32(name), outData(out));
  record(out, name, [xc], (g) => {
    const gc = g.contiguous();
    const gx = Tensor.empty(xc.shape);
    getBackend().unaryBackward(op, xc.f32(name), outData(out), gc.f32(name), outData(gx));
    if (gc !== g) gc.dispose();
    return [gx];
  });
  releaseCopy(xc, x, out);
  return out;
}

/** Frees a dense copy made only for the forward kernel, unless the recorded backward still needs it. */
function releaseCopy(copy: Tensor, original: Tensor, out: Tensor): void {
  if (copy !== original && !out.requiresGrad) copy.dispose();
}

export function neg(x: Tensor): Tensor {
  return unaryOp('neg', x, 'neg');
}
export function exp(x: Tensor): Tensor {
  return unaryOp('exp', x, 'exp');
}
export function log(x: Tensor): Tensor {
  return unaryOp('log', x, 'log');
}
export function sqrt(x: Tensor): Tensor {
  return unaryOp('sqrt', x, 'sqrt');
}
export function rsqrt(x: Tensor): Tensor {
  return unaryOp('rsqrt', x, 'rsqrt');
}
export function abs(x: Tensor): Tensor {
  return unaryOp('abs', x, 'abs');
}
export function sin(x: Tensor): Tensor {
  return unaryOp('sin', x, 'sin');
}
export function cos(x: Tensor): Tensor {
  return unaryOp('cos', x, 'cos');
}
export function tanh(x: Tensor): Tensor {
  return unaryOp('tanh', x, 'tanh');
}
export function sigmoid(x: Tensor): Tensor {
  return unaryOp('sigmoid', x, 'sigmoid');
}
export function relu(x: Tensor): Tensor {
  return unaryOp('relu', x, 'relu');
}
export function silu(x: Tensor): Tensor {
  return unaryOp('silu', x, 'silu');
}
export function square(x: Tensor): Tensor {
  return unaryOp('square', x, 'square');
}
export function reciprocal(x: Tensor): Tensor {
  return unaryOp('reciprocal', x, 'reciprocal');
}

export interface GeluOptions {
  /** 'none': exact erf form (default); 'tanh': the tanh approximation (GPT-2's). */
  approximate?: 'none' | 'tanh';
}

export function gelu(x: Tensor, options: GeluOptions = {}): Tensor {
  const approximate = options.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') {
    throw new RangeError(`gelu: approximate must be 'none' or 'tanh', got '${String(approximate)}'`);
  }
  return unaryOp(approximate === 'tanh' ? 'gelu_tanh' : 'gelu', x, 'gelu');
}

// ---------------------------------------------------------------------------------------------
// Clamping, selection, extrema
// ---------------------------------------------------------------------------------------------

/** min(max(x, min), max); either bound may be omitted. NaN stays NaN. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  checkF32(x, 'clamp');
  if (min === undefined && max === undefined) throw new TypeError('clamp: give at least one of min and max');
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  const xc = x.contiguous();
  const out = Tensor.empty(xc.shape);
  getBackend().clamp(xc.f32('clamp'), lo, hi, outData(out));
  // Gradient passes where lo <= x <= hi (both ends included, as PyTorch; NaN passes none).
  record(out, 'clamp', [xc], (g) => scoped((tmp) => [mul(g, tmp(mul(tmp(ge(xc, lo)), tmp(le(xc, hi)))))]));
  releaseCopy(xc, x, out);
  return out;
}

/** cond != 0 ? a : b, all three broadcast together. `cond` is a 1/0 mask (f32, or i32 converted). */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (!(cond instanceof Tensor)) throw new TypeError('where: cond must be a Tensor');
  const c = cond.dtype === 'i32' ? cond.to('f32') : cond;
  checkF32(c, 'where');
  const ta = asTensor(a, 'where');
  const tb = asTensor(b, 'where');
  const shape = broadcastShapes(broadcastShapes(c.shape, ta.shape, 'where'), tb.shape, 'where');
  const out = Tensor.empty(shape);
  getBackend().where(broadcastView(c, shape), broadcastView(ta, shape), broadcastView(tb, shape), shape, outData(out));
  return record(
    out,
    'where',
    [ta, tb],
    (g) =>
      scoped((tmp) => [
        ta.requiresGrad ? reduceTo(where(c, g, 0), ta.shape, tmp) : null,
        tb.requiresGrad ? reduceTo(where(c, 0, g), tb.shape, tmp) : null,
      ]),
    [c], // the mask is read in backward
  );
}

/**
 * maximum/minimum backward, as PyTorch: the winner gets the gradient, a tie splits it half/half,
 * and where a NaN makes every comparison false both sides get it in full.
 * `loserA` is the comparison under which `a` gets nothing (a < b for maximum).
 */
function extremum(op: 'maximum' | 'minimum', a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a, op);
  const tb = asTensor(b, op);
  const out = binaryKernel(op, ta, tb, op);
  const loserA = op === 'maximum' ? lt : gt;
  const loserB = op === 'maximum' ? gt : lt;
  return record(out, op, [ta, tb], (g) =>
    scoped((tmp) => {
      const half = tmp(mul(tmp(eq(ta, tb)), 0.5));
      const share = (loser: Tensor): Tensor => tmp(sub(tmp(sub(1, loser)), half));
      return [
        ta.requiresGrad ? reduceTo(mul(g, share(tmp(loserA(ta, tb)))), ta.shape, tmp) : null,
        tb.requiresGrad ? reduceTo(mul(g, share(tmp(loserB(ta, tb)))), tb.shape, tmp) : null,
      ];
    }),
  );
}

export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return extremum('maximum', a, b);
}

export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return extremum('minimum', a, b);
}

// ---------------------------------------------------------------------------------------------
// Comparisons: f32 1/0, not differentiable
// ---------------------------------------------------------------------------------------------

function compare(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  return binaryKernel(op, asTensor(a, op), asTensor(b, op), op);
}

export function eq(a: TensorLike, b: TensorLike): Tensor {
  return compare('eq', a, b);
}
export function ne(a: TensorLike, b: TensorLike): Tensor {
  return compare('ne', a, b);
}
export function lt(a: TensorLike, b: TensorLike): Tensor {
  return compare('lt', a, b);
}
export function le(a: TensorLike, b: TensorLike): Tensor {
  return compare('le', a, b);
}
export function gt(a: TensorLike, b: TensorLike): Tensor {
  return compare('gt', a, b);
}
export function ge(a: TensorLike, b: TensorLike): Tensor {
  return compare('ge', a, b);
}

// ---------------------------------------------------------------------------------------------
// Method sugar: x.add(y) == add(x, y)
// ---------------------------------------------------------------------------------------------

declare module '../tensor.js' {
  interface Tensor {
    add(other: TensorLike): Tensor;
    sub(other: TensorLike): Tensor;
    mul(other: TensorLike): Tensor;
    div(other: TensorLike): Tensor;
    pow(exponent: TensorLike): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    gelu(options?: GeluOptions): Tensor;
    silu(): Tensor;
    square(): Tensor;
    reciprocal(): Tensor;
    clamp(min?: number, max?: number): Tensor;
    maximum(other: TensorLike): Tensor;
    minimum(other: TensorLike): Tensor;
    /** PyTorch's `x.where(cond, other)`: cond ? x : other. */
    where(cond: Tensor, other: TensorLike): Tensor;
    eq(other: TensorLike): Tensor;
    ne(other: TensorLike): Tensor;
    lt(other: TensorLike): Tensor;
    le(other: TensorLike): Tensor;
    gt(other: TensorLike): Tensor;
    ge(other: TensorLike): Tensor;
  }
}

const binaryMethods = { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge } as const;
for (const [name, fn] of Object.entries(binaryMethods)) {
  Object.defineProperty(Tensor.prototype, name, {
    value: function (this: Tensor, other: TensorLike): Tensor {
      return fn(this, other);
    },
    writable: true,
    configurable: true,
  });
}

const unaryMethods = { neg, exp, log, sqrt, rsqrt, abs, sin, cos, tanh, sigmoid, relu, silu, square, reciprocal } as const;
for (const [name, fn] of Object.entries(unaryMethods)) {
  Object.defineProperty(Tensor.prototype, name, {
    value: function (this: Tensor): Tensor {
      return fn(this);
    },
    writable: true,
    configurable: true,
  });
}

Tensor.prototype.gelu = function (this: Tensor, options?: GeluOptions): Tensor {
  return gelu(this, options);
};
Tensor.prototype.clamp = function (this: Tensor, min?: number, max?: number): Tensor {
  return clamp(this, min, max);
};
Tensor.prototype.where = function (this: Tensor, cond: Tensor, other: TensorLike): Tensor {
  return where(cond, this, other);
};
