/**
 * Fused NN ops: softmax, logSoftmax, layerNorm, rmsNorm, embedding, crossEntropy, dropout,
 * scaledDotProductAttention and topk. Each runs one backend kernel forward and its fused *Backward
 * kernel in the backward, with what the backward needs (mean/rstd, lse, masks, indices) kept in the
 * closure rather than recomputed.
 */
import { noGrad, record } from '../autograd.js';
import { getBackend } from '../backend/index.js';
import type { AttentionParams, Strided } from '../backend/backend.js';
import { defaultGenerator, type Generator } from '../random.js';
import { broadcastShapes, broadcastStrides, contiguousStrides, formatShape, normAxis, numel, shapesEqual } from '../shape.js';
import { Tensor } from '../tensor.js';
import { checkF32, outData } from './util.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * A dense tensor with dim `d` swapped with the last dim (x itself when already dense with d last).
 * Swapping is its own inverse, so the same call moves a result back. Not recorded.
 */
function denseWithDimLast(x: Tensor, d: number): Tensor {
  return noGrad(() => {
    if (x.ndim <= 1 || d === x.ndim - 1) return x.contiguous();
    const view = x.transpose(d, -1);
    const dense = view.contiguous();
    if (dense !== view) view.dispose();
    return dense;
  });
}

/** Like denseWithDimLast, but consumes `t` (a temporary this module owns). */
function moveDimBack(t: Tensor, d: number): Tensor {
  const out = denseWithDimLast(t, d);
  if (out !== t) t.dispose();
  return out;
}

/** Disposes `t` when it is a temporary copy, not the caller's `original`. */
function dropCopy(t: Tensor, original: Tensor): void {
  if (t !== original) t.dispose();
}

/** Dense copy of x outside the graph (x itself when already dense). */
function denseOf(x: Tensor): Tensor {
  return noGrad(() => x.contiguous());
}

/** Size of all dims except `d` (the row count when `d` is the reduced dim). */
function rowsExcept(shape: readonly number[], d: number): number {
  return numel(shape.filter((_, i) => i !== d));
}

// ---------------------------------------------------------------------------------------------
// softmax / logSoftmax
// ---------------------------------------------------------------------------------------------

function softmaxOp(x: Tensor, dim: number, log: boolean, op: string): Tensor {
  checkF32(x, op);
  const d = normAxis(dim, x.ndim, op);
  const cols = x.ndim === 0 ? 1 : x.shape[d]!;
  const rows = x.ndim === 0 ? 1 : rowsExcept(x.shape, d);
  const xs = denseWithDimLast(x, d);
  const ys = Tensor.empty(xs.shape);
  getBackend().softmax(xs.f32(op), rows, cols, log, outData(ys));
  dropCopy(xs, x);
  const out = moveDimBack(ys, d);
  return record(
    out,
    op,
    [x],
    (g) => {
      const gs = denseWithDimLast(g, d);
      const y = denseWithDimLast(out, d);
      const gx = Tensor.empty(gs.shape);
      getBackend().softmaxBackward(y.f32(op), gs.f32(op), rows, cols, log, outData(gx));
      dropCopy(gs, g);
      dropCopy(y, out);
      return [moveDimBack(gx, d)];
    },
    [out],
  );
}

/** exp(x) / Σ exp(x) along `dim` (numerically stable). */
export function softmax(x: Tensor, dim = -1): Tensor {
  return softmaxOp(x, dim, false, 'softmax');
}

/** x − logsumexp(x) along `dim`. */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return softmaxOp(x, dim, true, 'logSoftmax');
}

// ---------------------------------------------------------------------------------------------
// layerNorm / rmsNorm
// ---------------------------------------------------------------------------------------------

/** Rows × cols of x normalised over its trailing `normalizedShape`; checks the affine params. */
function normLayout(
  x: Tensor,
  normalizedShape: readonly number[],
  params: readonly [string, Tensor | null | undefined][],
  op: string,
): { rows: number; cols: number } {
  checkF32(x, op);
  const k = normalizedShape.length;
  if (k === 0 || k > x.ndim || !shapesEqual(x.shape.slice(x.ndim - k), normalizedShape)) {
    throw new RangeError(
      `${op}: input shape ${formatShape(x.shape)} does not end with normalizedShape ${formatShape(normalizedShape)}`,
    );
  }
  for (const [name, p] of params) {
    if (p == null) continue;
    checkF32(p, op);
    if (!shapesEqual(p.shape, normalizedShape)) {
      throw new RangeError(`${op}: ${name} shape ${formatShape(p.shape)} != normalizedShape ${formatShape(normalizedShape)}`);
    }
  }
  const cols = numel(normalizedShape);
  return { rows: cols === 0 ? 0 : x.numel / cols, cols };
}

