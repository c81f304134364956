/**
 * Indexing by i32 index tensors: indexSelect, gather and scatterAdd (out of place), PyTorch semantics.
 *
 * Every op views its operands as [outer, n, inner] around the indexed dim and runs one backend
 * kernel; each is the other's backward (gather ↔ scatter-add). Indices are checked here, before any
 * kernel runs, so the error names the op and the dim; the kernels check again (native code never
 * touches memory outside a buffer).
 */
import { noGrad, record } from '../autograd.js';
import { getBackend } from '../backend/index.js';
import { type Shape, formatShape, normAxis, numel, shapesEqual } from '../shape.js';
import { Tensor, copyInto } from '../tensor.js';
import { add } from './elementwise.js';
import { checkF32, outData } from './util.js';

function checkIndexTensor(idx: Tensor, op: string): Int32Array {
  if (!(idx instanceof Tensor)) throw new TypeError(`${op}: index must be a Tensor`);
  return idx.i32(op);
}

function checkRange(ids: Int32Array, size: number, op: string, dim: number): void {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (v < 0 || v >= size) {
      throw new RangeError(`${op}: index ${v} out of range [0, ${size}) for dim ${dim} (position ${i})`);
    }
  }
}

/** [outer, n, inner] around dim `d` of `shape`. */
function split3(shape: Shape, d: number): [number, number, number] {
  return [numel(shape.slice(0, d)), shape[d]!, numel(shape.slice(d + 1))];
}

/** A view of x restricted to the first `sizes[d]` entries of every dim except `dim`. */
function leadingBlock(x: Tensor, sizes: Shape, dim: number): Tensor {
  let v = x;
  for (let d = 0; d < x.ndim; d++) {
    if (d !== dim && sizes[d] !== x.shape[d]) {
      const next = v.slice(d, 0, sizes[d]);
      if (v !== x) v.dispose();
      v = next;
    }
  }
  return v;
}

/** `part` written into a zero tensor of `shape` at the leading block (the backward of leadingBlock). */
function padTo(part: Tensor, shape: Shape, dim: number): Tensor {
  if (shapesEqual(part.shape, shape)) return part;
  const full = Tensor.zeros(shape);
  const window = leadingBlock(full, part.shape, dim);
  copyInto(part, window);
  window.dispose();
  part.dispose();
  return full;
}

// ---------------------------------------------------------------------------------------------

/** Rows (slices along `dim`) of x picked by a 1-d (or 0-d) i32 index; repeated indices allowed. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  checkF32(x, 'indexSelect');
  const ids = checkIndexTensor(index, 'indexSelect');
  if (index.ndim > 1) throw new RangeError(`indexSelect: index must be 1-d, got shape ${formatShape(index.shape)}`);
  const d = normAxis(dim, Math.max(x.ndim, 1), 'indexSelect'); // 0-d behaves as [1]
  // A 0-d x behaves as shape [1] and stays 0-d (PyTorch).
  const shape = x.ndim === 0 ? [1] : x.shape;
  const [outer, n, inner] = split3(shape, d);
  checkRange(ids, n, 'indexSelect', dim);
  const m = ids.length;
  const outShape = x.ndim === 0 ? [] : shape.map((s, i) => (i === d ? m : s));
  const out = Tensor.empty(outShape);
  const xc = noGrad(() => x.contiguous());
  const b = getBackend();
  if (outer === 1) {
    b.gatherRows(xc.f32('indexSelect'), n, inner, ids, outData(out));
  } else {
    // The general gather kernel with the index broadcast to [outer, m, inner]: one kernel call.
    b.gather(xc.f32('indexSelect'), outer, n, inner, broadcastIndex(ids, outer, inner), m, outData(out));
  }
  if (xc !== x) xc.dispose();
  return record(
    out,
    'indexSelect',
    [x],
    (g) => {
      const gc = g.contiguous();
      const gx = Tensor.zeros(x.shape);
      if (outer === 1) b.scatterAddRows(gc.f32('indexSelect'), ids, inner, outData(gx), n);
      else b.scatterAdd(outData(gx), outer, n, inner, broadcastIndex(ids, outer, inner), m, gc.f32('indexSelect'));
      if (gc !== g) gc.dispose();
      return [gx];
    },
    [index],
  );
}

/** ids (length m) repeated as an [outer, m, inner] index. */
function broadcastIndex(ids: Int32Array, outer: number, inner: number): Int32Array {
  const m = ids.length;
  const out = new Int32Array(outer * m * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) out.fill(ids[j]!, (o * m + j) * inner, (o * m + j + 1) * inner);
  }
  return out;
}

function checkSameRank(a: Tensor, b: Tensor, op: string, what: string): void {
  if (a.ndim !== b.ndim) {
    throw new RangeError(
      `${op}: index ${formatShape(b.shape)} must have as many dims as ${what} ${formatShape(a.shape)}`,
    );
  }
}

