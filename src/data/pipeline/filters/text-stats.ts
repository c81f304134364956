/**
 * Text measurements shared by the quality filters: word tokens, lines, paragraphs, duplicate
 * fractions and n-gram repetition, following the Gopher paper (Rae et al. 2021, appendix A) as
 * implemented in HF datatrove's Gopher filters.
 *
 * N-grams are hashed (two 32-bit polynomial hashes over per-document word ids, from prefix hashes
 * so every n costs O(1) per n-gram) instead of built as joined strings: same answers up to a ~2^-64
 * collision chance, and no string allocation per n-gram. The Gopher rules get their words from
 * {@link scanWords}, one pass over the text with per-character class tables (the same answers as
 * the regexes, which fill the tables), instead of a regex match array and a string per token.
 */

import { nativeAddonExports } from '../../../tensor/backend/native.js';

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

let lastWordsText: string | null = null;
let lastWords: string[] = [];

/**
 * The word tokens of {@link wordTokens} that hold a letter or digit, memoised like it (the Gopher
 * quality and repetition filters both need them). Callers must not mutate the returned array.
 */
export function wordOnlyTokens(text: string): readonly string[] {
  if (text !== lastWordsText) {
    const tokens = wordTokens(text);
    const words: string[] = [];
    for (const t of tokens) {
      const c = t.charCodeAt(0);
      // A token starting with an ASCII non-alphanumeric is a symbol run (the word alternative of TOKEN_RE starts with a letter, digit or mark).
      if (c < 0x80) {
        if ((c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a)) words.push(t);
      } else if (HAS_WORD_CHAR_RE.test(t)) words.push(t);
    }
    lastWords = words;
    lastWordsText = text;
  }
  return lastWords;
}

/**
 * Character classes for the fused word scan, per UTF-16 unit, filled lazily from the very regexes
 * the token rules are written with (so the scan answers exactly as they do): LNM = [\p{L}\p{N}\p{M}]
 * (TOKEN_RE's word characters), LN = [\p{L}\p{N}] (a word token), L = \p{L} (alpha), SPACE = \s.
 */
const C_LNM = 1;
const C_LN = 2;
const C_L = 4;
const C_SPACE = 8;
/** Han, Hiragana, Katakana, Hangul (CJK_CHAR_RE). */
const C_CJK = 16;
const C_KNOWN = 128;
const classTable = new Uint8Array(0x10000);
const astralClasses = new Map<number, number>();
const LNM_RE = /^[\p{L}\p{N}\p{M}]$/u;
const SPACE_RE = /^\s$/u;

function classOfString(ch: string): number {
  return (
    (LNM_RE.test(ch) ? C_LNM : 0) | (HAS_WORD_CHAR_RE.test(ch) ? C_LN : 0) | (HAS_ALPHA_RE.test(ch) ? C_L : 0) | (SPACE_RE.test(ch) ? C_SPACE : 0) | (CJK_CHAR_RE.test(ch) ? C_CJK : 0) | C_KNOWN
  );
}

/** Class bits of the code point at `i` (a pair when a valid one starts there), and its width in `scanWidth`. */
let scanWidth = 1;
function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) {
      scanWidth = 2;
      const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
      let v = astralClasses.get(cp);
      if (v === undefined) {
        v = classOfString(String.fromCodePoint(cp));
        astralClasses.set(cp, v);
      }
      return v;
    }
  }
  scanWidth = 1;
  let v = classTable[c] as number;
  if (v === 0) {
    v = classOfString(String.fromCharCode(c));
    classTable[c] = v;
  }
  return v;
}

/** The word tokens of a text (spans into it) and whitespace-separated chunk counts, from one scan. */
export interface WordScan {
  /** Word tokens: those of {@link wordTokens} holding a letter or digit (same as {@link wordOnlyTokens}). */
  count: number;
  starts: Int32Array;
  ends: Int32Array;
  /** Total UTF-16 units of the word tokens. */
  chars: number;
  /** Non-empty chunks of text.split(/\s+/), and how many of them hold a letter. */
  spaced: number;
  spacedAlpha: number;
}

