/**
 * SentencePiece "BPE" segmentation as llama.cpp (llm_tokenizer_spm) and llama2.c run it for LLaMA
 * vocabularies: start from the characters, repeatedly merge the adjacent pair whose concatenation
 * is a vocabulary piece with the highest score (ties: the leftmost pair), and emit each final
 * symbol's id; a character that is not a piece becomes its UTF-8 byte tokens `<0xXX>` (byte
 * fallback) or, without those, the unknown token.
 *
 * It has no tokenizer.json type of its own: `toJSON` writes the Hugging Face equivalent, a BPE
 * model with byte_fallback whose merges are every (left, right) split of a piece, ranked by the
 * piece's score (what HF's SentencePiece converter does).
 */
import type { JsonObject, ModelToken, TokenizerModel } from '../types.js';

export interface SentencePieceBPEOptions {
  unkId?: number | null;
  /** Emit `<0xXX>` tokens for characters outside the vocabulary (default true). */
  byteFallback?: boolean;
}

/**
 * Max-heap of candidate merges on (score, then smaller left symbol) — llama.cpp's
 * llm_bigram_spm::comparator — kept in parallel typed arrays (no per-entry objects).
 */
class BigramQueue {
  private score = new Float64Array(64);
  private left = new Int32Array(64);
  private right = new Int32Array(64);
  /** Combined length in UTF-16 units when queued (a stale entry no longer matches). */
  private size = new Int32Array(64);
  length = 0;

  private before(i: number, j: number): boolean {
    return this.score[i]! > this.score[j]! || (this.score[i] === this.score[j] && this.left[i]! < this.left[j]!);
  }

  private swap(i: number, j: number): void {
    const s = this.score[i]!;
    this.score[i] = this.score[j]!;
    this.score[j] = s;
    const l = this.left[i]!;
    this.left[i] = this.left[j]!;
    this.left[j] = l;
    const r = this.right[i]!;
    this.right[i] = this.right[j]!;
    this.right[j] = r;
    const z = this.size[i]!;
    this.size[i] = this.size[j]!;
    this.size[j] = z;
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.length === this.score.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.score = grow(this.score, (n) => new Float64Array(n));
      this.left = grow(this.left, (n) => new Int32Array(n));
      this.right = grow(this.right, (n) => new Int32Array(n));
      this.size = grow(this.size, (n) => new Int32Array(n));
    }
    let i = this.length++;
    this.score[i] = score;
    this.left[i] = left;
    this.right[i] = right;
    this.size[i] = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top entry, leaving it in `top`. */
  pop(top: { left: number; right: number; size: number }): void {
    top.left = this.left[0]!;
    top.right = this.right[0]!;
    top.size = this.size[0]!;
    const last = --this.length;
    if (last > 0) {
      this.swap(0, last);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < last && this.before(l, best)) best = l;
        if (r < last && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
  }
}

const utf8Encoder = new TextEncoder();

/** "▁", SentencePiece's space. */
const SPACE = 0x2581;

/** Pieces cached per chunk (cleared when full). */
const CACHE_LIMIT = 50_000;

export class SentencePieceBPE implements TokenizerModel {
  readonly pieces: readonly string[];
  readonly scores: Float64Array;
  readonly unkId: number | null;
  readonly byteFallback: boolean;
  private readonly ids = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** Longest piece (UTF-16 units): longer pairs need no lookup. */
  private readonly maxPieceLength: number;
  /** Whether text can be tokenized in chunks (see tokenize). */
  private readonly chunkable: boolean;
  private readonly cache = new Map<string, ModelToken[]>();
  private pairTable: Map<number, number> | null = null;
  private readonly queue = new BigramQueue();
  private readonly popped = { left: 0, right: 0, size: 0 };
  private scratchStart = new Int32Array(0);
  private scratchLen = new Int32Array(0);
  private scratchPrev = new Int32Array(0);
  private scratchNext = new Int32Array(0);
  private scratchId = new Int32Array(0);

