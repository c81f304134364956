/**
 * WordPiece (BERT's model), with Hugging Face `tokenizers` semantics: each pre-token is split
 * greedily, longest match first, from the left; pieces after the first carry the continuing-subword
 * prefix ("##"). If any position has no match, or the word is longer than
 * `max_input_chars_per_word` characters (code points), the whole word becomes the unknown token.
 *
 * tokenizer.json: {"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
 * "max_input_chars_per_word":100,"vocab":{"[PAD]":0,...}}
 */
import { models } from '../registry.js';
import type { JsonObject, ModelToken, TokenizerModel } from '../types.js';
import { optNumber, optString, reqObject } from '../util.js';

export interface WordPieceOptions {
  unkToken?: string;
  continuingSubwordPrefix?: string;
  maxInputCharsPerWord?: number;
}

/** Number of code points in s (surrogate pairs count once, as Rust's chars().count()). */
function codePointCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

export class WordPiece implements TokenizerModel {
  readonly unkToken: string;
  readonly continuingSubwordPrefix: string;
  readonly maxInputCharsPerWord: number;
  private readonly vocab: Map<string, number>;
  private readonly byId = new Map<number, string>();
  /** Longest vocabulary entry in UTF-16 units: no longer substring can match. */
  private readonly maxTokenLength: number;

  constructor(vocab: Map<string, number> | Record<string, number>, options: WordPieceOptions = {}) {
    this.vocab = vocab instanceof Map ? new Map(vocab) : new Map(Object.entries(vocab));
    this.unkToken = options.unkToken ?? '[UNK]';
    this.continuingSubwordPrefix = options.continuingSubwordPrefix ?? '##';
    this.maxInputCharsPerWord = options.maxInputCharsPerWord ?? 100;
    let maxLen = 0;
    for (const [token, id] of this.vocab) {
      if (!Number.isInteger(id) || id < 0) throw new Error(`WordPiece: token ${JSON.stringify(token)} has invalid id ${id}`);
      if (this.byId.has(id)) throw new Error(`WordPiece: id ${id} is used by both ${JSON.stringify(this.byId.get(id))} and ${JSON.stringify(token)}`);
      this.byId.set(id, token);
      maxLen = Math.max(maxLen, token.length);
    }
    this.maxTokenLength = maxLen;
  }

  static fromJSON(json: JsonObject): WordPiece {
    const where = 'model(WordPiece)';
    const vocabJson = reqObject(json, 'vocab', where);
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(vocabJson)) {
      if (typeof id !== 'number') throw new Error(`tokenizer.json: ${where}.vocab[${JSON.stringify(token)}] must be an integer id, got ${JSON.stringify(id)}`);
      vocab.set(token, id);
    }
    const maxChars = optNumber(json, 'max_input_chars_per_word', where);
    return new WordPiece(vocab, {
      unkToken: optString(json, 'unk_token', where) ?? '[UNK]',
      continuingSubwordPrefix: optString(json, 'continuing_subword_prefix', where) ?? '##',
      maxInputCharsPerWord: maxChars ?? 100,
    });
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  getVocab(): Map<string, number> {
    return new Map(this.vocab);
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.byId.get(id);
  }

  private unk(length: number): ModelToken[] {
    const id = this.vocab.get(this.unkToken);
    if (id === undefined) throw new Error(`WordPiece: the unknown token ${JSON.stringify(this.unkToken)} is not in the vocabulary`);
    return [{ id, value: this.unkToken, start: 0, end: length }];
  }

  tokenize(piece: string): ModelToken[] {
    if (piece.length === 0) return [];
    if (piece.length > this.maxInputCharsPerWord && codePointCount(piece) > this.maxInputCharsPerWord) return this.unk(piece.length);
    const out: ModelToken[] = [];
    const prefix = this.continuingSubwordPrefix;
    let start = 0;
    while (start < piece.length) {
      const budget = this.maxTokenLength - (start > 0 ? prefix.length : 0);
      let end = Math.min(piece.length, start + Math.max(budget, 0));
      // Never end inside a surrogate pair.
      if (end < piece.length && isLowSurrogate(piece.charCodeAt(end))) end--;
      let found: ModelToken | null = null;
      while (end > start) {
        const sub = start > 0 ? prefix + piece.slice(start, end) : piece.slice(start, end);
        const id = this.vocab.get(sub);
        if (id !== undefined) {
          found = { id, value: sub, start, end };
          break;
        }
        end -= end - 2 >= start && isLowSurrogate(piece.charCodeAt(end - 1)) && isHighSurrogate(piece.charCodeAt(end - 2)) ? 2 : 1;
      }
      if (found === null) return this.unk(piece.length);
      out.push(found);
      start = found.end;
    }
    return out;
  }

  toJSON(): JsonObject {
    const vocab: JsonObject = {};
    for (const [token, id] of [...this.vocab].sort((a, b) => a[1] - b[1])) vocab[token] = id;
    return {
      type: 'WordPiece',
      unk_token: this.unkToken,
      continuing_subword_prefix: this.continuingSubwordPrefix,
      max_input_chars_per_word: this.maxInputCharsPerWord,
      vocab,
    };
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

models.register('WordPiece', (json) => WordPiece.fromJSON(json));
