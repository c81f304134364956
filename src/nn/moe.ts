/**
 * Mixture of Experts: a routed sparse feed-forward layer (Shazeer et al. 2017; GShard; Switch
 * Transformer; ST-MoE; Mixtral; Megablocks' dropless routing).
 *
 *   logits = x·Wgᵀ (bias-free router)          probs = softmax(logits)
 *   (w, e) = top-k(probs)                      w ← w / Σw over the k chosen (Mixtral), or not (Switch)
 *   y[t]   = Σ_{chosen, kept} w · expert_e(x[t])
 *
 * Dispatch groups tokens by expert with one gather (sort by expert, stable in token order), runs one
 * GEMM-backed expert forward per expert over its rows only, weights the rows and scatter-adds them
 * back in token order. Only the router's [N, E] product and the top-k depend on the number of
 * experts; everything else touches N·k rows, so the cost per token scales with k, not with E.
 *
 * Capacity (Switch): each expert takes at most ceil(capacityFactor · N·k / E) assignments; first
 * choices of all tokens are served before second choices (GShard's priority), then token order.
 * Assignments over capacity are dropped: they contribute zero here, so the token passes through the
 * block's residual connection unchanged. capacityFactor null is dropless (every assignment kept).
 *
 * Auxiliary losses (returned unscaled; models apply their coefficients):
 *   load balancing (Switch eq. 4, in HF Mixtral's top-k form): E · Σ_e f_e · P_e, with f_e the
 *     fraction of tokens whose top-k contains e (before dropping; Σ f = k) and P_e the mean router
 *     probability of e. Its minimum, at perfect balance, is k.
 *   router z-loss (ST-MoE eq. 5): mean over tokens of (log Σ_e exp logits)².
 */
import { z } from 'zod';
import { noGrad, record } from '../tensor/autograd.js';
import { getBackend } from '../tensor/backend/index.js';
import {
  add,
  concat,
  div,
  gelu,
  indexSelect,
  linear,
  logsumexp,
  mean,
  mul,
  silu,
  softmax,
  square,
  sum,
  topk,
} from '../tensor/index.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { normal_ } from './init.js';
import { Conv1D, Dropout, Linear } from './layers.js';
import { Module, ModuleList } from './module.js';

// -----------------------------------------------------------------------------------------------
// Experts
// -----------------------------------------------------------------------------------------------

/** An expert maps rows [n, C] to rows [n, C]; n may differ from call to call. */
export interface Expert extends Module {
  forward(x: Tensor): Tensor;
}

export interface GeluExpertOptions {
  bias?: boolean;
  /** 'gelu': erf form; 'gelu_new': tanh approximation (GPT-2). */
  activation?: 'gelu' | 'gelu_new';
  /** Std of c_fc's normal init (default 0.02) and of c_proj's (default the same). */
  std?: number;
  projStd?: number;
  dropout?: number;
  generator?: Generator;
}

/** GELU MLP expert in GPT-2's layout: c_fc [C, F] then c_proj [F, C] (HF Conv1D, weights in×out). */
export class GeluExpert extends Module implements Expert {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  readonly dropout: Dropout;
  readonly approximate: 'tanh' | 'none';

  constructor(dim: number, hidden: number, options: GeluExpertOptions = {}) {
    super();
    const generator = options.generator ?? defaultGenerator;
    const bias = options.bias ?? true;
    const std = options.std ?? 0.02;
    this.c_fc = this.registerModule('c_fc', new Conv1D(dim, hidden, { bias, generator, std }));
    this.c_proj = this.registerModule('c_proj', new Conv1D(hidden, dim, { bias, generator, std: options.projStd ?? std }));
    this.dropout = this.registerModule('dropout', new Dropout(options.dropout ?? 0, generator));
    this.approximate = options.activation === 'gelu_new' ? 'tanh' : 'none';
  }

  forward(x: Tensor): Tensor {
    // W.mT is a free view: linear reads it back as the stored [in, out] matrix (no copy).
    const h = gelu(linear(x, this.c_fc.weight.mT, this.c_fc.bias ?? undefined), { approximate: this.approximate });
    return this.dropout.forward(linear(h, this.c_proj.weight.mT, this.c_proj.bias ?? undefined));
  }
}

