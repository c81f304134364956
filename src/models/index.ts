export {
  GPTConfigSchema,
  type GPTConfig,
  type GPTConfigInput,
  type HFGPT2Config,
  parseGPTConfig,
  gptConfigToHF,
  gptConfigFromHF,
} from './config.js';
export { GPT, GPTTransformer, Block, MLP, CausalSelfAttention, causalAttentionFromQKV, causalAttentionExplicit, IGNORE_INDEX, type GPTOptions, type GPTOutput } from './gpt.js';
export { registerFamily, loadPretrained, supportedModelTypes, type ModelFamily, type CausalLM } from './registry.js';
export { BertForPreTraining, parseBertConfig, bertConfigFromHF, bertConfigToHF, MLM_IGNORE_INDEX, type BertConfig, type BertConfigInput, type BertOutput, type BertInputs } from './bert.js';
export { T5ForConditionalGeneration, T5Attention, T5Block, T5Stack, T5_IGNORE_INDEX, parseT5Config, t5Preset, t5ConfigFromHF, t5ConfigToHF, relativePositionBucket, relativePositionBuckets, type T5Config, type T5ConfigInput, type T5Options, type T5Inputs, type T5Output, type T5DecoderState } from './t5.js';
export { Llama, LlamaConfigSchema, parseLlamaConfig, llamaConfigFromHF, llamaConfigToHF, type LlamaConfig, type LlamaConfigInput } from './llama.js';
export { Transformer, parseTransformerConfig, sinusoidalEncoding, loadChecked, type TransformerConfig, type TransformerConfigInput } from './transformer.js';
export { PaLM, parsePaLMConfig, ropeTables, applyRope, type PaLMConfig, type PaLMConfigInput } from './palm.js';
export { Mixtral, MixtralDecoderLayer, mixtralConfigFromHF, mixtralConfigToHF, parseMixtralConfig, type MixtralConfig } from './mixtral.js';
