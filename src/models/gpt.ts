/**
 * GPT: nanoGPT's model.py (pre-LN blocks, tied LM head, GPT-2 initialisation) with Hugging Face
 * GPT-2 tensor names and layouts (Conv1D weights stored in×out), so `savePretrained` writes a
 * directory transformers loads and `fromPretrained` reads HF GPT-2 checkpoints.
 *
 * The training forward is the trainer's hot path: the attention core is one recorded op that packs
 * q/k/v into heads with a single strided copy, runs the fused attention kernel on three slices of that
 * buffer, and merges heads with one more copy (and the mirror image in backward), instead of generic
 * slice/permute ops whose backward zero-fills full-size buffers.
 */
import { withoutInit } from '../nn/init.js';
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { noGrad, record } from '../tensor/autograd.js';
import { getBackend } from '../tensor/backend/index.js';
import type { AttentionParams } from '../tensor/backend/backend.js';
import { add, gelu, linear, matmul, mul, crossEntropy, softmax, dropout as dropoutOp } from '../tensor/index.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, ModuleList } from '../nn/module.js';
import { Conv1D, Dropout, Embedding, LayerNorm } from '../nn/layers.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights, saveSafetensors } from '../io/safetensors.js';
import type { KVCache } from '../nn/kv-cache.js';
import { GeluExpert, isMoELayer, mergeStats, type MoEConfig, type MoEConfigInput, type MoEStats, parseMoEConfig, SparseMoE } from '../nn/moe.js';
import { type GPTConfig, type GPTConfigInput, gptConfigFromHF, gptConfigToHF, parseGPTConfig } from './config.js';
import { registerFamily } from './registry.js';

/** Records an intermediate tensor of a forward pass (see GPT.releaseActivations). */
type Track = (t: Tensor) => Tensor;
const untracked: Track = (t) => t;

/** Targets equal to this are ignored by the loss (nanoGPT's `ignore_index=-1`). */
export const IGNORE_INDEX = -1;

export interface GPTOptions {
  /** Source of the initial weights and of dropout masks (default: the process-wide generator). */
  generator?: Generator;
}

export interface GPTOutput {
  /** [B, T, vocabSize]. */
  logits: Tensor;
  /** Mean cross-entropy over targets ≠ IGNORE_INDEX (0-d), or null without targets. */
  loss: Tensor | null;
}

/** x·W + b for an HF Conv1D (W stored [in, out]): one gemm with the bias added in place. */
function conv1d(x: Tensor, layer: Conv1D): Tensor {
  // Through the layer's own forward, so a wrapped layer (LoRA, quantized) takes part.
  return layer.forward(x);
}

/** Strides of a dense [B, T, 3, H, D] qkv read as [3, B, H, T, D]. */
function packedHeadStrides(T: number, H: number, D: number): number[] {
  const C = H * D;
  return [C, T * 3 * C, D, 3 * C, 1];
}

/**
 * softmax(q·kᵀ/√D + causal)·v for qkv [B, T, 3C] (c_attn's output: q | k | v, heads inside each) →
 * y [B, T, C] with heads merged. One recorded op around the fused attention kernel.
 */
