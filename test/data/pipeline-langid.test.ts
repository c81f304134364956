import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasLetters, LanguageIdentifier, languageStage, setNativeLangid } from '../../src/data/pipeline/langid.js';
import { langidCorpora, textWindows } from '../../src/bench/data-clean.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DATA = fileURLToPath(new URL('../../../shared/data', import.meta.url));
/** Tests on the shared corpora skip when ../shared/data is absent. */
const itShared = it.skipIf(!existsSync(DATA));

let id: LanguageIdentifier;
beforeAll(async () => {
  id = await LanguageIdentifier.load();
});

describe('language identification (eld)', () => {
  itShared('is ≥ 99% right on 200-character windows of the shared English and Chinese corpora', () => {
    const corpora = langidCorpora(DATA);
    for (const lang of ['en', 'zh'] as const) {
      const windows = corpora.filter((c) => c.lang === lang).flatMap((c) => textWindows(c.text, 200, 150));
      const right = windows.filter((w) => id.detect(w).lang === lang).length;
      expect(windows.length).toBe(300);
      expect(right / windows.length).toBeGreaterThanOrEqual(0.99);
    }
  });

  it('tells other languages apart and answers ISO 639-1 codes', () => {
    const samples: Record<string, string> = {
      fr: "Le conseil municipal s'est réuni hier soir pour discuter du budget consacré à la rénovation des écoles.",
      de: 'Der Stadtrat hat gestern Abend über den Haushalt für die Renovierung der Schulen beraten und abgestimmt.',
      es: 'El ayuntamiento se reunió anoche para debatir el presupuesto destinado a la renovación de las escuelas.',
      ja: '市議会は昨夜、学校の改修に充てる予算について話し合いました。',
      ru: 'Городской совет вчера вечером обсуждал бюджет на ремонт школ и дорог в центре города.',
      en: 'The city council met last night to discuss the budget for renovating the schools.',
      zh: '市议会昨晚开会讨论了用于学校翻修的预算。',
    };
    for (const [lang, text] of Object.entries(samples)) expect(id.detect(text).lang).toBe(lang);
  });

  it('says "und" when there are too few letters', () => {
    expect(id.detect('12345 67890 !!! ...').lang).toBe('und');
    expect(id.detect('').lang).toBe('und');
  });

  it('samples start, middle and end of long documents within eld’s 350-byte window', () => {
    const text = 'alpha '.repeat(200) + 'beta '.repeat(200) + 'gamma '.repeat(200);
    const s = id.sample(text);
    expect(Buffer.byteLength(s)).toBeLessThanOrEqual(350);
    expect(Buffer.byteLength(s)).toBeGreaterThan(300);
    expect(s.startsWith('alpha')).toBe(true);
    expect(s).toContain('beta');
    expect(s.trim().endsWith('gamma')).toBe(true);
    expect(id.sample('short')).toBe('short');
    // CJK: three bytes a character, so about a third as many characters, still from all three places.
    const zh = '天下大势'.repeat(200) + '分久必合'.repeat(200) + '合久必分'.repeat(200);
    const z = id.sample(zh);
    expect(Buffer.byteLength(z)).toBeLessThanOrEqual(350);
    expect(z.startsWith('天下大势')).toBe(true);
    expect(z).toContain('分久必合');
    expect(z.endsWith('合久必分')).toBe(true);
    // Text that fits is passed whole, whatever its script.
    expect(id.sample('天下大势，分久必合')).toBe('天下大势，分久必合');
  });

  it('the stage sets doc.lang and drops languages not asked for', () => {
    const stage = languageStage(id, { languages: ['en', 'zh'] });
    const en = stage.process({ id: '1', text: 'The quick brown fox jumps over the lazy dog near the river bank.', source: 's' });
    expect(en.keep && en.doc.lang).toBe('en');
    const zh = stage.process({ id: '2', text: '话说天下大势，分久必合，合久必分。', source: 's' });
    expect(zh.keep && zh.doc.lang).toBe('zh');
    const counters: Record<string, number> = {};
    expect(stage.process({ id: '3', text: 'Der Hund schläft unter dem großen Tisch in der Küche.', source: 's' }, counters)).toEqual({
      keep: false,
      rule: 'lang_not_allowed',
    });
    expect(counters).toEqual({ lang_de: 1 });
    expect(stage.process({ id: '4', text: '42 + 17 = 59', source: 's' })).toEqual({ keep: false, rule: 'lang_unknown' });
    // Without a language list everything is kept, only labelled.
    const all = languageStage(id);
    const de = all.process({ id: '5', text: 'Der Hund schläft unter dem großen Tisch in der Küche.', source: 's' });
    expect(de.keep && de.doc.lang).toBe('de');
  });

  it('rejects non-ISO-639-1 codes and unknown models', async () => {
    expect(() => languageStage(id, { languages: ['eng'] })).toThrow(/'eng' is not an ISO 639-1 code/);
    await expect(LanguageIdentifier.load({ model: 'huge' as never })).rejects.toThrow(/unknown eld model 'huge'/);
  });
});

