/**
 * The kernel contract. Both backends (`native`: C++ behind N-API, `js`: plain TypeScript reference)
 * implement exactly this interface; tests compare them kernel by kernel.
 *
 * Conventions, which every kernel follows:
 * - Buffers are typed arrays owned by JS. A kernel reads/writes the array it is given starting at
 *   element 0 of that array (callers pass `subarray` views for offsets — zero-copy on both backends).
 * - Unless a parameter says `Strided`, an input is dense row-major of the stated sizes.
 * - Outputs are written in full (never accumulated) unless the doc says "accumulates".
 * - Index inputs (Int32Array) are bounds-checked; an out-of-range index throws a RangeError naming
 *   the kernel, the index and the valid range. Native code never reads or writes outside a buffer.
 * - Comparison results are 1/0 in f32.
 */

export type F32 = Float32Array;
export type I32 = Int32Array;
export type U16 = Uint16Array;
export type AnyArray = Float32Array | Int32Array | Uint16Array;

/** A strided view of a buffer, for kernels that read non-contiguous / broadcast (stride 0) inputs. */
export interface Strided<T extends AnyArray = F32> {
  data: T;
  /** Element offset of logical index [0, 0, ...] in `data`. */
  offset: number;
  /** Element strides, one per dim of the iteration shape (0 for broadcast dims). */
  strides: readonly number[];
}

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'abs'
  | 'sin'
  | 'cos'
  | 'tanh'
  | 'sigmoid'
  | 'relu'
  | 'gelu' // erf form: x * 0.5 * (1 + erf(x / sqrt 2))
  | 'gelu_tanh' // tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  | 'silu'
  | 'square'
  | 'reciprocal'
  | 'sign';

export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'maximum'
  | 'minimum'
  | 'eq'
  | 'ne'
  | 'lt'
  | 'le'
  | 'gt'
  | 'ge';

export type ReduceOp = 'sum' | 'max' | 'min' | 'logsumexp';
export type ArgReduceOp = 'argmax' | 'argmin';

export interface GemmParams {
  /** Number of independent matrix products. */
  batch: number;
  m: number;
  n: number;
  k: number;
  /** A is stored k×m (row-major) and used transposed. Otherwise m×k. */
  transA: boolean;
  /** B is stored n×k (row-major) and used transposed. Otherwise k×n. */
  transB: boolean;
  /** Leading dimensions (row strides, in elements) of A, B and C as stored. */
  lda: number;
  ldb: number;
  ldc: number;
  /** Element distance between consecutive batch items; 0 broadcasts one matrix over the batch. */
  strideA: number;
  strideB: number;
  strideC: number;
  /** C = alpha·op(A)·op(B) + beta·C. beta = 0 never reads C (C may hold garbage or NaN). */
  alpha: number;
  beta: number;
}

export interface AttentionParams {
  batch: number;
  heads: number;
  /** Query length and key/value length. */
  tq: number;
  tk: number;
  /** Head dimension (q, k and v share it). */
  dim: number;
  /** Softmax scale, usually 1/sqrt(dim). */
  scale: number;
  /**
   * Causal masking aligned to the end: query i may attend key j iff j <= i + (tk - tq).
   * (With tq = tk this is the usual lower triangle; with a KV cache, tq < tk.)
   */
  causal: boolean;
  /**
   * Optional additive mask (0 = keep, -Infinity = drop, any finite bias allowed) broadcast to
   * [batch, heads, tq, tk] through its strides (4 strides; 0 for broadcast dims).
   */
  mask?: Strided<F32>;
}

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

export interface Backend {
  readonly name: 'native' | 'js';

  // ---------- layout and dtype ----------
  /** dst (dense, shape `shape`) = src viewed with `strides` from `offset`. Same element type. */
  copyStrided<T extends AnyArray>(src: Strided<T>, shape: readonly number[], dst: T): void;
  fill(out: F32, value: number): void;
  /** Round-to-nearest-even f32 → bf16 bits; NaN stays NaN. */
  f32ToBf16(x: F32, out: U16): void;
  bf16ToF32(x: U16, out: F32): void;
  /** IEEE half, round to nearest even, overflow to ±Infinity, subnormals kept. */
  f32ToF16(x: F32, out: U16): void;
  f16ToF32(x: U16, out: F32): void;

  // ---------- elementwise ----------
  /** out[i] = f(x[i]); x and out have the same length (out may alias x). */
  unary(op: UnaryOp, x: F32, out: F32): void;
  /**
   * gx[i] = gy[i] · f'(x[i]). `y` is the forward output f(x) (used where cheaper, e.g. exp,
   * tanh, sigmoid). For relu, f'(0) = 0; for abs, f'(0) = 0; sign' = 0.
   */
  unaryBackward(op: UnaryOp, x: F32, y: F32, gy: F32, gx: F32): void;
  /**
   * out (dense, `shape`) = a ⊙ b, with a and b broadcast to `shape` through their strides.
   * `out` may alias a (or b) when that operand is itself dense with exactly `shape` (in-place update,
   * e.g. gradient accumulation `g += dg`).
   */
  binary(op: BinaryOp, a: Strided<F32>, b: Strided<F32>, shape: readonly number[], out: F32): void;
  /** out[i] = x[i] · scale + shift. */
  affine(x: F32, scale: number, shift: number, out: F32): void;
  /** out[i] = min(max(x[i], lo), hi). NaN stays NaN. */
  clamp(x: F32, lo: number, hi: number, out: F32): void;
  /** out = cond != 0 ? a : b, all three broadcast to `shape` through their strides. */
  where(
    cond: Strided<F32>,
    a: Strided<F32>,
    b: Strided<F32>,
    shape: readonly number[],
    out: F32,
  ): void;

