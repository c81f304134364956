/**
 * RobertaProcessing post-processor: "<s> A </s>" and "<s> A </s> </s> B </s>", all type ids 0,
 * with ByteLevel offset trimming when trim_offsets is set.
 */
import { mergeEncodings, specialEncoding } from '../encoding.js';
import { postProcessors } from '../registry.js';
import type { Encoding, JsonObject, PostProcessor } from '../types.js';
import { optBool } from '../util.js';
import { tokenPairFromJSON } from './bert.js';
import { trimByteLevelOffsets } from './byte-level.js';

export class RobertaProcessing implements PostProcessor {
  constructor(
    readonly sep: [string, number] = ['</s>', 2],
    readonly cls: [string, number] = ['<s>', 0],
    readonly trimOffsets = true,
    readonly addPrefixSpace = true,
  ) {}

  static fromJSON(json: JsonObject): RobertaProcessing {
    const where = 'post_processor (RobertaProcessing)';
    return new RobertaProcessing(
      tokenPairFromJSON(json.sep, `${where}.sep`),
      tokenPairFromJSON(json.cls, `${where}.cls`),
      optBool(json, 'trim_offsets', where, true),
      optBool(json, 'add_prefix_space', where, true),
    );
  }

  toJSON(): JsonObject {
    return { type: 'RobertaProcessing', sep: [this.sep[0], this.sep[1]], cls: [this.cls[0], this.cls[1]], trim_offsets: this.trimOffsets, add_prefix_space: this.addPrefixSpace };
  }

  addedTokens(isPair: boolean): number {
    return isPair ? 4 : 2;
  }

  process(encoding: Encoding, pair: Encoding | null, addSpecialTokens: boolean): Encoding {
    const prep = (e: Encoding, seqId: number): Encoding => {
      const c: Encoding = { ...e, offsets: e.offsets.map((o): [number, number] => [o[0], o[1]]), typeIds: e.typeIds.map(() => 0), sequenceIds: e.sequenceIds.map(() => seqId) };
      if (this.trimOffsets) trimByteLevelOffsets(c, this.addPrefixSpace);
      return c;
    };
    const a = prep(encoding, 0);
    const b = pair === null ? null : prep(pair, 1);
    if (!addSpecialTokens) return b === null ? a : mergeEncodings([a, b]);
    const cls = (): Encoding => specialEncoding([this.cls[1]], [this.cls[0]], 0);
    const sep = (): Encoding => specialEncoding([this.sep[1]], [this.sep[0]], 0);
    const parts = [cls(), a, sep()];
    if (b !== null) parts.push(sep(), b, sep());
    return mergeEncodings(parts);
  }
}

postProcessors.register('RobertaProcessing', (json) => RobertaProcessing.fromJSON(json));
