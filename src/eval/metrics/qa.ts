/**
 * Exact match and token F1 exactly as the official SQuAD (v1.1/v2.0) evaluation scripts:
 * `normalize_answer` lower-cases, drops ASCII punctuation, removes the articles a/an/the as whole
 * words (Unicode word boundaries, as Python's `re` has them), and collapses whitespace.
 */
import { ASCII_PUNCTUATION, pySplit } from './text.js';

// Python's Unicode \w is letters, numbers and '_' (not combining marks).
const ARTICLES = /(?<![\p{L}\p{N}_])(a|an|the)(?![\p{L}\p{N}_])/gu;

/** SQuAD's `normalize_answer`. */
export function normalizeAnswer(s: string): string {
  let text = s.toLowerCase();
  let kept = '';
  for (const ch of text) if (!ASCII_PUNCTUATION.has(ch)) kept += ch;
  text = kept.replace(ARTICLES, ' ');
  return pySplit(text).join(' ');
}

function answerTokens(s: string): string[] {
  return s === '' ? [] : pySplit(normalizeAnswer(s));
}

/** 1 when the normalized strings are equal; with several gold answers, the best of them. */
export function exactMatch(prediction: string, gold: string | readonly string[]): number {
  const golds = typeof gold === 'string' ? [gold] : gold;
  if (golds.length === 0) throw new Error('exactMatch: no gold answers');
  const p = normalizeAnswer(prediction);
  return golds.some((g) => normalizeAnswer(g) === p) ? 1 : 0;
}

/** SQuAD's `compute_f1` over normalized tokens; with several gold answers, the maximum. */
export function squadF1(prediction: string, gold: string | readonly string[]): number {
  const golds = typeof gold === 'string' ? [gold] : gold;
  if (golds.length === 0) throw new Error('squadF1: no gold answers');
  const predToks = answerTokens(prediction);
  let best = 0;
  for (const g of golds) {
    const goldToks = answerTokens(g);
    let f1: number;
    if (goldToks.length === 0 || predToks.length === 0) {
      // No-answer on either side: 1 when both are empty.
      f1 = goldToks.length === predToks.length ? 1 : 0;
    } else {
      const goldCounts = new Map<string, number>();
      for (const t of goldToks) goldCounts.set(t, (goldCounts.get(t) ?? 0) + 1);
      let same = 0;
      const predCounts = new Map<string, number>();
      for (const t of predToks) predCounts.set(t, (predCounts.get(t) ?? 0) + 1);
      for (const [t, c] of predCounts) same += Math.min(c, goldCounts.get(t) ?? 0);
      if (same === 0) {
        f1 = 0;
      } else {
        const precision = same / predToks.length;
        const recall = same / goldToks.length;
        f1 = (2 * precision * recall) / (precision + recall);
      }
    }
    if (f1 > best) best = f1;
  }
  return best;
}
