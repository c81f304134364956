import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildFilterStages,
  c4Lines,
  c4Stage,
  cjkFilter,
  gopherQualityFilter,
  gopherRepetitionFilter,
  maskPii,
  parseFilterNames,
  piiTransform,
} from '../../src/data/pipeline/filters/index.js';
import { spacedWords } from '../../src/data/pipeline/filters/c4.js';
import { exactDedupKey } from '../../src/data/pipeline/dedup.js';
import { charNgramRepetition, countCjkChars, countLettersAndDigits, lettersAndDigitsSeq, scanWordsTS, setNativeTextKernels, wordNgramRepetition } from '../../src/data/pipeline/filters/text-stats.js';
import { GOPHER_DUP_NGRAMS } from '../../src/data/pipeline/filters/gopher.js';
import { nativeAddonExports } from '../../src/tensor/backend/native.js';
import { charSeq, duplicateNgramChars, isCjkText, scanWords, topNgramChars, wordOnlyTokens, wordSeq, wordSeqOfScan } from '../../src/data/pipeline/filters/text-stats.js';
import { normalizeText } from '../../src/data/pipeline/normalize.js';
import type { Doc } from '../../src/data/pipeline/types.js';

const SHARED = fileURLToPath(new URL('../../../shared/data', import.meta.url));
/** The real texts in ../shared/data; the tests that read them skip when it is absent. */
const HAVE_SHARED = existsSync(SHARED);
const sharedText = (rel: string): string => (HAVE_SHARED ? readFileSync(`${SHARED}/${rel}`, 'utf8') : '');
const SHAKESPEARE = sharedText('tinyshakespeare/input.txt');
const SANGUO = normalizeText(sharedText('zh/sanguo_yanyi.txt'));
const LUNYU = (HAVE_SHARED ? JSON.parse(sharedText('zh/lunyu.json')) : [{ chapter: '', paragraphs: [] }]) as Array<{
  chapter: string;
  paragraphs: string[];
}>;
/** it(), skipped (with the reason in its name) when ../shared/data is absent. */
const itShared = it.skipIf(!HAVE_SHARED);

const doc = (text: string, lang?: string): Doc => (lang ? { id: 't', text, source: 'test', lang } : { id: 't', text, source: 'test' });

// A realistic local-news article (about 190 words, several paragraphs).
const NEWS = `The city council voted on Tuesday to approve a new budget for road repairs, ending a debate that had lasted for most of the year.

The plan sets aside 4.2 million dollars to fix potholes and resurface the busiest streets in the northern districts. Council members said that the money will come from a one-time transfer and from savings in the parks department.

"We have listened to residents, and the state of our roads is the number one complaint we hear," said the mayor, who has made the issue a priority since the election. Several members argued that the plan does not go far enough, and that the city should have a long-term strategy to deal with ageing infrastructure.

Work is expected to begin in the spring and to continue through the autumn. Drivers should expect delays on the main routes into the centre, and the council has promised to publish a map of closures on its website every week.

Local business owners welcomed the decision but asked for the work to be carried out at night where possible.`;

const FIRST_SCENE = SHAKESPEARE.split('\n').slice(0, 120).join('\n');

