/**
 * chrF and chrF++ exactly as sacrebleu 2.x's `CHRF`: character n-grams (whitespace removed unless
 * asked otherwise) of orders 1..charOrder, plus word n-grams 1..wordOrder for chrF++ (with at most
 * one leading or trailing ASCII punctuation mark split off each word). Each segment keeps the
 * statistics of its best reference; corpus scores come from the summed statistics.
 */
import { ASCII_PUNCTUATION, pyRemoveWhitespace, pySplit } from './text.js';

export interface ChrfOptions {
  /** Character n-gram order (default 6). */
  charOrder?: number;
  /** Word n-gram order: 0 = chrF (default), 2 = chrF++. */
  wordOrder?: number;
  /** Recall weight (default 2). */
  beta?: number;
  lowercase?: boolean;
  /** sacrebleu's `whitespace`: keep whitespace in character n-grams (default false: removed). */
  removeWhitespace?: boolean;
  /** Average per-order F scores, with 1e-16 standing in for undefined terms (default false). */
  epsSmoothing?: boolean;
}

export interface ChrfResult {
  /** 0–100. */
  score: number;
  /** [hyp n-grams, ref n-grams, matches] per order (char orders, then word orders), flattened. */
  stats: number[];
}

interface ResolvedChrf {
  charOrder: number;
  wordOrder: number;
  beta: number;
  lowercase: boolean;
  removeWhitespace: boolean;
  epsSmoothing: boolean;
}

function resolve(opts: ChrfOptions, where: string): ResolvedChrf {
  const r: ResolvedChrf = {
    charOrder: opts.charOrder ?? 6,
    wordOrder: opts.wordOrder ?? 0,
    beta: opts.beta ?? 2,
    lowercase: opts.lowercase ?? false,
    removeWhitespace: opts.removeWhitespace ?? true,
    epsSmoothing: opts.epsSmoothing ?? false,
  };
  if (!Number.isInteger(r.charOrder) || r.charOrder < 0) throw new Error(`${where}: charOrder must be an integer >= 0, got ${r.charOrder}`);
  if (!Number.isInteger(r.wordOrder) || r.wordOrder < 0) throw new Error(`${where}: wordOrder must be an integer >= 0, got ${r.wordOrder}`);
  if (r.charOrder + r.wordOrder === 0) throw new Error(`${where}: charOrder + wordOrder must be at least 1`);
  if (!(Number.isFinite(r.beta) && r.beta >= 0)) throw new Error(`${where}: beta must be a finite number >= 0, got ${r.beta}`);
  return r;
}

const SURROGATE = /[\uD800-\uDFFF]/;

function countNgrams(items: readonly string[], n: number, joiner: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= items.length; i++) {
    const key = n === 1 ? items[i] : items.slice(i, i + n).join(joiner);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** sacrebleu's `CHRF._remove_punctuation` (splits '(hi)' into '(hi' and ')', as sacrebleu does). */
function chrfWords(sent: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sent)) {
    const chars = Array.from(w);
    if (chars.length === 1) {
      out.push(w);
    } else if (ASCII_PUNCTUATION.has(chars[chars.length - 1])) {
      out.push(chars.slice(0, -1).join(''), chars[chars.length - 1]);
    } else if (ASCII_PUNCTUATION.has(chars[0])) {
      out.push(chars[0], chars.slice(1).join(''));
    } else {
      out.push(w);
    }
  }
  return out;
}

interface NgramSet {
  maps: Map<string, number>[];
  sizes: number[];
}

