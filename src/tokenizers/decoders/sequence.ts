/**
 * Sequence decoder (HF semantics): applies each decoder's decode_chain in turn.
 *
 * tokenizer.json: {"type":"Sequence","decoders":[...]}
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';
import { isObject, reqArray } from '../util.js';

export class SequenceDecoder implements Decoder {
  constructor(readonly decoders: Decoder[]) {}

  static fromJSON(json: JsonObject): SequenceDecoder {
    const where = 'decoder(Sequence)';
    const list = reqArray(json, 'decoders', where).map((d, i) => {
      if (!isObject(d)) throw new Error(`tokenizer.json: ${where}.decoders[${i}] must be an object`);
      return decoders.fromJSON(d);
    });
    return new SequenceDecoder(list);
  }

  decodeChain(tokens: string[]): string[] {
    let out = tokens;
    for (const d of this.decoders) out = d.decodeChain(out);
    return out;
  }

  toJSON(): JsonObject {
    return { type: 'Sequence', decoders: this.decoders.map((d) => d.toJSON()) };
  }
}

decoders.register('Sequence', (json) => SequenceDecoder.fromJSON(json));
