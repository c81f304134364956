/**
 * Sequence post-processor (e.g. LLaMA-3: [ByteLevel, TemplateProcessing]). Every processor but the
 * last is applied to each sequence on its own (offset trimming and the like); the last one
 * combines the pair and adds the special tokens.
 */
import { postProcessors } from '../registry.js';
import type { Encoding, JsonObject, PostProcessor } from '../types.js';
import { isObject, reqArray } from '../util.js';

export class SequenceProcessor implements PostProcessor {
  constructor(readonly processors: PostProcessor[]) {}

  static fromJSON(json: JsonObject): SequenceProcessor {
    const list = reqArray(json, 'processors', 'post_processor (Sequence)').map((p, i) => {
      if (!isObject(p)) throw new Error(`tokenizer.json: post_processor (Sequence).processors[${i}] must be an object`);
      return postProcessors.fromJSON(p);
    });
    return new SequenceProcessor(list);
  }

  toJSON(): JsonObject {
    return { type: 'Sequence', processors: this.processors.map((p) => p.toJSON()) };
  }

  addedTokens(isPair: boolean): number {
    return this.processors.reduce((n, p) => n + p.addedTokens(isPair), 0);
  }

  process(encoding: Encoding, pair: Encoding | null, addSpecialTokens: boolean): Encoding {
    if (this.processors.length === 0) return encoding;
    let a = encoding;
    let b = pair;
    for (const p of this.processors.slice(0, -1)) {
      a = p.process(a, null, addSpecialTokens);
      if (b !== null) b = p.process(b, null, addSpecialTokens);
    }
    return this.processors[this.processors.length - 1].process(a, b, addSpecialTokens);
  }
}

postProcessors.register('Sequence', (json) => SequenceProcessor.fromJSON(json));
