/**
 * The original Transformer (Vaswani et al. 2017, "Attention Is All You Need"), read top to bottom
 * like the paper: an encoder–decoder with
 *   - embeddings scaled by √d_model plus sinusoidal positional encodings (§3.4, §3.5),
 *   - multi-head scaled dot-product attention (§3.2), masked in the decoder's self-attention so a
 *     position sees only earlier ones, and encoder–decoder (cross) attention over the encoder output,
 *   - position-wise ReLU feed-forward networks (§3.3),
 *   - post-LN residual sublayers: LayerNorm(x + Dropout(Sublayer(x))) (§3.1, §5.4),
 *   - optionally one weight matrix shared by both embeddings and the pre-softmax projection (§3.4).
 * Decoding: greedy and beam search (§6.1: beam 4, length penalty α = 0.6), both over an incremental
 * decoder cache (self-attention keys/values appended per step, cross-attention keys/values computed
 * once from the encoder output) that computes exactly what a full recomputation does.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../tensor/autograd.js';
import { add, concat, crossEntropy, indexSelect, linear, logSoftmax, mul, relu, scaledDotProductAttention } from '../tensor/index.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, ModuleList } from '../nn/module.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { registerFamily } from './registry.js';
import { describeZodIssues } from '../io/zod-issues.js';

const positiveInt = z.number().int().positive();

export const TransformerConfigSchema = z
  .object({
    srcVocabSize: positiveInt,
    tgtVocabSize: positiveInt,
    dModel: positiveInt,
    nHead: positiveInt,
    nEncoderLayers: positiveInt,
    nDecoderLayers: positiveInt,
    /** Inner width of the feed-forward networks (the paper's d_ff = 4·d_model). */
    dFF: positiveInt,
    /** Longest source or target sequence (the positional-encoding table's length). */
    maxLength: positiveInt,
    /** P_drop on every sublayer output and on the embedding sums (paper: 0.1). */
    dropout: z.number().min(0).lt(1).default(0),
    /** One matrix for source and target embeddings and the output projection (needs one vocabulary). */
    shareEmbeddings: z.boolean().default(true),
    layerNormEps: z.number().positive().default(1e-5),
    /** Padding id: masked out as a key and ignored by the loss. */
    padId: z.number().int().nonnegative().default(0),
    bosId: z.number().int().nonnegative().default(1),
    eosId: z.number().int().nonnegative().default(2),
  })
  .strict()
  .refine((c) => c.dModel % c.nHead === 0, { message: 'dModel must be divisible by nHead' })
  .refine((c) => c.dModel % 2 === 0, { message: 'dModel must be even (sinusoidal encoding pairs sin/cos)' })
  .refine((c) => !c.shareEmbeddings || c.srcVocabSize === c.tgtVocabSize, { message: 'shareEmbeddings needs srcVocabSize = tgtVocabSize' });

export type TransformerConfig = z.output<typeof TransformerConfigSchema>;
export type TransformerConfigInput = z.input<typeof TransformerConfigSchema>;

export function parseTransformerConfig(input: unknown): TransformerConfig {
  const r = TransformerConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`Transformer config is invalid: ${issues}`);
  }
  return r.data;
}

/** PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))  (§3.5). */
export function sinusoidalEncoding(length: number, d: number): Tensor {
  const pe = new Float32Array(length * d);
  for (let pos = 0; pos < length; pos++) {
    for (let i = 0; i < d; i += 2) {
      const angle = pos / Math.pow(10000, i / d);
      pe[pos * d + i] = Math.sin(angle);
      pe[pos * d + i + 1] = Math.cos(angle);
    }
  }
  return Tensor.fromArray(pe, [length, d]);
}

/** Additive key mask [B, 1, 1, Tk]: −∞ where the key is padding, 0 elsewhere. */
function keyPaddingMask(ids: Tensor, padId: number): Tensor {
  const [B, T] = ids.shape as [number, number];
  const src = ids.i32('keyPaddingMask');
  const m = new Float32Array(B * T);
  for (let i = 0; i < m.length; i++) m[i] = src[i] === padId ? -Infinity : 0;
  return Tensor.fromArray(m, [B, 1, 1, T]);
}

/** Cached keys and values of one attention layer, [B, H, T, D]. */
export interface AttentionKV {
  k: Tensor;
  v: Tensor;
}