/** (x − mean) / sqrt(var + eps) · weight + bias over the trailing `normalizedShape` (biased variance). */
export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const op = 'layerNorm';
  const { rows, cols } = normLayout(x, normalizedShape, [['weight', weight], ['bias', bias]], op);
  const xd = denseOf(x);
  const out = Tensor.empty(x.shape);
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  getBackend().layerNorm(
    xd.f32(op),
    weight == null ? null : weight.f32(op),
    bias == null ? null : bias.f32(op),
    rows,
    cols,
    eps,
    outData(out),
    mean,
    rstd,
  );
  const inputs = [x, weight, bias].filter((t): t is Tensor => t != null);
  return record(
    out,
    op,
    inputs,
    (g) => {
      const gd = g.contiguous();
      const gx = Tensor.empty(x.shape);
      const gWeight = weight != null && weight.requiresGrad ? Tensor.zeros(normalizedShape) : null;
      const gBias = bias != null && bias.requiresGrad ? Tensor.zeros(normalizedShape) : null;
      getBackend().layerNormBackward(
        xd.f32(op),
        weight == null ? null : weight.f32(op),
        mean,
        rstd,
        gd.f32(op),
        rows,
        cols,
        outData(gx),
        gWeight === null ? null : outData(gWeight),
        gBias === null ? null : outData(gBias),
      );
      dropCopy(gd, g);
      return [gx, ...(weight != null ? [gWeight] : []), ...(bias != null ? [gBias] : [])];
    },
    xd === x ? [] : [xd],
  );
}

/** x / sqrt(mean(x²) + eps) · weight over the trailing `normalizedShape`. */
export function rmsNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor | null, eps = 1e-6): Tensor {
  const op = 'rmsNorm';
  const { rows, cols } = normLayout(x, normalizedShape, [['weight', weight]], op);
  const xd = denseOf(x);
  const out = Tensor.empty(x.shape);
  const rstd = new Float32Array(rows);
  getBackend().rmsNorm(xd.f32(op), weight == null ? null : weight.f32(op), rows, cols, eps, outData(out), rstd);
  const inputs = [x, weight].filter((t): t is Tensor => t != null);
  return record(
    out,
    op,
    inputs,
    (g) => {
      const gd = g.contiguous();
      const gx = Tensor.empty(x.shape);
      const gWeight = weight != null && weight.requiresGrad ? Tensor.zeros(normalizedShape) : null;
      getBackend().rmsNormBackward(
        xd.f32(op),
        weight == null ? null : weight.f32(op),
        rstd,
        gd.f32(op),
        rows,
        cols,
        outData(gx),
        gWeight === null ? null : outData(gWeight),
      );
      dropCopy(gd, g);
      return weight != null ? [gx, gWeight] : [gx];
    },
    xd === x ? [] : [xd],
  );
}

// ---------------------------------------------------------------------------------------------
// embedding
// ---------------------------------------------------------------------------------------------

