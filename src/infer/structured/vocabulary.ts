/**
 * The exact bytes every token id contributes to decoded text, which is what a byte-level grammar
 * constraint needs: a token may be sampled only if its bytes can continue the document.
 *
 * Bytes are derived from the tokenizer's decoder chain token by token (ByteLevel's byte↔unicode
 * alphabet, SentencePiece's '▁' → space and `<0xNN>` byte-fallback pieces, WordPiece's '##'
 * continuation), ignoring the decoders that act only at the start of the whole text (Strip, the
 * Metaspace first-token rule): inside generated output a token contributes the same bytes wherever
 * it appears, and the only difference at the very start is a dropped leading space, which JSON
 * allows anyway. Special tokens (and the unknown token) are not text: `isText` is false for them
 * and a constraint never allows them, except EOS where the output is complete.
 */
import { ByteFallbackDecoder, byteOfToken } from '../../tokenizers/decoders/byte-fallback.js';
import { byteLevelBytes, ByteLevelDecoder } from '../../tokenizers/decoders/byte-level.js';
import { MetaspaceDecoder } from '../../tokenizers/decoders/metaspace.js';
import { ReplaceDecoder } from '../../tokenizers/decoders/replace.js';
import { SequenceDecoder } from '../../tokenizers/decoders/sequence.js';
import { WordPieceDecoder } from '../../tokenizers/decoders/wordpiece.js';
import { CharTokenizer } from '../../tokenizers/char.js';
import { Tokenizer as HFTokenizer } from '../../tokenizers/tokenizer.js';
import type { Decoder } from '../../tokenizers/types.js';

