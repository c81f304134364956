/**
 * Tokenize and pack: documents become token ids, each followed by EOS, concatenated and cut into
 * fixed-length sequences of `seqLen` tokens, grouped into shards of whole sequences.
 *
 * On disk (the layout nanoGPT/Megatron-style loaders read):
 *   shard-000000.bin …   raw little-endian token ids, uint16 when the vocabulary has < 65,536 ids,
 *                        else uint32; no header (the index says everything)
 *   index.json           { format, version, dtype, seqLen, vocabSize, eosId, tokenizer,
 *                          shards: [{ file, tokens, sha256 }], totalTokens, droppedTailTokens }
 *   tokenizer.json       the tokenizer (HF format), so training and sampling decode the same ids
 *
 * Every shard is written atomically (temp file + rename), so a shard file is either complete or
 * absent; the tokens after the last whole sequence are dropped (counted in droppedTailTokens).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { type Tokenizer as DataTokenizer, tokenizerFromSavedJSON } from '../tokenizer.js';
import { CharTokenizer } from '../../tokenizers/char.js';
import { Tokenizer } from '../../tokenizers/tokenizer.js';
import { writeFileAtomicSync } from '../../io/atomic.js';

export type TokenDtype = 'uint16' | 'uint32';

export const INDEX_FILE = 'index.json';
export const SHARD_TOKENIZER_FILE = 'tokenizer.json';

/**
 * The character that ends a document for a character tokenizer: U+0003 END OF TEXT. Normalisation
 * removes control characters, so it never occurs inside a cleaned document.
 */
export const CHAR_EOS = '\u0003';

