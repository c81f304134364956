/**
 * Causal-LM post-training: supervised fine-tuning on (prompt, response) pairs with the loss on the
 * response tokens only (TRL's completion-only collator), and DPO (Rafailov et al. 2023) on
 * (prompt, chosen, rejected) triples against a frozen reference model.
 */
import { crossEntropy, log, mul, neg, sigmoid, sub, sum } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { EmbeddingLM } from '../peft/embedding-lm.js';
import type { PromptEmbedding } from '../peft/prompt-tuning.js';

/** Ids not scored by the loss. */
export const SFT_IGNORE = -1;

/** The default instruction format (Alpaca-style) for models without a chat template. */
export const DEFAULT_SFT_TEMPLATE = '### Instruction:\n{prompt}\n\n### Response:\n';

export interface SFTTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
}

export interface LabelledSequence {
  ids: number[];
  /** Same length as ids: the id to score at that position's *input*, or SFT_IGNORE. */
  labels: number[];
}

/**
 * ids = template(prompt) ‖ response ‖ eos, labels = SFT_IGNORE over the prompt and the response ids
 * (and eos) where they sit. Truncates the response (never the prompt) to maxLength; refuses a prompt
 * that alone overflows.
 */
export function sftExample(tokenizer: SFTTokenizer, prompt: string, response: string, options: { template?: string; eosId: number | null; maxLength: number }): LabelledSequence {
  const template = options.template ?? DEFAULT_SFT_TEMPLATE;
  if (!template.includes('{prompt}')) throw new RangeError(`SFT template must contain {prompt}: ${JSON.stringify(template)}`);
  const promptIds = tokenizer.encode(template.replace('{prompt}', prompt), { addSpecialTokens: false });
  let responseIds = tokenizer.encode(response, { addSpecialTokens: false });
  if (options.eosId !== null) responseIds = [...responseIds, options.eosId];
  if (promptIds.length >= options.maxLength) {
    throw new RangeError(`SFT: a prompt is ${promptIds.length} tokens, over --max-length ${options.maxLength}; raise it or shorten the prompt`);
  }
  responseIds = responseIds.slice(0, options.maxLength - promptIds.length);
  return { ids: [...promptIds, ...responseIds], labels: [...promptIds.map(() => SFT_IGNORE), ...responseIds] };
}

/** Right-pads sequences into ids [B, T] and next-token targets [B, T] (the label of position t + 1). */
export function causalBatch(seqs: readonly LabelledSequence[], padId = 0): { ids: Tensor; targets: Tensor } {
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(SFT_IGNORE);
  seqs.forEach((s, b) => {
    ids.set(s.ids, b * T);
    for (let t = 0; t + 1 < s.ids.length; t++) targets[b * T + t] = s.labels[t + 1]!;
  });
  return { ids: Tensor.fromArray(ids, [B, T], 'i32'), targets: Tensor.fromArray(targets, [B, T], 'i32') };
}

/** Next-token logits [B, L, V] of ids [B, T], with a prompt's P virtual tokens in front (L = P + T). */
function causalLogits(lm: EmbeddingLM, ids: Tensor, prompt: PromptEmbedding | null): Tensor {
  const e = lm.embed(ids);
  return lm.logits(lm.hidden(prompt === null ? e : prompt.prepend(e)));
}

/** Targets aligned to a prompt-prefixed sequence: the last virtual token predicts the first real one. */
function shiftForPrompt(targets: Tensor, P: number): Tensor {
  if (P === 0) return targets;
  const [B, T] = targets.shape as [number, number];
  const src = targets.i32('shiftForPrompt');
  const out = new Int32Array(B * (P + T)).fill(SFT_IGNORE);
  // The virtual tokens predict nothing: ids[0] is always prompt text, never a scored response token.
  for (let b = 0; b < B; b++) out.set(src.subarray(b * T, (b + 1) * T), b * (P + T) + P);
  return Tensor.fromArray(out, [B, P + T], 'i32');
}

/** Mean cross-entropy over the scored (response) tokens. */
export function sftLoss(lm: EmbeddingLM, batch: { ids: Tensor; targets: Tensor }, prompt: PromptEmbedding | null = null): Tensor {
  const logits = causalLogits(lm, batch.ids, prompt);
  const [B, L, V] = logits.shape as [number, number, number];
  const targets = shiftForPrompt(batch.targets, prompt?.numVirtualTokens ?? 0);
  return crossEntropy(logits.reshape([B * L, V]), targets.reshape([B * L]), { ignoreIndex: SFT_IGNORE });
}

/** Σ log p(target) over each row's scored tokens: [B] (the sequence log-likelihood of the responses). */
export function sequenceLogProbs(lm: EmbeddingLM, batch: { ids: Tensor; targets: Tensor }, prompt: PromptEmbedding | null = null): Tensor {
  const logits = causalLogits(lm, batch.ids, prompt);
  const [B, L, V] = logits.shape as [number, number, number];
  const targets = shiftForPrompt(batch.targets, prompt?.numVirtualTokens ?? 0);
  // Ignored targets contribute 0 to 'none' reductions.
  const nll = crossEntropy(logits.reshape([B * L, V]), targets.reshape([B * L]), { ignoreIndex: SFT_IGNORE, reduction: 'none' });
  return neg(sum(nll.reshape([B, L]), [1]));
}

export interface DPOStats {
  loss: Tensor;
  /** Fraction of pairs whose implicit reward prefers the chosen response. */
  rewardAccuracy: number;
  /** Mean β·(log-ratio chosen − log-ratio rejected). */
  rewardMargin: number;
  chosenReward: number;
  rejectedReward: number;
}

/**
 * DPO loss −log σ(β[(log πθ(y_w|x) − log π_ref(y_w|x)) − (log πθ(y_l|x) − log π_ref(y_l|x))]), mean over
 * pairs; reference log-probs are constants (computed without a graph).
 */
export function dpoLoss(policyChosen: Tensor, policyRejected: Tensor, refChosen: Float32Array, refRejected: Float32Array, beta: number): DPOStats {
  const n = policyChosen.shape[0]!;
  const ratioC = sub(policyChosen, Tensor.fromArray(refChosen, [n]));
  const ratioR = sub(policyRejected, Tensor.fromArray(refRejected, [n]));
  const z = mul(sub(ratioC, ratioR), beta);
  const loss = neg(sum(log(sigmoid(z)))).div(n);
  const c = ratioC.dense();
  const r = ratioR.dense();
  let acc = 0;
  let margin = 0;
  let cr = 0;
  let rr = 0;
  for (let i = 0; i < n; i++) {
    acc += c[i]! > r[i]! ? 1 : 0;
    margin += beta * (c[i]! - r[i]!);
    cr += beta * c[i]!;
    rr += beta * r[i]!;
  }
  return { loss, rewardAccuracy: acc / n, rewardMargin: margin / n, chosenReward: cr / n, rejectedReward: rr / n };
}
