/**
 * ByteFallback decoder (HF semantics): runs of byte tokens `<0xXX>` are turned back into text; a
 * run that is not valid UTF-8 becomes one U+FFFD per byte. Other tokens pass through.
 *
 * tokenizer.json: {"type":"ByteFallback"}
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** Rust's u8::from_str_radix(_, 16) on two characters: hex digits, optionally after a '+'. */
const BYTE_TOKEN = /^<0x(\+[0-9a-fA-F]|[0-9a-fA-F]{2})>$/;

/** The byte a `<0xXX>` token stands for, or null. */
export function byteOfToken(token: string): number | null {
  if (token.length !== 6) return null;
  const m = BYTE_TOKEN.exec(token);
  return m === null ? null : parseInt(m[1]!.replace('+', ''), 16);
}

export class ByteFallbackDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    const out: string[] = [];
    let bytes: number[] = [];
    const flush = (): void => {
      if (bytes.length === 0) return;
      try {
        out.push(strictUtf8.decode(Uint8Array.from(bytes)));
      } catch {
        for (let i = 0; i < bytes.length; i++) out.push('\ufffd');
      }
      bytes = [];
    };
    for (const token of tokens) {
      const b = byteOfToken(token);
      if (b !== null) {
        bytes.push(b);
      } else {
        flush();
        out.push(token);
      }
    }
    flush();
    return out;
  }

  toJSON(): JsonObject {
    return { type: 'ByteFallback' };
  }
}

decoders.register('ByteFallback', () => new ByteFallbackDecoder());
