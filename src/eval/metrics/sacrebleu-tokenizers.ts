/**
 * sacrebleu 2.x tokenizers (`13a`, `intl`, `zh`, `char`, `none`), ported rule for rule so that the
 * strings we split on spaces are the strings sacrebleu splits. The caller right-strips (and
 * optionally lower-cases) the segment first, as sacrebleu's `BLEU._preprocess_segment` does.
 */
import { pySplit, pyStrip } from './text.js';

export type BleuTokenizerName = '13a' | 'intl' | 'zh' | 'char' | 'none';
export const BLEU_TOKENIZERS: readonly BleuTokenizerName[] = ['13a', 'intl', 'zh', 'char', 'none'];

// TokenizerRegexp (mteval-v13a's language-dependent part), applied in this order.
const RE_13A_SYMBOLS = /([{-~[-` -&(-+:-@/])/gu;
const RE_13A_PERIOD_COMMA_AFTER_NON_DIGIT = /([^0-9])([.,])/gu;
const RE_13A_PERIOD_COMMA_BEFORE_NON_DIGIT = /([.,])([^0-9])/gu;
const RE_13A_DASH_AFTER_DIGIT = /([0-9])(-)/gu;

/** sacrebleu's `TokenizerRegexp.__call__`. */
function tokenizeRegexp(line: string): string {
  let out = line.replace(RE_13A_SYMBOLS, ' $1 ');
  out = out.replace(RE_13A_PERIOD_COMMA_AFTER_NON_DIGIT, '$1 $2 ');
  out = out.replace(RE_13A_PERIOD_COMMA_BEFORE_NON_DIGIT, ' $1 $2');
  out = out.replace(RE_13A_DASH_AFTER_DIGIT, '$1 $2 ');
  return pySplit(out).join(' ');
}

/** sacrebleu's `Tokenizer13a`. */
export function tokenize13a(line: string): string {
  let out = line.split('<skipped>').join('');
  out = out.split('-\n').join('');
  out = out.split('\n').join(' ');
  if (out.includes('&')) {
    out = out.split('&quot;').join('"');
    out = out.split('&amp;').join('&');
    out = out.split('&lt;').join('<');
    out = out.split('&gt;').join('>');
  }
  return tokenizeRegexp(` ${out} `);
}

// TokenizerV14International: Unicode punctuation (P*) next to a non-number, and symbols (S*).
const RE_INTL_PUNCT_AFTER_NON_NUMBER = /(\P{N})(\p{P})/gu;
const RE_INTL_PUNCT_BEFORE_NON_NUMBER = /(\p{P})(\P{N})/gu;
const RE_INTL_SYMBOL = /(\p{S})/gu;

/** sacrebleu's `TokenizerV14International` (`intl`). */
export function tokenizeIntl(line: string): string {
  let out = line.replace(RE_INTL_PUNCT_AFTER_NON_NUMBER, '$1 $2 ');
  out = out.replace(RE_INTL_PUNCT_BEFORE_NON_NUMBER, ' $1 $2');
  out = out.replace(RE_INTL_SYMBOL, ' $1 ');
  return pySplit(out).join(' ');
}

/**
 * sacrebleu's `_UCODE_RANGES` for `zh`, as code-point intervals. sacrebleu writes two of its bounds
 * as `u'\u20000'` and `u'\u2f800'`, which Python reads as a BMP character followed by a digit; its
 * string comparisons then make those ranges U+2001–U+2A6D and U+2F81–U+2FA1 (not Extension B).
 * We reproduce the ranges sacrebleu actually applies.
 */
const ZH_RANGES: readonly (readonly [number, number])[] = [
  [0x3400, 0x4db5],
  [0x4e00, 0x9fa5],
  [0x9fa6, 0x9fbb],
  [0xf900, 0xfa2d],
  [0xfa30, 0xfa6a],
  [0xfa70, 0xfad9],
  [0x2001, 0x2a6d], // u'\u20000' <= c <= u'\u2a6d6'
  [0x2f81, 0x2fa1], // u'\u2f800' <= c <= u'\u2fa1d'
  [0xff00, 0xffef],
  [0x2e80, 0x2eff],
  [0x3000, 0x303f],
  [0x31c0, 0x31ef],
  [0x2f00, 0x2fdf],
  [0x2ff0, 0x2fff],
  [0x3100, 0x312f],
  [0x31a0, 0x31bf],
  [0xfe10, 0xfe1f],
  [0xfe30, 0xfe4f],
  [0x2600, 0x26ff],
  [0x2700, 0x27bf],
  [0x3200, 0x32ff],
  [0x3300, 0x33ff],
];

function isSacrebleuChineseChar(codePoint: number): boolean {
  for (const [lo, hi] of ZH_RANGES) if (codePoint >= lo && codePoint <= hi) return true;
  return false;
}

/** sacrebleu's `TokenizerZh`: every character in its ranges becomes its own token, then 13a's regexes. */
export function tokenizeZh(line: string): string {
  let spaced = '';
  for (const ch of pyStrip(line)) {
    spaced += isSacrebleuChineseChar(ch.codePointAt(0) as number) ? ` ${ch} ` : ch;
  }
  return tokenizeRegexp(spaced);
}

/** sacrebleu's `TokenizerChar`: a space between every code point. */
export function tokenizeChar(line: string): string {
  return Array.from(line).join(' ');
}

export function getBleuTokenizer(name: BleuTokenizerName): (line: string) => string {
  switch (name) {
    case '13a':
      return tokenize13a;
    case 'intl':
      return tokenizeIntl;
    case 'zh':
      return tokenizeZh;
    case 'char':
      return tokenizeChar;
    case 'none':
      return (line) => line;
    default:
      throw new Error(`bleu: unknown tokenizer '${String(name)}' (expected one of ${BLEU_TOKENIZERS.join(', ')})`);
  }
}