  constructor(pieces: readonly string[], scores: ArrayLike<number>, options: SentencePieceBPEOptions = {}) {
    if (scores.length !== pieces.length) throw new Error(`SentencePieceBPE: ${pieces.length} pieces but ${scores.length} scores`);
    this.pieces = [...pieces];
    this.scores = Float64Array.from(scores);
    this.unkId = options.unkId ?? null;
    this.byteFallback = options.byteFallback ?? true;
    if (this.unkId !== null && (!Number.isInteger(this.unkId) || this.unkId < 0 || this.unkId >= pieces.length)) {
      throw new Error(`SentencePieceBPE: unk id ${this.unkId} is outside the vocabulary (size ${pieces.length})`);
    }
    // Later duplicates win, as in llama.cpp's token_to_id map.
    pieces.forEach((p, id) => this.ids.set(p, id));
    this.maxPieceLength = pieces.reduce((m, p) => Math.max(m, p.length), 0);
    this.chunkable = pieces.every((p) => {
      for (let i = 1; i < p.length; i++) if (p.charCodeAt(i) === SPACE && p.charCodeAt(i - 1) !== SPACE) return false;
      return true;
    });
    for (let b = 0; b < 256; b++) {
      const id = this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id !== undefined) this.byteIds[b] = id;
    }
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
    return this.pieces[id];
  }

  tokenize(piece: string): ModelToken[] {
    if (piece.length === 0) return [];
    if (!this.chunkable) return this.tokenizeChunk(piece);
    // Chunks "▁*[^▁]*": no piece spans a non-"▁" followed by "▁", so no merge crosses a chunk
    // boundary, and merging each chunk alone makes the same merges as the whole text.
    const out: ModelToken[] = [];
    let s = 0;
    for (let i = 1; i <= piece.length; i++) {
      if (i < piece.length && !(piece.charCodeAt(i) === SPACE && piece.charCodeAt(i - 1) !== SPACE)) continue;
      const chunk = piece.slice(s, i);
      let toks = this.cache.get(chunk);
      if (toks === undefined) {
        toks = this.tokenizeChunk(chunk);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(chunk, toks);
      }
      for (const t of toks) out.push({ id: t.id, value: t.value, start: t.start + s, end: t.end + s });
      s = i;
    }
    return out;
  }

  /**
   * (left id, right id) → id of their concatenation, for every split of every piece into two
   * pieces: merge candidates without building strings. Built on first use.
   */
  private pairs(): Map<number, number> {
    if (this.pairTable !== null) return this.pairTable;
    const table = new Map<number, number>();
    const n = this.pieces.length;
    for (let id = 0; id < n; id++) {
      const piece = this.pieces[id]!;
      if (this.ids.get(piece) !== id) continue;
      for (let k = 1; k < piece.length; k++) {
        if ((piece.charCodeAt(k) & 0xfc00) === 0xdc00) continue; // inside a surrogate pair
        const l = this.ids.get(piece.slice(0, k));
        if (l === undefined) continue;
        const r = this.ids.get(piece.slice(k));
        if (r !== undefined) table.set(l * n + r, id);
      }
    }
    this.pairTable = table;
    return table;
  }

  /** Scratch arrays for tokenizeChunk, grown as needed. */
  private grow(n: number): void {
    if (this.scratchStart.length >= n) return;
    const size = Math.max(n, this.scratchStart.length * 2);
    this.scratchStart = new Int32Array(size);
    this.scratchLen = new Int32Array(size);
    this.scratchPrev = new Int32Array(size);
    this.scratchNext = new Int32Array(size);
    this.scratchId = new Int32Array(size);
  }

