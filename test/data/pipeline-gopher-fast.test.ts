/**
 * The cheaper Gopher/CJK statistics (text-stats.ts, gopher.ts) against the code they replaced, kept
 * here as oracles: duplicate lines/paragraphs, CJK and letter/digit counts, the bullet/ellipsis line
 * ratios and isCjkText, on random texts (fast-check) and on the real corpora; and the three filters'
 * answers on the corpora against answers recorded from the code before the change.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cjkFilter } from '../../src/data/pipeline/filters/cjk.js';
import { gopherQualityFilter, gopherRepetitionFilter, lineParagraphRepetition } from '../../src/data/pipeline/filters/gopher.js';
import {
  bulletAndEllipsisLineRatios,
  countCjkChars,
  countLettersAndDigits,
  duplicateLines,
  duplicateParagraphs,
  findDuplicates,
  isCjkText,
  isJsSpace,
  splitLinesForRepetition,
  splitParagraphs,
} from '../../src/data/pipeline/filters/text-stats.js';
import type { DocFilter } from '../../src/data/pipeline/types.js';

// ---- Oracles: the implementations before the change (text-stats.ts / gopher.ts at 9a828ef). ----

function oldSplitLines(text: string): string[] {
  return text.split(/\n+/);
}

function oldSplitParagraphs(text: string): string[] {
  return text.trim().split(/\n{2,}/);
}

function oldFindDuplicates(items: readonly string[]): { elements: number; chars: number } {
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

function oldLineParagraphRepetition(
  text: string,
  prefix: string,
  limits: { dupLineFrac: number | null; dupParaFrac: number | null; dupLineCharFrac: number | null; dupParaCharFrac: number | null },
): string | null {
  const len = text.length;
  if (len === 0) return null;
  const paragraphs = oldSplitParagraphs(text);
  const paraDup = oldFindDuplicates(paragraphs);
  if (limits.dupParaFrac !== null && paraDup.elements / paragraphs.length > limits.dupParaFrac) return `${prefix}_dup_para_frac`;
  if (limits.dupParaCharFrac !== null && paraDup.chars / len > limits.dupParaCharFrac) return `${prefix}_dup_para_char_frac`;
  const lines = oldSplitLines(text);
  const lineDup = oldFindDuplicates(lines);
  if (limits.dupLineFrac !== null && lineDup.elements / lines.length > limits.dupLineFrac) return `${prefix}_dup_line_frac`;
  if (limits.dupLineCharFrac !== null && lineDup.chars / len > limits.dupLineCharFrac) return `${prefix}_dup_line_char_frac`;
  return null;
}

const OLD_HAS_WORD_CHAR_RE = /[\p{L}\p{N}]/u;
const OLD_CJK_CHAR_RE = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

/** The old countClass: per code point (a valid surrogate pair as one), classed by the regexes. */
function oldCountClass(text: string, re: RegExp): number {
  let n = 0;
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    let width = 1;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) width = 2;
    }
    if (re.test(text.slice(i, i + width))) n++;
    i += width;
  }
  return n;
}

const oldCountCjkChars = (text: string): number => oldCountClass(text, OLD_CJK_CHAR_RE);
const oldCountLettersAndDigits = (text: string): number => oldCountClass(text, OLD_HAS_WORD_CHAR_RE);

function oldIsCjkText(text: string, lang?: string): boolean {
  if (lang !== undefined && lang !== 'und') return new Set(['zh', 'ja', 'ko']).has(lang);
  const sample = text.length > 2000 ? text.slice(0, 2000) : text;
  const letters = oldCountLettersAndDigits(sample);
  return letters > 0 && oldCountCjkChars(sample) / letters > 0.5;
}

const OLD_BULLET_RE = /^\s*[•●○◦▪▫■□‣⁃∙·\-*]/u;
const OLD_ELLIPSIS_END_RE = /(?:\.\.\.|…)\s*$/u;

function oldBulletAndEllipsisLineRatios(text: string): { bullet: number; ellipsis: number } {
  const lines = text.split('\n');
  let bullet = 0;
  let ellipsis = 0;
  for (const line of lines) {
    if (OLD_BULLET_RE.test(line)) bullet++;
    if (OLD_ELLIPSIS_END_RE.test(line)) ellipsis++;
  }
  return { bullet: bullet / lines.length, ellipsis: ellipsis / lines.length };
}

// ---- Random texts. ----