/** SwiGLU expert with Mixtral's names: w2(silu(w1·x) · w3·x), bias-free Linear layers. */
export class SwiGLUExpert extends Module implements Expert {
  readonly w1: Linear;
  readonly w2: Linear;
  readonly w3: Linear;

  constructor(dim: number, hidden: number, options: { std?: number; generator?: Generator } = {}) {
    super();
    const g = options.generator ?? defaultGenerator;
    const make = (i: number, o: number): Linear => {
      const l = new Linear(i, o, { bias: false, generator: g });
      if (options.std !== undefined) noGrad(() => normal_(l.weight, 0, options.std, g));
      return l;
    };
    this.w1 = this.registerModule('w1', make(dim, hidden));
    this.w2 = this.registerModule('w2', make(hidden, dim));
    this.w3 = this.registerModule('w3', make(dim, hidden));
  }

  forward(x: Tensor): Tensor {
    return this.w2.forward(mul(silu(this.w1.forward(x)), this.w3.forward(x)));
  }
}

// -----------------------------------------------------------------------------------------------
// Routing
// -----------------------------------------------------------------------------------------------

export interface RouterOptions {
  nExperts: number;
  topK: number;
  /** Renormalise the k chosen probabilities to sum to 1 (Mixtral: true; Switch: false). */
  normalize: boolean;
  /**
   * Capacity factor in training (null: dropless). Capacity per expert is
   * ceil(capacityFactor · tokens · k / nExperts).
   */
  capacityFactor: number | null;
  /** Capacity factor in eval mode (default null: dropless inference). */
  evalCapacityFactor?: number | null;
  /** Switch's jitter: multiply the router's input by U(1 − ε, 1 + ε) in training (0: off). */
  jitter?: number;
  /** Noisy top-k: add N(0, σ²) to the router logits in training (0: off). */
  noiseStd?: number;
}

/** One routing decision: which token rows go to which expert, in dispatch order. */
export interface Dispatch {
  /** Token row of each kept assignment, grouped by expert (stable in token order): [M]. */
  tokens: Int32Array;
  /** Its flat (token·k + slot) position in the [N, k] top-k arrays: [M]. */
  slots: Int32Array;
  /** Start of each expert's group in `tokens`: [E + 1]. */
  offsets: Int32Array;
  /** Assignments routed to each expert before capacity: [E]. */
  load: Int32Array;
  /** Assignments each expert dropped for lack of capacity: [E]. */
  dropped: Int32Array;
  /** Per-expert capacity (Infinity when dropless). */
  capacity: number;
}

/** Capacity per expert for `tokens` tokens (Infinity when the factor is null). */
export function expertCapacity(tokens: number, topK: number, nExperts: number, factor: number | null): number {
  if (factor === null) return Infinity;
  return Math.max(1, Math.ceil((factor * tokens * topK) / nExperts));
}

/**
 * Groups the top-k choices [N, k] by expert. Capacity is filled slot by slot (every token's first
 * choice before any second choice), in token order within a slot, as GShard and Switch do.
 */
export function dispatchPlan(choices: Int32Array, nTokens: number, topK: number, nExperts: number, capacity: number): Dispatch {
  const load = new Int32Array(nExperts);
  const keptCount = new Int32Array(nExperts);
  const kept = new Uint8Array(nTokens * topK);
  for (let s = 0; s < topK; s++) {
    for (let t = 0; t < nTokens; t++) {
      const e = choices[t * topK + s]!;
      load[e]!++;
      if (keptCount[e]! < capacity) {
        keptCount[e]!++;
        kept[t * topK + s] = 1;
      }
    }
  }
  const offsets = new Int32Array(nExperts + 1);
  for (let e = 0; e < nExperts; e++) offsets[e + 1] = offsets[e]! + keptCount[e]!;
  const m = offsets[nExperts]!;
  const tokens = new Int32Array(m);
  const slots = new Int32Array(m);
  const cursor = offsets.slice(0, nExperts);
  for (let t = 0; t < nTokens; t++) {
    for (let s = 0; s < topK; s++) {
      const p = t * topK + s;
      if (kept[p] === 0) continue;
      const e = choices[p]!;
      const at = cursor[e]!++;
      tokens[at] = t;
      slots[at] = p;
    }
  }
  const dropped = new Int32Array(nExperts);
  for (let e = 0; e < nExperts; e++) dropped[e] = load[e]! - keptCount[e]!;
  return { tokens, slots, offsets, load, dropped, capacity };
}

