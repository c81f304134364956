/**
 * BPE model (HF `tokenizers` models::bpe): a word starts as single characters (or bytes, behind a
 * byte-level pre-tokenizer) and the adjacent pair with the lowest merge rank is merged until none
 * is left — leftmost first among equal ranks, exactly as HF's heap and tiktoken's scan do.
 *
 * Speed: pairs are looked up in an open-addressing table keyed by the two ids (no strings, no
 * per-lookup allocation); words are cached; short words merge in a flat array (fewer hash
 * lookups than a heap), long ones (runs of spaces, minified code) use a heap over a linked list
 * so a 100k-character word stays O(n log n). Byte-level words go from the input string straight
 * to byte ids, never through the "Ġ" alphabet. With the native addon, byte-level words go through
 * native/bpe.cc (encodeWordsInto: one call per text, same merges, own word cache); this file's
 * TypeScript path stays the fallback and the oracle the tests compare it with.
 */
import { nativeAddonExports } from '../../tensor/backend/native.js';
import { models } from '../registry.js';
import type { Json, JsonObject, ModelToken, TokenizerModel } from '../types.js';
import { BYTE_TABLES, type FastWordModel, isObject, optBool, optNumber, optString, reqArray } from '../util.js';

export interface BPEOptions {
  vocab: Map<string, number> | Record<string, number>;
  /** Merge rules in rank order: [left, right] token pairs (or "left right" strings). */
  merges: readonly (readonly [string, string] | string)[];
  dropout?: number | null;
  unkToken?: string | null;
  continuingSubwordPrefix?: string | null;
  endOfWordSuffix?: string | null;
  fuseUnk?: boolean;
  byteFallback?: boolean;
  ignoreMerges?: boolean;
  /** Max cached words (0 disables the cache). */
  cacheCapacity?: number;
  /** The merge rules already resolved to ids, in rank order (a tokenizer cache's); `merges` is then ignored. */
  compiledMerges?: CompiledMerges;
}

/** Merge rule r joins ids (left[r], right[r]) into into[r]. */
export interface CompiledMerges {
  left: Int32Array;
  right: Int32Array;
  into: Int32Array;
}

const NO_RANK = 0x7fffffff;
/** Words longer than this (in symbols) merge with the heap instead of the quadratic scan. */
const SCAN_LIMIT = 48;
/** Words longer than this (UTF-16 units) are not cached: they rarely repeat and would bloat the cache. */
const CACHE_MAX_WORD = 96;

/** (left id, right id) → (rank, merged id), open addressing with linear probing. */
class PairTable {
  private readonly mask: number;
  private readonly keys: Int32Array;
  readonly rank: Int32Array;
  readonly merged: Int32Array;

  constructor(n: number) {
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap * 2).fill(-1);
    this.rank = new Int32Array(cap);
    this.merged = new Int32Array(cap);
  }

  private static hash(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
    h ^= h >>> 15;
    return Math.imul(h, 0x2c1b3c6d);
  }

  /** Inserts unless present (the first, lowest-rank rule for a pair wins). */
  set(a: number, b: number, rank: number, merged: number): void {
    let i = PairTable.hash(a, b) & this.mask;
    for (;;) {
      const k = this.keys[2 * i];
      if (k === -1) {
        this.keys[2 * i] = a;
        this.keys[2 * i + 1] = b;
        this.rank[i] = rank;
        this.merged[i] = merged;
        return;
      }
      if (k === a && this.keys[2 * i + 1] === b) return;
      i = (i + 1) & this.mask;
    }
  }

  /** The slot of (a, b), or -1. */
  find(a: number, b: number): number {
    const keys = this.keys;
    let i = PairTable.hash(a, b) & this.mask;
    for (;;) {
      const k = keys[2 * i];
      if (k === a && keys[2 * i + 1] === b) return i;
      if (k === -1) return -1;
      i = (i + 1) & this.mask;
    }
  }
}

