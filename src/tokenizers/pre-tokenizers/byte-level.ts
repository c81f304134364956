/**
 * ByteLevel pre-tokenizer (GPT-2, RoBERTa, LLaMA-3): optionally prepends a space, splits with
 * GPT-2's pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * and maps every UTF-8 byte to GPT-2's printable byte alphabet ("Ġ" for space).
 *
 * The pattern is run by a hand-written scanner (`scanGpt2`) that follows the regex's alternation
 * and backtracking exactly; it is several times faster than the RegExp and allocates nothing.
 * `\s` is Unicode White_Space, as in the references (OpenAI's Python `regex`, tiktoken's and HF's
 * Rust regex). JavaScript's `\s` differs in two code points — it lacks U+0085 and adds U+FEFF —
 * so js-tiktoken (a JS RegExp) disagrees with tiktoken on those; we follow tiktoken.
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { BYTE_TABLES, optBool, pieceSpan, subPiece, type AlignedPreToken, type FastSplitter } from '../util.js';

const CLS_LETTER = 1;
const CLS_NUMBER = 2;
const CLS_SPACE = 3;
const CLS_OTHER = 4;

const RE_LETTER = /\p{L}/u;
const RE_NUMBER = /\p{N}/u;
const RE_SPACE = /\p{White_Space}/u;

function classify(ch: string): number {
  if (RE_LETTER.test(ch)) return CLS_LETTER;
  if (RE_NUMBER.test(ch)) return CLS_NUMBER;
  if (RE_SPACE.test(ch)) return CLS_SPACE;
  return CLS_OTHER;
}

/** Class of each BMP code unit (surrogates are "other": a lone one matches [^\s\p{L}\p{N}]). */
let bmpClass: Uint8Array | null = null;
const astralClass = new Map<number, number>();

function bmpTable(): Uint8Array {
  if (bmpClass === null) {
    const t = new Uint8Array(65536);
    for (let c = 0; c < 65536; c++) t[c] = c >= 0xd800 && c <= 0xdfff ? CLS_OTHER : classify(String.fromCharCode(c));
    bmpClass = t;
  }
  return bmpClass;
}

function astral(cp: number): number {
  let k = astralClass.get(cp);
  if (k === undefined) {
    k = classify(String.fromCodePoint(cp));
    astralClass.set(cp, k);
  }
  return k;
}

/**
 * Calls emit(start, end) for each match of GPT-2's pre-tokenizer pattern in text (the matches
 * tile the string). Returns the number of pieces.
 */
export function scanGpt2(text: string, emit: (start: number, end: number) => void): number {
  const table = bmpTable();
  const n = text.length;
  let count = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    // 's 't 'm 'd 're 've 'll (case-sensitive, as in GPT-2)
    if (c === 39 && i + 1 < n) {
      const d = text.charCodeAt(i + 1);
      if (d === 115 || d === 116 || d === 109 || d === 100) {
        emit(i, i + 2);
        count++;
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const e = text.charCodeAt(i + 2);
        if ((d === 114 && e === 101) || (d === 118 && e === 101) || (d === 108 && e === 108)) {
          emit(i, i + 3);
          count++;
          i += 3;
          continue;
        }
      }
    }
    let j = i;
    let cls: number;
    let w = 1;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      cls = astral(text.codePointAt(i)!);
      w = 2;
    } else {
      cls = table[c];
    }
    if (c === 32 && i + 1 < n) {
      // " ?X+": the space joins a following letter/number/other run.
      const d = text.charCodeAt(i + 1);
      let k: number;
      let kw = 1;
      if (d >= 0xd800 && d <= 0xdbff && i + 2 < n && (text.charCodeAt(i + 2) & 0xfc00) === 0xdc00) {
        k = astral(text.codePointAt(i + 1)!);
        kw = 2;
      } else {
        k = table[d];
      }
      if (k !== CLS_SPACE) {
        cls = k;
        j = i + 1;
        w = kw;
      }
    }
    if (cls !== CLS_SPACE) {
      j += w;
      while (j < n) {
        const x = text.charCodeAt(j);
        if (x >= 0xd800 && x <= 0xdbff && j + 1 < n && (text.charCodeAt(j + 1) & 0xfc00) === 0xdc00) {
          if (astral(text.codePointAt(j)!) !== cls) break;
          j += 2;
        } else {
          if (table[x] !== cls) break;
          j++;
        }
      }
      emit(i, j);
      count++;
      i = j;
      continue;
    }
    // Whitespace: \s+(?!\S) leaves the last space of a run for the next word; a lone one is \s+.
    j = i + 1;
    while (j < n && table[text.charCodeAt(j)] === CLS_SPACE) j++;
    const end = j === n || j - i === 1 ? j : j - 1;
    emit(i, end);
    count++;
    i = end;
  }
  return count;
}

