/**
 * A compiled copy of a BPE tokenizer.json, so that loading it again skips the costly parts: parsing
 * the vocabulary object (tens of thousands of keys) and resolving every merge rule's strings to ids.
 * GPT-2's 2 MB file loads in about a third of the time (each data-pipeline worker loads one).
 *
 * The copy lives in node_modules/.cache/weft, named by the file's absolute path, size and
 * modification time, so an edited file is compiled afresh. It holds the tokenizer's own saved form
 * without vocab and merges (normaliser, pre-tokenizer, post-processor, decoder, added tokens, model
 * settings), the vocabulary as tokens and ids, and the merges as id triples. A copy that cannot be
 * read back whole is ignored and rewritten; one that cannot be written (a read-only install) only
 * costs the speed-up. WEFT_TOKENIZER_CACHE=0 turns it off.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomicSync } from '../io/atomic.js';
import { derivedCacheDir } from '../io/cache-dir.js';
import { BPE } from './models/bpe.js';
import { Tokenizer } from './tokenizer.js';
import type { JsonObject } from './types.js';
import { isObject } from './util.js';

const MAGIC = 0x434b5457; // "WTKC"
const VERSION = 1;
const HEAD_WORDS = 6;

/** Where the compiled copy of `file` (as it is now) lives; null when caching is off or impossible. */
export function compiledCachePath(file: string): string | null {
  const dir = process.env.WEFT_TOKENIZER_CACHE === '0' ? null : derivedCacheDir();
  if (dir === null) return null;
  try {
    const st = statSync(file);
    const key = createHash('sha256').update(`${resolve(file)}\0${st.size}\0${Math.floor(st.mtimeMs)}`).digest('hex').slice(0, 32);
    return join(dir, `tokenizer-${key}.bin`);
  } catch {
    return null;
  }
}

/** Tokenizer.fromFile(file) through the compiled cache when the model is BPE. */
export function loadTokenizerJsonCached(file: string): Tokenizer {
  const cachePath = compiledCachePath(file);
  if (cachePath === null) return Tokenizer.fromFile(file);
  let cached: Tokenizer | null = null;
  try {
    cached = decodeCompiled(readFileSync(cachePath));
  } catch {
    cached = null;
  }
  if (cached !== null) return cached;
  const tok = Tokenizer.fromFile(file);
  if (tok.model instanceof BPE) {
    try {
      mkdirSync(dirname(cachePath), { recursive: true });
      writeFileAtomicSync(cachePath, encodeCompiled(tok));
    } catch {
      // A read-only install only costs the speed-up.
    }
  }
  return tok;
}

/** [magic, version, header bytes, tokens bytes, vocabulary size, merges] as uint32, header JSON, tokens JSON, padding to 4, ids, left, right, into (int32). */
export function encodeCompiled(tok: Tokenizer): Uint8Array[] {
  if (!(tok.model instanceof BPE)) throw new Error('tokenizer cache: only BPE models are compiled');
  const json = tok.toJSON() as JsonObject;
  const model = json.model as JsonObject;
  const header = Buffer.from(JSON.stringify({ ...json, model: { ...model, vocab: {}, merges: [] } }));
  const form = tok.model.compiledForm();
  const tokens = Buffer.from(JSON.stringify(form.tokens));
  const n = form.merges.left.length;
  const head = new Uint32Array([MAGIC, VERSION, header.length, tokens.length, form.ids.length, n]);
  const pad = (4 - ((head.byteLength + header.length + tokens.length) % 4)) % 4;
  const bytes = (a: Int32Array | Uint32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return [bytes(head), header, tokens, new Uint8Array(pad), bytes(form.ids), bytes(form.merges.left), bytes(form.merges.right), bytes(form.merges.into)];
}

/** The tokenizer from a compiled copy's bytes; null when they are not a whole copy of this version. */
export function decodeCompiled(buf: Buffer): Tokenizer | null {
  if (buf.length < HEAD_WORDS * 4) return null;
  // An aligned private copy: the id arrays below are views into it.
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
  const [magic, version, headerLen, tokensLen, vocabSize, merges] = Array.from(new Uint32Array(ab, 0, HEAD_WORDS)) as [number, number, number, number, number, number];
  if (magic !== MAGIC || version !== VERSION) return null;
  let off = HEAD_WORDS * 4;
  const idsAt = Math.ceil((off + headerLen + tokensLen) / 4) * 4;
  if (idsAt + 4 * (vocabSize + 3 * merges) !== ab.byteLength) return null;
  const header: unknown = JSON.parse(Buffer.from(ab, off, headerLen).toString('utf8'));
  off += headerLen;
  const tokens: unknown = JSON.parse(Buffer.from(ab, off, tokensLen).toString('utf8'));
  if (!isObject(header as JsonObject) || !isObject((header as JsonObject).model) || !Array.isArray(tokens) || tokens.length !== vocabSize) return null;
  const ids = new Int32Array(ab, idsAt, vocabSize);
  const vocab = new Map<string, number>();
  for (let i = 0; i < vocabSize; i++) {
    const t: unknown = tokens[i];
    if (typeof t !== 'string') return null;
    vocab.set(t, ids[i]!);
  }
  const at = idsAt + 4 * vocabSize;
  const compiled = { left: new Int32Array(ab, at, merges), right: new Int32Array(ab, at + 4 * merges, merges), into: new Int32Array(ab, at + 8 * merges, merges) };
  const json = header as JsonObject;
  return Tokenizer.fromJSON(json, BPE.fromJSON(json.model as JsonObject, { vocab, merges: compiled }));
}
