import { existsSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { badWordsRegExp, c4Lines, c4Stage, countSentences, spacedWords } from '../../src/data/pipeline/filters/c4.js';
import type { C4LineResult, C4Options } from '../../src/data/pipeline/filters/c4.js';
import { isCjkText } from '../../src/data/pipeline/filters/text-stats.js';
import type { Doc, DocStage, StageResult } from '../../src/data/pipeline/types.js';

// ---- The implementation before the single-pass rewrite, kept as the oracle. ----
const ORACLE_END_MARK_CODES = new Set(['.', '?', '!', '"', "'", '”', '’'].map((m) => m.charCodeAt(0)));
const ORACLE_POLICY_SUBSTRINGS = ['terms of use', 'privacy policy', 'cookie policy', 'uses cookies', 'use of cookies', 'use cookies'];
const ORACLE_CITATION_RE = /\[\d*\]|\[edit\]|\[citation needed\]/gi;
const ORACLE_SENTENCE_END_RE = /[.!?]+["'”’)\]]*(?=\s|$)/g;

function oracleIsJsSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

function oracleSpacedWords(line: string): { count: number; longest: number } {
  let count = 1;
  let longest = 0;
  let run = 0;
  let inSpace = false;
  for (let i = 0; i < line.length; i++) {
    if (oracleIsJsSpace(line.charCodeAt(i))) {
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

function oracleCountSentences(line: string): number {
  let n = 0;
  ORACLE_SENTENCE_END_RE.lastIndex = 0;
  while (ORACLE_SENTENCE_END_RE.exec(line) !== null) n++;
  return Math.max(1, n);
}

function oracleC4Lines(text: string, opts: C4Options = {}): C4LineResult {
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
  const lowerDoc = ((opts.citations ?? true) ? text.replace(ORACLE_CITATION_RE, '') : text).toLowerCase();
  const lowerRules = lowerDoc.includes('lorem ipsum') || lowerDoc.includes('javascript') || ORACLE_POLICY_SUBSTRINGS.some((p) => lowerDoc.includes(p));
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (line.length === 0) continue;
    const words = oracleSpacedWords(line);
    if (maxWordLength > 0 && words.longest > maxWordLength) {
      bump('c4_line_long_word');
      continue;
    }
    if (opts.citations ?? true) line = line.replace(ORACLE_CITATION_RE, '').trim();
    if (terminal && (!ORACLE_END_MARK_CODES.has(line.charCodeAt(line.length - 1)) || line.endsWith('...'))) {
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
    if ((opts.policy ?? true) && ORACLE_POLICY_SUBSTRINGS.some((p) => lower.includes(p))) {
      bump('c4_line_policy');
      continue;
    }
    sentences += oracleCountSentences(line);
    kept.push(line);
  }
  if (minSentences > 0 && sentences < minSentences) return { drop: 'c4_too_few_sentences', lines: kept, removed };
  return { drop: null, lines: kept, removed };
}

function oracleC4Stage(opts: C4Options = {}): DocStage {
  const badWords = opts.badWords ? badWordsRegExp(opts.badWords) : null;
  const rewrite = opts.rewrite ?? true;
  const skipCjk = opts.skipCjk ?? true;
  return {
    name: 'c4',
    process(doc: Doc, counters?: Record<string, number>): StageResult {
      if (skipCjk && isCjkText(doc.text, doc.lang)) return { keep: true, doc };
      const r = oracleC4Lines(doc.text, opts);
      if (counters) for (const [k, v] of Object.entries(r.removed)) counters[k] = (counters[k] ?? 0) + v;
      if (r.drop) return { keep: false, rule: r.drop };
      const text = r.lines.join('\n');
      if (badWords && badWords.test(text)) return { keep: false, rule: 'c4_badwords' };
      return { keep: true, doc: rewrite ? { ...doc, text } : doc };
    },
  };
}
// ---- End of the oracle. ----

/** Same result, with the counters in the same insertion order (the stage adds them to shared counters in that order). */
function expectSame(text: string, opts: C4Options = {}): void {
  const got = c4Lines(text, opts);
  const want = oracleC4Lines(text, opts);
  expect(got).toEqual(want);
  expect(Object.keys(got.removed)).toEqual(Object.keys(want.removed));
}

const JS_SPACES = ['\t', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2000', '\u2005', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff'];
// Look-alikes that are not \s: zero-width space, Mongolian vowel separator (not a space since Unicode 6.3), NUL, a C0 control.
const NON_SPACES = ['\u200b', '\u180e', '\u0000', '\u0001', '\u001f', '\u0085'];
const PIECES = [
  'word', 'Alpha', 'b', 'the', 'x.y', "don't", 'abcdefgh', 'Straße', 'émigré', '1932', 'x'.repeat(1001),
  '.', '?', '!', '"', "'", '”', '’', ')', ']', '(', '[', '...', '..', '…', '.)', '!"', '?’', '.”', 'a.', 'b?!', 'c.)', ':', ',', ';',
  '[1]', '[12]', '[]', '[edit]', '[Edit]', '[EDIT]', '[citation needed]', '[Citation Needed]', '[x]', '[1', '1]', '[[1]]',
  '{', '}', '{}',
  'lorem ipsum', 'Lorem Ipsum', 'LOREM IPSUM', 'lorem', 'ipsum', 'lorem[2] ipsum', 'lorem [2]ipsum',
  'JavaScript', 'JAVASCRIPT', 'java', 'script', 'java[edit]script', 'Java[1]Script',
  'terms of use', 'Terms of Use', 'privacy policy', 'PRIVACY Policy', 'cookie policy', 'Cookie[3] policy', 'uses cookies', 'use of cookies', 'Use Cookies', 'cookies',
  'coo\u212aie policy', 'İpsum', 'lorem İpsum', 'u\u017fe cookies', 'Σ',
  '中文', '你好。', '三国演义', '“', '\ud83d\ude00', '\ud800',
  ...JS_SPACES,
  ...NON_SPACES,
];
const SEPARATORS = ['', ' ', ' ', ' ', '  ', '\t', '\u00a0', '\u3000', '\ufeff', ' \u2028 '];
const lineArb = fc
  .array(fc.tuple(fc.constantFrom(...PIECES), fc.constantFrom(...SEPARATORS)), { maxLength: 16 })
  .map((parts) => parts.map(([p, s]) => p + s).join(''));
/** Lines joined by LF or CRLF, with empty and whitespace-only lines among them. */
const docArb = fc
  .array(fc.tuple(fc.oneof({ arbitrary: lineArb, weight: 5 }, { arbitrary: fc.constantFrom('', ' ', '\t \u3000', '\r', '\ufeff'), weight: 1 }), fc.constantFrom('\n', '\n', '\r\n')), {
    maxLength: 12,
  })
  .map((lines) => lines.map(([l, sep]) => l + sep).join(''))
  .chain((d) => fc.constantFrom(d, d.trimEnd(), `${d}\n`));

const OPTION_SETS: C4Options[] = [
  {},
  { terminalPunctuation: false },
  { citations: false },
  { minWordsPerLine: 0 },
  { minWordsPerLine: 3 },
  { minSentences: 0 },
  { minSentences: 1 },
  { minSentences: 5 },
  { maxWordLength: 0 },
  { maxWordLength: 5 },
  { loremIpsum: false },
  { javascript: false },
  { curlyBraces: false },
  { policy: false },
  { loremIpsum: false, javascript: false, policy: false },
  { terminalPunctuation: false, minWordsPerLine: 0, minSentences: 0, maxWordLength: 0 },
  { terminalPunctuation: false, citations: false, maxWordLength: 5, minWordsPerLine: 3, minSentences: 1 },
];

describe('C4 single-pass c4Lines equals the previous implementation', () => {
  for (const opts of OPTION_SETS) {
    it(`random documents, options ${JSON.stringify(opts)}`, () => {
      fc.assert(
        fc.property(docArb, (text) => {
          expectSame(text, opts);
        }),
        { numRuns: 2500 },
      );
    });
  }

  it('hand-written edge cases', () => {
    const S = 'One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen fifteen.';
    const cases = [
      '',
      '\n',
      '\r\n\r\n',
      S,
      `${S}\nlorem[1] ipsum dolor sit amet, consectetur.`,
      `${S}\nEnable java[edit]script to see the whole of this page.`,
      `${S}\nWe use of[1] cookies on this site to track you.`,
      `${S}\nRead our cookie[citation needed] policy before you go on.`,
      `${S}\nRead our coo\u212aie policy before you go on, said he.`,
      `${S}\nThe lorem İpsum text is a placeholder, they say.`,
      `${S}\n[1]`,
      `${S}\n[1] [edit]`,
      `${S}\n  [citation needed]  `,
      `${S}\none two three four five...`,
      `${S}\none two three four five...[1]`,
      `${S}\none two three four five.[1].[2].`,
      `${S}\none two three four five…`,
      `${S}\n...`,
      `${S}\n..`,
      `${S}\n.`,
      `${S}\none two three four {five}.`,
      `${S}\none two three four five.\n{`,
      `${S}\nA.!B. c?” d!’) e.)] f".) g.x h...`,
      `\ufeff${S}\ufeff`,
      `\u3000${S}\u3000\r\n\u00a0${S}\u2028`,
      `${S}\u0085`,
      `${S}\u180e`,
      `${S} ${'y'.repeat(1001)}.`,
      `${'y'.repeat(1001)}\n${S}`,
      `${'y'.repeat(1200)} no terminal mark here`,
    ];
    for (const text of cases) for (const opts of OPTION_SETS) expectSame(text, opts);
  });

  it('a phrase written with any character whose lower case is the phrase letter still fires (all code points)', () => {
    // toLowerCase can turn a non-ASCII character into ASCII letters (K, the Kelvin sign, into "k"; İ into "i̇").
    const phrases = ['lorem ipsum', 'javascript', 'terms of use', 'privacy policy', 'cookie policy', 'uses cookies', 'use of cookies', 'use cookies'];
    const S = 'One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen fifteen.';
    let variants = 0;
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const ch = String.fromCodePoint(cp);
      const lower = ch.toLowerCase();
      if (!/[a-z]/.test(lower)) continue;
      for (const p of phrases) {
        for (let i = 0; i < p.length; i++) {
          if (!lower.includes(p[i] as string)) continue;
          const phrase = p.slice(0, i) + ch + p.slice(i + 1);
          expectSame(`${S}\nHere the ${phrase} words stand in a line of their own.\n${S}`);
          variants++;
        }
      }
    }
    expect(variants).toBeGreaterThan(0);
  });

  it('countSentences matches the regex and spacedWords matches split(/\\s+/) (random strings)', () => {
    const parts = ['a', 'bc', '.', '!', '?', '"', "'", '”', '’', ')', ']', '(', ' ', '\t', '\u00a0', '\u3000', '\ufeff', '\u2028', '\u200b', 'x.', '…'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...parts), { maxLength: 30 }), (ps) => {
        const s = ps.join('');
        expect(countSentences(s)).toBe(oracleCountSentences(s));
        const line = s.trim();
        if (line.length > 0) expect(spacedWords(line)).toEqual(oracleSpacedWords(line));
      }),
      { numRuns: 5000 },
    );
  });

  it('the stage gives the same documents and counters as before', () => {
    const stageOpts: C4Options[] = [{}, { rewrite: false }, { skipCjk: false }, { badWords: ['cookies', 'ipsum', '中文'] }, { citations: false, minSentences: 1 }];
    const docText = fc.oneof(docArb, fc.array(fc.constantFrom('三国演义', '你好。', '中文', ' ', '\n', 'a.'), { maxLength: 40 }).map((p) => p.join('')));
    for (const opts of stageOpts) {
      const stage = c4Stage(opts);
      const oracle = oracleC4Stage(opts);
      fc.assert(
        fc.property(docText, fc.constantFrom(undefined, 'en', 'zh'), (text, lang) => {
          const d: Doc = lang ? { id: 'd', text, source: 's', lang } : { id: 'd', text, source: 's' };
          const counters: Record<string, number> = { c4_line_few_words: 1 };
          const oracleCounters: Record<string, number> = { c4_line_few_words: 1 };
          expect(stage.process(d, counters)).toEqual(oracle.process(d, oracleCounters));
          expect(Object.entries(counters)).toEqual(Object.entries(oracleCounters));
        }),
        { numRuns: 1000 },
      );
    }
  });
});

const CORPORA = ['/work/shared/data/wikitext2/wiki.test.raw', '/work/shared/data/tinyshakespeare/input.txt', '/work/shared/data/zh/sanguo_yanyi.txt'];

/** ~4,000-character documents cut at blank lines (or at any line past 8,000 characters, for files without blank lines). */
function cutDocuments(text: string, size = 4000): string[] {
  const docs: string[] = [];
  let cur: string[] = [];
  let len = 0;
  for (const line of text.split('\n')) {
    cur.push(line);
    len += line.length + 1;
    if (len >= size && (line.trim() === '' || len >= 2 * size)) {
      docs.push(cur.join('\n'));
      cur = [];
      len = 0;
    }
  }
  if (cur.length > 0) docs.push(cur.join('\n'));
  return docs;
}

describe('C4 single-pass c4Lines on real text', () => {
  for (const file of CORPORA) {
    it.skipIf(!existsSync(file))(`equals the previous implementation on ${file.split('/').slice(-2).join('/')}`, () => {
      const docs = cutDocuments(readFileSync(file, 'utf8'));
      expect(docs.length).toBeGreaterThan(50);
      for (const opts of [{}, { terminalPunctuation: false }, { minWordsPerLine: 3, minSentences: 1 }, { citations: false, maxWordLength: 5 }]) {
        for (const d of docs) expectSame(d, opts);
      }
    });
  }
});
