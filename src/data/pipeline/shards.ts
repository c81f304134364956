/**
 * Reading packed token shards (pack.ts) for training.
 *
 * {@link ShardDataset} has TextDataset's batch(split, batchSize, blockSize, generator) API and the
 * same semantics over the shards' tokens taken as one stream in index order: the first
 * `trainFraction` of the tokens (default 0.9) is the train split, the tail the validation split,
 * windows are drawn uniformly from [0, len − blockSize) with one generator draw per row. So a
 * TextDataset over the same ids gives bit-identical batches, and a run trained on shards follows
 * the same loss curve as one trained on those tokens from memory. A window may span two shards.
 *
 * Storage: 'memory' reads every shard into its typed array (2 or 4 bytes a token: the same
 * footprint as a memory map's resident pages); 'read' keeps only file handles and reads each
 * window with a positioned read (pread), for token sets larger than RAM. Node has no mmap, and
 * pread of a window is what a memory map would page in. The default is 'memory' below 1 GiB.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Batch, Split } from '../text-dataset.js';
import type { Tokenizer as DataTokenizer } from '../tokenizer.js';
import { bytesPerToken, decodeTokens, INDEX_FILE, loadSavedTokenizer, ShardIndex } from './pack.js';

export interface ShardDatasetOptions {
  /** Fraction of the token stream used for training; the rest (the tail) is validation. Default 0.9. */
  trainFraction?: number;
  /** 'memory' (read all shards) or 'read' (positioned reads per window); default by size. */
  storage?: 'memory' | 'read';
  /** Check every shard's SHA-256 against the index when opening (default true for 'memory'). */
  verify?: boolean;
}

/** True when `path` is a directory holding a shard index. */
export function isShardDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory() && existsSync(join(path, INDEX_FILE));
}

/** Reads and validates a shard directory's index.json. */
export function readShardIndex(dir: string): ShardIndex {
  const path = join(dir, INDEX_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no ${INDEX_FILE}; point at a directory written by \`weft data prepare\``);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: invalid JSON: ${(e as Error).message}`);
  }
  const r = ShardIndex.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const sum = r.data.shards.reduce((s, e) => s + e.tokens, 0);
  if (sum !== r.data.totalTokens) throw new Error(`${path}: totalTokens ${r.data.totalTokens} differs from the shards' sum ${sum}`);
  return r.data;
}

/** The tokenizer saved with the shards. */
export function loadShardTokenizer(dir: string): DataTokenizer {
  const index = readShardIndex(dir);
  const tok = loadSavedTokenizer(join(dir, index.tokenizer.file));
  if (tok.vocabSize !== index.vocabSize) throw new Error(`${dir}: ${index.tokenizer.file} has ${tok.vocabSize} ids but ${INDEX_FILE} says ${index.vocabSize}`);
  return tok;
}

interface ShardSource {
  /** First token of the shard in the whole stream. */
  start: number;
  tokens: number;
  data: Uint16Array | Uint32Array | null;
  fd: number | null;
  path: string;
}

export class ShardDataset {
  readonly index: ShardIndex;
  readonly dir: string;
  readonly storage: 'memory' | 'read';
  /** Token counts of the splits: train is [0, trainTokens), val is [trainTokens, total). */
  readonly trainTokens: number;
  readonly valTokens: number;
  private readonly shards: ShardSource[] = [];

  private constructor(dir: string, index: ShardIndex, options: ShardDatasetOptions) {
    this.dir = dir;
    this.index = index;
    const fraction = options.trainFraction ?? 0.9;
    if (!(fraction > 0 && fraction < 1)) throw new RangeError(`ShardDataset: trainFraction must be in (0, 1), got ${fraction}`);
    const width = bytesPerToken(index.dtype);
    this.storage = options.storage ?? (index.totalTokens * width < 2 ** 30 ? 'memory' : 'read');
    const verify = options.verify ?? this.storage === 'memory';
    let start = 0;
    for (const entry of index.shards) {
      const path = join(dir, entry.file);
      if (!existsSync(path)) throw new Error(`${dir}: shard ${entry.file} listed in ${INDEX_FILE} is missing`);
      const bytes = statSync(path).size;
      if (bytes !== entry.tokens * width) throw new Error(`${path}: ${bytes} bytes, but ${INDEX_FILE} says ${entry.tokens} ${index.dtype} tokens (${entry.tokens * width} bytes)`);
      let data: Uint16Array | Uint32Array | null = null;
      let fd: number | null = null;
      if (this.storage === 'memory' || verify) {
        const buf = readFileSync(path);
        if (verify) {
          const sha = createHash('sha256').update(buf).digest('hex');
          if (sha !== entry.sha256) throw new Error(`${path}: SHA-256 ${sha} differs from ${INDEX_FILE}'s ${entry.sha256}; the shard was changed or is corrupt`);
        }
        if (this.storage === 'memory') data = decodeTokens(buf, index.dtype);
      }
      if (this.storage === 'read') fd = openSync(path, 'r');
      this.shards.push({ start, tokens: entry.tokens, data, fd, path });
      start += entry.tokens;
    }
    // nanoGPT/TextDataset: n = len(data); train = data[:int(n*0.9)], val = data[int(n*0.9):].
    this.trainTokens = Math.floor(index.totalTokens * fraction);
    this.valTokens = index.totalTokens - this.trainTokens;
  }