  private tokenizeChunk(piece: string): ModelToken[] {
    this.grow(piece.length + 1);
    const start = this.scratchStart;
    const len = this.scratchLen;
    const prev = this.scratchPrev;
    const next = this.scratchNext;
    const symId = this.scratchId;
    const ids = this.ids;
    // Symbols: one per code point, as a doubly linked list over [start, start + len), with the
    // id of their text (-1 when it is not a piece).
    let n = 0;
    for (let i = 0; i < piece.length; n++) {
      const c = piece.charCodeAt(i);
      const w = c >= 0xd800 && c <= 0xdbff && i + 1 < piece.length && (piece.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      start[n] = i;
      len[n] = w;
      prev[n] = n - 1;
      next[n] = n + 1;
      symId[n] = ids.get(w === 1 ? piece[i]! : piece.slice(i, i + 2)) ?? -1;
      i += w;
    }
    next[n - 1] = -1;
    const pairs = this.pairs();
    const vocab = this.pieces.length;
    const queue = this.queue;
    queue.length = 0;
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const size = len[left]! + len[right]!;
      let id: number | undefined;
      if (symId[left]! >= 0 && symId[right]! >= 0) id = pairs.get(symId[left]! * vocab + symId[right]!);
      // A symbol outside the vocabulary (a lone character) can still start or end a piece.
      else if (size <= this.maxPieceLength) id = ids.get(piece.slice(start[left]!, start[left]! + size));
      if (id === undefined) return;
      queue.push(this.scores[id]!, left, right, size);
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    const b = this.popped;
    while (queue.length > 0) {
      queue.pop(b);
      // Skip pairs whose symbols have changed since they were queued.
      if (len[b.left] === 0 || len[b.right] === 0 || len[b.left]! + len[b.right]! !== b.size || next[b.left] !== b.right) continue;
      const merged = symId[b.left]! >= 0 && symId[b.right]! >= 0 ? pairs.get(symId[b.left]! * vocab + symId[b.right]!) : undefined;
      symId[b.left] = merged ?? ids.get(piece.slice(start[b.left]!, start[b.left]! + b.size))!;
      len[b.left] = b.size;
      len[b.right] = 0;
      next[b.left] = next[b.right]!;
      if (next[b.right]! >= 0) prev[next[b.right]!] = b.left;
      tryAdd(prev[b.left]!, b.left);
      tryAdd(b.left, next[b.left]!);
    }
    const out: ModelToken[] = [];
    for (let i = 0; i !== -1; i = next[i]!) {
      const s = start[i]!;
      const e = s + len[i]!;
      const id = symId[i]!;
      if (id >= 0) {
        out.push({ id, value: this.pieces[id]!, start: s, end: e });
        continue;
      }
      // Only a single character can be outside the vocabulary (merges always make pieces).
      const value = piece.slice(s, e);
      const bytes = utf8Encoder.encode(value);
      if (this.byteFallback && bytes.every((x) => this.byteIds[x]! >= 0)) {
        for (const x of bytes) out.push({ id: this.byteIds[x]!, value: this.pieces[this.byteIds[x]!]!, start: s, end: e });
        continue;
      }
      if (this.unkId === null) throw new Error(`SentencePieceBPE: ${JSON.stringify(value)} is not in the vocabulary, which has no byte pieces or unknown token`);
      out.push({ id: this.unkId, value, start: s, end: e });
    }
    return out;
  }

  /** HF's SentencePieceExtractor: every split of a piece into two pieces, ranked by the piece's score. */
  merges(): [string, string][] {
    const all: { l: string; r: string; score: number }[] = [];
    for (let id = 0; id < this.pieces.length; id++) {
      const piece = this.pieces[id]!;
      if (this.ids.get(piece) !== id) continue;
      const local: { l: string; r: string; score: number; li: number; ri: number }[] = [];
      const cps = [...piece];
      let offset = 0;
      for (let k = 1; k < cps.length; k++) {
        offset += cps[k - 1]!.length;
        const l = piece.slice(0, offset);
        const r = piece.slice(offset);
        const li = this.ids.get(l);
        const ri = this.ids.get(r);
        if (li !== undefined && ri !== undefined) local.push({ l, r, score: this.scores[id]!, li, ri });
      }
      local.sort((a, b) => a.li - b.li || a.ri - b.ri);
      all.push(...local);
    }
    // Array.prototype.sort is stable, like Python's sorted.
    all.sort((a, b) => b.score - a.score);
    return all.map((m) => [m.l, m.r]);
  }

  toJSON(): JsonObject {
    const vocab: JsonObject = {};
    for (const [p, id] of [...this.ids].sort((a, b) => a[1] - b[1])) vocab[p] = id;
    return {
      type: 'BPE',
      dropout: null,
      unk_token: this.unkId === null ? null : this.pieces[this.unkId]!,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: this.byteFallback,
      ignore_merges: false,
      vocab,
      merges: this.merges().map(([l, r]) => [l, r]),
    };
  }
}
