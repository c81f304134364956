/**
 * The tokenizer pipeline's component contracts, after Hugging Face `tokenizers`:
 *   normalizer → pre-tokenizer → model → post-processor, and a decoder for the way back.
 * Each component serialises to / from its `tokenizer.json` object (the real HF schema: the same
 * `type` names and fields), through the registry in registry.ts.
 *
 * Offsets: every stage keeps track of where its pieces came from, so an Encoding can report the
 * character span (UTF-16 code units, JS string indices) of each token in the ORIGINAL input.
 */

/** JSON as found in tokenizer.json. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/**
 * Text after normalisation, with an alignment back to the original: `align[i]` is the original
 * index of normalized UTF-16 unit i, and `align[text.length]` the original length (end sentinel).
 */
export interface Normalized {
  text: string;
  align: number[];
}

export interface Normalizer {
  normalize(input: Normalized): Normalized;
  toJSON(): JsonObject;
}

/** A piece of normalized text with its [start, end) in the normalized string. */
export interface PreToken {
  text: string;
  start: number;
  end: number;
}

export interface PreTokenizer {
  /** Splits each piece further (offsets stay relative to the whole normalized string). */
  preTokenize(pieces: PreToken[]): PreToken[];
  toJSON(): JsonObject;
}

/** A token the model produced, with its [start, end) relative to the piece it came from. */
export interface ModelToken {
  id: number;
  value: string;
  start: number;
  end: number;
}

export interface TokenizerModel {
  /** Tokenizes one pre-token. */
  tokenize(piece: string): ModelToken[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Number of ids the model defines (not counting added tokens). */
  readonly vocabSize: number;
  getVocab(): Map<string, number>;
  toJSON(): JsonObject;
}

/** What `encode` returns (HF's Encoding). All arrays have the same length. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  /** [start, end) in the original input string (UTF-16 units); [0, 0] for added special tokens. */
  offsets: [number, number][];
  /** Segment ids (0 for the first sequence, 1 for the pair). */
  typeIds: number[];
  attentionMask: number[];
  specialTokensMask: number[];
  /** Which input sequence each token came from (0, 1) or null for special tokens. */
  sequenceIds: (number | null)[];
  /** Pieces cut off by truncation with a stride, if any. */
  overflowing: Encoding[];
}

export interface PostProcessor {
  /** How many special tokens `process` adds for a single sequence or a pair. */
  addedTokens(isPair: boolean): number;
  process(encoding: Encoding, pair: Encoding | null, addSpecialTokens: boolean): Encoding;
  toJSON(): JsonObject;
}

export interface Decoder {
  /** HF's decode_chain: transforms token strings; the results are concatenated. */
  decodeChain(tokens: string[]): string[];
  toJSON(): JsonObject;
}

/** A token added on top of the model's vocabulary (HF AddedToken). */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  /** Whether it is matched against the normalized text (true) or the raw input (false). */
  normalized: boolean;
}

/** Anything that turns text into ids and back (the trainer and models accept this). */
export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  readonly vocabSize: number;
}
