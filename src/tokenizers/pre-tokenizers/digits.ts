/**
 * Digits pre-tokenizer (HF semantics): splits numeric characters (Rust's char::is_numeric, Unicode
 * N*) from the rest — each digit alone with `individual_digits`, else runs of digits together.
 *
 * tokenizer.json: {"type":"Digits","individual_digits":false}
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { optBool, splitPiece } from '../util.js';

const NUMERIC_CHAR = /\p{N}/gu;

export class Digits implements PreTokenizer {
  constructor(readonly individualDigits = false) {}

  static fromJSON(json: JsonObject): Digits {
    return new Digits(optBool(json, 'individual_digits', 'pre_tokenizer(Digits)', false));
  }

  preTokenize(pieces: PreToken[]): PreToken[] {
    const behavior = this.individualDigits ? 'Isolated' : 'Contiguous';
    return pieces.flatMap((p) => splitPiece(p, NUMERIC_CHAR, behavior, false));
  }

  toJSON(): JsonObject {
    return { type: 'Digits', individual_digits: this.individualDigits };
  }
}

preTokenizers.register('Digits', (json) => Digits.fromJSON(json));