/**
 * out [n, C] with out[idx[m]] += src[m] for src [M, C] (rows scatter-added in one kernel);
 * the backward gathers the output gradient's rows back.
 */
function scatterRows(src: Tensor, idx: Int32Array, n: number): Tensor {
  const op = 'moe.combine';
  const [m, c] = src.shape as [number, number];
  if (idx.length !== m) throw new RangeError(`${op}: ${idx.length} row indices for ${m} rows`);
  const b = getBackend();
  const out = Tensor.zeros([n, c]);
  const dense = noGrad(() => src.contiguous());
  b.scatterAddRows(dense.f32(op), idx, c, out.storage.data as Float32Array, n);
  if (dense !== src) dense.dispose();
  return record(out, op, [src], (g) => {
    const gd = g.contiguous();
    const gs = Tensor.empty([m, c]);
    b.gatherRows(gd.f32(op), n, c, idx, gs.storage.data as Float32Array);
    if (gd !== g) gd.dispose();
    return [gs];
  });
}

/** How an expert's weight matrix is stored: PyTorch Linear [out, in], or HF Conv1D [in, out]. */
export type WeightLayout = 'outIn' | 'inOut';

/**
 * Grouped GEMM (Megablocks' idea, on the CPU): x [M, K] holds the rows of E groups back to back
 * (group e is rows offsets[e] … offsets[e+1]); group e is multiplied by its own weights[e] (plus
 * biases[e]) → [M, N]. One recorded op for all experts, so the backward writes the input gradient
 * once ([M, K]) and each expert's weight gradient from its own rows only: no per-expert full-size
 * buffers, and the work is Σ_e rows_e · K · N = M · K · N whatever E is.
 */