describe('fast paths of language id', () => {
  const SCORERS: [string, boolean][] = [
    ['native', true],
    ['TypeScript', false],
  ];
  afterEach(() => setNativeLangid(true));

  itShared.each(SCORERS)('the fast scorer over the binary table (%s n-gram loop) gives the answers of eld itself on the shared corpora', async (_name, native) => {
    setNativeLangid(native);
    const fast = await LanguageIdentifier.load({ fastTable: true });
    const fromModule = await LanguageIdentifier.load({ fastTable: false });
    let n = 0;
    for (const { text } of langidCorpora(DATA)) {
      for (const w of [...textWindows(text, 40, 50), ...textWindows(text, 700, 50)]) {
        expect(fast.detect(w)).toEqual(fromModule.detect(w));
        n++;
      }
    }
    expect(n).toBeGreaterThan(100);
  });

  it.each(SCORERS)('the fast scorer (%s n-gram loop) answers as eld itself on mixed scripts, long words, surrogates and 1,000+ characters', async (_name, native) => {
    setNativeLangid(native);
    // Whole texts (no sampling, one letter enough): the scorer itself is compared, past eld's own cuts.
    const fast = await LanguageIdentifier.load({ fastTable: true, sampleBytes: 100_000, minLetters: 1 });
    const eld = await LanguageIdentifier.load({ fastTable: false, sampleBytes: 100_000, minLetters: 1 });
    const pieces = [
      'the quick brown fox ',
      'le renard brun rapide ',
      'der schnelle braune Fuchs ',
      'быстрая лиса ',
      'すばやい茶色の狐 ',
      '敏捷的棕色狐狸 ',
      'الثعلب البني ',
      '😀 ',
      '𝐀𝐁𝐂 ',
      'x'.repeat(90) + ' ',
      'http://example.com/a?b=1 ',
      '1234 5678 ',
      '\ud800 ',
      '— ',
    ];
    let state = 3;
    const next = (): number => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let t = 0; t < 1500; t++) {
      let text = '';
      const n = 1 + Math.floor(next() * (t % 10 === 0 ? 120 : 12));
      for (let i = 0; i < n; i++) text += pieces[Math.floor(next() * pieces.length)];
      expect(fast.detect(text), JSON.stringify(text)).toEqual(eld.detect(text));
    }
  });

  it('hasLetters equals counting \\p{L} matches', () => {
    const pieces = ['a', 'Z', '1', ' ', '.', 'é', '中', '𝐀', '😀', '\ud800', '٣', '\u0301'];
    let seed = 7;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let t = 0; t < 2000; t++) {
      let text = '';
      const len = Math.floor(rnd() * 30);
      for (let i = 0; i < len; i++) text += pieces[Math.floor(rnd() * pieces.length)];
      const letters = text.match(/\p{L}/gu)?.length ?? 0;
      for (const min of [0, 1, 3, 8]) expect(hasLetters(text, min)).toBe(letters >= min);
    }
  });
});
