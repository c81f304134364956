/**
 * C4 cleaning rules (Raffel et al. 2020, §2.2; TFDS c4_utils.clean_page, datatrove C4QualityFilter):
 * line by line, drop lines with a word over 1,000 characters, strip Wikipedia citation marks, drop
 * lines that do not end in terminal punctuation (or end in "..."), lines under 5 words, lines that
 * mention "javascript" and cookie/privacy-policy lines; drop the whole document on "lorem ipsum",
 * on a "{" (code), when fewer than 3 sentences survive, or when it contains a word from the optional
 * bad-words list. Thresholds are the paper's (5 words per line, 3 sentences).
 *
 * C4 rewrites documents (it keeps only the surviving lines), so it is a DocStage, not a DocFilter;
 * `rewrite: false` gives the same keep/drop decisions with the text left as it was.
 * English-centric: CJK documents (no ASCII terminal punctuation) are skipped by default.
 */
import type { Doc, DocStage, StageResult } from '../types.js';
import { isCjkText } from './text-stats.js';

export interface C4Options {
  /** Keep only lines ending in terminal punctuation (default true). */
  terminalPunctuation?: boolean;
  /** Lines with fewer words are removed (default 5; 0 disables). */
  minWordsPerLine?: number;
  /** Documents with fewer sentences left are dropped (default 3; 0 disables). */
  minSentences?: number;
  /** Lines with a longer word are removed (default 1000; 0 disables). */
  maxWordLength?: number;
  loremIpsum?: boolean;
  curlyBraces?: boolean;
  javascript?: boolean;
  policy?: boolean;
  citations?: boolean;
  /** Drop documents containing any of these words (whole-word, case-insensitive). Empty/undefined: off. */
  badWords?: readonly string[];
  /** Replace the text by the kept lines (default true). */
  rewrite?: boolean;
  skipCjk?: boolean;
}