let lastScanText: string | null = null;
let lastScan: WordScan = { count: 0, starts: new Int32Array(0), ends: new Int32Array(0), chars: 0, spaced: 0, spacedAlpha: 0 };
let scanStarts = new Int32Array(1024);
let scanEnds = new Int32Array(1024);
const scanStats = new Int32Array(4);
const SURROGATE_RE = /[\ud800-\udfff]/;
let lastSurrogateText: string | null = null;
let lastHasSurrogates = false;

/**
 * Whether the text holds a surrogate unit (the native kernels take BMP text only). The regex beats
 * a charCodeAt loop several times over; memoised, as the word scan and the n-gram rules ask in a row.
 */
function hasSurrogates(text: string): boolean {
  if (text !== lastSurrogateText) {
    lastHasSurrogates = SURROGATE_RE.test(text);
    lastSurrogateText = text;
  }
  return lastHasSurrogates;
}

interface NativeText {
  textWordScan(text: string, classes: Uint8Array, starts: Int32Array, ends: Int32Array, stats: Int32Array): number;
  ngramRepetition(text: string, starts: Int32Array, ends: Int32Array, count: number, ns: Int32Array, fracs: Float64Array, dup: Uint8Array): number;
  charNgramRepetition(text: string, classes: Uint8Array, ns: Int32Array, fracs: Float64Array, dup: Uint8Array): number;
  /** Every BMP unit's class bits, filled from the regexes once (the native scan reads it). */
  classes: Uint8Array;
}
let nativeTextCache: NativeText | null | undefined;

/**
 * The native word scan and n-gram repetition kernels (native/text.cc), or null without the addon.
 * Off when WEFT_NATIVE_TEXT=0 (tests use it to compare both paths).
 */
function nativeText(): NativeText | null {
  if (nativeTextCache === undefined) {
    nativeTextCache = null;
    const a = nativeAddonExports();
    const fns = ['textWordScan', 'ngramRepetition', 'charNgramRepetition'] as const;
    if (a !== null && fns.every((f) => typeof a[f] === 'function') && process.env.WEFT_NATIVE_TEXT !== '0') {
      for (let c = 0; c < 0x10000; c++) if (classTable[c] === 0) classTable[c] = classOfString(String.fromCharCode(c));
      nativeTextCache = {
        textWordScan: a.textWordScan as NativeText['textWordScan'],
        ngramRepetition: a.ngramRepetition as NativeText['ngramRepetition'],
        charNgramRepetition: a.charNgramRepetition as NativeText['charNgramRepetition'],
        classes: classTable,
      };
    }
  }
  return nativeTextCache;
}

/** Switches the native kernels off (false) or back on; for tests comparing the two paths. */
export function setNativeTextKernels(on: boolean): void {
  nativeTextCache = on ? undefined : null;
  lastScanText = null;
}

/**
 * One pass over the text giving what the Gopher rules need without allocating a string per token:
 * the spans of the word tokens of TOKEN_RE (letter/digit/mark runs joined by inner ' ’ . - _, kept
 * when they hold a letter or digit; symbol runs skipped) and the whitespace-chunk counts. Memoised
 * for the last text (the quality and repetition filters scan the same text in a row); the arrays are
 * reused by the next call, so callers must not keep them.
 */
export function scanWords(text: string): WordScan {
  if (text === lastScanText) return lastScan;
  const len = text.length;
  const native = nativeText();
  if (native !== null && !hasSurrogates(text)) {
    const cap = (len >> 1) + 1;
    if (scanStarts.length < cap) {
      scanStarts = new Int32Array(Math.max(1024, cap));
      scanEnds = new Int32Array(Math.max(1024, cap));
    }
    const count = native.textWordScan(text, native.classes, scanStarts, scanEnds, scanStats);
    lastScanText = text;
    lastScan = { count, starts: scanStarts, ends: scanEnds, chars: scanStats[1]!, spaced: scanStats[2]!, spacedAlpha: scanStats[3]! };
    return lastScan;
  }
  return scanWordsTS(text);
}