export interface TokenVocabulary {
  /** Number of token ids (logits length). */
  size: number;
  /** The bytes the token adds to decoded text; empty for tokens that are not text. */
  bytes(id: number): Uint8Array;
  /** End-of-sequence ids: allowed only where the constrained output is complete. */
  eosIds: readonly number[];
  /** False for special / control tokens, which a constraint never allows inside its output (absent: non-empty bytes are text). */
  isText?(id: number): boolean;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/** A token on its way through the decoder chain: still text, or already bytes. */
type Piece = { text: string; bytes: null } | { text: null; bytes: Uint8Array };

function applyDecoder(d: Decoder, p: Piece): Piece {
  if (p.bytes !== null) return p;
  if (d instanceof SequenceDecoder) {
    let q: Piece = p;
    for (const inner of d.decoders) q = applyDecoder(inner, q);
    return q;
  }
  if (d instanceof ByteLevelDecoder) return { text: null, bytes: byteLevelBytes([p.text]) };
  if (d instanceof ByteFallbackDecoder) {
    const b = byteOfToken(p.text);
    return b === null ? p : { text: null, bytes: Uint8Array.of(b) };
  }
  if (d instanceof MetaspaceDecoder) return { text: p.text.split(d.replacement).join(' '), bytes: null };
  if (d instanceof ReplaceDecoder) {
    // Only literal patterns occur in released decoders (▁ → space); a regex runs per token as HF does.
    return { text: d.decodeChain([p.text]).join(''), bytes: null };
  }
  if (d instanceof WordPieceDecoder) {
    return { text: p.text.startsWith(d.prefix) ? p.text.slice(d.prefix.length) : ` ${p.text}`, bytes: null };
  }
  // Fuse, Strip and unknown decoders: Fuse only joins; Strip acts at the start of the whole text.
  return p;
}

function hfVocabulary(tok: HFTokenizer, eosIds: readonly number[]): TokenVocabulary {
  const size = tok.vocabSize;
  const table: Uint8Array[] = new Array<Uint8Array>(size).fill(EMPTY);
  const text = new Uint8Array(size);
  const special = new Set<number>();
  for (const t of tok.addedTokens) if (t.special) special.add(t.id);
  const unk = (tok.model as { unkId?: unknown }).unkId;
  if (typeof unk === 'number') special.add(unk);
  const unkToken = (tok.model as { unkToken?: unknown }).unkToken;
  if (typeof unkToken === 'string') {
    const id = tok.tokenToId(unkToken);
    if (id !== undefined) special.add(id);
  }
  for (const id of eosIds) special.add(id);
  for (let id = 0; id < size; id++) {
    if (special.has(id)) continue;
    const token = tok.idToToken(id);
    if (token === undefined || token === '') continue;
    let piece: Piece = { text: token, bytes: null };
    // HF decode joins tokens with spaces when there is no decoder: each token then brings its own.
    if (tok.decoder === null) piece = { text: ` ${token}`, bytes: null };
    else piece = applyDecoder(tok.decoder, piece);
    const bytes = piece.bytes ?? utf8.encode(piece.text);
    if (bytes.length === 0) continue;
    table[id] = bytes;
    text[id] = 1;
  }
  return { size, bytes: (id) => table[id] ?? EMPTY, eosIds: [...eosIds], isText: (id) => text[id] === 1 };
}

function charVocabulary(tok: CharTokenizer, eosIds: readonly number[]): TokenVocabulary {
  const eos = new Set(eosIds);
  const table = tok.vocab.map((ch, id) => (eos.has(id) ? EMPTY : utf8.encode(ch)));
  return { size: table.length, bytes: (id) => table[id] ?? EMPTY, eosIds: [...eosIds], isText: (id) => (table[id]?.length ?? 0) > 0 };
}

interface DecodingTokenizer {
  decode(ids: readonly number[]): string;
  readonly vocabSize: number;
}

function isDecodingTokenizer(t: unknown): t is DecodingTokenizer {
  return typeof t === 'object' && t !== null && typeof (t as DecodingTokenizer).decode === 'function' && typeof (t as DecodingTokenizer).vocabSize === 'number';
}

/** Any other tokenizer: each id decoded alone (exact for tokenizers whose tokens are whole characters). */
function decodedVocabulary(tok: DecodingTokenizer, eosIds: readonly number[]): TokenVocabulary {
  const eos = new Set(eosIds);
  const table: Uint8Array[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    let bytes = EMPTY;
    if (!eos.has(id)) {
      try {
        const s = tok.decode([id]);
        // A lone undecodable byte shows as U+FFFD: its real byte is unknown, so it is not usable text.
        if (!s.includes('\ufffd')) bytes = utf8.encode(s);
      } catch {
        bytes = EMPTY;
      }
    }
    table.push(bytes);
  }
  return { size: table.length, bytes: (id) => table[id] ?? EMPTY, eosIds: [...eosIds], isText: (id) => (table[id]?.length ?? 0) > 0 };
}

const cache = new WeakMap<object, Map<string, TokenVocabulary>>();

/**
 * The byte table of a tokenizer (the HF pipeline, a character tokenizer, or anything with
 * decode/vocabSize), computed once per (tokenizer, EOS ids) and cached.
 */
export function tokenVocabulary(tokenizer: unknown, eosIds: readonly number[]): TokenVocabulary {
  if (typeof tokenizer !== 'object' || tokenizer === null) throw new TypeError('tokenVocabulary: tokenizer must be a tokenizer object');
  const key = [...eosIds].sort((a, b) => a - b).join(',');
  let perTokenizer = cache.get(tokenizer);
  const hit = perTokenizer?.get(key);
  if (hit !== undefined) return hit;
  let vocab: TokenVocabulary;
  if (tokenizer instanceof HFTokenizer) vocab = hfVocabulary(tokenizer, eosIds);
  else if (tokenizer instanceof CharTokenizer) vocab = charVocabulary(tokenizer, eosIds);
  else if (isDecodingTokenizer(tokenizer)) vocab = decodedVocabulary(tokenizer, eosIds);
  else throw new TypeError('tokenVocabulary: expected a tokenizer with decode(ids) and vocabSize');
  for (const id of eosIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab.size) throw new RangeError(`tokenVocabulary: EOS id ${id} is outside the vocabulary [0, ${vocab.size})`);
  }
  if (perTokenizer === undefined) {
    perTokenizer = new Map();
    cache.set(tokenizer, perTokenizer);
  }
  perTokenizer.set(key, vocab);
  return vocab;
}