export function groupedLinear(x: Tensor, offsets: Int32Array, weights: readonly Tensor[], biases: readonly (Tensor | null)[], layout: WeightLayout): Tensor {
  const op = 'moe.groupedLinear';
  const E = weights.length;
  const [M, K] = x.shape as [number, number];
  if (x.ndim !== 2 || offsets.length !== E + 1 || offsets[E] !== M) {
    throw new RangeError(`${op}: x ${formatShape(x.shape)} and offsets (${offsets.length} entries ending at ${offsets[E]}) do not describe ${E} groups of rows`);
  }
  const N = layout === 'outIn' ? weights[0]!.shape[0]! : weights[0]!.shape[1]!;
  for (const [e, w] of weights.entries()) {
    const want = layout === 'outIn' ? [N, K] : [K, N];
    if (w.shape[0] !== want[0] || w.shape[1] !== want[1]) throw new RangeError(`${op}: weight ${e} is ${formatShape(w.shape)}, expected ${formatShape(want)}`);
  }
  const b = getBackend();
  const gemm = (a: Float32Array, bm: Float32Array, c: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean, beta: number): void => {
    b.gemm(a, bm, c, {
      batch: 1, m, n, k, transA, transB,
      lda: transA ? m : k, ldb: transB ? k : n, ldc: n,
      strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta,
    });
  };
  const xd = noGrad(() => x.contiguous());
  const xs = xd.f32(op);
  const out = Tensor.empty([M, N]);
  const od = out.storage.data as Float32Array;
  for (let e = 0; e < E; e++) {
    const r0 = offsets[e]!;
    const n = offsets[e + 1]! - r0;
    if (n === 0) continue;
    const rows = od.subarray(r0 * N, (r0 + n) * N);
    const bias = biases[e];
    // With a bias, each row starts as the bias and the product accumulates onto it (beta = 1).
    if (bias != null) {
      const bd = bias.f32(op);
      for (let r = 0; r < n; r++) rows.set(bd, r * N);
    }
    gemm(xs.subarray(r0 * K, (r0 + n) * K), weights[e]!.f32(op), rows, n, N, K, false, layout === 'outIn', bias != null ? 1 : 0);
  }
  const present = biases.filter((t): t is Tensor => t !== null);
  return record(
    out,
    op,
    [x, ...weights, ...present],
    (g) => {
      const gd = g.contiguous();
      const gs = gd.f32(op);
      const gx = x.requiresGrad ? Tensor.empty([M, K]) : null;
      const gxd = gx === null ? null : (gx.storage.data as Float32Array);
      const gW: (Tensor | null)[] = [];
      const gB: (Tensor | null)[] = [];
      // Bias gradients are column sums: 1ᵀ·dY_e as a one-row GEMM.
      const ones = present.length > 0 ? new Float32Array(M).fill(1) : null;
      for (let e = 0; e < E; e++) {
        const r0 = offsets[e]!;
        const n = offsets[e + 1]! - r0;
        const ge = gs.subarray(r0 * N, (r0 + n) * N);
        const xe = xs.subarray(r0 * K, (r0 + n) * K);
        const w = weights[e]!;
        if (gxd !== null) {
          // dX_e = dY_e · W_e (Linear [N, K]) or dY_e · W_eᵀ (Conv1D [K, N]); an empty group writes nothing.
          if (n > 0) gemm(ge, w.f32(op), gxd.subarray(r0 * K, (r0 + n) * K), n, K, N, false, layout === 'inOut', 0);
        }
        if (w.requiresGrad && n > 0) {
          const gw = Tensor.empty(w.shape);
          const gwd = gw.storage.data as Float32Array;
          // Linear: dW [N, K] = dY_eᵀ · X_e;  Conv1D: dW [K, N] = X_eᵀ · dY_e.
          if (layout === 'outIn') gemm(ge, xe, gwd, N, K, n, true, false, 0);
          else gemm(xe, ge, gwd, K, N, n, true, false, 0);
          gW.push(gw);
        } else {
          gW.push(null);
        }
        const bias = biases[e];
        if (bias != null) {
          if (bias.requiresGrad && n > 0) {
            const gb = Tensor.empty([N]);
            gemm(ones!.subarray(0, n), ge, gb.storage.data as Float32Array, 1, N, n, false, false, 0);
            gB.push(gb);
          } else {
            gB.push(null);
          }
        }
      }
      if (gd !== g) gd.dispose();
      return [gx, ...gW, ...gB];
    },
    xd === x ? [] : [xd],
  );
}

/** Per-expert counters of one forward (no gradients). */
export interface MoEStats {
  tokens: number;
  /** Assignments routed to each expert (before capacity). */
  load: number[];
  /** Σ of the combine weights each expert received (Shazeer's importance), before capacity. */
  importance: number[];
  /** Assignments dropped for lack of capacity. */
  dropped: number[];
  /** Capacity per expert (null when dropless). */
  capacity: number | null;
}

export interface MoEOutput {
  /** [..., C], the input's shape. */
  output: Tensor;
  /** Router logits [N, E] (HF's router_logits, before noise). */
  routerLogits: Tensor;
  /** E · Σ_e f_e · P_e (0-d, differentiable through P). */
  auxLoss: Tensor;
  /** mean_t (logsumexp_e logits)² (0-d). */
  zLoss: Tensor;
  stats: MoEStats;
}

export interface SparseMoEOptions extends RouterOptions {
  dim: number;
  /** Builds expert i. */
  makeExpert: (i: number) => Expert;
  /** Std of the router's normal init (default: PyTorch's Linear init U(±1/√dim)). */
  routerStd?: number;
  generator?: Generator;
}

/** The routed layer: `gate` (bias-free Linear dim → E) and `experts.0 … experts.E−1`. */
export class SparseMoE extends Module {
  readonly gate: Linear;
  readonly experts: ModuleList<Expert>;
  readonly nExperts: number;
  readonly topK: number;
  readonly normalize: boolean;
  capacityFactor: number | null;
  evalCapacityFactor: number | null;
  jitter: number;
  noiseStd: number;
  private readonly generator: Generator;

