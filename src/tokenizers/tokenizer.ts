/**
 * The Tokenizer: Hugging Face `tokenizers`' pipeline in TypeScript —
 *   added tokens → normalizer → pre-tokenizer → model → truncation → post-processor → padding,
 * and the decoder for the way back. It reads and writes the real `tokenizer.json` schema, so a
 * released model's file loads here and gives the same ids, offsets and special tokens.
 *
 * Offsets are character spans (UTF-16 units) in the ORIGINAL input: each stage carries an
 * alignment (Normalized.align, AlignedPreToken.spans) and the model's piece-relative offsets are
 * mapped back through them.
 *
 * `encode(text)` (ids only) takes a fast path when the pipeline allows it: a pre-tokenizer that
 * reports word spans and a model that appends a word's ids straight from the input string, so
 * no pre-token objects, byte-level strings or offsets are built.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../io/atomic.js';
import './components.js';
import { decoders, models, normalizers, postProcessors, preTokenizers } from './registry.js';
import type {
  AddedToken,
  Decoder,
  Encoding,
  Json,
  JsonObject,
  Normalized,
  Normalizer,
  PostProcessor,
  PreTokenizer,
  TextTokenizer,
  TokenizerModel,
} from './types.js';
import { emptyEncoding, mergeEncodings, sliceEncoding } from './encoding.js';
import type { AlignedNormalized } from './normalizers/align.js';
import { escapeRegExp, isFastSplitter, isFastWordModel, isObject, pieceSpan, type AlignedPreToken } from './util.js';

export type TruncationStrategy = 'longest_first' | 'only_first' | 'only_second';
export type Direction = 'right' | 'left';

export interface TruncationParams {
  /** Maximum length of the final encoding, special tokens included. */
  maxLength: number;
  /** Tokens repeated between consecutive overflowing pieces (must be < the length left for content). */
  stride: number;
  strategy: TruncationStrategy;
  /** Which end is cut ('right' keeps the beginning). */
  direction: Direction;
}

export interface PaddingParams {
  /** 'batch_longest' pads to the longest encoding of the batch; a number pads to that fixed length. */
  length: 'batch_longest' | number;
  direction: Direction;
  padToMultipleOf: number | null;
  padId: number;
  padTypeId: number;
  padToken: string;
}

export interface EncodeOptions {
  /** Let the post-processor add its special tokens ([CLS]/[SEP], BOS/EOS). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (added tokens marked special). Default true, as in HF `tokenizers`. */
  skipSpecialTokens?: boolean;
}

/** An added token as given to `addTokens`: the content, plus any flags that differ from the defaults. */
export type AddedTokenInput = string | (Partial<Omit<AddedToken, 'id' | 'content'>> & { content: string });

export interface TokenizerParts {
  normalizer?: Normalizer | null;
  preTokenizer?: PreTokenizer | null;
  postProcessor?: PostProcessor | null;
  decoder?: Decoder | null;
  truncation?: TruncationParams | null;
  padding?: PaddingParams | null;
}

/** One input of encodeBatch: a sequence or a pair of sequences. */
export type EncodeInput = string | readonly [string, string];

// ---------------------------------------------------------------------------------------------
// Encoding helpers

/** HF Encoding::truncate: keeps `maxLen` tokens; the rest becomes overflowing pieces overlapping by `stride`. */
export function truncateEncoding(e: Encoding, maxLen: number, stride: number, direction: Direction): Encoding {
  const len = e.ids.length;
  if (maxLen >= len) return e;
  if (maxLen === 0) {
    const rest = sliceEncoding(e, 0, len);
    return { ...emptyEncoding(), overflowing: [rest] };
  }
  if (stride >= maxLen) {
    throw new Error(`truncation: stride (${stride}) must be smaller than the length left for the sequence (${maxLen})`);
  }
  const step = maxLen - stride;
  const ranges: [number, number][] = [];
  if (direction === 'right') {
    for (let start = 0; start < len; start += step) {
      const stop = Math.min(start + maxLen, len);
      ranges.push([start, stop]);
      if (stop === len) break;
    }
  } else {
    for (let last = len - 1; last >= 0; last -= step) {
      const stop = last + 1;
      const start = stop < maxLen ? 0 : stop - maxLen;
      ranges.push([start, stop]);
      if (start === 0) break;
    }
  }
  const [first, ...rest] = ranges;
  const out = sliceEncoding(e, first[0], first[1]);
  out.overflowing = rest.map(([s, t]) => sliceEncoding(e, s, t));
  return out;
}

