/**
 * BertProcessing post-processor: "[CLS] A [SEP]" and "[CLS] A [SEP] B [SEP]", with type id 0 for
 * the first part and 1 for B and its [SEP].
 */
import { mergeEncodings, specialEncoding } from '../encoding.js';
import { postProcessors } from '../registry.js';
import type { Encoding, Json, JsonObject, PostProcessor } from '../types.js';

/** A ["token", id] pair as HF writes cls/sep. */
export function tokenPairFromJSON(v: Json | undefined, where: string): [string, number] {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'number' || !Number.isInteger(v[1]) || v[1] < 0) {
    throw new Error(`tokenizer.json: ${where} must be ["token", id]`);
  }
  return [v[0], v[1]];
}

export class BertProcessing implements PostProcessor {
  constructor(
    readonly sep: [string, number] = ['[SEP]', 102],
    readonly cls: [string, number] = ['[CLS]', 101],
  ) {}

  static fromJSON(json: JsonObject): BertProcessing {
    return new BertProcessing(tokenPairFromJSON(json.sep, 'post_processor (BertProcessing).sep'), tokenPairFromJSON(json.cls, 'post_processor (BertProcessing).cls'));
  }

  toJSON(): JsonObject {
    return { type: 'BertProcessing', sep: [this.sep[0], this.sep[1]], cls: [this.cls[0], this.cls[1]] };
  }

  addedTokens(isPair: boolean): number {
    return isPair ? 3 : 2;
  }

  process(encoding: Encoding, pair: Encoding | null, addSpecialTokens: boolean): Encoding {
    const seq = (e: Encoding, typeId: number, seqId: number): Encoding => ({ ...e, typeIds: e.typeIds.map(() => typeId), sequenceIds: e.sequenceIds.map(() => seqId) });
    if (!addSpecialTokens) return pair === null ? encoding : mergeEncodings([encoding, seq(pair, 1, 1)]);
    const cls = specialEncoding([this.cls[1]], [this.cls[0]], 0);
    const parts = [cls, seq(encoding, 0, 0), specialEncoding([this.sep[1]], [this.sep[0]], 0)];
    if (pair !== null) parts.push(seq(pair, 1, 1), specialEncoding([this.sep[1]], [this.sep[0]], 1));
    return mergeEncodings(parts);
  }
}

postProcessors.register('BertProcessing', (json) => BertProcessing.fromJSON(json));
