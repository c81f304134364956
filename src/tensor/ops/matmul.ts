/**
 * Matrix products: matmul (torch.matmul semantics) and linear (x·Wᵀ + b, the Linear layout).
 *
 * Operands reach the gemm kernel without copies whenever their last two dims are a dense matrix
 * either as stored or transposed (strides [1, rows]): the layout becomes a transpose flag and a
 * leading dimension, batch dims become one batch stride (0 for a broadcast operand), and a batch of
 * row blocks times one shared matrix ([B, T, C] @ [C, N]) folds into a single (B·T)×C product.
 */
import { noGrad, record } from '../autograd.js';
import { getBackend } from '../backend/index.js';
import type { GemmParams, Strided } from '../backend/backend.js';
import { broadcastShapes, contiguousStrides, formatShape, numel, shapesEqual } from '../shape.js';
import { Tensor, sumToShape } from '../tensor.js';
import { checkF32 } from './util.js';

export interface MatmulOptions {
  /** Use a's last two dims transposed (as `a.mT`), without copying. */
  transA?: boolean;
  /** Use b's last two dims transposed (as `b.mT`), without copying. */
  transB?: boolean;
}

/**
 * A batch of rows×cols matrices inside a buffer: element (batch…, i, j) lives at
 * offset + Σ batch·batchStrides + i·rowStride + j·colStride.
 */
interface MatrixView {
  data: Float32Array;
  offset: number;
  batchShape: readonly number[];
  batchStrides: readonly number[];
  rows: number;
  cols: number;
  rowStride: number;
  colStride: number;
}

function transposed(v: MatrixView): MatrixView {
  return { ...v, rows: v.cols, cols: v.rows, rowStride: v.colStride, colStride: v.rowStride };
}

interface GemmLayout {
  /** Stored transposed (columns contiguous). */
  trans: boolean;
  /** Distance between stored rows. */
  ld: number;
}

/** How gemm reads this matrix in place, or null when it is neither dense nor dense-transposed. */
function gemmLayout(v: MatrixView): GemmLayout | null {
  const { rows, cols, rowStride, colStride } = v;
  // Strides of size-1 dims never matter, so those dims fit either layout.
  if ((cols <= 1 || colStride === 1) && (rows <= 1 || rowStride >= Math.max(cols, 1))) {
    return { trans: false, ld: rows <= 1 ? Math.max(cols, 1) : rowStride };
  }
  if ((rows <= 1 || rowStride === 1) && (cols <= 1 || colStride >= Math.max(rows, 1))) {
    return { trans: true, ld: cols <= 1 ? Math.max(rows, 1) : colStride };
  }
  return null;
}

function layoutOf(v: MatrixView): GemmLayout {
  const layout = gemmLayout(v);
  // Forward copies every operand gemm can't read, and transposes of readable views stay readable.
  if (layout === null) throw new Error('matmul: internal error: operand layout not readable by gemm');
  return layout;
}

/**
 * Merges adjacent batch dims that every operand steps through uniformly (and drops size-1 dims),
 * so that as many dims as possible become a single gemm batch stride.
 */
function coalesceBatch(
  shape: readonly number[],
  strideLists: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strideLists.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d]!;
    if (size === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strideLists.every((s, o) => outStrides[o]![last] === s[d]! * size)) {
      outShape[last] = outShape[last]! * size;
      strideLists.forEach((s, o) => (outStrides[o]![last] = s[d]!));
    } else {
      outShape.push(size);
      strideLists.forEach((s, o) => outStrides[o]!.push(s[d]!));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Calls `visit` with each operand's element offset for every index of `shape` (row-major). */
function forEachIndex(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  visit: (offsets: readonly number[]) => void,
): void {
  const total = numel(shape);
  const index = new Array<number>(shape.length).fill(0);
  const offsets = strides.map(() => 0);
  for (let t = 0; t < total; t++) {
    visit(offsets);
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      strides.forEach((s, o) => (offsets[o] = offsets[o]! + s[d]!));
      if (index[d]! < shape[d]!) break;
      strides.forEach((s, o) => (offsets[o] = offsets[o]! - s[d]! * shape[d]!));
      index[d] = 0;
    }
  }
}

