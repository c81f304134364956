/**
 * Sequence classification on a pre-trained model, two ways:
 *  - 'head': a new linear layer on a pooled representation — BERT's [CLS] (through its pooler, as
 *    BertForSequenceClassification) or a causal LM's last real token (GPT2ForSequenceClassification).
 *  - 'verbalizer': the task phrased as the pre-training task (Schick & Schütze 2021; the prompt-tuning
 *    setting of Lester et al. 2021): "Sentence: … Sentiment: [MASK]" for a masked LM, or
 *    "Sentence: … Sentiment:" for a causal LM, and the class is the label word (" positive" /
 *    " negative") the LM head scores highest at that slot. No new weights: the LM head decides.
 * Optional trainable prompt embeddings (prompt tuning) or per-layer prefixes (prefix tuning) go in
 * front of the input either way.
 */
import { concat, crossEntropy, dropout, indexSelect } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { BertForPreTraining } from '../../models/bert.js';
import { type EmbeddingLM, embeddingLM } from '../peft/embedding-lm.js';
import type { PromptEmbedding } from '../peft/prompt-tuning.js';

/** What classification needs from a tokenizer (HF tokenizers fit). */
export interface ClassifierTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  tokenToId(token: string): number | undefined;
}

export type ClassifierMode = { kind: 'head' } | { kind: 'verbalizer'; template: string; labelWords: readonly string[] };

/** The default verbalizer template: {text} is the input, the label word follows. */
export const DEFAULT_TEMPLATE = 'Sentence: {text} Sentiment:';

export interface Batch {
  /** Right-padded ids [B, T]. */
  ids: Tensor;
  /** [B, T] 1 for real tokens (masked LMs need it). */
  attentionMask: Tensor;
  /** Index of the position that decides the class in each row (the [MASK], the last token or [CLS]). */
  slots: number[];
}

export class SequenceClassifier extends Module {
  readonly model: Module;
  readonly lm: EmbeddingLM;
  /** 'head' mode only. */
  readonly classifier: Linear | null;
  /** Token ids of the label words ('verbalizer' mode). */
  readonly labelTokenIds: number[];
  /** Trainable virtual tokens in front of the input (prompt tuning); set with usePrompt. */
  prompt: PromptEmbedding | null = null;
  private readonly special: { cls: number | null; sep: number | null; mask: number | null; pad: number };

  constructor(
    model: Module,
    readonly tokenizer: ClassifierTokenizer,
    readonly numLabels: number,
    readonly mode: ClassifierMode,
    private readonly generator: Generator = defaultGenerator,
  ) {
    super();
    this.model = this.registerModule('model', model);
    this.lm = embeddingLM(model);
    const id = (t: string): number | null => tokenizer.tokenToId(t) ?? null;
    this.special = { cls: id('[CLS]'), sep: id('[SEP]'), mask: id('[MASK]'), pad: id('[PAD]') ?? 0 };
    if (this.lm.kind === 'masked' && (this.special.cls === null || this.special.sep === null)) {
      throw new Error('classification with a masked LM needs [CLS] and [SEP] in the tokenizer');
    }
    if (mode.kind === 'head') {
      this.classifier = this.registerModule('classifier', new Linear(this.lm.hiddenSize, numLabels, { generator, bias: this.lm.kind === 'masked' }));
      this.labelTokenIds = [];
    } else {
      this.classifier = null;
      if (mode.labelWords.length !== numLabels) throw new RangeError(`verbalizer: ${mode.labelWords.length} label words for ${numLabels} labels`);
      if (this.lm.kind === 'masked' && this.special.mask === null) throw new Error('a masked-LM verbalizer needs [MASK] in the tokenizer');
      if (!mode.template.includes('{text}')) throw new RangeError(`verbalizer template must contain {text}: ${JSON.stringify(mode.template)}`);
      this.labelTokenIds = mode.labelWords.map((w) => {
        // A causal LM predicts the word with its leading space; a WordPiece MLM the bare word.
        const ids = tokenizer.encode(this.lm.kind === 'causal' ? ` ${w.trim()}` : w.trim(), { addSpecialTokens: false });
        if (ids.length === 0) throw new RangeError(`verbalizer: label word ${JSON.stringify(w)} encodes to no tokens`);
        return ids[0]!;
      });
      if (new Set(this.labelTokenIds).size !== this.labelTokenIds.length) {
        throw new RangeError(`verbalizer: label words ${JSON.stringify(mode.labelWords)} share a first token; choose words that differ in their first token`);
      }
    }
  }