function extractNgrams(sent: string, o: ResolvedChrf): NgramSet {
  const text = o.lowercase ? sent.toLowerCase() : sent;
  const line = o.removeWhitespace ? pyRemoveWhitespace(text) : text;
  const maps: Map<string, number>[] = [];
  const sizes: number[] = [];
  // n-grams are over code points, as Python slices str; without surrogates those are UTF-16 units.
  const astral = SURROGATE.test(line);
  const chars = astral ? Array.from(line) : null;
  const length = chars ? chars.length : line.length;
  for (let n = 1; n <= o.charOrder; n++) {
    if (chars) {
      maps.push(countNgrams(chars, n, ''));
    } else {
      const counts = new Map<string, number>();
      for (let i = 0; i + n <= length; i++) {
        const key = line.substring(i, i + n);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      maps.push(counts);
    }
    sizes.push(Math.max(0, length - n + 1));
  }
  if (o.wordOrder > 0) {
    const words = chrfWords(text);
    for (let n = 1; n <= o.wordOrder; n++) {
      maps.push(countNgrams(words, n, ' '));
      sizes.push(Math.max(0, words.length - n + 1));
    }
  }
  return { maps, sizes };
}

function matchStatistics(hyp: NgramSet, ref: NgramSet): number[] {
  const stats: number[] = [];
  for (let k = 0; k < hyp.maps.length; k++) {
    let match = 0;
    const refMap = ref.maps[k];
    for (const [g, c] of hyp.maps[k]) {
      const r = refMap.get(g);
      if (r !== undefined) match += Math.min(c, r);
    }
    // sacrebleu counts no hypothesis n-grams of an order for which the reference has none.
    stats.push(refMap.size > 0 ? hyp.sizes[k] : 0, ref.sizes[k], match);
  }
  return stats;
}

/** sacrebleu's `CHRF._compute_f_score`. */
export function chrfFromStatistics(stats: readonly number[], beta = 2, epsSmoothing = false): number {
  const order = stats.length / 3;
  const eps = 1e-16;
  const factor = beta ** 2;
  let score = 0;
  let effectiveOrder = 0;
  let avgPrec = 0;
  let avgRec = 0;
  for (let i = 0; i < order; i++) {
    const nHyp = stats[3 * i];
    const nRef = stats[3 * i + 1];
    const nMatch = stats[3 * i + 2];
    const prec = nHyp > 0 ? nMatch / nHyp : eps;
    const rec = nRef > 0 ? nMatch / nRef : eps;
    const denom = factor * prec + rec;
    score += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
    if (nHyp > 0 && nRef > 0) {
      avgPrec += prec;
      avgRec += rec;
      effectiveOrder += 1;
    }
  }
  if (epsSmoothing) return (100 * score) / order;
  if (effectiveOrder === 0) return 0;
  avgPrec /= effectiveOrder;
  avgRec /= effectiveOrder;
  if (avgPrec + avgRec === 0) return 0;
  return (100 * ((1 + factor) * avgPrec * avgRec)) / (factor * avgPrec + avgRec);
}

function segmentStatistics(hyp: string, refs: readonly string[], o: ResolvedChrf, where: string, index: number): number[] {
  if (typeof hyp !== 'string') throw new Error(`${where}: hypothesis ${index} is not a string`);
  if (!Array.isArray(refs) || refs.length === 0) {
    throw new Error(`${where}: hypothesis ${index} has no reference (refs[${index}] must be a non-empty list of strings)`);
  }
  const hypNgrams = extractNgrams(hyp, o);
  let best: number[] = [];
  let bestF = -1;
  for (let j = 0; j < refs.length; j++) {
    if (typeof refs[j] !== 'string') throw new Error(`${where}: reference ${j} of hypothesis ${index} is not a string`);
    const stats = matchStatistics(hypNgrams, extractNgrams(refs[j], o));
    const f = chrfFromStatistics(stats, o.beta, o.epsSmoothing);
    if (f > bestF) {
      bestF = f;
      best = stats;
    }
  }
  return best;
}

/** Corpus chrF / chrF++ (sacrebleu `corpus_chrf`). `refs[i]` are the references of hypothesis i. */
export function chrf(hyps: readonly string[], refs: readonly (readonly string[])[], opts: ChrfOptions = {}): ChrfResult {
  const o = resolve(opts, 'chrf');
  if (hyps.length !== refs.length) {
    throw new Error(`chrf: ${hyps.length} hypotheses but ${refs.length} reference lists (refs[i] is the list of references of hypothesis i)`);
  }
  const total = new Array<number>(3 * (o.charOrder + o.wordOrder)).fill(0);
  for (let i = 0; i < hyps.length; i++) {
    const s = segmentStatistics(hyps[i], refs[i], o, 'chrf', i);
    for (let k = 0; k < total.length; k++) total[k] += s[k];
  }
  return { score: chrfFromStatistics(total, o.beta, o.epsSmoothing), stats: total };
}

/** Sentence chrF / chrF++ (sacrebleu `sentence_chrf`): the best reference's statistics. */
export function sentenceChrf(hyp: string, refs: readonly string[], opts: ChrfOptions = {}): ChrfResult {
  const o = resolve(opts, 'sentenceChrf');
  const stats = segmentStatistics(hyp, refs, o, 'sentenceChrf', 0);
  return { score: chrfFromStatistics(stats, o.beta, o.epsSmoothing), stats };
}
