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
 * eld runs at about 4 MB/s of text, and reads at most ~350 UTF-8 bytes of what it is given (it
 * stops at the first space past 350 bytes), so documents are sampled to fit that window (see
 * `sampleBytes`): anything longer would be cleaned and lower-cased by eld only to be cut off.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../../io/atomic.js';
import { nativeKernel } from './native-kernel.js';
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
   * UTF-8 bytes looked at per document: three slices (start, middle, end) of a third each, so long
   * documents cost the same as short ones and a boilerplate header alone cannot decide. Default 340,
   * just inside eld's own 350-byte window, so eld sees all three slices (about 340 Latin or 113
   * CJK characters; eld is 99.6–100% on 200–500-character windows of the shared corpora).
   */
  sampleBytes?: number;
  /** Fewer letters than this in the sample gives "und". Default 8. */
  minLetters?: number;
  /** Score with the fast scorer over a binary copy of eld's table (the same answers; loads in milliseconds). Default true; false runs eld itself. */
  fastTable?: boolean;
}

const LETTER_RE = /\p{L}/gu;
const UNKNOWN = { lang: 'und', score: (): number => 0, reliable: (): boolean => false };

/** A loaded eld model; `detect` is synchronous and cheap (sub-millisecond per document). */
export class LanguageIdentifier {
  private constructor(
    private readonly eld: EldDetector,
    readonly model: EldModelSize,
    private readonly sampleBytes: number,
    private readonly minLetters: number,
  ) {}

  /** Load eld's n-gram database (0.2–1.3 s depending on size). */
  static async load(opts: LanguageIdOptions = {}): Promise<LanguageIdentifier> {
    const model = opts.model ?? 'medium';
    const sampleBytes = opts.sampleBytes ?? 340;
    const minLetters = opts.minLetters ?? 8;
    if (!(Number.isInteger(sampleBytes) && sampleBytes >= 30)) {
      throw new Error(`langid: sampleBytes must be an integer ≥ 30, got ${sampleBytes}`);
    }
    if (!ELD_MODELS.includes(model)) throw new Error(`langid: unknown eld model '${String(model)}' (expected large, medium, small or extrasmall)`);
    const eld = ((opts.fastTable ?? true) ? await loadFastEld(model) : null) ?? (await loadEldModule(model));
    return new LanguageIdentifier(eld, model, sampleBytes, minLetters);
  }

  /** The text eld sees: the whole text if it fits `sampleBytes`, else start + middle + end slices cut at spaces. */
  sample(text: string): string {
    const budget = this.sampleBytes;
    // UTF-8 is at most 3 bytes per UTF-16 unit, and at least 1.
    if (text.length * 3 <= budget || (text.length <= budget && utf8Units(text, 0, budget) === text.length)) return text;
    const part = Math.floor(budget / 3);
    const first = sliceAtSpace(text, 0, utf8Units(text, 0, part));
    const midStart = Math.floor(text.length / 2) - Math.floor(part / 4);
    const middle = sliceAtSpace(text, midStart, utf8Units(text, midStart, part));
    // The end slice: walk back from the end until `part` bytes are covered.
    let endStart = text.length;
    for (let bytes = 0; endStart > 0; ) {
      const w = utf8Width(text.charCodeAt(endStart - 1));
      if (bytes + w > part) break;
      bytes += w;
      endStart--;
    }
    return [first, middle, sliceAtSpace(text, endStart, text.length - endStart)].join(' ');
  }

  detect(text: string): LanguageGuess {
    const { lang, score, reliable } = this.detectLazy(text);
    return { lang, score: score(), reliable: reliable() };
  }