/** Rows of `weight` [numEmbeddings, dim] picked by i32 `ids`: [...ids.shape, dim]. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  const op = 'embedding';
  const idx = ids.i32(op);
  checkF32(weight, op);
  if (weight.ndim !== 2) {
    throw new RangeError(`${op}: weight must be [numEmbeddings, dim], got ${formatShape(weight.shape)}`);
  }
  const [numRows, cols] = [weight.shape[0]!, weight.shape[1]!];
  // Checked here too (the kernels check again) so the error names the op and the position.
  for (let i = 0; i < idx.length; i++) {
    const id = idx[i]!;
    if (id < 0 || id >= numRows) {
      throw new RangeError(`${op}: id ${id} at position ${i} out of range [0, ${numRows}) for weight ${formatShape(weight.shape)}`);
    }
  }
  const out = Tensor.empty([...ids.shape, cols]);
  getBackend().gatherRows(weight.f32(op), numRows, cols, idx, outData(out));
  return record(
    out,
    op,
    [weight],
    (g) => {
      const gd = g.contiguous();
      const gWeight = Tensor.zeros([numRows, cols]);
      getBackend().scatterAddRows(gd.f32(op), idx, cols, outData(gWeight), numRows);
      dropCopy(gd, g);
      return [gWeight];
    },
    // Keeps the ids' memory (which `idx` may view) from being reused before backward.
    [ids],
  );
}

// ---------------------------------------------------------------------------------------------
// crossEntropy
// ---------------------------------------------------------------------------------------------

export interface CrossEntropyOptions {
  /** Targets equal to this contribute no loss and no gradient (default -100, as PyTorch). */
  ignoreIndex?: number;
  /** ε in q = (1 − ε)·onehot + ε/C (default 0). */
  labelSmoothing?: number;
  /** 'mean' over non-ignored targets (default), 'sum', or 'none' (per-target losses). */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Cross-entropy of logits [..., C] against i32 class targets [...] (e.g. [N, C] with [N]).
 * 'mean' divides by the number of non-ignored targets, so all-ignored gives NaN, as PyTorch.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const { ignoreIndex = -100, labelSmoothing = 0, reduction = 'mean' } = options;
  checkF32(logits, op);
  const targetData = targets.i32(op);
  if (logits.ndim === 0 || !shapesEqual(targets.shape, logits.shape.slice(0, -1))) {
    throw new RangeError(
      `${op}: targets shape ${formatShape(targets.shape)} does not match logits shape ${formatShape(logits.shape)} ` +
        `(expected targets ${formatShape(logits.shape.slice(0, -1))} for logits [..., C])`,
    );
  }
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new RangeError(`${op}: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  }
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new RangeError(`${op}: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  }
  if (!Number.isInteger(ignoreIndex)) throw new RangeError(`${op}: ignoreIndex must be an integer, got ${ignoreIndex}`);
  const cols = logits.shape[logits.ndim - 1]!;
  const rows = targets.numel;
  const ld = denseOf(logits);
  const perRow = Tensor.empty(targets.shape);
  const lse = new Float32Array(rows);
  getBackend().crossEntropy(ld.f32(op), targetData, rows, cols, ignoreIndex, labelSmoothing, outData(perRow), lse);

  let counted = 0;
  for (let r = 0; r < rows; r++) if (targetData[r] !== ignoreIndex) counted++;
  let out = perRow;
  if (reduction !== 'none') {
    const losses = outData(perRow);
    let total = 0;
    for (let r = 0; r < rows; r++) total += losses[r]!;
    out = Tensor.full([], reduction === 'sum' ? total : total / counted);
    perRow.dispose();
  }
  return record(
    out,
    op,
    [logits],
    (g) => {
      const gLoss = new Float32Array(rows);
      if (reduction === 'none') gLoss.set(g.f32(op));
      else gLoss.fill(reduction === 'sum' ? g.item() : g.item() / counted);
      const gLogits = Tensor.empty(logits.shape);
      getBackend().crossEntropyBackward(
        ld.f32(op),
        lse,
        targetData,
        gLoss,
        rows,
        cols,
        ignoreIndex,
        labelSmoothing,
        outData(gLogits),
      );
      return [gLogits];
    },
    // targets: keeps the memory `targetData` may view from being reused before backward.
    ld === logits ? [targets] : [ld, targets],
  );
}

// ---------------------------------------------------------------------------------------------
// dropout
// ---------------------------------------------------------------------------------------------

export interface DropoutOptions {
  /** false (evaluation) returns the input unchanged (default true). */
  training?: boolean;
  /** Source of the keep mask (default: the process-wide seeded generator). */
  generator?: Generator;
}

/**
 * Zeroes each element with probability p and scales the kept ones by 1/(1 − p). The mask is drawn
 * here in TypeScript, one uniform per element in row-major order, so every backend drops the same
 * elements for the same seed.
 */
