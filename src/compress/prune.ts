/**
 * Pruning.
 *
 * Unstructured: magnitude pruning (zero the smallest |w|), per layer or with one global threshold,
 * optionally gradual — sparsity follows Zhu & Gupta's cubic schedule s_k = s_f·(1 − (1 − k/n)³) over n
 * pruning events with fine-tuning between them, the masks re-applied after every optimizer step so
 * pruned weights stay zero. Shapes stay; the zeros are what a sparse kernel or compressor would use.
 *
 * Structured (LLaMA): whole attention heads (key/value groups with their query heads, so GQA stays
 * valid), FFN neurons, or decoder layers are removed, ranked by a first-order Taylor importance
 * |Σ grad × activation| of the structure's output, accumulated over calibration batches (Molchanov
 * et al. 2019; Michel et al. 2019 for heads). For a structure feeding an output projection W_out,
 * Σ_tokens g·a over its activations equals Σ W_out ⊙ ∂L/∂W_out over its columns, which is how it is
 * computed here. The result is a new, smaller LLaMA (smaller intermediate_size, fewer heads with an
 * explicit head_dim, or fewer layers) that saves with savePretrained and loads with fromPretrained.
 * Per-layer widths are not expressible in a HF LLaMA config, so the same number of neurons / heads
 * is kept in every layer (each layer keeps its own most important ones).
 */
import { Llama, type LlamaConfig } from '../models/llama.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { Tensor } from '../tensor/tensor.js';
import { findLinears, type LinearFilter } from './calibrate.js';

// -----------------------------------------------------------------------------------------------
// Unstructured magnitude pruning
// -----------------------------------------------------------------------------------------------

export type Masks = Map<string, Uint8Array>;

/** Zhu & Gupta's cubic schedule: the sparsity after event k of n, from `initial` to `final`. */
export function cubicSparsity(k: number, n: number, final: number, initial = 0): number {
  const t = Math.min(1, Math.max(0, k / n));
  return final + (initial - final) * (1 - t) ** 3;
}

/** Masks (1 = keep) removing the `sparsity` fraction of smallest-magnitude weights, per layer or globally. */
export function magnitudeMasks(model: Module, sparsity: number, options: LinearFilter & { scope?: 'layer' | 'global' } = {}): Masks {
  if (!(sparsity >= 0 && sparsity < 1)) throw new RangeError(`magnitudeMasks: sparsity must be in [0, 1), got ${sparsity}`);
  const layers = findLinears(model, options);
  const masks: Masks = new Map();
  const thresholdOf = (values: Float32Array[]): number => {
    const total = values.reduce((n, v) => n + v.length, 0);
    const drop = Math.floor(sparsity * total);
    if (drop === 0) return -1;
    const all = new Float32Array(total);
    let at = 0;
    for (const v of values) {
      for (let i = 0; i < v.length; i++) all[at + i] = Math.abs(v[i]!);
      at += v.length;
    }
    all.sort();
    return all[drop - 1]!;
  };
  const build = (w: Float32Array, threshold: number, budget: { left: number }): Uint8Array => {
    const m = new Uint8Array(w.length);
    // Strictly above the threshold stays; ties at the threshold are dropped only while the budget lasts.
    for (let i = 0; i < w.length; i++) {
      const a = Math.abs(w[i]!);
      if (a > threshold) m[i] = 1;
      else if (a === threshold && budget.left <= 0) m[i] = 1;
      else budget.left--;
    }
    return m;
  };
  if ((options.scope ?? 'layer') === 'global') {
    const ws = layers.map(([, l]) => l.weight.f32());
    const t = thresholdOf(ws);
    const budget = { left: Math.floor(sparsity * ws.reduce((n, v) => n + v.length, 0)) };
    layers.forEach(([name, l]) => masks.set(name, build(l.weight.f32(), t, budget)));
  } else {
    for (const [name, l] of layers) {
      const w = l.weight.f32();
      masks.set(name, build(w, thresholdOf([w]), { left: Math.floor(sparsity * w.length) }));
    }
  }
  return masks;
}