/** Every JS \s character. */
const SPACES = ['\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', ...Array.from({ length: 11 }, (_, k) => String.fromCharCode(0x2000 + k)), '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff'];
const BULLETS = ['•', '●', '○', '◦', '▪', '▫', '■', '□', '‣', '⁃', '∙', '·', '-', '*', '+', '→', '◆'];
const PIECES = [
  'the',
  'cat',
  'Öl',
  'naïve',
  'año',
  '中文',
  '曹操',
  'ひらがな',
  'カタカナ',
  '한국어',
  '42',
  '٣',
  '#',
  '.',
  '..',
  '...',
  '…',
  '……',
  '。',
  '！',
  '😀',
  '𠀀',
  '𝐀',
  '\ud83d',
  '\ude00',
  '\udc00\ud800',
  '\u00e9',
  '\u00b7',
  ...SPACES,
  ...BULLETS,
];
const SEPARATORS = ['\n', '\n', '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', '\n \n', '\n\t\n', '\n\u3000\n', ''];

const lineArb = fc.array(fc.constantFrom(...PIECES), { maxLength: 8 }).map((p) => p.join(''));
/** Texts of lines and paragraphs, some repeated, joined by every kind of separator. */
const textArb = fc
  .tuple(fc.array(lineArb, { minLength: 1, maxLength: 5 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...SEPARATORS), fc.boolean()), { maxLength: 30 }), fc.constantFrom('', ' ', '\n', '\n\n', ' \r\n'), fc.constantFrom('', ' ', '\n', '\n\n', '…  ', '\r\n'))
  .map(([pool, picks, head, tail]) => {
    let text = head;
    const chunks: string[] = [];
    for (const [k, sep, repeatChunk] of picks) {
      const line = repeatChunk && chunks.length > 0 ? chunks[k % chunks.length]! : pool[k % pool.length]!;
      chunks.push(line + sep);
      text += line + sep;
    }
    return text + tail;
  });
const anyText = fc.oneof(textArb, fc.string({ unit: fc.constantFrom(...PIECES, 'a', 'b', '\n') }), fc.string({ unit: 'binary', maxLength: 60 }));

const RUNS = { numRuns: 4000 };

describe('fast Gopher/CJK statistics agree with the old code on random texts', () => {
  it('isJsSpace is JS \\s on every UTF-16 unit', () => {
    for (let c = 0; c < 0x10000; c++) expect(isJsSpace(c), `U+${c.toString(16)}`).toBe(/\s/.test(String.fromCharCode(c)));
  });

  it('duplicate lines and paragraphs', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const lines = oldSplitLines(text);
        expect(duplicateLines(text)).toEqual({ ...oldFindDuplicates(lines), count: lines.length });
        const paragraphs = oldSplitParagraphs(text);
        expect(duplicateParagraphs(text)).toEqual({ ...oldFindDuplicates(paragraphs), count: paragraphs.length });
        // The exported splitters and findDuplicates are unchanged.
        expect(findDuplicates(splitLinesForRepetition(text))).toEqual(oldFindDuplicates(lines));
        expect(splitParagraphs(text)).toEqual(paragraphs);
      }),
      RUNS,
    );
  });

  it('lineParagraphRepetition under random limits', () => {
    const limit = fc.option(fc.constantFrom(0, 0.01, 0.1, 0.2, 0.3, 0.5, 0.99, 1), { nil: null });
    fc.assert(
      fc.property(anyText, limit, limit, limit, limit, (text, dupLineFrac, dupParaFrac, dupLineCharFrac, dupParaCharFrac) => {
        const limits = { dupLineFrac, dupParaFrac, dupLineCharFrac, dupParaCharFrac };
        expect(lineParagraphRepetition(text, 'p', limits)).toBe(oldLineParagraphRepetition(text, 'p', limits));
      }),
      RUNS,
    );
  });

  it('CJK and letter/digit counts, and isCjkText', () => {
    fc.assert(
      fc.property(anyText, fc.constantFrom(undefined, 'und', 'zh', 'en'), (text, lang) => {
        expect(countCjkChars(text)).toBe(oldCountCjkChars(text));
        expect(countLettersAndDigits(text)).toBe(oldCountLettersAndDigits(text));
        // Asked twice, as the filters do (the answers are memoised).
        expect(isCjkText(text, lang)).toBe(oldIsCjkText(text, lang));
        expect(isCjkText(text, lang)).toBe(oldIsCjkText(text, lang));
        expect(countLettersAndDigits(text)).toBe(oldCountLettersAndDigits(text));
      }),
      RUNS,
    );
  });

  it('bullet and ellipsis line ratios', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        expect(bulletAndEllipsisLineRatios(text)).toEqual(oldBulletAndEllipsisLineRatios(text));
      }),
      RUNS,
    );
  });

  it('hand-written edge cases', () => {
    const cases = [
      '',
      '\n',
      '\n\n',
      'a',
      'a\n',
      '\na',
      'a\na',
      'a\n\na',
      'a\n\n\na\n\na',
      ' \n a \n\n a \n ',
      'x\r\nx\r\n\r\nx\r\n',
      '\u3000…\u3000\n  • item\n\ufeff- item...\ufeff\n..\n.…\n...',
      '*\n-\n·\n\u2028•',
      '𠀀𠀀\ud840\n\udc00中',
      'ab\nba\nab\n\nab\nba\nab',
    ];
    for (const text of cases) {
      const lines = oldSplitLines(text);
      const paragraphs = oldSplitParagraphs(text);
      expect(duplicateLines(text), JSON.stringify(text)).toEqual({ ...oldFindDuplicates(lines), count: lines.length });
      expect(duplicateParagraphs(text), JSON.stringify(text)).toEqual({ ...oldFindDuplicates(paragraphs), count: paragraphs.length });
      expect(bulletAndEllipsisLineRatios(text), JSON.stringify(text)).toEqual(oldBulletAndEllipsisLineRatios(text));
      expect(countCjkChars(text), JSON.stringify(text)).toBe(oldCountCjkChars(text));
      expect(countLettersAndDigits(text), JSON.stringify(text)).toBe(oldCountLettersAndDigits(text));
    }
    expect(duplicateLines('a\n\nb\na\n')).toEqual({ elements: 1, chars: 1, count: 4 });
    expect(duplicateParagraphs(' p\nq\n\n\np\nq\n\np\nq \n')).toEqual({ elements: 2, chars: 6, count: 3 });
    expect(bulletAndEllipsisLineRatios('\u00a0• a\nb…\u3000\nc...\t\nd..')).toEqual({ bullet: 0.25, ellipsis: 0.5 });
    expect(countCjkChars('中𠀀a😀')).toBe(2);
    expect(countLettersAndDigits('中𠀀a😀\ud800')).toBe(3);
  });
});

