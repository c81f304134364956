/**
 * Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models", appendix A.1.1),
 * with the thresholds of the paper and of HF datatrove's GopherQualityFilter/GopherRepetitionFilter.
 *
 * Word-based, so they are skipped for Chinese/Japanese/Korean documents (no spaces between words:
 * a "word" would be a whole clause and every CJK page would fail the length rules); the CJK filter
 * (cjk.ts) applies the character-count equivalents to those.
 * Every threshold can be set to null to switch that rule off.
 */
import type { Doc, DocFilter } from '../types.js';
import {
  bulletAndEllipsisLineRatios,
  countOccurrences,
  duplicateLines,
  duplicateParagraphs,
  isCjkText,
  scanWords,
  wordNgramRepetition,
} from './text-stats.js';

export const GOPHER_STOP_WORDS: readonly string[] = ['the', 'be', 'to', 'of', 'and', 'that', 'have', 'with'];

export interface GopherQualityOptions {
  minWords?: number | null;
  maxWords?: number | null;
  minMeanWordLength?: number | null;
  maxMeanWordLength?: number | null;
  /** Max ratio of '#' to words, and separately of ellipses ("..." / "…") to words. */
  maxSymbolWordRatio?: number | null;
  maxBulletLinesRatio?: number | null;
  maxEllipsisLinesRatio?: number | null;
  /** At least this fraction of tokens must contain a letter. */
  minAlphaWordsRatio?: number | null;
  minStopWords?: number | null;
  stopWords?: readonly string[];
  /** Leave CJK documents to the CJK filter (default true). */
  skipCjk?: boolean;
}

const QUALITY_DEFAULTS = {
  minWords: 50,
  maxWords: 100_000,
  minMeanWordLength: 3,
  maxMeanWordLength: 10,
  maxSymbolWordRatio: 0.1,
  maxBulletLinesRatio: 0.9,
  maxEllipsisLinesRatio: 0.3,
  minAlphaWordsRatio: 0.8,
  minStopWords: 2,
} as const;

function pick<T>(v: T | null | undefined, d: T): T | null {
  return v === undefined ? d : v;
}

function checkFraction(filter: string, name: string, v: number | null): void {
  if (v !== null && !(v >= 0 && v <= 1)) throw new Error(`${filter}: ${name} must be in [0, 1] or null, got ${v}`);
}

/**
 * The Gopher quality rules. Rule names in drop stats: gopher_short_doc, gopher_long_doc,
 * gopher_below_avg_word_len, gopher_above_avg_word_len, gopher_too_many_hashes,
 * gopher_too_many_ellipsis, gopher_too_many_bullets, gopher_too_many_end_ellipsis,
 * gopher_below_alpha_threshold, gopher_few_stop_words.
 */
export function gopherQualityFilter(opts: GopherQualityOptions = {}): DocFilter {
  const minWords = pick(opts.minWords, QUALITY_DEFAULTS.minWords);
  const maxWords = pick(opts.maxWords, QUALITY_DEFAULTS.maxWords);
  const minLen = pick(opts.minMeanWordLength, QUALITY_DEFAULTS.minMeanWordLength);
  const maxLen = pick(opts.maxMeanWordLength, QUALITY_DEFAULTS.maxMeanWordLength);
  const maxSymbol = pick(opts.maxSymbolWordRatio, QUALITY_DEFAULTS.maxSymbolWordRatio);
  const maxBullet = pick(opts.maxBulletLinesRatio, QUALITY_DEFAULTS.maxBulletLinesRatio);
  const maxEllipsisLines = pick(opts.maxEllipsisLinesRatio, QUALITY_DEFAULTS.maxEllipsisLinesRatio);
  const minAlpha = pick(opts.minAlphaWordsRatio, QUALITY_DEFAULTS.minAlphaWordsRatio);
  const minStop = pick(opts.minStopWords, QUALITY_DEFAULTS.minStopWords);
  // Stop words match case-insensitively: "The" opening a sentence is the same stop word.
  const stopWords = new Set((opts.stopWords ?? GOPHER_STOP_WORDS).map((w) => w.toLowerCase()));
  let maxStopLength = 0;
  for (const w of stopWords) maxStopLength = Math.max(maxStopLength, w.length);
  const skipCjk = opts.skipCjk ?? true;
  for (const [k, v] of [
    ['maxBulletLinesRatio', maxBullet],
    ['maxEllipsisLinesRatio', maxEllipsisLines],
    ['minAlphaWordsRatio', minAlpha],
  ] as const) {
    checkFraction('gopher', k, v);
  }
  if (minWords !== null && maxWords !== null && minWords > maxWords) {
    throw new Error(`gopher: minWords (${minWords}) is larger than maxWords (${maxWords})`);
  }

  return {
    name: 'gopher',
    check(doc: Doc): string | null {
      const text = doc.text;
      if (skipCjk && isCjkText(text, doc.lang)) return null;
      // One scan gives the word spans and the whitespace-chunk counts (no string per token).
      const scan = scanWords(text);
      const nWords = scan.count;
      if (minWords !== null && nWords < minWords) return 'gopher_short_doc';
      if (maxWords !== null && nWords > maxWords) return 'gopher_long_doc';
      if (nWords === 0) return 'gopher_short_doc';
      const meanLen = scan.chars / nWords;
      if (minLen !== null && meanLen < minLen) return 'gopher_below_avg_word_len';
      if (maxLen !== null && meanLen > maxLen) return 'gopher_above_avg_word_len';
      if (maxSymbol !== null) {
        if (countOccurrences(text, '#') / nWords > maxSymbol) return 'gopher_too_many_hashes';
        if ((countOccurrences(text, '...') + countOccurrences(text, '…')) / nWords > maxSymbol) return 'gopher_too_many_ellipsis';
      }
      const lineRatios = bulletAndEllipsisLineRatios(text);
      if (maxBullet !== null && lineRatios.bullet > maxBullet) return 'gopher_too_many_bullets';
      if (maxEllipsisLines !== null && lineRatios.ellipsis > maxEllipsisLines) return 'gopher_too_many_end_ellipsis';
      if (minAlpha !== null) {
        // Whitespace-separated words, as in the Gopher paper: with punctuation split off (NLTK-style
        // tokens) every comma would count as a word without letters, and verse or dialogue — a
        // punctuation mark every four words — would fail although every word has letters.
        if (scan.spacedAlpha / scan.spaced < minAlpha) return 'gopher_below_alpha_threshold';
      }
      if (minStop !== null) {
        let stops = 0;
        for (let w = 0; w < scan.count; w++) {
          const start = scan.starts[w]!;
          const end = scan.ends[w]!;
          // Lower-casing never shortens a string, so a longer word cannot be a stop word.
          if (end - start > maxStopLength) continue;
          if (stopWords.has(text.slice(start, end).toLowerCase()) && ++stops >= minStop) break;
        }
        if (stops < minStop) return 'gopher_few_stop_words';
      }
      return null;
    },
  };
}