/** torch.gather: out[..., j, ...] = x[..., idx[..., j, ...], ...] along `dim`; out has idx's shape. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkF32(x, 'gather');
  const ids = checkIndexTensor(index, 'gather');
  checkSameRank(x, index, 'gather', 'input');
  const d = normAxis(dim, Math.max(x.ndim, 1), 'gather'); // 0-d behaves as [1]
  const xShape = x.ndim === 0 ? [1] : x.shape;
  const iShape = index.ndim === 0 ? [1] : index.shape;
  for (let k = 0; k < xShape.length; k++) {
    if (k !== d && iShape[k]! > xShape[k]!) {
      throw new RangeError(
        `gather: index ${formatShape(index.shape)} is larger than input ${formatShape(x.shape)} in dim ${k}`,
      );
    }
  }
  const n = xShape[d]!;
  checkRange(ids, n, 'gather', dim);
  const [outer, m, inner] = split3(iShape, d);
  const out = Tensor.empty(index.shape);
  // Only the leading block of x that the index spans is read; make it dense for the kernel.
  const block = noGrad(() => leadingBlock(x.ndim === 0 ? x.reshape([1]) : x, iShape, d));
  const blockDense = block.contiguous();
  getBackend().gather(blockDense.f32('gather'), outer, n, inner, ids, m, outData(out));
  if (blockDense !== block) blockDense.dispose();
  if (block !== x) block.dispose();
  const blockShape = iShape.map((s, k) => (k === d ? n : s));
  return record(
    out,
    'gather',
    [x],
    (g) => {
      const gc = g.contiguous();
      const gBlock = Tensor.zeros(blockShape);
      getBackend().scatterAdd(outData(gBlock), outer, n, inner, ids, m, gc.f32('gather'));
      if (gc !== g) gc.dispose();
      const full = padTo(gBlock, xShape, d);
      return [x.ndim === 0 ? reshapeOwned(full, []) : full];
    },
    [index],
  );
}

/**
 * torch.scatter_add, out of place: a copy of x with out[..., idx[..., j, ...], ...] += src[..., j, ...]
 * along `dim`. Only the leading block of src that idx spans is used.
 */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkF32(x, 'scatterAdd');
  checkF32(src, 'scatterAdd');
  const ids = checkIndexTensor(index, 'scatterAdd');
  checkSameRank(x, index, 'scatterAdd', 'input');
  checkSameRank(src, index, 'scatterAdd', 'src');
  const d = normAxis(dim, Math.max(x.ndim, 1), 'scatterAdd'); // 0-d behaves as [1]
  const xShape = x.ndim === 0 ? [1] : x.shape;
  const iShape = index.ndim === 0 ? [1] : index.shape;
  const sShape = src.ndim === 0 ? [1] : src.shape;
  for (let k = 0; k < xShape.length; k++) {
    if (iShape[k]! > sShape[k]! || (k !== d && iShape[k]! > xShape[k]!)) {
      throw new RangeError(
        `scatterAdd: index ${formatShape(index.shape)} does not fit input ${formatShape(x.shape)} ` +
          `and src ${formatShape(src.shape)} in dim ${k}`,
      );
    }
  }
  const n = xShape[d]!;
  checkRange(ids, n, 'scatterAdd', dim);
  const [outer, m, inner] = split3(iShape, d);
  const out = Tensor.empty(x.shape);
  copyInto(x, out);
  noGrad(() => {
    const srcBlock = leadingBlock(src.ndim === 0 ? src.reshape([1]) : src, iShape, -1);
    const srcDense = srcBlock.contiguous();
    const b = getBackend();
    const blockShape = iShape.map((s, k) => (k === d ? n : s));
    if (shapesEqual(blockShape, xShape)) {
      b.scatterAdd(outData(out), outer, n, inner, ids, m, srcDense.f32('scatterAdd'));
    } else {
      // The index spans only part of x: scatter into that block, then add it in place.
      const partial = Tensor.zeros(blockShape);
      b.scatterAdd(outData(partial), outer, n, inner, ids, m, srcDense.f32('scatterAdd'));
      const window = leadingBlock(out.ndim === 0 ? out.reshape([1]) : out, blockShape, d);
      const summed = add(window, partial);
      copyInto(summed, window);
      for (const t of [summed, window, partial]) t.dispose();
    }
    if (srcDense !== srcBlock) srcDense.dispose();
    if (srcBlock !== src) srcBlock.dispose();
  });
  return record(
    out,
    'scatterAdd',
    [x, src],
    (g) => {
      let gSrc: Tensor | null = null;
      if (src.requiresGrad) {
        const picked = gather(g.ndim === 0 ? g.reshape([1]) : g, d, index.ndim === 0 ? index.reshape([1]) : index);
        const padded = padTo(picked, sShape, -1);
        gSrc = src.ndim === 0 ? reshapeOwned(padded, []) : padded;
      }
      return [x.requiresGrad ? g : null, gSrc];
    },
    [index],
  );
}

function reshapeOwned(t: Tensor, shape: Shape): Tensor {
  const r = t.reshape(shape);
  if (r !== t) t.dispose();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Method sugar
// ---------------------------------------------------------------------------------------------

declare module '../tensor.js' {
  interface Tensor {
    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor;
  }
}

Tensor.prototype.indexSelect = function (this: Tensor, dim: number, index: Tensor): Tensor {
  return indexSelect(this, dim, index);
};
Tensor.prototype.gather = function (this: Tensor, dim: number, index: Tensor): Tensor {
  return gather(this, dim, index);
};
Tensor.prototype.scatterAdd = function (this: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  return scatterAdd(this, dim, index, src);
};
