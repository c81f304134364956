/**
 * Split pre-tokenizer: splits on a string or regex pattern with one of HF's delimiter behaviors
 * (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous), optionally inverted.
 * Oniguruma-only syntax of released patterns (cl100k / LLaMA-3's `(?i:'s|'t|...)`, possessive
 * quantifiers) is translated (util.compilePattern).
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { compilePattern, optBool, patternToJSON, readPattern, splitPiece, type AlignedPreToken, type FastSplitter, type PatternJson, type SplitBehavior } from '../util.js';

const BEHAVIORS: readonly SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/** cl100k_base's pre-tokenizer pattern (GPT-3.5/4; LLaMA-3 uses it too), in HF's Oniguruma syntax. */
export const CL100K_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export class SplitPreTokenizer implements PreTokenizer, FastSplitter {
  private readonly regex: RegExp;
  readonly fastByteLevel = false;
  readonly fastPrefixSpace = false;

  constructor(
    readonly pattern: PatternJson,
    readonly behavior: SplitBehavior = 'Isolated',
    readonly invert = false,
  ) {
    if (!BEHAVIORS.includes(behavior)) throw new Error(`Split: behavior must be one of ${BEHAVIORS.join(', ')}, got ${JSON.stringify(behavior)}`);
    this.regex = compilePattern(pattern, 'pre_tokenizer (Split)');
  }

  static fromJSON(json: JsonObject): SplitPreTokenizer {
    const where = 'pre_tokenizer (Split)';
    const behavior = json.behavior ?? 'Isolated';
    if (typeof behavior !== 'string' || !BEHAVIORS.includes(behavior as SplitBehavior)) {
      throw new Error(`tokenizer.json: ${where}.behavior must be one of ${BEHAVIORS.join(', ')}, got ${JSON.stringify(behavior)}`);
    }
    return new SplitPreTokenizer(readPattern(json, 'pattern', where), behavior as SplitBehavior, optBool(json, 'invert', where, false));
  }

  toJSON(): JsonObject {
    return { type: 'Split', pattern: patternToJSON(this.pattern), behavior: this.behavior, invert: this.invert };
  }

  preTokenize(pieces: PreToken[]): PreToken[] {
    const out: PreToken[] = [];
    for (const p of pieces as AlignedPreToken[]) out.push(...splitPiece(p, this.regex, this.behavior, this.invert));
    return out;
  }

  /** Word spans without objects; only the plain Isolated split (what cl100k-style tokenizers use). */
  fastSplit(text: string, emit: (start: number, end: number) => void): boolean {
    if (this.behavior !== 'Isolated' || this.invert) return false;
    const re = this.regex;
    re.lastIndex = 0;
    let last = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const s = m.index;
      const e = s + m[0].length;
      if (e === s) {
        re.lastIndex = s + 1;
        continue;
      }
      if (s > last) emit(last, s);
      emit(s, e);
      last = e;
    }
    if (last < text.length) emit(last, text.length);
    return true;
  }
}

preTokenizers.register('Split', (json) => SplitPreTokenizer.fromJSON(json));
