/**
 * Lowercase normalizer: each character lowercased on its own (Rust char::to_lowercase, as HF
 * does: no context-dependent final sigma), with alignment tracking for expanding characters.
 */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';
import { applyReplacements, type Replacement } from './align.js';

export function lowercaseAligned(input: Normalized): Normalized {
  const text = input.text;
  const whole = text.toLowerCase();
  if (whole === text) return input;
  // Same length and no capital sigma (the only context-sensitive mapping): one to one.
  if (whole.length === text.length && !text.includes('\u03a3')) return { ...input, text: whole };
  const reps: Replacement[] = [];
  for (let i = 0; i < text.length; ) {
    const w = text.codePointAt(i)! > 0xffff ? 2 : 1;
    const ch = text.slice(i, i + w);
    const lo = ch.toLowerCase();
    if (lo !== ch) reps.push({ start: i, end: i + w, text: lo });
    i += w;
  }
  return applyReplacements(input, reps);
}

export class LowercaseNormalizer implements Normalizer {
  normalize(input: Normalized): Normalized {
    return lowercaseAligned(input);
  }
  toJSON(): JsonObject {
    return { type: 'Lowercase' };
  }
}

normalizers.register('Lowercase', () => new LowercaseNormalizer());
