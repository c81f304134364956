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