/** HF utils/truncation.rs truncate_encodings. */
function truncatePair(enc: Encoding, pair: Encoding | null, p: TruncationParams, maxLength: number): [Encoding, Encoding | null] {
  if (maxLength === 0) {
    return [truncateEncoding(enc, 0, p.stride, p.direction), pair === null ? null : truncateEncoding(pair, 0, p.stride, p.direction)];
  }
  const total = enc.ids.length + (pair?.ids.length ?? 0);
  if (total <= maxLength) return [enc, pair];
  const toRemove = total - maxLength;
  if (p.strategy === 'longest_first') {
    if (pair === null) return [truncateEncoding(enc, maxLength, p.stride, p.direction), null];
    let n1 = enc.ids.length;
    let n2 = pair.ids.length;
    const swap = n1 > n2;
    if (swap) [n1, n2] = [n2, n1];
    n2 = n1 > maxLength ? n1 : Math.max(n1, maxLength - n1);
    if (n1 + n2 > maxLength) {
      n1 = Math.floor(maxLength / 2);
      n2 = n1 + (maxLength % 2);
    }
    if (swap) [n1, n2] = [n2, n1];
    return [truncateEncoding(enc, n1, p.stride, p.direction), truncateEncoding(pair, n2, p.stride, p.direction)];
  }
  const first = p.strategy === 'only_first';
  const target = first ? enc : pair;
  if (target === null) throw new Error("truncation: strategy 'only_second' needs a pair of sequences");
  if (target.ids.length <= toRemove) {
    throw new Error(
      `truncation: the ${first ? 'first' : 'second'} sequence has ${target.ids.length} tokens, too few to remove the ${toRemove} needed to fit max_length ${maxLength} (use 'longest_first')`,
    );
  }
  const cut = truncateEncoding(target, target.ids.length - toRemove, p.stride, p.direction);
  return first ? [cut, pair] : [enc, cut];
}

/** HF Encoding::pad (overflowing pieces are padded too). */
function padEncoding(e: Encoding, length: number, p: PaddingParams): void {
  for (const o of e.overflowing) padEncoding(o, length, p);
  const n = length - e.ids.length;
  if (n <= 0) return;
  const fill = <T>(v: T): T[] => new Array<T>(n).fill(v);
  const join = <T>(a: T[], pad: T[]): T[] => (p.direction === 'right' ? a.concat(pad) : pad.concat(a));
  e.ids = join(e.ids, fill(p.padId));
  e.tokens = join(e.tokens, fill(p.padToken));
  e.offsets = join(
    e.offsets,
    Array.from({ length: n }, (): [number, number] => [0, 0]),
  );
  e.typeIds = join(e.typeIds, fill(p.padTypeId));
  e.attentionMask = join(e.attentionMask, fill(0));
  e.specialTokensMask = join(e.specialTokensMask, fill(1));
  e.sequenceIds = join(e.sequenceIds, fill<number | null>(null));
}

function padEncodings(encs: Encoding[], p: PaddingParams): void {
  if (encs.length === 0) return;
  let length = p.length === 'batch_longest' ? Math.max(...encs.map((e) => e.ids.length)) : p.length;
  if (p.padToMultipleOf !== null && p.padToMultipleOf > 0 && length % p.padToMultipleOf > 0) {
    length += p.padToMultipleOf - (length % p.padToMultipleOf);
  }
  for (const e of encs) padEncoding(e, length, p);
}

/** Original [start, end) of normalized units [s, e) (see Normalized.align and AlignedNormalized). */
function originalSpan(norm: AlignedNormalized, s: number, e: number): [number, number] {
  const align = norm.align;
  const a = align[s];
  if (e <= s) return [a, a];
  if (norm.alignEnd !== undefined) return [a, Math.max(a, norm.alignEnd[e - 1])];
  let b = align[e];
  // Units produced by expanding one original character share its index: extend to the next one.
  for (let k = e + 1; b <= a && k < align.length; k++) b = align[k];
  return [a, Math.max(a, b)];
}

// ---------------------------------------------------------------------------------------------
// Added tokens

const WORD_CHAR = /[\p{L}\p{N}_]/u;
const WHITESPACE = /\p{White_Space}/u;

function lastChar(s: string, end: number): string {
  if (end <= 0) return '';
  const c = s.charCodeAt(end - 1);
  if (c >= 0xdc00 && c <= 0xdfff && end >= 2) return s.slice(end - 2, end);
  return s[end - 1];
}