describe('Gopher quality rules', () => {
  const gopher = gopherQualityFilter();

  itShared('keeps real prose: a news article and a Shakespeare scene', () => {
    expect(gopher.check(doc(NEWS))).toBeNull();
    expect(gopher.check(doc(FIRST_SCENE))).toBeNull();
  });

  it('drops documents under 50 or over 100,000 words', () => {
    expect(gopher.check(doc('Breaking: council approves the road budget. More details to follow later today.'))).toBe('gopher_short_doc');
    // 179 words × 600 copies > 100,000 words.
    const huge = Array(600).fill(NEWS).join('\n\n');
    expect(gopher.check(doc(huge))).toBe('gopher_long_doc');
  });

  it('drops text-speak (mean word length < 3) and token soup (> 10)', () => {
    const chat = Array(12).fill('ok so u r at the pub? me 2 lol. c u in 5 ok? k ty').join('\n');
    expect(gopher.check(doc(chat))).toBe('gopher_below_avg_word_len');
    const hashes = Array.from({ length: 60 }, (_, i) => `sha256-${(0xabcdef123456 * (i + 7)).toString(16)}deadbeefcafebabe`).join(' ');
    expect(gopher.check(doc(`The release files and the checksums for them: ${hashes}`))).toBe('gopher_above_avg_word_len');
  });

  it('drops hashtag spam and ellipsis-heavy text (symbol-to-word ratio > 0.1)', () => {
    const tags = `${NEWS}\n\n${Array.from({ length: 40 }, (_, i) => `#roads${i} #citycouncil`).join(' ')}`;
    expect(gopher.check(doc(tags))).toBe('gopher_too_many_hashes');
    // A breathless teaser with an ellipsis every few words.
    const teaser = NEWS.split(' ')
      .map((w, i) => (i % 6 === 5 ? `${w}...` : w))
      .join(' ');
    expect(gopher.check(doc(teaser))).toBe('gopher_too_many_ellipsis');
  });

  it('drops bullet lists (> 90% bullet lines) and snippet pages (> 30% lines ending in an ellipsis)', () => {
    const items = ['fresh apples from the local farm', 'the best bread that you have ever tasted', 'cheese and wine with the family'];
    const bullets = Array.from({ length: 30 }, (_, i) => `• ${items[i % 3]} number ${i}`).join('\n');
    expect(gopher.check(doc(bullets))).toBe('gopher_too_many_bullets');
    // 9 of 10 lines bulleted is still allowed.
    const nine = `Shopping list for the weekend and the party with the family\n${Array.from({ length: 9 }, (_, i) => `- ${items[i % 3]} and ${items[(i + 1) % 3]}`).join('\n')}`;
    expect(gopher.check(doc(nine))).toBeNull();
    const snippets = Array.from(
      { length: 10 },
      (_, i) => `Result ${i}: The council said that the budget for the roads in the north would be…\nPublished ${i} days ago by the newsroom.`,
    ).join('\n');
    expect(gopher.check(doc(snippets))).toBe('gopher_too_many_end_ellipsis');
  });

  it('drops tables of numbers (< 80% of words with a letter)', () => {
    const rows = Array.from({ length: 20 }, (_, i) => `${2000 + i} ${(i * 1.7).toFixed(1)} ${i * 13} ${i * 7 + 3} and the total`).join('\n');
    expect(gopher.check(doc(rows))).toBe('gopher_below_alpha_threshold');
  });

  it('drops keyword lists without stop words', () => {
    const seo = Array.from({ length: 10 }, (_, i) => `cheap flights London Paris deals ${['today', 'tomorrow', 'weekend', 'summer', 'winter'][i % 5]} best prices guaranteed`).join('\n');
    expect(gopher.check(doc(seo))).toBe('gopher_few_stop_words');
  });

  itShared('leaves Chinese to the CJK rules and can switch rules off', () => {
    expect(gopher.check(doc(SANGUO.slice(0, 3000)))).toBeNull();
    expect(gopher.check(doc('short text', 'zh'))).toBeNull();
    const lenient = gopherQualityFilter({ minWords: 5, minStopWords: null });
    expect(lenient.check(doc('Breaking: council approves road budget. More details follow later today.'))).toBeNull();
    expect(() => gopherQualityFilter({ minWords: 10, maxWords: 5 })).toThrow(/minWords \(10\) is larger than maxWords \(5\)/);
    expect(() => gopherQualityFilter({ maxBulletLinesRatio: 2 })).toThrow(/maxBulletLinesRatio must be in \[0, 1\]/);
  });
});

// Reference implementations, written the plain way datatrove's Python does it (joined strings, Counter/set).
function refTop(words: string[], n: number): number {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= words.length; i++) {
    const g = words.slice(i, i + n).join(' ');
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  let best = '';
  let bestCount = 0;
  for (const [g, c] of counts) {
    if (c > bestCount) {
      best = g;
      bestCount = c;
    }
  }
  return bestCount > 1 ? best.length * bestCount : 0;
}
function refDup(words: string[], n: number): number {
  const seen = new Set<string>();
  let chars = 0;
  let i = 0;
  while (i < words.length - n + 1) {
    const g = words.slice(i, i + n).join('');
    if (seen.has(g)) {
      chars += g.length;
      i += n;
    } else {
      seen.add(g);
      i++;
    }
  }
  return chars;
}