// ---- The real corpora. ----

const SHARED = fileURLToPath(new URL('../../../shared/data', import.meta.url));
const CORPORA = {
  wikitext: `${SHARED}/wikitext2/wiki.test.raw`,
  shakespeare: `${SHARED}/tinyshakespeare/input.txt`,
  sanguo: `${SHARED}/zh/sanguo_yanyi.txt`,
};
const HAVE_CORPORA = Object.values(CORPORA).every((f) => existsSync(f));

/**
 * A text cut into ~4,000-character documents at blank (whitespace-only) lines, or at any line end
 * past 6,000 characters (wikitext here has no blank lines).
 */
function cutDocs(text: string): string[] {
  const docs: string[] = [];
  let start = 0;
  let lineStart = 0;
  while (lineStart < text.length) {
    let nl = text.indexOf('\n', lineStart);
    if (nl < 0) nl = text.length;
    const blank = text.slice(lineStart, nl).trim() === '';
    const next = nl + 1;
    if ((blank && next - start >= 4000) || next - start >= 6000) {
      docs.push(text.slice(start, next));
      start = next;
    }
    lineStart = next;
  }
  if (start < text.length) docs.push(text.slice(start));
  return docs;
}

/** The corpora's documents; sanguo twice: as stored (CRLF) and with LF line ends (paragraphs then split). */
function corpusDocs(): Record<keyof typeof CORPORA, string[]> {
  const read = (f: string): string => readFileSync(f, 'utf8');
  const sanguo = read(CORPORA.sanguo);
  return {
    wikitext: cutDocs(read(CORPORA.wikitext)),
    shakespeare: cutDocs(read(CORPORA.shakespeare)),
    sanguo: [...cutDocs(sanguo), ...cutDocs(sanguo.replace(/\r\n/g, '\n'))],
  };
}

/** Must match the list in the fixture script (see RECORDED). */
const FILTERS: DocFilter[] = [
  gopherQualityFilter(),
  gopherRepetitionFilter(),
  cjkFilter(),
  gopherQualityFilter({ minAlphaWordsRatio: null, maxBulletLinesRatio: 0.01, maxEllipsisLinesRatio: 0.002 }),
  gopherRepetitionFilter({ dupLineFrac: 0.02, dupParaFrac: 0.01, dupLineCharFrac: 0.005, dupParaCharFrac: 0.005 }),
  cjkFilter({ maxBulletLinesRatio: 0.01, maxEllipsisLinesRatio: 0.002 }),
  gopherRepetitionFilter({ dupLineFrac: null, dupParaFrac: null, dupLineCharFrac: null, dupParaCharFrac: null }),
  cjkFilter({ dupLineFrac: null, dupParaFrac: null, dupLineCharFrac: null }),
  cjkFilter({ maxCharsPerSentence: null, dupLineFrac: null, dupLineCharFrac: null, dupParaFrac: 0.01, dupParaCharFrac: 0.001 }),
];

