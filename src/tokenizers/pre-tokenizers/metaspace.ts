/**
 * Metaspace (SentencePiece's "▁" convention), HF semantics: every space becomes the replacement
 * character; then a replacement is prepended unless the piece already starts with one —
 * `prepend_scheme` "always" for every piece, "first" only for the piece at the start of the input,
 * "never" not at all; with `split`, the piece is split before each replacement character
 * (MergedWithNext), so "▁Hello▁world" gives "▁Hello", "▁world".
 *
 * tokenizer.json: {"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}
 * (older files have "add_prefix_space": bool instead of "prepend_scheme").
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { optBool, optString, pieceSpan, splitPiece, type AlignedPreToken } from '../util.js';

export type PrependScheme = 'always' | 'first' | 'never';

export function readPrependScheme(json: JsonObject, where: string): PrependScheme {
  const scheme = optString(json, 'prepend_scheme', where);
  if (scheme === null) return optBool(json, 'add_prefix_space', where, true) ? 'always' : 'never';
  if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') {
    throw new Error(`tokenizer.json: ${where}.prepend_scheme must be "always", "first" or "never", got ${JSON.stringify(scheme)}`);
  }
  return scheme;
}

export function readReplacement(json: JsonObject, where: string): string {
  const r = optString(json, 'replacement', where) ?? optString(json, 'str_rep', where) ?? '▁';
  if ([...r].length !== 1) throw new Error(`tokenizer.json: ${where}.replacement must be a single character, got ${JSON.stringify(r)}`);
  return r;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** Explicit per-unit spans of a pre-token (so its text can be rewritten). */
function unitSpans(p: AlignedPreToken): Int32Array {
  if (p.spans !== undefined) return p.spans;
  const spans = new Int32Array(2 * p.text.length);
  for (let i = 0; i < p.text.length; i++) {
    const [s, e] = pieceSpan(p, i, i + 1);
    spans[2 * i] = s;
    spans[2 * i + 1] = e;
  }
  return spans;
}

export class Metaspace implements PreTokenizer {
  private readonly splitter: RegExp;

  constructor(
    readonly replacement = '▁',
    readonly prependScheme: PrependScheme = 'always',
    readonly split = true,
  ) {
    if ([...replacement].length !== 1) throw new Error(`Metaspace: replacement must be a single character, got ${JSON.stringify(replacement)}`);
    this.splitter = new RegExp(escapeRegExp(replacement), 'gu');
  }

  static fromJSON(json: JsonObject): Metaspace {
    const where = 'pre_tokenizer(Metaspace)';
    return new Metaspace(readReplacement(json, where), readPrependScheme(json, where), optBool(json, 'split', where, true));
  }

  /** One piece with spaces replaced and the prefix added (alignment kept). */
  private rewrite(p: AlignedPreToken): AlignedPreToken {
    const rep = this.replacement;
    let piece: AlignedPreToken = p;
    if (p.text.includes(' ')) {
      if (rep.length === 1 && p.spans === undefined) {
        piece = { ...p, text: p.text.replaceAll(' ', rep) };
      } else {
        const old = unitSpans(p);
        const spans: number[] = [];
        let text = '';
        for (let i = 0; i < p.text.length; i++) {
          const c = p.text[i]!;
          const out = c === ' ' ? rep : c;
          text += out;
          for (let k = 0; k < out.length; k++) spans.push(old[2 * i]!, old[2 * i + 1]!);
        }
        piece = { text, start: p.start, end: p.end, spans: Int32Array.from(spans) };
      }
    }
    const prepend = this.prependScheme === 'always' || (this.prependScheme === 'first' && p.start === 0);
    // Like HF's NormalizedString::prepend, nothing is added to an empty piece.
    if (prepend && piece.text.length > 0 && !piece.text.startsWith(rep)) {
      if (piece.spans === undefined && piece.text.length === piece.end - piece.start) {
        // pieceSpan aligns an added prefix with the first real unit.
        piece = { text: rep + piece.text, start: piece.start, end: piece.end };
      } else {
        const old = unitSpans(piece);
        const first0 = old.length > 0 ? old[0]! : piece.start;
        const first1 = old.length > 0 ? old[1]! : piece.start;
        const spans = new Int32Array(old.length + 2 * rep.length);
        for (let k = 0; k < rep.length; k++) {
          spans[2 * k] = first0;
          spans[2 * k + 1] = first1;
        }
        spans.set(old, 2 * rep.length);
        piece = { text: rep + piece.text, start: piece.start, end: piece.end, spans };
      }
    }
    return piece;
  }

  preTokenize(pieces: PreToken[]): PreToken[] {
    const out: PreToken[] = [];
    for (const p of pieces) {
      const piece = this.rewrite(p);
      if (this.split) out.push(...splitPiece(piece, this.splitter, 'MergedWithNext', false));
      else out.push(piece);
    }
    return out;
  }

  toJSON(): JsonObject {
    return { type: 'Metaspace', replacement: this.replacement, prepend_scheme: this.prependScheme, split: this.split };
  }
}

preTokenizers.register('Metaspace', (json) => Metaspace.fromJSON(json));
