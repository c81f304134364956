/**
 * Speculative decoding with a draft model (Leviathan et al. 2023; Chen et al. 2023), greedy
 * verification. Each round the small draft proposes γ tokens one by one from its own KV cache; the
 * target scores all γ + 1 positions (the last accepted token and the γ proposals) in ONE forward;
 * the longest prefix of proposals equal to the target's own argmax is accepted, followed by the
 * target's argmax at the first disagreement (or after the last proposal when all agree). So every
 * emitted token is the target's greedy choice: the output is the target's greedy output, only
 * produced with fewer target forwards. Rejected positions are dropped by rewinding the caches
 * (KVCache.truncate). Target and draft must share the tokenizer (same vocabulary size).
 *
 * Prompt prefill is folded into the first round: the target's first forward is prompt + proposals.
 * Drafts: another model (its own KV cache, rewound in step), the target's first layers
 * (truncatedDraft), or a model-free TokenDrafter (ngramDrafter: prompt lookup).
 */
import { GPT } from '../models/gpt.js';
import { Llama, ropeTables } from '../models/llama.js';
import { KVCache } from '../nn/kv-cache.js';
import { argmax } from '../nn/sampling.js';
import { noGrad } from '../tensor/autograd.js';
import { linear } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';

/** A decoder with a KV cache (Llama and GPT through speculativeModel()). */
export interface CachedDecoder {
  readonly vocabSize: number;
  /** Positions the model can attend over. */
  readonly contextLength: number;
  newCache(maxLength: number): KVCache;
  /** ids [1, t] at positions cache.length … → logits [1, t, V] (or [1, 1, V] with lastOnly); the cache advances by t. */
  forwardCached(ids: Tensor, cache: KVCache, options?: { lastOnly?: boolean }): Tensor;
}

/** The CachedDecoder view of a Weft LLaMA / Qwen2 or GPT model. */
export function cachedDecoder(model: Llama | GPT | CachedDecoder): CachedDecoder {
  if (model instanceof Llama) {
    return {
      vocabSize: model.config.vocabSize,
      contextLength: model.config.maxPositionEmbeddings,
      newCache: (maxLength) => model.newCache(1, maxLength),
      forwardCached: (ids, cache, options) => model.forwardCached(ids, cache, options),
    };
  }
  if (model instanceof GPT) {
    return {
      vocabSize: model.config.vocabSize,
      contextLength: model.config.blockSize,
      newCache: (maxLength) => KVCache.forModel(model, 1, maxLength),
      forwardCached: (ids, cache, options) => model.forwardCached(ids, cache, options),
    };
  }
  return model;
}

/**
 * A draft that is the target's own first `layers` decoder layers, then its final norm and LM head
 * (self-speculative "early exit" drafting, as LayerSkip / Draft & Verify): no second model and no
 * extra weights, at layers/nLayer of the target's per-token cost. How often it agrees depends on how
 * much the later layers change the argmax.
 */
export function truncatedDraft(model: Llama, layers: number): CachedDecoder {
  const c = model.config;
  if (!Number.isInteger(layers) || layers < 1 || layers >= c.nLayer) {
    throw new RangeError(`truncatedDraft: layers must be an integer in [1, ${c.nLayer - 1}] (the target has ${c.nLayer}), got ${layers}`);
  }
  const blocks = model.model.layers.items.slice(0, layers);
  const head = model.lm_head === null ? model.model.embed_tokens.weight : model.lm_head.weight;
  return {
    vocabSize: c.vocabSize,
    contextLength: c.maxPositionEmbeddings,
    newCache: (maxLength) => new KVCache({ nLayer: layers, batch: 1, nHead: c.nKVHead, headDim: c.headDim, maxLength }),
    forwardCached: (ids, cache, options = {}) =>
      noGrad(() => {
        const t = ids.shape[1]!;
        const start = cache.length;
        if (start + t > cache.maxLength) throw new RangeError(`truncatedDraft: KV cache full (${start} + ${t} > ${cache.maxLength})`);
        const { cos, sin } = ropeTables(c, start, t);
        let x = model.model.embed_tokens.forward(ids);
        blocks.forEach((layer, i) => {
          const next = layer.forwardCached(x, cache, i, cos, sin);
          x.dispose();
          x = next;
        });
        cache.advance(t);
        const last = options.lastOnly === true && t > 1 ? x.narrow(1, t - 1, 1) : x;
        const h = model.model.norm.forward(last);
        if (last !== x) last.dispose();
        x.dispose();
        const logits = linear(h, head);
        h.dispose();
        return logits;
      }),
  };
}

export interface SpeculativeOptions {
  maxNewTokens: number;
  /** Draft tokens proposed per round (default 4). */
  gamma?: number;
  /** Adapt γ per round (HF's heuristic: +2 after a fully accepted round, −1 otherwise), within [1, maxGamma]. */
  adaptive?: boolean;
  /** Upper bound for adaptive γ (default 16). */
  maxGamma?: number;
  /** Stop after emitting one of these ids (kept in the output). */
  stopIds?: readonly number[];
  /** Called with the tokens each round emits (one or more). */
  onTokens?: (ids: number[]) => void;
}

