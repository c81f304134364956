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
// Sentence ends: terminal marks (possibly closed by quotes/brackets) followed by space or the end.
const SENTENCE_END_RE = /[.!?]+["'”’)\]]*(?=\s|$)/g;

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
  let n = 0;
  SENTENCE_END_RE.lastIndex = 0;
  while (SENTENCE_END_RE.exec(line) !== null) n++;
  return Math.max(1, n);
}

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
  const removed: Record<string, number> = {};
  const bump = (k: string): void => {
    removed[k] = (removed[k] ?? 0) + 1;
  };
  const kept: string[] = [];
  let sentences = 0;
  // The lower-case rules look at each line only when the document holds one of their phrases at all.
  // (Citations are removed first, as from each line: removing one can join a phrase.)
  const lowerDoc = ((opts.citations ?? true) ? text.replace(CITATION_RE, '') : text).toLowerCase();
  const lowerRules = lowerDoc.includes('lorem ipsum') || lowerDoc.includes('javascript') || POLICY_SUBSTRINGS.some((p) => lowerDoc.includes(p));
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (line.length === 0) continue;
    const words = spacedWords(line);
    if (maxWordLength > 0 && words.longest > maxWordLength) {
      bump('c4_line_long_word');
      continue;
    }
    if (opts.citations ?? true) line = line.replace(CITATION_RE, '').trim();
    if (terminal && (!END_MARK_CODES.has(line.charCodeAt(line.length - 1)) || line.endsWith('...'))) {
      bump('c4_line_no_terminal_punct');
      continue;
    }
    if (words.count < minWords) {
      bump('c4_line_few_words');
      continue;
    }
    const lower = lowerRules ? line.toLowerCase() : '';
    if ((opts.loremIpsum ?? true) && lower.includes('lorem ipsum')) return { drop: 'c4_lorem_ipsum', lines: kept, removed };
    if ((opts.javascript ?? true) && lower.includes('javascript')) {
      bump('c4_line_javascript');
      continue;
    }
    if ((opts.curlyBraces ?? true) && line.includes('{')) return { drop: 'c4_curly_bracket', lines: kept, removed };
    if ((opts.policy ?? true) && POLICY_SUBSTRINGS.some((p) => lower.includes(p))) {
      bump('c4_line_policy');
      continue;
    }
    sentences += countSentences(line);
    kept.push(line);
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
      if (counters) for (const [k, v] of Object.entries(r.removed)) counters[k] = (counters[k] ?? 0) + v;
      if (r.drop) return { keep: false, rule: r.drop };
      const text = r.lines.join('\n');
      if (badWords && badWords.test(text)) return { keep: false, rule: 'c4_badwords' };
      return { keep: true, doc: rewrite ? { ...doc, text } : doc };
    },
  };
}