/** {@link scanWords} in TypeScript: the path for text with astral characters or without the addon, and the native scan's oracle. */
export function scanWordsTS(text: string): WordScan {
  const len = text.length;
  if (scanStarts.length < len + 1) {
    // At most one word per two units (words are separated), plus one.
    const cap = Math.max(1024, (len >> 1) + 2);
    if (scanStarts.length < cap) {
      scanStarts = new Int32Array(cap);
      scanEnds = new Int32Array(cap);
    }
  }
  let count = 0;
  let chars = 0;
  let spaced = 0;
  let spacedAlpha = 0;
  let inChunk = false;
  let chunkAlpha = false;
  let i = 0;
  // Whitespace chunks are tracked as the token scan moves: every unit is visited once, in order.
  const visit = (cls: number): void => {
    if (cls & C_SPACE) {
      if (inChunk) {
        spaced++;
        if (chunkAlpha) spacedAlpha++;
        inChunk = false;
      }
    } else {
      if (!inChunk) {
        inChunk = true;
        chunkAlpha = false;
      }
      if (cls & C_L) chunkAlpha = true;
    }
  };
  while (i < len) {
    let cls = classAt(text, i);
    if (cls & C_SPACE) {
      visit(cls);
      i += scanWidth;
      continue;
    }
    if (cls & C_LNM) {
      const start = i;
      let isWord = false;
      for (;;) {
        // [LNM]+
        while (i < len) {
          cls = classAt(text, i);
          if (!(cls & C_LNM)) break;
          visit(cls);
          if (cls & C_LN) isWord = true;
          i += scanWidth;
        }
        // (?:['’.\-_][LNM]+)* — the joiner is taken only when a word character follows it.
        if (i + 1 < len) {
          const j = text.charCodeAt(i);
          if (j === 0x27 || j === 0x2019 || j === 0x2e || j === 0x2d || j === 0x5f) {
            const next = classAt(text, i + 1);
            if (next & C_LNM) {
              visit(classAt(text, i));
              i += 1;
              continue;
            }
          }
        }
        break;
      }
      if (isWord) {
        scanStarts[count] = start;
        scanEnds[count] = i;
        count++;
        chars += i - start;
      }
      continue;
    }
    // A symbol run [^\s LNM]+: never a word.
    while (i < len) {
      cls = classAt(text, i);
      if (cls & (C_SPACE | C_LNM)) break;
      visit(cls);
      i += scanWidth;
    }
  }
  if (inChunk) {
    spaced++;
    if (chunkAlpha) spacedAlpha++;
  }
  lastScanText = text;
  lastScan = { count, starts: scanStarts, ends: scanEnds, chars, spaced, spacedAlpha };
  return lastScan;
}

/** Word ids table for {@link wordSeqOfScan}: words are told apart by a 64-bit hash of their units. */
const wordTable = new (class {
  hi = new Int32Array(0);
  lo = new Int32Array(0);
  id = new Int32Array(0);
  stamp = new Uint32Array(0);
  gen = 0;
  mask = 0;
})();

/**
 * {@link wordSeq} of the scanned words, without making their strings: equal words (same UTF-16
 * units) get the same id, told apart by two 32-bit hashes (a collision chance of ~2^-64 per pair,
 * far below the n-gram hashes' own).
 */
