/**
 * WordLevel (HF `tokenizers` models::wordlevel): each pre-token is looked up whole; one missing from
 * the vocabulary becomes `unk_token`, and when that is not in the vocabulary either, encoding fails
 * (HF's MissingUnkToken).
 *
 * tokenizer.json: {"type":"WordLevel","vocab":{"the":0,...},"unk_token":"<unk>"}
 */
import { models } from '../registry.js';
import type { JsonObject, ModelToken, TokenizerModel } from '../types.js';
import { isObject, optString } from '../util.js';

export interface WordLevelOptions {
  /** Default "<unk>", as HF. */
  unkToken?: string;
}

export class WordLevel implements TokenizerModel {
  readonly unkToken: string;
  private readonly vocab: Map<string, number>;
  private readonly byId: (string | undefined)[] = [];

  constructor(vocab: Map<string, number> | Record<string, number>, options: WordLevelOptions = {}) {
    this.vocab = vocab instanceof Map ? new Map(vocab) : new Map(Object.entries(vocab));
    this.unkToken = options.unkToken ?? '<unk>';
    for (const [token, id] of this.vocab) {
      if (!Number.isSafeInteger(id) || id < 0) throw new Error(`WordLevel: token ${JSON.stringify(token)} has invalid id ${id}`);
      if (this.byId[id] !== undefined) throw new Error(`WordLevel: id ${id} is used by both ${JSON.stringify(this.byId[id])} and ${JSON.stringify(token)}`);
      this.byId[id] = token;
    }
  }

  static fromJSON(json: JsonObject): WordLevel {
    const where = 'model(WordLevel)';
    const v = json.vocab;
    if (!isObject(v)) throw new Error(`tokenizer.json: ${where}.vocab must be an object of token → id`);
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(v)) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
        throw new Error(`tokenizer.json: ${where}.vocab[${JSON.stringify(token)}] must be a non-negative integer id, got ${JSON.stringify(id)}`);
      }
      vocab.set(token, id);
    }
    try {
      return new WordLevel(vocab, { unkToken: optString(json, 'unk_token', where) ?? '<unk>' });
    } catch (e) {
      throw new Error(`tokenizer.json: ${(e as Error).message}`);
    }
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
    return this.byId[id];
  }

  tokenize(piece: string): ModelToken[] {
    if (piece.length === 0) return [];
    const id = this.vocab.get(piece);
    if (id !== undefined) return [{ id, value: piece, start: 0, end: piece.length }];
    const unk = this.vocab.get(this.unkToken);
    if (unk === undefined) {
      throw new Error(`WordLevel: ${JSON.stringify(piece)} is not in the vocabulary and the unknown token ${JSON.stringify(this.unkToken)} is not either`);
    }
    return [{ id: unk, value: this.unkToken, start: 0, end: piece.length }];
  }

  toJSON(): JsonObject {
    const vocab: JsonObject = {};
    for (const [token, id] of [...this.vocab].sort((a, b) => a[1] - b[1])) vocab[token] = id;
    return { type: 'WordLevel', vocab, unk_token: this.unkToken };
  }
}

models.register('WordLevel', (json) => WordLevel.fromJSON(json));
