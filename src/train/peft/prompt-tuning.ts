/**
 * Prompt tuning (Lester et al. 2021): the model stays frozen; P trainable "virtual token" embeddings
 * are prepended to every input's token embeddings, and only they learn. Saved as PEFT does
 * (adapter_config.json with peft_type PROMPT_TUNING + adapter_model.safetensors holding
 * `prompt_embeddings` [P, C]), so a PEFT prompt loads here and ours loads in PEFT.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../../tensor/autograd.js';
import { concat } from '../../tensor/index.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { Embedding } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { describeZodIssues } from '../../io/zod-issues.js';

export type PromptInit = { kind: 'random' } | { kind: 'vocab' } | { kind: 'tokens'; ids: readonly number[] };

/** The trainable virtual tokens (PEFT's prompt_encoder.<adapter>.embedding). */
export class PromptEmbedding extends Module {
  readonly embedding: Embedding;

  constructor(
    readonly numVirtualTokens: number,
    readonly hiddenSize: number,
    options: { generator?: Generator } = {},
  ) {
    super();
    if (!Number.isInteger(numVirtualTokens) || numVirtualTokens < 1) throw new RangeError(`prompt tuning: the number of virtual tokens must be ≥ 1, got ${numVirtualTokens}`);
    this.embedding = this.registerModule('embedding', new Embedding(numVirtualTokens, hiddenSize, { generator: options.generator }));
  }

  /**
   * Sets the initial prompt: 'vocab' copies the embeddings of random vocabulary tokens (Lester et al.'s
   * best simple init), 'tokens' the embeddings of given ids (e.g. the class label words) repeated to P.
   */
  initialise(init: PromptInit, wordEmbeddings: Tensor, generator: Generator = defaultGenerator): void {
    if (init.kind === 'random') return;
    const [V, C] = wordEmbeddings.shape as [number, number];
    if (C !== this.hiddenSize) throw new RangeError(`prompt tuning: word embeddings are ${C} wide, the prompt ${this.hiddenSize}`);
    const ids =
      init.kind === 'vocab'
        ? Array.from({ length: this.numVirtualTokens }, () => generator.int(0, Math.min(V, 5000)))
        : init.ids;
    if (ids.length === 0) throw new RangeError('prompt tuning: initialising from tokens needs at least one token id');
    const src = wordEmbeddings.dense();
    noGrad(() => {
      const dst = this.embedding.weight.f32('PromptEmbedding.initialise');
      for (let p = 0; p < this.numVirtualTokens; p++) {
        const id = ids[p % ids.length]!;
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`prompt tuning: init token id ${id} is outside the vocabulary [0, ${V})`);
        dst.set(src.subarray(id * C, (id + 1) * C), p * C);
      }
    });
  }

  /** [P, C] prompt in front of token embeddings [B, T, C] → [B, P + T, C]. */
  prepend(embeds: Tensor): Tensor {
    const B = embeds.shape[0]!;
    const prompt = this.embedding.weight.unsqueeze(0).expand([B, this.numVirtualTokens, this.hiddenSize]);
    return concat([prompt, embeds], 1);
  }
}

const PromptFileSchema = z
  .object({
    peft_type: z.literal('PROMPT_TUNING'),
    num_virtual_tokens: z.number().int().positive(),
    token_dim: z.number().int().positive(),
    task_type: z.string().nullable().optional(),
  })
  .loose();

export async function savePromptAdapter(prompt: PromptEmbedding, dir: string, options: { taskType?: string; baseModel?: string | null; numLayers?: number; numHeads?: number } = {}): Promise<{ bytes: number }> {
  await mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, 'adapter_model.safetensors'), new Map([['prompt_embeddings', prompt.embedding.weight]]), { format: 'pt' });
  const config = {
    auto_mapping: null,
    base_model_name_or_path: options.baseModel ?? null,
    inference_mode: true,
    num_attention_heads: options.numHeads ?? null,
    num_layers: options.numLayers ?? null,
    num_transformer_submodules: 1,
    num_virtual_tokens: prompt.numVirtualTokens,
    peft_type: 'PROMPT_TUNING',
    prompt_tuning_init: 'RANDOM',
    prompt_tuning_init_text: null,
    revision: null,
    task_type: options.taskType ?? 'CAUSAL_LM',
    token_dim: prompt.hiddenSize,
    tokenizer_kwargs: null,
    tokenizer_name_or_path: null,
  };
  await writeFileAtomic(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n');
  return { bytes: prompt.embedding.weight.numel * 4 };
}

export async function loadPromptAdapter(dir: string): Promise<PromptEmbedding> {
  const cfgPath = join(dir, 'adapter_config.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(cfgPath, 'utf8'));
  } catch (e) {
    throw new Error(`loadPromptAdapter: cannot read ${cfgPath}: ${(e as Error).message}`);
  }
  const r = PromptFileSchema.safeParse(json);
  if (!r.success) throw new RangeError(`${cfgPath} is not a PEFT prompt-tuning config: ${describeZodIssues(r.error, '')}`);
  const { num_virtual_tokens: P, token_dim: C } = r.data;
  const file = await loadSafetensors(join(dir, 'adapter_model.safetensors'));
  const t = file.tensors.get('prompt_embeddings');
  if (t === undefined || t.shape.length !== 2 || t.shape[0] !== P || t.shape[1] !== C) {
    throw new Error(`loadPromptAdapter: ${join(dir, 'adapter_model.safetensors')} must hold prompt_embeddings [${P}, ${C}]`);
  }
  const prompt = new PromptEmbedding(P, C);
  noGrad(() => prompt.embedding.weight.f32('loadPromptAdapter').set(t.to('f32').dense()));
  return prompt;
}