export function causalAttentionFromQKV(qkv: Tensor, nHead: number): Tensor {
  const op = 'causalAttention';
  if (qkv.ndim !== 3 || qkv.shape[2]! % (3 * nHead) !== 0) {
    throw new RangeError(`${op}: expected qkv [B, T, 3·C] with C divisible by ${nHead} heads, got ${formatShape(qkv.shape)}`);
  }
  const [B, T, C3] = qkv.shape as [number, number, number];
  const C = C3 / 3;
  const H = nHead;
  const D = C / H;
  const n = B * H * T * D;
  const b = getBackend();
  const src = noGrad(() => qkv.contiguous());
  const heads = Tensor.empty([3, B, H, T, D]);
  const hd = heads.storage.data as Float32Array;
  b.copyStrided({ data: src.f32(op), offset: 0, strides: packedHeadStrides(T, H, D) }, [3, B, H, T, D], hd);
  if (src !== qkv) src.dispose();
  const params: AttentionParams = { batch: B, heads: H, tq: T, tk: T, dim: D, scale: 1 / Math.sqrt(D), causal: true };
  const yHeads = Tensor.empty([B, H, T, D]);
  const yh = yHeads.storage.data as Float32Array;
  const lse = new Float32Array(B * H * T);
  const q = hd.subarray(0, n);
  const k = hd.subarray(n, 2 * n);
  const v = hd.subarray(2 * n, 3 * n);
  b.attention(q, k, v, params, yh, lse);
  // Merge heads: [B, H, T, D] read as [B, T, H, D].
  const y = Tensor.empty([B, T, C]);
  b.copyStrided({ data: yh, offset: 0, strides: [H * T * D, D, T * D, 1] }, [B, T, H, D], y.storage.data as Float32Array);
  const out = record(
    y,
    op,
    [qkv],
    (g) => {
      const gd = g.contiguous();
      const gHeads = Tensor.empty([B, H, T, D]);
      const gh = gHeads.storage.data as Float32Array;
      b.copyStrided({ data: gd.f32(op), offset: 0, strides: [T * C, D, C, 1] }, [B, H, T, D], gh);
      if (gd !== g) gd.dispose();
      const gPacked = Tensor.empty([3, B, H, T, D]);
      const gp = gPacked.storage.data as Float32Array;
      b.attentionBackward(q, k, v, yh, lse, gh, params, gp.subarray(0, n), gp.subarray(n, 2 * n), gp.subarray(2 * n, 3 * n));
      gHeads.dispose();
      // [3, B, H, T, D] read as [B, T, 3, H, D] = [B, T, 3C].
      const gqkv = Tensor.empty([B, T, C3]);
      b.copyStrided({ data: gp, offset: 0, strides: [H * T * D, D, n, T * D, 1] }, [B, T, 3, H, D], gqkv.storage.data as Float32Array);
      gPacked.dispose();
      return [gqkv];
    },
    [heads, yHeads],
  );
  // The graph (when recording) holds its own references; ours go back to the pool when it is freed.
  heads.dispose();
  yHeads.dispose();
  return out;
}

/**
 * The same attention with explicit weights softmax(q·kᵀ/√D + causal mask), then dropout with
 * probability p on them (nanoGPT's attn_dropout): the training path when dropout > 0, since the fused
 * kernel has no dropout. With p = 0 it equals causalAttentionFromQKV.
 */
export function causalAttentionExplicit(qkv: Tensor, nHead: number, p = 0, generator: Generator = defaultGenerator): Tensor {
  const [B, T, C3] = qkv.shape as [number, number, number];
  const C = C3 / 3;
  const D = C / nHead;
  const packed = qkv.reshape([B, T, 3, nHead, D]).permute([2, 0, 3, 1, 4]).contiguous();
  const [q, k, v] = [0, 1, 2].map((i) => packed.select(0, i)) as [Tensor, Tensor, Tensor];
  const scores = mul(matmul(q, k, { transB: true }), 1 / Math.sqrt(D));
  const maskData = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -Infinity;
  const att = dropoutOp(softmax(add(scores, Tensor.fromArray(maskData, [T, T])), -1), p, { training: true, generator });
  return matmul(att, v).transpose(1, 2).reshape([B, T, C]);
}