  /**
   * The language, with its score and reliability computed only when asked for: eld derives both by
   * scaling and sorting all 60 languages' scores, which costs as much as a third of the detection
   * itself, and the pipeline needs them only with a minimum score.
   */
  detectLazy(text: string): { lang: string; score: () => number; reliable: () => boolean } {
    const sample = this.sample(text);
    if (!hasLetters(sample, this.minLetters)) return UNKNOWN;
    const result = this.eld.detect(sample);
    if (!result.language) return UNKNOWN;
    const language = result.language;
    let score: number | undefined;
    return { lang: language, score: () => (score ??= result.getScores()[language] ?? 0), reliable: () => result.isReliable() };
  }
}

/** Whether `text` holds at least `min` letters (\p{L}); stops counting there, and allocates nothing. */
export function hasLetters(text: string, min: number): boolean {
  if (min <= 0) return true;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a && ++count >= min) return true;
      continue;
    }
    // Non-ASCII: the regex decides (surrogate pairs are tested as one code point).
    LETTER_RE.lastIndex = i;
    const m = LETTER_RE.exec(text);
    if (m === null) return false;
    if (++count >= min) return true;
    i = m.index + m[0].length - 1;
  }
  return false;
}

const ELD_MODELS: readonly EldModelSize[] = ['large', 'medium', 'small', 'extrasmall'];

/** A private eld instance from the package's own entry (compiles the n-gram table as JavaScript: ~0.45 s for 'medium'). */
async function loadEldModule(model: EldModelSize): Promise<EldDetector> {
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
    default:
      mod = await import('eld/extrasmall');
  }
  const shared = mod.eld as EldDetector & { newInstance?: () => EldDetector };
  // A private instance: another caller's setLanguageSubset() on the shared one must not change our answers.
  return typeof shared.newInstance === 'function' ? shared.newInstance() : shared;
}

/**
 * eld's n-gram table in the layout the fast scorer reads: an open-addressing hash table from each
 * n-gram's 53-bit key (see {@link ngramKey}) to its entry, entry e's languages and scores at
 * [offsets[e], offsets[e + 1]). Built once from eld's table and cached as one binary file in
 * node_modules/.cache/weft (keyed by the table file's size and time): a worker thread then loads it
 * in milliseconds, where parsing eld's table takes ~0.2 s and ~200 MB of objects.
 */
interface EldTable {
  type: string;
  languages: Record<string, string>;
  slotKeys: Float64Array;
  slotEntry: Int32Array;
  offsets: Uint32Array;
  langs: Uint8Array;
  scores: Uint16Array;
}

const TABLE_MAGIC = 0x444c4557; // "WELD"
const TABLE_VERSION = 1;

/**
 * The 53-bit key of an n-gram: a hash of its symbols' codes, with a space first (lead) and/or last
 * (trail) — the codes of the string eld would look up, so equal strings get equal keys.
 */