  usePrompt(prompt: PromptEmbedding): void {
    if (prompt.hiddenSize !== this.lm.hiddenSize) throw new RangeError(`prompt is ${prompt.hiddenSize} wide, the model ${this.lm.hiddenSize}`);
    this.prompt = this.registerModule('prompt', prompt);
  }

  /** Token ids of one example (without padding) and the index of its deciding slot. */
  encodeExample(text: string, maxLength: number): { ids: number[]; slot: number } {
    const { cls, sep, mask } = this.special;
    const reserve = this.prompt?.numVirtualTokens ?? 0;
    const budget = Math.min(maxLength, this.lm.maxLength - reserve);
    const enc = (s: string): number[] => this.tokenizer.encode(s, { addSpecialTokens: false });
    if (this.mode.kind === 'head') {
      if (this.lm.kind === 'masked') {
        const body = enc(text).slice(0, budget - 2);
        return { ids: [cls!, ...body, sep!], slot: 0 };
      }
      const body = enc(text).slice(0, budget);
      if (body.length === 0) throw new RangeError('classification: empty input text');
      return { ids: body, slot: body.length - 1 };
    }
    const [before, after] = this.mode.template.split('{text}') as [string, string];
    const pre = enc(before);
    const post = enc(after);
    const fixed = pre.length + post.length + (this.lm.kind === 'masked' ? 3 : 0);
    // The text is truncated, never the template or the slot.
    const body = enc(before.length > 0 && !before.endsWith(' ') ? ` ${text}` : text).slice(0, Math.max(0, budget - fixed));
    if (this.lm.kind === 'masked') {
      const ids = [cls!, ...pre, ...body, ...post, mask!, sep!];
      return { ids, slot: ids.length - 2 };
    }
    const ids = [...pre, ...body, ...post];
    return { ids, slot: ids.length - 1 };
  }

  makeBatch(texts: readonly string[], maxLength: number): Batch {
    const encoded = texts.map((t) => this.encodeExample(t, maxLength));
    const T = Math.max(...encoded.map((e) => e.ids.length));
    const B = texts.length;
    const ids = new Int32Array(B * T).fill(this.special.pad);
    const mask = new Int32Array(B * T);
    encoded.forEach((e, b) => {
      ids.set(e.ids, b * T);
      mask.fill(1, b * T, b * T + e.ids.length);
    });
    return { ids: Tensor.fromArray(ids, [B, T], 'i32'), attentionMask: Tensor.fromArray(mask, [B, T], 'i32'), slots: encoded.map((e) => e.slot) };
  }

  /** Class logits [B, numLabels]. */
  forward(batch: Batch): Tensor {
    const [B, T] = batch.ids.shape as [number, number];
    let embeds = this.lm.embed(batch.ids);
    let mask = batch.attentionMask;
    let offset = 0;
    if (this.prompt !== null) {
      embeds = this.prompt.prepend(embeds);
      offset = this.prompt.numVirtualTokens;
      mask = concat([Tensor.fromArray(new Int32Array(B * offset).fill(1), [B, offset], 'i32'), mask], 1);
    }
    const hidden = this.lm.hidden(embeds, this.lm.kind === 'masked' ? mask : undefined);
    const L = T + offset;
    const C = this.lm.hiddenSize;
    // The deciding position of each row, gathered from the flattened [B·L, C] states.
    const rows = Tensor.fromArray(Int32Array.from(batch.slots.map((s, b) => b * L + s + offset)), [B], 'i32');
    const picked = indexSelect(hidden.reshape([B * L, C]), 0, rows);
    if (this.classifier !== null) {
      let pooled = picked;
      if (this.model instanceof BertForPreTraining && this.model.bert.pooler !== null) {
        pooled = this.model.bert.pooler.dense.forward(picked).tanh();
      }
      return this.classifier.forward(dropout(pooled, 0.1, { training: this.training, generator: this.generator }));
    }
    const vocabLogits = this.lm.logits(picked);
    return indexSelect(vocabLogits, 1, Tensor.fromArray(Int32Array.from(this.labelTokenIds), [this.labelTokenIds.length], 'i32'));
  }

  loss(batch: Batch, labels: readonly number[]): Tensor {
    return crossEntropy(this.forward(batch), Tensor.fromArray(Int32Array.from(labels), [labels.length], 'i32'));
  }

  /** Predicted class of each text. */
  predict(texts: readonly string[], maxLength: number, batchSize = 32): number[] {
    const out: number[] = [];
    for (let i = 0; i < texts.length; i += batchSize) {
      const logits = this.forward(this.makeBatch(texts.slice(i, i + batchSize), maxLength));
      const [B, K] = logits.shape as [number, number];
      const d = logits.dense();
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (d[b * K + k]! > d[b * K + best]!) best = k;
        out.push(best);
      }
    }
    return out;
  }
}