/** Multi-head attention (§3.2.2): h heads of softmax(QKᵀ/√d_k)V, concatenated, projected by W^O. */
export class MultiHeadAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;

  constructor(
    readonly dModel: number,
    readonly nHead: number,
    generator: Generator,
  ) {
    super();
    this.q_proj = this.registerModule('q_proj', new Linear(dModel, dModel, { generator }));
    this.k_proj = this.registerModule('k_proj', new Linear(dModel, dModel, { generator }));
    this.v_proj = this.registerModule('v_proj', new Linear(dModel, dModel, { generator }));
    this.out_proj = this.registerModule('out_proj', new Linear(dModel, dModel, { generator }));
  }

  /** [B, T, d_model] → [B, H, T, d_k]. */
  splitHeads(x: Tensor): Tensor {
    const [B, T] = x.shape as [number, number, number];
    return x.reshape([B, T, this.nHead, this.dModel / this.nHead]).permute([0, 2, 1, 3]);
  }

  /** Keys and values of `source` [B, Tk, d_model] as heads. */
  keysValues(source: Tensor): AttentionKV {
    return { k: this.splitHeads(this.k_proj.forward(source)), v: this.splitHeads(this.v_proj.forward(source)) };
  }

  /** Attends queries from x [B, Tq, d_model] to kv; `causal` aligns the last query with the last key. */
  attend(x: Tensor, kv: AttentionKV, options: { mask?: Tensor; causal?: boolean }): Tensor {
    const [B, Tq] = x.shape as [number, number, number];
    const q = this.splitHeads(this.q_proj.forward(x));
    const y = scaledDotProductAttention(q, kv.k, kv.v, { causal: options.causal === true, ...(options.mask ? { mask: options.mask } : {}) });
    return this.out_proj.forward(y.permute([0, 2, 1, 3]).reshape([B, Tq, this.dModel]));
  }

  forward(x: Tensor, source: Tensor, options: { mask?: Tensor; causal?: boolean } = {}): Tensor {
    return this.attend(x, this.keysValues(source), options);
  }
}

/** FFN(x) = max(0, xW₁ + b₁)W₂ + b₂  (§3.3). */
export class FeedForward extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(dModel: number, dFF: number, generator: Generator) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(dModel, dFF, { generator }));
    this.fc2 = this.registerModule('fc2', new Linear(dFF, dModel, { generator }));
  }

  forward(x: Tensor): Tensor {
    return this.fc2.forward(relu(this.fc1.forward(x)));
  }
}

/** Encoder layer: self-attention, then FFN, each as LayerNorm(x + Dropout(Sublayer(x))). */
export class EncoderLayer extends Module {
  readonly self_attn: MultiHeadAttention;
  readonly norm1: LayerNorm;
  readonly ffn: FeedForward;
  readonly norm2: LayerNorm;
  readonly dropout: Dropout;

  constructor(c: TransformerConfig, generator: Generator) {
    super();
    this.self_attn = this.registerModule('self_attn', new MultiHeadAttention(c.dModel, c.nHead, generator));
    this.norm1 = this.registerModule('norm1', new LayerNorm(c.dModel, { eps: c.layerNormEps }));
    this.ffn = this.registerModule('ffn', new FeedForward(c.dModel, c.dFF, generator));
    this.norm2 = this.registerModule('norm2', new LayerNorm(c.dModel, { eps: c.layerNormEps }));
    this.dropout = this.registerModule('dropout', new Dropout(c.dropout, generator));
  }

  forward(x: Tensor, srcMask: Tensor): Tensor {
    const h = this.norm1.forward(add(x, this.dropout.forward(this.self_attn.forward(x, x, { mask: srcMask }))));
    return this.norm2.forward(add(h, this.dropout.forward(this.ffn.forward(h))));
  }
}

/** Incremental state of one decoder layer. */
export interface DecoderLayerCache {
  /** Self-attention keys/values of the target positions decoded so far (null before the first step). */
  self: AttentionKV | null;
  /** Cross-attention keys/values of the encoder output (fixed for the whole decode). */
  cross: AttentionKV;
}

/** Decoder layer: masked self-attention, cross-attention over the encoder output, FFN; post-LN each. */
export class DecoderLayer extends Module {
  readonly self_attn: MultiHeadAttention;
  readonly norm1: LayerNorm;
  readonly cross_attn: MultiHeadAttention;
  readonly norm2: LayerNorm;
  readonly ffn: FeedForward;
  readonly norm3: LayerNorm;
  readonly dropout: Dropout;