  constructor(options: SparseMoEOptions) {
    super();
    const { dim, nExperts, topK } = options;
    if (!Number.isInteger(nExperts) || nExperts < 1) throw new RangeError(`SparseMoE: nExperts must be a positive integer, got ${nExperts}`);
    if (!Number.isInteger(topK) || topK < 1 || topK > nExperts) {
      throw new RangeError(`SparseMoE: topK must be an integer in [1, nExperts = ${nExperts}], got ${topK}`);
    }
    for (const [what, f] of [['capacityFactor', options.capacityFactor], ['evalCapacityFactor', options.evalCapacityFactor ?? null]] as const) {
      if (f !== null && !(f > 0)) throw new RangeError(`SparseMoE: ${what} must be > 0 or null (dropless), got ${f}`);
    }
    const jitter = options.jitter ?? 0;
    const noiseStd = options.noiseStd ?? 0;
    if (!(jitter >= 0 && jitter < 1)) throw new RangeError(`SparseMoE: jitter must be in [0, 1), got ${jitter}`);
    if (!(noiseStd >= 0)) throw new RangeError(`SparseMoE: noiseStd must be ≥ 0, got ${noiseStd}`);
    this.generator = options.generator ?? defaultGenerator;
    this.gate = this.registerModule('gate', new Linear(dim, nExperts, { bias: false, generator: this.generator }));
    if (options.routerStd !== undefined) noGrad(() => normal_(this.gate.weight, 0, options.routerStd, this.generator));
    this.experts = this.registerModule('experts', new ModuleList(Array.from({ length: nExperts }, (_, i) => options.makeExpert(i))));
    this.nExperts = nExperts;
    this.topK = topK;
    this.normalize = options.normalize;
    this.capacityFactor = options.capacityFactor;
    this.evalCapacityFactor = options.evalCapacityFactor ?? null;
    this.jitter = jitter;
    this.noiseStd = noiseStd;
  }

  /** The output only (a drop-in FFN); see route() for losses and statistics. */
  forward(x: Tensor): Tensor {
    return this.route(x).output;
  }

  /** Inference (no graph): the output only; routing scratch goes straight back to the pool. */
  forwardInference(x: Tensor): Tensor {
    return noGrad(() => {
      const r = this.route(x);
      for (const t of [r.routerLogits, r.auxLoss, r.zLoss]) t.dispose();
      return r.output;
    });
  }

  /** x [..., C] → output of the same shape, router logits, auxiliary losses and statistics. */
  route(x: Tensor): MoEOutput {
    const op = 'SparseMoE';
    const C = x.shape[x.ndim - 1]!;
    if (x.ndim < 1 || C !== this.gate.inFeatures) {
      throw new RangeError(`${op}: expected input [..., ${this.gate.inFeatures}], got ${formatShape(x.shape)}`);
    }
    const N = x.numel / C;
    const E = this.nExperts;
    const k = this.topK;
    const rows = x.reshape([N, C]);

    // Router. Jitter and noise change only the routing decision and weights, never the experts' input.
    const routerIn = this.training && this.jitter > 0 ? mul(rows, this.uniformNoise([N, C], this.jitter)) : rows;
    const routerLogits = this.gate.forward(routerIn);
    const noisy = this.training && this.noiseStd > 0 ? add(routerLogits, this.normalNoise([N, E], this.noiseStd)) : routerLogits;
    const probs = softmax(noisy, -1);
    const top = topk(probs, k);
    const weights = this.normalize ? div(top.values, sum(top.values, -1, true)) : top.values;
    const choices = top.indices.i32(op);

    const factor = this.training ? this.capacityFactor : this.evalCapacityFactor;
    const plan = dispatchPlan(choices, N, k, E, expertCapacity(N, k, E, factor));
    const stats = this.statistics(plan, weights, choices, N, factor === null);

    const M = plan.tokens.length;
    const tokenIdx = Tensor.fromArray(plan.tokens, [M], 'i32');
    const slotIdx = Tensor.fromArray(plan.slots, [M], 'i32');
    // Gather once into expert order, then the experts over their own rows only.
    const grouped = indexSelect(rows, 0, tokenIdx);
    const expertOut = this.runExperts(grouped, plan.offsets);
    const gateOfRow = indexSelect(weights.reshape([N * k]), 0, slotIdx).reshape([M, 1]);
    const combined = scatterRows(mul(expertOut, gateOfRow), plan.tokens, N);
    const output = combined.reshape(x.shape);

    // Switch load balancing in HF's top-k form: f from the (pre-capacity) choices, P differentiable.
    const fraction = Tensor.fromArray(Float32Array.from(plan.load, (c) => c / N), [E]);
    const auxLoss = mul(sum(mul(mean(probs, 0), fraction)), E);
    const zLoss = mean(square(logsumexp(routerLogits, -1)));
    return { output, routerLogits, auxLoss, zLoss, stats };
  }

