/**
 * The paged KV cache (vLLM's PagedAttention memory manager): per layer one pool of fixed-size
 * blocks for keys and one for values, laid out [blocks, kvHeads, BLOCK_SIZE, headDim], so a
 * sequence's cache is a list of block ids (its block table) instead of one contiguous buffer, and
 * memory is taken 16 tokens at a time as a sequence grows.
 *
 * Blocks are reference counted. A block whose 16 tokens are all computed can be registered in the
 * prefix cache under its chain key: the exact token ids of the block plus the key of the block
 * before it, so equal keys mean equal token histories and therefore equal keys/values. A later
 * sequence with the same prefix takes those blocks (refcount + 1) and skips their prefill. Blocks
 * nobody references stay cached until memory runs out; then the least recently used is evicted.
 */

export const BLOCK_SIZE = 16;

export interface PagedKVShape {
  nLayer: number;
  kvHeads: number;
  headDim: number;
  /** Number of blocks in the pool (each holds BLOCK_SIZE positions of every layer). */
  numBlocks: number;
}

export interface PrefixLookup {
  /** Cached blocks for the leading full blocks of the tokens (refcounts already taken). */
  blocks: number[];
  /** Their chain keys, in order (the last one continues the chain for the next block). */
  keys: number[];
}

/** Chain key of "no previous block". */
export const ROOT_KEY = 0;

export class PagedKVCache {
  readonly nLayer: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly numBlocks: number;
  readonly blockSize = BLOCK_SIZE;
  /** Per layer: keys and values, [numBlocks, kvHeads, BLOCK_SIZE, headDim]. */
  readonly keys: Float32Array[];
  readonly values: Float32Array[];

  private readonly refs: Int32Array;
  /** Chain key of each block registered in the prefix cache (0: none). */
  private readonly blockKey: Float64Array;
  /** Blocks holding nothing, popped from the end. */
  private readonly free: number[] = [];
  /** Unreferenced cached blocks, least recently used first (Map keeps insertion order). */
  private readonly evictable = new Map<number, true>();
  /** "parentKey/token,token,…" → block, and block chain key → that lookup string. */
  private readonly byContent = new Map<string, number>();
  private readonly contentOf = new Map<number, string>();
  private nextKey = 1;
  private used = 0;

  prefixQueries = 0;
  prefixHits = 0;
  evictions = 0;

  constructor(shape: PagedKVShape) {
    for (const [k, v] of Object.entries(shape)) {
      if (!Number.isInteger(v) || (v as number) <= 0) throw new RangeError(`PagedKVCache: ${k} must be a positive integer, got ${String(v)}`);
    }
    ({ nLayer: this.nLayer, kvHeads: this.kvHeads, headDim: this.headDim, numBlocks: this.numBlocks } = shape);
    const size = this.numBlocks * this.kvHeads * BLOCK_SIZE * this.headDim;
    this.keys = Array.from({ length: this.nLayer }, () => new Float32Array(size));
    this.values = Array.from({ length: this.nLayer }, () => new Float32Array(size));
    this.refs = new Int32Array(this.numBlocks);
    this.blockKey = new Float64Array(this.numBlocks);
    for (let b = this.numBlocks - 1; b >= 0; b--) this.free.push(b);
  }

  /** Bytes of K and V for one block across all layers. */
  static bytesPerBlock(nLayer: number, kvHeads: number, headDim: number): number {
    return 2 * nLayer * kvHeads * BLOCK_SIZE * headDim * 4;
  }

  /** Blocks referenced by at least one sequence. */
  get usedBlocks(): number {
    return this.used;
  }

  /** Blocks that can be handed out now (free plus evictable cached ones). */
  get availableBlocks(): number {
    return this.free.length + this.evictable.size;
  }

  /** Cached blocks no sequence references (reusable by a prefix hit, evicted under pressure). */
  get cachedIdleBlocks(): number {
    return this.evictable.size;
  }

  refCount(block: number): number {
    return this.refs[block]!;
  }

  /** One fresh block (refcount 1), evicting the least recently used cached block if needed; null when none. */
  allocate(): number | null {
    let b = this.free.pop();
    if (b === undefined) {
      const lru = this.evictable.keys().next();
      if (lru.done === true) return null;
      b = lru.value;
      this.evictable.delete(b);
      this.unregister(b);
      this.evictions++;
    }
    this.refs[b] = 1;
    this.used++;
    return b;
  }