export class CausalSelfAttention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  readonly resid_dropout: Dropout;

  constructor(
    readonly config: GPTConfig,
    private readonly generator: Generator,
  ) {
    super();
    const { nEmbd: C, bias, nLayer } = config;
    this.c_attn = this.registerModule('c_attn', new Conv1D(C, 3 * C, { bias, generator, std: 0.02 }));
    // GPT-2: residual projections scaled by 1/√(2·n_layer).
    this.c_proj = this.registerModule('c_proj', new Conv1D(C, C, { bias, generator, std: 0.02 / Math.sqrt(2 * nLayer) }));
    this.resid_dropout = this.registerModule('resid_dropout', new Dropout(config.dropout, generator));
  }

  forward(x: Tensor, track: Track = untracked): Tensor {
    const qkv = track(conv1d(x, this.c_attn));
    const y = track(
      this.training && this.config.dropout > 0
        ? causalAttentionExplicit(qkv, this.config.nHead, this.config.dropout, this.generator)
        : causalAttentionFromQKV(qkv, this.config.nHead),
    );
    return this.resid_dropout.forward(track(conv1d(y, this.c_proj)));
  }

  /** Inference step against a KV cache (no autograd): x [B, t, C] at positions cache.length …. */
  forwardCached(x: Tensor, cache: KVCache, layer: number): Tensor {
    const qkv = conv1d(x, this.c_attn);
    const [B, t] = qkv.shape as [number, number, number];
    const H = this.config.nHead;
    const C = this.config.nEmbd;
    const D = C / H;
    const b = getBackend();
    const src = qkv.f32('forwardCached');
    // Packed heads [3, B, H, t, D]; k and v go into the cache at positions [len, len + t).
    const heads = Tensor.empty([3, B, H, t, D]);
    const hd = heads.storage.data as Float32Array;
    b.copyStrided({ data: src, offset: 0, strides: packedHeadStrides(t, H, D) }, [3, B, H, t, D], hd);
    qkv.dispose();
    const n = B * H * t * D;
    cache.write(layer, hd.subarray(n, 2 * n), hd.subarray(2 * n, 3 * n), t);
    const tk = cache.length + t;
    const keys = cache.keyData(layer);
    const values = cache.valueData(layer);
    const maxT = cache.maxLength;
    const yHeads = new Float32Array(n);
    const lse = new Float32Array(t);
    const params: AttentionParams = { batch: 1, heads: 1, tq: t, tk, dim: D, scale: 1 / Math.sqrt(D), causal: true };
    // One kernel call per (batch, head): the cache rows of a head are dense up to tk, the rest is unused.
    for (let bh = 0; bh < B * H; bh++) {
      const kv0 = bh * maxT * D;
      b.attention(
        hd.subarray(bh * t * D, (bh + 1) * t * D),
        keys.subarray(kv0, kv0 + tk * D),
        values.subarray(kv0, kv0 + tk * D),
        params,
        yHeads.subarray(bh * t * D, (bh + 1) * t * D),
        lse,
      );
    }
    heads.dispose();
    const y = Tensor.empty([B, t, C]);
    b.copyStrided({ data: yHeads, offset: 0, strides: [H * t * D, D, t * D, 1] }, [B, t, H, D], y.storage.data as Float32Array);
    const out = conv1d(y, this.c_proj);
    y.dispose();
    return out;
  }
}

export class MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  readonly dropout: Dropout;

  constructor(
    readonly config: GPTConfig,
    generator: Generator,
  ) {
    super();
    const { nEmbd: C, bias, nLayer } = config;
    this.c_fc = this.registerModule('c_fc', new Conv1D(C, 4 * C, { bias, generator, std: 0.02 }));
    this.c_proj = this.registerModule('c_proj', new Conv1D(4 * C, C, { bias, generator, std: 0.02 / Math.sqrt(2 * nLayer) }));
    this.dropout = this.registerModule('dropout', new Dropout(config.dropout, generator));
  }

  forward(x: Tensor, track: Track = untracked): Tensor {
    const pre = track(conv1d(x, this.c_fc));
    const h = track(gelu(pre, { approximate: this.config.activation === 'gelu_new' ? 'tanh' : 'none' }));
    return this.dropout.forward(track(conv1d(h, this.c_proj)));
  }

  /** Inference (no dropout, no graph): intermediates go straight back to the pool. */
  forwardInference(x: Tensor): Tensor {
    const pre = conv1d(x, this.c_fc);
    const h = gelu(pre, { approximate: this.config.activation === 'gelu_new' ? 'tanh' : 'none' });
    pre.dispose();
    const out = conv1d(h, this.c_proj);
    h.dispose();
    return out;
  }
}

/**
 * GPT-MoE's routed FFN: a SparseMoE whose experts are GPT-2 MLPs (c_fc, GELU, c_proj), so block i's
 * tensors are transformer.h.i.mlp.gate.weight and transformer.h.i.mlp.experts.e.c_{fc,proj}.*.
 */
function gptMoEFFN(config: GPTConfig, moe: MoEConfig, generator: Generator): SparseMoE {
  const { nEmbd: C, bias, nLayer } = config;
  return new SparseMoE({
    dim: C,
    nExperts: moe.nExperts,
    topK: moe.topK,
    normalize: moe.normalize,
    capacityFactor: moe.capacityFactor,
    evalCapacityFactor: moe.evalCapacityFactor,
    jitter: moe.jitter,
    noiseStd: moe.noiseStd,
    routerStd: 0.02,
    generator,
    makeExpert: () =>
      new GeluExpert(C, moe.expertHidden ?? 4 * C, {
        bias,
        activation: config.activation,
        std: 0.02,
        projStd: 0.02 / Math.sqrt(2 * nLayer),
        dropout: config.dropout,
        generator,
      }),
  });
}

