/**
 * Unicode normalizers NFC, NFD, NFKC, NFKD with alignment tracking: the text is normalised in
 * chunks (a starter plus its combining marks), so each chunk's output maps back to that chunk
 * of the input. If chunking would change the result (composition across a chunk boundary, e.g.
 * conjoining Hangul jamo), the whole text is one chunk.
 */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';
import { applyReplacements, type Replacement } from './align.js';

export type UnicodeForm = 'NFC' | 'NFD' | 'NFKC' | 'NFKD';

/** Characters that may combine with what precedes them: marks and conjoining Hangul vowels/trailers. */
const COMBINING = /[\p{M}\u1160-\u11ff\ud7b0-\ud7ff]/u;

export function normalizeAligned(input: Normalized, form: UnicodeForm): Normalized {
  const text = input.text;
  const whole = text.normalize(form);
  if (whole === text) return input;
  const reps: Replacement[] = [];
  let joined = '';
  let i = 0;
  while (i < text.length) {
    let j = i + (text.codePointAt(i)! > 0xffff ? 2 : 1);
    while (j < text.length) {
      const ch = String.fromCodePoint(text.codePointAt(j)!);
      if (!COMBINING.test(ch)) break;
      j += ch.length;
    }
    const chunk = text.slice(i, j);
    const out = chunk.normalize(form);
    joined += out;
    if (out !== chunk) reps.push({ start: i, end: j, text: out });
    i = j;
  }
  if (joined !== whole) return applyReplacements(input, [{ start: 0, end: text.length, text: whole }]);
  return applyReplacements(input, reps);
}

export class UnicodeNormalizer implements Normalizer {
  constructor(readonly form: UnicodeForm) {}
  normalize(input: Normalized): Normalized {
    return normalizeAligned(input, this.form);
  }
  toJSON(): JsonObject {
    return { type: this.form };
  }
}

for (const form of ['NFC', 'NFD', 'NFKC', 'NFKD'] as const) normalizers.register(form, () => new UnicodeNormalizer(form));
