/**
 * Low-rank factorisation: each Linear W [out, in] becomes B·A with A [k, in] and B [out, k] from the
 * truncated SVD W ≈ U_k Σ_k V_kᵀ (A = Σ_k^½ V_kᵀ, B = U_k Σ_k^½), the best rank-k approximation in
 * Frobenius norm (Eckart–Young). k comes from a fixed rank or an energy threshold (the smallest k
 * keeping a fraction E of Σσ²); a layer is left alone when the factors would not be smaller.
 *
 * The SVD is one-sided Jacobi (Hestenes 1958): rotate pairs of columns until all are orthogonal;
 * the column norms are then the singular values. It works on A itself rather than AᵀA, so small
 * singular values keep their relative accuracy, and needs no library.
 */
import { replaceModule } from './quant/model.js';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights } from '../io/safetensors.js';
import { Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Llama, llamaConfigFromHF } from '../models/llama.js';
import { noGrad } from '../tensor/autograd.js';
import type { Tensor } from '../tensor/tensor.js';
import { findLinears, type LinearFilter } from './calibrate.js';

export interface SVDResult {
  /** Left singular vectors, [rows, r] row-major. */
  u: Float64Array;
  /** Singular values, descending, length r = min(rows, cols). */
  s: Float64Array;
  /** Right singular vectors, [cols, r] row-major. */
  v: Float64Array;
  rows: number;
  cols: number;
  rank: number;
}

/** Thin SVD of a rows×cols row-major matrix by one-sided Jacobi (float64). */
export function svd(a: ArrayLike<number>, rows: number, cols: number, options: { tol?: number; maxSweeps?: number } = {}): SVDResult {
  if (a.length !== rows * cols) throw new RangeError(`svd: ${a.length} values is not ${rows}×${cols}`);
  // Orthogonalise the columns of the taller orientation: M = A (m ≥ n) or Aᵀ.
  const transposed = rows < cols;
  const m = transposed ? cols : rows;
  const n = transposed ? rows : cols;
  // Column-major M: column j at [j*m, (j+1)*m).
  const M = new Float64Array(m * n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = a[r * cols + c]!;
      if (transposed) M[r * m + c] = x;
      else M[c * m + r] = x;
    }
  }
  const V = new Float64Array(n * n); // column-major too
  for (let j = 0; j < n; j++) V[j * n + j] = 1;
  const tol = options.tol ?? 1e-15;
  const maxSweeps = options.maxSweeps ?? 60;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      const op = p * m;
      for (let q = p + 1; q < n; q++) {
        const oq = q * m;
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < m; i++) {
          const x = M[op + i]!;
          const y = M[oq + i]!;
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = M[op + i]!;
          const y = M[oq + i]!;
          M[op + i] = c * x - s * y;
          M[oq + i] = s * x + c * y;
        }
        const vp = p * n;
        const vq = q * n;
        for (let i = 0; i < n; i++) {
          const x = V[vp + i]!;
          const y = V[vq + i]!;
          V[vp + i] = c * x - s * y;
          V[vq + i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = Array.from({ length: n }, (_, j) => {
    let s = 0;
    for (let i = 0; i < m; i++) s += M[j * m + i]! ** 2;
    return Math.sqrt(s);
  });
  const order = norms.map((_, j) => j).sort((x, y) => norms[y]! - norms[x]!);
  const r = n;
  const s = new Float64Array(r);
  // Left vectors of M (m × r) and right vectors of M (n × r); swap back if A was transposed.
  const left = new Float64Array(m * r);
  const right = new Float64Array(n * r);
  order.forEach((j, k) => {
    const sigma = norms[j]!;
    s[k] = sigma;
    for (let i = 0; i < m; i++) left[i * r + k] = sigma > 0 ? M[j * m + i]! / sigma : 0;
    for (let i = 0; i < n; i++) right[i * r + k] = V[j * n + i]!;
  });
  return transposed ? { u: right, s, v: left, rows, cols, rank: r } : { u: left, s, v: right, rows, cols, rank: r };
}

/** The rank keeping at least `energy` of Σσ² (at least 1). */
export function rankForEnergy(s: Float64Array, energy: number): number {
  if (!(energy > 0 && energy <= 1)) throw new RangeError(`rankForEnergy: energy must be in (0, 1], got ${energy}`);
  let total = 0;
  for (const x of s) total += x * x;
  let acc = 0;
  for (let k = 0; k < s.length; k++) {
    acc += s[k]! ** 2;
    if (acc >= energy * total * (1 - 1e-12)) return k + 1;
  }
  return s.length;
}

/** A [k, in] and B [out, k] (row-major f32) with W ≈ B·A, from the SVD. */
export function lowRankFactors(svdResult: SVDResult, k: number): { a: Float32Array; b: Float32Array } {
  const { u, s, v, rows, cols, rank } = svdResult;
  if (!(Number.isInteger(k) && k >= 1 && k <= rank)) throw new RangeError(`lowRankFactors: rank ${k} must be an integer in [1, ${rank}]`);
  const a = new Float32Array(k * cols);
  const b = new Float32Array(rows * k);
  for (let j = 0; j < k; j++) {
    const root = Math.sqrt(s[j]!);
    for (let c = 0; c < cols; c++) a[j * cols + c] = root * v[c * rank + j]!;
    for (let r = 0; r < rows; r++) b[r * k + j] = u[r * rank + j]! * root;
  }
  return { a, b };
}

/** y = B(A x) + bias: a Linear of rank k, as two Linears ("a": in → k, "b": k → out). */
export class LowRankLinear extends Module {
  readonly a: Linear;
  readonly b: Linear;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly rank: number,
    bias: boolean,
  ) {
    super();
    this.a = this.registerModule('a', new Linear(inFeatures, rank, { bias: false }));
    this.b = this.registerModule('b', new Linear(rank, outFeatures, { bias }));
  }

  forward(x: Tensor): Tensor {
    const h = this.a.forward(x);
    const y = this.b.forward(h);
    if (!h.requiresGrad) h.dispose();
    return y;
  }
}