/** The byte-level form of a piece: each UTF-8 byte as one character, aligned to its source character. */
export function toByteLevel(p: AlignedPreToken): AlignedPreToken {
  const src = p.text;
  let text = '';
  const spans: number[] = [];
  const byteToChar = BYTE_TABLES.byteToChar;
  for (let i = 0; i < src.length; ) {
    const cp = src.codePointAt(i)!;
    const isPair = cp > 0xffff;
    const w = isPair ? 2 : 1;
    const [s, e] = pieceSpan(p, i, i + w);
    // Lone surrogates are encoded as U+FFFD, as TextEncoder does.
    const bytes = Buffer.from(cp >= 0xd800 && cp <= 0xdfff ? '\ufffd' : src.slice(i, i + w), 'utf8');
    for (const b of bytes) {
      text += byteToChar[b];
      spans.push(s, e);
    }
    i += w;
  }
  return { text, start: p.start, end: p.end, spans: Int32Array.from(spans) };
}

export interface ByteLevelOptions {
  addPrefixSpace?: boolean;
  trimOffsets?: boolean;
  useRegex?: boolean;
}

export class ByteLevelPreTokenizer implements PreTokenizer, FastSplitter {
  readonly addPrefixSpace: boolean;
  readonly trimOffsets: boolean;
  readonly useRegex: boolean;
  readonly fastByteLevel = true;

  constructor(opts: ByteLevelOptions = {}) {
    this.addPrefixSpace = opts.addPrefixSpace ?? true;
    this.trimOffsets = opts.trimOffsets ?? true;
    this.useRegex = opts.useRegex ?? true;
  }

  get fastPrefixSpace(): boolean {
    return this.addPrefixSpace;
  }

  static fromJSON(json: JsonObject): ByteLevelPreTokenizer {
    const where = 'pre_tokenizer (ByteLevel)';
    return new ByteLevelPreTokenizer({
      addPrefixSpace: optBool(json, 'add_prefix_space', where, true),
      trimOffsets: optBool(json, 'trim_offsets', where, true),
      useRegex: optBool(json, 'use_regex', where, true),
    });
  }

  toJSON(): JsonObject {
    return { type: 'ByteLevel', add_prefix_space: this.addPrefixSpace, trim_offsets: this.trimOffsets, use_regex: this.useRegex };
  }

  get fastGpt2Classes(): Uint8Array | null {
    return this.useRegex ? bmpTable() : null;
  }

  fastSplit(text: string, emit: (start: number, end: number) => void): boolean {
    if (this.useRegex) scanGpt2(text, emit);
    else if (text.length > 0) emit(0, text.length);
    return true;
  }

  preTokenize(pieces: PreToken[]): PreToken[] {
    const out: PreToken[] = [];
    for (let piece of pieces as AlignedPreToken[]) {
      if (piece.text.length === 0) continue;
      if (this.addPrefixSpace && !piece.text.startsWith(' ')) piece = prependAligned(piece, ' ');
      if (!this.useRegex) {
        out.push(toByteLevel(piece));
        continue;
      }
      const p = piece;
      scanGpt2(p.text, (s, e) => out.push(toByteLevel(subPiece(p, s, e))));
    }
    return out;
  }
}

/** Prepends text aligned with the piece's first unit (HF NormalizedString::prepend). */
export function prependAligned(p: AlignedPreToken, prefix: string): AlignedPreToken {
  const n = p.text.length;
  const spans = new Int32Array(2 * (n + prefix.length));
  const [fs, fe] = n > 0 ? pieceSpan(p, 0, 1) : [p.start, p.start];
  for (let k = 0; k < prefix.length; k++) {
    spans[2 * k] = fs;
    spans[2 * k + 1] = fe;
  }
  for (let k = 0; k < n; k++) {
    const [s, e] = pieceSpan(p, k, k + 1);
    spans[2 * (prefix.length + k)] = s;
    spans[2 * (prefix.length + k) + 1] = e;
  }
  return { text: prefix + p.text, start: p.start, end: p.end, spans };
}

preTokenizers.register('ByteLevel', (json) => ByteLevelPreTokenizer.fromJSON(json));
