/**
 * tokenizer.json component registry: each component file registers how to build itself from its
 * JSON object under the HF `type` name, so the loader needs no central switch and unknown types
 * fail with the list of supported ones.
 */
import type { Decoder, JsonObject, Normalizer, PostProcessor, PreTokenizer, TokenizerModel } from './types.js';

type Factory<T> = (json: JsonObject) => T;

class Registry<T> {
  private readonly factories = new Map<string, Factory<T>>();
  constructor(private readonly kind: string) {}

  register(type: string, factory: Factory<T>): void {
    this.factories.set(type, factory);
  }

  fromJSON(json: JsonObject): T {
    const type = json.type;
    if (typeof type !== 'string') throw new Error(`tokenizer.json: ${this.kind} has no "type" field`);
    const f = this.factories.get(type);
    if (f === undefined) {
      throw new Error(`tokenizer.json: unsupported ${this.kind} type '${type}' (supported: ${[...this.factories.keys()].sort().join(', ')})`);
    }
    return f(json);
  }
}

export const normalizers = new Registry<Normalizer>('normalizer');
export const preTokenizers = new Registry<PreTokenizer>('pre_tokenizer');
export const models = new Registry<TokenizerModel>('model');
export const postProcessors = new Registry<PostProcessor>('post_processor');
export const decoders = new Registry<Decoder>('decoder');