function ngramKey(codes: ArrayLike<number>, from: number, to: number, lead: boolean, trail: boolean): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c;
  if (lead) {
    h1 = Math.imul(h1 ^ 0x20, 0x01000193);
    h2 = Math.imul(h2 + 0x20 + 0x7f4a7c15, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  for (let k = from; k < to; k++) {
    const c = codes[k]!;
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 + c + 0x7f4a7c15, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  if (trail) {
    h1 = Math.imul(h1 ^ 0x20, 0x01000193);
    h2 = Math.imul(h2 + 0x20 + 0x7f4a7c15, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  h1 ^= (to - from + (lead ? 1 : 0) + (trail ? 1 : 0)) << 24;
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b);
  h2 = Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  h2 ^= h2 >>> 16;
  return (h1 >>> 0) * 0x200000 + (h2 & 0x1fffff);
}

/** The entry of a key, or -1. The first slot tried is the key's low bits (h2's, well mixed). */
function tableEntry(t: EldTable, key: number): number {
  const mask = t.slotKeys.length - 1;
  for (let i = key % t.slotKeys.length; ; i = (i + 1) & mask) {
    const k = t.slotKeys[i]!;
    if (k === key) return t.slotEntry[i]!;
    if (k === 0) return -1;
  }
}

/** The table from eld's data; null when it cannot be laid out exactly (a key collision, a score out of range). */
function buildEldTable(data: { type: string; languages: Record<string, string>; ngrams: Record<string, unknown> }): EldTable | null {
  const names = Object.keys(data.ngrams);
  let cap = 16;
  while (cap < 2 * names.length) cap *= 2;
  const slotKeys = new Float64Array(cap);
  const slotEntry = new Int32Array(cap);
  const offsets = new Uint32Array(names.length + 1);
  const langs: number[] = [];
  const scores: number[] = [];
  const codes: number[] = [];
  for (let e = 0; e < names.length; e++) {
    const name = names[e]!;
    codes.length = 0;
    for (let i = 0; i < name.length; i++) codes.push(name.charCodeAt(i));
    const key = ngramKey(codes, 0, codes.length, false, false);
    if (key === 0) return null;
    for (let i = key % cap; ; i = (i + 1) & (cap - 1)) {
      if (slotKeys[i] === key) return null;
      if (slotKeys[i] === 0) {
        slotKeys[i] = key;
        slotEntry[i] = e;
        break;
      }
    }
    const byLang = data.ngrams[name];
    if (typeof byLang !== 'object' || byLang === null) return null;
    for (const [lang, score] of Object.entries(byLang as Record<string, unknown>)) {
      const l = Number(lang);
      if (!Number.isInteger(l) || l < 0 || l > 255 || typeof score !== 'number' || !Number.isInteger(score) || score < 0 || score > 0xffff) return null;
      langs.push(l);
      scores.push(score);
    }
    offsets[e + 1] = langs.length;
  }
  return { type: data.type, languages: data.languages, slotKeys, slotEntry, offsets, langs: Uint8Array.from(langs), scores: Uint16Array.from(scores) };
}

/** [magic, version, header bytes, slots, entries, pairs] as uint32, the header JSON, then the arrays, each 8-byte aligned. */
function encodeEldTable(t: EldTable): Uint8Array[] {
  const header = Buffer.from(JSON.stringify({ type: t.type, languages: t.languages }));
  const head = new Uint32Array([TABLE_MAGIC, TABLE_VERSION, header.length, t.slotKeys.length, t.offsets.length - 1, t.langs.length]);
  const parts: Uint8Array[] = [new Uint8Array(head.buffer), header];
  const pad = (n: number): void => {
    if (n % 8 !== 0) parts.push(new Uint8Array(8 - (n % 8)));
  };
  pad(head.byteLength + header.length);
  for (const a of [t.slotKeys, t.slotEntry, t.offsets, t.langs, t.scores]) {
    parts.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    pad(a.byteLength);
  }
  return parts;
}

/** The table from its file's bytes; null when they are not a whole table of this version. */
function decodeEldTable(buf: Buffer): EldTable | null {
  if (buf.length < 24) return null;
  // A private, aligned copy: the typed arrays below are views into it.
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
  const [magic, version, headerLen, cap, count, pairs] = Array.from(new Uint32Array(ab, 0, 6));
  if (magic !== TABLE_MAGIC || version !== TABLE_VERSION || cap === undefined || count === undefined || pairs === undefined || headerLen === undefined) return null;
  if (cap === 0 || (cap & (cap - 1)) !== 0) return null;
  let off = 24 + headerLen;
  const take = (bytes: number): number => {
    off = Math.ceil(off / 8) * 8;
    const at = off;
    off += bytes;
    return at;
  };
  const at = [take(cap * 8), take(cap * 4), take((count + 1) * 4), take(pairs), take(pairs * 2)];
  if (off > ab.byteLength) return null;
  try {
    const header = JSON.parse(Buffer.from(ab, 24, headerLen).toString('utf8')) as { type: string; languages: Record<string, string> };
    const offsets = new Uint32Array(ab, at[2], count + 1);
    if (offsets[count] !== pairs || typeof header.type !== 'string' || typeof header.languages !== 'object') return null;
    return {
      type: header.type,
      languages: header.languages,
      slotKeys: new Float64Array(ab, at[0], cap),
      slotEntry: new Int32Array(ab, at[1], cap),
      offsets,
      langs: new Uint8Array(ab, at[3], pairs),
      scores: new Uint16Array(ab, at[4], pairs),
    };
  } catch {
    return null;
  }
}

interface EldHelpers {
  separators: RegExp;
  dictionary: readonly string[];
  LanguageResult: new (language: string, results: number[], numNgrams: number, langCodes: Record<string, string>) => ReturnType<EldDetector['detect']>;
}

/** eld's text-processing pieces (its separator regex, byte dictionary and result class) from the package; null when not where expected. */
async function loadEldHelpers(entry: URL): Promise<EldHelpers | null> {
  try {
    const [patterns, dict, result] = await Promise.all([
      import(new URL('../regexPatterns.js', entry).href) as Promise<{ separators?: unknown }>,
      import(new URL('../dictionary.js', entry).href) as Promise<{ dictionary?: unknown }>,
      import(new URL('../LanguageResult.js', entry).href) as Promise<{ LanguageResult?: unknown }>,
    ]);
    if (!(patterns.separators instanceof RegExp) || !Array.isArray(dict.dictionary) || typeof result.LanguageResult !== 'function') return null;
    if (dict.dictionary.length !== 256 || !dict.dictionary.every((c) => typeof c === 'string' && c.length === 1)) return null;
    return { separators: patterns.separators, dictionary: dict.dictionary as string[], LanguageResult: result.LanguageResult as EldHelpers['LanguageResult'] };
  } catch {
    return null;
  }
}

/**
 * The fast scorer over eld's table, read from the binary cache (built from eld's table module on the
 * first load). Null when eld's files are not laid out as expected; the caller then imports eld normally.
 */
async function loadFastEld(model: EldModelSize): Promise<EldDetector | null> {
  let entry: URL;
  let tableUrl: URL;
  try {
    entry = new URL(import.meta.resolve(`eld/${model}`));
    tableUrl = new URL(`../ngrams/${model}.js`, entry);
  } catch {
    return null;
  }
  if (tableUrl.protocol !== 'file:' || !existsSync(tableUrl)) return null;
  const helpers = await loadEldHelpers(entry);
  if (helpers === null) return null;
  const st = statSync(tableUrl);
  // node_modules/.cache (the usual home of derived build caches), beside the package it derives from:
  // private to the install, unlike a shared temp directory where another user could plant a table.
  const cacheDir = fileURLToPath(new URL('../../../.cache/weft/', entry));
  const cachePath = join(cacheDir, `eld-${model}-${st.size}-${Math.floor(st.mtimeMs)}.bin`);
  let table: EldTable | null = null;
  try {
    table = decodeEldTable(readFileSync(cachePath));
  } catch {
    table = null;
  }
  if (table === null) {
    const data = ((await import(tableUrl.href)) as { ngramsData?: unknown }).ngramsData;
    if (!isEldTable(data)) return null;
    table = buildEldTable(data);
    if (table === null) return null;
    try {
      mkdirSync(cacheDir, { recursive: true });
      writeFileAtomicSync(cachePath, encodeEldTable(table));
    } catch {
      // A read-only install only costs the speed-up.
    }
  }
  return new FastEld(table, helpers);
}

/**
 * eld's detect() with the same answers, computed faster: eld keeps each n-gram's scores as an object
 * keyed by language and walks it with for…in, per n-gram of every text — most of its time. Here the
 * table is typed arrays behind a hash table (see {@link EldTable}), and n-grams are hashed from a
 * buffer of byte symbols instead of built as strings (a 53-bit key: the same answers up to a ~2^-53
 * collision chance per pair; the table itself is checked free of collisions when built). The text processing is eld's own (its separator regex and byte
 * dictionary, imported from the package); scores are integer sums, so their order cannot change
 * them; the result object is eld's LanguageResult, so scores and reliability are eld's too.
 */
class FastEld implements EldDetector {
  /** The current text's n-grams, each scored once (eld collects them as object keys). */
  private readonly seen = new Set<number>();
  private readonly langCount: number;

  constructor(
    private readonly table: EldTable,
    private readonly helpers: EldHelpers,
  ) {
    this.langCount = Object.keys(table.languages).length;
  }

  detect(input: string): ReturnType<EldDetector['detect']> {
    const text = input.substring(0, 1000).replace(this.helpers.separators, ' ').trim().toLowerCase();
    const words = eldByteCodes(text, dictionaryCodes(this.helpers.dictionary));
    const scores = new Float64Array(this.langCount);
    const t = this.table;
    const native = nativeEldScorer.get();
    let distinct: number;
    if (native !== null) {
      distinct = native(codeBuf, wordStarts, words, t.slotKeys, t.slotEntry, t.offsets, t.langs, t.scores, scores);
    } else {
      this.seen.clear();
      // eld's getByteNgrams: per word (its first 70 symbols), 4-symbol n-grams at stride 3, the first
      // with a leading space, then the word's last 4 symbols (all, if fewer) with a trailing space.
      for (let w = 0; w < words; w++) {
        const s = wordStarts[w]!;
        const e = wordStarts[w + 1]!;
        const len = Math.min(e - s, 70);
        let j = 0;
        for (; j + 4 < len; j += 3) this.score(s + j, s + j + 4, j === 0, false, scores);
        this.score(s + Math.max(0, len - 4), e, j === 0, true, scores);
      }
      distinct = this.seen.size;
    }
    // getMaxLang: the first language with the largest positive score.
    let best = -1;
    let bestScore = 0;
    for (let i = 0; i < scores.length; i++) {
      if (scores[i]! > 0 && scores[i]! > bestScore) {
        bestScore = scores[i]!;
        best = i;
      }
    }
    if (best < 0) return new this.helpers.LanguageResult('', [], 0, {});
    return new this.helpers.LanguageResult(this.table.languages[String(best)]!, Array.from(scores), distinct, this.table.languages);
  }

  /** Adds the scores of the n-gram made of symbols [from, to) of the code buffer (with a space before and/or after), once per text. */
  private score(from: number, to: number, lead: boolean, trail: boolean, scores: Float64Array): void {
    const key = ngramKey(codeBuf, from, to, lead, trail);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const e = tableEntry(this.table, key);
    if (e < 0) return;
    const { offsets, langs, scores: add } = this.table;
    // eld subtracted 53 from every stored score to shrink its table; it adds it back here.
    for (let k = offsets[e]!; k < offsets[e + 1]!; k++) scores[langs[k]!]! += add[k]! + 53;
  }
}

/** The addon's n-gram scorer (native/text.cc eldScore: FastEld's word loop, the same sums). */
const nativeEldScorer = nativeKernel<
  (
    codes: Uint16Array,
    wordStarts: Int32Array,
    words: number,
    slotKeys: Float64Array,
    slotEntry: Int32Array,
    offsets: Uint32Array,
    langs: Uint8Array,
    scores: Uint16Array,
    out: Float64Array,
  ) => number
>('eldScore');

/** Turns the native n-gram scorer on or off (tests compare both with eld itself). */
export function setNativeLangid(on: boolean): void {
  nativeEldScorer.use(on);
}

/**
 * eld's strToUtf8Bytes, into {@link codeBuf}: each word's byte symbols (its dictionary) as UTF-16
 * codes, word w at [wordStarts[w], wordStarts[w + 1]); cut near 350 bytes as eld cuts. Returns the
 * number of words.
 */
function eldByteCodes(str: string, codes: Uint16Array): number {
  let n = 0;
  let words = 0;
  let countBytes = 0;
  wordStarts[0] = 0;
  const endWord = (): void => {
    if (n > wordStarts[words]!) wordStarts[++words] = n;
  };
  for (let ii = 0; ii < str.length; ii++) {
    let code = str.charCodeAt(ii);
    if (code < 0x80) {
      if (code === 32) {
        endWord();
        if (countBytes > 350) break;
      } else codeBuf[n++] = code;
      countBytes++;
    } else if (code < 0x800) {
      codeBuf[n++] = codes[0xc0 | (code >> 6)]!;
      codeBuf[n++] = codes[0x80 | (code & 0x3f)]!;
      countBytes += 2;
    } else if (code < 0xd800 || code >= 0xe000) {
      codeBuf[n++] = codes[0xe0 | (code >> 12)]!;
      codeBuf[n++] = codes[0x80 | ((code >> 6) & 0x3f)]!;
      codeBuf[n++] = codes[0x80 | (code & 0x3f)]!;
      countBytes += 3;
    } else {
      ii++;
      code = 0x10000 + (((code & 0x3ff) << 10) | (str.charCodeAt(ii) & 0x3ff));
      codeBuf[n++] = codes[0xf0 | (code >> 18)]!;
      codeBuf[n++] = codes[0x80 | ((code >> 12) & 0x3f)]!;
      codeBuf[n++] = codes[0x80 | ((code >> 6) & 0x3f)]!;
      codeBuf[n++] = codes[0x80 | (code & 0x3f)]!;
      countBytes += 4;
    }
    if (countBytes > 380) break;
  }
  endWord();
  return words;
}

/** eld stops after ~384 bytes of symbols (at most one code each, plus 4 for the last code point). */
const codeBuf = new Uint16Array(1024);
/** Word starts in codeBuf (a word holds at least one symbol, so at most ~390 words). */
const wordStarts = new Int32Array(1024);
let codesOf: { dictionary: readonly string[]; codes: Uint16Array } | null = null;

/** The dictionary's symbols as UTF-16 codes (every entry is one unit). */
function dictionaryCodes(dictionary: readonly string[]): Uint16Array {
  if (codesOf === null || codesOf.dictionary !== dictionary) codesOf = { dictionary, codes: Uint16Array.from(dictionary, (c) => c.charCodeAt(0)) };
  return codesOf.codes;
}

function isEldTable(data: unknown): data is { type: string; languages: Record<string, string>; ngrams: Record<string, unknown> } {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  return typeof d.type === 'string' && d.type.length > 0 && typeof d.languages === 'object' && d.languages !== null && typeof d.ngrams === 'object' && d.ngrams !== null;
}

/** UTF-8 bytes of one UTF-16 unit (a surrogate counts 2: a pair is 4 bytes). */
function utf8Width(c: number): number {
  return c < 0x80 ? 1 : c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 2 : 3;
}

/** How many UTF-16 units from `start` fit in `bytes` UTF-8 bytes. */
function utf8Units(text: string, start: number, bytes: number): number {
  let i = start;
  for (let used = 0; i < text.length; i++) {
    used += utf8Width(text.charCodeAt(i));
    if (used > bytes) break;
  }
  return i - start;
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
      const guess = identifier.detectLazy(doc.text);
      if (counters) counters[`lang_${guess.lang}`] = (counters[`lang_${guess.lang}`] ?? 0) + 1;
      if (guess.lang === 'und') {
        if (allowed && !opts.keepUnknown) return { keep: false, rule: 'lang_unknown' };
      } else {
        if (allowed && !allowed.has(guess.lang)) return { keep: false, rule: 'lang_not_allowed' };
        if (minScore > 0 && guess.score() < minScore) return { keep: false, rule: 'lang_low_score' };
      }
      // meta.langScore reads like a plain value but is computed only if someone reads it.
      const meta: Record<string, unknown> = { ...doc.meta };
      Object.defineProperty(meta, 'langScore', { get: guess.score, enumerable: true, configurable: true });
      return { keep: true, doc: { ...doc, lang: guess.lang, meta } };
    },
  };
}
