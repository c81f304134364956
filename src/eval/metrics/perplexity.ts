/**
 * Perplexity-family metrics with lm-evaluation-harness's definitions, as pure functions of
 * log-likelihoods (natural log):
 * - token perplexity: exp(-mean token log-prob);
 * - word_perplexity: exp(-Σ ll / Σ words), words = len(re.split(r"\s+", doc));
 * - byte_perplexity: exp(-Σ ll / Σ UTF-8 bytes); bits_per_byte: -Σ ll / Σ bytes / ln 2;
 * and lm-eval's rolling windows (`get_rolling_token_windows` + `make_disjoint_window`), which
 * score a long text with every token predicted exactly once.
 */
import { pyRegexSplitWhitespace } from './text.js';

function checkFinite(values: readonly number[], where: string): void {
  if (values.length === 0) throw new Error(`${where}: no values`);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]) || values[i] > 0) throw new Error(`${where}: log-probability ${i} is ${values[i]} (must be finite and <= 0)`);
  }
}

/** exp(-mean(token log-probs)). */
export function tokenPerplexity(tokenLogprobs: readonly number[]): number {
  checkFinite(tokenLogprobs, 'tokenPerplexity');
  let sum = 0;
  for (const x of tokenLogprobs) sum += x;
  return Math.exp(-sum / tokenLogprobs.length);
}

/** lm-eval's `perplexity` aggregation: exp(-mean of per-document log-likelihoods). */
export function perplexity(loglikelihoods: readonly number[]): number {
  checkFinite(loglikelihoods, 'perplexity');
  let sum = 0;
  for (const x of loglikelihoods) sum += x;
  return Math.exp(-sum / loglikelihoods.length);
}

/** lm-eval's `count_words`: len(re.split(r"\s+", doc)) (leading/trailing whitespace adds a piece). */
export function countWords(doc: string): number {
  return pyRegexSplitWhitespace(doc).length;
}

/** lm-eval's `count_bytes`: UTF-8 length. */
export function countBytes(doc: string): number {
  return Buffer.byteLength(doc, 'utf8');
}

/** One document's total log-likelihood and its unit count (words or bytes). */
export interface WeightedLoglikelihood {
  loglikelihood: number;
  weight: number;
}

function weightedMean(items: readonly WeightedLoglikelihood[], where: string): number {
  if (items.length === 0) throw new Error(`${where}: no documents`);
  let ll = 0;
  let w = 0;
  for (const [i, it] of items.entries()) {
    if (!Number.isFinite(it.loglikelihood)) throw new Error(`${where}: document ${i} has log-likelihood ${it.loglikelihood}`);
    if (!(it.weight >= 0)) throw new Error(`${where}: document ${i} has weight ${it.weight}`);
    ll += it.loglikelihood;
    w += it.weight;
  }
  if (w === 0) throw new Error(`${where}: total weight is 0`);
  return ll / w;
}

/** lm-eval `word_perplexity`: items are (document log-likelihood, countWords(document)). */
export function wordPerplexity(items: readonly WeightedLoglikelihood[]): number {
  return Math.exp(-weightedMean(items, 'wordPerplexity'));
}

/** lm-eval `byte_perplexity`: items are (document log-likelihood, countBytes(document)). */
export function bytePerplexity(items: readonly WeightedLoglikelihood[]): number {
  return Math.exp(-weightedMean(items, 'bytePerplexity'));
}

/** lm-eval `bits_per_byte`: items are (document log-likelihood, countBytes(document)). */
export function bitsPerByte(items: readonly WeightedLoglikelihood[]): number {
  return -weightedMean(items, 'bitsPerByte') / Math.LN2;
}

/** A model call: feed `context`, score `continuation` (each continuation token predicted once). */
export interface TokenWindow {
  context: number[];
  continuation: number[];
}

/**
 * lm-eval's `get_rolling_token_windows(tokens, prefixToken, maxSeqLen, contextLen)`: the first
 * window predicts up to maxSeqLen tokens after `prefixToken`; later windows predict at most
 * maxSeqLen - contextLen + 1 new tokens, each seeing up to maxSeqLen tokens of input.
 * Returns (input, predicted targets) pairs as lm-eval yields them, before make_disjoint_window.
 */
export function rollingTokenWindows(tokens: readonly number[], prefixToken: number, maxSeqLen: number, contextLen = 1): TokenWindow[] {
  if (!Number.isInteger(maxSeqLen) || !Number.isInteger(contextLen) || contextLen < 1 || contextLen > maxSeqLen) {
    throw new Error(`rollingTokenWindows: need integers 1 <= contextLen (${contextLen}) <= maxSeqLen (${maxSeqLen})`);
  }
  const out: TokenWindow[] = [];
  if (tokens.length === 0) return out;
  const predLen = maxSeqLen - contextLen + 1;
  const firstLen = Math.min(maxSeqLen, tokens.length);
  out.push({ context: [prefixToken, ...tokens.slice(0, firstLen - 1)], continuation: tokens.slice(0, firstLen) });
  let predicted = firstLen;
  while (predicted < tokens.length) {
    const windowPredLen = Math.min(tokens.length - predicted, predLen);
    const windowEnd = predicted + windowPredLen;
    out.push({
      context: tokens.slice(windowEnd - maxSeqLen - 1, windowEnd - 1),
      continuation: tokens.slice(windowEnd - windowPredLen, windowEnd),
    });
    predicted += windowPredLen;
  }
  return out;
}

/** lm-eval's `make_disjoint_window`: trim the input so it ends where the continuation begins. */
export function makeDisjointWindow(w: TokenWindow): TokenWindow {
  return { context: w.context.slice(0, w.context.length - (w.continuation.length - 1)), continuation: w.continuation };
}

/**
 * Total log-likelihood of a long token sequence the way lm-eval's `loglikelihood_rolling` gets it:
 * disjoint rolling windows (context length 1), each scored by `scoreWindow`, which returns the
 * log-probability of every continuation token given the context and the continuation's prefix.
 */
export function rollingLoglikelihood(
  tokens: readonly number[],
  opts: { prefixToken: number; maxSeqLen: number; contextLen?: number },
  scoreWindow: (context: readonly number[], continuation: readonly number[]) => readonly number[],
): { loglikelihood: number; tokenLogprobs: number[] } {
  const tokenLogprobs: number[] = [];
  let total = 0;
  for (const w of rollingTokenWindows(tokens, opts.prefixToken, opts.maxSeqLen, opts.contextLen ?? 1).map(makeDisjointWindow)) {
    const lps = scoreWindow(w.context, w.continuation);
    if (lps.length !== w.continuation.length) {
      throw new Error(`rollingLoglikelihood: scoreWindow returned ${lps.length} log-probs for ${w.continuation.length} continuation tokens`);
    }
    for (const lp of lps) {
      tokenLogprobs.push(lp);
      total += lp;
    }
  }
  return { loglikelihood: total, tokenLogprobs };
}