/** Characters a kept line must end with (C4: terminal punctuation, possibly a closing quote). */
const END_MARK_CODES = new Set(['.', '?', '!', '"', "'", '”', '’'].map((m) => m.charCodeAt(0)));
const POLICY_SUBSTRINGS = ['terms of use', 'privacy policy', 'cookie policy', 'uses cookies', 'use of cookies', 'use cookies'];
const CITATION_RE = /\[\d*\]|\[edit\]|\[citation needed\]/gi;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One regex for the whole list; words made of letters get letter/digit boundaries, others (CJK, symbols) match as substrings. */
export function badWordsRegExp(words: readonly string[]): RegExp | null {
  const cleaned = words.map((w) => w.trim()).filter((w) => w.length > 0);
  if (cleaned.length === 0) return null;
  const bounded: string[] = [];
  const bare: string[] = [];
  for (const w of cleaned) {
    if (/^[\p{Script=Latin}\p{Script=Cyrillic}\p{Script=Greek}\p{N}' -]+$/u.test(w)) bounded.push(escapeRegExp(w));
    else bare.push(escapeRegExp(w));
  }
  const parts: string[] = [];
  if (bounded.length > 0) parts.push(`(?<![\\p{L}\\p{N}])(?:${bounded.join('|')})(?![\\p{L}\\p{N}])`);
  if (bare.length > 0) parts.push(`(?:${bare.join('|')})`);
  return new RegExp(parts.join('|'), 'iu');
}

/** JavaScript's \s (the characters String.prototype.split(/\s+/) splits on). */
function isJsSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/** What line.split(/\s+/) would give, for a trimmed non-empty line: the chunk count and the longest chunk's length. */
export function spacedWords(line: string): { count: number; longest: number } {
  let count = 1;
  let longest = 0;
  let run = 0;
  let inSpace = false;
  for (let i = 0; i < line.length; i++) {
    if (isJsSpace(line.charCodeAt(i))) {
      if (!inSpace) {
        if (run > longest) longest = run;
        run = 0;
        count++;
        inSpace = true;
      }
    } else {
      inSpace = false;
      run++;
    }
  }
  return { count, longest: run > longest ? run : longest };
}

export function countSentences(line: string): number {
  return Math.max(1, sentenceEndsIn(line, 0, line.length));
}

const DOT = 0x2e;

/** Terminal marks that may start a sentence end: . ! ? */
function isSentenceMark(c: number): boolean {
  return c === 0x2e || c === 0x21 || c === 0x3f;
}

/** Characters that may close a sentence end after its marks: " ' ” ’ ) ] */
function isSentenceCloser(c: number): boolean {
  return c === 0x22 || c === 0x27 || c === 0x201d || c === 0x2019 || c === 0x29 || c === 0x5d;
}

/** Character classes of the line scan: part of a word, \s, a terminal mark (. ! ?), a closer (" ' ” ’ ) ]). */
const OTHER = 0;
const SPACE = 1;
const MARK = 2;
const CLOSER = 3;
const ASCII_CLASS = new Uint8Array(0x80);
for (let c = 0; c < 0x80; c++) ASCII_CLASS[c] = isJsSpace(c) ? SPACE : isSentenceMark(c) ? MARK : isSentenceCloser(c) ? CLOSER : OTHER;

/**
 * Matches of SENTENCE_END_RE in s[from, to), counted by a scan. Exact because the regex never needs its
 * backtracking: a shorter run of marks or closers is followed by a mark or closer, never by \s, so a match
 * starts at a mark iff the maximal marks run then the maximal closers run after it reach \s or the end.
 */
function sentenceEndsIn(s: string, from: number, to: number): number {
  let n = 0;
  let i = from;
  while (i < to) {
    if (!isSentenceMark(s.charCodeAt(i))) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < to && isSentenceMark(s.charCodeAt(j))) j++;
    while (j < to && isSentenceCloser(s.charCodeAt(j))) j++;
    if (j === to || isJsSpace(s.charCodeAt(j))) n++;
    i = j;
  }
  return n;
}

/**
 * Whether a lower-case rule phrase can occur in a line: true whenever line.toLowerCase() contains one (every
 * policy phrase contains "cookie" or is listed; the `u` flag folds K, the Kelvin sign that toLowerCase maps
 * to "k"). A false positive only costs the exact check.
 */
const LOWER_RULE_HINT_RE = /lorem ipsum|javascript|terms of use|privacy policy|cookie/iu;

export interface C4LineResult {
  /** null = keep the document (with `lines`), else the rule dropping it. */
  drop: string | null;
  lines: string[];
  removed: Record<string, number>;
}

/** Apply C4's line rules; exported for tests and for tools that want the per-line verdicts. */
export function c4Lines(text: string, opts: C4Options = {}): C4LineResult {
  const terminal = opts.terminalPunctuation ?? true;
  const minWords = opts.minWordsPerLine ?? 5;
  const minSentences = opts.minSentences ?? 3;
  const maxWordLength = opts.maxWordLength ?? 1000;
  const citations = opts.citations ?? true;
  const loremIpsum = opts.loremIpsum ?? true;
  const javascript = opts.javascript ?? true;
  const curlyBraces = opts.curlyBraces ?? true;
  const policy = opts.policy ?? true;
  const removed: Record<string, number> = {};
  const bump = (k: string): void => {
    removed[k] = (removed[k] ?? 0) + 1;
  };
  const kept: string[] = [];
  let sentences = 0;
  // Citations can only match at a '['; the same goes for '{'. Their next positions are tracked so a line
  // is searched only when it holds one.
  let nextBracket = citations ? text.indexOf('[') : -1;
  let nextCurly = curlyBraces ? text.indexOf('{') : -1;
  const lowerRules = loremIpsum || javascript || policy;
  const n = text.length;
  let lineStart = 0;
  while (lineStart <= n) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = n;
    const nextLine = lineEnd + 1;
    // Trim (String.prototype.trim strips exactly the isJsSpace set).
    let s = lineStart;
    let e = lineEnd;
    while (s < e && isJsSpace(text.charCodeAt(s))) s++;
    if (s === e) {
      lineStart = nextLine;
      continue;
    }
    while (isJsSpace(text.charCodeAt(e - 1))) e--;
    // The line is text[s, e), or `line` once citations were cut from it.
    let line: string | null = null;
    if (nextBracket >= 0 && nextBracket < s) nextBracket = text.indexOf('[', s);
    const cut = nextBracket >= 0 && nextBracket < e;
    if (cut) line = text.slice(s, e).replace(CITATION_RE, '').trim();
    let terminalOk = true;
    if (terminal) {
      if (line === null) {
        const last = text.charCodeAt(e - 1);
        terminalOk = END_MARK_CODES.has(last) && !(last === DOT && e - s >= 3 && text.charCodeAt(e - 2) === DOT && text.charCodeAt(e - 3) === DOT);
      } else {
        terminalOk = END_MARK_CODES.has(line.charCodeAt(line.length - 1)) && !line.endsWith('...');
      }
    }
    // The long-word rule comes first, but a line no longer than maxWordLength cannot break it: skip the scan.
    if (!terminalOk && (maxWordLength === 0 || e - s <= maxWordLength)) {
      bump('c4_line_no_terminal_punct');
      lineStart = nextLine;
      continue;
    }
    // One scan of text[s, e) (trimmed, so it starts and ends with a word) gives spacedWords' count and longest
    // chunk, and the sentence ends of countSentences: a SENTENCE_END_RE match ends exactly at the end of a chunk
    // whose last character, past any closers, is a terminal mark (see sentenceEndsIn).
    let count = 1;
    let longest = 0;
    let run = 0;
    let ends = 0;
    let markBeforeClosers = false;
    for (let i = s; i < e; i++) {
      const c = text.charCodeAt(i);
      const cls = c < 0x80 ? ASCII_CLASS[c] : c === 0x2019 || c === 0x201d ? CLOSER : isJsSpace(c) ? SPACE : OTHER;
      if (cls === OTHER) {
        run++;
        markBeforeClosers = false;
      } else if (cls === SPACE) {
        if (run > 0) {
          if (run > longest) longest = run;
          if (markBeforeClosers) ends++;
          run = 0;
          count++;
          markBeforeClosers = false;
        }
      } else {
        run++;
        if (cls === MARK) markBeforeClosers = true;
      }
    }
    if (run > longest) longest = run;
    if (markBeforeClosers) ends++;
    if (maxWordLength > 0 && longest > maxWordLength) {
      bump('c4_line_long_word');
      lineStart = nextLine;
      continue;
    }
    if (!terminalOk) {
      bump('c4_line_no_terminal_punct');
      lineStart = nextLine;
      continue;
    }
    if (count < minWords) {
      bump('c4_line_few_words');
      lineStart = nextLine;
      continue;
    }
    if (line === null) line = text.slice(s, e);
    // A line is lower-cased for its rules only when the hint says a phrase may be there (citations already cut,
    // as their removal can join one).
    const lower = lowerRules && LOWER_RULE_HINT_RE.test(line) ? line.toLowerCase() : '';
    if (loremIpsum && lower.includes('lorem ipsum')) return { drop: 'c4_lorem_ipsum', lines: kept, removed };
    if (javascript && lower.includes('javascript')) {
      bump('c4_line_javascript');
      lineStart = nextLine;
      continue;
    }
    // Cutting citations neither adds nor removes a '{', so the raw range decides.
    if (nextCurly >= 0 && nextCurly < s) nextCurly = text.indexOf('{', s);
    if (nextCurly >= 0 && nextCurly < e) return { drop: 'c4_curly_bracket', lines: kept, removed };
    if (policy && lower.length > 0 && POLICY_SUBSTRINGS.some((p) => lower.includes(p))) {
      bump('c4_line_policy');
      lineStart = nextLine;
      continue;
    }
    sentences += Math.max(1, cut ? sentenceEndsIn(line, 0, line.length) : ends);
    kept.push(line);
    lineStart = nextLine;
  }
  if (minSentences > 0 && sentences < minSentences) return { drop: 'c4_too_few_sentences', lines: kept, removed };
  return { drop: null, lines: kept, removed };
}

