/**
 * Replace decoder (HF semantics): replaces every match of a pattern in each token — a literal
 * {"String": "▁"} or a regex {"Regex": "..."} — with `content`.
 *
 * tokenizer.json: {"type":"Replace","pattern":{"String":"▁"},"content":" "}
 */
import { decoders } from '../registry.js';
import type { Decoder, JsonObject } from '../types.js';
import { compilePattern, patternToJSON, readPattern, reqString, type PatternJson } from '../util.js';

export class ReplaceDecoder implements Decoder {
  private readonly regex: RegExp;

  constructor(
    readonly pattern: PatternJson,
    readonly content: string,
  ) {
    this.regex = compilePattern(pattern, 'decoder(Replace).pattern');
  }

  static fromJSON(json: JsonObject): ReplaceDecoder {
    const where = 'decoder(Replace)';
    return new ReplaceDecoder(readPattern(json, 'pattern', where), reqString(json, 'content', where));
  }

  decodeChain(tokens: string[]): string[] {
    if (this.pattern.kind === 'string') {
      const from = this.pattern.value;
      // An empty literal matches nowhere in HF (it would otherwise insert between every character).
      if (from.length === 0) return tokens;
      return tokens.map((t) => t.replaceAll(from, this.content));
    }
    // A function replacement keeps `content` literal ("$&" etc. mean nothing in HF).
    return tokens.map((t) => t.replace(this.regex, () => this.content));
  }

  toJSON(): JsonObject {
    return { type: 'Replace', pattern: patternToJSON(this.pattern), content: this.content };
  }
}

decoders.register('Replace', (json) => ReplaceDecoder.fromJSON(json));
