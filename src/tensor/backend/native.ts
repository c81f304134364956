/**
 * The native backend: a thin wrapper over the N-API addon (build/Release/weft.node). All checking of
 * buffer lengths and indices happens in the addon (native code never trusts its caller); this file
 * maps op names to the addon's integer codes and flattens parameter objects into arguments.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  AdamWParams,
  AnyArray,
  ArgReduceOp,
  AttentionParams,
  Backend,
  BinaryOp,
  F32,
  GemmParams,
  I32,
  ReduceOp,
  Strided,
  U16,
  UnaryOp,
} from './backend.js';

// Codes must match the enums in native/kernels.h.
const UNARY_CODES: Record<UnaryOp, number> = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  rsqrt: 4,
  abs: 5,
  sin: 6,
  cos: 7,
  tanh: 8,
  sigmoid: 9,
  relu: 10,
  gelu: 11,
  gelu_tanh: 12,
  silu: 13,
  square: 14,
  reciprocal: 15,
  sign: 16,
};
const BINARY_CODES: Record<BinaryOp, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  pow: 4,
  maximum: 5,
  minimum: 6,
  eq: 7,
  ne: 8,
  lt: 9,
  le: 10,
  gt: 11,
  ge: 12,
};
const REDUCE_CODES: Record<ReduceOp, number> = { sum: 0, max: 1, min: 2, logsumexp: 3 };
const ARG_REDUCE_CODES: Record<ArgReduceOp, number> = { argmax: 0, argmin: 1 };

export type KernelPathName = 'portable' | 'avx2' | 'avx512';

export interface NativeAddonInfo {
  features: Record<string, boolean>;
  kernelPath: string;
  threads: number;
}

/** The addon's exports, as native/addon.cc, glue_gemm.cc and glue_kernels.cc define them. */
interface Addon {
  cpuInfo(): NativeAddonInfo;
  setNumThreads(n: number): void;
  setKernelPath(name: KernelPathName): boolean;
  copyStrided(src: AnyArray, offset: number, strides: readonly number[], shape: readonly number[], dst: AnyArray): void;
  fill(out: F32, value: number): void;
  f32ToBf16(x: F32, out: U16): void;
  bf16ToF32(x: U16, out: F32): void;
  f32ToF16(x: F32, out: U16): void;
  f16ToF32(x: U16, out: F32): void;
  unary(op: number, x: F32, out: F32): void;
  unaryBackward(op: number, x: F32, y: F32, gy: F32, gx: F32): void;
  binary(
    op: number,
    a: F32,
    aOffset: number,
    aStrides: readonly number[],
    b: F32,
    bOffset: number,
    bStrides: readonly number[],
    shape: readonly number[],
    out: F32,
  ): void;
  affine(x: F32, scale: number, shift: number, out: F32): void;
  clamp(x: F32, lo: number, hi: number, out: F32): void;
  where(
    c: F32,
    cOffset: number,
    cStrides: readonly number[],
    a: F32,
    aOffset: number,
    aStrides: readonly number[],
    b: F32,
    bOffset: number,
    bStrides: readonly number[],
    shape: readonly number[],
    out: F32,
  ): void;
  reduce(op: number, x: F32, outer: number, n: number, inner: number, out: F32): void;
  argReduce(op: number, x: F32, outer: number, n: number, inner: number, out: I32): void;
  gemm(
    a: F32,
    b: F32,
    c: F32,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    lda: number,
    ldb: number,
    ldc: number,
    strideA: number,
    strideB: number,
    strideC: number,
    alpha: number,
    beta: number,
  ): void;
  softmax(x: F32, rows: number, cols: number, log: boolean, out: F32): void;
  softmaxBackward(y: F32, gy: F32, rows: number, cols: number, log: boolean, gx: F32): void;
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
  rmsNorm(x: F32, weight: F32 | null, rows: number, cols: number, eps: number, out: F32, rstd: F32): void;
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
  gatherRows(table: F32, numRows: number, cols: number, idx: I32, out: F32): void;
  scatterAddRows(g: F32, idx: I32, cols: number, gTable: F32, numRows: number): void;
  gather(x: F32, outer: number, n: number, inner: number, idx: I32, m: number, out: F32): void;
  scatterAdd(out: F32, outer: number, n: number, inner: number, idx: I32, m: number, src: F32): void;
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
  attention(q: F32, k: F32, v: F32, ...rest: unknown[]): void;
  attentionBackward(q: F32, k: F32, v: F32, out: F32, lse: F32, gOut: F32, ...rest: unknown[]): void;
  topk(x: F32, rows: number, cols: number, k: number, largest: boolean, values: F32, indices: I32): void;
  adamw(
    param: F32,
    grad: F32,
    m: F32,
    v: F32,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;
}

/** The directory holding package.json, walking up from this module (works from src/ and dist/). */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

let addonCache: Addon | null | undefined;

function loadAddon(): Addon | null {
  if (addonCache !== undefined) return addonCache;
  addonCache = null;
  const root = packageRoot();
  if (root === null) return null;
  const file = join(root, 'build', 'Release', 'weft.node');
  if (!existsSync(file)) return null;
  try {
    const require = createRequire(import.meta.url);
    addonCache = require(file) as Addon;
  } catch (err) {
    process.emitWarning(`Weft: failed to load the native addon ${file}: ${(err as Error).message}`, {
      code: 'WEFT_NATIVE_LOAD',
    });
  }
  return addonCache;
}

/**
 * The addon's raw exports, for kernel families outside the Backend contract (quantized matmuls, paged
 * attention) that declare their own typed view of the functions they call; null without the addon.
 */
export function nativeAddonExports(): Readonly<Record<string, unknown>> | null {
  return loadAddon() as unknown as Readonly<Record<string, unknown>> | null;
}

/** Flattens the attention parameters into the addon's positional arguments. */
function attentionArgs(p: AttentionParams): unknown[] {
  const mask = p.mask;
  return [
    p.batch,
    p.heads,
    p.tq,
    p.tk,
    p.dim,
    p.scale,
    p.causal,
    mask === undefined ? null : mask.data,
    mask === undefined ? 0 : mask.offset,
    mask === undefined ? [] : mask.strides,
  ];
}

class NativeBackend implements Backend {
  readonly name = 'native' as const;