function runGemm(
  a: MatrixView,
  la: GemmLayout,
  aOffset: number,
  b: MatrixView,
  lb: GemmLayout,
  bOffset: number,
  c: Float32Array,
  cOffset: number,
  p: Pick<GemmParams, 'batch' | 'm' | 'n' | 'k' | 'lda' | 'ldb' | 'ldc' | 'strideA' | 'strideB' | 'strideC' | 'beta'>,
): void {
  getBackend().gemm(
    a.data.subarray(a.offset + aOffset),
    b.data.subarray(b.offset + bOffset),
    c.subarray(cOffset),
    { ...p, transA: la.trans, transB: lb.trans, alpha: 1 },
  );
}

/**
 * c (dense [...batchShape, m, n]) = a · b for every batch index; a and b carry batch strides
 * aligned to batchShape (0 where broadcast).
 */
function gemmBatched(a: MatrixView, b: MatrixView, batchShape: readonly number[], c: Float32Array): void {
  const m = a.rows;
  const k = a.cols;
  const n = b.cols;
  const count = numel(batchShape);
  if (m * n * count === 0) return;
  if (k === 0) {
    c.fill(0, 0, count * m * n);
    return;
  }
  const la = layoutOf(a);
  const lb = layoutOf(b);
  const cStrides = contiguousStrides(batchShape).map((s) => s * m * n);
  const { shape, strides } = coalesceBatch(batchShape, [a.batchStrides, b.batchStrides, cStrides]);
  const inner = shape.length - 1;
  const innerSize = inner >= 0 ? shape[inner]! : 1;
  const [sA, sB, sC] = inner >= 0 ? [strides[0]![inner]!, strides[1]![inner]!, strides[2]![inner]!] : [0, 0, 0];
  const outerShape = shape.slice(0, Math.max(inner, 0));
  const outerStrides = strides.map((s) => s.slice(0, Math.max(inner, 0)));

  // One shared B and evenly spaced A row blocks: the batch is just more rows of one product.
  const foldRows =
    innerSize > 1 && sB === 0 && !la.trans && (m === 1 ? sA >= k : sA === m * la.ld) && sC === m * n;
  const params = foldRows
    ? { batch: 1, m: innerSize * m, n, k, lda: m === 1 ? sA : la.ld, ldb: lb.ld, ldc: n, strideA: 0, strideB: 0, strideC: 0, beta: 0 }
    : { batch: innerSize, m, n, k, lda: la.ld, ldb: lb.ld, ldc: n, strideA: sA, strideB: sB, strideC: sC, beta: 0 };
  forEachIndex(outerShape, outerStrides, ([oa, ob, oc]) => runGemm(a, la, oa!, b, lb, ob!, c, oc!, params));
}

/** c (dense [m, n]) = Σ over the batch of a · b (the gradient of an operand broadcast over the batch). */
function gemmSummed(a: MatrixView, b: MatrixView, batchShape: readonly number[], c: Float32Array): void {
  const m = a.rows;
  const k = a.cols;
  const n = b.cols;
  if (m * n === 0) return;
  const count = numel(batchShape);
  if (k === 0 || count === 0) {
    c.fill(0, 0, m * n);
    return;
  }
  const la = layoutOf(a);
  const lb = layoutOf(b);
  const { shape, strides } = coalesceBatch(batchShape, [a.batchStrides, b.batchStrides]);
  const base = { m, n, k, lda: la.ld, ldb: lb.ld, ldc: n, strideA: 0, strideB: 0, strideC: 0 };
  if (shape.length === 1) {
    // Σ_t A_t·B_t = [A_0 A_1 …]·[B_0; B_1; …]: one product with k·t inner dim when the pieces are
    // evenly spaced (A stored transposed, B as is — the Aᵀ·dC of a weight gradient).
    const [sA, sB] = [strides[0]![0]!, strides[1]![0]!];
    if (la.trans && lb.trans === false && sA === k * la.ld && sB === k * lb.ld) {
      runGemm(a, la, 0, b, lb, 0, c, 0, { ...base, batch: 1, k: k * shape[0]!, beta: 0 });
      return;
    }
  }
  // General case: accumulate one product per batch index (beta = 1 after the first).
  let beta = 0;
  forEachIndex(shape, strides, ([oa, ob]) => {
    runGemm(a, la, oa!, b, lb, ob!, c, 0, { ...base, batch: 1, beta });
    beta = 1;
  });
}

