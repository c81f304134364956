/**
 * Text measurements shared by the quality filters: word tokens, lines, paragraphs, duplicate
 * fractions and n-gram repetition, following the Gopher paper (Rae et al. 2021, appendix A) as
 * implemented in HF datatrove's Gopher filters.
 *
 * N-grams are hashed (two 32-bit polynomial hashes over per-document word ids, packed into one
 * 52-bit number) instead of built as joined strings: same answers up to a ~2^-52 collision chance,
 * and no string allocation per n-gram, which is what makes the repetition rules cheap enough to
 * run on every document.
 */

/** Word-ish tokens: letter/digit runs (with inner apostrophes, hyphens, dots) and punctuation/symbol runs. */
const TOKEN_RE = /[\p{L}\p{N}\p{M}]+(?:['’.\-_][\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]+/gu;
const HAS_WORD_CHAR_RE = /[\p{L}\p{N}]/u;
const HAS_ALPHA_RE = /\p{L}/u;

let lastText: string | null = null;
let lastTokens: string[] = [];

/**
 * Tokens in the manner of NLTK's word_tokenize: words, with punctuation split off as separate tokens.
 * The last answer is memoised: the Gopher quality and repetition filters tokenize the same text in
 * a row. Callers must not mutate the returned array.
 */
export function wordTokens(text: string): readonly string[] {
  if (text !== lastText) {
    lastTokens = text.match(TOKEN_RE) ?? [];
    lastText = text;
  }
  return lastTokens;
}

/** True when a token holds a letter or digit (datatrove's "non-symbol word"). */
export function isWordToken(token: string): boolean {
  return HAS_WORD_CHAR_RE.test(token);
}

export function hasAlpha(token: string): boolean {
  return HAS_ALPHA_RE.test(token);
}

/** Lines as datatrove's repetition rule splits them: on runs of newlines. */
export function splitLinesForRepetition(text: string): string[] {
  return text.split(/\n+/);
}

/** Paragraphs: separated by blank lines (two or more newlines). */
export function splitParagraphs(text: string): string[] {
  return text.trim().split(/\n{2,}/);
}

/** Elements seen before (second and later occurrences) and their total characters. */
export function findDuplicates(items: readonly string[]): { elements: number; chars: number } {
  const seen = new Set<string>();
  let elements = 0;
  let chars = 0;
  for (const it of items) {
    if (seen.has(it)) {
      elements++;
      chars += it.length;
    } else seen.add(it);
  }
  return { elements, chars };
}

/** A sequence of units (word ids or characters) with their character lengths, for n-gram statistics. */
export interface UnitSeq {
  ids: Int32Array;
  /** prefix[i] = total characters of units [0, i). */
  prefix: Float64Array;
  length: number;
}

/** Word tokens (symbols excluded) as ids + lengths; words are case-sensitive as in Gopher. */
export function wordSeq(words: readonly string[]): UnitSeq {
  const vocab = new Map<string, number>();
  const ids = new Int32Array(words.length);
  const prefix = new Float64Array(words.length + 1);
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    let id = vocab.get(w);
    if (id === undefined) {
      id = vocab.size;
      vocab.set(w, id);
    }
    ids[i] = id;
    prefix[i + 1] = (prefix[i] as number) + w.length;
  }
  return { ids, prefix, length: words.length };
}

/** Characters (UTF-16 units) as a unit sequence, each of length 1. */
export function charSeq(chars: string): UnitSeq {
  const ids = new Int32Array(chars.length);
  const prefix = new Float64Array(chars.length + 1);
  for (let i = 0; i < chars.length; i++) {
    ids[i] = chars.charCodeAt(i);
    prefix[i + 1] = i + 1;
  }
  return { ids, prefix, length: chars.length };
}

/**
 * Open-addressing table keyed by a 64-bit n-gram hash (two int32 halves), reused across documents
 * (a generation stamp replaces clearing). Map<number, …> with 52-bit keys would box every key as a
 * heap number; this keeps the repetition rules allocation-free per n-gram.
 */
class NgramTable {
  private hi = new Int32Array(0);
  private lo = new Int32Array(0);
  count = new Int32Array(0);
  first = new Int32Array(0);
  private stamp = new Uint32Array(0);
  private gen = 0;
  private mask = 0;

  /** Empty the table, sized for `n` keys at load ≤ 1/2. */
  reset(n: number): void {
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (cap > this.hi.length) {
      this.hi = new Int32Array(cap);
      this.lo = new Int32Array(cap);
      this.count = new Int32Array(cap);
      this.first = new Int32Array(cap);
      this.stamp = new Uint32Array(cap);
      this.gen = 0;
    }
    this.mask = cap - 1;
    this.gen++;
    if (this.gen === 0xffffffff) {
      this.stamp.fill(0);
      this.gen = 1;
    }
  }

  /** Slot of the key, inserting it (count 0, first = pos) if absent. */
  slot(h1: number, h2: number, pos: number): number {
    let i = (h1 ^ Math.imul(h2, 0x9e3779b1)) & this.mask;
    for (;;) {
      if (this.stamp[i] !== this.gen) {
        this.stamp[i] = this.gen;
        this.hi[i] = h1;
        this.lo[i] = h2;
        this.count[i] = 0;
        this.first[i] = pos;
        return i;
      }
      if (this.hi[i] === h1 && this.lo[i] === h2) return i;
      i = (i + 1) & this.mask;
    }
  }
}

const table = new NgramTable();
let hashA = 0;
let hashB = 0;

/** Hash of units [start, start+n) into hashA/hashB (module state: no tuple allocation per n-gram). */
function ngramHash(ids: Int32Array, start: number, n: number): void {
  let h1 = 0x811c9dc5 | 0;
  let h2 = 0x9747b28c | 0;
  for (let k = start; k < start + n; k++) {
    const id = ids[k] as number;
    h1 = Math.imul(h1 ^ id, 0x01000193);
    h2 = Math.imul(h2 + id + 0x7f4a7c15, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  hashA = h1;
  hashB = h2;
}

/**
 * Characters covered by the most frequent n-gram: its joined length (units separated by
 * `joinerChars`, 1 for a space between words, 0 for characters) times its count; 0 when no n-gram
 * repeats. Ties go to the n-gram seen first (Python's Counter.most_common order).
 */
export function topNgramChars(seq: UnitSeq, n: number, joinerChars: number): number {
  const total = seq.length - n + 1;
  if (total <= 0) return 0;
  table.reset(total);
  let best = 1;
  let bestFirst = -1;
  for (let i = 0; i < total; i++) {
    ngramHash(seq.ids, i, n);
    const s = table.slot(hashA, hashB, i);
    const c = (table.count[s] as number) + 1;
    table.count[s] = c;
    if (c > best) {
      best = c;
      bestFirst = table.first[s] as number;
    } else if (c === best && bestFirst >= 0 && (table.first[s] as number) < bestFirst) {
      bestFirst = table.first[s] as number;
    }
  }
  if (bestFirst < 0) return 0;
  const len = (seq.prefix[bestFirst + n] as number) - (seq.prefix[bestFirst] as number) + joinerChars * (n - 1);
  return len * best;
}

/**
 * Characters in duplicated n-grams, counted without overlap: scanning left to right, an n-gram
 * seen before adds its characters and the scan jumps past it (datatrove's find_all_duplicate).
 */
export function duplicateNgramChars(seq: UnitSeq, n: number): number {
  const total = seq.length - n + 1;
  if (total <= 0) return 0;
  table.reset(total);
  let chars = 0;
  let i = 0;
  while (i < total) {
    ngramHash(seq.ids, i, n);
    const s = table.slot(hashA, hashB, i);
    if ((table.count[s] as number) > 0) {
      chars += (seq.prefix[i + n] as number) - (seq.prefix[i] as number);
      i += n;
    } else {
      table.count[s] = 1;
      i++;
    }
  }
  return chars;
}

/** Han, Hiragana, Katakana, Hangul (and their extension/compatibility blocks). */
const CJK_CHAR_RE = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const CJK_CHAR_GLOBAL_RE = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu;
const LETTER_OR_DIGIT_GLOBAL_RE = /[\p{L}\p{N}]/gu;

export function isCjkChar(ch: string): boolean {
  return CJK_CHAR_RE.test(ch);
}

export function countCjkChars(text: string): number {
  return text.match(CJK_CHAR_GLOBAL_RE)?.length ?? 0;
}

export function countLettersAndDigits(text: string): number {
  return text.match(LETTER_OR_DIGIT_GLOBAL_RE)?.length ?? 0;
}

/** Letters and digits only (punctuation, symbols and spaces removed): the character stream of the CJK n-gram rules. */
export function lettersAndDigits(text: string): string {
  return text.replace(/[^\p{L}\p{N}]+/gu, '');
}

export const CJK_LANGS: ReadonlySet<string> = new Set(['zh', 'ja', 'ko']);

/**
 * Whether word-based rules are meaningless for this document: its language is Chinese, Japanese or
 * Korean when known, else more than half of its letters are CJK (these scripts are not space-separated,
 * so "words" would be whole clauses).
 */
export function isCjkText(text: string, lang?: string): boolean {
  if (lang !== undefined && lang !== 'und') return CJK_LANGS.has(lang);
  // A 2,000-character sample decides: script mix does not change along a document, and this runs per document.
  const sample = text.length > 2000 ? text.slice(0, 2000) : text;
  const letters = countLettersAndDigits(sample);
  return letters > 0 && countCjkChars(sample) / letters > 0.5;
}

/** Bullet characters that start list lines (Gopher's "bullet point" lines). */
export const BULLET_RE = /^\s*[•●○◦▪▫■□‣⁃∙·\-*]/u;
/** Lines ending with an ellipsis: "...", "…" (and the CJK "……"). */
export const ELLIPSIS_END_RE = /(?:\.\.\.|…)\s*$/u;

/** Fractions of lines that start with a bullet / end with an ellipsis (lines split on single newlines). */
export function bulletAndEllipsisLineRatios(text: string): { bullet: number; ellipsis: number } {
  const lines = text.split('\n');
  let bullet = 0;
  let ellipsis = 0;
  for (const line of lines) {
    if (BULLET_RE.test(line)) bullet++;
    if (ELLIPSIS_END_RE.test(line)) ellipsis++;
  }
  return { bullet: bullet / lines.length, ellipsis: ellipsis / lines.length };
}

/** Non-overlapping occurrences of `needle` in `text`. */
export function countOccurrences(text: string, needle: string): number {
  let count = 0;
  let at = text.indexOf(needle);
  while (at >= 0) {
    count++;
    at = text.indexOf(needle, at + needle.length);
  }
  return count;
}
