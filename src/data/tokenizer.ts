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
