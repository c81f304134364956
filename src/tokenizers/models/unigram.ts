/**
 * Unigram (SentencePiece's unigram language model), with Hugging Face `tokenizers` semantics: a
 * piece is split along the best-scoring path through the lattice of vocabulary matches (Viterbi,
 * scores are log-probabilities and add up). A character no piece covers becomes the unknown token
 * with score `min_score - 10`; consecutive unknowns are fused into one. With `byte_fallback`, an
 * unknown span is emitted as its UTF-8 bytes `<0xXX>` instead, when all of those are in the vocab.
 *
 * tokenizer.json: {"type":"Unigram","unk_id":0,"vocab":[["<unk>",0.0],["▁the",-3.2],...],
 * "byte_fallback":false}
 */
import { models } from '../registry.js';
import type { Json, JsonObject, ModelToken, TokenizerModel } from '../types.js';
import { optBool, reqArray } from '../util.js';

/** sentencepiece's kUnkPenalty. */
const UNK_PENALTY = 10;

interface TrieNode {
  /** Child per UTF-16 unit. */
  next: Map<number, TrieNode>;
  /** Id of the piece ending here, or -1. */
  id: number;
}

export interface UnigramOptions {
  unkId?: number | null;
  byteFallback?: boolean;
}

export class Unigram implements TokenizerModel {
  readonly pieces: readonly (readonly [string, number])[];
  readonly unkId: number | null;
  readonly byteFallback: boolean;
  private readonly ids = new Map<string, number>();
  private readonly root: TrieNode = { next: new Map(), id: -1 };
  private readonly minScore: number;

  constructor(vocab: readonly (readonly [string, number])[], options: UnigramOptions = {}) {
    this.pieces = vocab.map(([p, s]) => [p, s] as const);
    this.unkId = options.unkId ?? null;
    this.byteFallback = options.byteFallback ?? false;
    if (this.unkId !== null && (!Number.isInteger(this.unkId) || this.unkId < 0 || this.unkId >= vocab.length)) {
      throw new Error(`Unigram: unk_id ${this.unkId} is outside the vocabulary (size ${vocab.length})`);
    }
    let minScore = Infinity;
    vocab.forEach(([piece, score], id) => {
      if (typeof piece !== 'string' || typeof score !== 'number' || Number.isNaN(score)) {
        throw new Error(`Unigram: vocab entry ${id} must be [piece, score], got ${JSON.stringify([piece, score])}`);
      }
      // HF keeps the last id of a duplicated piece in its map and inserts every piece in the trie.
      this.ids.set(piece, id);
      minScore = Math.min(minScore, score);
      this.insert(piece, id);
    });
    this.minScore = minScore;
  }

  static fromJSON(json: JsonObject): Unigram {
    const where = 'model(Unigram)';
    const vocab: [string, number][] = reqArray(json, 'vocab', where).map((entry: Json, i) => {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
        throw new Error(`tokenizer.json: ${where}.vocab[${i}] must be [piece, score], got ${JSON.stringify(entry)}`);
      }
      return [entry[0], entry[1]];
    });
    const unk = json.unk_id;
    if (unk !== undefined && unk !== null && (typeof unk !== 'number' || !Number.isInteger(unk))) {
      throw new Error(`tokenizer.json: ${where}.unk_id must be an integer or null, got ${JSON.stringify(unk)}`);
    }
    return new Unigram(vocab, { unkId: typeof unk === 'number' ? unk : null, byteFallback: optBool(json, 'byte_fallback', where, false) });
  }

  private insert(piece: string, id: number): void {
    let node = this.root;
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i);
      let child = node.next.get(c);
      if (child === undefined) {
        child = { next: new Map(), id: -1 };
        node.next.set(c, child);
      }
      node = child;
    }
    // The first piece wins the trie slot (HF's trie stores no id; the map lookup gives the last, which equals it).
    node.id = this.ids.get(piece) ?? id;
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  getVocab(): Map<string, number> {
    return new Map(this.ids);
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.pieces[id]?.[0];
  }

  /** Viterbi: the best segmentation of `text` as [start, end, id] spans (unknowns fused). */
  private bestPath(text: string): [number, number, number][] {
    const n = text.length;
    const score = new Float64Array(n + 1);
    const from = new Int32Array(n + 1).fill(-1);
    const tokenId = new Int32Array(n + 1).fill(-1);
    const unkScore = this.minScore - UNK_PENALTY;
    let start = 0;
    while (start < n) {
      const base = score[start]!;
      const c0 = text.charCodeAt(start);
      const charLen = c0 >= 0xd800 && c0 <= 0xdbff && start + 1 < n && (text.charCodeAt(start + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      let coversChar = false;
      let node: TrieNode | undefined = this.root;
      for (let end = start; end < n; ) {
        node = node.next.get(text.charCodeAt(end));
        if (node === undefined) break;
        end++;
        if (node.id < 0) continue;
        const candidate = base + this.pieces[node.id]![1];
        if (from[end] === -1 || candidate > score[end]!) {
          score[end] = candidate;
          from[end] = start;
          tokenId[end] = node.id;
        }
        if (end - start === charLen) coversChar = true;
      }
      if (!coversChar) {
        const end = start + charLen;
        const candidate = base + unkScore;
        if (from[end] === -1 || candidate > score[end]!) {
          if (this.unkId === null) throw new Error(`Unigram: no piece covers ${JSON.stringify(text.slice(start, end))} and the model has no unk_id`);
          score[end] = candidate;
          from[end] = start;
          tokenId[end] = this.unkId;
        }
      }
      start += charLen;
    }
    const path: [number, number, number][] = [];
    for (let end = n; end > 0; ) {
      const s = from[end]!;
      const id = tokenId[end]!;
      const last = path[path.length - 1];
      if (id === this.unkId && last !== undefined && last[2] === this.unkId) last[0] = s;
      else path.push([s, end, id]);
      end = s;
    }
    return path.reverse();
  }

  tokenize(piece: string): ModelToken[] {
    if (piece.length === 0) return [];
    const out: ModelToken[] = [];
    for (const [start, end, pathId] of this.bestPath(piece)) {
      const value = piece.slice(start, end);
      const id = pathId === this.unkId ? (this.ids.get(value) ?? -1) : pathId;
      if (id >= 0) {
        out.push({ id, value, start, end });
        continue;
      }
      if (this.byteFallback) {
        const bytes = Buffer.from(value, 'utf8');
        const byteTokens: ModelToken[] = [];
        for (const b of bytes) {
          const name = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
          const byteId = this.ids.get(name);
          if (byteId === undefined) break;
          byteTokens.push({ id: byteId, value: name, start, end });
        }
        if (byteTokens.length === bytes.length) {
          out.push(...byteTokens);
          continue;
        }
      }
      out.push({ id: this.unkId!, value, start, end });
    }
    return out;
  }

  toJSON(): JsonObject {
    return {
      type: 'Unigram',
      unk_id: this.unkId,
      vocab: this.pieces.map(([p, s]) => [p, s]),
      byte_fallback: this.byteFallback,
    };
  }
}

models.register('Unigram', (json) => Unigram.fromJSON(json));
