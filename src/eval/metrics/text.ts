/**
 * Python string semantics the reference implementations rely on. Metric code that ports Python
 * must split and strip exactly like CPython's `str.split()` / `str.strip()`, whose whitespace set
 * differs from JavaScript's `\s` (Python adds U+001C–U+001F and U+0085; JavaScript adds U+FEFF).
 */

/** CPython's `str.isspace()` characters: what `str.split()` and `str.strip()` treat as whitespace. */
export const PY_WHITESPACE_CLASS = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const PY_WS_RUN = new RegExp(`[${PY_WHITESPACE_CLASS}]+`, 'u');
const PY_WS_RUN_G = new RegExp(`[${PY_WHITESPACE_CLASS}]+`, 'gu');
const PY_WS_TRAILING = new RegExp(`[${PY_WHITESPACE_CLASS}]+$`, 'u');
const PY_WS_LEADING = new RegExp(`^[${PY_WHITESPACE_CLASS}]+`, 'u');

/** Python's `s.split()` with no argument: split on whitespace runs, dropping empty pieces. */
export function pySplit(text: string): string[] {
  const parts = text.split(PY_WS_RUN);
  let start = 0;
  let end = parts.length;
  if (end > 0 && parts[0] === '') start = 1;
  if (end > start && parts[end - 1] === '') end -= 1;
  return start === 0 && end === parts.length ? parts : parts.slice(start, end);
}

/** Python's `s.rstrip()` with no argument. */
export function pyRstrip(text: string): string {
  return text.replace(PY_WS_TRAILING, '');
}

/** Python's `s.strip()` with no argument. */
export function pyStrip(text: string): string {
  return text.replace(PY_WS_LEADING, '').replace(PY_WS_TRAILING, '');
}

/** Python's `''.join(s.split())`: every whitespace character removed. */
export function pyRemoveWhitespace(text: string): string {
  return text.replace(PY_WS_RUN_G, '');
}

/** Python's `re.split(r"\s+", s)` (keeps empty leading/trailing pieces, as Python does). */
export function pyRegexSplitWhitespace(text: string): string[] {
  return text.split(PY_WS_RUN);
}

/** `string.punctuation`: the 32 ASCII punctuation characters. */
export const ASCII_PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