function firstChar(s: string, start: number): string {
  if (start >= s.length) return '';
  return String.fromCodePoint(s.codePointAt(start)!);
}

/** Finds added tokens in a string: leftmost-longest, non-overlapping (HF's aho-corasick matcher). */
class AddedMatcher {
  private readonly regex: RegExp | null;
  private readonly byContent = new Map<string, AddedToken>();

  constructor(entries: readonly (readonly [string, AddedToken])[]) {
    for (const [content, tok] of entries) if (content !== '' && !this.byContent.has(content)) this.byContent.set(content, tok);
    const contents = [...this.byContent.keys()].sort((a, b) => b.length - a.length);
    // Alternation tries alternatives in order: longest first gives leftmost-longest matches.
    this.regex = contents.length === 0 ? null : new RegExp(contents.map(escapeRegExp).join('|'), 'gu');
  }

  get empty(): boolean {
    return this.regex === null;
  }

  /** [start, stop, token] of each match in text[from, to) after lstrip/rstrip/single_word rules. */
  find(text: string, from = 0, to = text.length): [number, number, AddedToken][] {
    const out: [number, number, AddedToken][] = [];
    if (this.regex === null) return out;
    const re = this.regex;
    const s = from === 0 && to === text.length ? text : text.slice(0, to);
    re.lastIndex = from;
    let floor = from;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      let start = m.index;
      let stop = start + m[0].length;
      const tok = this.byContent.get(m[0])!;
      if (tok.singleWord) {
        const startOk = start === from || !WORD_CHAR.test(lastChar(s, start));
        const stopOk = stop === to || !WORD_CHAR.test(firstChar(s, stop));
        if (!startOk || !stopOk) {
          re.lastIndex = start + 1;
          continue;
        }
      }
      if (tok.lstrip) {
        let k = start;
        while (k > floor && WHITESPACE.test(s[k - 1])) k--;
        start = k;
      }
      if (tok.rstrip) {
        while (stop < to && WHITESPACE.test(s[stop])) stop++;
        re.lastIndex = stop;
      }
      out.push([start, stop, tok]);
      floor = stop;
    }
    return out;
  }
}

function addedTokenToJSON(t: AddedToken): JsonObject {
  return {
    id: t.id,
    content: t.content,
    single_word: t.singleWord,
    lstrip: t.lstrip,
    rstrip: t.rstrip,
    normalized: t.normalized,
    special: t.special,
  };
}

function addedTokenFromJSON(j: Json, i: number): AddedToken {
  const where = `added_tokens[${i}]`;
  if (!isObject(j)) throw new Error(`tokenizer.json: ${where} must be an object`);
  const id = j.id;
  const content = j.content;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`tokenizer.json: ${where}.id must be a non-negative integer`);
  if (typeof content !== 'string') throw new Error(`tokenizer.json: ${where}.content must be a string`);
  const flag = (k: string, d: boolean): boolean => {
    const v = j[k];
    if (v === undefined || v === null) return d;
    if (typeof v !== 'boolean') throw new Error(`tokenizer.json: ${where}.${k} must be true or false`);
    return v;
  };
  const special = flag('special', false);
  return {
    id,
    content,
    special,
    singleWord: flag('single_word', false),
    lstrip: flag('lstrip', false),
    rstrip: flag('rstrip', false),
    normalized: flag('normalized', !special),
  };
}

// ---------------------------------------------------------------------------------------------
// (De)serialisation of truncation and padding

function truncationToJSON(t: TruncationParams): JsonObject {
  const strategy = { longest_first: 'LongestFirst', only_first: 'OnlyFirst', only_second: 'OnlySecond' }[t.strategy];
  return { direction: t.direction === 'right' ? 'Right' : 'Left', max_length: t.maxLength, strategy, stride: t.stride };
}

function truncationFromJSON(j: Json): TruncationParams | null {
  if (j === null || j === undefined) return null;
  if (!isObject(j)) throw new Error('tokenizer.json: truncation must be an object or null');
  const strategies: Record<string, TruncationStrategy> = { LongestFirst: 'longest_first', OnlyFirst: 'only_first', OnlySecond: 'only_second' };
  const strategy = strategies[String(j.strategy ?? 'LongestFirst')];
  if (strategy === undefined) throw new Error(`tokenizer.json: truncation.strategy must be LongestFirst, OnlyFirst or OnlySecond, got ${JSON.stringify(j.strategy)}`);
  const dir = j.direction ?? 'Right';
  if (dir !== 'Right' && dir !== 'Left') throw new Error(`tokenizer.json: truncation.direction must be Right or Left, got ${JSON.stringify(dir)}`);
  const params: TruncationParams = {
    maxLength: intField(j, 'max_length', 'truncation', 512),
    stride: intField(j, 'stride', 'truncation', 0),
    strategy,
    direction: dir === 'Right' ? 'right' : 'left',
  };
  return params;
}