/** Zeros the masked weights in place. */
export function applyMasks(model: Module, masks: Masks): void {
  const byName = new Map(findLinears(model, { exclude: /^$/ }));
  noGrad(() => {
    for (const [name, m] of masks) {
      const l = byName.get(name);
      if (l === undefined) throw new Error(`applyMasks: no Linear '${name}' in the model`);
      const w = l.weight.f32();
      for (let i = 0; i < w.length; i++) if (m[i] === 0) w[i] = 0;
    }
  });
}

/** The fraction of zero weights over the given Linears (default all but lm_head). */
export function sparsityOf(model: Module, filter: LinearFilter = {}): number {
  let zeros = 0;
  let total = 0;
  for (const [, l] of findLinears(model, filter)) {
    const w = l.weight.f32();
    for (const v of w) if (v === 0) zeros++;
    total += w.length;
  }
  return total === 0 ? 0 : zeros / total;
}

// -----------------------------------------------------------------------------------------------
// Structured pruning of LLaMA
// -----------------------------------------------------------------------------------------------

export interface TaylorImportance {
  /** [layer][kvGroup]: importance of a key/value head with its query heads. */
  heads: Float64Array[];
  /** [layer][neuron]. */
  neurons: Float64Array[];
  /** [layer]. */
  layers: Float64Array;
}

/** Accumulates |Σ grad × activation| per structure over (ids, targets) batches. */
export function taylorImportance(model: Llama, batches: readonly { x: Tensor; y: Tensor }[]): TaylorImportance {
  const c = model.config;
  const rep = c.nHead / c.nKVHead;
  const heads = Array.from({ length: c.nLayer }, () => new Float64Array(c.nKVHead));
  const neurons = Array.from({ length: c.nLayer }, () => new Float64Array(c.intermediateSize));
  const layers = new Float64Array(c.nLayer);
  model.train();
  for (const { x, y } of batches) {
    model.zeroGrad();
    const { logits, loss } = model.forward(x, y);
    loss!.backward();
    logits.dispose();
    model.model.layers.items.forEach((layer, li) => {
      const o = layer.self_attn.o_proj;
      const d = layer.mlp.down_proj;
      const colSums = (l: typeof o): Float64Array => {
        const w = l.weight.f32();
        const g = l.weight.grad?.f32() ?? new Float32Array(w.length);
        const out = new Float64Array(l.inFeatures);
        for (let r = 0; r < l.outFeatures; r++) for (let col = 0; col < l.inFeatures; col++) out[col]! += w[r * l.inFeatures + col]! * g[r * l.inFeatures + col]!;
        return out;
      };
      const oc = colSums(o);
      const dc = colSums(d);
      let layerSum = 0;
      for (let kv = 0; kv < c.nKVHead; kv++) {
        let s = 0;
        for (let h = kv * rep; h < (kv + 1) * rep; h++) for (let j = 0; j < c.headDim; j++) s += oc[h * c.headDim + j]!;
        heads[li]![kv]! += Math.abs(s);
        layerSum += s;
      }
      for (let n = 0; n < c.intermediateSize; n++) {
        neurons[li]![n]! += Math.abs(dc[n]!);
        layerSum += dc[n]!;
      }
      layers[li]! += Math.abs(layerSum);
    });
  }
  model.zeroGrad();
  model.eval();
  return { heads, neurons, layers };
}

/** Indices of the `keep` largest scores, in increasing index order. */
export function topIndices(scores: ArrayLike<number>, keep: number): number[] {
  return Array.from({ length: scores.length }, (_, i) => i)
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, keep)
    .sort((a, b) => a - b);
}

function rowsOf(t: Tensor, rows: readonly number[]): Float32Array {
  const cols = t.shape[1] ?? 1;
  const src = t.f32();
  const out = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => out.set(src.subarray(r * cols, (r + 1) * cols), i * cols));
  return out;
}

