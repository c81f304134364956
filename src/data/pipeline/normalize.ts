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
// Horizontal whitespace: tab, space, NBSP, Ogham space, en/em spaces…, narrow NBSP, math space, ideographic space.
// Only runs that change are matched — a run not starting with a plain space, or a space followed by
// more — so the single spaces between words (most of any text) are not each replaced by themselves.
const HSPACE_RUN_RE = /[\t\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000][\t \u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]*| [\t \u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]+/g;
// Spaces around a newline (after the runs above, only plain spaces are left); a bare newline is not matched.
const LINE_EDGE_SPACES_RE = / +\n *|\n +/g;
// eslint-disable-next-line no-control-regex -- \v and \f are line breaks we fold
const LINE_BREAK_RE = /\r\n?|[\u000B\u000C\u0085\u2028\u2029]/g;

/** Normalise one string. Pure; the same input always gives the same output. */
export function normalizeText(text: string, opts: NormalizeOptions = {}): string {
  const form = opts.form ?? 'NFC';
  const removeControl = opts.removeControl ?? true;
  const fold = opts.foldWhitespace ?? true;
  if (form !== 'NFC' && form !== 'NFKC' && form !== 'none') {
    throw new Error(`normalize: unknown Unicode form '${String(form)}' (expected NFC, NFKC or none)`);
  }
  let out = text;
  // Line endings first: \v \f NEL LS PS are line breaks, and removing \v/\f as controls would glue lines.
  if (fold) out = out.replace(LINE_BREAK_RE, '\n');
  if (removeControl) out = out.replace(CONTROL_RE, '');
  if (form !== 'none') out = out.normalize(form);
  if (fold) {
    out = out.replace(HSPACE_RUN_RE, ' ');
    // Trim every line (leading indentation carries no meaning in prose and hides duplicate lines).
    out = out.replace(LINE_EDGE_SPACES_RE, '\n');
    out = out.replace(/\n{3,}/g, '\n\n');
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
