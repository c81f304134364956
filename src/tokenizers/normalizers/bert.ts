/**
 * BertNormalizer, with Hugging Face `tokenizers` semantics, in its order:
 *   clean_text: drop NUL, U+FFFD and control characters (Unicode category C*, except \t \n \r),
 *     and turn every whitespace character into a space;
 *   handle_chinese_chars: put spaces around each CJK ideograph (so each becomes its own word);
 *   strip_accents (null = follow `lowercase`): NFD, then drop nonspacing marks;
 *   lowercase: per character (Rust's char::to_lowercase, so no final-sigma context).
 *
 * tokenizer.json: {"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,
 * "strip_accents":null,"lowercase":true}
 */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';
import { optBool } from '../util.js';
import { mapCharsAligned, stripAccentsBert } from './strip-accents.js';

export interface BertNormalizerOptions {
  cleanText?: boolean;
  handleChineseChars?: boolean;
  /** null: strip accents iff lowercasing (HF's default). */
  stripAccents?: boolean | null;
  lowercase?: boolean;
}

/** Unicode "Other" (Cc, Cf, Cs, Co, Cn) — Rust's is_other, which HF's is_control uses. */
const OTHER = /\p{C}/u;
const WHITE_SPACE = /\p{White_Space}/u;

/** HF's is_whitespace: \t \n \r and space, plus Unicode White_Space. */
export function isBertWhitespace(ch: string): boolean {
  return WHITE_SPACE.test(ch);
}

/** HF's is_control: category C*, except \t \n \r (which count as whitespace). */
export function isBertControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return OTHER.test(ch);
}

/** The CJK blocks HF's BertNormalizer isolates (the ranges as written in tokenizers' bert.rs). */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const ASCII_CLEAN = /^[\x20-\x7e]*$/;

export class BertNormalizer implements Normalizer {
  readonly cleanText: boolean;
  readonly handleChineseChars: boolean;
  readonly stripAccents: boolean | null;
  readonly lowercase: boolean;

  constructor(options: BertNormalizerOptions = {}) {
    this.cleanText = options.cleanText ?? true;
    this.handleChineseChars = options.handleChineseChars ?? true;
    this.stripAccents = options.stripAccents ?? null;
    this.lowercase = options.lowercase ?? true;
  }

  static fromJSON(json: JsonObject): BertNormalizer {
    const where = 'normalizer(BertNormalizer)';
    const strip = json.strip_accents;
    if (strip !== undefined && strip !== null && typeof strip !== 'boolean') {
      throw new Error(`tokenizer.json: ${where}.strip_accents must be true, false or null, got ${JSON.stringify(strip)}`);
    }
    return new BertNormalizer({
      cleanText: optBool(json, 'clean_text', where, true),
      handleChineseChars: optBool(json, 'handle_chinese_chars', where, true),
      stripAccents: strip ?? null,
      lowercase: optBool(json, 'lowercase', where, true),
    });
  }

  normalize(input: Normalized): Normalized {
    let n = input;
    const simple = ASCII_CLEAN.test(n.text);
    if (this.cleanText && !simple) {
      n = mapCharsAligned(n, (ch) => {
        const cp = ch.codePointAt(0)!;
        if (cp === 0 || cp === 0xfffd || isBertControl(ch)) return '';
        return isBertWhitespace(ch) ? ' ' : ch;
      });
    }
    if (this.handleChineseChars && !simple) n = spaceChineseChars(n);
    if (this.stripAccents ?? this.lowercase) {
      if (!simple) n = stripAccentsBert(n);
    }
    if (this.lowercase) {
      if (simple) {
        const lower = n.text.toLowerCase();
        if (lower !== n.text) n = { text: lower, align: n.align };
      } else {
        n = mapCharsAligned(n, (ch) => ch.toLowerCase());
      }
    }
    return n;
  }

  toJSON(): JsonObject {
    return {
      type: 'BertNormalizer',
      clean_text: this.cleanText,
      handle_chinese_chars: this.handleChineseChars,
      strip_accents: this.stripAccents,
      lowercase: this.lowercase,
    };
  }
}

/**
 * Puts a space on each side of every CJK ideograph. The space before takes the ideograph's original
 * index, the one after the index just past it, so spans around the ideograph map back exactly.
 */
function spaceChineseChars(n: Normalized): Normalized {
  const { text, align } = n;
  let out: string | null = null;
  let outAlign: number[] = [];
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    if (isChineseChar(cp)) {
      if (out === null) {
        out = text.slice(0, i);
        outAlign = align.slice(0, i);
      }
      out += ` ${text.slice(i, i + w)} `;
      outAlign.push(align[i]!, align[i]!);
      if (w === 2) outAlign.push(align[i + 1]!);
      outAlign.push(align[i + w - 1]! + 1);
    } else if (out !== null) {
      out += text.slice(i, i + w);
      for (let k = 0; k < w; k++) outAlign.push(align[i + k]!);
    }
    i += w;
  }
  if (out === null) return n;
  outAlign.push(align[text.length]!);
  return { text: out, align: outAlign };
}

normalizers.register('BertNormalizer', (json) => BertNormalizer.fromJSON(json));
