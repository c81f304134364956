/**
 * Punctuation pre-tokenizer (HF semantics): splits on punctuation characters — ASCII punctuation
 * (which includes symbols such as $ + < = > ^ ` |) or Unicode category P* — with a delimiter
 * behavior (default Isolated: each punctuation character becomes its own piece).
 *
 * tokenizer.json: {"type":"Punctuation","behavior":"Isolated"}
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { optString, splitPiece, type SplitBehavior } from '../util.js';

/** One punctuation character per match (HF's is_bert_punc: char::is_ascii_punctuation || is_punctuation). */
export const PUNCTUATION_CHAR = /[!-/:-@[-`{-~]|\p{P}/gu;

const BEHAVIORS: readonly SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

export function readBehavior(json: JsonObject, where: string, dflt: SplitBehavior): SplitBehavior {
  const b = optString(json, 'behavior', where);
  if (b === null) return dflt;
  if (!(BEHAVIORS as readonly string[]).includes(b)) {
    throw new Error(`tokenizer.json: ${where}.behavior must be one of ${BEHAVIORS.join(', ')}, got ${JSON.stringify(b)}`);
  }
  return b as SplitBehavior;
}

export class Punctuation implements PreTokenizer {
  constructor(readonly behavior: SplitBehavior = 'Isolated') {}

  static fromJSON(json: JsonObject): Punctuation {
    return new Punctuation(readBehavior(json, 'pre_tokenizer(Punctuation)', 'Isolated'));
  }

  preTokenize(pieces: PreToken[]): PreToken[] {
    return pieces.flatMap((p) => splitPiece(p, PUNCTUATION_CHAR, this.behavior, false));
  }

  toJSON(): JsonObject {
    return { type: 'Punctuation', behavior: this.behavior };
  }
}

preTokenizers.register('Punctuation', (json) => Punctuation.fromJSON(json));
