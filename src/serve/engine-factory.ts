/**
 * The production engine factory, run inside the engine worker: loads the model (HF directory,
 * .gguf, or llama2.c .bin) and builds the continuous-batching Engine over it.
 */
import { Engine } from '../infer/engine.js';
import { loadModel } from '../infer/load.js';
import type { EngineBundle, EngineFactoryOptions } from './host.js';

export async function createEngineBundle(options: EngineFactoryOptions): Promise<EngineBundle> {
  const model = await loadModel(options.modelPath, { tokenizer: options.tokenizer, modelId: options.modelId });
  const engine = new Engine(model, { maxBatch: options.maxBatch, kvBlocks: options.kvBlocks });
  return {
    engine,
    embed: (batch) => engine.embed(batch),
    info: {
      modelId: model.modelId,
      family: model.family,
      contextLength: model.contextLength,
      vocabSize: model.vocabSize,
      eosTokenIds: [...model.eosTokenIds],
      bosTokenId: model.bosTokenId,
      tokenizerConfig: model.tokenizerConfig,
      tokenizerJSON: model.tokenizer.toJSON(),
    },
  };
}