export interface GopherRepetitionOptions {
  /** Max fraction of lines that duplicate an earlier line. */
  dupLineFrac?: number | null;
  /** Max fraction of paragraphs that duplicate an earlier paragraph. */
  dupParaFrac?: number | null;
  /** Max fraction of characters in duplicated lines. */
  dupLineCharFrac?: number | null;
  /** Max fraction of characters in duplicated paragraphs. */
  dupParaCharFrac?: number | null;
  /** [n, max fraction of characters covered by the most frequent word n-gram]. */
  topNgrams?: ReadonlyArray<readonly [number, number]>;
  /** [n, max fraction of characters in duplicated word n-grams]. */
  dupNgrams?: ReadonlyArray<readonly [number, number]>;
  skipCjk?: boolean;
}

export const GOPHER_TOP_NGRAMS: ReadonlyArray<readonly [number, number]> = [
  [2, 0.2],
  [3, 0.18],
  [4, 0.16],
];
export const GOPHER_DUP_NGRAMS: ReadonlyArray<readonly [number, number]> = [
  [5, 0.15],
  [6, 0.14],
  [7, 0.13],
  [8, 0.12],
  [9, 0.11],
  [10, 0.1],
];

/** Shared by the Gopher and CJK repetition rules: duplicate lines/paragraphs by count and by characters. */
export function lineParagraphRepetition(
  text: string,
  prefix: string,
  limits: { dupLineFrac: number | null; dupParaFrac: number | null; dupLineCharFrac: number | null; dupParaCharFrac: number | null },
): string | null {
  const len = text.length;
  if (len === 0) return null;
  // The counts of findDuplicates over splitParagraphs / splitLinesForRepetition, without the strings.
  const paraDup = duplicateParagraphs(text);
  if (limits.dupParaFrac !== null && paraDup.elements / paraDup.count > limits.dupParaFrac) return `${prefix}_dup_para_frac`;
  if (limits.dupParaCharFrac !== null && paraDup.chars / len > limits.dupParaCharFrac) return `${prefix}_dup_para_char_frac`;
  const lineDup = duplicateLines(text);
  if (limits.dupLineFrac !== null && lineDup.elements / lineDup.count > limits.dupLineFrac) return `${prefix}_dup_line_frac`;
  if (limits.dupLineCharFrac !== null && lineDup.chars / len > limits.dupLineCharFrac) return `${prefix}_dup_line_char_frac`;
  return null;
}

function checkNgramSpec(filter: string, name: string, spec: ReadonlyArray<readonly [number, number]>): void {
  for (const [n, frac] of spec) {
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`${filter}: ${name} n must be a positive integer, got ${n}`);
    checkFraction(filter, `${name}[${n}]`, frac);
  }
}

/**
 * The Gopher repetition rules. Rule names: gopher_dup_para_frac, gopher_dup_para_char_frac,
 * gopher_dup_line_frac, gopher_dup_line_char_frac, gopher_top_<n>_gram, gopher_duplicated_<n>_n_grams.
 */
export function gopherRepetitionFilter(opts: GopherRepetitionOptions = {}): DocFilter {
  const limits = {
    dupLineFrac: pick(opts.dupLineFrac, 0.3),
    dupParaFrac: pick(opts.dupParaFrac, 0.3),
    dupLineCharFrac: pick(opts.dupLineCharFrac, 0.2),
    dupParaCharFrac: pick(opts.dupParaCharFrac, 0.2),
  };
  for (const [k, v] of Object.entries(limits)) checkFraction('gopher-repetition', k, v);
  const top = opts.topNgrams ?? GOPHER_TOP_NGRAMS;
  const dup = opts.dupNgrams ?? GOPHER_DUP_NGRAMS;
  checkNgramSpec('gopher-repetition', 'topNgrams', top);
  checkNgramSpec('gopher-repetition', 'dupNgrams', dup);
  const skipCjk = opts.skipCjk ?? true;
  return {
    name: 'gopher_repetition',
    check(doc: Doc): string | null {
      const text = doc.text;
      if (skipCjk && isCjkText(text, doc.lang)) return null;
      const lp = lineParagraphRepetition(text, 'gopher', limits);
      if (lp) return lp;
      const hit = wordNgramRepetition(text, scanWords(text), top, dup);
      if (hit === null) return null;
      return hit[0] === 'top' ? `gopher_top_${hit[1]}_gram` : `gopher_duplicated_${hit[1]}_n_grams`;
    },
  };
}