  /** Drops one reference to each block; unreferenced blocks go to the LRU (if cached) or the free list. */
  release(blocks: readonly number[]): void {
    for (const b of blocks) {
      const r = this.refs[b]!;
      if (r <= 0) throw new Error(`PagedKVCache.release: block ${b} is not referenced (double free)`);
      this.refs[b] = r - 1;
      if (r === 1) {
        this.used--;
        if (this.blockKey[b] !== 0) this.evictable.set(b, true);
        else this.free.push(b);
      }
    }
  }

  /** The lookup string of the full block tokens[from, from + 16) following the block with key `parentKey`. */
  private contentString(parentKey: number, tokens: readonly number[], from: number): string {
    let s = `${parentKey}/`;
    for (let i = from; i < from + BLOCK_SIZE; i++) s += `${tokens[i]},`;
    return s;
  }

  /**
   * Looks up the cached blocks for the leading full blocks of `tokens`, at most `maxBlocks` of them,
   * and takes a reference to each hit (give them back with release() if the sequence is not admitted).
   */
  lookupPrefix(tokens: readonly number[], maxBlocks: number): PrefixLookup {
    const blocks: number[] = [];
    const keys: number[] = [];
    const full = Math.min(Math.floor(tokens.length / BLOCK_SIZE), maxBlocks);
    let parent = ROOT_KEY;
    for (let i = 0; i < full; i++) {
      const b = this.byContent.get(this.contentString(parent, tokens, i * BLOCK_SIZE));
      if (b === undefined) break;
      if (this.refs[b] === 0) {
        this.evictable.delete(b);
        this.used++;
      }
      this.refs[b] = this.refs[b]! + 1;
      blocks.push(b);
      parent = this.blockKey[b]!;
      keys.push(parent);
    }
    return { blocks, keys };
  }

  /** Counts a lookup that was used: queried and hit tokens (vLLM's prefix-cache metrics). */
  countPrefixQuery(queriedTokens: number, hitTokens: number): void {
    this.prefixQueries += queriedTokens;
    this.prefixHits += hitTokens;
  }

  /**
   * Registers a block whose BLOCK_SIZE tokens (tokens[from, from + 16)) are now computed, following
   * the block with key `parentKey`. Returns the block's chain key. If an equal block is already
   * registered (another sequence computed the same prefix), that one's key is returned and this
   * block stays private.
   */
  register(block: number, parentKey: number, tokens: readonly number[], from: number): number {
    const existingKey = this.blockKey[block]!;
    if (existingKey !== 0) return existingKey;
    const content = this.contentString(parentKey, tokens, from);
    const other = this.byContent.get(content);
    if (other !== undefined) return this.blockKey[other]!;
    const key = this.nextKey++;
    this.blockKey[block] = key;
    this.byContent.set(content, block);
    this.contentOf.set(block, content);
    return key;
  }

  /** Forgets every cached prefix (blocks in use keep their data; idle cached blocks become free). */
  resetPrefixCache(): void {
    for (const b of this.evictable.keys()) {
      this.unregister(b);
      this.free.push(b);
    }
    this.evictable.clear();
    for (const b of [...this.contentOf.keys()]) this.unregister(b);
  }

  private unregister(b: number): void {
    const content = this.contentOf.get(b);
    if (content !== undefined) {
      this.byContent.delete(content);
      this.contentOf.delete(b);
    }
    this.blockKey[b] = 0;
  }

  /** Internal consistency (tests): every block is exactly one of used / free / evictable. */
  checkInvariants(): void {
    let used = 0;
    const freeSet = new Set(this.free);
    if (freeSet.size !== this.free.length) throw new Error('PagedKVCache: a block is on the free list twice');
    for (let b = 0; b < this.numBlocks; b++) {
      const r = this.refs[b]!;
      const states = (r > 0 ? 1 : 0) + (freeSet.has(b) ? 1 : 0) + (this.evictable.has(b) ? 1 : 0);
      if (states !== 1) throw new Error(`PagedKVCache: block ${b} is in ${states} states (refs ${r})`);
      if (r > 0) used++;
      if (this.evictable.has(b) && this.blockKey[b] === 0) throw new Error(`PagedKVCache: evictable block ${b} has no key`);
    }
    if (used !== this.used) throw new Error(`PagedKVCache: used count ${this.used} ≠ ${used}`);
  }
}