function paddingToJSON(p: PaddingParams): JsonObject {
  return {
    strategy: p.length === 'batch_longest' ? 'BatchLongest' : { Fixed: p.length },
    direction: p.direction === 'right' ? 'Right' : 'Left',
    pad_to_multiple_of: p.padToMultipleOf,
    pad_id: p.padId,
    pad_type_id: p.padTypeId,
    pad_token: p.padToken,
  };
}

function paddingFromJSON(j: Json): PaddingParams | null {
  if (j === null || j === undefined) return null;
  if (!isObject(j)) throw new Error('tokenizer.json: padding must be an object or null');
  const s = j.strategy ?? 'BatchLongest';
  let length: PaddingParams['length'];
  if (s === 'BatchLongest') length = 'batch_longest';
  else if (isObject(s) && typeof s.Fixed === 'number' && Number.isInteger(s.Fixed) && s.Fixed >= 0) length = s.Fixed;
  else throw new Error(`tokenizer.json: padding.strategy must be "BatchLongest" or {"Fixed": n}, got ${JSON.stringify(s)}`);
  const dir = j.direction ?? 'Right';
  if (dir !== 'Right' && dir !== 'Left') throw new Error(`tokenizer.json: padding.direction must be Right or Left, got ${JSON.stringify(dir)}`);
  const mult = j.pad_to_multiple_of;
  if (mult !== null && mult !== undefined && (typeof mult !== 'number' || !Number.isInteger(mult) || mult < 0)) {
    throw new Error('tokenizer.json: padding.pad_to_multiple_of must be a non-negative integer or null');
  }
  const token = j.pad_token ?? '[PAD]';
  if (typeof token !== 'string') throw new Error('tokenizer.json: padding.pad_token must be a string');
  return {
    length,
    direction: dir === 'Right' ? 'right' : 'left',
    padToMultipleOf: typeof mult === 'number' ? mult : null,
    padId: intField(j, 'pad_id', 'padding', 0),
    padTypeId: intField(j, 'pad_type_id', 'padding', 0),
    padToken: token,
  };
}