  /**
   * Expert outputs for rows grouped by expert. GELU and SwiGLU experts run as grouped GEMMs (one op
   * per projection for all experts); other Expert modules run one by one on row slices (correct, but
   * each slice's backward pays a full-size gradient buffer).
   */
  private runExperts(grouped: Tensor, offsets: Int32Array): Tensor {
    const experts = this.experts.items;
    if (experts.every((e) => e instanceof GeluExpert)) {
      const ex = experts as GeluExpert[];
      const fc = groupedLinear(grouped, offsets, ex.map((e) => e.c_fc.weight), ex.map((e) => e.c_fc.bias), 'inOut');
      const h = gelu(fc, { approximate: ex[0]!.approximate });
      return ex[0]!.dropout.forward(groupedLinear(h, offsets, ex.map((e) => e.c_proj.weight), ex.map((e) => e.c_proj.bias), 'inOut'));
    }
    if (experts.every((e) => e instanceof SwiGLUExpert)) {
      const ex = experts as SwiGLUExpert[];
      const none = ex.map(() => null);
      const gate = groupedLinear(grouped, offsets, ex.map((e) => e.w1.weight), none, 'outIn');
      const up = groupedLinear(grouped, offsets, ex.map((e) => e.w3.weight), none, 'outIn');
      return groupedLinear(mul(silu(gate), up), offsets, ex.map((e) => e.w2.weight), none, 'outIn');
    }
    const outs: Tensor[] = [];
    for (let e = 0; e < experts.length; e++) {
      const start = offsets[e]!;
      const n = offsets[e + 1]! - start;
      if (n > 0) outs.push(experts[e]!.forward(grouped.narrow(0, start, n)));
    }
    return outs.length === 1 ? outs[0]! : concat(outs, 0);
  }

  private statistics(plan: Dispatch, weights: Tensor, choices: Int32Array, N: number, dropless: boolean): MoEStats {
    const w = noGrad(() => weights.contiguous());
    const wd = w.f32('SparseMoE');
    const importance = new Array<number>(this.nExperts).fill(0);
    for (let p = 0; p < N * this.topK; p++) importance[choices[p]!]! += wd[p]!;
    if (w !== weights) w.dispose();
    return {
      tokens: N,
      load: Array.from(plan.load),
      importance,
      dropped: Array.from(plan.dropped),
      capacity: dropless ? null : plan.capacity,
    };
  }

  private uniformNoise(shape: number[], eps: number): Tensor {
    const t = Tensor.empty(shape);
    const d = t.storage.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = 1 - eps + 2 * eps * this.generator.uniform();
    return t;
  }

  private normalNoise(shape: number[], std: number): Tensor {
    const t = Tensor.empty(shape);
    const d = t.storage.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = std * this.generator.normal();
    return t;
  }
}

// -----------------------------------------------------------------------------------------------
// Configuration of a model's routed FFN layers
// -----------------------------------------------------------------------------------------------

const positiveInt = z.number().int().positive();