function colsOf(t: Tensor, cols: readonly number[]): Float32Array {
  const [R, C] = t.shape as [number, number];
  const src = t.f32();
  const out = new Float32Array(R * cols.length);
  for (let r = 0; r < R; r++) cols.forEach((c, i) => (out[r * cols.length + i] = src[r * C + c]!));
  return out;
}

/** Builds the smaller model from a config and a function giving each new tensor's values by name. */
function rebuild(config: LlamaConfig, values: (name: string, target: Tensor) => Float32Array): Llama {
  const small = new Llama(config);
  const sd = new Map<string, Tensor>();
  for (const [name, t] of small.stateDict()) {
    const v = values(name, t);
    if (v.length !== t.numel) throw new Error(`prune: ${name} got ${v.length} values for shape [${t.shape.join(', ')}]`);
    sd.set(name, Tensor.fromArray(v, t.shape));
  }
  small.loadStateDict(sd);
  small.eval();
  return small;
}

/** Keeps `keep` FFN neurons in every layer (each layer its most important ones). */
export function pruneNeurons(model: Llama, importance: TaylorImportance, keep: number): Llama {
  const c = model.config;
  if (!(Number.isInteger(keep) && keep >= 1 && keep <= c.intermediateSize)) throw new RangeError(`pruneNeurons: keep must be in [1, ${c.intermediateSize}], got ${keep}`);
  const kept = importance.neurons.map((s) => topIndices(s, keep));
  const old = model.stateDict();
  return rebuild({ ...c, intermediateSize: keep }, (name) => {
    const src = old.get(name)!;
    const m = /^model\.layers\.(\d+)\.mlp\.(gate_proj|up_proj|down_proj)\.(weight|bias)$/.exec(name);
    if (m === null) return src.f32().slice();
    const idx = kept[Number(m[1])]!;
    if (m[2] === 'down_proj') return m[3] === 'weight' ? colsOf(src, idx) : src.f32().slice();
    return rowsOf(src, idx);
  });
}

/** Keeps `keepKV` key/value heads (with their query heads) in every layer. */
export function pruneHeads(model: Llama, importance: TaylorImportance, keepKV: number): Llama {
  const c = model.config;
  if (!(Number.isInteger(keepKV) && keepKV >= 1 && keepKV <= c.nKVHead)) throw new RangeError(`pruneHeads: keep must be in [1, ${c.nKVHead}] key/value heads, got ${keepKV}`);
  const rep = c.nHead / c.nKVHead;
  const D = c.headDim;
  const keptKV = importance.heads.map((s) => topIndices(s, keepKV));
  const expand = (heads: number[]): number[] => heads.flatMap((h) => Array.from({ length: D }, (_, j) => h * D + j));
  const old = model.stateDict();
  return rebuild({ ...c, nHead: keepKV * rep, nKVHead: keepKV, headDim: D }, (name) => {
    const src = old.get(name)!;
    const m = /^model\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|o_proj)\.(weight|bias)$/.exec(name);
    if (m === null) return src.f32().slice();
    const kv = keptKV[Number(m[1])]!;
    const q = kv.flatMap((g) => Array.from({ length: rep }, (_, r) => g * rep + r));
    if (m[2] === 'o_proj') return m[3] === 'weight' ? colsOf(src, expand(q)) : src.f32().slice();
    return rowsOf(src, expand(m[2] === 'q_proj' ? q : kv));
  });
}

/** Keeps the `keep` most important decoder layers, in their original order. */
export function pruneLayers(model: Llama, importance: TaylorImportance, keep: number): Llama {
  const c = model.config;
  if (!(Number.isInteger(keep) && keep >= 1 && keep <= c.nLayer)) throw new RangeError(`pruneLayers: keep must be in [1, ${c.nLayer}], got ${keep}`);
  const kept = topIndices(importance.layers, keep);
  const old = model.stateDict();
  return rebuild({ ...c, nLayer: keep }, (name) => {
    const m = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
    const from = m === null ? name : `model.layers.${kept[Number(m[1])]!}.${m[2]}`;
    return old.get(from)!.f32().slice();
  });
}