/**
 * The answers of FILTERS (as 'filter index:rule' → document indices; null answers left out) from the
 * code before the change, recorded by /tmp/gf/fixture.ts: the same corpus cutting and FILTERS run
 * over copies of gopher.ts, cjk.ts and text-stats.ts at commit 9a828ef.
 */
const RECORDED: Record<keyof typeof CORPORA, { docs: number; drops: Record<string, number[]> }> = {
  wikitext: {
    docs: 201,
    drops: {
      '0:gopher_below_alpha_threshold': [0, 5, 6, 7, 8, 10, 14, 25, 26, 49, 50, 51, 52, 53, 55, 68, 69, 73, 74, 75, 76, 77, 78, 80, 87, 95, 111, 117, 118, 119, 131, 163, 167, 168, 169, 170, 174, 176, 177, 178, 186, 187, 188, 189],
      '1:gopher_duplicated_5_n_grams': [0],
      '4:gopher_duplicated_5_n_grams': [0],
      '6:gopher_duplicated_5_n_grams': [0],
      '4:gopher_dup_line_frac': [50, 96, 97, 189],
      '4:gopher_dup_line_char_frac': [95],
    },
  },
  shakespeare: {
    docs: 265,
    drops: {
      '4:gopher_dup_line_frac': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 103, 104, 106, 107, 108, 109, 110, 112, 113, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 131, 132, 133, 134, 135, 136, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 184, 185, 186, 188, 189, 190, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 209, 210, 211, 212, 213, 214, 216, 217, 218, 219, 221, 222, 223, 225, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 251, 252, 253, 254, 255, 256, 257, 258, 259, 260, 262, 263, 264],
      '1:gopher_dup_line_frac': [40, 105, 116, 151, 239, 254, 262],
      '4:gopher_dup_para_frac': [54, 102, 105, 111, 114, 130, 137, 151, 183, 187, 191, 207, 208, 215, 220, 224, 226, 249, 250, 261],
    },
  },
  sanguo: {
    docs: 281,
    drops: {
      '2:cjk_dup_line_frac': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139],
      '5:cjk_dup_line_frac': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139],
      '0:gopher_short_doc': [140, 280],
      '1:gopher_dup_line_frac': [140, 280],
      '3:gopher_short_doc': [140, 280],
      '4:gopher_dup_line_frac': [140, 280],
      '8:cjk_dup_para_frac': [181, 189],
    },
  },
};

describe.skipIf(!HAVE_CORPORA)('fast Gopher/CJK statistics on the real corpora (../shared/data)', () => {
  const corpora = HAVE_CORPORA ? corpusDocs() : { wikitext: [], shakespeare: [], sanguo: [] };

  it('the statistics agree with the old code on every document', () => {
    for (const docs of Object.values(corpora)) {
      for (const text of docs) {
        const lines = oldSplitLines(text);
        const paragraphs = oldSplitParagraphs(text);
        expect(duplicateLines(text)).toEqual({ ...oldFindDuplicates(lines), count: lines.length });
        expect(duplicateParagraphs(text)).toEqual({ ...oldFindDuplicates(paragraphs), count: paragraphs.length });
        expect(bulletAndEllipsisLineRatios(text)).toEqual(oldBulletAndEllipsisLineRatios(text));
        expect(countCjkChars(text)).toBe(oldCountCjkChars(text));
        expect(countLettersAndDigits(text)).toBe(oldCountLettersAndDigits(text));
        expect(isCjkText(text)).toBe(oldIsCjkText(text));
      }
    }
  });

  it('the Gopher, Gopher repetition and CJK filters answer as recorded from the old code', () => {
    for (const [name, docs] of Object.entries(corpora) as Array<[keyof typeof CORPORA, string[]]>) {
      const drops: Record<string, number[]> = {};
      docs.forEach((text, i) => {
        FILTERS.forEach((filter, k) => {
          const rule = filter.check({ id: `${name}-${i}`, text, source: name });
          if (rule !== null) (drops[`${k}:${rule}`] ??= []).push(i);
        });
      });
      expect({ docs: docs.length, drops }).toEqual(RECORDED[name]);
    }
  });
});