/** What a routed block reports from its last forward: its auxiliary losses. */
export interface MoEBlockLosses {
  auxLoss: Tensor;
  zLoss: Tensor;
}

export class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln_2: LayerNorm;
  readonly mlp: MLP | SparseMoE;
  /** A routed block's auxiliary losses from its last forward (null for dense blocks). */
  moeLosses: MoEBlockLosses | null = null;
  /** A routed block's statistics summed over training forwards since GPT.takeMoEStats(). */
  moeStats: MoEStats | null = null;

  constructor(config: GPTConfig, generator: Generator, moe: MoEConfig | null = null) {
    super();
    const norm = { eps: config.layerNormEps, bias: config.bias };
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(config.nEmbd, norm));
    this.attn = this.registerModule('attn', new CausalSelfAttention(config, generator));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(config.nEmbd, norm));
    this.mlp = this.registerModule('mlp', moe === null ? new MLP(config, generator) : gptMoEFFN(config, moe, generator));
  }

  forward(x: Tensor, track: Track = untracked): Tensor {
    const x1 = track(add(x, track(this.attn.forward(track(this.ln_1.forward(x)), track))));
    if (this.mlp instanceof SparseMoE) {
      const r = this.mlp.route(this.ln_2.forward(x1));
      this.moeLosses = { auxLoss: r.auxLoss, zLoss: r.zLoss };
      if (this.training) this.moeStats = mergeStats(this.moeStats, r.stats);
      return add(x1, r.output);
    }
    return track(add(x1, track(this.mlp.forward(track(this.ln_2.forward(x1)), track))));
  }

  forwardCached(x: Tensor, cache: KVCache, layer: number): Tensor {
    const h1 = this.ln_1.forward(x);
    const a = this.attn.forwardCached(h1, cache, layer);
    h1.dispose();
    const x1 = add(x, a);
    a.dispose();
    const h2 = this.ln_2.forward(x1);
    const m = this.mlp.forwardInference(h2);
    h2.dispose();
    const out = add(x1, m);
    x1.dispose();
    m.dispose();
    return out;
  }
}

/** The `transformer` submodule (HF's GPT2Model): embeddings, blocks, final norm. */
export class GPTTransformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<Block>;
  readonly ln_f: LayerNorm;

  constructor(config: GPTConfig, generator: Generator, moe: MoEConfig | null = null) {
    super();
    this.wte = this.registerModule('wte', new Embedding(config.vocabSize, config.nEmbd, { generator, std: 0.02 }));
    this.wpe = this.registerModule('wpe', new Embedding(config.blockSize, config.nEmbd, { generator, std: 0.02 }));
    this.drop = this.registerModule('drop', new Dropout(config.dropout, generator));
    const blockMoE = (i: number): MoEConfig | null => (moe !== null && isMoELayer(moe, i) ? moe : null);
    this.h = this.registerModule('h', new ModuleList(Array.from({ length: config.nLayer }, (_, i) => new Block(config, generator, blockMoE(i)))));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(config.nEmbd, { eps: config.layerNormEps, bias: config.bias }));
  }
}

/** config.json's weft_moe (GPT-MoE), or null for a dense GPT-2. */
export function gptMoEConfigFromHF(json: unknown): MoEConfig | null {
  const raw = (json as { weft_moe?: unknown } | null)?.weft_moe;
  return raw === undefined || raw === null ? null : parseMoEConfig(raw, 'config.json weft_moe');
}

/** Names of the bias tensors (present in HF files; absent from a bias=false model). */
function biasNames(config: GPTConfig, moe: MoEConfig | null = null): string[] {
  const names: string[] = [];
  for (let i = 0; i < config.nLayer; i++) {
    const p = `transformer.h.${i}`;
    names.push(`${p}.ln_1.bias`, `${p}.attn.c_attn.bias`, `${p}.attn.c_proj.bias`, `${p}.ln_2.bias`);
    // A routed FFN is Weft's own (no HF GPT-2 counterpart): its biases are simply absent when bias=false.
    if (moe === null || !isMoELayer(moe, i)) names.push(`${p}.mlp.c_fc.bias`, `${p}.mlp.c_proj.bias`);
  }
  names.push('transformer.ln_f.bias');
  return names;
}