/** The addon's byte-level BPE word encoder (native/bpe.cc). */
interface NativeBpeEncoder {
  /** Writes the ids of words text[spans[2k], spans[2k+1]) (k < count) to out; returns how many. */
  encode(text: string, spans: Int32Array, count: number, out: Int32Array): number;
  /** Splits text with GPT-2's pattern (classes: per BMP unit) and writes every word's ids to out; -1 for text outside the BMP. Older addons lack it. */
  encodeGpt2?(text: string, classes: Uint8Array, out: Int32Array): number;
  clearCache(): void;
}

type NativeBpeEncoderClass = new (
  left: Int32Array,
  right: Int32Array,
  merged: Int32Array,
  byteIds: Int32Array,
  cacheCapacity: number,
  cacheMaxWord: number,
) => NativeBpeEncoder;

function nativeBpeEncoderClass(): NativeBpeEncoderClass | null {
  const ctor = nativeAddonExports()?.BpeEncoder;
  return typeof ctor === 'function' ? (ctor as NativeBpeEncoderClass) : null;
}

/** Scratch arrays above this many elements are not kept between calls (one huge text would pin them). */
const SCRATCH_KEEP = 1 << 20;

/** A merged word: ids with each symbol's length in units of the input piece. */
interface Word {
  ids: Int32Array;
  lens: Int32Array;
}

