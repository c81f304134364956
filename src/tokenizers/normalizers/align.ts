/**
 * Alignment bookkeeping for normalizers: rebuild a Normalized from pieces that tile its text,
 * each replaced by new text. A piece whose replacement has the same length keeps a one-to-one
 * alignment; otherwise every new unit points at the piece's first original index (so spans
 * covering any part of it map to the whole original piece).
 */
import type { Normalized } from '../types.js';

/**
 * A Normalized that also knows where each unit ENDS in the original (`alignEnd[i]`), so a
 * deleted character after a token is not counted in the token's span. Optional: components that
 * do not carry it drop it, and spans then end where the next unit starts.
 */
export interface AlignedNormalized extends Normalized {
  alignEnd?: number[];
}

/** Original end of unit i. */
export function unitEnd(n: AlignedNormalized, i: number): number {
  return n.alignEnd?.[i] ?? n.align[i + 1];
}

export interface Replacement {
  start: number;
  end: number;
  text: string;
}

/** Applies sorted, non-overlapping replacements of input.text (the rest is kept). */
export function applyReplacements(input: AlignedNormalized, reps: readonly Replacement[]): AlignedNormalized {
  if (reps.length === 0) return input;
  let text = '';
  const align: number[] = [];
  const alignEnd: number[] = [];
  let pos = 0;
  const keep = (a: number, b: number): void => {
    text += input.text.slice(a, b);
    for (let i = a; i < b; i++) {
      align.push(input.align[i]);
      alignEnd.push(unitEnd(input, i));
    }
  };
  for (const r of reps) {
    keep(pos, r.start);
    text += r.text;
    if (r.text.length === r.end - r.start) {
      for (let i = r.start; i < r.end; i++) {
        align.push(input.align[i]);
        alignEnd.push(unitEnd(input, i));
      }
    } else if (r.text.length > 0) {
      const at = input.align[r.start];
      const end = unitEnd(input, r.end - 1);
      for (let i = 0; i < r.text.length; i++) {
        align.push(at);
        alignEnd.push(end);
      }
    }
    pos = r.end;
  }
  keep(pos, input.text.length);
  align.push(input.align[input.text.length]);
  return { text, align, alignEnd };
}

/** Keeps units [start, end) of a Normalized. */
export function sliceNormalized(input: AlignedNormalized, start: number, end: number): AlignedNormalized {
  if (start === 0 && end === input.text.length) return input;
  const alignEnd: number[] = [];
  for (let i = start; i < end; i++) alignEnd.push(unitEnd(input, i));
  return { text: input.text.slice(start, end), align: [...input.align.slice(start, end), end > start ? alignEnd[alignEnd.length - 1] : input.align[start]], alignEnd };
}

/** Prepends text aligned with the first unit (HF NormalizedString::prepend). */
export function prependNormalized(input: AlignedNormalized, prefix: string): AlignedNormalized {
  if (input.text.length === 0 || prefix.length === 0) return input;
  const at = input.align[0];
  const alignEnd: number[] = new Array<number>(prefix.length).fill(unitEnd(input, 0));
  for (let i = 0; i < input.text.length; i++) alignEnd.push(unitEnd(input, i));
  return { text: prefix + input.text, align: [...new Array<number>(prefix.length).fill(at), ...input.align], alignEnd };
}
