/** Replace normalizer: every match of a string or regex pattern becomes `content` (e.g. " " → "▁"). */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';
import { compilePattern, patternToJSON, readPattern, reqString, type PatternJson } from '../util.js';
import { applyReplacements, type Replacement } from './align.js';

export class ReplaceNormalizer implements Normalizer {
  private readonly regex: RegExp;

  constructor(
    readonly pattern: PatternJson,
    readonly content: string,
  ) {
    this.regex = compilePattern(pattern, 'normalizer (Replace)');
  }

  static fromJSON(json: JsonObject): ReplaceNormalizer {
    const where = 'normalizer (Replace)';
    return new ReplaceNormalizer(readPattern(json, 'pattern', where), reqString(json, 'content', where));
  }

  normalize(input: Normalized): Normalized {
    const reps: Replacement[] = [];
    const re = this.regex;
    re.lastIndex = 0;
    for (let m = re.exec(input.text); m !== null; m = re.exec(input.text)) {
      if (m[0].length === 0) {
        re.lastIndex = m.index + 1;
        continue;
      }
      reps.push({ start: m.index, end: m.index + m[0].length, text: this.content });
    }
    return applyReplacements(input, reps);
  }

  toJSON(): JsonObject {
    return { type: 'Replace', pattern: patternToJSON(this.pattern), content: this.content };
  }
}

normalizers.register('Replace', (json) => ReplaceNormalizer.fromJSON(json));