/** Binary min-heap of (rank, position) packed as rank * 2^21 + pos... kept as two parallel arrays. */
class MergeHeap {
  rank: Int32Array;
  pos: Int32Array;
  size = 0;
  constructor(cap: number) {
    this.rank = new Int32Array(Math.max(cap, 4));
    this.pos = new Int32Array(Math.max(cap, 4));
  }
  private less(i: number, j: number): boolean {
    return this.rank[i] < this.rank[j] || (this.rank[i] === this.rank[j] && this.pos[i] < this.pos[j]);
  }
  private swap(i: number, j: number): void {
    const r = this.rank[i];
    this.rank[i] = this.rank[j];
    this.rank[j] = r;
    const p = this.pos[i];
    this.pos[i] = this.pos[j];
    this.pos[j] = p;
  }
  push(rank: number, pos: number): void {
    if (this.size === this.rank.length) {
      const r = new Int32Array(this.size * 2);
      r.set(this.rank);
      this.rank = r;
      const p = new Int32Array(this.size * 2);
      p.set(this.pos);
      this.pos = p;
    }
    let i = this.size++;
    this.rank[i] = rank;
    this.pos[i] = pos;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  /** Removes the top; its rank/pos are left in topRank/topPos. */
  topRank = 0;
  topPos = 0;
  pop(): boolean {
    if (this.size === 0) return false;
    this.topRank = this.rank[0];
    this.topPos = this.pos[0];
    this.size--;
    if (this.size > 0) {
      this.rank[0] = this.rank[this.size];
      this.pos[0] = this.pos[this.size];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.size && this.less(l, m)) m = l;
        if (r < this.size && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return true;
  }
}

function toMap(v: Map<string, number> | Record<string, number>): Map<string, number> {
  if (v instanceof Map) return new Map(v);
  // for…in rather than Object.entries: no [key, value] array per token (50k of them for GPT-2).
  const map = new Map<string, number>();
  for (const k in v) if (Object.hasOwn(v, k)) map.set(k, v[k]!);
  return map;
}

export class BPE implements TokenizerModel, FastWordModel {
  /**
   * Whether byte-level fast-path encoding may use the native encoder (when the addon has it). Tests
   * turn it off to get the TypeScript path, the oracle.
   */
  static useNative = true;

  private readonly vocab: Map<string, number>;
  private readonly vocabR: (string | undefined)[];
  /** The merges as token pairs and the TypeScript pair table: built on first use (the native encoder needs neither). */
  private mergeListCache: [string, string][] | null = null;
  private pairsCache: PairTable | null = null;
  readonly dropout: number | null;
  readonly unkToken: string | null;
  readonly continuingSubwordPrefix: string | null;
  readonly endOfWordSuffix: string | null;
  readonly fuseUnk: boolean;
  readonly byteFallback: boolean;
  readonly ignoreMerges: boolean;
  private readonly cacheCapacity: number;
  /** Fast path cache: raw word → one id (number) or several (Int32Array). */
  private readonly idCache = new Map<string, number | Int32Array>();
  /** tokenize() cache: piece → merged word. */
  private readonly wordCache = new Map<string, Word>();
  /** Id of each byte's byte-level character, -1 where the vocabulary lacks it. */
  private readonly byteIds = new Int32Array(256);
  private readonly byteLevelComplete: boolean;
  // Scratch buffers for merging (grown on demand).
  private scratchIds = new Int32Array(256);
  private scratchRanks = new Int32Array(256);
  /** Merge rules as ids, in rank order, for the native encoder (first rule of a pair wins there too). */
  private readonly mergeLeft: Int32Array;
  private readonly mergeRight: Int32Array;
  private readonly mergeInto: Int32Array;
  /** Built on first use (each worker builds its own); null when the addon lacks it or the settings rule it out. */
  private nativeEncoder: NativeBpeEncoder | null | undefined;
  private nativeOut = new Int32Array(0);

  constructor(opts: BPEOptions) {
    this.vocab = toMap(opts.vocab);
    this.vocabR = [];
    for (const [tok, id] of this.vocab) {
      if (!Number.isInteger(id) || id < 0) throw new Error(`BPE: vocab[${JSON.stringify(tok)}] must be a non-negative integer id, got ${JSON.stringify(id)}`);
      if (this.vocabR[id] !== undefined) throw new Error(`BPE: id ${id} is used by both ${JSON.stringify(this.vocabR[id])} and ${JSON.stringify(tok)}`);
      this.vocabR[id] = tok;
    }
    this.dropout = opts.dropout ?? null;
    if (this.dropout !== null && !(this.dropout >= 0 && this.dropout <= 1)) throw new Error(`BPE: dropout must be in [0, 1], got ${this.dropout}`);
    this.unkToken = opts.unkToken ?? null;
    this.continuingSubwordPrefix = opts.continuingSubwordPrefix ?? null;
    this.endOfWordSuffix = opts.endOfWordSuffix ?? null;
    this.fuseUnk = opts.fuseUnk ?? false;
    this.byteFallback = opts.byteFallback ?? false;
    this.ignoreMerges = opts.ignoreMerges ?? false;
    this.cacheCapacity = opts.cacheCapacity ?? 100_000;

    const compiled = opts.compiledMerges;
    if (compiled !== undefined) {
      const n = compiled.left.length;
      if (compiled.right.length !== n || compiled.into.length !== n) throw new Error('BPE: compiled merges must have as many right and merged ids as left ones');
      for (const ids of [compiled.left, compiled.right, compiled.into]) {
        for (let r = 0; r < n; r++) if (this.vocabR[ids[r]!] === undefined) throw new Error(`BPE: compiled merge ${r} names id ${ids[r]}, which is not in the vocabulary`);
      }
    }
    this.mergeLeft = compiled?.left ?? new Int32Array(opts.merges.length);
    this.mergeRight = compiled?.right ?? new Int32Array(opts.merges.length);
    this.mergeInto = compiled?.into ?? new Int32Array(opts.merges.length);
    const prefixLen = this.continuingSubwordPrefix?.length ?? 0;
    (compiled === undefined ? opts.merges : []).forEach((m, rank) => {
      let pair: [string, string];
      if (typeof m === 'string') {
        const space = m.indexOf(' ');
        if (space < 0 || m.indexOf(' ', space + 1) >= 0) throw new Error(`BPE: merge ${rank} (${JSON.stringify(m)}) is not two tokens separated by one space`);
        pair = [m.slice(0, space), m.slice(space + 1)];
      } else {
        if (m.length !== 2 || typeof m[0] !== 'string' || typeof m[1] !== 'string') throw new Error(`BPE: merge ${rank} is not a pair of tokens`);
        pair = [m[0], m[1]];
      }
      const a = this.vocab.get(pair[0]);
      const b = this.vocab.get(pair[1]);
      if (a === undefined) throw new Error(`BPE: merge ${rank} (${JSON.stringify(pair.join(' '))}) names token ${JSON.stringify(pair[0])}, which is not in the vocabulary`);
      if (b === undefined) throw new Error(`BPE: merge ${rank} (${JSON.stringify(pair.join(' '))}) names token ${JSON.stringify(pair[1])}, which is not in the vocabulary`);
      const mergedText = pair[0] + (prefixLen > 0 && pair[1].startsWith(this.continuingSubwordPrefix!) ? pair[1].slice(prefixLen) : pair[1]);
      const merged = this.vocab.get(mergedText);
      if (merged === undefined) throw new Error(`BPE: merge ${rank} (${JSON.stringify(pair.join(' '))}) makes ${JSON.stringify(mergedText)}, which is not in the vocabulary`);
      this.mergeLeft[rank] = a;
      this.mergeRight[rank] = b;
      this.mergeInto[rank] = merged;
    });

    let complete = true;
    for (let b = 0; b < 256; b++) {
      const id = this.vocab.get(BYTE_TABLES.byteToChar[b]);
      this.byteIds[b] = id ?? -1;
      if (id === undefined) complete = false;
    }
    this.byteLevelComplete = complete;
  }

  /**
   * From tokenizer.json's model. With `compiled` (a tokenizer cache's vocabulary and merge ids), the
   * model's own vocab and merges are not read: every other setting still comes from `json`.
   */
  static fromJSON(json: JsonObject, compiled?: { vocab: Map<string, number>; merges: CompiledMerges }): BPE {
    const where = 'model (BPE)';
    if (compiled !== undefined) return BPE.withOptions(json, where, compiled.vocab, [], compiled.merges);
    const vocabJson = json.vocab;
    if (!isObject(vocabJson)) throw new Error(`tokenizer.json: ${where}.vocab must be an object of token → id`);
    // Ids are checked (with the token named) by the constructor, which builds its own Map from the object.
    const vocab = vocabJson as Record<string, number>;
    const merges = (json.merges === undefined ? [] : reqArray(json, 'merges', where)).map((m: Json, i): string | [string, string] => {
      if (typeof m === 'string') return m;
      if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
      throw new Error(`tokenizer.json: ${where}.merges[${i}] must be "a b" or ["a", "b"]`);
    });
    return BPE.withOptions(json, where, vocab, merges);
  }

  private static withOptions(json: JsonObject, where: string, vocab: BPEOptions['vocab'], merges: BPEOptions['merges'], compiledMerges?: CompiledMerges): BPE {
    try {
      return new BPE({
        vocab,
        merges,
        compiledMerges,
        dropout: optNumber(json, 'dropout', where),
        unkToken: optString(json, 'unk_token', where),
        continuingSubwordPrefix: optString(json, 'continuing_subword_prefix', where),
        endOfWordSuffix: optString(json, 'end_of_word_suffix', where),
        fuseUnk: optBool(json, 'fuse_unk', where, false),
        byteFallback: optBool(json, 'byte_fallback', where, false),
        ignoreMerges: optBool(json, 'ignore_merges', where, false),
      });
    } catch (e) {
      throw new Error(`tokenizer.json: ${(e as Error).message}`);
    }
  }

  toJSON(): JsonObject {
    const vocab: JsonObject = {};
    const entries = [...this.vocab].sort((a, b) => a[1] - b[1]);
    for (const [tok, id] of entries) vocab[tok] = id;
    // "a b" strings are what every tokenizers version reads; pairs only when a token holds a space.
    const mergeList = this.merges;
    const needPairs = mergeList.some(([a, b]) => a.includes(' ') || b.includes(' '));
    return {
      type: 'BPE',
      dropout: this.dropout,
      unk_token: this.unkToken,
      continuing_subword_prefix: this.continuingSubwordPrefix,
      end_of_word_suffix: this.endOfWordSuffix,
      fuse_unk: this.fuseUnk,
      byte_fallback: this.byteFallback,
      ignore_merges: this.ignoreMerges,
      vocab,
      merges: needPairs ? mergeList.map(([a, b]) => [a, b]) : mergeList.map(([a, b]) => `${a} ${b}`),
    };
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  /** The vocabulary (tokens and their ids) and the merges as ids: what a tokenizer cache stores. */
  compiledForm(): { tokens: string[]; ids: Int32Array; merges: CompiledMerges } {
    const tokens: string[] = [];
    const ids: number[] = [];
    for (const [tok, id] of this.vocab) {
      tokens.push(tok);
      ids.push(id);
    }
    return { tokens, ids: Int32Array.from(ids), merges: { left: this.mergeLeft, right: this.mergeRight, into: this.mergeInto } };
  }

  get merges(): readonly (readonly [string, string])[] {
    // Every merge names tokens of the vocabulary, so the ids give the pair back.
    this.mergeListCache ??= Array.from(this.mergeLeft, (a, r) => [this.vocabR[a]!, this.vocabR[this.mergeRight[r]!]!]);
    return this.mergeListCache;
  }

  /** The pair table of the TypeScript merge paths (the first, lowest-rank rule for a pair wins). */
  private get pairs(): PairTable {
    if (this.pairsCache === null) {
      const table = new PairTable(this.mergeLeft.length);
      for (let r = 0; r < this.mergeLeft.length; r++) table.set(this.mergeLeft[r]!, this.mergeRight[r]!, r, this.mergeInto[r]!);
      this.pairsCache = table;
    }
    return this.pairsCache;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.vocabR[id];
  }

  getVocab(): Map<string, number> {
    return new Map(this.vocab);
  }

  clearCache(): void {
    this.idCache.clear();
    this.wordCache.clear();
    this.nativeEncoder?.clearCache();
  }

  private get useDropout(): boolean {
    return this.dropout !== null && this.dropout > 0;
  }

  // -- the general path (HF merge_word / tokenize) -----------------------------------------------

  tokenize(piece: string): ModelToken[] {
    if (piece.length === 0) return [];
    if (this.ignoreMerges) {
      const id = this.vocab.get(piece);
      if (id !== undefined) return [{ id, value: piece, start: 0, end: piece.length }];
    }
    let word: Word | undefined = this.useDropout ? undefined : this.wordCache.get(piece);
    if (word === undefined) {
      word = this.mergeWord(piece);
      if (!this.useDropout && this.cacheCapacity > 0 && piece.length <= CACHE_MAX_WORD) {
        if (this.wordCache.size >= this.cacheCapacity) this.wordCache.clear();
        this.wordCache.set(piece, word);
      }
    }
    const out: ModelToken[] = [];
    let pos = 0;
    for (let i = 0; i < word.ids.length; i++) {
      const id = word.ids[i];
      out.push({ id, value: this.vocabR[id]!, start: pos, end: pos + word.lens[i] });
      pos += word.lens[i];
    }
    return out;
  }

  /** Initial symbols of a piece (characters, with prefix/suffix, unk and byte fallback), then merges. */
  private mergeWord(w: string): Word {
    const ids: number[] = [];
    const lens: number[] = [];
    let unkId = -1;
    let unkLen = 0;
    const flushUnk = (): void => {
      if (unkId >= 0) {
        ids.push(unkId);
        lens.push(unkLen);
        unkId = -1;
      }
    };
    const unkVocabId = (): number => {
      const id = this.vocab.get(this.unkToken!);
      if (id === undefined) throw new Error(`BPE: unk_token ${JSON.stringify(this.unkToken)} is not in the vocabulary`);
      return id;
    };
    for (let i = 0; i < w.length; ) {
      const cp = w.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      let s = w.slice(i, i + len);
      if (i > 0 && this.continuingSubwordPrefix !== null) s = this.continuingSubwordPrefix + s;
      if (i + len >= w.length && this.endOfWordSuffix !== null) s = s + this.endOfWordSuffix;
      i += len;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        flushUnk();
        ids.push(id);
        lens.push(len);
        continue;
      }
      if (this.byteFallback) {
        const bytes = Buffer.from(s, 'utf8');
        const byteIds: number[] = [];
        for (const b of bytes) {
          const bid = this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
          if (bid === undefined) break;
          byteIds.push(bid);
        }
        if (byteIds.length === bytes.length) {
          flushUnk();
          // HF gives each byte token length 1 (in bytes); in UTF-16 units the char's units go to the first.
          byteIds.forEach((bid, k) => {
            ids.push(bid);
            lens.push(k === 0 ? len : 0);
          });
          continue;
        }
      }
      if (this.unkToken !== null) {
        if (unkId >= 0 && this.fuseUnk) {
          unkLen += len;
        } else {
          flushUnk();
          unkId = unkVocabId();
          unkLen = len;
        }
      }
      // No unk token: the character is dropped, as in HF.
    }
    flushUnk();
    const n = ids.length;
    const idArr = Int32Array.from(ids);
    const lenArr = Int32Array.from(lens);
    return this.mergeSymbols(idArr, lenArr, n);
  }

  /** Applies merges to symbols (ids + lengths); returns the merged word. */
  private mergeSymbols(ids: Int32Array, lens: Int32Array, n: number): Word {
    if (n <= 1) return { ids: ids.slice(0, n), lens: lens.slice(0, n) };
    if (!this.useDropout && n <= SCAN_LIMIT) {
      const m = this.mergeScan(ids, lens, n);
      return { ids: ids.slice(0, m), lens: lens.slice(0, m) };
    }
    return this.mergeHeap(ids, lens, n);
  }

  /**
   * tiktoken-style merging for short words: keep each adjacent pair's rank; merge the lowest
   * (leftmost on ties), recompute only its two neighbours. `lens` may be null (ids only).
   */
  private mergeScan(ids: Int32Array, lens: Int32Array | null, n: number): number {
    if (this.scratchRanks.length < n) this.scratchRanks = new Int32Array(n * 2);
    const ranks = this.scratchRanks;
    const pairs = this.pairs;
    for (let i = 0; i < n - 1; i++) {
      const slot = pairs.find(ids[i], ids[i + 1]);
      ranks[i] = slot < 0 ? NO_RANK : pairs.rank[slot];
    }
    while (n > 1) {
      let best = NO_RANK;
      let at = -1;
      for (let i = 0; i < n - 1; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          at = i;
        }
      }
      if (at < 0) break;
      ids[at] = pairs.merged[pairs.find(ids[at], ids[at + 1])];
      if (lens !== null) lens[at] += lens[at + 1];
      for (let i = at + 1; i < n - 1; i++) {
        ids[i] = ids[i + 1];
        ranks[i] = ranks[i + 1];
        if (lens !== null) lens[i] = lens[i + 1];
      }
      n--;
      if (at > 0) {
        const slot = pairs.find(ids[at - 1], ids[at]);
        ranks[at - 1] = slot < 0 ? NO_RANK : pairs.rank[slot];
      }
      if (at < n - 1) {
        const slot = pairs.find(ids[at], ids[at + 1]);
        ranks[at] = slot < 0 ? NO_RANK : pairs.rank[slot];
      }
    }
    return n;
  }

  /** HF Word::merge_all: a heap of (rank, position) over a doubly linked list, with optional dropout. */
  private mergeHeap(ids: Int32Array, lens: Int32Array, n: number): Word {
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const pairs = this.pairs;
    const heap = new MergeHeap(n);
    for (let i = 0; i < n - 1; i++) {
      const slot = pairs.find(ids[i], ids[i + 1]);
      if (slot >= 0) heap.push(pairs.rank[slot], i);
    }
    const dropout = this.useDropout ? this.dropout! : 0;
    const skipped: [number, number][] = [];
    while (heap.pop()) {
      const rank = heap.topRank;
      const pos = heap.topPos;
      if (dropout > 0 && Math.random() < dropout) {
        skipped.push([rank, pos]);
        continue;
      }
      for (const [r, p] of skipped) heap.push(r, p);
      skipped.length = 0;
      if (!alive[pos] || next[pos] === -1) continue;
      const right = next[pos];
      const slot = pairs.find(ids[pos], ids[right]);
      // A stale entry: the pair at pos changed since it was queued.
      if (slot < 0 || pairs.rank[slot] !== rank) continue;
      ids[pos] = pairs.merged[slot];
      lens[pos] += lens[right];
      alive[right] = 0;
      next[pos] = next[right];
      if (next[right] !== -1) prev[next[right]] = pos;
      if (prev[pos] !== -1) {
        const s = pairs.find(ids[prev[pos]], ids[pos]);
        if (s >= 0) heap.push(pairs.rank[s], prev[pos]);
      }
      if (next[pos] !== -1) {
        const s = pairs.find(ids[pos], ids[next[pos]]);
        if (s >= 0) heap.push(pairs.rank[s], pos);
      }
    }
    const outIds: number[] = [];
    const outLens: number[] = [];
    for (let i = 0; i !== -1 && i < n; i = next[i]) {
      outIds.push(ids[i]);
      outLens.push(lens[i]);
    }
    return { ids: Int32Array.from(outIds), lens: Int32Array.from(outLens) };
  }

  // -- the fast path (ids only, straight from the input) ----------------------------------------

  fastReady(byteLevel: boolean): boolean {
    if (this.useDropout || this.ignoreMerges) return false;
    if (!byteLevel) return true;
    return this.byteLevelComplete && !this.continuingSubwordPrefix && !this.endOfWordSuffix;
  }

  /**
   * Appends the ids of the words text[spans[2k], spans[2k+1]) for k < count: byte-level words in one
   * native call when the addon has the encoder, else word by word through encodeWordInto.
   */
  encodeWordsInto(text: string, spans: Int32Array, count: number, byteLevel: boolean, out: number[]): void {
    const native = byteLevel && BPE.useNative ? this.getNativeEncoder() : null;
    if (native === null) {
      for (let k = 0; k < count; k++) this.encodeWordInto(text, spans[2 * k], spans[2 * k + 1], byteLevel, out);
      return;
    }
    // Each UTF-16 unit makes at most 3 UTF-8 bytes, so at most 3 ids. One call for the whole text
    // measured faster than chunks of words as substrings; a huge text's buffer is just not kept.
    let units = 0;
    for (let k = 0; k < count; k++) units += spans[2 * k + 1] - spans[2 * k];
    let buf = this.nativeOut;
    if (buf.length < 3 * units) {
      buf = new Int32Array(Math.max(3 * units, 2 * buf.length, 1024));
      if (buf.length <= SCRATCH_KEEP) this.nativeOut = buf;
    }
    const n = native.encode(text, spans, count, buf);
    // Growing once then assigning is several times faster than n pushes.
    const base = out.length;
    out.length = base + n;
    for (let i = 0; i < n; i++) out[base + i] = buf[i];
  }

  /**
   * Splits `text` with GPT-2's pre-tokenizer pattern (`classes`: the class of each BMP unit, as
   * scanGpt2's table) and appends every word's ids, all in one native call; false (having appended
   * nothing) when the native encoder is not there or the text holds characters outside the BMP.
   */
  encodeGpt2Into(text: string, classes: Uint8Array, out: number[]): boolean {
    const native = BPE.useNative ? this.getNativeEncoder() : null;
    if (native === null || native.encodeGpt2 === undefined) return false;
    let buf = this.nativeOut;
    if (buf.length < 3 * text.length) {
      buf = new Int32Array(Math.max(3 * text.length, 2 * buf.length, 1024));
      if (buf.length <= SCRATCH_KEEP) this.nativeOut = buf;
    }
    const n = native.encodeGpt2(text, classes, buf);
    if (n < 0) return false;
    const base = out.length;
    out.length = base + n;
    for (let i = 0; i < n; i++) out[base + i] = buf[i];
    return true;
  }

  /** Whether byte-level fast-path words go through the native encoder (builds it on first ask). */
  get usesNative(): boolean {
    return BPE.useNative && this.getNativeEncoder() !== null;
  }

  private getNativeEncoder(): NativeBpeEncoder | null {
    if (this.nativeEncoder !== undefined) return this.nativeEncoder;
    this.nativeEncoder = null;
    if (!this.fastReady(true)) return null;
    const Encoder = nativeBpeEncoderClass();
    if (Encoder === null) return null;
    this.nativeEncoder = new Encoder(this.mergeLeft, this.mergeRight, this.mergeInto, this.byteIds, this.cacheCapacity, CACHE_MAX_WORD);
    return this.nativeEncoder;
  }

  encodeWordInto(text: string, start: number, end: number, byteLevel: boolean, out: number[]): void {
    const len = end - start;
    if (len <= 0) return;
    const key = start === 0 && end === text.length ? text : text.slice(start, end);
    const hit = this.idCache.get(key);
    if (hit !== undefined) {
      if (typeof hit === 'number') out.push(hit);
      else for (let i = 0; i < hit.length; i++) out.push(hit[i]);
      return;
    }
    let result: number | Int32Array;
    if (byteLevel) {
      // UTF-8 encode into byte ids (lone surrogates become U+FFFD, as TextEncoder does).
      if (this.scratchIds.length < len * 3) this.scratchIds = new Int32Array(len * 3 + 16);
      const ids = this.scratchIds;
      const byteIds = this.byteIds;
      let n = 0;
      for (let i = start; i < end; i++) {
        let c = text.charCodeAt(i);
        if (c < 0x80) {
          ids[n++] = byteIds[c];
          continue;
        }
        if (c < 0x800) {
          ids[n++] = byteIds[0xc0 | (c >> 6)];
          ids[n++] = byteIds[0x80 | (c & 63)];
          continue;
        }
        if (c >= 0xd800 && c <= 0xdfff) {
          const d = i + 1 < end ? text.charCodeAt(i + 1) : 0;
          if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
            ids[n++] = byteIds[0xf0 | (c >> 18)];
            ids[n++] = byteIds[0x80 | ((c >> 12) & 63)];
            ids[n++] = byteIds[0x80 | ((c >> 6) & 63)];
            ids[n++] = byteIds[0x80 | (c & 63)];
            continue;
          }
          c = 0xfffd;
        }
        ids[n++] = byteIds[0xe0 | (c >> 12)];
        ids[n++] = byteIds[0x80 | ((c >> 6) & 63)];
        ids[n++] = byteIds[0x80 | (c & 63)];
      }
      if (n === 1) {
        result = ids[0];
      } else if (n <= SCAN_LIMIT) {
        const m = this.mergeScan(ids, null, n);
        result = m === 1 ? ids[0] : ids.slice(0, m);
      } else {
        const w = this.mergeHeap(ids.slice(0, n), new Int32Array(n), n);
        result = w.ids.length === 1 ? w.ids[0] : w.ids;
      }
    } else {
      const w = this.mergeWord(key);
      result = w.ids.length === 1 ? w.ids[0] : w.ids;
    }
    if (typeof result === 'number') out.push(result);
    else for (let i = 0; i < result.length; i++) out.push(result[i]);
    if (this.cacheCapacity > 0 && len <= CACHE_MAX_WORD) {
      if (this.idCache.size >= this.cacheCapacity) this.idCache.clear();
      this.idCache.set(key, result);
    }
  }
}

models.register('BPE', (json) => BPE.fromJSON(json));
