/**
 * Metaspace decoder (HF semantics): the replacement character becomes a space — except in the
 * first token, where (unless prepend_scheme is "never") it is dropped, undoing the prefix.
 *
 * tokenizer.json: {"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';
import { optBool } from '../util.js';
import { readPrependScheme, readReplacement, type PrependScheme } from '../pre-tokenizers/metaspace.js';

export class MetaspaceDecoder implements Decoder {
  constructor(
    readonly replacement = '▁',
    readonly prependScheme: PrependScheme = 'always',
    readonly split = true,
  ) {}

  static fromJSON(json: JsonObject): MetaspaceDecoder {
    const where = 'decoder(Metaspace)';
    return new MetaspaceDecoder(readReplacement(json, where), readPrependScheme(json, where), optBool(json, 'split', where, true));
  }

  decodeChain(tokens: string[]): string[] {
    return tokens.map((token, i) => {
      // HF drops every replacement of the first token, not only a leading one.
      const first = i === 0 && this.prependScheme !== 'never';
      return token.split(this.replacement).join(first ? '' : ' ');
    });
  }

  toJSON(): JsonObject {
    return { type: 'Metaspace', replacement: this.replacement, prepend_scheme: this.prependScheme, split: this.split };
  }
}

decoders.register('Metaspace', (json) => MetaspaceDecoder.fromJSON(json));
