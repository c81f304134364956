/**
 * PII masking: e-mail addresses, phone numbers and IP addresses (v4 and v6) are replaced by
 * placeholder tokens, so the model never memorises them (as in BigScience ROOTS / datatrove's
 * PIIFormatter). A transform, not a filter: documents are kept.
 *
 * Phone numbers are the risky part — many digit runs are not phones. Only four shapes are masked:
 * international (+country code, 8–15 digits), North American (3-3-4 with separators or a
 * parenthesised area code), trunk-prefixed national numbers with separators (0xx xxxx xxxx), and
 * mainland-China mobiles (1[3-9] + 9 digits). Dates, years, ranges, prices, decimal and
 * thousands-separated numbers have none of these shapes.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Doc, DocTransform } from '../types.js';

export interface PiiOptions {
  email?: boolean;
  phone?: boolean;
  ip?: boolean;
  /** Replacement tokens. */
  emailToken?: string;
  phoneToken?: string;
  ipToken?: string;
}

// Local part and domain labels are length-bounded so a long run of dots cannot make matching slow.
const EMAIL_RE = /(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])/g;

const EMAIL_HINT_RE = /[\w.%+-]@[A-Za-z0-9]/;

const IPV4_RE = /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)/g;
// Candidates only; node:net's isIPv6 decides. Preceding/following word chars or ':' excluded so
// "std::vector" and clock times "12:30:45" are not candidates (times also fail isIPv6).
const IPV6_RE = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])/g;

const PHONE_PATTERNS: RegExp[] = [
  // International: +CC then groups; total digits checked in code.
  /(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,5}(?![\w])/g,
  // North American: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567.
  /(?<![\w.-])(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w]|[.-]\d)/g,
  // Trunk-prefixed national numbers with separators: 020 7946 0958, 030-1234-5678, (030) 1234 5678.
  /(?<![\w.-])(?:\(0\d{1,4}\)|0\d{1,4})[ -]\d{3,4}[ -]?\d{3,4}(?![\w]|[.-]\d)/g,
  // Mainland-China mobile: 13800138000, 138 0013 8000, 138-0013-8000.
  /(?<![\w.-])1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?![\w]|[.-]\d)/g,
];

function digitCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

// Exact prefilters: each is a necessary condition for a match of the pattern(s) it guards, so a
// string that fails it would come out of the replace unchanged. Each is one cheap native scan.
// IPV4_RE matches d{1,3}.d{1,3}.d{1,3}.d{1,3}: a digit, '.', one to three digits, '.', a digit.
const IPV4_HINT_RE = /\d\.\d{1,3}\.\d/;
// IPV6_RE needs (?:[0-9A-Fa-f]{0,4}:){2,7}: at least two such groups in a row, so a ':' and the next
// group's ':' with at most four hex digits between them.
const IPV6_HINT_RE = /:[0-9A-Fa-f]{0,4}:/;
// The North American, trunk-prefixed and Chinese mobile patterns each hold three digits, at most
// one of ' ', '.', '-', then three more: d{3}[ .-]d{4}, d{3,4}[ -]?d{3,4}, 1[3-9]d[ -]?d{4}.
// (The international one needs a '+', tested with includes.)
const NATIONAL_PHONE_HINT_RE = /\d{3}[ .-]?\d{3}/;

/**
 * `text.replace(re, …)` where `mask` returns the token to put in place of a match, or null to keep
 * it. Returns `text` itself when nothing was masked, so callers (and the transform's `===` check)
 * never compare two equal copies character by character.
 */
function maskMatches(text: string, re: RegExp, mask: (m: string) => string | null): string {
  let masked = false;
  const out = text.replace(re, (m) => {
    const token = mask(m);
    if (token === null) return m;
    masked = true;
    return token;
  });
  return masked ? out : text;
}

/** Mask PII in one string; `counts` (if given) gets email/phone/ip totals added. */
export function maskPii(text: string, opts: PiiOptions = {}, counts?: Record<string, number>): string {
  const bump = (k: string): void => {
    if (counts) counts[k] = (counts[k] ?? 0) + 1;
  };
  let out = text;
  if (opts.email ?? true) {
    const token = opts.emailToken ?? '<EMAIL>';
    // Quick reject: an address needs a name character, '@', then a letter or digit (wikitext's " @-@ " has none).
    if (EMAIL_HINT_RE.test(out)) {
      out = maskMatches(out, EMAIL_RE, () => {
        bump('email');
        return token;
      });
    }
  }
  if (opts.ip ?? true) {
    const token = opts.ipToken ?? '<IP>';
    if (IPV4_HINT_RE.test(out)) {
      out = maskMatches(out, IPV4_RE, (m) => {
        if (!isIPv4(m)) return null;
        bump('ipv4');
        return token;
      });
    }
    if (IPV6_HINT_RE.test(out)) {
      out = maskMatches(out, IPV6_RE, (m) => {
        // Require real hex content: "::" alone, or a run of colons, is punctuation, not an address.
        if (!/[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:?[0-9A-Fa-f]/.test(m) && !/::[0-9A-Fa-f]/.test(m)) return null;
        if (!isIPv6(m)) return null;
        bump('ipv6');
        return token;
      });
    }
  }
  if (opts.phone ?? true) {
    const token = opts.phoneToken ?? '<PHONE>';
    const maskPhone = (m: string): string | null => {
      const d = digitCount(m);
      if (d < 7 || d > 15) return null;
      bump('phone');
      return token;
    };
    // Each prefilter is tested on the text its patterns will see. When the national one fails, none of
    // the three patterns it guards can match, so the text stays as it is for all three.
    const [international, ...national] = PHONE_PATTERNS as [RegExp, ...RegExp[]];
    if (out.includes('+')) out = maskMatches(out, international, maskPhone);
    // Every pattern's match must hold at least 7 digits; the count is taken after the cheaper test.
    if (NATIONAL_PHONE_HINT_RE.test(out) && digitCount(out) >= 7) {
      for (const re of national) out = maskMatches(out, re, maskPhone);
    }
  }
  return out;
}

/** PII masking as a pipeline transform; counters: email, phone, ipv4, ipv6 (matches replaced). */
export function piiTransform(opts: PiiOptions = {}): DocTransform {
  return {
    name: 'pii',
    apply(doc: Doc, counters?: Record<string, number>): Doc {
      const text = maskPii(doc.text, opts, counters);
      return text === doc.text ? doc : { ...doc, text };
    },
  };
}
