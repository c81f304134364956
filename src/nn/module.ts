/**
 * Module: a tree of named parameters and sub-modules, PyTorch-style. Registration order is the
 * iteration order, so state dicts and optimizer layouts are deterministic.
 */
import { noGrad } from '../tensor/autograd.js';
import { formatShape, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export type StateDict = Map<string, Tensor>;

export interface LoadOptions {
  /** Refuse missing or unexpected names (default true). Shapes must always match. */
  strict?: boolean;
}

export class Module {
  /** Dropout and similar layers behave differently in training; `train()`/`eval()` set it for the tree. */
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers a learnable tensor (sets requiresGrad). Returns it, for `this.weight = this.param(...)`. */
  protected registerParameter(name: string, t: Tensor): Tensor {
    checkName(name, this.params, this.children);
    if (t.dtype !== 'f32') throw new TypeError(`registerParameter(${name}): parameters are f32, got ${t.dtype}`);
    if (!t.isLeaf) throw new Error(`registerParameter(${name}): pass a leaf tensor (detach() it first)`);
    if (!t.isContiguous() || t.offset !== 0) throw new Error(`registerParameter(${name}): parameters must be dense`);
    t.requiresGrad = true;
    this.params.set(name, t);
    return t;
  }

  /** Registers a non-learnable tensor saved in the state dict (e.g. running statistics). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    checkName(name, this.buffers, this.children);
    this.buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    checkName(name, this.params, this.children);
    this.children.set(name, m);
    return m;
  }

  /**
   * Swaps the child registered as `name` for `m` (PyTorch's setattr on a submodule): the state-dict
   * path stays, and any property of this module that held the old child now holds the new one, so
   * the parent's forward calls it. LoRA and quantization swap layers in place this way.
   */
  replaceModule(name: string, m: Module): Module {
    const old = this.children.get(name);
    if (old === undefined) throw new Error(`replaceModule: no child '${name}' (children: ${[...this.children.keys()].join(', ') || 'none'})`);
    this.children.set(name, m);
    for (const key of Object.keys(this)) {
      if ((this as Record<string, unknown>)[key] === old) Reflect.set(this, key, m);
    }
    this.onChildReplaced(name, old, m);
    return old;
  }

  /** The module registered under the dotted path `path` ('' is this module). */
  getModule(path: string): Module {
    if (path === '') return this;
    return path.split('.').reduce<Module>((m, part) => {
      const next = m.children.get(part);
      if (next === undefined) throw new Error(`getModule: no module '${path}' (stopped at '${part}')`);
      return next;
    }, this);
  }

  /** Hook for containers that index their children elsewhere too (ModuleList). */
  protected onChildReplaced(name: string, old: Module, m: Module): void {
    void name;
    void old;
    void m;
  }

  /** (name, parameter) pairs, depth-first in registration order; a tensor shared by two names (tied weights) appears once. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [name, t] of this.allNamed(prefix, (m) => m.params)) {
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(join(prefix, name)));
    return out;
  }

  /** Number of distinct parameter elements (tied weights counted once). */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      // A gradient that is a view into a larger buffer (an optimizer's flat gradient buffer) is
      // zeroed in place, not dropped, so the optimizer keeps seeing it.
      const g = p.grad?.storage.data;
      if (g !== undefined && g.byteLength !== g.buffer.byteLength) g.fill(0);
      else p.zeroGrad();
    }
  }

  /** Every parameter and buffer by dotted name (tied weights appear under each name, as in PyTorch). */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, t] of this.allNamed('', (m) => m.params)) sd.set(name, t);
    for (const [name, t] of this.allNamed('', (m) => m.buffers)) sd.set(name, t);
    return sd;
  }

  /** Copies values in; names and shapes are checked, and nothing is written unless all of it fits. */
  loadStateDict(sd: StateDict | Record<string, Tensor>, options: LoadOptions = {}): void {
    const strict = options.strict ?? true;
    const incoming = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !incoming.has(k));
    const unexpected = [...incoming.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length > 0 || unexpected.length > 0)) {
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`missing: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`);
      if (unexpected.length > 0) parts.push(`unexpected: ${unexpected.slice(0, 10).join(', ')}${unexpected.length > 10 ? ', …' : ''}`);
      throw new Error(`loadStateDict: names do not match (${parts.join('; ')}); pass { strict: false } to load the overlap`);
    }
    for (const [name, target] of own) {
      const src = incoming.get(name);
      if (src === undefined) continue;
      if (!shapesEqual(src.shape, target.shape)) {
        throw new RangeError(`loadStateDict: ${name} has shape ${formatShape(src.shape)} in the state dict, ${formatShape(target.shape)} in the model`);
      }
      if (target.dtype === 'f32' && src.dtype !== 'f32' && src.dtype !== 'bf16' && src.dtype !== 'f16') {
        throw new TypeError(`loadStateDict: ${name} is ${src.dtype}, expected a float tensor`);
      }
    }
    noGrad(() => {
      for (const [name, target] of own) {
        const src = incoming.get(name);
        if (src === undefined) continue;
        const values = src.dtype === target.dtype ? src : src.to(target.dtype);
        target.storage.data.set(values.dense(), target.offset);
      }
    });
  }

  private allNamed(prefix: string, pick: (m: Module) => Map<string, Tensor>): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, t] of pick(this)) out.push([join(prefix, name), t]);
    for (const [name, child] of this.children) out.push(...child.allNamed(join(prefix, name), pick));
    return out;
  }
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

function checkName(name: string, ...maps: Map<string, unknown>[]): void {
  if (name === '' || name.includes('.')) throw new Error(`invalid name '${name}': non-empty, no dots`);
  if (maps.some((m) => m.has(name))) throw new Error(`'${name}' is already registered`);
}

/** A list of modules registered as children "0", "1", … (PyTorch's ModuleList, HF's `h.0`, `h.1`). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];

  constructor(modules: readonly M[] = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): void {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
  }

  get length(): number {
    return this.items.length;
  }

  protected override onChildReplaced(name: string, old: Module, m: Module): void {
    const i = this.items.indexOf(old as M);
    if (i >= 0 && String(i) === name) this.items[i] = m as M;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