  constructor(c: TransformerConfig, generator: Generator) {
    super();
    this.self_attn = this.registerModule('self_attn', new MultiHeadAttention(c.dModel, c.nHead, generator));
    this.norm1 = this.registerModule('norm1', new LayerNorm(c.dModel, { eps: c.layerNormEps }));
    this.cross_attn = this.registerModule('cross_attn', new MultiHeadAttention(c.dModel, c.nHead, generator));
    this.norm2 = this.registerModule('norm2', new LayerNorm(c.dModel, { eps: c.layerNormEps }));
    this.ffn = this.registerModule('ffn', new FeedForward(c.dModel, c.dFF, generator));
    this.norm3 = this.registerModule('norm3', new LayerNorm(c.dModel, { eps: c.layerNormEps }));
    this.dropout = this.registerModule('dropout', new Dropout(c.dropout, generator));
  }

  forward(y: Tensor, memory: Tensor, memoryMask: Tensor): Tensor {
    const h1 = this.norm1.forward(add(y, this.dropout.forward(this.self_attn.forward(y, y, { causal: true }))));
    const h2 = this.norm2.forward(add(h1, this.dropout.forward(this.cross_attn.forward(h1, memory, { mask: memoryMask }))));
    return this.norm3.forward(add(h2, this.dropout.forward(this.ffn.forward(h2))));
  }

  /** New target positions y [B, t, d] against the cache (appends their self-attention keys/values). */
  forwardCached(y: Tensor, cache: DecoderLayerCache, memoryMask: Tensor): Tensor {
    const kv = this.self_attn.keysValues(y);
    cache.self = cache.self === null ? kv : { k: concat([cache.self.k, kv.k], 2), v: concat([cache.self.v, kv.v], 2) };
    // causal is end-aligned: the t new queries see every cached key and the new ones up to themselves.
    const h1 = this.norm1.forward(add(y, this.self_attn.attend(y, cache.self, { causal: true })));
    const h2 = this.norm2.forward(add(h1, this.cross_attn.attend(h1, cache.cross, { mask: memoryMask })));
    return this.norm3.forward(add(h2, this.ffn.forward(h2)));
  }
}

export class Encoder extends Module {
  readonly layers: ModuleList<EncoderLayer>;
  constructor(c: TransformerConfig, generator: Generator) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: c.nEncoderLayers }, () => new EncoderLayer(c, generator))));
  }
}

export class Decoder extends Module {
  readonly layers: ModuleList<DecoderLayer>;
  constructor(c: TransformerConfig, generator: Generator) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: c.nDecoderLayers }, () => new DecoderLayer(c, generator))));
  }
}

/** The encoder's output for a batch of sources, with the padding mask cross-attention needs. */
export interface EncoderState {
  memory: Tensor;
  /** Additive [B, 1, 1, Ts] key mask (−∞ at source padding). */
  mask: Tensor;
}

/** Incremental decoder state (see Transformer.startDecoding). */
export interface DecoderCache {
  layers: DecoderLayerCache[];
  memoryMask: Tensor;
  /** Target positions decoded so far. */
  length: number;
}

export interface TransformerOptions {
  generator?: Generator;
}

export interface Seq2SeqOutput {
  /** [B, Tt, tgtVocabSize]. */
  logits: Tensor;
  /** Mean cross-entropy over target positions ≠ padId (0-d), or null without targets. */
  loss: Tensor | null;
}

export interface BeamSearchOptions {
  /** Hypotheses kept per step (paper: 4). */
  beamSize?: number;
  /** GNMT length penalty ((5 + |y|)/6)^α dividing the log-probability (paper: 0.6). */
  lengthPenalty?: number;
  /** Longest output, EOS excluded (default: maxLength − 1). */
  maxNewTokens?: number;
}

export class Transformer extends Module {
  readonly config: TransformerConfig;
  /** With shareEmbeddings: the one matrix for source, target and output. */
  readonly shared: Embedding | null;
  readonly src_embed: Embedding | null;
  readonly tgt_embed: Embedding | null;
  readonly lm_head: Linear | null;
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly dropout: Dropout;
  private readonly positional: Tensor;