  static open(dir: string, options: ShardDatasetOptions = {}): ShardDataset {
    return new ShardDataset(dir, readShardIndex(dir), options);
  }

  get numTokens(): number {
    return this.index.totalTokens;
  }

  get vocabSize(): number {
    return this.index.vocabSize;
  }

  splitTokens(split: Split): number {
    if (split === 'train') return this.trainTokens;
    if (split === 'val') return this.valTokens;
    throw new RangeError(`ShardDataset: split must be 'train' or 'val', got ${JSON.stringify(split)}`);
  }

  /** The number of distinct windows of `blockSize` (+1 target) a split offers; 0 if it is too short. */
  windows(split: Split, blockSize: number): number {
    return Math.max(0, this.splitTokens(split) - blockSize);
  }

  /** Copies stream tokens [from, from + out.length) into `out`. */
  read(from: number, out: Int32Array): void {
    const end = from + out.length;
    if (from < 0 || end > this.index.totalTokens) throw new RangeError(`ShardDataset.read: [${from}, ${end}) is outside the ${this.index.totalTokens} tokens`);
    let s = this.shardAt(from);
    let pos = from;
    let o = 0;
    while (pos < end) {
      const shard = this.shards[s]!;
      const lo = pos - shard.start;
      const n = Math.min(end - pos, shard.tokens - lo);
      if (shard.data !== null) {
        const src = shard.data;
        for (let k = 0; k < n; k++) out[o + k] = src[lo + k]!;
      } else {
        const width = bytesPerToken(this.index.dtype);
        const buf = Buffer.alloc(n * width);
        const got = readSync(shard.fd!, buf, 0, buf.length, lo * width);
        if (got !== buf.length) throw new Error(`${shard.path}: short read (${got} of ${buf.length} bytes at offset ${lo * width})`);
        const ids = decodeTokens(buf, this.index.dtype);
        for (let k = 0; k < n; k++) out[o + k] = ids[k]!;
      }
      pos += n;
      o += n;
      s++;
    }
  }

  /** Every token of a split (for tests and small sets). */
  tokens(split: Split | 'all' = 'all'): Int32Array {
    const [from, n] = split === 'all' ? [0, this.index.totalTokens] : split === 'train' ? [0, this.trainTokens] : [this.trainTokens, this.valTokens];
    const out = new Int32Array(n);
    if (n > 0) this.read(from, out);
    return out;
  }

  /**
   * `batchSize` random windows of `blockSize` tokens from `split`, offsets drawn from `generator`
   * (one draw per row, in row order) — TextDataset.batch over the same stream, draw for draw.
   */
  batch(split: Split, batchSize: number, blockSize: number, generator: Generator): Batch {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`ShardDataset.batch: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`ShardDataset.batch: blockSize must be a positive integer, got ${blockSize}`);
    const len = this.splitTokens(split);
    const windows = len - blockSize;
    if (windows < 1) {
      throw new RangeError(
        `ShardDataset.batch: the ${split} split of ${this.dir} has ${len} tokens, too few for a window of block size ${blockSize} plus one target; prepare more text or use a smaller block size`,
      );
    }
    const base = split === 'train' ? 0 : this.trainTokens;
    const x = new Int32Array(batchSize * blockSize);
    const y = new Int32Array(batchSize * blockSize);
    const window = new Int32Array(blockSize + 1);
    for (let b = 0; b < batchSize; b++) {
      const i = generator.int(0, windows);
      this.read(base + i, window);
      x.set(window.subarray(0, blockSize), b * blockSize);
      y.set(window.subarray(1), b * blockSize);
    }
    return { x: Tensor.fromArray(x, [batchSize, blockSize], 'i32'), y: Tensor.fromArray(y, [batchSize, blockSize], 'i32') };
  }

  /** Closes the file handles of 'read' storage. */
  close(): void {
    for (const s of this.shards) {
      if (s.fd !== null) closeSync(s.fd);
      s.fd = null;
    }
  }

  private shardAt(pos: number): number {
    let lo = 0;
    let hi = this.shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.shards[mid]!.start <= pos) lo = mid;
      else hi = mid - 1;
    }
    // Skip empty shards that start at the same position.
    while (lo < this.shards.length - 1 && this.shards[lo]!.tokens === 0) lo++;
    return lo;
  }
}
