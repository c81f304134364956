/**
 * Masked-language-model corruption (BERT §3.1, Google's create_pretraining_data.py): of the tokens
 * that are not special ([CLS], [SEP], [PAD], …), exactly round(15%) — at least one — are chosen
 * uniformly without replacement. Each chosen token becomes the prediction target; its input is
 * [MASK] 80% of the time, a random ordinary token 10% of the time, and left unchanged 10% of the time
 * (so the model must keep a good representation of every input token, not only of [MASK]).
 */
import { defaultGenerator, type Generator } from '../../tensor/random.js';

/** Label at positions that are not predicted (PyTorch's and Hugging Face's ignore index). */
export const MLM_IGNORE = -100;

export interface MLMOptions {
  /** Id of the [MASK] token. */
  maskId: number;
  /** Vocabulary size: random replacements are drawn from the non-special ids in [0, vocabSize). */
  vocabSize: number;
  /** Ids never chosen for prediction nor drawn as random replacements ([CLS], [SEP], [PAD], [MASK], [UNK], …). */
  specialIds: Iterable<number>;
  /** Fraction of the candidate tokens to predict (default 0.15). */
  maskProb?: number;
  /** Of those: replaced by [MASK] (default 0.8) … */
  maskReplaceProb?: number;
  /** … replaced by a random token (default 0.1); the rest are kept. */
  randomReplaceProb?: number;
  generator?: Generator;
}

export interface MLMExample {
  /** The corrupted input ids. */
  inputIds: Int32Array;
  /** The original id at each predicted position, MLM_IGNORE elsewhere. */
  labels: Int32Array;
}

/** A reusable masker: the option checks and the table of replacement ids are built once. */
export class MLMMasker {
  private readonly special: Set<number>;
  private readonly ordinary: Int32Array;
  private readonly maskProb: number;
  private readonly maskReplaceProb: number;
  private readonly randomReplaceProb: number;
  private readonly generator: Generator;

  constructor(readonly options: MLMOptions) {
    const op = 'MLMMasker';
    const { maskId, vocabSize } = options;
    this.maskProb = options.maskProb ?? 0.15;
    this.maskReplaceProb = options.maskReplaceProb ?? 0.8;
    this.randomReplaceProb = options.randomReplaceProb ?? 0.1;
    this.generator = options.generator ?? defaultGenerator;
    if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`${op}: vocabSize must be a positive integer, got ${vocabSize}`);
    if (!Number.isInteger(maskId) || maskId < 0 || maskId >= vocabSize) throw new RangeError(`${op}: maskId ${maskId} is outside the vocabulary [0, ${vocabSize})`);
    if (!(this.maskProb > 0 && this.maskProb <= 1)) throw new RangeError(`${op}: maskProb must be in (0, 1], got ${this.maskProb}`);
    const [a, b] = [this.maskReplaceProb, this.randomReplaceProb];
    if (!(a >= 0 && b >= 0 && a + b <= 1)) throw new RangeError(`${op}: maskReplaceProb ${a} and randomReplaceProb ${b} must be ≥ 0 with a sum ≤ 1`);
    this.special = new Set(options.specialIds);
    this.special.add(maskId);
    const ordinary: number[] = [];
    for (let id = 0; id < vocabSize; id++) if (!this.special.has(id)) ordinary.push(id);
    if (ordinary.length === 0 && b > 0) throw new RangeError(`${op}: every id is special; there is no ordinary token to draw random replacements from`);
    this.ordinary = Int32Array.from(ordinary);
  }

  /** Corrupts one sequence (not modified). Special-token positions are never chosen. */
  mask(ids: ArrayLike<number>): MLMExample {
    const g = this.generator;
    const n = ids.length;
    const inputIds = Int32Array.from(ids);
    const labels = new Int32Array(n).fill(MLM_IGNORE);
    const candidates: number[] = [];
    for (let i = 0; i < n; i++) if (!this.special.has(inputIds[i]!)) candidates.push(i);
    if (candidates.length === 0) return { inputIds, labels };
    const count = Math.min(candidates.length, Math.max(1, Math.round(candidates.length * this.maskProb)));
    // Partial Fisher–Yates: the first `count` entries become a uniform sample without replacement.
    for (let k = 0; k < count; k++) {
      const j = g.int(k, candidates.length);
      const tmp = candidates[k]!;
      candidates[k] = candidates[j]!;
      candidates[j] = tmp;
      const pos = candidates[k]!;
      labels[pos] = inputIds[pos]!;
      const r = g.uniform();
      if (r < this.maskReplaceProb) inputIds[pos] = this.options.maskId;
      else if (r < this.maskReplaceProb + this.randomReplaceProb) inputIds[pos] = this.ordinary[g.int(0, this.ordinary.length)]!;
    }
    return { inputIds, labels };
  }
}

/** One-shot form of MLMMasker.mask. */
export function maskTokens(ids: ArrayLike<number>, options: MLMOptions): MLMExample {
  return new MLMMasker(options).mask(ids);
}
