/**
 * Shared helpers of the tokenizer pipeline: reading tokenizer.json fields with clear errors,
 * pre-tokens whose text no longer matches their normalized span one-to-one (byte-level mapping,
 * prepended "▁"), and the optional fast-path contracts that let `Tokenizer.encode` skip building
 * offsets when only ids are wanted.
 */
import type { Json, JsonObject, PreToken } from './types.js';

// ---------------------------------------------------------------------------------------------
// JSON field readers: every malformed field names the component and the field.

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function reqObject(json: JsonObject, key: string, where: string): JsonObject {
  const v = json[key];
  if (!isObject(v)) throw new Error(`tokenizer.json: ${where}.${key} must be an object`);
  return v;
}

export function optString(json: JsonObject, key: string, where: string): string | null {
  const v = json[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new Error(`tokenizer.json: ${where}.${key} must be a string or null, got ${JSON.stringify(v)}`);
  return v;
}

export function reqString(json: JsonObject, key: string, where: string): string {
  const v = json[key];
  if (typeof v !== 'string') throw new Error(`tokenizer.json: ${where}.${key} must be a string, got ${JSON.stringify(v) ?? 'nothing'}`);
  return v;
}

export function optBool(json: JsonObject, key: string, where: string, dflt: boolean): boolean {
  const v = json[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new Error(`tokenizer.json: ${where}.${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function optNumber(json: JsonObject, key: string, where: string): number | null {
  const v = json[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`tokenizer.json: ${where}.${key} must be a number or null, got ${JSON.stringify(v)}`);
  return v;
}

export function reqInt(json: JsonObject, key: string, where: string): number {
  const v = json[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new Error(`tokenizer.json: ${where}.${key} must be a non-negative integer, got ${JSON.stringify(v) ?? 'nothing'}`);
  }
  return v;
}

export function reqArray(json: JsonObject, key: string, where: string): Json[] {
  const v = json[key];
  if (!Array.isArray(v)) throw new Error(`tokenizer.json: ${where}.${key} must be an array`);
  return v;
}

/** HF's pattern field: {"String": "..."} (a literal) or {"Regex": "..."} (Oniguruma syntax). */
export type PatternJson = { kind: 'string'; value: string } | { kind: 'regex'; value: string };

export function readPattern(json: JsonObject, key: string, where: string): PatternJson {
  const p = reqObject(json, key, where);
  if (typeof p.String === 'string') return { kind: 'string', value: p.String };
  if (typeof p.Regex === 'string') return { kind: 'regex', value: p.Regex };
  throw new Error(`tokenizer.json: ${where}.${key} must be {"String": ...} or {"Regex": ...}`);
}

export function patternToJSON(p: PatternJson): JsonObject {
  return p.kind === 'string' ? { String: p.value } : { Regex: p.value };
}

/** Escapes text for use inside a `u`-flag RegExp (no identity escapes, which `u` rejects). */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Translates an HF (Oniguruma / fancy-regex) pattern to a JS RegExp with the `u` and `g` flags.
 * Handles what released tokenizer.json files use beyond JS syntax: scoped case-insensitive groups
 * `(?i:...)` (expanded to character classes, since Node 20's V8 lacks regex modifiers) and
 * possessive quantifiers (`++`, `*+`, `?+`, which only prune backtracking in these patterns).
 */
export function compilePattern(p: PatternJson, where: string): RegExp {
  if (p.kind === 'string') return new RegExp(escapeRegExp(p.value), 'gu');
  let src = p.value;
  src = src.replace(/\(\?i:((?:[^()\\]|\\.)*)\)/g, (_m, body: string) => {
    let out = '(?:';
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (c === '\\') {
        out += body.slice(i, i + 2);
        i++;
      } else if (/[a-zA-Z]/.test(c)) {
        out += `[${c.toLowerCase()}${c.toUpperCase()}]`;
      } else {
        out += c;
      }
    }
    return out + ')';
  });
  src = src.replace(/([+*?}])\+/g, '$1');
  // Oniguruma's \s / \S are Unicode White_Space (JavaScript's differ in U+0085 and U+FEFF).
  src = src.replace(/(?<!\\)((?:\\\\)*)\\([sS])/g, (_m, pre: string, c: string) => `${pre}\\${c === 's' ? 'p' : 'P'}{White_Space}`);
  try {
    return new RegExp(src, 'gu');
  } catch (e) {
    throw new Error(`tokenizer.json: ${where}: cannot compile regex ${JSON.stringify(p.value)}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pre-tokens with an explicit alignment.

/**
 * A pre-token whose text is not a plain slice of the normalized string (e.g. the byte-level
 * alphabet, where "é" becomes two characters): `spans[2i]`, `spans[2i + 1]` are the normalized
 * [start, end) of text unit i. Without `spans`, unit i is normalized index `start + i` (or, when
 * the text is longer than its span, the extra units are taken to be a prefix such as "▁").
 */
export interface AlignedPreToken extends PreToken {
  spans?: Int32Array;
}

/** Normalized [start, end) of units [i, j) of a pre-token's text (j > i). */
export function pieceSpan(p: AlignedPreToken, i: number, j: number): [number, number] {
  if (p.spans !== undefined) return [p.spans[2 * i], p.spans[2 * (j - 1) + 1]];
  const len = p.end - p.start;
  const extra = p.text.length - len;
  if (extra <= 0) return [p.start + Math.min(i, len), p.start + Math.min(j, len)];
  // A prefix was added (Metaspace "▁"): it is aligned with the first real unit.
  const s = Math.max(0, i - extra);
  const e = Math.max(Math.min(1, len), j - extra);
  return [p.start + Math.min(s, len), p.start + Math.min(Math.max(e, s), len)];
}

/** Units [i, j) of a pre-token as a new pre-token (keeps the alignment). */
export function subPiece(p: AlignedPreToken, i: number, j: number): AlignedPreToken {
  if (i === 0 && j === p.text.length) return p;
  const text = p.text.slice(i, j);
  if (p.spans !== undefined) {
    const spans = p.spans.slice(2 * i, 2 * j);
    return { text, start: j > i ? spans[0] : p.start, end: j > i ? spans[spans.length - 1] : p.start, spans };
  }
  if (p.text.length === p.end - p.start) return { text, start: p.start + i, end: p.start + j };
  const [s, e] = j > i ? pieceSpan(p, i, j) : [p.start, p.start];
  // Keep an explicit alignment so further splits stay right.
  const spans = new Int32Array(2 * (j - i));
  for (let k = i; k < j; k++) {
    const [a, b] = pieceSpan(p, k, k + 1);
    spans[2 * (k - i)] = a;
    spans[2 * (k - i) + 1] = b;
  }
  return { text, start: s, end: e, spans };
}

/** Splits a pre-token at [start, end) matches of a regex, following HF's SplitDelimiterBehavior. */
export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

export function splitPiece(p: AlignedPreToken, regex: RegExp, behavior: SplitBehavior, invert: boolean): AlignedPreToken[] {
  const text = p.text;
  // (start, end, isMatch) runs covering the whole text.
  const runs: [number, number, boolean][] = [];
  let last = 0;
  regex.lastIndex = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    const s = m.index;
    const e = s + m[0].length;
    if (e === s) {
      regex.lastIndex = s + 1;
      continue;
    }
    if (s > last) runs.push([last, s, false]);
    runs.push([s, e, true]);
    last = e;
  }
  if (last < text.length) runs.push([last, text.length, false]);
  if (invert) for (const r of runs) r[2] = !r[2];

  const out: [number, number][] = [];
  switch (behavior) {
    case 'Removed':
      for (const [s, e, isMatch] of runs) if (!isMatch) out.push([s, e]);
      break;
    case 'Isolated':
      for (const [s, e] of runs) out.push([s, e]);
      break;
    case 'MergedWithPrevious': {
      let prevMatch = false;
      for (const [s, e, isMatch] of runs) {
        if (isMatch && !prevMatch && out.length > 0) out[out.length - 1][1] = e;
        else out.push([s, e]);
        prevMatch = isMatch;
      }
      break;
    }
    case 'MergedWithNext': {
      // HF walks backwards: a match joins the non-match that follows it.
      let nextMatch = false;
      for (let k = runs.length - 1; k >= 0; k--) {
        const [s, e, isMatch] = runs[k];
        if (isMatch && !nextMatch && out.length > 0) out[out.length - 1][0] = s;
        else out.push([s, e]);
        nextMatch = isMatch;
      }
      out.reverse();
      break;
    }
    case 'Contiguous': {
      let prevMatch = false;
      for (const [s, e, isMatch] of runs) {
        if (isMatch && prevMatch && out.length > 0) out[out.length - 1][1] = e;
        else out.push([s, e]);
        prevMatch = isMatch;
      }
      break;
    }
  }
  return out.map(([s, e]) => subPiece(p, s, e));
}

// ---------------------------------------------------------------------------------------------
// Fast path (ids only): implemented by components that can skip offsets and string building.

/** A pre-token split that can report raw [start, end) word spans of a string without objects. */
export interface FastSplitter {
  /**
   * Calls `emit(start, end)` for each word of `text` in order. Returns false (having emitted
   * nothing) when this input needs the full pipeline.
   */
  fastSplit(text: string, emit: (start: number, end: number) => void): boolean;
  /** Whether the model sees each word through the byte-level alphabet. */
  readonly fastByteLevel: boolean;
  /** Whether a space is prepended to input that does not start with one. */
  readonly fastPrefixSpace: boolean;
  /**
   * When the split is GPT-2's pattern: the class of each BMP unit (scanGpt2's table), so that a
   * model with encodeGpt2Into can split and encode in one native call; otherwise null.
   */
  readonly fastGpt2Classes?: Uint8Array | null;
}

/** A model that can append a word's ids to an array directly. */
export interface FastWordModel {
  /** Whether the fast path gives the same ids as `tokenize` (false e.g. with dropout). */
  fastReady(byteLevel: boolean): boolean;
  encodeWordInto(text: string, start: number, end: number, byteLevel: boolean, out: number[]): void;
  /**
   * Optional batch form: appends the ids of the words text[spans[2k], spans[2k+1]) for k < count, in
   * order — one call per text, so a native encoder crosses into the addon once.
   */
  encodeWordsInto?(text: string, spans: Int32Array, count: number, byteLevel: boolean, out: number[]): void;
  /** Optional: split with GPT-2's pattern and encode in one call (see FastSplitter.fastGpt2Classes); false when it cannot for this text. */
  encodeGpt2Into?(text: string, classes: Uint8Array, out: number[]): boolean;
}

export function isFastSplitter(x: object): x is FastSplitter {
  return typeof (x as Partial<FastSplitter>).fastSplit === 'function';
}

export function isFastWordModel(x: object): x is FastWordModel {
  return typeof (x as Partial<FastWordModel>).encodeWordInto === 'function';
}

// ---------------------------------------------------------------------------------------------
// GPT-2's byte ↔ unicode table (bytes_to_unicode in openai/gpt-2 encoder.py).

function makeByteTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    byteToChar[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  const charToByte = new Map<string, number>();
  byteToChar.forEach((c, b) => charToByte.set(c, b));
  return { byteToChar, charToByte };
}

export const BYTE_TABLES = makeByteTables();
