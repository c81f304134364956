/**
 * Parity with PyTorch: every case in test/fixtures/ops/*.json (written by scripts/fixtures/ops.py
 * from torch) is run on each backend. Inputs are rebuilt with the generator's exact layout (views of
 * a base tensor), the forward outputs are compared, then the graph is seeded with the fixture's
 * weights (`out.backward(w)`, i.e. the gradient of Σ out·w) and every input's gradient is compared.
 *
 * Tolerance: f32, |got − want| <= atol + rtol·|want| with rtol 1e-4, atol 1e-5 (the reference is
 * torch in float64, rounded to f32). A case may carry a looser `tol`, only where the generator found
 * that torch's own float32 computation misses the default because of the op's conditioning; its
 * reason is in the fixture and in the test title. Integer outputs (argmax, topk indices) must match
 * exactly. On failure the message names the case, backend, which output or gradient, the largest
 * absolute difference, its index, and both values.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as W from '../../src/tensor/index.js';
import { Tensor, nativeAvailable, setBackend } from '../../src/tensor/index.js';
import type { BackendName } from '../../src/tensor/index.js';
import { type KernelPathName, nativeAddonInfo, setNativeKernelPath } from '../../src/tensor/backend/native.js';
import { type ArraySpec, type FixtureCase, arrayTensor, buildInput, decodeArray, listFamilies, loadFamily } from './fixtures.js';

const RTOL = 1e-4;
const ATOL = 1e-5;

type Value = Tensor | number | undefined;
type OpResult = Tensor | readonly Tensor[];
type OpFn = (x: readonly Value[], a: Args) => OpResult;

/** Typed access to a case's JSON args, with defaults. */
class Args {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly caseName: string,
  ) {}

  private get(key: string, kind: string): unknown {
    const v = this.raw[key];
    if (v !== undefined && kind !== 'any' && typeof v !== kind) {
      throw new TypeError(`${this.caseName}: arg '${key}' should be a ${kind}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  num(key: string): number;
  num(key: string, fallback: number): number;
  num(key: string, fallback?: number): number {
    const v = this.get(key, 'number') as number | undefined;
    if (v !== undefined) return v;
    if (fallback === undefined) throw new Error(`${this.caseName}: missing arg '${key}'`);
    return fallback;
  }

  optNum(key: string): number | undefined {
    return this.get(key, 'number') as number | undefined;
  }

  bool(key: string, fallback: boolean): boolean {
    return (this.get(key, 'boolean') as boolean | undefined) ?? fallback;
  }

  str(key: string, fallback: string): string {
    return (this.get(key, 'string') as string | undefined) ?? fallback;
  }

  nums(key: string): number[] {
    const v = this.raw[key];
    if (!Array.isArray(v) || v.some((e) => typeof e !== 'number')) {
      throw new TypeError(`${this.caseName}: arg '${key}' should be a number[], got ${JSON.stringify(v)}`);
    }
    return v as number[];
  }

  /** number | number[] | undefined (reduce over all). */
  dims(key = 'dims'): number | number[] | undefined {
    const v = this.raw[key];
    if (v === undefined || typeof v === 'number') return v;
    return this.nums(key);
  }
}

function tensorAt(x: readonly Value[], i: number): Tensor {
  const v = x[i];
  if (!(v instanceof Tensor)) throw new TypeError(`input ${i} should be a tensor`);
  return v;
}

function likeAt(x: readonly Value[], i: number): W.TensorLike {
  const v = x[i];
  if (v === undefined) throw new TypeError(`input ${i} is missing`);
  return v;
}

function optTensorAt(x: readonly Value[], i: number): Tensor | undefined {
  const v = x[i];
  if (v === undefined) return undefined;
  if (!(v instanceof Tensor)) throw new TypeError(`input ${i} should be a tensor or absent`);
  return v;
}

const unary = (fn: (t: Tensor) => Tensor): OpFn => (x) => fn(tensorAt(x, 0));
const binary = (fn: (a: W.TensorLike, b: W.TensorLike) => Tensor): OpFn => (x) => fn(likeAt(x, 0), likeAt(x, 1));
const reduction =
  (fn: (t: Tensor, dims: number | number[] | undefined, keepdim: boolean) => Tensor): OpFn =>
  (x, a) =>
    fn(tensorAt(x, 0), a.dims(), a.bool('keepdim', false));
const allTensors = (x: readonly Value[]): Tensor[] => x.map((_, i) => tensorAt(x, i));

/** Fixture op name → the Weft call. */
const OPS: Record<string, OpFn> = {
  // elementwise
  neg: unary(W.neg),
  exp: unary(W.exp),
  log: unary(W.log),
  sqrt: unary(W.sqrt),
  rsqrt: unary(W.rsqrt),
  abs: unary(W.abs),
  sin: unary(W.sin),
  cos: unary(W.cos),
  tanh: unary(W.tanh),
  sigmoid: unary(W.sigmoid),
  relu: unary(W.relu),
  silu: unary(W.silu),
  square: unary(W.square),
  reciprocal: unary(W.reciprocal),
  gelu: (x, a) => W.gelu(tensorAt(x, 0), { approximate: a.str('approximate', 'none') === 'tanh' ? 'tanh' : 'none' }),
  add: binary(W.add),
  sub: binary(W.sub),
  mul: binary(W.mul),
  div: binary(W.div),
  pow: binary(W.pow),
  maximum: binary(W.maximum),
  minimum: binary(W.minimum),
  eq: binary(W.eq),
  ne: binary(W.ne),
  lt: binary(W.lt),
  le: binary(W.le),
  gt: binary(W.gt),
  ge: binary(W.ge),
  where: (x) => W.where(tensorAt(x, 0), likeAt(x, 1), likeAt(x, 2)),
  clamp: (x, a) => W.clamp(tensorAt(x, 0), a.optNum('min'), a.optNum('max')),
  // reductions
  sum: reduction(W.sum),
  mean: reduction(W.mean),
  max: reduction(W.max),
  min: reduction(W.min),
  logsumexp: reduction(W.logsumexp),
  var: (x, a) => W.var(tensorAt(x, 0), a.dims(), { correction: a.num('correction', 1), keepdim: a.bool('keepdim', false) }),
  argmax: (x, a) => W.argmax(tensorAt(x, 0), a.optNum('dim'), a.bool('keepdim', false)),
  argmin: (x, a) => W.argmin(tensorAt(x, 0), a.optNum('dim'), a.bool('keepdim', false)),
  // matmul
  matmul: (x, a) => W.matmul(tensorAt(x, 0), tensorAt(x, 1), { transA: a.bool('transA', false), transB: a.bool('transB', false) }),
  linear: (x) => W.linear(tensorAt(x, 0), tensorAt(x, 1), optTensorAt(x, 2)),
  // nn
  softmax: (x, a) => W.softmax(tensorAt(x, 0), a.num('dim')),
  logSoftmax: (x, a) => W.logSoftmax(tensorAt(x, 0), a.num('dim')),
  layerNorm: (x, a) =>
    W.layerNorm(tensorAt(x, 0), a.nums('normalizedShape'), optTensorAt(x, 1), optTensorAt(x, 2), a.num('eps', 1e-5)),
  rmsNorm: (x, a) => W.rmsNorm(tensorAt(x, 0), a.nums('normalizedShape'), optTensorAt(x, 1), a.num('eps', 1e-6)),
  embedding: (x) => W.embedding(tensorAt(x, 0), tensorAt(x, 1)),
  crossEntropy: (x, a) => {
    const reduction = a.str('reduction', 'mean');
    if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') throw new Error(`bad reduction ${reduction}`);
    return W.crossEntropy(tensorAt(x, 0), tensorAt(x, 1), {
      ignoreIndex: a.num('ignoreIndex', -100),
      labelSmoothing: a.num('labelSmoothing', 0),
      reduction,
    });
  },
  scaledDotProductAttention: (x, a) =>
    W.scaledDotProductAttention(tensorAt(x, 0), tensorAt(x, 1), tensorAt(x, 2), {
      causal: a.bool('causal', false),
      ...(a.bool('mask', false) ? { mask: tensorAt(x, 3), maskMode: a.str('maskMode', 'additive') === 'bool' ? 'bool' : 'additive' } : {}),
      ...(a.has('scale') ? { scale: a.num('scale') } : {}),
    }),
  topk: (x, a) => {
    const { values, indices } = W.topk(tensorAt(x, 0), a.num('k'), { dim: a.num('dim', -1), largest: a.bool('largest', true) });
    return [values, indices];
  },
  // indexing
  indexSelect: (x, a) => W.indexSelect(tensorAt(x, 0), a.num('dim'), tensorAt(x, 1)),
  gather: (x, a) => W.gather(tensorAt(x, 0), a.num('dim'), tensorAt(x, 1)),
  scatterAdd: (x, a) => W.scatterAdd(tensorAt(x, 0), a.num('dim'), tensorAt(x, 1), tensorAt(x, 2)),
  // shape functions
  concat: (x, a) => W.concat(allTensors(x), a.num('dim')),
  stack: (x, a) => W.stack(allTensors(x), a.num('dim')),
  split: (x, a) => {
    const sizes = typeof a.dims('sizes') === 'number' ? a.num('sizes') : a.nums('sizes');
    return W.split(tensorAt(x, 0), sizes, a.num('dim'));
  },
  chunk: (x, a) => W.chunk(tensorAt(x, 0), a.num('n'), a.num('dim')),
  // views as ops (Tensor methods)
  reshape: (x, a) => tensorAt(x, 0).reshape(a.nums('shape')),
  permute: (x, a) => tensorAt(x, 0).permute(a.nums('dims')),
  transpose: (x, a) => tensorAt(x, 0).transpose(a.num('dim0'), a.num('dim1')),
  slice: (x, a) => tensorAt(x, 0).slice(a.num('dim'), a.num('start'), a.optNum('end'), a.num('step', 1)),
  expand: (x, a) => tensorAt(x, 0).expand(a.nums('shape')),
  flatten: (x, a) => tensorAt(x, 0).flatten(a.num('start', 0), a.num('end', -1)),
  squeeze: (x, a) => tensorAt(x, 0).squeeze(a.optNum('dim')),
  unsqueeze: (x, a) => tensorAt(x, 0).unsqueeze(a.num('dim')),
  narrow: (x, a) => tensorAt(x, 0).narrow(a.num('dim'), a.num('start'), a.num('length')),
  select: (x, a) => tensorAt(x, 0).select(a.num('dim'), a.num('index')),
  contiguous: (x) => tensorAt(x, 0).contiguous(),
  mT: (x) => tensorAt(x, 0).mT,
};

function formatIndex(flat: number, shape: readonly number[]): string {
  const idx: number[] = [];
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    const s = shape[d]!;
    idx.unshift(rest % s);
    rest = Math.floor(rest / s);
  }
  return `[${idx.join(', ')}]`;
}

/**
 * Compares `got` with the fixture array; returns a failure message or null. The message reports the
 * element with the largest absolute difference (its index and both values) and how many elements
 * are out of tolerance.
 */
function compare(what: string, got: Tensor, want: ArraySpec, rtol: number, atol: number): string | null {
  const wantShape = want.shape;
  if (got.shape.length !== wantShape.length || got.shape.some((d, i) => d !== wantShape[i])) {
    return `${what}: shape [${got.shape.join(', ')}], expected [${wantShape.join(', ')}]`;
  }
  if (got.dtype !== want.dtype) return `${what}: dtype ${got.dtype}, expected ${want.dtype}`;
  const g = got.dense();
  const w = decodeArray(want);
  let bad = 0;
  let worst = -1;
  let worstDiff = -1;
  for (let i = 0; i < w.length; i++) {
    const a = g[i]!;
    const b = w[i]!;
    // Exact equality covers matching infinities; NaN matches only NaN.
    const same = a === b || (Number.isNaN(a) && Number.isNaN(b));
    const diff = same ? 0 : Number.isNaN(a - b) ? Infinity : Math.abs(a - b);
    const ok = same || (want.dtype === 'f32' && diff <= atol + rtol * Math.abs(b));
    if (!ok) bad++;
    if (diff > worstDiff) {
      worstDiff = diff;
      worst = i;
    }
  }
  if (bad === 0) return null;
  return (
    `${what}: ${bad}/${w.length} elements out of tolerance (rtol ${rtol}, atol ${atol}); ` +
    `largest |diff| ${worstDiff.toPrecision(4)} at ${formatIndex(worst, wantShape)}: ` +
    `expected ${w[worst]}, got ${g[worst]}`
  );
}

/** A backend, and for native the SIMD kernel path forced for the run. */
interface Variant {
  label: string;
  backend: BackendName;
  kernelPath?: KernelPathName;
}

function runCase(c: FixtureCase, variant: Variant): string[] {
  setBackend(variant.backend);
  if (variant.kernelPath !== undefined && !setNativeKernelPath(variant.kernelPath)) {
    return [`could not select native kernel path ${variant.kernelPath}`];
  }
  const fn = OPS[c.op];
  if (fn === undefined) return [`no Weft mapping for fixture op '${c.op}'`];
  const rtol = c.tol?.rtol ?? RTOL;
  const atol = c.tol?.atol ?? ATOL;
  const built = c.inputs.map(buildInput);
  const result = fn(
    built.map((b) => b.value),
    new Args(c.args, c.name),
  );
  const outs = result instanceof Tensor ? [result] : [...result];
  const failures: string[] = [];
  if (outs.length !== c.outputs.length) {
    return [`${outs.length} outputs, expected ${c.outputs.length}`];
  }
  outs.forEach((o, i) => {
    const msg = compare(`output ${i}`, o, c.outputs[i]!, rtol, atol);
    if (msg !== null) failures.push(msg);
  });
  // Backward: seeding each differentiable output with its weight accumulates Σ_i ∂(out_i·w_i).
  const seeded = c.weights.flatMap((w, i) => (w === null ? [] : [{ out: outs[i]!, w, i }]));
  if (seeded.length > 0) {
    for (const [k, { out, w, i }] of seeded.entries()) {
      if (!out.requiresGrad) {
        failures.push(`output ${i} does not require grad (no gradient recorded)`);
        continue;
      }
      out.backward(arrayTensor(w), { retainGraph: k < seeded.length - 1 });
    }
    c.grads.forEach((want, i) => {
      if (want === null) return;
      const base = built[i]!.base!;
      if (base.grad === null) {
        // A leaf the graph never reached has no grad; torch's zeros say the same.
        if (decodeArray(want).some((v) => v !== 0)) failures.push(`grad of input ${i}: none computed`);
        return;
      }
      const msg = compare(`grad of input ${i}`, base.grad, want, rtol, atol);
      if (msg !== null) failures.push(msg);
    });
  }
  return failures;
}

/**
 * js, then native on every kernel path this CPU runs (AVX-512, AVX2, portable), so each SIMD variant
 * is held to the fixtures. The default path is restored after the native runs.
 */
function variants(): Variant[] {
  const out: Variant[] = [{ label: 'js', backend: 'js' }];
  if (!nativeAvailable()) return out;
  const initial = nativeAddonInfo()?.kernelPath as KernelPathName;
  for (const path of ['avx512', 'avx2', 'portable'] as const) {
    if (setNativeKernelPath(path)) out.push({ label: `native/${path}`, backend: 'native', kernelPath: path });
  }
  setNativeKernelPath(initial);
  return out;
}

const initialKernelPath = nativeAvailable() ? (nativeAddonInfo()?.kernelPath as KernelPathName) : undefined;

const families = listFamilies().map(loadFamily);

describe('PyTorch parity fixtures', () => {
  it('cover every mapped op, and every fixture op is mapped', () => {
    const inFixtures = new Set(families.flatMap((f) => f.cases.map((c) => c.op)));
    expect([...Object.keys(OPS)].filter((op) => !inFixtures.has(op)), 'ops without a fixture case').toEqual([]);
    expect([...inFixtures].filter((op) => !(op in OPS)), 'fixture ops without a mapping').toEqual([]);
    expect(families.length).toBeGreaterThanOrEqual(7);
  });
});

if (!nativeAvailable()) {
  describe('PyTorch parity [native]', () => {
    it.skip('SKIPPED: the native addon (build/Release/weft.node) is not built, so native parity is unchecked', () => {});
  });
}

for (const variant of variants()) {
  describe(`PyTorch parity [${variant.label}]`, () => {
    afterAll(() => {
      if (initialKernelPath !== undefined) setNativeKernelPath(initialKernelPath);
    });
    for (const fixture of families) {
      describe(`${fixture.family} (torch ${fixture.torch})`, () => {
        for (const c of fixture.cases) {
          const title = c.tol ? `${c.name} (tol rtol ${c.tol.rtol} atol ${c.tol.atol}: ${c.tol.why})` : c.name;
          it(title, () => {
            const failures = runCase(c, variant).map((f) => `${c.name} [${variant.label}] ${f}`);
            // The joined messages as the assertion message: vitest would abbreviate the array.
            expect(failures, failures.join('\n')).toEqual([]);
          });
        }
      });
    }
  });
}