/** Batch strides of `v` read as if broadcast to `batchShape` (0 on broadcast dims). */
function broadcastBatch(v: MatrixView, batchShape: readonly number[]): MatrixView {
  const lead = batchShape.length - v.batchShape.length;
  const strides = batchShape.map((size, d) => {
    if (d < lead) return 0;
    const own = v.batchShape[d - lead]!;
    return own === 1 && size !== 1 ? 0 : v.batchStrides[d - lead]!;
  });
  return { ...v, batchShape, batchStrides: strides };
}

/**
 * The matrix view of a tensor as matmul's left ('a') or right ('b') operand; a 1-d left operand is
 * a row vector, a 1-d right operand a column vector (torch.matmul's promotion).
 */
function matrixOf(t: Tensor, side: 'a' | 'b', trans: boolean): MatrixView {
  const data = t.storage.data as Float32Array;
  if (t.ndim === 1) {
    const [len, stride] = [t.shape[0]!, t.strides[0]!];
    const row = { data, offset: t.offset, batchShape: [], batchStrides: [], rows: 1, cols: len, rowStride: 0, colStride: stride };
    return side === 'a' ? row : transposed(row);
  }
  const nd = t.ndim;
  const view: MatrixView = {
    data,
    offset: t.offset,
    batchShape: t.shape.slice(0, nd - 2),
    batchStrides: t.strides.slice(0, nd - 2),
    rows: t.shape[nd - 2]!,
    cols: t.shape[nd - 1]!,
    rowStride: t.strides[nd - 2]!,
    colStride: t.strides[nd - 1]!,
  };
  return trans ? transposed(view) : view;
}

/** t itself when gemm can read its last two dims in place, else a dense copy (outside the graph). */
function gemmReadable(t: Tensor): Tensor {
  if (gemmLayout(matrixOf(t, 'a', false)) !== null) return t;
  return noGrad(() => t.contiguous());
}

/** A fresh dense tensor under a new shape (same element order), dropping the old reference. */
function reshapeOwned(t: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(t.shape, shape)) return t;
  const out = t.reshape([...shape]);
  if (out !== t) t.dispose();
  return out;
}

/**
 * The gradient of one operand: left · right over the output batch, reduced to the operand's own
 * batch shape (the operand may have been broadcast), returned in the operand's stored shape.
 */
function operandGrad(
  left: MatrixView,
  right: MatrixView,
  batchShape: readonly number[],
  ownBatch: readonly number[],
  storedShape: readonly number[],
): Tensor {
  const rows = left.rows;
  const cols = right.cols;
  if (numel(ownBatch) === numel(batchShape)) {
    const full = Tensor.empty([...batchShape, rows, cols]);
    gemmBatched(left, right, batchShape, full.storage.data as Float32Array);
    return reshapeOwned(full, storedShape);
  }
  if (numel(ownBatch) === 1) {
    const summed = Tensor.empty([rows, cols]);
    gemmSummed(left, right, batchShape, summed.storage.data as Float32Array);
    return reshapeOwned(summed, storedShape);
  }
  // Broadcast over some batch dims only: full product, then sum the broadcast dims away.
  const full = Tensor.empty([...batchShape, rows, cols]);
  gemmBatched(left, right, batchShape, full.storage.data as Float32Array);
  const lead = batchShape.length - ownBatch.length;
  const reduced = sumToShape(full, [...new Array<number>(lead).fill(1), ...ownBatch, rows, cols]);
  if (reduced !== full) full.dispose();
  return reshapeOwned(reduced, storedShape);
}