describe('Gopher repetition rules', () => {
  const rep = gopherRepetitionFilter();

  itShared('keeps real prose', () => {
    expect(rep.check(doc(NEWS))).toBeNull();
    expect(rep.check(doc(FIRST_SCENE))).toBeNull();
  });

  it('drops pages with repeated paragraphs and lines', () => {
    const paras = NEWS.split('\n\n');
    const repeatedParas = [...paras, paras[0], paras[1], paras[0]].join('\n\n');
    expect(rep.check(doc(repeatedParas))).toBe('gopher_dup_para_frac');
    const sidebar = 'Subscribe now';
    const lines = NEWS.split(/(?<=[.!?]"?)\s+/).flatMap((s) => [s, sidebar]).join('\n');
    expect(rep.check(doc(lines))).toBe('gopher_dup_line_frac');
  });

  it('drops one n-gram repeated all over the page, and copy-pasted runs', () => {
    const spam = NEWS.split('. ').join('. Buy now! ') + ' Buy now! Buy now! Buy now! Buy now! Buy now! Buy now! Buy now!';
    expect(rep.check(doc(spam.replace(/Buy now! /g, 'buy now buy now ')))).toMatch(/^gopher_top_[234]_gram$/);
    const sentences = NEWS.replace(/\n+/g, ' ').split(/(?<=\.) /);
    const copied = [...sentences, ...sentences.slice(0, 4)].join(' ');
    expect(rep.check(doc(copied))).toMatch(/^gopher_duplicated_\d+_n_grams$/);
  });

  it('hashed n-gram statistics equal the plain string implementation (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'bb', 'the', 'cat', 'sat', 'on', 'mat', 'x'), { maxLength: 80 }), fc.integer({ min: 1, max: 10 }), (words, n) => {
        const seq = wordSeq(words);
        expect(topNgramChars(seq, n, 1)).toBe(refTop(words, n));
        expect(duplicateNgramChars(seq, n)).toBe(refDup(words, n));
        const chars = words.join('');
        expect(duplicateNgramChars(charSeq(chars), n)).toBe(refDup([...chars], n));
      }),
      { numRuns: 400 },
    );
  });
});

describe.skipIf(nativeAddonExports()?.textWordScan === undefined)('native word scan and n-gram repetition (native/text.cc)', () => {
  const top = [
    [2, 0.2],
    [3, 0.18],
    [4, 0.16],
  ] as const;
  const dup = GOPHER_DUP_NGRAMS;
  const both = (text: string): void => {
    setNativeTextKernels(true);
    const scanN = scanWords(text);
    const native = { ...scanN, starts: Array.from(scanN.starts.subarray(0, scanN.count)), ends: Array.from(scanN.ends.subarray(0, scanN.count)) };
    const repN = wordNgramRepetition(text, scanN, top, dup);
    // Loose limits make every rule run to the end (none fires), so each measure is compared.
    const allN = wordNgramRepetition(text, scanN, [[2, 2], [3, 2]], [[5, 2], [7, 2]]);
    setNativeTextKernels(false);
    const scanT = scanWordsTS(text);
    expect(native, JSON.stringify(text).slice(0, 200)).toEqual({ ...scanT, starts: Array.from(scanT.starts.subarray(0, scanT.count)), ends: Array.from(scanT.ends.subarray(0, scanT.count)) });
    expect(repN).toEqual(wordNgramRepetition(text, scanT, top, dup));
    expect(allN).toEqual(wordNgramRepetition(text, scanT, [[2, 2], [3, 2]], [[5, 2], [7, 2]]));
  };

  it('gives the TypeScript answers on random and repetitive text', () => {
    const words = ['the', 'cat', 'sat', "don't", 'co-op', 'U.S.A', '3.14', '—', '...', '##', 'é', 'naïve', '中文', "’tis", '_x_', '\u0301'];
    const seps = [' ', '  ', '\n', '\n\n', '\t', ', ', '. ', '\u00a0', '\u3000'];
    try {
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.constantFrom(...words), fc.constantFrom(...seps)), { maxLength: 120 }), fc.integer({ min: 1, max: 4 }), (parts, repeat) => {
          const once = parts.map(([w, s]) => w + s).join('');
          both(once.repeat(repeat));
        }),
        { numRuns: 600 },
      );
    } finally {
      setNativeTextKernels(true);
    }
  });

  itShared('gives the TypeScript answers on the CJK character n-gram rules (random and repetitive Chinese, and Sanguo Yanyi)', () => {
    const top = [
      [3, 0.2],
      [5, 0.18],
    ] as const;
    const dupRules = [
      [8, 0.15],
      [11, 0.13],
    ] as const;
    const loose = [[3, 2]] as const;
    const looseDup = [[8, 2], [12, 2]] as const;
    const check = (text: string): void => {
      setNativeTextKernels(true);
      const n = [charNgramRepetition(text, top, dupRules), charNgramRepetition(text, loose, looseDup)];
      setNativeTextKernels(false);
      expect(n, text.slice(0, 80)).toEqual([charNgramRepetition(text, top, dupRules), charNgramRepetition(text, loose, looseDup)]);
    };
    const pieces = ['天下', '大势', '分久必合', '，', '。', ' ', 'ab', '1', '合久必分', '\n'];
    try {
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 80 }), fc.integer({ min: 1, max: 3 }), (parts, repeat) => check(parts.join('').repeat(repeat))),
        { numRuns: 500 },
      );
      for (let i = 0; i < SANGUO.length; i += 4000) check(SANGUO.slice(i, i + 4000));
    } finally {
      setNativeTextKernels(true);
    }
  });

  itShared('gives the TypeScript answers on every 4,000-character document of the shared corpora', () => {
    try {
      for (const f of ['tinyshakespeare/input.txt', 'wikitext2/wiki.test.raw']) {
        const text = readFileSync(`${SHARED}/${f}`, 'utf8');
        for (let i = 0; i < text.length; i += 4000) both(normalizeText(text.slice(i, i + 4000)));
      }
    } finally {
      setNativeTextKernels(true);
    }
  });
});

