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

/**
 * Accumulates document tokens (each followed by EOS) and hands out full shards. State is the
 * pending tokens only, so a resumed run recreates it by re-tokenizing from a known position.
 */
export class TokenPacker {
  private buf: Uint32Array;
  private len = 0;

  constructor(readonly shardTokens: number) {
    if (!Number.isInteger(shardTokens) || shardTokens < 1) throw new RangeError(`pack: shard size must be a positive integer of tokens, got ${shardTokens}`);
    this.buf = new Uint32Array(Math.min(shardTokens, 1 << 16));
  }

  get pending(): number {
    return this.len;
  }

  /** Appends ids; calls `onShard` for every shard that fills (the buffer passed is reused afterwards). */
  append(ids: ArrayLike<number>, onShard: (shard: Uint32Array) => void): void {
    let i = 0;
    while (i < ids.length) {
      const room = this.shardTokens - this.len;
      const take = Math.min(room, ids.length - i);
      this.ensure(this.len + take);
      if (ids instanceof Uint32Array || ids instanceof Uint16Array) this.buf.set(ids.subarray(i, i + take), this.len);
      else for (let k = 0; k < take; k++) this.buf[this.len + k] = ids[i + k]!;
      this.len += take;
      i += take;
      if (this.len === this.shardTokens) {
        onShard(this.buf.subarray(0, this.len));
        this.len = 0;
      }
    }
  }

  /** The pending tokens cut down to whole sequences of `seqLen`, and how many were dropped. */
  finish(seqLen: number): { tail: Uint32Array; dropped: number } {
    const keep = Math.floor(this.len / seqLen) * seqLen;
    const tail = this.buf.slice(0, keep);
    const dropped = this.len - keep;
    this.len = 0;
    return { tail, dropped };
  }

  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    const next = new Uint32Array(Math.min(this.shardTokens, Math.max(n, this.buf.length * 2)));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}
