/**
 * BLEU exactly as sacrebleu 2.x computes it (`sacrebleu.corpus_bleu` / `sentence_bleu`): same
 * preprocessing (rstrip, optional lower-case, tokenizer), n-gram clipping against the per-n-gram
 * maximum over a segment's references, closest reference length (shorter one on ties), smoothing
 * and effective order. `refs[i]` holds the references of hypothesis `i`; their number may vary.
 */
import { getBleuTokenizer, type BleuTokenizerName } from './sacrebleu-tokenizers.js';
import { pyRstrip, pySplit } from './text.js';

export type BleuSmoothMethod = 'exp' | 'floor' | 'add-k' | 'none';

export interface BleuOptions {
  tokenize?: BleuTokenizerName;
  lowercase?: boolean;
  smoothMethod?: BleuSmoothMethod;
  /** floor: the floor (default 0.1); add-k: k (default 1); ignored by exp and none. */
  smoothValue?: number;
  /** Drop n-gram orders whose total is 0 (short hypotheses). Corpus default false, sentence default true. */
  useEffectiveOrder?: boolean;
}

export interface BleuResult {
  /** 0–100. */
  score: number;
  /** Per-order precisions after smoothing, 0–100. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  sysLen: number;
  refLen: number;
  /** Matched n-grams per order (include k under add-k smoothing, as sacrebleu reports them). */
  counts: number[];
  /** Hypothesis n-grams per order (include k under add-k smoothing). */
  totals: number[];
}

const MAX_ORDER = 4;
const SMOOTH_METHODS: readonly BleuSmoothMethod[] = ['exp', 'floor', 'add-k', 'none'];

/** n-gram counts for orders 1..maxOrder; keys are the tokens joined by a space (tokens hold none). */
function wordNgrams(tokens: readonly string[], maxOrder: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = n === 1 ? tokens[i] : tokens.slice(i, i + n).join(' ');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** sacrebleu's `_get_closest_ref_len`: the closest length; on a tie the shorter reference. */
function closestRefLen(hypLen: number, refLens: readonly number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const refLen of refLens) {
    const diff = Math.abs(hypLen - refLen);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = refLen;
    } else if (diff === closestDiff && refLen < closestLen) {
      closestLen = refLen;
    }
  }
  return closestLen;
}

/** sacrebleu's `my_log`: log, with log(0) replaced by a huge negative number instead of -inf. */
function myLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

function checkOptions(opts: BleuOptions, where: string): void {
  if (opts.smoothMethod !== undefined && !SMOOTH_METHODS.includes(opts.smoothMethod)) {
    throw new Error(`${where}: unknown smoothMethod '${String(opts.smoothMethod)}' (expected one of ${SMOOTH_METHODS.join(', ')})`);
  }
  if (opts.smoothValue !== undefined && !(Number.isFinite(opts.smoothValue) && opts.smoothValue >= 0)) {
    throw new Error(`${where}: smoothValue must be a finite number >= 0, got ${String(opts.smoothValue)}`);
  }
}

/** sacrebleu's `BLEU.compute_bleu` from summed statistics (counts/totals are copied, not mutated). */
export function computeBleu(
  countsIn: readonly number[],
  totalsIn: readonly number[],
  sysLen: number,
  refLen: number,
  opts: { smoothMethod?: BleuSmoothMethod; smoothValue?: number; useEffectiveOrder?: boolean } = {},
): BleuResult {
  const method = opts.smoothMethod ?? 'exp';
  const smoothValue = opts.smoothValue ?? (method === 'floor' ? 0.1 : method === 'add-k' ? 1 : 0);
  const counts = countsIn.slice();
  const totals = totalsIn.slice();
  const maxOrder = counts.length;
  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0.0;
  const precisions = new Array<number>(maxOrder).fill(0);

  // sacrebleu stops early when nothing matches at any order (issue #141), before smoothing.
  if (!counts.some((c) => c !== 0)) return { score: 0, precisions, bp, sysLen, refLen, counts, totals };

  let smoothMteval = 1;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (method === 'add-k' && n > 1) {
      counts[n - 1] += smoothValue;
      totals[n - 1] += smoothValue;
    }
    if (totals[n - 1] === 0) break;
    if (opts.useEffectiveOrder) effOrder = n;
    if (counts[n - 1] === 0) {
      if (method === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * totals[n - 1]);
      } else if (method === 'floor') {
        precisions[n - 1] = (100 * smoothValue) / totals[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * counts[n - 1]) / totals[n - 1];
    }
  }
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += myLog(precisions[i]);
  const score = bp * Math.exp(logSum / effOrder);
  return { score, precisions, bp, sysLen, refLen, counts, totals };
}

