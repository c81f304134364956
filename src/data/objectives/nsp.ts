/**
 * Next-sentence prediction (BERT §3.1): a pair [CLS] A [SEP] B [SEP] where B is the sentence that
 * really follows A in its document half of the time (label 0, IsNext) and a sentence from another
 * document otherwise (label 1, NotNext) — Hugging Face's next_sentence_label convention. Segment ids
 * are 0 for [CLS] A [SEP] and 1 for B [SEP]; the pair is truncated to maxLength (the longer segment
 * loses tokens from its end) and padded with [PAD] (attention mask 0).
 */
import { defaultGenerator, type Generator } from '../../tensor/random.js';

export const IS_NEXT = 0;
export const NOT_NEXT = 1;

export interface NSPOptions {
  clsId: number;
  sepId: number;
  padId: number;
  /** Length of every example, padding included (at least 5: [CLS] a [SEP] b [SEP]). */
  maxLength: number;
  /** Probability that B is the real next sentence (default 0.5). */
  nextProb?: number;
  generator?: Generator;
}

export interface NSPExample {
  ids: Int32Array;
  tokenTypeIds: Int32Array;
  /** 1 = token, 0 = padding. */
  attentionMask: Int32Array;
  /** IS_NEXT (0) or NOT_NEXT (1). */
  label: number;
  /** Where A came from, and B (document, sentence). */
  a: { doc: number; sentence: number };
  b: { doc: number; sentence: number };
}

/** Lays out [CLS] A [SEP] B [SEP] [PAD]…, truncating the longer segment first so the pair fits. */
export function packPair(a: ArrayLike<number>, b: ArrayLike<number>, options: Pick<NSPOptions, 'clsId' | 'sepId' | 'padId' | 'maxLength'>): Pick<NSPExample, 'ids' | 'tokenTypeIds' | 'attentionMask'> {
  const { clsId, sepId, padId, maxLength } = options;
  if (!Number.isInteger(maxLength) || maxLength < 5) throw new RangeError(`NSP: maxLength must be an integer ≥ 5 ([CLS] a [SEP] b [SEP]), got ${maxLength}`);
  let la = a.length;
  let lb = b.length;
  if (la === 0 || lb === 0) throw new RangeError('NSP: both segments need at least one token');
  while (la + lb > maxLength - 3) {
    if (la >= lb) la--;
    else lb--;
  }
  const ids = new Int32Array(maxLength).fill(padId);
  const tokenTypeIds = new Int32Array(maxLength);
  const attentionMask = new Int32Array(maxLength);
  let p = 0;
  ids[p++] = clsId;
  for (let i = 0; i < la; i++) ids[p++] = a[i]!;
  ids[p++] = sepId;
  const bStart = p;
  for (let i = 0; i < lb; i++) ids[p++] = b[i]!;
  ids[p++] = sepId;
  tokenTypeIds.fill(1, bStart, p);
  attentionMask.fill(1, 0, p);
  return { ids, tokenTypeIds, attentionMask };
}

/** Draws NSP pairs from documents given as lists of tokenized sentences. */
export class NSPSampler {
  private readonly starts: { doc: number; sentence: number }[] = [];
  private readonly generator: Generator;
  private readonly nextProb: number;

  constructor(
    readonly documents: readonly (readonly (readonly number[])[])[],
    readonly options: NSPOptions,
  ) {
    this.generator = options.generator ?? defaultGenerator;
    this.nextProb = options.nextProb ?? 0.5;
    if (!(this.nextProb >= 0 && this.nextProb <= 1)) throw new RangeError(`NSPSampler: nextProb must be in [0, 1], got ${this.nextProb}`);
    const nonEmpty = documents.filter((d) => d.some((s) => s.length > 0)).length;
    if (nonEmpty < 2) throw new RangeError(`NSPSampler: need at least 2 documents with text (random next sentences come from another document), got ${nonEmpty}`);
    documents.forEach((doc, d) => {
      for (let s = 0; s + 1 < doc.length; s++) if (doc[s]!.length > 0 && doc[s + 1]!.length > 0) this.starts.push({ doc: d, sentence: s });
    });
    if (this.starts.length === 0) throw new RangeError('NSPSampler: no document has two consecutive non-empty sentences');
  }

  sample(): NSPExample {
    const g = this.generator;
    const a = this.starts[g.int(0, this.starts.length)]!;
    const label = g.uniform() < this.nextProb ? IS_NEXT : NOT_NEXT;
    let b: { doc: number; sentence: number };
    if (label === IS_NEXT) {
      b = { doc: a.doc, sentence: a.sentence + 1 };
    } else {
      // A sentence from another document (rejection: documents are few and rarely all empty).
      for (;;) {
        const doc = g.int(0, this.documents.length - 1);
        const d = doc >= a.doc ? doc + 1 : doc;
        const sentences = this.documents[d]!;
        if (sentences.length === 0) continue;
        const s = g.int(0, sentences.length);
        if (sentences[s]!.length > 0) {
          b = { doc: d, sentence: s };
          break;
        }
      }
    }
    const packed = packPair(this.documents[a.doc]![a.sentence]!, this.documents[b.doc]![b.sentence]!, this.options);
    return { ...packed, label, a, b };
  }
}