export function dropout(x: Tensor, p: number, options: DropoutOptions = {}): Tensor {
  const op = 'dropout';
  checkF32(x, op);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${op}: p must be in [0, 1], got ${p}`);
  const { training = true, generator = defaultGenerator } = options;
  if (!training || p === 0) return x;
  const n = x.numel;
  const scale = 1 / (1 - p);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) mask[i] = generator.uniform() >= p ? scale : 0;
  const maskView: Strided<Float32Array> = { data: mask, offset: 0, strides: contiguousStrides(x.shape) };
  const out = Tensor.empty(x.shape);
  if (n > 0) getBackend().binary('mul', x.strided() as Strided<Float32Array>, maskView, x.shape, outData(out));
  return record(out, op, [x], (g) => {
    const gx = Tensor.empty(x.shape);
    if (n > 0) getBackend().binary('mul', g.strided() as Strided<Float32Array>, maskView, x.shape, outData(gx));
    return [gx];
  });
}

// ---------------------------------------------------------------------------------------------
// scaledDotProductAttention
// ---------------------------------------------------------------------------------------------

export interface AttentionOptions {
  /** Query i sees keys j <= i + (Tk − Tq) (aligned to the end, for a KV cache). Default false. */
  causal?: boolean;
  /**
   * Broadcastable to [..., Tq, Tk]. 'additive' (default): f32 added to the scores (0 keep, −Infinity
   * drop); 'bool': nonzero = attend, 0 = drop (PyTorch's boolean attn_mask). No gradient flows to it.
   */
  mask?: Tensor;
  maskMode?: 'additive' | 'bool';
  /** Score scale (default 1/sqrt(D)). */
  scale?: number;
}

/** The mask as kernel strides over [batch, heads, tq, tk], or null when its batch dims don't flatten. */
function maskStrides(mask: Tensor, full: readonly number[]): number[] | null {
  const strides = broadcastStrides(mask.shape, mask.strides, full);
  const lead = full.length - 2;
  const heads = lead >= 1 ? strides[lead - 1]! : 0;
  // Leading dims before the head dim merge into one batch stride when the mask steps through them evenly.
  let batchStride = 0;
  let expected: number | null = null;
  for (let d = lead - 2; d >= 0; d--) {
    const size = full[d]!;
    if (size === 1) continue;
    if (expected === null) batchStride = strides[d]!;
    else if (strides[d] !== expected) return null;
    expected = strides[d]! * size;
  }
  return [batchStride, heads, strides[lead]!, strides[lead + 1]!];
}

/**
 * softmax(q·kᵀ·scale + mask) · v for q [..., Tq, D] and k, v [..., Tk, D] with identical leading dims
 * ([B, H, T, D] typically; the last leading dim is the head dim). Runs the backend's tiled kernel
 * (O(Tk) memory per query row); the backward recomputes scores from the saved logsumexp.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const op = 'scaledDotProductAttention';
  for (const t of [q, k, v]) checkF32(t, op);
  const shapes = `q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`;
  if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim) {
    throw new RangeError(`${op}: q, k and v need the same rank (at least 2: [..., T, D]), got ${shapes}`);
  }
  const nd = q.ndim;
  const leading = q.shape.slice(0, nd - 2);
  const [tq, dim] = [q.shape[nd - 2]!, q.shape[nd - 1]!];
  const tk = k.shape[nd - 2]!;
  if (
    !shapesEqual(k.shape.slice(0, nd - 2), leading) ||
    !shapesEqual(v.shape.slice(0, nd - 2), leading) ||
    v.shape[nd - 2] !== tk ||
    k.shape[nd - 1] !== dim ||
    v.shape[nd - 1] !== dim
  ) {
    throw new RangeError(`${op}: expected q [..., Tq, D] and k, v [..., Tk, D] with the same leading dims, got ${shapes}`);
  }
  const { causal = false, maskMode = 'additive', scale = 1 / Math.sqrt(dim) } = options;
  const heads = leading.length >= 1 ? leading[leading.length - 1]! : 1;
  const batch = numel(leading.slice(0, -1));
  const full = [...leading, tq, tk];

  let mask: Strided<Float32Array> | undefined;
  let maskTensor: Tensor | undefined;
  if (options.mask !== undefined) {
    let m = options.mask;
    if (m.ndim > full.length || !shapesEqual(broadcastShapes(m.shape, full, op), full)) {
      throw new RangeError(`${op}: mask shape ${formatShape(m.shape)} does not broadcast to ${formatShape(full)} (${shapes})`);
    }
    if (maskMode === 'bool') {
      // Nonzero keeps a key; converting at the mask's own size keeps broadcasting free.
      const src = m.dense();
      const additive = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) additive[i] = src[i] !== 0 ? 0 : -Infinity;
      m = Tensor.fromArray(additive, m.shape);
    } else if (maskMode === 'additive') {
      checkF32(m, op);
    } else {
      throw new RangeError(`${op}: maskMode must be 'additive' or 'bool', got '${String(maskMode)}'`);
    }
    let strides = maskStrides(m, full);
    if (strides === null) {
      // Leading dims that don't flatten to one stride: materialise the broadcast mask.
      m = noGrad(() => m.expand(full).contiguous());
      strides = maskStrides(m, full)!;
    }
    maskTensor = m;
    mask = { data: m.storage.data as Float32Array, offset: m.offset, strides };
  }

  const params: AttentionParams = { batch, heads, tq, tk, dim, scale, causal, ...(mask ? { mask } : {}) };
  const qd = denseOf(q);
  const kd = denseOf(k);
  const vd = denseOf(v);
  const out = Tensor.empty(q.shape);
  const lse = new Float32Array(batch * heads * tq);
  getBackend().attention(qd.f32(op), kd.f32(op), vd.f32(op), params, outData(out), lse);

  const saved = [...[qd, kd, vd].filter((t, i) => t !== [q, k, v][i]), out, ...(maskTensor ? [maskTensor] : [])];
  return record(
    out,
    op,
    [q, k, v],
    (g) => {
      const gd = g.contiguous();
      const [gq, gk, gv] = [Tensor.empty(q.shape), Tensor.empty(k.shape), Tensor.empty(v.shape)];
      getBackend().attentionBackward(
        qd.f32(op),
        kd.f32(op),
        vd.f32(op),
        out.f32(op),
        lse,
        gd.f32(op),
        params,
        outData(gq),
        outData(gk),
        outData(gv),
      );
      dropCopy(gd, g);
      return [gq, gk, gv];
    },
    saved,
  );
}

// ---------------------------------------------------------------------------------------------
// topk
// ---------------------------------------------------------------------------------------------

export interface TopkOptions {
  /** Dim to select along (default -1). */
  dim?: number;
  /** Largest (default) or smallest k. */
  largest?: boolean;
}

/**
 * The k largest (or smallest) elements along `dim`, sorted, ties by lower index, with their i32
 * indices. `values` is differentiable: its gradient goes back to the chosen positions.
 */
export function topk(x: Tensor, k: number, options: TopkOptions = {}): { values: Tensor; indices: Tensor } {
  const op = 'topk';
  checkF32(x, op);
  const { dim = -1, largest = true } = options;
  if (x.ndim === 0) {
    // A scalar is a one-element row; results keep its 0-d shape when k = 1, as PyTorch.
    const r = topk(x.reshape([1]), k, { largest });
    return k === 1 ? { values: r.values.reshape([]), indices: r.indices.reshape([]) } : r;
  }
  const d = normAxis(dim, x.ndim, op);
  const cols = x.shape[d]!;
  if (!Number.isInteger(k) || k < 0 || k > cols) {
    throw new RangeError(`${op}: k = ${k} out of range for dim ${dim} of size ${cols} (shape ${formatShape(x.shape)})`);
  }
  const rows = rowsExcept(x.shape, d);
  const xs = denseWithDimLast(x, d);
  const movedShape = [...xs.shape.slice(0, -1), k];
  const valuesMoved = Tensor.empty(movedShape);
  const indicesMoved = Tensor.empty(movedShape, 'i32');
  const idx = indicesMoved.storage.data as Int32Array;
  getBackend().topk(xs.f32(op), rows, cols, k, largest, outData(valuesMoved), idx);
  const xsShape = xs.shape;
  dropCopy(xs, x);
  const values = moveDimBack(valuesMoved, d);
  // indicesMoved stays alive (the backward reads idx); a moved-back copy is what the caller gets.
  const indices = denseWithDimLast(indicesMoved, d);
  const recorded = record(
    values,
    op,
    [x],
    (g) => {
      const gs = denseWithDimLast(g, d);
      const gxMoved = Tensor.zeros(xsShape);
      getBackend().scatterAdd(outData(gxMoved), rows, cols, 1, idx, k, gs.f32(op));
      dropCopy(gs, g);
      return [moveDimBack(gxMoved, d)];
    },
    [indicesMoved],
  );
  return { values: recorded, indices };
}

// ---------------------------------------------------------------------------------------------
// Method sugar
// ---------------------------------------------------------------------------------------------

declare module '../tensor.js' {
  interface Tensor {
    softmax(dim?: number): Tensor;
    logSoftmax(dim?: number): Tensor;
    dropout(p: number, options?: DropoutOptions): Tensor;
    topk(k: number, options?: TopkOptions): { values: Tensor; indices: Tensor };
  }
}

Tensor.prototype.softmax = function (this: Tensor, dim?: number): Tensor {
  return softmax(this, dim);
};
Tensor.prototype.logSoftmax = function (this: Tensor, dim?: number): Tensor {
  return logSoftmax(this, dim);
};
Tensor.prototype.dropout = function (this: Tensor, p: number, options?: DropoutOptions): Tensor {
  return dropout(this, p, options);
};
Tensor.prototype.topk = function (this: Tensor, k: number, options?: TopkOptions): { values: Tensor; indices: Tensor } {
  return topk(this, k, options);
};