  constructor(config: TransformerConfigInput, options: TransformerOptions = {}) {
    super();
    const c = (this.config = parseTransformerConfig(config));
    const generator = options.generator ?? defaultGenerator;
    // Embeddings ~ N(0, d^-1/2) so that the √d scaling gives unit-variance inputs.
    const std = 1 / Math.sqrt(c.dModel);
    if (c.shareEmbeddings) {
      this.shared = this.registerModule('shared', new Embedding(c.srcVocabSize, c.dModel, { generator, std }));
      this.src_embed = this.tgt_embed = null;
      this.lm_head = null;
    } else {
      this.shared = null;
      this.src_embed = this.registerModule('src_embed', new Embedding(c.srcVocabSize, c.dModel, { generator, std }));
      this.tgt_embed = this.registerModule('tgt_embed', new Embedding(c.tgtVocabSize, c.dModel, { generator, std }));
      this.lm_head = this.registerModule('lm_head', new Linear(c.dModel, c.tgtVocabSize, { generator, bias: false }));
    }
    this.encoder = this.registerModule('encoder', new Encoder(c, generator));
    this.decoder = this.registerModule('decoder', new Decoder(c, generator));
    this.dropout = this.registerModule('dropout', new Dropout(c.dropout, generator));
    this.positional = sinusoidalEncoding(c.maxLength, c.dModel);
  }