export interface SpeculativeStats {
  /** Tokens emitted. */
  tokens: number;
  /** Verification rounds (= target forwards). */
  rounds: number;
  /** Draft tokens proposed and accepted over all rounds. */
  proposed: number;
  accepted: number;
  /** accepted / proposed (0 when nothing was proposed). */
  acceptanceRate: number;
  targetForwards: number;
  draftForwards: number;
}

function forwardRows(m: CachedDecoder, cache: KVCache, ids: readonly number[], lastOnly: boolean): Float32Array {
  const logits = m.forwardCached(Tensor.fromArray(Int32Array.from(ids), [1, ids.length], 'i32'), cache, { lastOnly });
  const rows = logits.f32('speculative').slice();
  logits.dispose();
  return rows;
}

function checkCommon(op: string, m: CachedDecoder, prompt: readonly number[], maxNewTokens: number): void {
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new RangeError(`${op}: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  if (prompt.length === 0) throw new RangeError(`${op}: the prompt is empty; give at least one token id`);
  prompt.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= m.vocabSize) throw new RangeError(`${op}: prompt token ${id} at position ${i} is outside the vocabulary [0, ${m.vocabSize})`);
  });
  if (prompt.length + maxNewTokens > m.contextLength) {
    throw new RangeError(`${op}: prompt (${prompt.length}) + maxNewTokens (${maxNewTokens}) exceeds the context length ${m.contextLength}`);
  }
}

/** Plain greedy decoding with a KV cache, one target forward per token (the reference and the baseline). */
export function greedyDecode(model: Llama | GPT | CachedDecoder, prompt: readonly number[], options: { maxNewTokens: number; stopIds?: readonly number[] }): number[] {
  const m = cachedDecoder(model);
  checkCommon('greedyDecode', m, prompt, options.maxNewTokens);
  const cache = m.newCache(Math.max(1, prompt.length + options.maxNewTokens));
  const out: number[] = [];
  let feed: readonly number[] = prompt;
  while (out.length < options.maxNewTokens) {
    const next = argmax(forwardRows(m, cache, feed, true));
    out.push(next);
    if (options.stopIds?.includes(next) === true) break;
    feed = [next];
  }
  return out;
}

/**
 * A draft that needs no model: proposes what followed the most recent earlier occurrence of the
 * context's last n tokens (n from maxNgram down to minNgram) — prompt-lookup / n-gram drafting, as
 * vLLM's "ngram" speculator. Free to run; accurate where the output repeats its prompt or itself.
 */
export interface TokenDrafter {
  /** Up to maxTokens proposed continuations of `context` (prompt + tokens so far); may return fewer or none. */
  propose(context: readonly number[], maxTokens: number): number[];
}

export function ngramDrafter(options: { maxNgram?: number; minNgram?: number } = {}): TokenDrafter {
  const { maxNgram = 3, minNgram = 1 } = options;
  if (!Number.isInteger(minNgram) || minNgram < 1 || !Number.isInteger(maxNgram) || maxNgram < minNgram) {
    throw new RangeError(`ngramDrafter: need integers 1 ≤ minNgram ≤ maxNgram, got ${minNgram}, ${maxNgram}`);
  }
  return {
    propose(context, maxTokens) {
      const L = context.length;
      for (let n = Math.min(maxNgram, L - 1); n >= minNgram; n--) {
        // Most recent earlier start p with context[p .. p+n) equal to the last n tokens.
        for (let p = L - n - 1; p >= 0; p--) {
          let match = true;
          for (let j = 0; j < n; j++) {
            if (context[p + j] !== context[L - n + j]) {
              match = false;
              break;
            }
          }
          if (match) return context.slice(p + n, Math.min(L, p + n + maxTokens));
        }
      }
      return [];
    },
  };
}

/** A draft model with its own KV cache, kept in step with the accepted sequence. */
class ModelDrafter {
  forwards = 0;
  private readonly cache: KVCache;
  /** Tokens of the sequence not yet fed to the draft (always ending with the last emitted token). */
  private pending: number[];
  private start = 0;
  private fed = 0;

  constructor(
    private readonly model: CachedDecoder,
    prompt: readonly number[],
    size: number,
  ) {
    this.cache = model.newCache(size);
    this.pending = [...prompt];
  }

  propose(g: number): number[] {
    this.start = this.cache.length;
    this.fed = this.pending.length;
    const proposals: number[] = [];
    for (let i = 0; i < g; i++) {
      const feed = i === 0 ? this.pending : [proposals[i - 1]!];
      proposals.push(argmax(forwardRows(this.model, this.cache, feed, true)));
      this.forwards++;
    }
    return proposals;
  }

  /** The target accepted the first n proposals, then emitted `next`. */
  commit(proposals: readonly number[], n: number, next: number): void {
    const g = proposals.length;
    if (g === 0) {
      this.pending.push(next);
    } else if (n < g) {
      this.cache.truncate(this.start + this.fed + n);
      this.pending = [next];
    } else {
      // The last proposal was never fed to the draft.
      this.pending = [proposals[g - 1]!, next];
    }
  }
}

function isTokenDrafter(d: unknown): d is TokenDrafter {
  return typeof (d as Partial<TokenDrafter>).propose === 'function';
}

/**
 * Greedy decoding of `target`, accelerated by `draft` (a model sharing the tokenizer, or a
 * TokenDrafter such as ngramDrafter()): returns exactly greedyDecode(target, …)'s tokens, and how
 * many draft proposals the target accepted.
 */
export function speculativeGreedy(
  target: Llama | GPT | CachedDecoder,
  draft: Llama | GPT | CachedDecoder | TokenDrafter,
  prompt: readonly number[],
  options: SpeculativeOptions,
): { tokens: number[]; stats: SpeculativeStats } {
  const op = 'speculativeGreedy';
  const t = cachedDecoder(target);
  const { maxNewTokens, adaptive = false, maxGamma = 16 } = options;
  let gamma = options.gamma ?? 4;
  if (!Number.isInteger(gamma) || gamma < 1) throw new RangeError(`${op}: gamma must be a positive integer, got ${gamma}`);
  if (!Number.isInteger(maxGamma) || maxGamma < gamma) throw new RangeError(`${op}: maxGamma must be an integer ≥ gamma (${gamma}), got ${maxGamma}`);
  checkCommon(op, t, prompt, maxNewTokens);
  const size = Math.max(1, prompt.length + maxNewTokens);
  let drafter: ModelDrafter | null = null;
  let lookup: TokenDrafter | null = null;
  if (isTokenDrafter(draft)) {
    lookup = draft;
  } else {
    const d = cachedDecoder(draft);
    if (t.vocabSize !== d.vocabSize) {
      throw new RangeError(`${op}: the draft's vocabulary (${d.vocabSize}) differs from the target's (${t.vocabSize}); both must share one tokenizer`);
    }
    checkCommon(`${op} (draft)`, d, prompt, maxNewTokens);
    drafter = new ModelDrafter(d, prompt, size);
  }
  const targetCache = t.newCache(size);
  // Tokens the target has not fed yet (always ending with the last emitted token).
  let targetPending: number[] = [...prompt];
  const sequence: number[] = [...prompt];
  const out: number[] = [];
  const stats: SpeculativeStats = { tokens: 0, rounds: 0, proposed: 0, accepted: 0, acceptanceRate: 0, targetForwards: 0, draftForwards: 0 };
  const V = t.vocabSize;

  while (out.length < maxNewTokens) {
    // Never propose past maxNewTokens: the round emits at most γ + 1 tokens.
    const budget = Math.min(gamma, maxNewTokens - out.length - 1);
    let proposals: number[] = [];
    if (budget > 0) proposals = drafter !== null ? drafter.propose(budget) : lookup!.propose(sequence, budget).slice(0, budget);
    const g = proposals.length;
    // One target forward over the pending tokens and every proposal; row r predicts the token after position r.
    const targetStart = targetCache.length;
    const rows = forwardRows(t, targetCache, [...targetPending, ...proposals], g > 0 ? false : true);
    stats.targetForwards++;
    stats.rounds++;
    const base = g > 0 ? targetPending.length - 1 : 0;
    const choice = (j: number): number => argmax(rows.subarray((base + j) * V, (base + j + 1) * V));
    let n = 0;
    while (n < g && proposals[n] === choice(n)) n++;
    const emitted = [...proposals.slice(0, n), choice(n)];
    stats.proposed += g;
    stats.accepted += n;
    // Rewind: keep the pending tokens and the n accepted proposals; the new last token is fed next round.
    targetCache.truncate(targetStart + targetPending.length + n);
    targetPending = [emitted[n]!];
    drafter?.commit(proposals, n, emitted[n]!);
    if (adaptive) gamma = g > 0 && n === g ? Math.min(maxGamma, gamma + 2) : Math.max(1, gamma - 1);
    // Stop ids: cut after the first one.
    let keep = emitted.length;
    if (options.stopIds !== undefined) {
      const at = emitted.findIndex((id) => options.stopIds!.includes(id));
      if (at >= 0) keep = at + 1;
    }
    const fresh = emitted.slice(0, Math.min(keep, maxNewTokens - out.length));
    out.push(...fresh);
    sequence.push(...fresh);
    options.onTokens?.(fresh);
    if (keep < emitted.length || (options.stopIds !== undefined && options.stopIds.includes(fresh[fresh.length - 1]!))) break;
  }
  stats.tokens = out.length;
  stats.draftForwards = drafter?.forwards ?? 0;
  stats.acceptanceRate = stats.proposed === 0 ? 0 : stats.accepted / stats.proposed;
  return { tokens: out, stats };
}
