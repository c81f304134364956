/**
 * Fuse decoder (HF semantics): joins all tokens into one string (so later decoders such as Strip
 * act on the whole text).
 *
 * tokenizer.json: {"type":"Fuse"}
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';

export class FuseDecoder implements Decoder {
  decodeChain(tokens: string[]): string[] {
    return [tokens.join('')];
  }

  toJSON(): JsonObject {
    return { type: 'Fuse' };
  }
}

decoders.register('Fuse', () => new FuseDecoder());