  private checkIds(ids: Tensor, what: string, vocab: number, op: string, maxLen = this.config.maxLength): void {
    if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new TypeError(`${op}: ${what} must be an i32 tensor [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
    if (ids.shape[1]! > maxLen) throw new RangeError(`${op}: ${what} length ${ids.shape[1]} exceeds maxLength ${maxLen}`);
    const d = ids.i32(op);
    for (let i = 0; i < d.length; i++) {
      if (!(d[i]! >= 0 && d[i]! < vocab)) throw new RangeError(`${op}: ${what} value ${d[i]} at flat position ${i} is outside the vocabulary [0, ${vocab})`);
    }
  }

  /** Embedding·√d_model + PE at positions [start, start + T), then dropout (§3.4, §5.4). */
  private embed(ids: Tensor, table: Embedding, start = 0): Tensor {
    const T = ids.shape[1]!;
    const e = mul(table.forward(ids), Math.sqrt(this.config.dModel));
    return this.dropout.forward(add(e, this.positional.narrow(0, start, T)));
  }

  private get srcTable(): Embedding {
    return (this.shared ?? this.src_embed)!;
  }

  private get tgtTable(): Embedding {
    return (this.shared ?? this.tgt_embed)!;
  }

  /** Pre-softmax projection: the shared embedding matrix, or lm_head. */
  private project(h: Tensor): Tensor {
    return linear(h, this.shared !== null ? this.shared.weight : this.lm_head!.weight);
  }

  /** src [B, Ts] → the encoder output [B, Ts, d] and its padding mask. */
  encode(src: Tensor): EncoderState {
    this.checkIds(src, 'src', this.config.srcVocabSize, 'Transformer.encode');
    const mask = keyPaddingMask(src, this.config.padId);
    let x = this.embed(src, this.srcTable);
    for (const layer of this.encoder.layers) x = layer.forward(x, mask);
    return { memory: x, mask };
  }

  /** Decoder over the whole target prefix (teacher forcing): tgtIn [B, Tt] → logits [B, Tt, V]. */
  decode(tgtIn: Tensor, state: EncoderState): Tensor {
    this.checkIds(tgtIn, 'tgtIn', this.config.tgtVocabSize, 'Transformer.decode');
    let y = this.embed(tgtIn, this.tgtTable);
    for (const layer of this.decoder.layers) y = layer.forward(y, state.memory, state.mask);
    return this.project(y);
  }

  /**
   * src [B, Ts], tgtIn [B, Tt] (the target shifted right, starting with BOS) → logits; with
   * targets [B, Tt] also the mean cross-entropy over non-padding targets.
   */
  forward(src: Tensor, tgtIn: Tensor, targets?: Tensor, options: { labelSmoothing?: number } = {}): Seq2SeqOutput {
    if (src.shape[0] !== tgtIn.shape[0]) throw new RangeError(`Transformer.forward: src ${formatShape(src.shape)} and tgtIn ${formatShape(tgtIn.shape)} differ in batch size`);
    const logits = this.decode(tgtIn, this.encode(src));
    if (targets === undefined) return { logits, loss: null };
    if (targets.shape.length !== 2 || targets.shape[0] !== tgtIn.shape[0] || targets.shape[1] !== tgtIn.shape[1]) {
      throw new RangeError(`Transformer.forward: targets ${formatShape(targets.shape)} must match tgtIn ${formatShape(tgtIn.shape)}`);
    }
    this.checkIds(targets, 'targets', this.config.tgtVocabSize, 'Transformer.forward');
    const loss = crossEntropy(logits, targets, { ignoreIndex: this.config.padId, labelSmoothing: options.labelSmoothing ?? 0 });
    return { logits, loss };
  }

  /** Encodes src and prepares an empty decoder cache (cross-attention keys/values computed once). */
  startDecoding(state: EncoderState): DecoderCache {
    return noGrad(() => ({
      layers: this.decoder.layers.items.map((layer) => ({ self: null, cross: layer.cross_attn.keysValues(state.memory) })),
      memoryMask: state.mask,
      length: 0,
    }));
  }

  /** Feeds new target tokens [B, t] at positions cache.length …; returns their logits [B, t, V]. */
  decodeCached(tgt: Tensor, cache: DecoderCache): Tensor {
    const op = 'Transformer.decodeCached';
    this.checkIds(tgt, 'tgt', this.config.tgtVocabSize, op, Infinity);
    const t = tgt.shape[1]!;
    if (cache.length + t > this.config.maxLength) {
      throw new RangeError(`${op}: ${cache.length} decoded + ${t} new positions exceed maxLength ${this.config.maxLength}`);
    }
    return noGrad(() => {
      let y = this.embed(tgt, this.tgtTable, cache.length);
      this.decoder.layers.items.forEach((layer, i) => {
        y = layer.forwardCached(y, cache.layers[i]!, cache.memoryMask);
      });
      cache.length += t;
      return this.project(y);
    });
  }

  /** Keeps rows `rows` of every cached tensor (beam search's reordering of hypotheses). */
  private reorderCache(cache: DecoderCache, rows: Tensor): void {
    const pick = (t: Tensor): Tensor => indexSelect(t, 0, rows);
    for (const l of cache.layers) {
      if (l.self !== null) l.self = { k: pick(l.self.k), v: pick(l.self.v) };
      l.cross = { k: pick(l.cross.k), v: pick(l.cross.v) };
    }
    cache.memoryMask = pick(cache.memoryMask);
  }

  /** Greedy decoding of a batch: each output stops at EOS (excluded) or after maxNewTokens. */
  greedyDecode(src: Tensor, maxNewTokens = this.config.maxLength - 1): number[][] {
    const { bosId, eosId, tgtVocabSize: V } = this.config;
    return noGrad(() => {
      const B = src.shape[0]!;
      const cache = this.startDecoding(this.encode(src));
      const out: number[][] = Array.from({ length: B }, () => []);
      const done = new Array<boolean>(B).fill(false);
      let next = new Int32Array(B).fill(bosId);
      const steps = Math.min(maxNewTokens + 1, this.config.maxLength);
      for (let s = 0; s < steps && done.includes(false); s++) {
        const logits = this.decodeCached(Tensor.fromArray(next, [B, 1], 'i32'), cache).f32('greedyDecode');
        next = new Int32Array(B);
        for (let b = 0; b < B; b++) {
          let best = 0;
          for (let v = 1; v < V; v++) if (logits[b * V + v]! > logits[b * V + best]!) best = v;
          next[b] = best;
          if (done[b]) continue;
          if (best === eosId || out[b]!.length >= maxNewTokens) done[b] = true;
          else out[b]!.push(best);
        }
      }
      return out;
    });
  }

  /**
   * Beam search for one source sequence src [1, Ts] (§6.1): keeps the beamSize best prefixes by
   * summed log-probability; a prefix that emits EOS is finished; the answer is the finished
   * hypothesis with the best score logP / ((5 + |y|)/6)^α. Returns the ids, EOS excluded.
   */
  beamSearch(src: Tensor, options: BeamSearchOptions = {}): number[] {
    const op = 'Transformer.beamSearch';
    if (src.ndim !== 2 || src.shape[0] !== 1) throw new RangeError(`${op}: expected one source sequence [1, Ts], got ${formatShape(src.shape)}`);
    const { beamSize = 4, lengthPenalty = 0.6 } = options;
    const maxNew = options.maxNewTokens ?? this.config.maxLength - 1;
    if (!Number.isInteger(beamSize) || beamSize < 1) throw new RangeError(`${op}: beamSize must be a positive integer, got ${beamSize}`);
    const { bosId, eosId, tgtVocabSize: V } = this.config;
    const penalty = (len: number): number => Math.pow((5 + len) / 6, lengthPenalty);
    return noGrad(() => {
      const cache = this.startDecoding(this.encode(src));
      let beams: { ids: number[]; logp: number }[] = [{ ids: [], logp: 0 }];
      const finished: { ids: number[]; score: number }[] = [];
      let feed = [bosId];
      for (let step = 0; step < maxNew && beams.length > 0; step++) {
        const logits = this.decodeCached(Tensor.fromArray(Int32Array.from(feed), [beams.length, 1], 'i32'), cache);
        const lp = logSoftmax(logits, -1).f32(op);
        const candidates: { from: number; token: number; logp: number }[] = [];
        beams.forEach((beam, i) => {
          for (let v = 0; v < V; v++) candidates.push({ from: i, token: v, logp: beam.logp + lp[i * V + v]! });
        });
        candidates.sort((x, y) => y.logp - x.logp);
        const next: { from: number; token: number; logp: number }[] = [];
        for (const cand of candidates) {
          if (next.length >= beamSize) break;
          const ids = beams[cand.from]!.ids;
          if (cand.token === eosId) finished.push({ ids, score: cand.logp / penalty(ids.length) });
          else next.push(cand);
        }
        beams = next.map((n) => ({ ids: [...beams[n.from]!.ids, n.token], logp: n.logp }));
        // With α ≤ 1 a live prefix's score can at best reach logp / penalty(maxNew) (log-probabilities
        // only fall); once none can beat the best finished hypothesis, the search is over.
        const best = finished.reduce((m, f) => Math.max(m, f.score), -Infinity);
        if (finished.length >= beamSize && lengthPenalty <= 1 && beams.every((bm) => bm.logp / penalty(maxNew) <= best)) {
          beams = [];
          break;
        }
        this.reorderCache(cache, Tensor.fromArray(Int32Array.from(next.map((n) => n.from)), [next.length], 'i32'));
        feed = next.map((n) => n.token);
      }
      // Prefixes still alive at the length limit finish without their EOS.
      for (const bm of beams) finished.push({ ids: bm.ids, score: bm.logp / penalty(bm.ids.length) });
      finished.sort((x, y) => y.score - x.score);
      return finished.length > 0 ? finished[0]!.ids : [];
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Saving and loading (a Weft-only model_type: transformers has no such class)
  // ---------------------------------------------------------------------------------------------

  async savePretrained(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const sd = this.stateDict();
    await saveSafetensors(join(dir, 'model.safetensors'), new Map([...sd.entries()].sort(([a], [b]) => (a < b ? -1 : 1))), { format: 'pt' });
    await writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ model_type: 'weft-transformer', architectures: ['WeftTransformer'], weft_config: this.config }, null, 2) + '\n');
  }

  static async fromPretrained(dir: string, options: TransformerOptions = {}): Promise<Transformer> {
    const path = join(dir, 'config.json');
    const json = JSON.parse(await readFile(path, 'utf8')) as { model_type?: unknown; weft_config?: unknown };
    if (json.model_type !== 'weft-transformer') throw new Error(`Transformer.fromPretrained: ${path}: model_type is '${String(json.model_type)}', expected 'weft-transformer'`);
    const model = new Transformer(parseTransformerConfig(json.weft_config), options);
    const { tensors } = await loadSafetensors(join(dir, 'model.safetensors'));
    loadChecked(model, tensors, join(dir, 'model.safetensors'), 'Transformer.fromPretrained');
    return model;
  }
}

/** Loads a state dict after checking names and shapes, naming every missing, extra or misshapen tensor. */
export function loadChecked(model: Module, tensors: Map<string, Tensor>, source: string, op: string): void {
  const own = model.stateDict();
  const problems: string[] = [];
  const missing = [...own.keys()].filter((k) => !tensors.has(k));
  if (missing.length > 0) problems.push(`missing tensors: ${missing.join(', ')}`);
  const unexpected = [...tensors.keys()].filter((k) => !own.has(k));
  if (unexpected.length > 0) problems.push(`unexpected tensors: ${unexpected.join(', ')}`);
  for (const [name, target] of own) {
    const t = tensors.get(name);
    if (t !== undefined && (t.ndim !== target.ndim || t.shape.some((d, i) => d !== target.shape[i]))) {
      problems.push(`${name} has shape ${formatShape(t.shape)}, expected ${formatShape(target.shape)}`);
    }
  }
  if (problems.length > 0) throw new Error(`${op}: ${source} does not fit the config: ${problems.join('; ')}`);
  model.loadStateDict(new Map([...own.keys()].map((k) => [k, tensors.get(k)!])));
}

registerFamily({ modelTypes: ['weft-transformer'], fromPretrained: (dir) => Transformer.fromPretrained(dir) });
