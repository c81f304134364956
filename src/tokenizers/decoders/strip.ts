/**
 * Strip decoder (HF semantics): removes up to `start` leading and `stop` trailing occurrences of
 * the `content` character from each token.
 *
 * tokenizer.json: {"type":"Strip","content":" ","start":1,"stop":0}
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';
import { reqInt, reqString } from '../util.js';

export class StripDecoder implements Decoder {
  constructor(
    readonly content: string,
    readonly start: number,
    readonly stop: number,
  ) {
    if ([...content].length !== 1) throw new Error(`Strip decoder: content must be a single character, got ${JSON.stringify(content)}`);
  }

  static fromJSON(json: JsonObject): StripDecoder {
    const where = 'decoder(Strip)';
    return new StripDecoder(reqString(json, 'content', where), reqInt(json, 'start', where), reqInt(json, 'stop', where));
  }

  decodeChain(tokens: string[]): string[] {
    return tokens.map((token) => {
      const chars = [...token];
      let startCut = 0;
      while (startCut < Math.min(this.start, chars.length) && chars[startCut] === this.content) startCut++;
      let stopCut = chars.length;
      for (let i = 0; i < this.stop && stopCut > startCut && chars[stopCut - 1] === this.content; i++) stopCut--;
      return chars.slice(startCut, stopCut).join('');
    });
  }

  toJSON(): JsonObject {
    return { type: 'Strip', content: this.content, start: this.start, stop: this.stop };
  }
}

decoders.register('Strip', (json) => StripDecoder.fromJSON(json));
