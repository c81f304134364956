/**
 * GPT configuration: Weft's own camelCase form (validated with zod) and the Hugging Face GPT-2
 * `config.json` it is saved as, so a saved directory loads in transformers and HF GPT-2 checkpoints
 * load here.
 */
import { z } from 'zod';
import { describeZodIssues } from '../io/zod-issues.js';

const positiveInt = z.number().int().positive();

export const GPTConfigSchema = z
  .object({
    vocabSize: positiveInt,
    /** Maximum sequence length (HF `n_positions`). */
    blockSize: positiveInt,
    nLayer: positiveInt,
    nHead: positiveInt,
    nEmbd: positiveInt,
    /** Dropout on embeddings, attention weights and residual branches (HF's three pdrops, nanoGPT's one). */
    dropout: z.number().min(0).lt(1).default(0),
    /** Biases in LayerNorms and Conv1Ds (nanoGPT's `bias`; real GPT-2 has them). */
    bias: z.boolean().default(true),
    /** 'gelu': erf form (nanoGPT's nn.GELU); 'gelu_new': tanh approximation (OpenAI GPT-2). */
    activation: z.enum(['gelu', 'gelu_new']).default('gelu'),
    layerNormEps: z.number().positive().default(1e-5),
  })
  .strict()
  .refine((c) => c.nEmbd % c.nHead === 0, { message: 'nEmbd must be divisible by nHead' });

export type GPTConfig = z.output<typeof GPTConfigSchema>;
/** What callers pass: optional fields take their defaults. */
export type GPTConfigInput = z.input<typeof GPTConfigSchema>;

/** Validates and fills defaults; the error lists every bad field. */
export function parseGPTConfig(input: unknown): GPTConfig {
  const r = GPTConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`GPT config is invalid: ${issues}`);
  }
  return r.data;
}

/** Hugging Face GPT-2 config.json (the fields Weft reads and writes; others pass through untouched). */
export interface HFGPT2Config {
  model_type: 'gpt2';
  architectures: string[];
  vocab_size: number;
  n_positions: number;
  n_ctx: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner: number | null;
  activation_function: string;
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  layer_norm_epsilon: number;
  initializer_range: number;
  tie_word_embeddings: boolean;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  reorder_and_upcast_attn: boolean;
  use_cache: boolean;
  torch_dtype: string;
  /** Weft-specific: false when the model has no biases (the saved zero biases are then dropped on load). */
  weft_bias: boolean;
  [extra: string]: unknown;
}

export function gptConfigToHF(c: GPTConfig): HFGPT2Config {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: c.vocabSize,
    n_positions: c.blockSize,
    n_ctx: c.blockSize,
    n_embd: c.nEmbd,
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_inner: null,
    activation_function: c.activation,
    resid_pdrop: c.dropout,
    embd_pdrop: c.dropout,
    attn_pdrop: c.dropout,
    layer_norm_epsilon: c.layerNormEps,
    initializer_range: 0.02,
    tie_word_embeddings: true,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    use_cache: true,
    torch_dtype: 'float32',
    weft_bias: c.bias,
  };
}

const HFSchema = z
  .object({
    model_type: z.string().optional(),
    vocab_size: positiveInt,
    n_positions: positiveInt,
    n_embd: positiveInt,
    n_layer: positiveInt,
    n_head: positiveInt,
    n_inner: positiveInt.nullable().optional(),
    activation_function: z.string().default('gelu_new'),
    resid_pdrop: z.number().default(0.1),
    embd_pdrop: z.number().default(0.1),
    attn_pdrop: z.number().default(0.1),
    layer_norm_epsilon: z.number().positive().default(1e-5),
    tie_word_embeddings: z.boolean().default(true),
    scale_attn_weights: z.boolean().default(true),
    scale_attn_by_inverse_layer_idx: z.boolean().default(false),
    weft_bias: z.boolean().default(true),
  })
  .loose();

/**
 * Reads an HF GPT-2 config.json (parsed JSON). Refuses what this GPT cannot reproduce exactly
 * (another architecture, untied head, n_inner ≠ 4·n_embd, other activations or attention scalings)
 * rather than loading a model that computes something else. HF's three dropouts become one (the max).
 */
export function gptConfigFromHF(json: unknown): GPTConfig {
  const r = HFSchema.safeParse(json);
  if (!r.success) {
    const issues = describeZodIssues(r.error);
    throw new RangeError(`config.json is not a GPT-2 config: ${issues}`);
  }
  const h = r.data;
  const bad = (msg: string): never => {
    throw new RangeError(`config.json: ${msg}`);
  };
  if (h.model_type !== undefined && h.model_type !== 'gpt2') bad(`model_type '${h.model_type}' is not supported (only 'gpt2')`);
  if (h.n_inner != null && h.n_inner !== 4 * h.n_embd) bad(`n_inner ${h.n_inner} != 4·n_embd (${4 * h.n_embd}) is not supported`);
  if (!h.tie_word_embeddings) bad('tie_word_embeddings false is not supported (the LM head is tied to wte)');
  if (!h.scale_attn_weights || h.scale_attn_by_inverse_layer_idx) {
    bad('only scale_attn_weights=true and scale_attn_by_inverse_layer_idx=false are supported');
  }
  // gelu_pytorch_tanh and gelu_new are the same tanh formula.
  const act = h.activation_function;
  const activation = act === 'gelu' ? 'gelu' : act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? 'gelu_new' : null;
  if (activation === null) bad(`activation_function '${act}' is not supported (use gelu, gelu_new or gelu_pytorch_tanh)`);
  return parseGPTConfig({
    vocabSize: h.vocab_size,
    blockSize: h.n_positions,
    nLayer: h.n_layer,
    nHead: h.n_head,
    nEmbd: h.n_embd,
    dropout: Math.max(h.resid_pdrop, h.embd_pdrop, h.attn_pdrop),
    bias: h.weft_bias,
    activation: activation!,
    layerNormEps: h.layer_norm_epsilon,
  });
}