/** Shared forward/backward of matmul and linear: out = op(a)·op(b) (+ bias over the last dim). */
function product(a: Tensor, b: Tensor, transA: boolean, transB: boolean, op: string, bias?: Tensor): Tensor {
  checkF32(a, op);
  checkF32(b, op);
  const pair = `${formatShape(a.shape)}${transA ? 'ᵀ' : ''} and ${formatShape(b.shape)}${transB ? 'ᵀ' : ''}`;
  if (a.ndim === 0 || b.ndim === 0) {
    throw new RangeError(`${op}: both operands need at least 1 dim, got shapes ${pair}`);
  }
  if ((transA && a.ndim < 2) || (transB && b.ndim < 2)) {
    throw new RangeError(`${op}: a transpose flag needs a matrix operand (2+ dims), got shapes ${pair}`);
  }
  const aRead = gemmReadable(a);
  const bRead = gemmReadable(b);
  const aView = matrixOf(aRead, 'a', transA);
  const bView = matrixOf(bRead, 'b', transB);
  if (aView.cols !== bView.rows) {
    throw new RangeError(`${op}: shapes ${pair} cannot be multiplied (inner dims ${aView.cols} vs ${bView.rows})`);
  }
  let batchShape: number[];
  try {
    batchShape = broadcastShapes(aView.batchShape, bView.batchShape, op);
  } catch {
    throw new RangeError(`${op}: batch dims of shapes ${pair} cannot be broadcast together`);
  }
  const m = aView.rows;
  const n = bView.cols;
  if (bias !== undefined) {
    checkF32(bias, op);
    if (bias.ndim !== 1 || bias.shape[0] !== n) {
      throw new RangeError(`${op}: bias shape ${formatShape(bias.shape)} does not match the ${n} output features`);
    }
  }
  const A = broadcastBatch(aView, batchShape);
  const B = broadcastBatch(bView, batchShape);
  const outShape = [...batchShape, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])];
  const out = Tensor.empty(outShape);
  const outData = out.storage.data as Float32Array;
  gemmBatched(A, B, batchShape, outData);

  if (bias !== undefined) {
    // In place: out is dense with exactly its own shape, which the binary kernel allows to alias.
    const biasView = bias.strided() as Strided<Float32Array>;
    const rowsOut = out.numel / Math.max(n, 1);
    if (out.numel > 0) {
      getBackend().binary(
        'add',
        { data: outData, offset: 0, strides: [n, 1] },
        { data: biasView.data, offset: biasView.offset, strides: [0, bias.strides[0]!] },
        [rowsOut, n],
        outData,
      );
    }
  }

  const inputs = bias === undefined ? [a, b] : [a, b, bias];
  const saved = [aRead, bRead].filter((t, i) => t !== inputs[i]);
  return record(
    out,
    op,
    inputs,
    (g) => {
      const gd = g.contiguous();
      const G: MatrixView = {
        data: gd.storage.data as Float32Array,
        offset: gd.offset,
        batchShape,
        batchStrides: contiguousStrides(batchShape).map((s) => s * m * n),
        rows: m,
        cols: n,
        rowStride: n,
        colStride: 1,
      };
      // op(a) = A: dA = G·Bᵀ; when a is stored transposed its gradient is (G·Bᵀ)ᵀ = B·Gᵀ. Likewise for b.
      const gradA = a.requiresGrad
        ? transA
          ? operandGrad(B, transposed(G), batchShape, aView.batchShape, a.shape)
          : operandGrad(G, transposed(B), batchShape, aView.batchShape, a.shape)
        : null;
      const gradB = b.requiresGrad
        ? transB
          ? operandGrad(transposed(G), A, batchShape, bView.batchShape, b.shape)
          : operandGrad(transposed(A), G, batchShape, bView.batchShape, b.shape)
        : null;
      let gradBias: Tensor | null = null;
      if (bias !== undefined && bias.requiresGrad) {
        gradBias = Tensor.empty([n]);
        getBackend().reduce('sum', gd.f32(op), 1, gd.numel / Math.max(n, 1), n, gradBias.storage.data as Float32Array);
      }
      if (gd !== g) gd.dispose();
      return bias === undefined ? [gradA, gradB] : [gradA, gradB, gradBias];
    },
    saved,
  );
}

/**
 * Matrix product with torch.matmul semantics: 1-d operands are promoted (and the added dim removed),
 * batch dims broadcast. `transA`/`transB` use an operand's last two dims transposed without a copy.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  return product(a, b, options.transA === true, options.transB === true, 'matmul');
}

/** x · weightᵀ + bias, with weight stored [outFeatures, inFeatures] (the Linear layout). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  if (weight.ndim !== 2) {
    throw new RangeError(`linear: weight must be [outFeatures, inFeatures], got ${formatShape(weight.shape)}`);
  }
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new RangeError(
      `linear: input ${formatShape(x.shape)} does not end in the weight's ${weight.shape[1]} input features ` +
        `(weight ${formatShape(weight.shape)})`,
    );
  }
  return product(x, weight, false, true, 'linear', bias);
}

declare module '../tensor.js' {
  interface Tensor {
    /** matmul(this, other). */
    matmul(other: Tensor, options?: MatmulOptions): Tensor;
  }
}

Tensor.prototype.matmul = function (this: Tensor, other: Tensor, options?: MatmulOptions): Tensor {
  return matmul(this, other, options);
};
