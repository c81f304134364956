/**
 * Character-level tokenizer (nanoGPT's shakespeare_char, used by the quickstart), saved as a real
 * Hugging Face tokenizer.json: a WordLevel model whose vocabulary is the characters, behind a
 * Split pre-tokenizer that isolates every character (regex `[\s\S]`, one code point per match)
 * and a Fuse decoder that joins them back without spaces. Any `tokenizers` implementation that
 * loads the file gives the same ids; `toTokenizer()` is that pipeline here.
 *
 * Ids are the characters sorted by code point (Python's sorted(set(text))), the same as
 * src/data/char-tokenizer.ts, so runs trained with either agree. Characters are code points, so
 * an emoji is one token, not two surrogate halves. Encoding a character outside the vocabulary
 * fails (the unknown token "<unk>" is deliberately not in the vocabulary, as WordLevel then errors).
 */
import { Tokenizer } from './tokenizer.js';
// The components the tokenizer.json names, registered for Tokenizer.fromJSON.
import './decoders/fuse.js';
import './models/wordlevel.js';
import './pre-tokenizers/split.js';
import type { Json, JsonObject, TextTokenizer } from './types.js';
import { isObject } from './util.js';

/** The Split pattern that makes every code point its own pre-token. */
export const CHAR_SPLIT_REGEX = '[\\s\\S]';
const UNK = '<unk>';

function describe(ch: string): string {
  return `${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
}

export class CharTokenizer implements TextTokenizer {
  private readonly ids = new Map<string, number>();
  private readonly chars: readonly string[];

  private constructor(vocab: readonly string[]) {
    if (vocab.length === 0) throw new Error('CharTokenizer: the vocabulary is empty');
    vocab.forEach((ch, i) => {
      if ([...ch].length !== 1) throw new Error(`CharTokenizer: vocabulary entry ${i} (${JSON.stringify(ch)}) is not one character`);
      if (this.ids.has(ch)) throw new Error(`CharTokenizer: character ${describe(ch)} appears twice in the vocabulary`);
      this.ids.set(ch, i);
    });
    this.chars = [...vocab];
  }

  /** The vocabulary of `text`: its distinct characters, sorted by code point. */
  static fromText(text: string): CharTokenizer {
    const chars = [...new Set(text)];
    if (chars.length === 0) throw new Error('CharTokenizer.fromText: the text is empty, so there is no vocabulary');
    chars.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer(chars);
  }

  /** A tokenizer with exactly these characters as ids 0..n-1. */
  static fromVocab(chars: readonly string[]): CharTokenizer {
    return new CharTokenizer(chars);
  }

  /**
   * Reads a character tokenizer's tokenizer.json — the HF form written by `toJSON`, or the older
   * `{"type":"char","vocab":[...]}` — failing with what does not fit.
   */
  static fromJSON(json: unknown): CharTokenizer {
    const where = 'CharTokenizer.fromJSON';
    if (!isObject(json as Json)) throw new Error(`${where}: expected a tokenizer.json object`);
    const obj = json as JsonObject;
    if (obj.type === 'char') {
      const v = obj.vocab;
      if (!Array.isArray(v) || v.length === 0 || !v.every((c): c is string => typeof c === 'string')) {
        throw new Error(`${where}: {"type":"char"} needs "vocab": a non-empty array of characters`);
      }
      return new CharTokenizer(v);
    }
    const model = obj.model;
    if (!isObject(model) || model.type !== 'WordLevel' || !isObject(model.vocab)) {
      throw new Error(`${where}: not a character tokenizer (expected a WordLevel model over single characters, or {"type":"char"})`);
    }
    const pre = obj.pre_tokenizer;
    const pattern = isObject(pre) && isObject(pre.pattern) ? pre.pattern.Regex : undefined;
    if (!isObject(pre) || pre.type !== 'Split' || pattern !== CHAR_SPLIT_REGEX || pre.behavior !== 'Isolated' || pre.invert === true) {
      throw new Error(`${where}: not a character tokenizer (its pre_tokenizer must be Split on {"Regex":${JSON.stringify(CHAR_SPLIT_REGEX)}}, Isolated)`);
    }
    if (obj.normalizer !== null && obj.normalizer !== undefined) throw new Error(`${where}: a character tokenizer has no normalizer`);
    if (Array.isArray(obj.added_tokens) && obj.added_tokens.length > 0) throw new Error(`${where}: a character tokenizer has no added tokens`);
    const entries = Object.entries(model.vocab);
    const chars = new Array<string>(entries.length);
    for (const [ch, id] of entries) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries.length || chars[id] !== undefined) {
        throw new Error(`${where}: model.vocab ids must be 0..${entries.length - 1}, each once; ${JSON.stringify(ch)} has ${JSON.stringify(id)}`);
      }
      chars[id] = ch;
    }
    return new CharTokenizer(chars);
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  /** The characters, in id order. */
  get vocab(): readonly string[] {
    return this.chars;
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id === undefined) throw new Error(`CharTokenizer.encode: character ${describe(ch)} is not in the vocabulary of ${this.chars.length} characters`);
      out.push(id);
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) {
      const ch = Number.isInteger(id) ? this.chars[id] : undefined;
      if (ch === undefined) throw new RangeError(`CharTokenizer.decode: id ${id} is outside the vocabulary [0, ${this.chars.length})`);
      s += ch;
    }
    return s;
  }

  /** The HF tokenizer.json object. */
  toJSON(): JsonObject {
    const vocab: JsonObject = {};
    this.chars.forEach((ch, i) => (vocab[ch] = i));
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: 'Split', pattern: { Regex: CHAR_SPLIT_REGEX }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab, unk_token: UNK },
    };
  }

  /** The same tokenizer as a general pipeline (what loading the tokenizer.json gives). */
  toTokenizer(): Tokenizer {
    return Tokenizer.fromJSON(this.toJSON());
  }
}
