/**
 * One view of GPT, LLaMA and BERT as "embeddings in, hidden states / logits out", which is what prompt
 * tuning (trainable embeddings prepended), prefix tuning and task heads need: the model's own token
 * embedding and its own layers, fed from a tensor instead of token ids.
 */
import { add, linear } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import { BertForPreTraining } from '../../models/bert.js';
import { GPT } from '../../models/gpt.js';
import { Llama } from '../../models/llama.js';
import type { Module } from '../../nn/module.js';

export interface EmbeddingLM {
  /** 'causal': next-token LM (GPT, LLaMA); 'masked': BERT's MLM. */
  readonly kind: 'causal' | 'masked';
  readonly hiddenSize: number;
  readonly vocabSize: number;
  /** Longest input (positions) the model accepts. */
  readonly maxLength: number;
  /** The token embedding table [V, C]. */
  readonly wordEmbeddings: Tensor;
  /** Token embeddings [B, T, C] of ids [B, T]. */
  embed(ids: Tensor): Tensor;
  /** Final hidden states [B, T, C] (after the last norm) of input embeddings [B, T, C]. */
  hidden(embeds: Tensor, attentionMask?: Tensor): Tensor;
  /** LM logits [B, T, V] of final hidden states. */
  logits(hidden: Tensor): Tensor;
}

/** The embeddings-in view of a supported model; names the supported families otherwise. */
export function embeddingLM(model: Module): EmbeddingLM {
  if (model instanceof GPT) {
    const tr = model.transformer;
    const c = model.config;
    return {
      kind: 'causal',
      hiddenSize: c.nEmbd,
      vocabSize: c.vocabSize,
      maxLength: c.blockSize,
      wordEmbeddings: tr.wte.weight,
      embed: (ids) => tr.wte.forward(ids),
      hidden: (embeds) => {
        const T = embeds.shape[1]!;
        if (T > c.blockSize) throw new RangeError(`GPT: sequence length ${T} exceeds blockSize ${c.blockSize}`);
        let x = tr.drop.forward(add(embeds, tr.wpe.weight.narrow(0, 0, T)));
        for (const block of tr.h) x = block.forward(x);
        return tr.ln_f.forward(x);
      },
      logits: (h) => linear(h, tr.wte.weight),
    };
  }
  if (model instanceof Llama) {
    const c = model.config;
    return {
      kind: 'causal',
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      maxLength: c.maxPositionEmbeddings,
      wordEmbeddings: model.model.embed_tokens.weight,
      embed: (ids) => model.model.embed_tokens.forward(ids),
      hidden: (embeds) => model.hiddenFromEmbeddings(embeds),
      logits: (h) => model.headLogits(h),
    };
  }
  if (model instanceof BertForPreTraining) {
    const c = model.config;
    return {
      kind: 'masked',
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      maxLength: c.maxPositionEmbeddings,
      wordEmbeddings: model.bert.embeddings.word_embeddings.weight,
      embed: (ids) => model.bert.embeddings.word_embeddings.forward(ids),
      hidden: (embeds, attentionMask) => model.encodeEmbeds(embeds, attentionMask === undefined ? {} : { attentionMask }),
      logits: (h) => model.cls.predictions.forward(h, model.bert.embeddings.word_embeddings.weight),
    };
  }
  throw new TypeError(`${model.constructor.name} is not supported here; supported: GPT (gpt2), LLaMA/Qwen2, BERT`);
}