  constructor(private readonly addon: Addon) {}

  copyStrided<T extends AnyArray>(src: Strided<T>, shape: readonly number[], dst: T): void {
    if (src.data.constructor !== dst.constructor) {
      throw new TypeError(
        `copyStrided: src is a ${src.data.constructor.name} but dst is a ${dst.constructor.name} (same type needed)`,
      );
    }
    this.addon.copyStrided(src.data, src.offset, src.strides, shape, dst);
  }
  fill(out: F32, value: number): void {
    this.addon.fill(out, value);
  }
  f32ToBf16(x: F32, out: U16): void {
    this.addon.f32ToBf16(x, out);
  }
  bf16ToF32(x: U16, out: F32): void {
    this.addon.bf16ToF32(x, out);
  }
  f32ToF16(x: F32, out: U16): void {
    this.addon.f32ToF16(x, out);
  }
  f16ToF32(x: U16, out: F32): void {
    this.addon.f16ToF32(x, out);
  }

  unary(op: UnaryOp, x: F32, out: F32): void {
    this.addon.unary(code(UNARY_CODES, op, 'unary'), x, out);
  }
  unaryBackward(op: UnaryOp, x: F32, y: F32, gy: F32, gx: F32): void {
    this.addon.unaryBackward(code(UNARY_CODES, op, 'unaryBackward'), x, y, gy, gx);
  }
  binary(op: BinaryOp, a: Strided<F32>, b: Strided<F32>, shape: readonly number[], out: F32): void {
    this.addon.binary(code(BINARY_CODES, op, 'binary'), a.data, a.offset, a.strides, b.data, b.offset, b.strides, shape, out);
  }
  affine(x: F32, scale: number, shift: number, out: F32): void {
    this.addon.affine(x, scale, shift, out);
  }
  clamp(x: F32, lo: number, hi: number, out: F32): void {
    this.addon.clamp(x, lo, hi, out);
  }
  where(cond: Strided<F32>, a: Strided<F32>, b: Strided<F32>, shape: readonly number[], out: F32): void {
    this.addon.where(
      cond.data,
      cond.offset,
      cond.strides,
      a.data,
      a.offset,
      a.strides,
      b.data,
      b.offset,
      b.strides,
      shape,
      out,
    );
  }

  reduce(op: ReduceOp, x: F32, outer: number, n: number, inner: number, out: F32): void {
    this.addon.reduce(code(REDUCE_CODES, op, 'reduce'), x, outer, n, inner, out);
  }
  argReduce(op: ArgReduceOp, x: F32, outer: number, n: number, inner: number, out: I32): void {
    this.addon.argReduce(code(ARG_REDUCE_CODES, op, 'argReduce'), x, outer, n, inner, out);
  }

  gemm(a: F32, b: F32, c: F32, p: GemmParams): void {
    this.addon.gemm(
      a,
      b,
      c,
      p.batch,
      p.m,
      p.n,
      p.k,
      p.transA,
      p.transB,
      p.lda,
      p.ldb,
      p.ldc,
      p.strideA,
      p.strideB,
      p.strideC,
      p.alpha,
      p.beta,
    );
  }

