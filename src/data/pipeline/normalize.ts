/**
 * Text normalisation: Unicode normal form, control-character removal and whitespace folding.
 *
 * Runs before language id, filters and dedup so that they all see one spelling of the same text
 * (NFC merges composed/decomposed accents; NFKC also folds compatibility forms such as full-width
 * Latin letters and ligatures, at the cost of rewriting full-width CJK punctuation to ASCII).
 */
import type { Doc, DocTransform } from './types.js';

export type UnicodeForm = 'NFC' | 'NFKC' | 'none';

export interface NormalizeOptions {
  /** Unicode normal form; default NFC (lossless for CJK punctuation, unlike NFKC). */
  form?: UnicodeForm;
  /** Remove C0/C1 control characters (except newline and tab) and invisible format characters; default true. */
  removeControl?: boolean;
  /**
   * Fold whitespace: CRLF/CR → LF, runs of spaces/tabs/other horizontal spaces → one space, trim each
   * line, and collapse three or more newlines into one blank line (paragraph breaks survive); default true.
   */
  foldWhitespace?: boolean;
}

// C0 and C1 controls except \t (U+0009) and \n (U+000A); \r is kept here and handled by line-ending folding.
// Also the invisible format characters that only ever break matching: BOM/ZWNBSP, zero-width space,
// soft hyphen, word joiner, bidi embedding controls. ZWJ/ZWNJ are kept: emoji and Indic/Persian spelling need them.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u200B\u2060\uFEFF\u202A-\u202E\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex -- \v and \f are line breaks we fold
const LINE_BREAK_RE = /\r\n?|[\u000B\u000C\u0085\u2028\u2029]/g;

// Horizontal whitespace: tab, space, NBSP, Ogham space, en/em spaces…, narrow NBSP, math space, ideographic space.
// Folding (after the Unicode normal form) is three rules: every run of these becomes one space, spaces
// next to a newline go (each line is trimmed), and three or more newlines become two. They act on each
// maximal run of horizontal spaces and newlines alone — with no newline it becomes ' ', otherwise its
// newlines are kept, capped at two, and its spaces dropped — so one pass over such runs does all three.
// Lone ' ' and '\n' runs are left unmatched (they stay as they are), so the single spaces between
// words are not each replaced by themselves.
const WHITESPACE_RUN_RE = /[\t\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000][\t\n \u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]*|[\n ][\t\n \u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]+/g;

/** The folded form of one WHITESPACE_RUN_RE match. */
function foldWhitespaceRun(run: string): string {
  const first = run.indexOf('\n');
  if (first < 0) return ' ';
  return run.indexOf('\n', first + 1) < 0 ? '\n' : '\n\n';
}

// Exact skip tests: one native scan each, which fails only when the step it guards would change nothing.
// Only LF and printable ASCII: no line break to fold but LF, no control character, NFC/NFKC leave
// ASCII as it is, and no horizontal space but ' ' — so only the space/newline rules can apply.
// (A tab sends text down the general path: with it in either test, the scans run twice as slow.)
const NOT_PLAIN_ASCII_RE = /[^\n\x20-\x7E]/;
// Everything the line-break and control steps act on, except CR: the controls, \v \f NEL (already in
// CONTROL_RE's ranges) and LS PS.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const BREAK_OR_CONTROL_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u200B\u2060\uFEFF\u202A-\u202E\u2066-\u2069\u2028\u2029]/;
// Below U+0300 every character has combining class 0 and is NFC quick-check Yes (no combining
// marks, no singletons), so a string of them is already NFC (checked exhaustively in the tests).
const NOT_NFC_STABLE_RE = /[\u0300-\uFFFF]/;
// NFKC rewrites some Latin-1 characters (NBSP, ¨, ª, ², ¼…), so only below U+00A0 is safe.
const NOT_NFKC_STABLE_RE = /[\u00A0-\uFFFF]/;
// Folding changes a string only if it holds a horizontal space other than ' ', two spaces in a row,
// a space next to a newline, or three newlines in a row; otherwise only trim() can act.
const FOLD_NEEDED_RE = /[\t\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]| [ \n]|\n(?: |\n\n)/;
// The same for text with no horizontal space but ' ' (plain ASCII).
const SPACE_FOLD_NEEDED_RE = / [ \n]|\n(?: |\n\n)/;

/** CRLF and a final CR turned into LF, or null if some other CR is left (LINE_BREAK_RE must run). */
function crlfToLf(text: string): string | null {
  if (!text.includes('\r')) return text;
  let lf = text.replaceAll('\r\n', '\n');
  const cr = lf.indexOf('\r');
  if (cr === lf.length - 1) lf = `${lf.slice(0, cr)}\n`;
  else if (cr >= 0) return null;
  return lf;
}

/** Normalise one string. Pure; the same input always gives the same output. */
export function normalizeText(text: string, opts: NormalizeOptions = {}): string {
  const form = opts.form ?? 'NFC';
  const removeControl = opts.removeControl ?? true;
  const fold = opts.foldWhitespace ?? true;
  if (form !== 'NFC' && form !== 'NFKC' && form !== 'none') {
    throw new Error(`normalize: unknown Unicode form '${String(form)}' (expected NFC, NFKC or none)`);
  }
  let out = text;
  const plainAscii = !NOT_PLAIN_ASCII_RE.test(out);
  if (!plainAscii) {
    // One scan instead of two for the usual text, whose only line breaks are LF and CRLF (and perhaps a
    // final CR) and which has no control character: then folding line breaks is CR(LF) → LF and
    // nothing is removed. Every other CR was in a CRLF pair exactly when none is left after replaceAll.
    const lf = fold && removeControl ? crlfToLf(out) : null;
    if (lf !== null && !BREAK_OR_CONTROL_RE.test(lf)) {
      out = lf;
    } else {
      // Line endings first: \v \f NEL LS PS are line breaks, and removing \v/\f as controls would glue lines.
      if (fold) out = out.replace(LINE_BREAK_RE, '\n');
      if (removeControl) out = out.replace(CONTROL_RE, '');
    }
    if (form === 'NFC' ? NOT_NFC_STABLE_RE.test(out) : form === 'NFKC' && NOT_NFKC_STABLE_RE.test(out)) out = out.normalize(form);
  }
  if (fold) {
    // After the Unicode normal form, which can itself make spaces (NFKC maps NBSP and en spaces to ' ').
    // Trims every line too: leading indentation carries no meaning in prose and hides duplicate lines.
    if ((plainAscii ? SPACE_FOLD_NEEDED_RE : FOLD_NEEDED_RE).test(out)) out = out.replace(WHITESPACE_RUN_RE, foldWhitespaceRun);
    out = out.trim();
  }
  return out;
}

/** Normalisation as a pipeline transform. Counts documents whose text changed. */
export function normalizeTransform(opts: NormalizeOptions = {}): DocTransform {
  // Validate once, up front, so a bad option fails before any document is read.
  normalizeText('', opts);
  return {
    name: 'normalize',
    apply(doc: Doc, counters?: Record<string, number>): Doc {
      const text = normalizeText(doc.text, opts);
      if (text === doc.text) return doc;
      if (counters) counters.changed = (counters.changed ?? 0) + 1;
      return { ...doc, text };
    },
  };
}
