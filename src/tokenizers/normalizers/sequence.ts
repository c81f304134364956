/** Sequence normalizer: applies normalizers in order. */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';
import { isObject, reqArray } from '../util.js';

export class SequenceNormalizer implements Normalizer {
  constructor(readonly normalizers: Normalizer[]) {}

  static fromJSON(json: JsonObject): SequenceNormalizer {
    return new SequenceNormalizer(
      reqArray(json, 'normalizers', 'normalizer (Sequence)').map((n, i) => {
        if (!isObject(n)) throw new Error(`tokenizer.json: normalizer (Sequence).normalizers[${i}] must be an object`);
        return normalizers.fromJSON(n);
      }),
    );
  }

  normalize(input: Normalized): Normalized {
    return this.normalizers.reduce((acc, n) => n.normalize(acc), input);
  }

  toJSON(): JsonObject {
    return { type: 'Sequence', normalizers: this.normalizers.map((n) => n.toJSON()) };
  }
}

normalizers.register('Sequence', (json) => SequenceNormalizer.fromJSON(json));
