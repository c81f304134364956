/**
 * StripAccents (HF's normalizer of that name: removes combining marks, General_Category=Mark; it does
 * not decompose first, so tokenizer.json files chain it after NFD), and the aligned helpers BERT's
 * normalizer shares: canonical decomposition (NFD) and per-character mapping, both keeping
 * `align` (normalized unit → original index) right.
 *
 * tokenizer.json: {"type":"StripAccents"}
 */
import { normalizers } from '../registry.js';
import type { JsonObject, Normalized, Normalizer } from '../types.js';

const MARK = /\p{M}/u;
const NONSPACING_MARK = /\p{Mn}/u;

function isSurrogatePairAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
}

/**
 * Rebuilds `input` character by character: `map` returns the replacement of one character (a code
 * point, given with its UTF-16 index), '' to drop it, or the character itself. Replacement unit k
 * of a character spanning units [a, b) is aligned with original `align[a + min(k, b - a - 1)]`.
 */
export function mapCharsAligned(input: Normalized, map: (ch: string, index: number) => string): Normalized {
  const { text, align } = input;
  let out = '';
  const outAlign: number[] = [];
  let changed = false;
  for (let i = 0; i < text.length; ) {
    const w = isSurrogatePairAt(text, i) ? 2 : 1;
    const ch = w === 2 ? text.slice(i, i + 2) : text[i]!;
    const rep = map(ch, i);
    if (rep !== ch) changed = true;
    out += rep;
    if (rep === ch) for (let k = 0; k < w; k++) outAlign.push(align[i + k]!);
    else for (let k = 0; k < rep.length; k++) outAlign.push(align[i + Math.min(k, w - 1)]!);
    i += w;
  }
  if (!changed) return input;
  outAlign.push(align[text.length]!);
  return { text: out, align: outAlign };
}

/** Only code points from U+00C0 upwards have canonical decompositions (ASCII and Latin-1 punctuation do not). */
function mayDecompose(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0xc0) return true;
  return false;
}

/**
 * NFD with alignment. Text is handled in clusters (a non-mark followed by its marks), since
 * canonical reordering never crosses a starter: each cluster's NFD is a permutation of its
 * characters' own decompositions, so every output code point is traced back to the character
 * whose decomposition produced it.
 */
export function nfdAligned(input: Normalized): Normalized {
  const { text, align } = input;
  if (!mayDecompose(text) || text.normalize('NFD') === text) return input;
  let out = '';
  const outAlign: number[] = [];
  let i = 0;
  while (i < text.length) {
    // One cluster [i, j).
    let j = i + (isSurrogatePairAt(text, i) ? 2 : 1);
    while (j < text.length) {
      const w = isSurrogatePairAt(text, j) ? 2 : 1;
      if (!MARK.test(text.slice(j, j + w))) break;
      j += w;
    }
    // Per-character decompositions with the original index of each of their code points.
    const parts: { cp: string; src: number }[] = [];
    for (let k = i; k < j; ) {
      const w = isSurrogatePairAt(text, k) ? 2 : 1;
      const ch = text.slice(k, k + w);
      const d = ch.charCodeAt(0) < 0xc0 ? ch : ch.normalize('NFD');
      if (d === ch) parts.push({ cp: ch, src: k });
      else for (const cp of d) parts.push({ cp, src: k });
      k += w;
    }
    const cluster = j - i === 1 ? text[i]! : text.slice(i, j);
    const nfd = cluster.charCodeAt(0) < 0xc0 && j - i === 1 ? cluster : cluster.normalize('NFD');
    const used = new Uint8Array(parts.length);
    for (const cp of nfd) {
      let p = parts.findIndex((x, q) => used[q] === 0 && x.cp === cp);
      if (p < 0) p = 0; // cannot happen for canonical decomposition; keep the cluster's first index
      used[p] = 1;
      const src = parts[p]!.src;
      const srcWidth = isSurrogatePairAt(text, src) ? 2 : 1;
      out += cp;
      // A code point kept whole from a surrogate pair keeps both units' alignment.
      if (cp.length === 2 && srcWidth === 2) outAlign.push(align[src]!, align[src + 1]!);
      else for (let k = 0; k < cp.length; k++) outAlign.push(align[src]!);
    }
    i = j;
  }
  outAlign.push(align[text.length]!);
  return { text: out, align: outAlign };
}

/** Drops every character matching `re` (one code point each). */
export function filterAligned(input: Normalized, re: RegExp): Normalized {
  return mapCharsAligned(input, (ch) => (re.test(ch) ? '' : ch));
}

/** BERT's accent stripping: NFD, then drop nonspacing marks (Mn). */
export function stripAccentsBert(input: Normalized): Normalized {
  if (!mayDecompose(input.text)) return input;
  return filterAligned(nfdAligned(input), NONSPACING_MARK);
}

export class StripAccents implements Normalizer {
  normalize(input: Normalized): Normalized {
    return filterAligned(input, MARK);
  }

  toJSON(): JsonObject {
    return { type: 'StripAccents' };
  }
}

normalizers.register('StripAccents', () => new StripAccents());