export const ShardEntry = z.object({
  file: z.string().regex(/^[\w.-]+$/, 'a plain file name inside the shard directory'),
  tokens: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ShardEntry = z.infer<typeof ShardEntry>;

export const ShardIndex = z.object({
  format: z.literal('weft-token-shards'),
  version: z.literal(1),
  dtype: z.enum(['uint16', 'uint32']),
  seqLen: z.number().int().positive(),
  vocabSize: z.number().int().positive(),
  eosId: z.number().int().nonnegative(),
  /** The tokenizer file in the shard directory, and where it was loaded from (null: built from the corpus). */
  tokenizer: z.object({ file: z.string(), source: z.string().nullable(), eos: z.string() }),
  shards: z.array(ShardEntry),
  totalTokens: z.number().int().nonnegative(),
  droppedTailTokens: z.number().int().nonnegative(),
});
export type ShardIndex = z.infer<typeof ShardIndex>;

export function dtypeFor(vocabSize: number): TokenDtype {
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`pack: vocabSize must be a positive integer, got ${vocabSize}`);
  return vocabSize <= 0x10000 ? 'uint16' : 'uint32';
}

export function bytesPerToken(dtype: TokenDtype): number {
  return dtype === 'uint16' ? 2 : 4;
}

export function shardFileName(i: number): string {
  return `shard-${String(i).padStart(6, '0')}.bin`;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Token ids as the bytes of a shard (little-endian whatever the host). */
export function encodeTokens(ids: ArrayLike<number>, dtype: TokenDtype, vocabSize: number): Uint8Array {
  const n = ids.length;
  const arr = dtype === 'uint16' ? new Uint16Array(n) : new Uint32Array(n);
  if (ids instanceof Uint32Array) {
    // Whole and non-negative by type: only the upper bound is checked, then one bulk copy.
    for (let i = 0; i < n; i++) if (ids[i]! >= vocabSize) throw new RangeError(`pack: token id ${ids[i]} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
    arr.set(ids);
  } else {
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) throw new RangeError(`pack: token id ${id} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
      arr[i] = id;
    }
  }
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  if (!LITTLE_ENDIAN) swapBytes(bytes, bytesPerToken(dtype));
  return bytes;
}

/** A shard's bytes as token ids (copied into an aligned array; little-endian on disk). */
export function decodeTokens(bytes: Uint8Array, dtype: TokenDtype): Uint16Array | Uint32Array {
  const width = bytesPerToken(dtype);
  if (bytes.byteLength % width !== 0) throw new RangeError(`shards: ${bytes.byteLength} bytes is not a whole number of ${dtype} tokens`);
  const copy = new Uint8Array(bytes);
  if (!LITTLE_ENDIAN) swapBytes(copy, width);
  return dtype === 'uint16' ? new Uint16Array(copy.buffer, 0, copy.byteLength / 2) : new Uint32Array(copy.buffer, 0, copy.byteLength / 4);
}

function swapBytes(b: Uint8Array, width: number): void {
  for (let i = 0; i < b.length; i += width) b.subarray(i, i + width).reverse();
}

/** Writes one shard atomically; returns its index entry. */
export function writeShard(dir: string, file: string, ids: ArrayLike<number>, dtype: TokenDtype, vocabSize: number): ShardEntry {
  const bytes = encodeTokens(ids, dtype, vocabSize);
  writeFileAtomicSync(join(dir, file), bytes);
  return { file, tokens: ids.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Names commonly used for an end-of-document token, tried in order when no --eos is given. */
const EOS_CANDIDATES = ['<|endoftext|>', '</s>', '<|end_of_text|>', '<eos>', '<|eos|>', '[SEP]', '<|im_end|>'];

/**
 * The EOS id: the given token, else the first known end-of-text token the vocabulary has
 * (for a character tokenizer, {@link CHAR_EOS}).
 */
export function resolveEos(tokenizer: DataTokenizer, eos?: string): { id: number; token: string } {
  const lookup = (t: string): number | undefined => {
    if (tokenizer instanceof CharTokenizer) {
      const i = tokenizer.vocab.indexOf(t);
      return i < 0 ? undefined : i;
    }
    if (tokenizer instanceof Tokenizer) return tokenizer.tokenToId(t);
    return undefined;
  };
  if (eos !== undefined) {
    const id = lookup(eos);
    if (id === undefined) throw new Error(`pack: the EOS token ${JSON.stringify(eos)} is not in the tokenizer's vocabulary; pass one it has`);
    return { id, token: eos };
  }
  for (const t of [CHAR_EOS, ...EOS_CANDIDATES]) {
    const id = lookup(t);
    if (id !== undefined) return { id, token: t };
  }
  throw new Error(`pack: the tokenizer has none of the usual end-of-text tokens (${EOS_CANDIDATES.join(', ')}); name one with --eos`);
}

/**
 * A character tokenizer for a corpus: its distinct characters plus {@link CHAR_EOS}, sorted by
 * code point (the ids CharTokenizer.fromText would give).
 */
export function charTokenizerFor(chars: Iterable<string>): CharTokenizer {
  const set = new Set(chars);
  set.add(CHAR_EOS);
  return CharTokenizer.fromVocab([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
}

export function loadSavedTokenizer(path: string): DataTokenizer {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read the tokenizer: ${(e as Error).message}`);
  }
  return tokenizerFromSavedJSON(json);
}

/** Token ids as typed arrays: what the tokenizers and the chunk token files hand the packer. */
export type TokenArray = Uint16Array | Uint32Array;

/** Writes one shard atomically from its parts, already in the shard's dtype (see ShardAssembler); returns its index entry. */
export function writeShardParts(dir: string, file: string, parts: readonly TokenArray[]): ShardEntry {
  let tokens = 0;
  const hash = createHash('sha256');
  const bytes = parts.map((p) => {
    tokens += p.length;
    let b = new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    if (!LITTLE_ENDIAN) {
      b = new Uint8Array(b);
      swapBytes(b, p.BYTES_PER_ELEMENT);
    }
    hash.update(b);
    return b;
  });
  writeFileAtomicSync(join(dir, file), bytes);
  return { file, tokens, sha256: hash.digest('hex') };
}

/**
 * Accumulates document tokens (each followed by EOS) and hands out full shards. It keeps views of
 * the arrays it is given, not copies: a shard is written straight from the chunk token files'
 * buffers (one gather write), so packing is no copy on this thread. The caller must not change an
 * array it appended before its shard is written. State is the pending tokens only, so a resumed
 * run recreates it by re-reading from a known position.
 */
export class ShardAssembler {
  private parts: TokenArray[] = [];
  private len = 0;

  constructor(
    readonly shardTokens: number,
    readonly dtype: TokenDtype,
    readonly vocabSize: number,
  ) {
    if (!Number.isInteger(shardTokens) || shardTokens < 1) throw new RangeError(`pack: shard size must be a positive integer of tokens, got ${shardTokens}`);
  }

  get pending(): number {
    return this.len;
  }

  /** Appends ids (checked against the vocabulary); calls `onShard` with the parts of every shard that fills. */
  append(ids: TokenArray, onShard: (parts: readonly TokenArray[]) => void): void {
    this.check(ids);
    // Held in the shard's dtype: a uint32 array bound for a uint16 shard is narrowed (a copy) here.
    const typed: TokenArray = this.dtype === 'uint16' ? (ids instanceof Uint16Array ? ids : Uint16Array.from(ids)) : ids instanceof Uint32Array ? ids : Uint32Array.from(ids);
    let i = 0;
    while (i < typed.length) {
      const take = Math.min(this.shardTokens - this.len, typed.length - i);
      this.push(typed.subarray(i, i + take));
      i += take;
      if (this.len === this.shardTokens) {
        const full = this.parts;
        this.parts = [];
        this.len = 0;
        onShard(full);
      }
    }
  }

  /** The pending tokens cut down to whole sequences of `seqLen`, and how many were dropped. */
  finish(seqLen: number): { tail: TokenArray[]; dropped: number } {
    let keep = Math.floor(this.len / seqLen) * seqLen;
    const dropped = this.len - keep;
    const tail: TokenArray[] = [];
    for (const p of this.parts) {
      if (keep === 0) break;
      const take = Math.min(keep, p.length);
      tail.push(p.subarray(0, take));
      keep -= take;
    }
    this.parts = [];
    this.len = 0;
    return { tail, dropped };
  }

  /** Adds a view, merged with the previous one when it continues it in the same buffer (most kept documents do). */
  private push(view: TokenArray): void {
    if (view.length === 0) return;
    const last = this.parts[this.parts.length - 1];
    if (last !== undefined && last.buffer === view.buffer && last.byteOffset + last.byteLength === view.byteOffset && last.BYTES_PER_ELEMENT === view.BYTES_PER_ELEMENT) {
      this.parts[this.parts.length - 1] = last instanceof Uint16Array ? new Uint16Array(last.buffer, last.byteOffset, last.length + view.length) : new Uint32Array(last.buffer, last.byteOffset, last.length + view.length);
    } else {
      this.parts.push(view);
    }
    this.len += view.length;
  }

  private check(ids: TokenArray): void {
    // A uint16 array cannot exceed a vocabulary of 65,536 or more.
    if (ids instanceof Uint16Array && this.vocabSize > 0xffff) return;
    let max = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i]! > max) max = ids[i]!;
    if (ids.length > 0 && max >= this.vocabSize) {
      const at = ids.findIndex((id) => id >= this.vocabSize);
      throw new RangeError(`pack: token id ${ids[at]} at position ${at} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }
}
