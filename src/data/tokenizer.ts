import { CharTokenizer } from '../tokenizers/char.js';
import { Tokenizer as HFTokenizer } from '../tokenizers/tokenizer.js';
import type { Json } from '../tokenizers/types.js';

/** What the trainer and the sampler need from a tokenizer; character-level and BPE tokenizers both fit. */
export interface Tokenizer {
  /** Token ids of `text`. */
  encode(text: string): number[];
  /** The text of `ids`. */
  decode(ids: readonly number[]): string;
  /** Number of distinct ids (the model's vocabulary size). */
  readonly vocabSize: number;
  /** A JSON-serialisable description from which the tokenizer can be rebuilt (saved as tokenizer.json). */
  toJSON(): unknown;
}

/** Rebuilds a tokenizer from its tokenizer.json: a character tokenizer when it is one, else the general pipeline. */
export function tokenizerFromSavedJSON(json: unknown): Tokenizer {
  try {
    return CharTokenizer.fromJSON(json);
  } catch {
    // Not a character tokenizer: any other HF tokenizer.json.
  }
  return HFTokenizer.fromJSON(json as Json);
}
