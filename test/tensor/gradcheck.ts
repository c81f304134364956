/**
 * Finite-difference gradient check, shared by the op tests.
 *
 * For L = Σ fn(...inputs) ⊙ W (W fixed random weights), compares the autograd gradient of L with
 * respect to each checked input against float64 central differences (L(x + ε) − L(x − ε)) / (2ε),
 * where x ± ε are the f32-rounded perturbed values actually fed to the op and L is summed in float64.
 *
 * Inputs may be any view (transposed, sliced, expanded): each is checked per *storage element*, so
 * an expanded input's gradient is the sum over the logical elements that share one stored value,
 * which is exactly what perturbing that stored value measures. The gradient is seeded through
 * `backward(W)` rather than built with mul/sum, so the check doesn't depend on the ops under test.
 */
import { noGrad } from '../../src/tensor/autograd.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

export interface GradcheckOptions {
  /** Perturbation size (default 1e-3). */
  eps?: number;
  /** Absolute tolerance (default 5e-3). */
  atol?: number;
  /** Relative tolerance against |finite difference| (default 1e-2). */
  rtol?: number;
  /** Indices of the inputs to check (default: every f32 input). */
  wrt?: readonly number[];
  /** Label for failure messages (default: the recorded op name of the output). */
  name?: string;
  /** Seed of the random output weights W (default 1234). */
  seed?: number;
}

export interface GradcheckReport {
  /** Name of the op that produced the output (its gradFn), for messages. */
  op: string;
  /** Largest |autograd − finite difference| over all checked elements. */
  maxAbsDiff: number;
  /** Elements compared. */
  checked: number;
}

/** Storage offsets of every logical element of `t`, in row-major order. */
function logicalOffsets(t: Tensor): number[] {
  const out: number[] = [];
  const nd = t.ndim;
  const idx = new Array<number>(nd).fill(0);
  for (let k = 0; k < t.numel; k++) {
    let off = t.offset;
    for (let d = 0; d < nd; d++) off += idx[d]! * t.strides[d]!;
    out.push(off);
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d]! < t.shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Throws (naming the op, the input, the element and the largest difference) unless autograd and
 * finite differences agree within atol + rtol·|fd| for every element of every checked input.
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): GradcheckReport {
  const { eps = 1e-3, atol = 5e-3, rtol = 1e-2, seed = 1234 } = options;
  const wrt = options.wrt ?? inputs.flatMap((t, i) => (t.dtype === 'f32' ? [i] : []));
  for (const i of wrt) {
    const t = inputs[i];
    if (t === undefined) throw new RangeError(`gradcheck: wrt index ${i} out of range for ${inputs.length} inputs`);
    if (t.dtype !== 'f32') throw new TypeError(`gradcheck: input ${i} is ${t.dtype}; only f32 inputs can be checked`);
  }

  // Leaves with the same storage and layout as the given inputs (so views stay views).
  const leaves = inputs.map((t, i) => {
    const leaf = t.detach();
    if (wrt.includes(i)) leaf.requiresGrad_();
    return leaf;
  });

  // Autograd: seed backward with W.
  const out = fn(...leaves);
  if (out.dtype !== 'f32') throw new TypeError(`gradcheck: fn must return an f32 tensor, got ${out.dtype}`);
  const op = options.name ?? out.gradFn?.name ?? '(no gradFn)';
  if (!out.requiresGrad) throw new Error(`gradcheck(${op}): the output does not require grad; nothing was recorded`);
  const gen = new Generator(seed);
  const weights = new Float32Array(out.numel);
  for (let i = 0; i < weights.length; i++) weights[i] = gen.normal();
  out.backward(Tensor.fromArray(weights, out.shape));

  const loss = (): number =>
    noGrad(() => {
      const y = fn(...leaves);
      const data = y.f32('gradcheck');
      let s = 0;
      for (let i = 0; i < data.length; i++) s += data[i]! * weights[i]!;
      return s;
    });

  let maxAbsDiff = 0;
  let checked = 0;
  let worst: { excess: number; message: string } | null = null;
  for (const i of wrt) {
    const leaf = leaves[i]!;
    const offsets = logicalOffsets(leaf);
    // Autograd gradient per storage element (summed over logical elements that alias it).
    const ag = new Map<number, number>();
    const grad = leaf.grad === null ? null : leaf.grad.f32('gradcheck');
    if (leaf.grad !== null && leaf.grad.shape.join() !== leaf.shape.join()) {
      throw new Error(`gradcheck(${op}): input ${i} grad shape [${leaf.grad.shape.join(', ')}] != [${leaf.shape.join(', ')}]`);
    }
    offsets.forEach((off, k) => ag.set(off, (ag.get(off) ?? 0) + (grad === null ? 0 : grad[k]!)));

    const data = leaf.storage.data as Float32Array;
    for (const [off, analytic] of ag) {
      const orig = data[off]!;
      data[off] = orig + eps;
      const up = data[off]!;
      const lPlus = loss();
      data[off] = orig - eps;
      const down = data[off]!;
      const lMinus = loss();
      data[off] = orig;
      const fd = (lPlus - lMinus) / (up - down);
      const diff = Math.abs(analytic - fd);
      const bound = atol + rtol * Math.abs(fd);
      checked++;
      if (!(diff <= bound)) {
        const excess = Number.isNaN(diff) ? Infinity : diff - bound;
        if (worst === null || excess > worst.excess) {
          const logical = offsets.indexOf(off);
          worst = {
            excess,
            message:
              `gradcheck(${op}): input ${i} ${leaf.toString()} element ${logical} (value ${orig}): ` +
              `autograd ${analytic} vs finite difference ${fd} (|diff| ${diff} > ${bound})`,
          };
        }
      }
      if (diff > maxAbsDiff || Number.isNaN(diff)) maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
    }
  }
  if (worst !== null) throw new Error(`${worst.message}; largest |diff| over all elements ${maxAbsDiff}`);
  return { op, maxAbsDiff, checked };
}
