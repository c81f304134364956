/**
 * Loader for the PyTorch parity fixtures written by scripts/fixtures/ops.py into test/fixtures/ops/.
 *
 * Arrays are stored as base64 of little-endian f32 / i32 with their shape. An input is a *base*
 * tensor plus an optional view recipe; `buildInput` rebuilds exactly the layout the generator fed to
 * torch (transposed, sliced with a step, expanded with stride 0, …) with Tensor view methods, so the
 * op under test sees the same non-contiguous input and the gradient lands on the base.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor } from '../../src/tensor/tensor.js';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ops');

export interface ArraySpec {
  dtype: 'f32' | 'i32';
  shape: number[];
  /** base64 of the little-endian elements, row-major. */
  data: string;
}

export type ViewStep =
  | { transpose: [number, number] }
  | { permute: number[] }
  | { slice: [number, number, number, number] }
  | { expand: number[] }
  | { reshape: number[] }
  | { unsqueeze: number }
  | { squeeze: number };

export interface TensorInputSpec extends ArraySpec {
  requiresGrad: boolean;
  view?: ViewStep[];
}

export type InputSpec = TensorInputSpec | { scalar: number } | { absent: true };

export interface FixtureCase {
  /** `op/case`, unique within the family. */
  name: string;
  op: string;
  args: Record<string, unknown>;
  inputs: InputSpec[];
  outputs: ArraySpec[];
  /** Weight w of each differentiable output (the backward seed), null for the others. */
  weights: (ArraySpec | null)[];
  /** Gradient of Σ out·w with respect to each input's base tensor, null where none. */
  grads: (ArraySpec | null)[];
  /** A looser tolerance, only where the op's conditioning makes f32 miss the default (with why). */
  tol?: { rtol: number; atol: number; why: string };
}

export interface FixtureFamily {
  family: string;
  generator: string;
  torch: string;
  cases: FixtureCase[];
}

/** Every fixture family present (one JSON file each), sorted. */
export function listFamilies(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

export function loadFamily(name: string): FixtureFamily {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, `${name}.json`), 'utf8')) as FixtureFamily;
}

/** Decodes an array spec into a fresh, aligned typed array (element count checked against the shape). */
export function decodeArray(spec: ArraySpec): Float32Array | Int32Array {
  const bytes = Buffer.from(spec.data, 'base64');
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== n * 4) {
    throw new Error(`fixture array of shape [${spec.shape.join(', ')}] has ${bytes.length} bytes, expected ${n * 4}`);
  }
  // Copy into a new ArrayBuffer: Buffer's pool offset is not necessarily 4-byte aligned.
  const buf = new ArrayBuffer(bytes.length);
  new Uint8Array(buf).set(bytes);
  const view = new DataView(buf);
  if (spec.dtype === 'f32') {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  if (spec.dtype === 'i32') {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true);
    return out;
  }
  throw new Error(`fixture array has unknown dtype ${String((spec as { dtype: unknown }).dtype)}`);
}

/** A dense tensor holding a fixture array. */
export function arrayTensor(spec: ArraySpec): Tensor {
  return Tensor.fromArray(decodeArray(spec), spec.shape, spec.dtype);
}

/** Applies a view recipe step by step with Tensor view methods (each recorded by autograd). */
export function applyView(t: Tensor, steps: readonly ViewStep[]): Tensor {
  let cur = t;
  for (const step of steps) {
    if ('transpose' in step) cur = cur.transpose(step.transpose[0], step.transpose[1]);
    else if ('permute' in step) cur = cur.permute(step.permute);
    else if ('slice' in step) cur = cur.slice(step.slice[0], step.slice[1], step.slice[2], step.slice[3]);
    else if ('expand' in step) cur = cur.expand(step.expand);
    else if ('reshape' in step) cur = cur.reshape(step.reshape);
    else if ('unsqueeze' in step) cur = cur.unsqueeze(step.unsqueeze);
    else if ('squeeze' in step) cur = cur.squeeze(step.squeeze);
    else throw new Error(`unknown view step ${JSON.stringify(step)}`);
  }
  return cur;
}

export interface BuiltInput {
  /** The leaf the gradient is checked on (null for scalars and absent arguments). */
  base: Tensor | null;
  /** What the op receives: the view of the base, a number, or undefined. */
  value: Tensor | number | undefined;
}

/** Rebuilds one input: the base leaf (requiring grad when the fixture says so) and its view. */
export function buildInput(spec: InputSpec): BuiltInput {
  if ('scalar' in spec) return { base: null, value: spec.scalar };
  if ('absent' in spec) return { base: null, value: undefined };
  const base = arrayTensor(spec);
  if (spec.requiresGrad) base.requiresGrad_();
  return { base, value: spec.view ? applyView(base, spec.view) : base };
}

/**
 * The largest violation of |got − want| ≤ atol + rtol·|want| (NaN counts as one), described for a
 * failure message; null when every element is within tolerance.
 */
export function mismatch(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-4, atol = 1e-5): string | null {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i]! - want[i]!) - (atol + rtol * Math.abs(want[i]!));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  return worst < 0 ? null : `at ${worst}: got ${got[worst]}, want ${want[worst]} (${want.length} elements)`;
}
