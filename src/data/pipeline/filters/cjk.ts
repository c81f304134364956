/**
 * Quality rules for Chinese/Japanese/Korean documents, where Gopher's word-based rules do not
 * apply (no spaces between words). Each Gopher rule gets a character-count counterpart:
 *  - length bounds in characters: Chinese averages about 1.5 characters per word, so Gopher's 50 and
 *    100,000 words become 75 and 150,000 CJK characters;
 *  - "mostly CJK": at least half of the letters and digits are CJK characters (else the document is
 *    mislabelled or mostly Latin markup and the Latin-script rules should judge it);
 *  - '#' and ellipsis per CJK character ≤ 0.1 / 1.5 (the per-word bound rescaled);
 *  - bullet and ellipsis line ratios as in Gopher;
 *  - at least one sentence-ending mark (。！？!?；…) per 300 characters: keyword lists and menus have none;
 *  - repetition: Gopher's duplicate line/paragraph rules unchanged, and its word n-gram rules on
 *    character n-grams of the letters/digits (punctuation and spaces removed, as Gopher removes
 *    them from words), with n scaled by 1.5 (word 2/3/4-grams → character 3/5/6-grams; duplicated
 *    word 5–10-grams → character 8–15-grams).
 * Non-CJK documents pass untouched (Gopher and C4 judge them).
 */
import type { Doc, DocFilter } from '../types.js';
import { lineParagraphRepetition } from './gopher.js';
import { bulletAndEllipsisLineRatios, charNgramRepetition, countCjkChars, countLettersAndDigits, countOccurrences, isCjkText } from './text-stats.js';

export interface CjkOptions {
  minCjkChars?: number | null;
  maxCjkChars?: number | null;
  /** Minimum CJK share of letters+digits. */
  minCjkRatio?: number | null;
  /** Max ('#' count) / CJK chars and max (ellipsis count) / CJK chars. */
  maxSymbolCharRatio?: number | null;
  maxBulletLinesRatio?: number | null;
  maxEllipsisLinesRatio?: number | null;
  /** Max CJK characters per sentence-ending mark. */
  maxCharsPerSentence?: number | null;
  dupLineFrac?: number | null;
  dupParaFrac?: number | null;
  dupLineCharFrac?: number | null;
  dupParaCharFrac?: number | null;
  topCharNgrams?: ReadonlyArray<readonly [number, number]>;
  dupCharNgrams?: ReadonlyArray<readonly [number, number]>;
}

export const CJK_TOP_CHAR_NGRAMS: ReadonlyArray<readonly [number, number]> = [
  [3, 0.2],
  [5, 0.18],
  [6, 0.16],
];
export const CJK_DUP_CHAR_NGRAMS: ReadonlyArray<readonly [number, number]> = [
  [8, 0.15],
  [9, 0.14],
  [11, 0.13],
  [12, 0.12],
  [14, 0.11],
  [15, 0.1],
];

const SENTENCE_MARK_RE = /[。！？!?；;…]+/g;

function pick<T>(v: T | null | undefined, d: T): T | null {
  return v === undefined ? d : v;
}

/**
 * The CJK rules. Drop rules: cjk_short_doc, cjk_long_doc, cjk_low_cjk_ratio, cjk_too_many_hashes,
 * cjk_too_many_ellipsis, cjk_too_many_bullets, cjk_too_many_end_ellipsis, cjk_few_sentence_marks,
 * cjk_dup_para_frac, cjk_dup_para_char_frac, cjk_dup_line_frac, cjk_dup_line_char_frac,
 * cjk_top_<n>_char_gram, cjk_duplicated_<n>_char_grams.
 */
export function cjkFilter(opts: CjkOptions = {}): DocFilter {
  const minChars = pick(opts.minCjkChars, 75);
  const maxChars = pick(opts.maxCjkChars, 150_000);
  const minRatio = pick(opts.minCjkRatio, 0.5);
  const maxSymbol = pick(opts.maxSymbolCharRatio, 0.1 / 1.5);
  const maxBullet = pick(opts.maxBulletLinesRatio, 0.9);
  const maxEllipsisLines = pick(opts.maxEllipsisLinesRatio, 0.3);
  const maxPerSentence = pick(opts.maxCharsPerSentence, 300);
  const limits = {
    dupLineFrac: pick(opts.dupLineFrac, 0.3),
    dupParaFrac: pick(opts.dupParaFrac, 0.3),
    dupLineCharFrac: pick(opts.dupLineCharFrac, 0.2),
    dupParaCharFrac: pick(opts.dupParaCharFrac, 0.2),
  };
  const top = opts.topCharNgrams ?? CJK_TOP_CHAR_NGRAMS;
  const dup = opts.dupCharNgrams ?? CJK_DUP_CHAR_NGRAMS;
  for (const [k, v] of Object.entries({ minRatio, maxBullet, maxEllipsisLines, ...limits })) {
    if (v !== null && !(v >= 0 && v <= 1)) throw new Error(`cjk: ${k} must be in [0, 1] or null, got ${v}`);
  }
  for (const [n, frac] of [...top, ...dup]) {
    if (!(Number.isInteger(n) && n >= 1) || !(frac >= 0 && frac <= 1)) throw new Error(`cjk: bad n-gram rule [${n}, ${frac}]`);
  }
  return {
    name: 'cjk',
    check(doc: Doc): string | null {
      const text = doc.text;
      if (!isCjkText(text, doc.lang)) return null;
      const cjk = countCjkChars(text);
      // Ratio first: a "zh" page that is mostly Latin text is mislabelled, whatever its length.
      if (minRatio !== null && cjk / Math.max(1, countLettersAndDigits(text)) < minRatio) return 'cjk_low_cjk_ratio';
      if (minChars !== null && cjk < minChars) return 'cjk_short_doc';
      if (maxChars !== null && cjk > maxChars) return 'cjk_long_doc';
      if (cjk === 0) return 'cjk_short_doc';
      if (maxSymbol !== null) {
        if (countOccurrences(text, '#') / cjk > maxSymbol) return 'cjk_too_many_hashes';
        if ((countOccurrences(text, '...') + countOccurrences(text, '…')) / cjk > maxSymbol) return 'cjk_too_many_ellipsis';
      }
      const lineRatios = bulletAndEllipsisLineRatios(text);
      if (maxBullet !== null && lineRatios.bullet > maxBullet) return 'cjk_too_many_bullets';
      if (maxEllipsisLines !== null && lineRatios.ellipsis > maxEllipsisLines) return 'cjk_too_many_end_ellipsis';
      if (maxPerSentence !== null) {
        const marks = text.match(SENTENCE_MARK_RE)?.length ?? 0;
        if (cjk / Math.max(1, marks) > maxPerSentence) return 'cjk_few_sentence_marks';
      }
      const lp = lineParagraphRepetition(text, 'cjk', limits);
      if (lp) return lp;
      const hit = charNgramRepetition(text, top, dup);
      if (hit !== null) return hit[0] === 'top' ? `cjk_top_${hit[1]}_char_gram` : `cjk_duplicated_${hit[1]}_char_grams`;
      return null;
    },
  };
}
