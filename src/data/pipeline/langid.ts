/**
 * Language identification with `eld` (Efficient Language Detector, n-gram model, 60 languages,
 * ISO 639-1 output).
 *
 * Why eld and not franc, measured with `benchLangid` (src/bench/data-clean.ts) on 1,000 windows per
 * language and size cut from ../shared/data — English: tinyshakespeare + wikitext-2; Chinese:
 * Sanguo Yanyi + Lunyu:
 *   English   50 / 100 / 200 / 500 chars: eld-medium 98.8 / 99.4 / 99.6 / 100 %, eld-large 99.2 / 99.8 / 99.8 / 100 %,
 *                                          franc 60.6 / 76.8 / 86.6 / 93.7 %
 *   Chinese   50 / 100 / 200 / 500 chars: eld-medium 99.9 / 100 / 100 / 100 %, franc 99.9 / 99.8 / 99.6 / 99.3 %
 * franc calls Early Modern English Scots ("sco") and short English Danish, Catalan, Afrikaans; it
 * is also 3–8× slower than eld on English (it is faster on Chinese, which both get right). The
 * 'medium' database is the default: within 0.4 points of 'large' from 50 characters up, loading in
 * 0.5 s instead of 1.3 s and holding ~215 MB instead of ~430 MB (per worker thread).
 * eld runs at about 4 MB/s of text, so long documents are sampled (see `sampleChars`).
 */
import type { Doc, DocStage, StageResult } from './types.js';

export type EldModelSize = 'large' | 'medium' | 'small' | 'extrasmall';

/** The part of eld's detector object we use (its own typings export a union we narrow here). */
interface EldDetector {
  detect(text: string): { language: string; getScores(): Record<string, number>; isReliable(): boolean };
}

export interface LanguageGuess {
  /** ISO 639-1 code, or "und" when the text has too few letters to tell. */
  lang: string;
  /** eld's score of the winning language (0–1, higher is surer); 0 for "und". */
  score: number;
  /** eld's own reliability verdict (enough n-grams and a clear winner). */
  reliable: boolean;
}

export interface LanguageIdOptions {
  /** eld database size; default 'medium'. */
  model?: EldModelSize;
  /**
   * Characters looked at per document: three slices (start, middle, end) of a third each, so long
   * documents cost the same as short ones and a boilerplate header alone cannot decide. Default 600
   * (eld is 100% on 500-character windows of the shared corpora).
   */
  sampleChars?: number;
  /** Fewer letters than this in the sample gives "und". Default 8. */
  minLetters?: number;
}

const LETTER_RE = /\p{L}/gu;

/** A loaded eld model; `detect` is synchronous and cheap (sub-millisecond per document). */
export class LanguageIdentifier {
  private constructor(
    private readonly eld: EldDetector,
    readonly model: EldModelSize,
    private readonly sampleChars: number,
    private readonly minLetters: number,
  ) {}

  /** Load eld's n-gram database (0.2–1.3 s depending on size). */
  static async load(opts: LanguageIdOptions = {}): Promise<LanguageIdentifier> {
    const model = opts.model ?? 'medium';
    const sampleChars = opts.sampleChars ?? 600;
    const minLetters = opts.minLetters ?? 8;
    if (!(Number.isInteger(sampleChars) && sampleChars >= 30)) {
      throw new Error(`langid: sampleChars must be an integer ≥ 30, got ${sampleChars}`);
    }
    let mod: { eld: unknown };
    switch (model) {
      case 'large':
        mod = await import('eld/large');
        break;
      case 'medium':
        mod = await import('eld/medium');
        break;
      case 'small':
        mod = await import('eld/small');
        break;
      case 'extrasmall':
        mod = await import('eld/extrasmall');
        break;
      default:
        throw new Error(`langid: unknown eld model '${String(model)}' (expected large, medium, small or extrasmall)`);
    }
    const shared = mod.eld as EldDetector & { newInstance?: () => EldDetector };
    // A private instance: another caller's setLanguageSubset() on the shared one must not change our answers.
    const eld = typeof shared.newInstance === 'function' ? shared.newInstance() : shared;
    return new LanguageIdentifier(eld, model, sampleChars, minLetters);
  }

  /** The text eld sees: the whole text if short, else start + middle + end slices cut at spaces. */
  sample(text: string): string {
    const n = this.sampleChars;
    if (text.length <= n) return text;
    const part = Math.floor(n / 3);
    const mid = Math.floor((text.length - part) / 2);
    return [sliceAtSpace(text, 0, part), sliceAtSpace(text, mid, part), sliceAtSpace(text, text.length - part, part)].join(' ');
  }

  detect(text: string): LanguageGuess {
    const sample = this.sample(text);
    const letters = sample.match(LETTER_RE)?.length ?? 0;
    if (letters < this.minLetters) return { lang: 'und', score: 0, reliable: false };
    const result = this.eld.detect(sample);
    if (!result.language) return { lang: 'und', score: 0, reliable: false };
    const score = result.getScores()[result.language] ?? 0;
    return { lang: result.language, score, reliable: result.isReliable() };
  }
}

/** `len` characters from `start`, widened to whole words where a space is near (so n-grams are not cut mid-word). */
function sliceAtSpace(text: string, start: number, len: number): string {
  let s = start;
  if (s > 0) {
    const sp = text.indexOf(' ', s);
    if (sp >= 0 && sp - s < 20) s = sp + 1;
  }
  let e = Math.min(text.length, s + len);
  if (e < text.length) {
    const sp = text.lastIndexOf(' ', e);
    if (sp > s && e - sp < 20) e = sp;
  }
  return text.slice(s, e);
}

export interface LanguageStageOptions {
  /** Keep only these ISO 639-1 codes (e.g. ['en', 'zh']); empty/undefined keeps every language. */
  languages?: readonly string[];
  /** Drop documents whose winning score is below this (0 disables). Default 0. */
  minScore?: number;
  /** Keep documents whose language is "und" even when `languages` is set. Default false. */
  keepUnknown?: boolean;
}

/**
 * Language id as a stage: sets `doc.lang` (and `meta.langScore`), drops documents outside
 * `languages` ("lang_not_allowed"), unknown ("lang_unknown") or below `minScore` ("lang_low_score").
 */
export function languageStage(identifier: LanguageIdentifier, opts: LanguageStageOptions = {}): DocStage {
  const allowed = opts.languages && opts.languages.length > 0 ? new Set(opts.languages) : null;
  for (const code of allowed ?? []) {
    if (!/^[a-z]{2}$/.test(code)) throw new Error(`langid: language '${code}' is not an ISO 639-1 code such as en or zh`);
  }
  const minScore = opts.minScore ?? 0;
  return {
    name: 'langid',
    process(doc: Doc, counters?: Record<string, number>): StageResult {
      const guess = identifier.detect(doc.text);
      if (counters) counters[`lang_${guess.lang}`] = (counters[`lang_${guess.lang}`] ?? 0) + 1;
      if (guess.lang === 'und') {
        if (allowed && !opts.keepUnknown) return { keep: false, rule: 'lang_unknown' };
      } else {
        if (allowed && !allowed.has(guess.lang)) return { keep: false, rule: 'lang_not_allowed' };
        if (minScore > 0 && guess.score < minScore) return { keep: false, rule: 'lang_low_score' };
      }
      return { keep: true, doc: { ...doc, lang: guess.lang, meta: { ...doc.meta, langScore: guess.score } } };
    },
  };
}
