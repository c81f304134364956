/**
 * String formats enforced byte by byte: fixed-shape formats whose validity is decided field by
 * field, so every prefix can be checked for a valid completion (a February 29 only in a leap
 * year, a day never past its month's end). Other `format` values are annotations, as JSON Schema's
 * default vocabulary treats them.
 *
 *   date       YYYY-MM-DD                       (RFC 3339 full-date)
 *   time       HH:MM:SSZ                        (RFC 3339 full-time, generated in UTC)
 *   date-time  YYYY-MM-DDTHH:MM:SSZ
 *   uuid       8-4-4-4-12 hexadecimal digits
 */

type Part =
  | { kind: 'lit'; ch: number }
  /** A zero-padded decimal field whose range may depend on the fields before it. */
  | { kind: 'num'; width: number; range: (fields: readonly number[]) => [number, number] }
  | { kind: 'hex'; width: number };

export interface StringFormat {
  name: string;
  parts: readonly Part[];
  /** Characters of a complete value. */
  length: number;
}

const lit = (s: string): Part[] => [...s].map((c) => ({ kind: 'lit', ch: c.charCodeAt(0) }));
const num = (width: number, range: (f: readonly number[]) => [number, number]): Part => ({ kind: 'num', width, range });

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

const DATE: Part[] = [num(4, () => [0, 9999]), ...lit('-'), num(2, () => [1, 12]), ...lit('-'), num(2, (f) => [1, daysIn(f[f.length - 2]!, f[f.length - 1]!)])];
const TIME: Part[] = [num(2, () => [0, 23]), ...lit(':'), num(2, () => [0, 59]), ...lit(':'), num(2, () => [0, 59]), ...lit('Z')];
const hex = (width: number): Part => ({ kind: 'hex', width });

function format(name: string, parts: Part[]): StringFormat {
  const length = parts.reduce((n, p) => n + (p.kind === 'lit' ? 1 : p.width), 0);
  return { name, parts, length };
}

export const STRING_FORMATS: ReadonlyMap<string, StringFormat> = new Map(
  [
    format('date', DATE),
    format('time', TIME),
    format('date-time', [...DATE, ...lit('T'), ...TIME]),
    format('uuid', [hex(8), ...lit('-'), hex(4), ...lit('-'), hex(4), ...lit('-'), hex(4), ...lit('-'), hex(12)]),
  ].map((f) => [f.name, f]),
);

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * Whether the typed characters `t` (byte values) can still become a valid value: 'complete' when
 * they are one, 'prefix' when some completion exists, null otherwise.
 */
export function formatState(f: StringFormat, t: readonly number[]): 'complete' | 'prefix' | null {
  const fields: number[] = [];
  let i = 0;
  for (const p of f.parts) {
    if (i === t.length) return 'prefix';
    if (p.kind === 'lit') {
      if (t[i] !== p.ch) return null;
      i++;
      continue;
    }
    const end = Math.min(t.length, i + p.width);
    for (let k = i; k < end; k++) if (!(p.kind === 'hex' ? isHex(t[k]!) : isDigit(t[k]!))) return null;
    if (p.kind === 'hex') {
      if (end < i + p.width) return 'prefix';
      i = end;
      continue;
    }
    let v = 0;
    for (let k = i; k < end; k++) v = v * 10 + (t[k]! - 0x30);
    const [lo, hi] = p.range(fields);
    // Values reachable from the typed digits: [v·10^r, (v+1)·10^r − 1] with r digits still to type.
    const scale = 10 ** (i + p.width - end);
    if (v * scale > hi || (v + 1) * scale - 1 < lo) return null;
    if (end < i + p.width) return 'prefix';
    fields.push(v);
    i = end;
  }
  return i === t.length ? 'complete' : null;
}