function checkIds(ids: Tensor, what: string, vocabSize: number, op: string): void {
  if (ids.dtype !== 'i32' || ids.ndim !== 2) {
    throw new TypeError(`${op}: ${what} must be an i32 tensor [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
  }
  const data = ids.i32(op);
  for (let i = 0; i < data.length; i++) {
    const id = data[i]!;
    const ok = what === 'targets' ? id === IGNORE_INDEX || (id >= 0 && id < vocabSize) : id >= 0 && id < vocabSize;
    if (!ok) throw new RangeError(`${op}: ${what} value ${id} at flat position ${i} is outside the vocabulary [0, ${vocabSize})`);
  }
}

export class GPT extends Module {
  readonly config: GPTConfig;
  readonly transformer: GPTTransformer;
  /** GPT-MoE: routed FFNs in every `moe.every`-th block (null: a dense GPT). */
  readonly moe: MoEConfig | null;

  constructor(config: GPTConfigInput & { moe?: MoEConfigInput | null }, options: GPTOptions = {}) {
    super();
    const { moe, ...dense } = config;
    this.config = parseGPTConfig(dense);
    this.moe = moe === undefined || moe === null ? null : parseMoEConfig(moe, 'GPT moe config');
    const generator = options.generator ?? defaultGenerator;
    this.transformer = this.registerModule('transformer', new GPTTransformer(this.config, generator, this.moe));
  }

  /**
   * Per routed block: load, importance and dropped counts summed over the training forwards since the
   * last call (then reset). Empty for a dense GPT.
   */
  takeMoEStats(): ({ layer: number } & MoEStats)[] {
    const out: ({ layer: number } & MoEStats)[] = [];
    this.transformer.h.items.forEach((block, layer) => {
      if (block.moeStats !== null) out.push({ layer, ...block.moeStats });
      block.moeStats = null;
    });
    return out;
  }

  /** α·Σ load-balancing + β·Σ z-loss over the routed blocks of the last forward (null for a dense GPT). */
  moeAuxiliaryLoss(): Tensor | null {
    if (this.moe === null) return null;
    let total: Tensor | null = null;
    for (const block of this.transformer.h) {
      if (block.moeLosses === null) continue;
      const term = add(mul(block.moeLosses.auxLoss, this.moe.auxLossCoef), mul(block.moeLosses.zLoss, this.moe.zLossCoef));
      total = total === null ? term : add(total, term);
    }
    return total;
  }

  /** Intermediates of the last forward, handed back to the memory pool by the next one. */
  private activations: Tensor[] = [];

  /**
   * Returns the previous forward's intermediate tensors to the pool (Weft's per-step arena), so a
   * training loop reuses the same buffers instead of allocating and garbage-collecting them. Only
   * tensors nothing else holds are released: while a graph that saved them is alive (no backward
   * yet) or a view of them exists, their reference count is above one and they are left to the GC.
   * forward() calls this itself; call it after the last step to free memory early.
   */
  releaseActivations(): void {
    const seen = new Set<Tensor>();
    // Latest first: a later tensor may be a view of an earlier one and must let go first.
    for (let i = this.activations.length - 1; i >= 0; i--) {
      const t = this.activations[i]!;
      if (seen.has(t)) continue;
      seen.add(t);
      if (!t.isDisposed && t.storage.refCount === 1) t.dispose();
    }
    this.activations = [];
  }

  /** Parameters excluding position embeddings (nanoGPT's get_num_params(non_embedding=True)). */
  numNonEmbeddingParameters(): number {
    return this.numParameters() - this.transformer.wpe.weight.numel;
  }

  /**
   * ids [B, T] (i32, T ≤ blockSize) → logits [B, T, V]; with targets [B, T] also the mean
   * cross-entropy (targets = IGNORE_INDEX are skipped).
   */
  forward(ids: Tensor, targets?: Tensor): GPTOutput {
    const op = 'GPT.forward';
    const { blockSize, vocabSize } = this.config;
    checkIds(ids, 'ids', vocabSize, op);
    const [B, T] = ids.shape as [number, number];
    if (T > blockSize) throw new RangeError(`${op}: sequence length ${T} exceeds blockSize ${blockSize}; crop the input`);
    if (targets !== undefined) {
      checkIds(targets, 'targets', vocabSize, op);
      if (targets.shape[0] !== B || targets.shape[1] !== T) {
        throw new RangeError(`${op}: targets ${formatShape(targets.shape)} must match ids ${formatShape(ids.shape)}`);
      }
    }
    this.releaseActivations();
    const track = (t: Tensor): Tensor => {
      this.activations.push(t);
      return t;
    };
    const tr = this.transformer;
    let x = track(tr.drop.forward(track(add(track(tr.wte.forward(ids)), tr.wpe.weight.narrow(0, 0, T)))));
    for (const block of tr.h) x = block.forward(x, track);
    const logits = linear(track(tr.ln_f.forward(x)), tr.wte.weight);
    const ce = targets === undefined ? null : crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX });
    // GPT-MoE trains on CE + its routers' auxiliary losses; evaluation reports CE alone (comparable to a dense GPT).
    const aux = ce !== null && this.training ? this.moeAuxiliaryLoss() : null;
    const loss = ce !== null && aux !== null ? add(ce, aux) : ce;
    return { logits, loss };
  }

  /**
   * Inference with a KV cache: ids [B, t] at positions cache.length … cache.length + t − 1; their keys
   * and values are appended and the cache advances by t. Returns logits [B, t, V], or [B, 1, V] for
   * the last position only with `lastOnly` (what sampling needs; saves the LM head on a long prompt).
   */
  forwardCached(ids: Tensor, cache: KVCache, options: { lastOnly?: boolean } = {}): Tensor {
    const op = 'GPT.forwardCached';
    const { vocabSize, nLayer, nHead, nEmbd } = this.config;
    checkIds(ids, 'ids', vocabSize, op);
    const [B, t] = ids.shape as [number, number];
    if (cache.nLayer !== nLayer || cache.nHead !== nHead || cache.headDim !== nEmbd / nHead || cache.batch !== B) {
      throw new RangeError(
        `${op}: cache shape (layers ${cache.nLayer}, batch ${cache.batch}, heads ${cache.nHead}, headDim ${cache.headDim}) ` +
          `does not fit this model and batch (layers ${nLayer}, batch ${B}, heads ${nHead}, headDim ${nEmbd / nHead})`,
      );
    }
    if (t === 0) throw new RangeError(`${op}: no tokens given`);
    const start = cache.length;
    if (start + t > cache.maxLength || start + t > this.config.blockSize) {
      throw new RangeError(
        `${op}: KV cache full: ${start} cached + ${t} new tokens > ${Math.min(cache.maxLength, this.config.blockSize)} ` +
          `(cache maxLength ${cache.maxLength}, blockSize ${this.config.blockSize}); reset the cache or crop the context`,
      );
    }
    return noGrad(() => {
      const tr = this.transformer;
      const tok = tr.wte.forward(ids);
      let x = add(tok, tr.wpe.weight.narrow(0, start, t));
      tok.dispose();
      tr.h.items.forEach((block, layer) => {
        const next = block.forwardCached(x, cache, layer);
        x.dispose();
        x = next;
      });
      cache.advance(t);
      const last = options.lastOnly === true && t > 1 ? x.narrow(1, t - 1, 1) : x;
      const h = tr.ln_f.forward(last);
      if (last !== x) last.dispose();
      x.dispose();
      const logits = linear(h, tr.wte.weight);
      h.dispose();
      return logits;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Hugging Face directories
  // ---------------------------------------------------------------------------------------------

  /**
   * HF-named tensors as saved: every parameter, plus zero biases when bias=false (transformers'
   * GPT-2 always has biases; config.json's weft_bias=false says to drop them again on load).
   */
  hfStateDict(): Map<string, Tensor> {
    const sd = new Map(this.stateDict());
    if (!this.config.bias) {
      const C = this.config.nEmbd;
      for (const name of biasNames(this.config, this.moe)) {
        const width = name.endsWith('c_attn.bias') ? 3 * C : name.endsWith('c_fc.bias') ? 4 * C : C;
        sd.set(name, Tensor.zeros([width]));
      }
    }
    return new Map([...sd.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Writes config.json, generation_config.json and model.safetensors (HF GPT-2 layout), each atomically. */
  async savePretrained(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await saveSafetensors(join(dir, 'model.safetensors'), this.hfStateDict(), { format: 'pt' });
    // GPT-MoE is Weft's own: config.json says so (weft_moe, architectures) so nothing loads it as a dense GPT-2.
    const hf = this.moe === null ? gptConfigToHF(this.config) : { ...gptConfigToHF(this.config), architectures: ['WeftGPTMoEForCausalLM'], weft_moe: this.moe };
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(hf, null, 2) + '\n');
    await writeFileAtomic(join(dir, 'generation_config.json'), JSON.stringify({ _from_model_config: true }, null, 2) + '\n');
  }

  /**
   * Loads a directory with config.json + model.safetensors (one Weft saved, or an HF GPT-2
   * checkpoint). Names and shapes are checked; errors list what is missing, unexpected or misshapen.
   */
  static async fromPretrained(dir: string, options: GPTOptions = {}): Promise<GPT> {
    let configText: string;
    try {
      configText = await readFile(join(dir, 'config.json'), 'utf8');
    } catch (e) {
      throw new Error(`GPT.fromPretrained: cannot read ${join(dir, 'config.json')}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(configText);
    } catch (e) {
      throw new Error(`GPT.fromPretrained: ${join(dir, 'config.json')} is not valid JSON: ${(e as Error).message}`);
    }
    const config = { ...gptConfigFromHF(json), moe: gptMoEConfigFromHF(json) };
    const { tensors } = await loadModelWeights(dir);
    // Every parameter comes from the checkpoint: skip drawing initial weights.
    const model = withoutInit(() => new GPT(config, options));
    model.loadHFTensors(tensors, join(dir, 'model.safetensors'));
    return model;
  }

  /** Copies HF-named tensors in after checking them all (nothing is written unless everything fits). */
  loadHFTensors(input: Map<string, Tensor>, source = 'state dict'): void {
    const op = 'GPT.fromPretrained';
    // GPT2Model checkpoints (no LM head) name tensors without the `transformer.` prefix.
    const prefixed = [...input.keys()].some((k) => k.startsWith('transformer.'));
    const tensors = new Map<string, Tensor>();
    for (const [k, t] of input) tensors.set(prefixed || k === 'lm_head.weight' ? k : `transformer.${k}`, t);

    const own = this.stateDict();
    const biases = new Set(this.config.bias ? [] : biasNames(this.config, this.moe));
    const problems: string[] = [];
    const missing = [...own.keys()].filter((k) => !tensors.has(k));
    if (missing.length > 0) problems.push(`missing tensors: ${missing.join(', ')}`);
    const unexpected: string[] = [];
    for (const name of tensors.keys()) {
      // Old transformers versions saved the causal-mask buffers; they carry no weights.
      if (/^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/.test(name)) continue;
      if (name === 'lm_head.weight' || biases.has(name)) continue;
      if (!own.has(name)) unexpected.push(name);
    }
    if (unexpected.length > 0) problems.push(`unexpected tensors: ${unexpected.join(', ')}`);
    for (const [name, target] of own) {
      const t = tensors.get(name);
      if (t !== undefined && (t.ndim !== target.ndim || t.shape.some((d, i) => d !== target.shape[i]))) {
        problems.push(`${name} has shape ${formatShape(t.shape)}, expected ${formatShape(target.shape)}`);
      }
    }
    for (const name of biases) {
      const t = tensors.get(name);
      if (t !== undefined && t.toArray().some((v) => v !== 0)) {
        problems.push(`${name} is nonzero but config.json says weft_bias=false (the model has no biases)`);
      }
    }
    const head = tensors.get('lm_head.weight');
    const wte = tensors.get('transformer.wte.weight');
    if (head !== undefined && wte !== undefined) {
      const [h, w] = [head.toArray(), wte.toArray()];
      if (h.length !== w.length || h.some((v, i) => v !== w[i])) {
        problems.push('lm_head.weight differs from transformer.wte.weight, but this GPT ties them');
      }
    }
    if (problems.length > 0) throw new Error(`${op}: ${source} does not fit the config: ${problems.join('; ')}`);
    this.loadStateDict(new Map([...own.keys()].map((k) => [k, tensors.get(k)!])));
  }
}

registerFamily({ modelTypes: ['gpt2'], fromPretrained: (dir) => GPT.fromPretrained(dir) });