  softmax(x: F32, rows: number, cols: number, log: boolean, out: F32): void {
    this.addon.softmax(x, rows, cols, log, out);
  }
  softmaxBackward(y: F32, gy: F32, rows: number, cols: number, log: boolean, gx: F32): void {
    this.addon.softmaxBackward(y, gy, rows, cols, log, gx);
  }
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
  ): void {
    this.addon.layerNorm(x, weight, bias, rows, cols, eps, out, mean, rstd);
  }
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
  ): void {
    this.addon.layerNormBackward(x, weight, mean, rstd, gy, rows, cols, gx, gWeight, gBias);
  }
  rmsNorm(x: F32, weight: F32 | null, rows: number, cols: number, eps: number, out: F32, rstd: F32): void {
    this.addon.rmsNorm(x, weight, rows, cols, eps, out, rstd);
  }
  rmsNormBackward(
    x: F32,
    weight: F32 | null,
    rstd: F32,
    gy: F32,
    rows: number,
    cols: number,
    gx: F32,
    gWeight: F32 | null,
  ): void {
    this.addon.rmsNormBackward(x, weight, rstd, gy, rows, cols, gx, gWeight);
  }

  gatherRows(table: F32, numRows: number, cols: number, idx: I32, out: F32): void {
    this.addon.gatherRows(table, numRows, cols, idx, out);
  }
  scatterAddRows(g: F32, idx: I32, cols: number, gTable: F32, numRows: number): void {
    this.addon.scatterAddRows(g, idx, cols, gTable, numRows);
  }
  gather(x: F32, outer: number, n: number, inner: number, idx: I32, m: number, out: F32): void {
    this.addon.gather(x, outer, n, inner, idx, m, out);
  }
  scatterAdd(out: F32, outer: number, n: number, inner: number, idx: I32, m: number, src: F32): void {
    this.addon.scatterAdd(out, outer, n, inner, idx, m, src);
  }

  crossEntropy(
    logits: F32,
    targets: I32,
    rows: number,
    cols: number,
    ignoreIndex: number,
    labelSmoothing: number,
    loss: F32,
    lse: F32,
  ): void {
    this.addon.crossEntropy(logits, targets, rows, cols, ignoreIndex, labelSmoothing, loss, lse);
  }
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
  ): void {
    this.addon.crossEntropyBackward(logits, lse, targets, gLoss, rows, cols, ignoreIndex, labelSmoothing, gLogits);
  }

  attention(q: F32, k: F32, v: F32, p: AttentionParams, out: F32, lse: F32): void {
    this.addon.attention(q, k, v, ...attentionArgs(p), out, lse);
  }
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
  ): void {
    this.addon.attentionBackward(q, k, v, out, lse, gOut, ...attentionArgs(p), gq, gk, gv);
  }

  topk(x: F32, rows: number, cols: number, k: number, largest: boolean, values: F32, indices: I32): void {
    this.addon.topk(x, rows, cols, k, largest, values, indices);
  }

  adamw(param: F32, grad: F32, m: F32, v: F32, p: AdamWParams): void {
    this.addon.adamw(param, grad, m, v, p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, p.step);
  }
}

function code<K extends string>(table: Record<K, number>, op: K, kernel: string): number {
  const c = (table as Record<string, number | undefined>)[op];
  if (c === undefined) throw new TypeError(`${kernel}: unknown op '${String(op)}'`);
  return c;
}

let backendCache: Backend | null | undefined;

/** The native backend, or null when the addon isn't built (or fails to load). */
export function loadNativeBackend(): Backend | null {
  if (backendCache !== undefined) return backendCache;
  const addon = loadAddon();
  backendCache = addon === null ? null : new NativeBackend(addon);
  return backendCache;
}

/** CPU features, kernel path and thread count of the loaded addon (null without one). */
export function nativeAddonInfo(): NativeAddonInfo | null {
  const addon = loadAddon();
  return addon === null ? null : addon.cpuInfo();
}

/** Resizes the native thread pool (n >= 1). Returns false when the addon isn't loaded. */
export function setNativeThreads(n: number): boolean {
  const addon = loadAddon();
  if (addon === null) return false;
  addon.setNumThreads(n);
  return true;
}

/**
 * Forces the native kernel path (tests use it to cover every variant). Returns false when the CPU
 * lacks that path or the addon isn't loaded.
 */
export function setNativeKernelPath(path: KernelPathName): boolean {
  const addon = loadAddon();
  return addon === null ? false : addon.setKernelPath(path);
}
