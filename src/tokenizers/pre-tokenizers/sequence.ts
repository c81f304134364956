/**
 * Sequence pre-tokenizer: applies pre-tokenizers in order. The common [Split(regex), ByteLevel
 * without regex] form (LLaMA-3, cl100k-style) also takes the ids-only fast path.
 */
import { preTokenizers } from '../registry.js';
import type { JsonObject, PreToken, PreTokenizer } from '../types.js';
import { isFastSplitter, isObject, reqArray, type FastSplitter } from '../util.js';
import { ByteLevelPreTokenizer } from './byte-level.js';
import { SplitPreTokenizer } from './split.js';

export class SequencePreTokenizer implements PreTokenizer, FastSplitter {
  constructor(readonly preTokenizers: PreTokenizer[]) {}

  static fromJSON(json: JsonObject): SequencePreTokenizer {
    return new SequencePreTokenizer(
      reqArray(json, 'pretokenizers', 'pre_tokenizer (Sequence)').map((p, i) => {
        if (!isObject(p)) throw new Error(`tokenizer.json: pre_tokenizer (Sequence).pretokenizers[${i}] must be an object`);
        return preTokenizers.fromJSON(p);
      }),
    );
  }

  toJSON(): JsonObject {
    return { type: 'Sequence', pretokenizers: this.preTokenizers.map((p) => p.toJSON()) };
  }

  preTokenize(pieces: PreToken[]): PreToken[] {
    return this.preTokenizers.reduce((acc, p) => p.preTokenize(acc), pieces);
  }

  /** The splitter and byte-level flag when this sequence has a fast form, else null. */
  private fastForm(): { split: FastSplitter; byteLevel: boolean } | null {
    const list = this.preTokenizers;
    if (list.length === 1 && isFastSplitter(list[0])) return { split: list[0], byteLevel: list[0].fastByteLevel };
    if (list.length === 2 && list[0] instanceof SplitPreTokenizer && list[1] instanceof ByteLevelPreTokenizer) {
      const bl = list[1];
      if (!bl.useRegex && !bl.addPrefixSpace) return { split: list[0], byteLevel: true };
    }
    return null;
  }

  get fastByteLevel(): boolean {
    return this.fastForm()?.byteLevel ?? false;
  }

  get fastPrefixSpace(): boolean {
    const f = this.fastForm();
    return f !== null && this.preTokenizers.length === 1 ? f.split.fastPrefixSpace : false;
  }

  fastSplit(text: string, emit: (start: number, end: number) => void): boolean {
    const f = this.fastForm();
    return f === null ? false : f.split.fastSplit(text, emit);
  }
}

preTokenizers.register('Sequence', (json) => SequencePreTokenizer.fromJSON(json));
