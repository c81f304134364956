/**
 * BertPreTokenizer (HF semantics): splits on whitespace (removed), then isolates every punctuation
 * character (ASCII punctuation or Unicode P*).
 *
 * tokenizer.json: {"type":"BertPreTokenizer"}
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { splitPiece } from '../util.js';
import { PUNCTUATION_CHAR } from './punctuation.js';

export const WHITESPACE_RUN = /\p{White_Space}+/gu;

export class BertPreTokenizer implements PreTokenizer {
  preTokenize(pieces: PreToken[]): PreToken[] {
    const out: PreToken[] = [];
    for (const p of pieces) {
      for (const word of splitPiece(p, WHITESPACE_RUN, 'Removed', false)) {
        for (const q of splitPiece(word, PUNCTUATION_CHAR, 'Isolated', false)) out.push(q);
      }
    }
    return out;
  }

  toJSON(): JsonObject {
    return { type: 'BertPreTokenizer' };
  }
}

preTokenizers.register('BertPreTokenizer', () => new BertPreTokenizer());
