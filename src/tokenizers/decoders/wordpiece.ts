/**
 * WordPiece decoder (HF semantics): tokens after the first lose their continuing-subword prefix
 * ("##") or, without one, get a leading space; with `cleanup`, BERT's tokenization artefacts are
 * undone per token (" ." → ".", " n't" → "n't", " do not" → " don't", …).
 *
 * tokenizer.json: {"type":"WordPiece","prefix":"##","cleanup":true}
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';
import { optBool, optString } from '../util.js';

/** HF's `cleanup` (decoders/wordpiece.rs), the same replacements in the same order. */
export function cleanupTokenization(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

export class WordPieceDecoder implements Decoder {
  constructor(
    readonly prefix = '##',
    readonly cleanup = true,
  ) {}

  static fromJSON(json: JsonObject): WordPieceDecoder {
    const where = 'decoder(WordPiece)';
    return new WordPieceDecoder(optString(json, 'prefix', where) ?? '##', optBool(json, 'cleanup', where, true));
  }

  decodeChain(tokens: string[]): string[] {
    return tokens.map((token, i) => {
      let t = token;
      if (i !== 0) t = t.startsWith(this.prefix) ? t.slice(this.prefix.length) : ` ${t}`;
      return this.cleanup ? cleanupTokenization(t) : t;
    });
  }

  toJSON(): JsonObject {
    return { type: 'WordPiece', prefix: this.prefix, cleanup: this.cleanup };
  }
}

decoders.register('WordPiece', (json) => WordPieceDecoder.fromJSON(json));