export interface LowRankOptions extends LinearFilter {
  /** A fixed rank for every layer… */
  rank?: number;
  /** …or the fraction of spectral energy Σσ² to keep per layer. */
  energy?: number;
  onLayer?: (name: string, done: number, total: number) => void;
}

export interface LowRankLayerReport {
  name: string;
  rows: number;
  cols: number;
  rank: number | null;
  /** ‖W − BA‖_F / ‖W‖_F, 0 when left alone. */
  relativeError: number;
  paramsBefore: number;
  paramsAfter: number;
}

/** Replaces each selected Linear (in place) by a LowRankLinear where that saves parameters. */
export function factorizeModel(model: Module, options: LowRankOptions): LowRankLayerReport[] {
  if ((options.rank === undefined) === (options.energy === undefined)) throw new RangeError('factorizeModel: give exactly one of rank or energy');
  const layers = findLinears(model, { include: options.include, exclude: options.exclude ?? /(^|\.)lm_head$/ });
  const reports: LowRankLayerReport[] = [];
  layers.forEach(([name, layer], i) => {
    const rows = layer.outFeatures;
    const cols = layer.inFeatures;
    const w = layer.weight.f32('lowrank');
    const res = svd(w, rows, cols);
    const k = options.rank !== undefined ? Math.min(options.rank, res.rank) : rankForEnergy(res.s, options.energy!);
    const before = rows * cols;
    const after = k * (rows + cols);
    if (after >= before) {
      reports.push({ name, rows, cols, rank: null, relativeError: 0, paramsBefore: before, paramsAfter: before });
    } else {
      const { a, b } = lowRankFactors(res, k);
      const lr = new LowRankLinear(cols, rows, k, layer.bias !== null);
      noGrad(() => {
        lr.a.weight.f32().set(a);
        lr.b.weight.f32().set(b);
        if (layer.bias !== null) lr.b.bias!.f32().set(layer.bias.f32());
      });
      let total = 0;
      let dropped = 0;
      for (let j = 0; j < res.s.length; j++) {
        total += res.s[j]! ** 2;
        if (j >= k) dropped += res.s[j]! ** 2;
      }
      replaceModule(model, name, lr);
      reports.push({ name, rows, cols, rank: k, relativeError: Math.sqrt(dropped / Math.max(total, 1e-300)), paramsBefore: before, paramsAfter: after });
    }
    options.onLayer?.(name, i + 1, layers.length);
  });
  return reports;
}

/** config.json key recording what was compressed and how (read back by loadLowRankLlama). */
export const COMPRESSION_KEY = 'weft_compression';

/** Saves a factorised LLaMA: HF config.json + {weft_compression: {method: 'lowrank', ranks}} and its safetensors. */
export async function saveLowRankLlama(model: Llama, dir: string, ranks: Record<string, number>): Promise<void> {
  await model.savePretrained(dir); // config.json (HF names) + model.safetensors of the current modules
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  config[COMPRESSION_KEY] = { method: 'lowrank', ranks };
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

/** Whether a model directory holds a low-rank factorised model. */
export async function readCompressionInfo(dir: string): Promise<{ method: string; ranks?: Record<string, number> } | null> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const info = config[COMPRESSION_KEY];
  return info !== undefined && info !== null && typeof info === 'object' ? (info as { method: string; ranks?: Record<string, number> }) : null;
}

/** Loads what saveLowRankLlama wrote: the LLaMA with the recorded layers factorised, weights checked by name and shape. */
export async function loadLowRankLlama(dir: string): Promise<Llama> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const info = config[COMPRESSION_KEY] as { method?: string; ranks?: Record<string, number> } | undefined;
  if (info?.method !== 'lowrank' || info.ranks === undefined) throw new Error(`loadLowRankLlama: ${dir}/config.json has no ${COMPRESSION_KEY}.ranks; load it with Llama.fromPretrained`);
  const model = new Llama(llamaConfigFromHF(config));
  for (const [name, rank] of Object.entries(info.ranks)) {
    const layer = model.getModule(name);
    if (!(layer instanceof Linear)) throw new Error(`loadLowRankLlama: ${name} is not a Linear of this LLaMA`);
    replaceModule(model, name, new LowRankLinear(layer.inFeatures, layer.outFeatures, rank, layer.bias !== null));
  }
  const { tensors } = await loadModelWeights(dir);
  model.loadStateDict(tensors);
  return model;
}
