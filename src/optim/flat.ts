/**
 * Flat parameter and gradient buffers (as llm.c): every parameter is copied into ONE Float32Array
 * and the model's tensors are rebound to views of it, and every gradient is a view of ONE flat
 * gradient buffer. An optimizer step, gradient clipping and zeroing are then single passes over
 * contiguous memory instead of one small kernel call per tensor.
 *
 * Layout: decayed parameters first (in the order given), then the others, so AdamW's step is two
 * kernel calls (decay region, no-decay region).
 */
import { formatShape, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * Elements of unused space before the flat data. No parameter or gradient view then starts at
 * byte 0 of its ArrayBuffer, which (1) is how `Module.zeroGrad()` recognises optimizer-owned
 * gradients (it zeroes them in place instead of dropping them) and (2) guarantees the storage pool,
 * which only recycles whole buffers, never takes a view of the flat memory. 16 floats = 64 bytes keeps
 * the data cache-line aligned.
 */
const HEAD_PAD = 16;

export interface FlatEntry {
  readonly name: string;
  readonly param: Tensor;
  /** Element offset in the flat buffers. */
  readonly offset: number;
  readonly numel: number;
  readonly decay: boolean;
  /** The parameter's data: a view of `FlatParams.data`. */
  readonly view: Float32Array;
  /** The gradient's memory: a view of `FlatParams.grad`. */
  readonly gradView: Float32Array;
  /** The tensor installed as `param.grad` (replaced if someone disposes it). */
  grad: Tensor;
}

/** Predicate choosing which parameters get weight decay. nanoGPT: every tensor of rank >= 2. */
export type DecayFilter = (name: string, p: Tensor) => boolean;

export const decayRank2: DecayFilter = (_name, p) => p.ndim >= 2;

function flatArray(n: number): Float32Array {
  return new Float32Array(new ArrayBuffer((HEAD_PAD + n) * 4), HEAD_PAD * 4, n);
}

export class FlatParams {
  readonly entries: FlatEntry[];
  /** All parameters: decayed ones in [0, decayNumel), the others after. */
  readonly data: Float32Array;
  /** All gradients, same layout. */
  readonly grad: Float32Array;
  readonly decayNumel: number;

  constructor(params: readonly (readonly [string, Tensor])[], decay: DecayFilter, owner: string) {
    const seenTensors = new Set<Tensor>();
    const seenStorage = new Set<unknown>();
    const seenNames = new Set<string>();
    for (const [name, p] of params) {
      const bad = (problem: string): never => {
        throw new Error(`${owner}: parameter '${name}' ${problem}`);
      };
      if (seenNames.has(name)) bad('is listed twice');
      if (seenTensors.has(p) || seenStorage.has(p.storage)) {
        bad('shares its memory with another listed parameter (pass tied weights once, e.g. from namedParameters())');
      }
      if (p.isDisposed || p.storage.released) bad('was disposed');
      if (p.dtype !== 'f32') bad(`is ${p.dtype}; optimizers update f32 parameters`);
      if (!p.isLeaf) bad('is not a leaf tensor (detach() it)');
      if (!p.isContiguous() || p.offset !== 0 || p.storage.data.length !== p.numel) {
        bad(`must own dense memory of exactly its ${p.numel} elements (got a view: offset ${p.offset}, storage ${p.storage.data.length})`);
      }
      seenNames.add(name);
      seenTensors.add(p);
      seenStorage.add(p.storage);
    }
    const flags = params.map(([name, p]) => decay(name, p));
    const decayed = params.filter((_, i) => flags[i]);
    const plain = params.filter((_, i) => !flags[i]);
    const total = params.reduce((n, [, p]) => n + p.numel, 0);
    this.data = flatArray(total);
    this.grad = flatArray(total);
    this.decayNumel = decayed.reduce((n, [, p]) => n + p.numel, 0);

    this.entries = [];
    let offset = 0;
    for (const [list, isDecay] of [
      [decayed, true],
      [plain, false],
    ] as const) {
      for (const [name, p] of list) {
        const n = p.numel;
        const view = this.data.subarray(offset, offset + n);
        view.set(p.storage.data as Float32Array);
        // Rebinding the storage (not the tensor) keeps every existing view of the parameter valid.
        p.storage.data = view;
        const gradView = this.grad.subarray(offset, offset + n);
        if (p.grad !== null) {
          gradView.set(gradValues(p.grad, p, name, owner));
          p.grad.dispose();
        }
        const grad = Tensor.fromArray(gradView, p.shape);
        p.grad = grad;
        this.entries.push({ name, param: p, offset, numel: n, decay: isDecay, view, gradView, grad });
        offset += n;
      }
    }
  }

  get numel(): number {
    return this.data.length;
  }

  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /**
   * Makes every `param.grad` the flat view again. Autograd accumulates into the installed view in
   * place; a gradient that was replaced anyway (the user called `param.zeroGrad()`, or aliased the
   * gradient so it couldn't be updated in place) is copied back into the flat buffer — or zeroed if
   * the parameter has no gradient at all — so a step never reads stale values.
   */
  syncGrads(owner: string): void {
    for (const e of this.entries) {
      const p = e.param;
      if (p.storage.data !== e.view) {
        throw new Error(`${owner}: parameter '${e.name}' no longer lives in the optimizer's flat buffer (was it disposed or its storage replaced?)`);
      }
      if (p.grad === e.grad && !e.grad.isDisposed && !e.grad.storage.released) continue;
      const g = p.grad;
      if (g === null) e.gradView.fill(0);
      else if (g !== e.grad) {
        e.gradView.set(gradValues(g, p, e.name, owner));
        g.dispose();
      }
      this.rewrap(e);
    }
  }

  /** Zeroes every gradient in place (one fill), reinstalling any flat view that was replaced. */
  zeroGrad(): void {
    for (const e of this.entries) {
      const g = e.param.grad;
      if (g === e.grad && !e.grad.isDisposed && !e.grad.storage.released) continue;
      if (g !== null && g !== e.grad) g.dispose();
      this.rewrap(e);
    }
    this.grad.fill(0);
  }

  private rewrap(e: FlatEntry): void {
    if (e.grad.isDisposed || e.grad.storage.released) e.grad = Tensor.fromArray(e.gradView, e.param.shape);
    e.param.grad = e.grad;
  }
}

function gradValues(g: Tensor, p: Tensor, name: string, owner: string): Float32Array {
  if (!shapesEqual(g.shape, p.shape)) {
    throw new Error(`${owner}: gradient of '${name}' has shape ${formatShape(g.shape)}, parameter has ${formatShape(p.shape)}`);
  }
  return g.f32(owner);
}

/** The state an optimizer saves for an exact resume. */
export interface OptimizerState {
  /** Steps taken so far (AdamW's bias correction uses step + 1 next). */
  step: number;
  /** First moment (AdamW) or momentum buffer (SGD), flat in the optimizer's layout. */
  m: Float32Array;
  /** Second moment (AdamW); empty for SGD. */
  v: Float32Array;
  /** Parameter names in flat-buffer order: a resume must use the same parameters in the same layout. */
  names: string[];
  lr: number;
}

/** Checks that a saved state fits this optimizer (same parameter names in the same order, same sizes). */
export function checkState(owner: string, flat: FlatParams, s: OptimizerState, mLength: number, vLength: number): void {
  const names = flat.names;
  if (s.names.length !== names.length || s.names.some((n, i) => n !== names[i])) {
    const firstDiff = names.findIndex((n, i) => s.names[i] !== n);
    throw new Error(
      `${owner}.loadStateDict: the state is for parameters [${s.names.length} names] that differ from this optimizer's ` +
        `[${names.length} names]` +
        (firstDiff >= 0 ? ` (first difference at ${firstDiff}: '${s.names[firstDiff] ?? '(none)'}' vs '${names[firstDiff]}')` : ''),
    );
  }
  if (s.m.length !== mLength) throw new Error(`${owner}.loadStateDict: m has ${s.m.length} elements, expected ${mLength}`);
  if (s.v.length !== vLength) throw new Error(`${owner}.loadStateDict: v has ${s.v.length} elements, expected ${vLength}`);
  if (!Number.isSafeInteger(s.step) || s.step < 0) throw new Error(`${owner}.loadStateDict: step must be a non-negative integer, got ${s.step}`);
  if (!Number.isFinite(s.lr) || s.lr < 0) throw new Error(`${owner}.loadStateDict: lr must be a finite non-negative number, got ${s.lr}`);
}

export function checkHyper(owner: string, name: string, value: number, lo: number, hi: number, hiOpen = false): void {
  if (!Number.isFinite(value) || value < lo || value > hi || (hiOpen && value === hi)) {
    throw new RangeError(`${owner}: ${name} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${value}`);
  }
}