describe('character classes by table', () => {
  it('count CJK characters and letters/digits, and keep letters/digits, exactly as the Unicode regexes do', () => {
    const pieces = ['a', '1', ' ', '，', '中', '文', 'の', 'カ', '한', '𠀀', '😀', '\ud800', '\udc00', '٣', '\u0301', 'é', '.'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 40 }), (parts) => {
        const text = parts.join('');
        expect(countCjkChars(text)).toBe(text.match(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu)?.length ?? 0);
        expect(countLettersAndDigits(text)).toBe(text.match(/[\p{L}\p{N}]/gu)?.length ?? 0);
        const want = charSeq(text.replace(/[^\p{L}\p{N}]+/gu, ''));
        const got = lettersAndDigitsSeq(text);
        expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
        expect(Array.from(got.prefix)).toEqual(Array.from(want.prefix));
        expect(got.length).toBe(want.length);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('C4 rules', () => {
  it('counts words and the longest word as line.split(/\\s+/) does, and the dedup key folds spaces as /\\s+/ does (random strings)', () => {
    const pieces = ['ab', 'c', ' ', '  ', '\t', '\u00a0', '\u3000', '\u2028', '\ufeff', 'É', 'x'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 30 }), (parts) => {
        const text = parts.join('');
        expect(exactDedupKey(text)).toBe(text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim());
        const line = text.trim();
        if (line.length === 0) return;
        const words = line.split(/\s+/);
        expect(spacedWords(line)).toEqual({ count: words.length, longest: Math.max(...words.map((w) => w.length)) });
      }),
      { numRuns: 3000 },
    );
  });

  it('applies the lower-case line rules to a phrase a citation splits', () => {
    expect(c4Lines('Enable java[12]script to read this page and its other parts.\n' + 'One two three four five six. Seven eight nine ten eleven. Twelve thirteen fourteen fifteen sixteen.').removed).toEqual({ c4_line_javascript: 1 });
  });

  itShared("keeps only Shakespeare lines that end in terminal punctuation and have ≥ 5 words, as C4 does", () => {
    const passage = SHAKESPEARE.split('\n').slice(0, 24).join('\n');
    const r = c4Lines(passage);
    expect(r.drop).toBeNull();
    expect(r.lines).toEqual([
      'Before we proceed any further, hear me speak.',
      'You are all resolved rather to die than to famish?',
      'First, you know Caius Marcius is chief enemy to the people.',
      "Let us kill him, and we'll have corn at our own price.",
      "No more talking on't; let it be done: away, away!",
    ]);
    // Speaker names end in ':' (8 of them); "Speak, speak.", "Resolved. resolved.", "We know't, we know't." and "Is't a verdict?" are under 5 words.
    expect(r.removed).toEqual({ c4_line_no_terminal_punct: 8, c4_line_few_words: 4 });
    const kept = c4Stage().process(doc(passage));
    expect(kept.keep && kept.doc.text.split('\n')).toHaveLength(5);
  });

  it('verse whose lines end in commas loses those lines; too few sentences left drops the page', () => {
    const verse = "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\nRough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;";
    expect(c4Stage().process(doc(verse))).toEqual({ keep: false, rule: 'c4_too_few_sentences' });
  });

  it('drops lorem ipsum and code, removes javascript notices, policy lines, citations and ellipsis lines', () => {
    expect(c4Stage().process(doc(`${NEWS}\nLorem ipsum dolor sit amet, consectetur adipiscing elit.`))).toEqual({ keep: false, rule: 'c4_lorem_ipsum' });
    expect(c4Stage().process(doc(`${NEWS}\nfunction add(a, b) { return a + b; } is all the code you need.`))).toEqual({
      keep: false,
      rule: 'c4_curly_bracket',
    });
    const web = [
      'Please enable JavaScript in your browser to view this page properly.',
      'The bridge opened in 1932 and carried trams until the late fifties.[1]',
      'It was closed for repairs in 2004 after engineers found cracks in the deck.[citation needed]',
      'By using this site you agree to our Privacy Policy and Terms of Use.',
      'Read more about the history of the bridge and the people who built it...',
      'A new footbridge will open next to it in the summer of next year.',
    ].join('\n');
    const counters: Record<string, number> = {};
    const r = c4Stage().process(doc(web), counters);
    expect(r.keep && r.doc.text).toBe(
      [
        'The bridge opened in 1932 and carried trams until the late fifties.',
        'It was closed for repairs in 2004 after engineers found cracks in the deck.',
        'A new footbridge will open next to it in the summer of next year.',
      ].join('\n'),
    );
    expect(counters).toEqual({ c4_line_javascript: 1, c4_line_policy: 1, c4_line_no_terminal_punct: 1 });
  });

  it('bad words (optional) match whole words only, case-insensitively', () => {
    const stage = c4Stage({ badWords: ['scunthorpe', 'darn'] });
    expect(stage.process(doc(`${NEWS}\nThe Darn thing broke again on the way home, the driver said.`))).toEqual({ keep: false, rule: 'c4_badwords' });
    // A substring inside another word is not a match ("darned" is a different word, "bad" in "badge").
    expect(stage.process(doc(`${NEWS}\nHe darned his socks by the fire while the rain went on.`)).keep).toBe(true);
    expect(c4Stage().process(doc(`${NEWS}\nThe Darn thing broke again on the way home, the driver said.`)).keep).toBe(true);
  });

  itShared('rewrite:false gives the same decision but keeps the text; Chinese is skipped', () => {
    const passage = SHAKESPEARE.split('\n').slice(0, 24).join('\n');
    const r = c4Stage({ rewrite: false }).process(doc(passage));
    expect(r.keep && r.doc.text).toBe(passage);
    const zh = SANGUO.slice(0, 2000);
    const z = c4Stage().process(doc(zh));
    expect(z.keep && z.doc.text).toBe(zh);
    expect(() => c4Stage({ minWordsPerLine: -1 })).toThrow(/minWordsPerLine must be a non-negative integer/);
  });
});

describe('CJK rules', () => {
  const cjk = cjkFilter();
  const chapter1 = SANGUO.slice(SANGUO.indexOf('第一回'), SANGUO.indexOf('第二回'));
  const xueer = (LUNYU[0] as { paragraphs: string[] }).paragraphs.join('\n\n');

  itShared('keeps real Chinese: a Sanguo chapter and a Lunyu chapter', () => {
    expect(chapter1.length).toBeGreaterThan(3000);
    expect(cjk.check(doc(chapter1))).toBeNull();
    expect(cjk.check(doc(xueer))).toBeNull();
    expect(cjk.check(doc(chapter1, 'zh'))).toBeNull();
  });

  itShared('keeps every chapter of Sanguo Yanyi', () => {
    const chapters = SANGUO.split(/(?=第[一二三四五六七八九十百]+回)/).filter((c) => c.startsWith('第'));
    expect(chapters.length).toBe(120);
    const dropped = chapters.map((c) => cjk.check(doc(c))).filter((r) => r !== null);
    expect(dropped).toEqual([]);
  });

  itShared('ignores non-CJK documents (the word rules judge those)', () => {
    expect(cjk.check(doc('too short'))).toBeNull();
    expect(isCjkText(NEWS)).toBe(false);
    expect(isCjkText(chapter1)).toBe(true);
  });

  itShared('drops short texts, mislabelled Latin text and pages without sentence punctuation', () => {
    expect(cjk.check(doc('子曰：“巧言令色，鲜矣仁！”'))).toBe('cjk_short_doc');
    expect(cjk.check(doc(`${NEWS}\n市议会昨晚开会讨论了用于学校翻修的预算。`, 'zh'))).toBe('cjk_low_cjk_ratio');
    const keywords = Array.from({ length: 40 }, (_, i) => `手机 电脑 平板 耳机 充电器 数据线 第${i}页 优惠 包邮 正品`).join(' ');
    expect(cjk.check(doc(keywords))).toBe('cjk_few_sentence_marks');
  });

  itShared('drops bullet lists, ellipsis lines and hashtag spam', () => {
    const list = Array.from({ length: 30 }, (_, i) => `• 第${i}条：今天的新闻内容，请点击查看详情。`).join('\n');
    expect(cjk.check(doc(list))).toBe('cjk_too_many_bullets');
    const snippets = chapter1
      .split('。')
      .slice(0, 40)
      .map((s) => `${s}……`)
      .join('\n');
    expect(cjk.check(doc(snippets))).toMatch(/^cjk_too_many_(end_)?ellipsis$/);
    const tags = `${chapter1.slice(0, 400)}\n${Array.from({ length: 40 }, (_, i) => `#话题${i}`).join(' ')}`;
    expect(cjk.check(doc(tags))).toBe('cjk_too_many_hashes');
  });

  itShared('drops repeated lines and character n-gram spam', () => {
    const paras = chapter1.split('\n\n').slice(0, 12);
    const repeated = [...paras, ...paras.slice(0, 6)].join('\n\n');
    expect(cjk.check(doc(repeated))).toMatch(/^cjk_dup_(para|line)_(char_)?frac$/);
    const spam = Array.from({ length: 60 }, (_, i) => `免费下载最新电影高清在线观看第${i}集。`).join('');
    expect(cjk.check(doc(spam))).toMatch(/^cjk_(top_\d+_char_gram|duplicated_\d+_char_grams)$/);
    const copied = chapter1.slice(0, 1500) + chapter1.slice(200, 800);
    expect(cjk.check(doc(copied))).toMatch(/^cjk_duplicated_\d+_char_grams$/);
  });
});

describe('PII masking', () => {
  it('masks e-mail addresses, phone numbers and IP addresses', () => {
    const text = [
      'Write to jane.doe+news@example.co.uk or press@city-council.gov for comments.',
      'Call +1 (555) 123-4567, 555-987-6543, (212) 555 0199, +44 20 7946 0958 or 020 7946 0958.',
      '中国移动：13800138000，或 138 0013 8000。',
      'The server at 192.168.10.254 and 2001:db8:85a3::8a2e:370:7334 (also ::1 and fe80::1%eth0) went down.',
    ].join('\n');
    const counts: Record<string, number> = {};
    expect(maskPii(text, {}, counts)).toBe(
      [
        'Write to <EMAIL> or <EMAIL> for comments.',
        'Call <PHONE>, <PHONE>, <PHONE>, <PHONE> or <PHONE>.',
        '中国移动：<PHONE>，或 <PHONE>。',
        'The server at <IP> and <IP> (also <IP> and <IP>%eth0) went down.',
      ].join('\n'),
    );
    expect(counts).toEqual({ email: 2, phone: 7, ipv4: 1, ipv6: 3 });
  });

  it('leaves numbers that are not PII alone', () => {
    const safe = [
      'On 2020-01-15 at 12:30:45 the index rose 3.14159 points to 1,234,567.89 (up $1,999.99).',
      'He reigned 1485-1509 and wrote ISBN 978-3-16-148410-0 with std::vector<int> in v1.2.3.4.5.',
      'Scores: 999.1.1.1 is not an address; nor is 256.256.256.256; see pages 123-456 and 12-34-56.',
      'Population 1 @,@ 234 @,@ 567 ; the year 2004 – 2005 season.',
    ].join('\n');
    expect(maskPii(safe)).toBe(safe);
  });

  itShared('finds nothing in the shared corpora, which contain no PII', () => {
    for (const text of [SHAKESPEARE, SANGUO]) {
      const counts: Record<string, number> = {};
      expect(maskPii(text, {}, counts)).toBe(text);
      expect(counts).toEqual({});
    }
  });

  it('the transform uses custom tokens and counts', () => {
    const t = piiTransform({ emailToken: '[email]', phone: false });
    const counters: Record<string, number> = {};
    const out = t.apply(doc('mail bob@example.org or call 555-987-6543'), counters);
    expect(out.text).toBe('mail [email] or call 555-987-6543');
    expect(counters).toEqual({ email: 1 });
  });
});

describe('filter selection', () => {
  it('parses --filters and builds stages in a fixed order', () => {
    expect(parseFilterNames('gopher, c4,pii')).toEqual(['gopher', 'c4', 'pii']);
    expect(parseFilterNames('none')).toEqual([]);
    expect(() => parseFilterNames('gopher,bogus')).toThrow(/unknown filter 'bogus'/);
    expect(buildFilterStages(parseFilterNames('gopher,c4,pii')).map((s) => s.name)).toEqual(['pii', 'c4', 'gopher', 'gopher_repetition', 'cjk']);
    expect(buildFilterStages(['gopher'], { cjkWithGopher: false }).map((s) => s.name)).toEqual(['gopher', 'gopher_repetition']);
  });
});

describe('n-gram pass skipping (fast path of the repetition rules)', () => {
  it('no repeated n-gram means no repeated longer one: both measures are 0 past it (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'bb', 'the', 'cat', 'sat', 'on', 'mat', 'x', 'y', 'z', 'w'), { maxLength: 60 }), fc.integer({ min: 1, max: 9 }), (words, n) => {
        const seq = wordSeq(words);
        const chars = [...words.join('')].map((c) => c);
        const cseq = charSeq(chars.join(''));
        for (const [s, joiner] of [[seq, 1], [cseq, 0]] as const) {
          if (topNgramChars(s, n, joiner) === 0 || duplicateNgramChars(s, n) === 0) {
            expect(topNgramChars(s, n, joiner)).toBe(0);
            expect(duplicateNgramChars(s, n)).toBe(0);
            for (let m = n + 1; m <= 10; m++) {
              expect(topNgramChars(s, m, joiner)).toBe(0);
              expect(duplicateNgramChars(s, m)).toBe(0);
            }
          }
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('fused word scan (fast path of the Gopher rules)', () => {
  // Letters, digits, marks, joiners, symbols, Unicode spaces, CJK, astral letters and lone surrogates.
  const pieces = ['a', 'B', 'z', '9', ' ', '\n', '\t', '.', ',', "'", '’', '-', '_', '#', '...', 'é', 'Ä', 'İ', 'ß', '中', '𝐀', '😀', '\ud800', '\udc00', '٣', '\u0301', '\u00a0', '\u3000', 'Σ', "a'b", 'x.y', 'the'];

  it('equals the regex tokens, whitespace split and Map-built word ids (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 120 }), (parts) => {
        const text = parts.join('');
        const scan = scanWords(text);
        const words = wordOnlyTokens(text);
        const spans: string[] = [];
        for (let w = 0; w < scan.count; w++) spans.push(text.slice(scan.starts[w], scan.ends[w]));
        expect(spans).toEqual([...words]);
        expect(scan.chars).toBe(words.reduce((n, w) => n + w.length, 0));
        const spaced = text.split(/\s+/).filter((w) => w.length > 0);
        expect(scan.spaced).toBe(spaced.length);
        expect(scan.spacedAlpha).toBe(spaced.filter((w) => /\p{L}/u.test(w)).length);
        const fast = wordSeqOfScan(text, scanWords(text));
        const slow = wordSeq(words);
        expect([...fast.ids]).toEqual([...slow.ids]);
        expect([...fast.prefix]).toEqual([...slow.prefix]);
      }),
      { numRuns: 500 },
    );
  });

  itShared('equals the regex tokens on the English corpora', () => {
    for (let i = 0; i < SHAKESPEARE.length; i += 200_000) {
      const text = SHAKESPEARE.slice(i, i + 20_000);
      const scan = scanWords(text);
      const words = wordOnlyTokens(text);
      expect(scan.count).toBe(words.length);
      expect(text.slice(scan.starts[scan.count - 1], scan.ends[scan.count - 1])).toBe(words[words.length - 1]);
      expect([...wordSeqOfScan(text, scanWords(text)).ids]).toEqual([...wordSeq(words).ids]);
    }
  });
});