/** The C4 stage. Counters: lines removed per line rule. Drop rules: c4_lorem_ipsum, c4_curly_bracket, c4_too_few_sentences, c4_badwords. */
export function c4Stage(opts: C4Options = {}): DocStage {
  for (const k of ['minWordsPerLine', 'minSentences', 'maxWordLength'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new Error(`c4: ${k} must be a non-negative integer, got ${v}`);
  }
  const badWords = opts.badWords ? badWordsRegExp(opts.badWords) : null;
  const rewrite = opts.rewrite ?? true;
  const skipCjk = opts.skipCjk ?? true;
  return {
    name: 'c4',
    process(doc: Doc, counters?: Record<string, number>): StageResult {
      if (skipCjk && isCjkText(doc.text, doc.lang)) return { keep: true, doc };
      const r = c4Lines(doc.text, opts);
      if (counters) for (const k in r.removed) counters[k] = (counters[k] ?? 0) + (r.removed[k] as number);
      if (r.drop) return { keep: false, rule: r.drop };
      // The kept text is needed only to replace the document's or to look for bad words in it.
      if (!rewrite && !badWords) return { keep: true, doc };
      const text = r.lines.join('\n');
      if (badWords && badWords.test(text)) return { keep: false, rule: 'c4_badwords' };
      return { keep: true, doc: rewrite ? { ...doc, text } : doc };
    },
  };
}