  // ---------- reductions: x viewed as [outer, n, inner], reduce over n ----------
  /** out[o, i] = reduce_j x[o, j, i]; out has outer·inner elements. n = 0: sum → 0, others throw. */
  reduce(op: ReduceOp, x: F32, outer: number, n: number, inner: number, out: F32): void;
  /** Index of the first max/min along n (NaN counts as max for argmax, as PyTorch). */
  argReduce(op: ArgReduceOp, x: F32, outer: number, n: number, inner: number, out: I32): void;

  // ---------- matrix products ----------
  gemm(a: F32, b: F32, c: F32, p: GemmParams): void;

  // ---------- fused NN kernels, over `rows` rows of `cols` contiguous elements ----------
  /** Row-wise softmax (or log-softmax when `log`). Numerically stable (subtracts the row max). */
  softmax(x: F32, rows: number, cols: number, log: boolean, out: F32): void;
  /**
   * softmax: gx = y ⊙ (gy − Σ gy⊙y);  log-softmax: gx = gy − exp(y) · Σ gy.
   * `y` is the forward output.
   */
  softmaxBackward(y: F32, gy: F32, rows: number, cols: number, log: boolean, gx: F32): void;
  /** LayerNorm over the last `cols`; weight/bias optional (length cols). Writes mean and rstd (length rows). */
  layerNorm(
    x: F32,
    weight: F32 | null,
    bias: F32 | null,
    rows: number,
    cols: number,
    eps: number,
    out: F32,
    mean: F32,
    rstd: F32,
  ): void;
  /** gx written; gWeight/gBias (if non-null) ACCUMULATE Σ over rows. */
  layerNormBackward(
    x: F32,
    weight: F32 | null,
    mean: F32,
    rstd: F32,
    gy: F32,
    rows: number,
    cols: number,
    gx: F32,
    gWeight: F32 | null,
    gBias: F32 | null,
  ): void;
  /** RMSNorm: out = x · rstd · weight, rstd = 1/sqrt(mean(x²) + eps). Writes rstd (length rows). */
  rmsNorm(x: F32, weight: F32 | null, rows: number, cols: number, eps: number, out: F32, rstd: F32): void;
  /** gx written; gWeight (if non-null) ACCUMULATES. */
  rmsNormBackward(
    x: F32,
    weight: F32 | null,
    rstd: F32,
    gy: F32,
    rows: number,
    cols: number,
    gx: F32,
    gWeight: F32 | null,
  ): void;

  // ---------- indexing ----------
  /** out[i, :] = table[idx[i], :]; table is [numRows, cols]. (embedding, indexSelect on dim 0) */
  gatherRows(table: F32, numRows: number, cols: number, idx: I32, out: F32): void;
  /** gTable[idx[i], :] += g[i, :]  (ACCUMULATES; repeated indices add up). */
  scatterAddRows(g: F32, idx: I32, cols: number, gTable: F32, numRows: number): void;
  /**
   * torch.gather along the middle axis: x is [outer, n, inner], idx and out are [outer, m, inner],
   * out[o, j, i] = x[o, idx[o, j, i], i].
   */
  gather(x: F32, outer: number, n: number, inner: number, idx: I32, m: number, out: F32): void;
  /** out[o, idx[o, j, i], i] += src[o, j, i]  (ACCUMULATES into out, which is [outer, n, inner]). */
  scatterAdd(out: F32, outer: number, n: number, inner: number, idx: I32, m: number, src: F32): void;

  // ---------- losses ----------
  /**
   * Cross-entropy per row over `cols` classes: loss[r] = −Σ_c q_c log p_c with
   * q = (1 − ε)·onehot(target) + ε/cols (label smoothing ε). Rows whose target equals
   * `ignoreIndex` get loss 0. Writes lse[r] = logsumexp(logits[r]) for the backward.
   * A target outside [0, cols) that is not ignoreIndex throws.
   */
  crossEntropy(
    logits: F32,
    targets: I32,
    rows: number,
    cols: number,
    ignoreIndex: number,
    labelSmoothing: number,
    loss: F32,
    lse: F32,
  ): void;
  /** gLogits[r] = gLoss[r] · (softmax(logits[r]) − q); zero for ignored rows. */
  crossEntropyBackward(
    logits: F32,
    lse: F32,
    targets: I32,
    gLoss: F32,
    rows: number,
    cols: number,
    ignoreIndex: number,
    labelSmoothing: number,
    gLogits: F32,
  ): void;

  // ---------- attention ----------
  /**
   * out = softmax(q kᵀ · scale + mask) v, tiled with an online softmax (O(tk) memory per query row).
   * q: [batch, heads, tq, dim]; k, v: [batch, heads, tk, dim]; out: [batch, heads, tq, dim];
   * lse: [batch, heads, tq] = logsumexp of the scaled, masked scores (−Infinity for a fully masked
   * row, whose output is 0).
   */
  attention(q: F32, k: F32, v: F32, p: AttentionParams, out: F32, lse: F32): void;
  /** Flash-style backward recomputing scores from q, k and lse. gq, gk, gv written (not accumulated). */
  attentionBackward(
    q: F32,
    k: F32,
    v: F32,
    out: F32,
    lse: F32,
    gOut: F32,
    p: AttentionParams,
    gq: F32,
    gk: F32,
    gv: F32,
  ): void;

  // ---------- selection ----------
  /** Top-k along rows, sorted (descending if largest); ties keep the lower index first. */
  topk(x: F32, rows: number, cols: number, k: number, largest: boolean, values: F32, indices: I32): void;

  // ---------- optimizer ----------
  /** One fused AdamW step over flat buffers (decoupled weight decay: p -= lr·wd·p). */
  adamw(param: F32, grad: F32, m: F32, v: F32, p: AdamWParams): void;
}