/** How a model uses MoE FFNs (GPT-MoE's `moe` config, saved as config.json's `weft_moe`). */
export const MoEConfigSchema = z
  .object({
    nExperts: positiveInt,
    topK: positiveInt.default(2),
    /** A routed FFN in every `every`-th block (blocks every−1, 2·every−1, …; 2 = every other, as Switch/GShard). */
    every: positiveInt.default(2),
    /** Hidden width of each expert (default: the dense FFN's 4·C). */
    expertHidden: positiveInt.optional(),
    /** Training capacity factor; null = dropless (Megablocks). */
    capacityFactor: z.number().positive().nullable().default(1.25),
    /** Capacity factor in eval mode; null (default) = dropless inference. */
    evalCapacityFactor: z.number().positive().nullable().default(null),
    /** Renormalise the k chosen probabilities (Mixtral, GShard top-2); false = Switch. */
    normalize: z.boolean().default(true),
    /** Coefficient α of the load-balancing loss (Switch: 0.01). */
    auxLossCoef: z.number().min(0).default(0.01),
    /** Coefficient of the router z-loss (ST-MoE: 0.001). */
    zLossCoef: z.number().min(0).default(0.001),
    jitter: z.number().min(0).lt(1).default(0),
    noiseStd: z.number().min(0).default(0),
  })
  .strict();

export type MoEConfig = z.output<typeof MoEConfigSchema>;
export type MoEConfigInput = z.input<typeof MoEConfigSchema>;

/** Validates a MoE config; the error names each bad field. */
export function parseMoEConfig(input: unknown, what = 'MoE config'): MoEConfig {
  const r = MoEConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ');
    throw new RangeError(`${what} is invalid: ${issues}`);
  }
  if (r.data.topK > r.data.nExperts) throw new RangeError(`${what} is invalid: topK ${r.data.topK} exceeds nExperts ${r.data.nExperts}`);
  return r.data;
}

/** Whether block `layer` (0-based) of a model with this config has a routed FFN. */
export function isMoELayer(config: MoEConfig, layer: number): boolean {
  return (layer + 1) % config.every === 0;
}

// -----------------------------------------------------------------------------------------------
// Losses and statistics over several layers
// -----------------------------------------------------------------------------------------------

/**
 * Hugging Face's `load_balancing_loss_func` over several layers' router logits [N, E] (concatenated
 * along tokens, as MixtralForCausalLM computes it): E · Σ_e f_e · P_e over all layers' tokens at once.
 */
export function loadBalancingLoss(routerLogits: readonly Tensor[], nExperts: number, topK: number): Tensor {
  if (routerLogits.length === 0) throw new RangeError('loadBalancingLoss: no router logits given');
  const all = routerLogits.length === 1 ? routerLogits[0]! : concat([...routerLogits], 0);
  const probs = softmax(all, -1);
  const N = all.shape[0]!;
  const idx = noGrad(() => topk(probs, topK).indices);
  const counts = new Float32Array(nExperts);
  for (const e of idx.i32('loadBalancingLoss')) counts[e]! += 1 / N;
  idx.dispose();
  return mul(sum(mul(mean(probs, 0), Tensor.fromArray(counts, [nExperts]))), nExperts);
}

/** Coefficient of variation (std / mean, population std) of per-expert counts; 0 when all are 0. */
export function coefficientOfVariation(values: readonly number[]): number {
  const n = values.length;
  const m = values.reduce((a, b) => a + b, 0) / n;
  if (m === 0) return 0;
  const v = values.reduce((a, b) => a + (b - m) * (b - m), 0) / n;
  return Math.sqrt(v) / m;
}

/** Sums statistics of several forwards of one layer (gradient accumulation, logging windows). */
export function mergeStats(a: MoEStats | null, b: MoEStats): MoEStats {
  if (a === null) return { ...b, load: [...b.load], importance: [...b.importance], dropped: [...b.dropped] };
  return {
    tokens: a.tokens + b.tokens,
    load: a.load.map((v, i) => v + b.load[i]!),
    importance: a.importance.map((v, i) => v + b.importance[i]!),
    dropped: a.dropped.map((v, i) => v + b.dropped[i]!),
    capacity: b.capacity,
  };
}
