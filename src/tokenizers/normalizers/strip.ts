/** Strip normalizer: removes leading and/or trailing whitespace (Unicode White_Space, as Rust's char::is_whitespace). */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';
import { optBool } from '../util.js';
import { sliceNormalized } from './align.js';

const WS = /\p{White_Space}/u;

export class StripNormalizer implements Normalizer {
  constructor(
    readonly stripLeft = true,
    readonly stripRight = true,
  ) {}

  static fromJSON(json: JsonObject): StripNormalizer {
    const where = 'normalizer (Strip)';
    return new StripNormalizer(optBool(json, 'strip_left', where, true), optBool(json, 'strip_right', where, true));
  }

  normalize(input: Normalized): Normalized {
    const t = input.text;
    let s = 0;
    let e = t.length;
    if (this.stripLeft) while (s < e && WS.test(t[s])) s++;
    if (this.stripRight) while (e > s && WS.test(t[e - 1])) e--;
    return sliceNormalized(input, s, e);
  }

  toJSON(): JsonObject {
    return { type: 'Strip', strip_left: this.stripLeft, strip_right: this.stripRight };
  }
}

normalizers.register('Strip', (json) => StripNormalizer.fromJSON(json));
