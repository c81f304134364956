/** Building blocks for Encoding values, shared by the Tokenizer and the post-processors. */
import type { Encoding } from './types.js';

export function emptyEncoding(): Encoding {
  return {
    ids: [],
    tokens: [],
    offsets: [],
    typeIds: [],
    attentionMask: [],
    specialTokensMask: [],
    sequenceIds: [],
    overflowing: [],
  };
}

export function sliceEncoding(e: Encoding, start: number, stop: number): Encoding {
  return {
    ids: e.ids.slice(start, stop),
    tokens: e.tokens.slice(start, stop),
    offsets: e.offsets.slice(start, stop),
    typeIds: e.typeIds.slice(start, stop),
    attentionMask: e.attentionMask.slice(start, stop),
    specialTokensMask: e.specialTokensMask.slice(start, stop),
    sequenceIds: e.sequenceIds.slice(start, stop),
    overflowing: [],
  };
}

/** Concatenates encodings (offsets are kept as they are: each refers to its own input). */
export function mergeEncodings(parts: readonly Encoding[]): Encoding {
  const out = emptyEncoding();
  // Element-wise appends: spreading a long array into push() overflows the call stack (~100K tokens).
  for (const p of parts) {
    for (let i = 0; i < p.ids.length; i++) {
      out.ids.push(p.ids[i]!);
      out.tokens.push(p.tokens[i]!);
      out.offsets.push(p.offsets[i]!);
      out.typeIds.push(p.typeIds[i]!);
      out.attentionMask.push(p.attentionMask[i]!);
      out.specialTokensMask.push(p.specialTokensMask[i]!);
      out.sequenceIds.push(p.sequenceIds[i]!);
    }
  }
  return out;
}

/** Special tokens as an encoding of their own (what post-processors insert). */
export function specialEncoding(ids: readonly number[], tokens: readonly string[], typeId: number): Encoding {
  return {
    ids: [...ids],
    tokens: [...tokens],
    offsets: ids.map((): [number, number] => [0, 0]),
    typeIds: ids.map(() => typeId),
    attentionMask: ids.map(() => 1),
    specialTokensMask: ids.map(() => 1),
    sequenceIds: ids.map(() => null),
    overflowing: [],
  };
}