/** Sufficient statistics of a corpus: [sysLen, refLen, counts..., totals...], summed over segments. */
export function bleuStatistics(hyps: readonly string[], refs: readonly (readonly string[])[], opts: BleuOptions = {}): number[] {
  if (hyps.length !== refs.length) {
    throw new Error(`bleu: ${hyps.length} hypotheses but ${refs.length} reference lists (refs[i] is the list of references of hypothesis i)`);
  }
  const tokenizer = getBleuTokenizer(opts.tokenize ?? '13a');
  const lowercase = opts.lowercase ?? false;
  const prep = (s: string): string[] => pySplit(tokenizer(pyRstrip(lowercase ? s.toLowerCase() : s)));
  const stats = new Array<number>(2 + 2 * MAX_ORDER).fill(0);
  for (let i = 0; i < hyps.length; i++) {
    const segRefs = refs[i];
    if (!Array.isArray(segRefs) || segRefs.length === 0) {
      throw new Error(`bleu: hypothesis ${i} has no reference (refs[${i}] must be a non-empty list of strings)`);
    }
    if (typeof hyps[i] !== 'string') throw new Error(`bleu: hypothesis ${i} is not a string`);
    // Clip against the per-n-gram maximum count over this segment's references.
    let refNgrams: Map<string, number> | null = null;
    const refLens: number[] = [];
    for (let j = 0; j < segRefs.length; j++) {
      if (typeof segRefs[j] !== 'string') throw new Error(`bleu: reference ${j} of hypothesis ${i} is not a string`);
      const tokens = prep(segRefs[j]);
      refLens.push(tokens.length);
      const ngrams = wordNgrams(tokens, MAX_ORDER);
      if (refNgrams === null) refNgrams = ngrams;
      else for (const [g, c] of ngrams) if (c > (refNgrams.get(g) ?? 0)) refNgrams.set(g, c);
    }
    const hypTokens = prep(hyps[i]);
    const hypNgrams = wordNgrams(hypTokens, MAX_ORDER);
    stats[0] += hypTokens.length;
    stats[1] += closestRefLen(hypTokens.length, refLens);
    for (const [g, c] of hypNgrams) {
      // The order is one more than the number of separating spaces.
      let n = 0;
      for (let p = g.indexOf(' '); p !== -1; p = g.indexOf(' ', p + 1)) n++;
      stats[2 + MAX_ORDER + n] += c;
      const r = (refNgrams as Map<string, number>).get(g);
      if (r !== undefined) stats[2 + n] += Math.min(c, r);
    }
  }
  return stats;
}

/** Corpus BLEU (sacrebleu `corpus_bleu`; effective order off by default). */
export function corpusBleu(hyps: readonly string[], refs: readonly (readonly string[])[], opts: BleuOptions = {}): BleuResult {
  checkOptions(opts, 'corpusBleu');
  const stats = bleuStatistics(hyps, refs, opts);
  return computeBleu(stats.slice(2, 2 + MAX_ORDER), stats.slice(2 + MAX_ORDER), stats[0], stats[1], {
    smoothMethod: opts.smoothMethod,
    smoothValue: opts.smoothValue,
    useEffectiveOrder: opts.useEffectiveOrder ?? false,
  });
}

/** Sentence BLEU (sacrebleu `sentence_bleu`; effective order on by default). */
export function sentenceBleu(hyp: string, refs: readonly string[], opts: BleuOptions = {}): BleuResult {
  checkOptions(opts, 'sentenceBleu');
  return corpusBleu([hyp], [refs], { ...opts, useEffectiveOrder: opts.useEffectiveOrder ?? true });
}
