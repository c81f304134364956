/**
 * Scoring model outputs as lm-evaluation-harness does: regex answer extraction (RegexFilter), exact
 * match (HF evaluate's exact_match with lm-eval's options), and corpus aggregates written as ratios of
 * per-document sums so one bootstrap routine gives every metric's standard error.
 */
import { bitsPerByte, bytePerplexity, type WeightedLoglikelihood, wordPerplexity } from '../metrics/perplexity.js';
import { ASCII_PUNCTUATION, pyStrip } from '../metrics/text.js';
import { SeededRandom } from './prompt.js';
import type { FilterStep, MetricSpec } from './schema.js';

/** A Python `re` pattern as a JS RegExp: leading inline flags such as (?s) become JS flags. */
export function pyRegex(pattern: string, extraFlags = ''): RegExp {
  let p = pattern;
  let flags = extraFlags;
  for (;;) {
    const m = /^\(\?([aiLmsux]+)\)/.exec(p);
    if (m === null) break;
    for (const f of m[1]!) {
      if (f === 'i' || f === 'm' || f === 's') flags += flags.includes(f) ? '' : f;
      else if (f !== 'u') throw new Error(`regex ${JSON.stringify(pattern)}: inline flag (?${f}) has no JavaScript equivalent`);
    }
    p = p.slice(m[0].length);
  }
  try {
    return new RegExp(p, flags);
  } catch (e) {
    throw new Error(`regex ${JSON.stringify(pattern)} is not valid: ${(e as Error).message}`);
  }
}

/** Python's re.findall: whole matches without groups, group 1 with one group, tuples with several. */
export function findAll(re: RegExp, text: string): (string | string[])[] {
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
  const out: (string | string[])[] = [];
  for (const m of text.matchAll(g)) {
    if (m.length === 1) out.push(m[0]);
    else if (m.length === 2) out.push(m[1] ?? '');
    else out.push(m.slice(1).map((s) => s ?? ''));
  }
  return out;
}

/** lm-eval's RegexFilter on one response. */
export function regexExtract(text: string, pattern: string, groupSelect: number, fallback: string): string {
  const matches = findAll(pyRegex(pattern), text);
  if (matches.length === 0) return fallback;
  const i = groupSelect < 0 ? matches.length + groupSelect : groupSelect;
  let match = matches[i];
  if (match === undefined) return fallback;
  if (Array.isArray(match)) {
    const nonEmpty = match.filter((s) => s !== '');
    if (nonEmpty.length === 0) return fallback;
    match = nonEmpty[0]!;
  }
  return pyStrip(match);
}

export function applyFilter(text: string, steps: readonly FilterStep[]): string {
  let s = text;
  for (const step of steps) {
    if (step.type === 'regex') s = regexExtract(s, step.pattern, step.groupSelect, step.fallback);
    else if (step.type === 'strip') s = pyStrip(s);
    else s = s.toLowerCase();
  }
  return s;
}

/**
 * lm-eval's exact_match (HF evaluate's) for one pair: regexes removed (all matches), then case, then
 * punctuation. Not SQuAD's exact match (metrics/qa.ts), which also drops articles.
 */
export function exactMatchLmEval(prediction: string, reference: string, opts: Pick<MetricSpec, 'ignoreCase' | 'ignorePunctuation' | 'regexesToIgnore'>): number {
  let p = prediction;
  let r = reference;
  for (const pattern of opts.regexesToIgnore) {
    const re = pyRegex(pattern, 'g');
    p = p.replace(re, '');
    r = r.replace(re, '');
  }
  if (opts.ignoreCase) {
    p = p.toLowerCase();
    r = r.toLowerCase();
  }
  if (opts.ignorePunctuation) {
    const drop = (s: string): string => [...s].filter((c) => !ASCII_PUNCTUATION.has(c)).join('');
    p = drop(p);
    r = drop(r);
  }
  return p === r ? 1 : 0;
}

/**
 * How a metric turns per-document (numerator, denominator) pairs into one number:
 *   mean              Σnum / Σden, one (score, 1) per document
 *   word_perplexity   exp(−Σloglik / Σwords)   (lm-eval's weighted_perplexity)
 *   byte_perplexity   exp(−Σloglik / Σbytes)
 *   bits_per_byte     −Σloglik / Σbytes / ln 2
 *   token_perplexity  exp(−Σloglik / Σtokens)
 */
export type Aggregation = 'mean' | 'word_perplexity' | 'byte_perplexity' | 'bits_per_byte' | 'token_perplexity';

/** One metric's per-document contributions. */
export interface MetricItems {
  aggregation: Aggregation;
  num: number[];
  den: number[];
}

function weighted(num: readonly number[], den: readonly number[], idx: readonly number[] | null): WeightedLoglikelihood[] {
  return (idx ?? num.map((_, i) => i)).map((i) => ({ loglikelihood: num[i]!, weight: den[i]! }));
}

/** The aggregate over documents `idx` (all when null). */
export function aggregateItems(items: MetricItems, idx: readonly number[] | null = null): number {
  const { num, den } = items;
  switch (items.aggregation) {
    case 'mean': {
      let s = 0;
      let d = 0;
      for (const i of idx ?? num.keys()) {
        s += num[i]!;
        d += den[i]!;
      }
      return d === 0 ? Number.NaN : s / d;
    }
    case 'word_perplexity':
      return wordPerplexity(weighted(num, den, idx));
    case 'byte_perplexity':
      return bytePerplexity(weighted(num, den, idx));
    case 'bits_per_byte':
      return bitsPerByte(weighted(num, den, idx));
    case 'token_perplexity':
      // The same weighted perplexity, per token.
      return wordPerplexity(weighted(num, den, idx));
  }
}

/**
 * Bootstrap standard error: the standard deviation (n − 1) of the aggregate over `iters` resamples of
 * the documents with replacement (lm-eval's bootstrap_stderr, with a seeded generator). NaN for
 * fewer than two documents.
 */
export function bootstrapStderr(items: MetricItems, iters = 1000, seed = 1234): number {
  const n = items.num.length;
  if (n < 2) return Number.NaN;
  const rnd = new SeededRandom(seed);
  const values: number[] = [];
  const idx = new Array<number>(n);
  for (let it = 0; it < iters; it++) {
    for (let j = 0; j < n; j++) idx[j] = rnd.below(n);
    const v = aggregateItems(items, idx);
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length < 2) return Number.NaN;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
  return Math.sqrt(variance);
}
