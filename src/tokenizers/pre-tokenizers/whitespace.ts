/**
 * Whitespace pre-tokenizers (HF semantics):
 *   Whitespace: the pieces matching `\w+|[^\w\s]+` (runs of word characters, and runs of other
 *     non-space characters); whitespace is dropped. `\w` is Oniguruma's Unicode word class:
 *     letters, marks, numbers and connector punctuation.
 *   WhitespaceSplit: splits on whitespace only (Unicode White_Space), which is dropped.
 *
 * tokenizer.json: {"type":"Whitespace"}, {"type":"WhitespaceSplit"}
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { splitPiece } from '../util.js';
import { WHITESPACE_RUN } from './bert.js';

const WORDS_OR_SYMBOLS = /[\p{L}\p{M}\p{N}\p{Pc}]+|[^\p{L}\p{M}\p{N}\p{Pc}\p{White_Space}]+/gu;

export class Whitespace implements PreTokenizer {
  preTokenize(pieces: PreToken[]): PreToken[] {
    // Keep the matches: the inverted split removes everything between them.
    return pieces.flatMap((p) => splitPiece(p, WORDS_OR_SYMBOLS, 'Removed', true));
  }

  toJSON(): JsonObject {
    return { type: 'Whitespace' };
  }
}

export class WhitespaceSplit implements PreTokenizer {
  preTokenize(pieces: PreToken[]): PreToken[] {
    return pieces.flatMap((p) => splitPiece(p, WHITESPACE_RUN, 'Removed', false));
  }

  toJSON(): JsonObject {
    return { type: 'WhitespaceSplit' };
  }
}

preTokenizers.register('Whitespace', () => new Whitespace());
preTokenizers.register('WhitespaceSplit', () => new WhitespaceSplit());