export function wordSeqOfScan(text: string, scan: WordScan): UnitSeq {
  const n = scan.count;
  const ids = new Int32Array(n);
  const prefix = new Float64Array(n + 1);
  let cap = 16;
  while (cap < 2 * n) cap *= 2;
  const t = wordTable;
  if (cap > t.hi.length) {
    t.hi = new Int32Array(cap);
    t.lo = new Int32Array(cap);
    t.id = new Int32Array(cap);
    t.stamp = new Uint32Array(cap);
    t.gen = 0;
  }
  t.mask = cap - 1;
  t.gen++;
  if (t.gen === 0xffffffff) {
    t.stamp.fill(0);
    t.gen = 1;
  }
  let next = 0;
  for (let w = 0; w < n; w++) {
    const start = scan.starts[w] as number;
    const end = scan.ends[w] as number;
    let h1 = 0x811c9dc5 ^ (end - start);
    let h2 = 0x9747b28c;
    for (let k = start; k < end; k++) {
      const c = text.charCodeAt(k);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 + c + 0x7f4a7c15, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    let x = Math.imul(h1 ^ Math.imul(h2, 0x9e3779b1), 0x85ebca6b);
    x ^= x >>> 15;
    let slot = x & t.mask;
    for (;;) {
      if (t.stamp[slot] !== t.gen) {
        t.stamp[slot] = t.gen;
        t.hi[slot] = h1;
        t.lo[slot] = h2;
        t.id[slot] = next++;
        break;
      }
      if (t.hi[slot] === h1 && t.lo[slot] === h2) break;
      slot = (slot + 1) & t.mask;
    }
    ids[w] = t.id[slot] as number;
    prefix[w + 1] = (prefix[w] as number) + (end - start);
  }
  return { ids, prefix, length: n };
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

/** Duplicate elements (second and later occurrences), their total characters, and how many elements there are. */
export interface DuplicateStats {
  elements: number;
  chars: number;
  count: number;
}

const seenElements = new Set<string>();
/** Element length → start of the only element seen with it, or -1 once that length has gone to the Set. */
const firstOfLength = new Map<number, number>();

/**
 * {@link findDuplicates} of `s` split on runs of `minRun` or more newlines (the elements of
 * s.split(/\n+/) for 1, of s.split(/\n{2,}/) for 2): separators found with indexOf (no regex, no
 * array of elements). An element can only repeat one of the same length, so an element's string is
 * made and hashed (natively, by a Set) only once a second element of its length appears: in prose
 * most lines have a length of their own, and a text with one paragraph hashes nothing.
 */
function duplicateElements(s: string, minRun: number): DuplicateStats {
  const len = s.length;
  const seen = seenElements;
  const first = firstOfLength;
  let elements = 0;
  let chars = 0;
  let count = 0;
  let start = 0;
  let from = 0;
  for (;;) {
    let nl = s.indexOf('\n', from);
    if (nl < 0) nl = len;
    let r = nl;
    while (r < len && s.charCodeAt(r) === 10) r++;
    // A run shorter than minRun stays inside the element.
    if (nl < len && r - nl < minRun) {
      from = r;
      continue;
    }
    count++;
    const size = nl - start;
    const other = first.get(size);
    if (other === undefined) first.set(size, start);
    else {
      if (other >= 0) {
        seen.add(s.slice(other, other + size));
        first.set(size, -1);
      }
      const element = s.slice(start, nl);
      if (seen.has(element)) {
        elements++;
        chars += size;
      } else seen.add(element);
    }
    if (nl === len) break;
    start = from = r;
  }
  seen.clear();
  first.clear();
  return { elements, chars, count };
}

/** findDuplicates(splitLinesForRepetition(text)) and the number of lines, without the strings. */
export function duplicateLines(text: string): DuplicateStats {
  return duplicateElements(text, 1);
}

/** findDuplicates(splitParagraphs(text)) and the number of paragraphs, without the strings. */
export function duplicateParagraphs(text: string): DuplicateStats {
  return duplicateElements(text.trim(), 2);
}

/** A sequence of units (word ids or characters) with their character lengths, for n-gram statistics. */
export interface UnitSeq {
  ids: Int32Array;
  /** prefix[i] = total characters of units [0, i). */
  prefix: Float64Array;
  length: number;
  /** Prefix polynomial hashes (see {@link prefixHashes}); filled on first use, shared by every n. */
  hashes?: { a: Int32Array; b: Int32Array };
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
    // Mixed before masking: the low bits of polynomial hashes mod 2^32 are weak.
    let x = Math.imul(h1 ^ Math.imul(h2, 0x9e3779b1), 0x85ebca6b);
    x ^= x >>> 15;
    let i = x & this.mask;
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

const BASE_A = 0x01000193;
const BASE_B = 0x5bd1e995;

/**
 * Prefix hashes under two polynomial bases mod 2^32: P[k+1] = P[k]·B + mix(id_k). The hash of the
 * n-gram at i is then P[i+n] − P[i]·B^n — O(1) per n-gram for every n, instead of O(n) rehashing
 * (the repetition rules ask for nine values of n). Only equality of n-grams matters to the
 * rules, so any hash with a negligible collision chance (here 64 bits) gives the same answers.
 */
function prefixHashes(seq: UnitSeq): { a: Int32Array; b: Int32Array } {
  if (seq.hashes !== undefined && seq.hashes.a.length === seq.length + 1) return seq.hashes;
  const a = new Int32Array(seq.length + 1);
  const b = new Int32Array(seq.length + 1);
  const ids = seq.ids;
  let ha = 0;
  let hb = 0;
  for (let k = 0; k < seq.length; k++) {
    const id = ids[k] as number;
    // Units are mixed first so small ids (0, 1, 2 …) are spread over all 32 bits.
    let u = Math.imul(id ^ 0x2545f491, 0x85ebca6b);
    u ^= u >>> 13;
    ha = (Math.imul(ha, BASE_A) + u) | 0;
    hb = (Math.imul(hb, BASE_B) + Math.imul(u ^ (u >>> 16), 0xc2b2ae35) + 0x7f4a7c15) | 0;
    a[k + 1] = ha;
    b[k + 1] = hb;
  }
  seq.hashes = { a, b };
  return seq.hashes;
}

function power(base: number, n: number): number {
  let p = 1;
  for (let k = 0; k < n; k++) p = Math.imul(p, base);
  return p;
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
  const { a, b } = prefixHashes(seq);
  const pa = power(BASE_A, n);
  const pb = power(BASE_B, n);
  let best = 1;
  let bestFirst = -1;
  for (let i = 0; i < total; i++) {
    const s = table.slot(((a[i + n] as number) - Math.imul(a[i] as number, pa)) | 0, ((b[i + n] as number) - Math.imul(b[i] as number, pb)) | 0, i);
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
  const { a, b } = prefixHashes(seq);
  const pa = power(BASE_A, n);
  const pb = power(BASE_B, n);
  let chars = 0;
  let i = 0;
  while (i < total) {
    const s = table.slot(((a[i + n] as number) - Math.imul(a[i] as number, pa)) | 0, ((b[i + n] as number) - Math.imul(b[i] as number, pb)) | 0, i);
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

/** The rules as typed arrays for the native kernels, per rule list. */
const ruleArrays = new WeakMap<object, { dupRules: object; ns: Int32Array; fracs: Float64Array; dup: Uint8Array }>();

function rulesFor(top: ReadonlyArray<readonly [number, number]>, dup: ReadonlyArray<readonly [number, number]>): { ns: Int32Array; fracs: Float64Array; dup: Uint8Array } {
  let arrays = ruleArrays.get(top);
  if (arrays === undefined || arrays.dupRules !== dup) {
    const rules = [...top.map(([n, f]) => [n, f, 0] as const), ...dup.map(([n, f]) => [n, f, 1] as const)];
    arrays = { dupRules: dup, ns: Int32Array.from(rules, (r) => r[0]), fracs: Float64Array.from(rules, (r) => r[1]), dup: Uint8Array.from(rules, (r) => r[2]) };
    ruleArrays.set(top, arrays);
  }
  return arrays;
}

/** The rule a native kernel's answer names (its index over top then dup), or null for -1. */
function ruleAt(r: number, top: ReadonlyArray<readonly [number, number]>, dup: ReadonlyArray<readonly [number, number]>): ['top' | 'dup', number] | null {
  if (r < 0) return null;
  return r < top.length ? ['top', top[r]![0]] : ['dup', dup[r - top.length]![0]];
}

/** The repetition rules over a unit sequence in TypeScript (see {@link wordNgramRepetition}). */
function ngramRulesTS(seq: UnitSeq, len: number, joiner: number, top: ReadonlyArray<readonly [number, number]>, dup: ReadonlyArray<readonly [number, number]>): ['top' | 'dup', number] | null {
  let noRepeatFrom = Infinity;
  for (const [n, frac] of top) {
    if (n >= noRepeatFrom) continue;
    const chars = topNgramChars(seq, n, joiner);
    if (chars === 0) noRepeatFrom = n;
    if (chars / len > frac) return ['top', n];
  }
  for (const [n, frac] of dup) {
    if (n >= noRepeatFrom) continue;
    const chars = duplicateNgramChars(seq, n);
    if (chars === 0) noRepeatFrom = n;
    if (chars / len > frac) return ['dup', n];
  }
  return null;
}

/**
 * Gopher's word n-gram repetition rules over a scanned text: the first of `top` (characters in the
 * most frequent n-gram, a space between words counting one) then `dup` (characters in duplicated
 * n-grams) over the text's length past its limit, as [kind, n], or null. Past an n with no repeated
 * n-gram no longer one repeats (both measures are 0), so those rules are skipped.
 */
export function wordNgramRepetition(
  text: string,
  scan: WordScan,
  top: ReadonlyArray<readonly [number, number]>,
  dup: ReadonlyArray<readonly [number, number]>,
): ['top' | 'dup', number] | null {
  const native = nativeText();
  if (native !== null && !hasSurrogates(text)) {
    const a = rulesFor(top, dup);
    return ruleAt(native.ngramRepetition(text, scan.starts, scan.ends, scan.count, a.ns, a.fracs, a.dup), top, dup);
  }
  return ngramRulesTS(wordSeqOfScan(text, scan), text.length, 1, top, dup);
}

/** The CJK rules' character n-gram repetition: the same over the text's letters and digits as single characters, none joined. */
export function charNgramRepetition(text: string, top: ReadonlyArray<readonly [number, number]>, dup: ReadonlyArray<readonly [number, number]>): ['top' | 'dup', number] | null {
  const native = nativeText();
  if (native !== null && !hasSurrogates(text)) {
    const a = rulesFor(top, dup);
    return ruleAt(native.charNgramRepetition(text, native.classes, a.ns, a.fracs, a.dup), top, dup);
  }
  return ngramRulesTS(lettersAndDigitsSeq(text), text.length, 0, top, dup);
}

/** Han, Hiragana, Katakana, Hangul (and their extension/compatibility blocks). */
const CJK_CHAR_RE = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

export function isCjkChar(ch: string): boolean {
  return CJK_CHAR_RE.test(ch);
}

/** Class bits of a BMP unit (a lone surrogate included), filled from the regexes on first sight. */
function unitClass(c: number): number {
  const v = classTable[c] as number;
  if (v !== 0) return v;
  const filled = classOfString(String.fromCharCode(c));
  classTable[c] = filled;
  return filled;
}

let lastCountsText: string | null = null;
let lastCjk = 0;
let lastLettersAndDigits = 0;

/**
 * CJK code points and letter/digit code points of `text`, from one pass with the class table looked
 * up inline (a valid surrogate pair is one code point, classed as classAt does); memoised for the
 * last text, as the CJK filter asks for both counts of the same text.
 */
function countCjkAndLettersAndDigits(text: string): void {
  if (text === lastCountsText) return;
  const len = text.length;
  let cjk = 0;
  let letters = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    let v: number;
    if ((c & 0xfc00) === 0xd800 && i + 1 < len && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      v = classAt(text, i);
      i++;
    } else {
      v = classTable[c] as number;
      if (v === 0) v = unitClass(c);
    }
    cjk += (v >> 4) & 1; // C_CJK
    letters += (v >> 1) & 1; // C_LN
  }
  lastCountsText = text;
  lastCjk = cjk;
  lastLettersAndDigits = letters;
}

/** CJK code points (CJK_CHAR_RE), counted. */
export function countCjkChars(text: string): number {
  countCjkAndLettersAndDigits(text);
  return lastCjk;
}

/** Letters and digits ([\p{L}\p{N}] code points), counted. */
export function countLettersAndDigits(text: string): number {
  countCjkAndLettersAndDigits(text);
  return lastLettersAndDigits;
}

/** Letters and digits only (punctuation, symbols and spaces removed): the character stream of the CJK n-gram rules. */
export function lettersAndDigits(text: string): string {
  return text.replace(/[^\p{L}\p{N}]+/gu, '');
}

/** charSeq(lettersAndDigits(text)), built in one pass without the intermediate string. */
export function lettersAndDigitsSeq(text: string): UnitSeq {
  const ids = new Int32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; ) {
    const keep = (classAt(text, i) & C_LN) !== 0;
    const width = scanWidth;
    if (keep) for (let k = 0; k < width; k++) ids[n++] = text.charCodeAt(i + k);
    i += width;
  }
  const prefix = new Float64Array(n + 1);
  for (let i = 1; i <= n; i++) prefix[i] = i;
  return { ids: ids.subarray(0, n), prefix, length: n };
}

export const CJK_LANGS: ReadonlySet<string> = new Set(['zh', 'ja', 'ko']);

/**
 * Whether word-based rules are meaningless for this document: its language is Chinese, Japanese or
 * Korean when known, else more than half of its letters are CJK (these scripts are not space-separated,
 * so "words" would be whole clauses).
 */
export function isCjkText(text: string, lang?: string): boolean {
  if (lang !== undefined && lang !== 'und') return CJK_LANGS.has(lang);
  // Memoised: the Gopher, Gopher repetition and CJK filters each ask about the same text in a row.
  if (text === lastCjkTextInput) return lastCjkTextAnswer;
  // A 2,000-character sample decides: script mix does not change along a document, and this runs per document.
  const sample = text.length > 2000 ? text.slice(0, 2000) : text;
  const letters = countLettersAndDigits(sample);
  lastCjkTextAnswer = letters > 0 && countCjkChars(sample) / letters > 0.5;
  lastCjkTextInput = text;
  return lastCjkTextAnswer;
}

let lastCjkTextInput: string | null = null;
let lastCjkTextAnswer = false;

/** Bullet characters that start list lines (Gopher's "bullet point" lines). */
export const BULLET_RE = /^\s*[•●○◦▪▫■□‣⁃∙·\-*]/u;
/** Lines ending with an ellipsis: "...", "…" (and the CJK "……"). */
export const ELLIPSIS_END_RE = /(?:\.\.\.|…)\s*$/u;

/** JS's \s (WhiteSpace and LineTerminator) for a UTF-16 unit; every one of them is in the BMP. */
export function isJsSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

/** The bullet characters of BULLET_RE. */
function isBullet(c: number): boolean {
  switch (c) {
    case 0x2022: // •
    case 0x25cf: // ●
    case 0x25cb: // ○
    case 0x25e6: // ◦
    case 0x25aa: // ▪
    case 0x25ab: // ▫
    case 0x25a0: // ■
    case 0x25a1: // □
    case 0x2023: // ‣
    case 0x2043: // ⁃
    case 0x2219: // ∙
    case 0x00b7: // ·
    case 0x2d: // -
    case 0x2a: // *
      return true;
    default:
      return false;
  }
}

/**
 * Fractions of lines that start with a bullet / end with an ellipsis (lines split on single newlines).
 * One walk over the line ends with indexOf and unit checks, answering as BULLET_RE and ELLIPSIS_END_RE
 * do: a bullet after the leading whitespace; "..." or "…" right before the trailing whitespace (none of
 * these characters is whitespace, so the regexes' backtracking can match nowhere else).
 */
export function bulletAndEllipsisLineRatios(text: string): { bullet: number; ellipsis: number } {
  const len = text.length;
  let lines = 0;
  let bullet = 0;
  let ellipsis = 0;
  let start = 0;
  for (;;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = len;
    lines++;
    let i = start;
    while (i < end && isJsSpace(text.charCodeAt(i))) i++;
    if (i < end && isBullet(text.charCodeAt(i))) bullet++;
    let k = end;
    while (k > i && isJsSpace(text.charCodeAt(k - 1))) k--;
    if (k > start) {
      const last = text.charCodeAt(k - 1);
      if (last === 0x2026 || (last === 0x2e && k - 3 >= start && text.charCodeAt(k - 2) === 0x2e && text.charCodeAt(k - 3) === 0x2e)) ellipsis++;
    }
    if (end === len) break;
    start = end + 1;
  }
  return { bullet: bullet / lines, ellipsis: ellipsis / lines };
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
