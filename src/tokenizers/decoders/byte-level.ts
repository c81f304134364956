/**
 * ByteLevel decoder: maps GPT-2's byte alphabet back to bytes and decodes UTF-8 (invalid
 * sequences become U+FFFD, as Rust's from_utf8_lossy does). A token holding a character outside
 * the alphabet (an added token like "<|endoftext|>" with non-ASCII text) contributes its own
 * UTF-8 bytes, as in HF.
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';
import { BYTE_TABLES, optBool } from '../util.js';

// ignoreBOM: a leading U+FEFF is text, not a byte-order mark to drop.
const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const enc = new TextEncoder();

/** Bytes of byte-level tokens (or their own UTF-8 when a character is not in the alphabet). */
export function byteLevelBytes(tokens: readonly string[]): Uint8Array {
  const out: number[] = [];
  const map = BYTE_TABLES.charToByte;
  for (const t of tokens) {
    const start = out.length;
    let ok = true;
    for (let i = 0; i < t.length; i++) {
      const b = map.get(t[i]);
      if (b === undefined) {
        ok = false;
        break;
      }
      out.push(b);
    }
    if (!ok) {
      out.length = start;
      for (const b of enc.encode(t)) out.push(b);
    }
  }
  return Uint8Array.from(out);
}

export class ByteLevelDecoder implements Decoder {
  constructor(
    readonly addPrefixSpace = true,
    readonly trimOffsets = true,
    readonly useRegex = true,
  ) {}

  static fromJSON(json: JsonObject): ByteLevelDecoder {
    const where = 'decoder (ByteLevel)';
    return new ByteLevelDecoder(optBool(json, 'add_prefix_space', where, true), optBool(json, 'trim_offsets', where, true), optBool(json, 'use_regex', where, true));
  }

  toJSON(): JsonObject {
    return { type: 'ByteLevel', add_prefix_space: this.addPrefixSpace, trim_offsets: this.trimOffsets, use_regex: this.useRegex };
  }

  decodeChain(tokens: string[]): string[] {
    return [utf8.decode(byteLevelBytes(tokens))];
  }
}

decoders.register('ByteLevel', (json) => ByteLevelDecoder.fromJSON(json));
