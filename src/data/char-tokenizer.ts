/**
 * Character-level tokenizer (nanoGPT's shakespeare_char): the vocabulary is the sorted set of
 * characters in the corpus, each character one id. Characters are Unicode code points, so text
 * outside the Basic Multilingual Plane (emoji, rare CJK) is one token, not two surrogate halves.
 */
import { z } from 'zod';
import type { Tokenizer } from './tokenizer.js';

/** The tokenizer.json a run directory holds for a character tokenizer. */
export const CharTokenizerJSON = z.object({
  type: z.literal('char'),
  vocab: z.array(z.string()).min(1),
});
export type CharTokenizerJSON = z.infer<typeof CharTokenizerJSON>;

export class CharTokenizer implements Tokenizer {
  private readonly ids = new Map<string, number>();

  private constructor(private readonly vocab: readonly string[]) {
    vocab.forEach((ch, i) => {
      if ([...ch].length !== 1) throw new Error(`CharTokenizer: vocabulary entry ${i} (${JSON.stringify(ch)}) is not one character`);
      if (this.ids.has(ch)) throw new Error(`CharTokenizer: character ${JSON.stringify(ch)} appears twice in the vocabulary`);
      this.ids.set(ch, i);
    });
  }

  /** The vocabulary of `text`: its distinct characters, sorted by code point (as Python's sorted(set(text))). */
  static fromText(text: string): CharTokenizer {
    const chars = [...new Set(text)];
    if (chars.length === 0) throw new Error('CharTokenizer.fromText: the text is empty, so there is no vocabulary');
    chars.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer(chars);
  }

  static fromJSON(json: unknown): CharTokenizer {
    const parsed = CharTokenizerJSON.safeParse(json);
    if (!parsed.success) {
      throw new Error(`CharTokenizer.fromJSON: not a character tokenizer ({"type":"char","vocab":[...]}): ${parsed.error.issues[0]?.message ?? ''}`);
    }
    return new CharTokenizer(parsed.data.vocab);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id === undefined) {
        throw new Error(`CharTokenizer.encode: character ${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) is not in the vocabulary of ${this.vocab.length} characters`);
      }
      out.push(id);
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) {
      const ch = this.vocab[id];
      if (ch === undefined || !Number.isInteger(id)) throw new RangeError(`CharTokenizer.decode: id ${id} is outside the vocabulary [0, ${this.vocab.length})`);
      s += ch;
    }
    return s;
  }

  toJSON(): CharTokenizerJSON {
    return { type: 'char', vocab: [...this.vocab] };
  }
}

/** Rebuilds a tokenizer from its tokenizer.json content (only the character tokenizer exists so far). */
export function tokenizerFromJSON(json: unknown): CharTokenizer {
  const type = typeof json === 'object' && json !== null && 'type' in json ? (json as { type: unknown }).type : undefined;
  if (type === 'char') return CharTokenizer.fromJSON(json);
  throw new Error(`tokenizer.json: unknown tokenizer type ${JSON.stringify(type)}; this version of Weft reads {"type":"char"}`);
}
