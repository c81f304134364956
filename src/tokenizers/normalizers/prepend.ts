/** Prepend normalizer: puts a prefix (e.g. "▁") in front of non-empty text, aligned with its first character. */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';
import { reqString } from '../util.js';
import { prependNormalized } from './align.js';

export class PrependNormalizer implements Normalizer {
  constructor(readonly prepend: string) {}

  static fromJSON(json: JsonObject): PrependNormalizer {
    return new PrependNormalizer(reqString(json, 'prepend', 'normalizer (Prepend)'));
  }

  normalize(input: Normalized): Normalized {
    return prependNormalized(input, this.prepend);
  }

  toJSON(): JsonObject {
    return { type: 'Prepend', prepend: this.prepend };
  }
}

normalizers.register('Prepend', (json) => PrependNormalizer.fromJSON(json));