function intField(j: JsonObject, key: string, where: string, dflt: number): number {
  const v = j[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`tokenizer.json: ${where}.${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

function optComponent<T>(j: Json | undefined, build: (o: JsonObject) => T, what: string): T | null {
  if (j === undefined || j === null) return null;
  if (!isObject(j)) throw new Error(`tokenizer.json: ${what} must be an object or null`);
  return build(j);
}

// ---------------------------------------------------------------------------------------------

/** A segment of one input sequence: an added token, or normalized text still to be tokenized. */
type Segment = { kind: 'added'; token: AddedToken; start: number; end: number } | { kind: 'text'; norm: AlignedNormalized; start: number; end: number };

/** Span scratch arrays above this many elements are not kept between calls (one huge text would pin them). */
const SPAN_SCRATCH_KEEP = 1 << 20;

export class Tokenizer implements TextTokenizer {
  normalizer: Normalizer | null;
  preTokenizer: PreTokenizer | null;
  model: TokenizerModel;
  postProcessor: PostProcessor | null;
  decoder: Decoder | null;
  private truncationParams: TruncationParams | null = null;
  private paddingParams: PaddingParams | null = null;

  /** Added tokens by id and by content. */
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  /** Matchers, rebuilt lazily when the added tokens or the normalizer change. */
  private matchers: { raw: AddedMatcher; normalized: AddedMatcher; normalizer: Normalizer | null } | null = null;
  /** The fast path's word spans ([start, end) pairs), reused between calls. */
  private spanScratch = new Int32Array(256);

  constructor(model: TokenizerModel, parts: TokenizerParts = {}) {
    this.model = model;
    this.normalizer = parts.normalizer ?? null;
    this.preTokenizer = parts.preTokenizer ?? null;
    this.postProcessor = parts.postProcessor ?? null;
    this.decoder = parts.decoder ?? null;
    this.truncation = parts.truncation ?? null;
    this.padding = parts.padding ?? null;
  }

  // -- configuration ---------------------------------------------------------------------------

  get truncation(): TruncationParams | null {
    return this.truncationParams;
  }

  set truncation(t: TruncationParams | null) {
    if (t !== null) {
      if (!Number.isInteger(t.maxLength) || t.maxLength < 0) throw new Error(`truncation: maxLength must be a non-negative integer, got ${t.maxLength}`);
      if (!Number.isInteger(t.stride) || t.stride < 0) throw new Error(`truncation: stride must be a non-negative integer, got ${t.stride}`);
      if (t.maxLength > 0 && t.stride >= t.maxLength) throw new Error(`truncation: stride (${t.stride}) must be smaller than maxLength (${t.maxLength})`);
      t = { ...t };
    }
    this.truncationParams = t;
  }

  get padding(): PaddingParams | null {
    return this.paddingParams;
  }

  set padding(p: PaddingParams | null) {
    if (p !== null) {
      if (p.length !== 'batch_longest' && (!Number.isInteger(p.length) || p.length < 0)) throw new Error(`padding: length must be 'batch_longest' or a non-negative integer, got ${p.length}`);
      p = { ...p };
    }
    this.paddingParams = p;
  }

  /** Enables truncation (HF `enable_truncation`); unspecified fields take HF's defaults. */
  enableTruncation(maxLength: number, opts: Partial<Omit<TruncationParams, 'maxLength'>> = {}): void {
    this.truncation = { maxLength, stride: opts.stride ?? 0, strategy: opts.strategy ?? 'longest_first', direction: opts.direction ?? 'right' };
  }

  /** Enables padding (HF `enable_padding`); pad id and token default to the [PAD] conventions. */
  enablePadding(opts: Partial<PaddingParams> = {}): void {
    const padToken = opts.padToken ?? '[PAD]';
    this.padding = {
      length: opts.length ?? 'batch_longest',
      direction: opts.direction ?? 'right',
      padToMultipleOf: opts.padToMultipleOf ?? null,
      padId: opts.padId ?? this.tokenToId(padToken) ?? 0,
      padTypeId: opts.padTypeId ?? 0,
      padToken,
    };
  }

  // -- vocabulary -------------------------------------------------------------------------------

  /** Number of ids: the model's plus added tokens beyond it (HF get_vocab_size(with_added_tokens=true)). */
  get vocabSize(): number {
    let n = this.model.vocabSize;
    for (const id of this.addedById.keys()) if (id >= n) n = id + 1;
    return n;
  }

  get addedTokens(): AddedToken[] {
    return [...this.addedById.values()].sort((a, b) => a.id - b.id).map((t) => ({ ...t }));
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken(id);
  }

  getVocab(withAddedTokens = true): Map<string, number> {
    const v = new Map(this.model.getVocab());
    if (withAddedTokens) for (const t of this.addedById.values()) v.set(t.content, t.id);
    return v;
  }

  /**
   * Adds tokens matched before the model sees the text (HF add_tokens). A content already in the
   * vocabulary keeps its id; new ones get the next free ids. Returns how many were new.
   */
  addTokens(tokens: readonly AddedTokenInput[], special = false): number {
    let added = 0;
    for (const input of tokens) {
      const spec = typeof input === 'string' ? { content: input } : input;
      if (spec.content === '') throw new Error('addTokens: an added token cannot be empty');
      const isSpecial = spec.special ?? special;
      const existing = this.addedByContent.get(spec.content);
      const id = existing?.id ?? this.model.tokenToId(spec.content) ?? this.vocabSize;
      const tok: AddedToken = {
        id,
        content: spec.content,
        special: isSpecial,
        singleWord: spec.singleWord ?? false,
        lstrip: spec.lstrip ?? false,
        rstrip: spec.rstrip ?? false,
        normalized: spec.normalized ?? !isSpecial,
      };
      if (existing === undefined && this.model.tokenToId(spec.content) === undefined) added++;
      this.setAdded(tok);
    }
    return added;
  }

  /** addTokens with special = true (skipped by decode's skipSpecialTokens, never normalized by default). */
  addSpecialTokens(tokens: readonly AddedTokenInput[]): number {
    return this.addTokens(tokens, true);
  }

  private setAdded(tok: AddedToken): void {
    const prev = this.addedById.get(tok.id);
    if (prev !== undefined && prev.content !== tok.content) this.addedByContent.delete(prev.content);
    this.addedById.set(tok.id, tok);
    this.addedByContent.set(tok.content, tok);
    this.matchers = null;
  }

  private getMatchers(): { raw: AddedMatcher; normalized: AddedMatcher } {
    if (this.matchers === null || this.matchers.normalizer !== this.normalizer) {
      const raw: [string, AddedToken][] = [];
      const norm: [string, AddedToken][] = [];
      for (const t of this.addedById.values()) {
        if (!t.normalized) raw.push([t.content, t]);
        else norm.push([this.normalizer === null ? t.content : this.normalizer.normalize(identityNormalized(t.content)).text, t]);
      }
      this.matchers = { raw: new AddedMatcher(raw), normalized: new AddedMatcher(norm), normalizer: this.normalizer };
    }
    return this.matchers;
  }

  // -- encoding ---------------------------------------------------------------------------------

  /** The ids of `text` (with the post-processor's special tokens unless addSpecialTokens is false). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const fast = this.encodeFast(text, opts.addSpecialTokens ?? true);
    return fast ?? this.encodeFull(text, null, opts).ids;
  }

  /** The full encoding of a sequence or a pair: ids, tokens, offsets, masks, overflowing pieces. */
  encodeFull(text: string, pair: string | null = null, opts: EncodeOptions = {}): Encoding {
    const add = opts.addSpecialTokens ?? true;
    const enc = this.postProcess(this.encodeSequence(text, 0, 0), pair === null ? null : this.encodeSequence(pair, 1, 1), add);
    if (this.paddingParams !== null) padEncodings([enc], this.paddingParams);
    return enc;
  }

  /** Encodes a batch; padding (if enabled) makes every encoding the same length. */
  encodeBatch(inputs: readonly EncodeInput[], opts: EncodeOptions = {}): Encoding[] {
    const add = opts.addSpecialTokens ?? true;
    const out = inputs.map((inp) => {
      if (typeof inp === 'string') return this.postProcess(this.encodeSequence(inp, 0, 0), null, add);
      return this.postProcess(this.encodeSequence(inp[0], 0, 0), this.encodeSequence(inp[1], 1, 1), add);
    });
    if (this.paddingParams !== null) padEncodings(out, this.paddingParams);
    return out;
  }

  /** ids only, without building offsets; null when the pipeline needs the full path. */
  private encodeFast(text: string, add: boolean): number[] | null {
    const pre = this.preTokenizer;
    const model = this.model;
    if (this.normalizer !== null || this.truncationParams !== null || this.paddingParams !== null || pre === null) return null;
    if (!isFastSplitter(pre) || !isFastWordModel(model) || !model.fastReady(pre.fastByteLevel)) return null;
    if (add && this.postProcessor !== null && this.postProcessor.addedTokens(false) !== 0) return null;
    const { raw, normalized } = this.getMatchers();
    const out: number[] = [];
    const byteLevel = pre.fastByteLevel;
    const prefix = pre.fastPrefixSpace;
    const gpt2Classes = byteLevel && model.encodeGpt2Into !== undefined ? (pre.fastGpt2Classes ?? null) : null;
    let ok = true;
    const words = (piece: string): void => {
      const s = prefix && piece.charCodeAt(0) !== 32 ? ' ' + piece : piece;
      if (gpt2Classes !== null && model.encodeGpt2Into!(s, gpt2Classes, out)) return;
      if (model.encodeWordsInto === undefined) {
        if (!pre.fastSplit(s, (a, b) => model.encodeWordInto(s, a, b, byteLevel, out))) ok = false;
        return;
      }
      // Collect the word spans first so the model sees the whole piece in one call.
      let spans = this.spanScratch;
      let count = 0;
      const split = pre.fastSplit(s, (a, b) => {
        if (2 * count + 2 > spans.length) {
          const grown = new Int32Array(Math.max(2 * spans.length, 256));
          grown.set(spans);
          spans = grown;
        }
        spans[2 * count] = a;
        spans[2 * count + 1] = b;
        count++;
      });
      if (spans.length <= SPAN_SCRATCH_KEEP) this.spanScratch = spans;
      if (!split) ok = false;
      else model.encodeWordsInto(s, spans, count, byteLevel, out);
    };
    if (raw.empty && normalized.empty) {
      if (text.length > 0) words(text);
      return ok ? out : null;
    }
    const gap = (a: number, b: number): void => {
      if (b <= a || !ok) return;
      let last = a;
      for (const [s, e, tok] of normalized.find(text, a, b)) {
        if (s > last) words(text.slice(last, s));
        out.push(tok.id);
        last = e;
      }
      if (last < b) words(text.slice(last, b));
    };
    let last = 0;
    for (const [s, e, tok] of raw.find(text)) {
      gap(last, s);
      out.push(tok.id);
      last = e;
    }
    gap(last, text.length);
    return ok ? out : null;
  }

  /** Splits one input into added tokens and normalized text (HF AddedVocabulary::extract_and_normalize). */
  private segments(text: string): Segment[] {
    const { raw, normalized } = this.getMatchers();
    const segs: Segment[] = [];
    const gap = (a: number, b: number): void => {
      if (b <= a) return;
      const align = new Array<number>(b - a + 1);
      const alignEnd = new Array<number>(b - a);
      for (let i = 0; i <= b - a; i++) align[i] = a + i;
      for (let i = 0; i < b - a; i++) alignEnd[i] = a + i + 1;
      let norm: AlignedNormalized = { text: text.slice(a, b), align, alignEnd };
      if (this.normalizer !== null) norm = this.normalizer.normalize(norm);
      let last = 0;
      for (const [s, e, tok] of normalized.find(norm.text)) {
        if (s > last) segs.push({ kind: 'text', norm, start: last, end: s });
        const [os, oe] = originalSpan(norm, s, e);
        segs.push({ kind: 'added', token: tok, start: os, end: oe });
        last = e;
      }
      if (last < norm.text.length) segs.push({ kind: 'text', norm, start: last, end: norm.text.length });
    };
    let last = 0;
    for (const [s, e, tok] of raw.find(text)) {
      gap(last, s);
      segs.push({ kind: 'added', token: tok, start: s, end: e });
      last = e;
    }
    gap(last, text.length);
    return segs;
  }

  /** One sequence through added tokens, normalizer, pre-tokenizer and model (HF encode_single_sequence). */
  private encodeSequence(text: string, typeId: number, sequenceId: number): Encoding {
    const enc = emptyEncoding();
    const push = (id: number, token: string, start: number, end: number): void => {
      enc.ids.push(id);
      enc.tokens.push(token);
      enc.offsets.push([start, end]);
      enc.typeIds.push(typeId);
      enc.attentionMask.push(1);
      enc.specialTokensMask.push(0);
      enc.sequenceIds.push(sequenceId);
    };
    for (const seg of this.segments(text)) {
      if (seg.kind === 'added') {
        push(seg.token.id, seg.token.content, seg.start, seg.end);
        continue;
      }
      let pieces: AlignedPreToken[] = [{ text: seg.norm.text.slice(seg.start, seg.end), start: seg.start, end: seg.end }];
      if (this.preTokenizer !== null) pieces = this.preTokenizer.preTokenize(pieces);
      for (const piece of pieces) {
        if (piece.text.length === 0) continue;
        for (const t of this.model.tokenize(piece.text)) {
          const [ns, ne] = t.end > t.start ? pieceSpan(piece, t.start, t.end) : pieceSpan(piece, t.start, t.start + 1);
          const [os, oe] = originalSpan(seg.norm, ns, t.end > t.start ? ne : ns);
          push(t.id, t.value, os, oe);
        }
      }
    }
    return enc;
  }

  private processOne(enc: Encoding, pair: Encoding | null, add: boolean): Encoding {
    const a = { ...enc, overflowing: [] };
    const b = pair === null ? null : { ...pair, overflowing: [] };
    if (this.postProcessor !== null) return this.postProcessor.process(a, b, add);
    return b === null ? a : mergeEncodings([a, b]);
  }

  /** Truncation, then the post-processor on the encoding and on every overflowing combination (HF's order). */
  private postProcess(enc: Encoding, pair: Encoding | null, add: boolean): Encoding {
    const t = this.truncationParams;
    if (t !== null) {
      const nAdded = add && this.postProcessor !== null ? this.postProcessor.addedTokens(pair !== null) : 0;
      const maxLength = t.maxLength - nAdded;
      if (maxLength < 0) {
        throw new Error(`truncation: max_length ${t.maxLength} is shorter than the ${nAdded} special tokens the post-processor adds`);
      }
      [enc, pair] = truncatePair(enc, pair, t, maxLength);
    }
    const main = this.processOne(enc, pair, add);
    const over: Encoding[] = [];
    if (pair === null) {
      for (const o of enc.overflowing) over.push(this.processOne(o, null, add));
    } else {
      for (const o of enc.overflowing) {
        over.push(this.processOne(o, pair, add));
        for (const p of pair.overflowing) over.push(this.processOne(o, p, add));
      }
      for (const p of pair.overflowing) over.push(this.processOne(enc, p, add));
    }
    main.overflowing = over;
    return main;
  }

  // -- decoding ---------------------------------------------------------------------------------

  /** The text of `ids` (HF decode). Unknown ids are an error rather than silently dropped. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecialTokens ?? true;
    const tokens: string[] = [];
    for (const id of ids) {
      const added = this.addedById.get(id);
      if (added !== undefined) {
        if (!(skip && added.special)) tokens.push(added.content);
        continue;
      }
      const tok = Number.isInteger(id) ? this.model.idToToken(id) : undefined;
      if (tok === undefined) throw new RangeError(`Tokenizer.decode: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      tokens.push(tok);
    }
    if (this.decoder === null) return tokens.join(' ');
    return this.decoder.decodeChain(tokens).join('');
  }

  decodeBatch(batch: readonly (readonly number[])[], opts: DecodeOptions = {}): string[] {
    return batch.map((ids) => this.decode(ids, opts));
  }

  // -- tokenizer.json ---------------------------------------------------------------------------

  /** The HF tokenizer.json object (same keys and order as `tokenizers` writes). */
  toJSON(): JsonObject {
    return {
      version: '1.0',
      truncation: this.truncationParams === null ? null : truncationToJSON(this.truncationParams),
      padding: this.paddingParams === null ? null : paddingToJSON(this.paddingParams),
      added_tokens: this.addedTokens.map(addedTokenToJSON),
      normalizer: this.normalizer?.toJSON() ?? null,
      pre_tokenizer: this.preTokenizer?.toJSON() ?? null,
      post_processor: this.postProcessor?.toJSON() ?? null,
      decoder: this.decoder?.toJSON() ?? null,
      model: this.model.toJSON(),
    };
  }

  /** Builds a tokenizer from a parsed tokenizer.json (or its text); `model`, when given, is used instead of building json.model. */
  static fromJSON(json: Json, model?: TokenizerModel): Tokenizer {
    if (typeof json === 'string') {
      let parsed: Json;
      try {
        parsed = JSON.parse(json) as Json;
      } catch (e) {
        throw new Error(`tokenizer.json: invalid JSON: ${(e as Error).message}`);
      }
      json = parsed;
    }
    if (!isObject(json)) throw new Error('tokenizer.json: the top level must be an object');
    if (!isObject(json.model)) throw new Error('tokenizer.json: missing "model" object');
    const tok = new Tokenizer(model ?? models.fromJSON(json.model), {
      normalizer: optComponent(json.normalizer, (o) => normalizers.fromJSON(o), 'normalizer'),
      preTokenizer: optComponent(json.pre_tokenizer, (o) => preTokenizers.fromJSON(o), 'pre_tokenizer'),
      postProcessor: optComponent(json.post_processor, (o) => postProcessors.fromJSON(o), 'post_processor'),
      decoder: optComponent(json.decoder, (o) => decoders.fromJSON(o), 'decoder'),
      truncation: truncationFromJSON(json.truncation ?? null),
      padding: paddingFromJSON(json.padding ?? null),
    });
    const added = json.added_tokens ?? [];
    if (!Array.isArray(added)) throw new Error('tokenizer.json: added_tokens must be an array');
    added.forEach((a, i) => tok.setAdded(addedTokenFromJSON(a, i)));
    return tok;
  }

  /** Loads a tokenizer.json file (or a directory holding one). */
  static fromFile(path: string): Tokenizer {
    const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`Tokenizer.fromFile: cannot read ${file}: ${(e as Error).message}`);
    }
    try {
      return Tokenizer.fromJSON(text);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  }

  /** Writes tokenizer.json atomically (to `path`, or `path/tokenizer.json` when it is a directory). */
  save(path: string, pretty = true): void {
    const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
    writeFileAtomicSync(file, JSON.stringify(this.toJSON(), null, pretty ? 2 : undefined) + '\n');
  }
}

/** A Normalized over `text` aligned to itself. */
export function identityNormalized(text: string, offset = 0): Normalized {
  const align = new Array<number>(text.length + 1);
  for (let i = 0; i <= text.length; i++) align[i] = offset + i;
  return { text, align };
}
