/**
 * Token classification (NER-style tagging), as Hugging Face's BertForTokenClassification: the
 * encoder's hidden state at every position → dropout → a Linear `classifier` to one logit per tag.
 * Data are words with one tag each; a word may become several sub-tokens, and only its FIRST
 * sub-token carries the label (the others, [CLS], [SEP] and padding are ignored, −100 style), the
 * alignment HF's token-classification example uses. Which word a sub-token belongs to comes from the
 * tokenizer's character offsets: the words are joined with single spaces and each token is assigned
 * to the word its offsets overlap, so any pre-tokenizer (WordPiece, byte-level BPE with its leading
 * space, SentencePiece) aligns the same way.
 *
 * The metric is seqeval's (default, CoNLL-style) entity-level precision/recall/F1 over exact spans
 * decoded from BIO/IOBES tags, plus word-level accuracy.
 */
import { noGrad } from '../../tensor/autograd.js';
import { crossEntropy, dropout } from '../../tensor/index.js';
import { Tensor } from '../../tensor/tensor.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { BertForPreTraining } from '../../models/bert.js';
import type { Encoding } from '../../tokenizers/types.js';
import { type EmbeddingLM, embeddingLM } from '../peft/embedding-lm.js';
import type { DataRecord } from './data.js';

/** Labels at this value carry no loss (PyTorch's and transformers' default ignore index). */
export const TOKEN_IGNORE = -100;

/** What tagging needs from a tokenizer (src/tokenizers Tokenizer fits). */
export interface OffsetTokenizer {
  encodeFull(text: string, pair?: string | null, opts?: { addSpecialTokens?: boolean }): Encoding;
  tokenToId(token: string): number | undefined;
}

/** Special ids of an encoder-style input; cls/sep are null for a causal LM (no markers added). */
export interface SpecialIds {
  cls: number | null;
  sep: number | null;
  pad: number;
}

export function specialIds(tokenizer: { tokenToId(t: string): number | undefined }, kind: 'causal' | 'masked'): SpecialIds {
  const id = (t: string): number | null => tokenizer.tokenToId(t) ?? null;
  const cls = kind === 'masked' ? (id('[CLS]') ?? id('<s>')) : null;
  const sep = kind === 'masked' ? (id('[SEP]') ?? id('</s>')) : null;
  if (kind === 'masked' && (cls === null || sep === null)) throw new Error('a masked LM needs [CLS] and [SEP] (or <s> and </s>) in its tokenizer');
  return { cls, sep, pad: id('[PAD]') ?? id('<pad>') ?? 0 };
}

/**
 * Final hidden states [B, T, C] of a padded batch: BERT through its own embeddings (segment ids,
 * padding mask), GPT/LLaMA through their causal stack (right padding needs no mask).
 */
export function tokenStates(model: Module, lm: EmbeddingLM, ids: Tensor, attentionMask: Tensor, tokenTypeIds?: Tensor): Tensor {
  if (model instanceof BertForPreTraining) return model.encode(ids, tokenTypeIds === undefined ? { attentionMask } : { attentionMask, tokenTypeIds });
  return lm.hidden(lm.embed(ids));
}

/** One tagged example as model input. */
export interface TaggedExample {
  ids: number[];
  /** Per position: a tag index on each word's first sub-token, TOKEN_IGNORE elsewhere. */
  labels: number[];
  /** Per word: the position of its first sub-token, or −1 when truncated away or tokenless. */
  firstToken: number[];
}

/** Character spans of words joined by single spaces. */
function wordSpans(words: readonly string[]): { text: string; spans: [number, number][] } {
  const spans: [number, number][] = [];
  let pos = 0;
  for (const w of words) {
    spans.push([pos, pos + w.length]);
    pos += w.length + 1;
  }
  return { text: words.join(' '), spans };
}

/**
 * Words → [CLS] sub-tokens [SEP] (markers only for masked LMs), cut to maxLength, with each word's
 * tag on its first sub-token. `tags` are indices (or null when only the ids are wanted).
 */
export function encodeWords(tokenizer: OffsetTokenizer, special: SpecialIds, words: readonly string[], tags: readonly number[] | null, maxLength: number): TaggedExample {
  const { text, spans } = wordSpans(words);
  const enc = tokenizer.encodeFull(text, null, { addSpecialTokens: false });
  const markers = special.cls !== null ? 2 : 0;
  const room = maxLength - markers;
  if (room < 1) throw new RangeError(`--max-length ${maxLength} leaves no room for tokens`);
  const ids: number[] = special.cls !== null ? [special.cls] : [];
  const labels: number[] = special.cls !== null ? [TOKEN_IGNORE] : [];
  const firstToken = words.map(() => -1);
  let w = 0;
  for (let t = 0; t < enc.ids.length && ids.length - (markers > 0 ? 1 : 0) < room; t++) {
    const [s, e] = enc.offsets[t]!;
    // The word this token overlaps (offsets only grow; a zero-width token belongs to the word it sits in).
    while (w < spans.length && spans[w]![1] <= s) w++;
    const owner = w < spans.length && s < spans[w]![1] && Math.max(e, s + 1) > spans[w]![0] ? w : -1;
    const pos = ids.length;
    ids.push(enc.ids[t]!);
    if (owner >= 0 && firstToken[owner] === -1) {
      firstToken[owner] = pos;
      labels.push(tags === null ? TOKEN_IGNORE : tags[owner]!);
    } else {
      labels.push(TOKEN_IGNORE);
    }
  }
  if (special.sep !== null) {
    ids.push(special.sep);
    labels.push(TOKEN_IGNORE);
  }
  return { ids, labels, firstToken };
}

export interface TokenBatch {
  ids: Tensor;
  attentionMask: Tensor;
  labels: Tensor;
}

/** Right-pads examples into [B, T] ids, mask and labels (padding ignored). */
export function tokenBatch(examples: readonly { ids: number[]; labels: number[] }[], padId: number): TokenBatch {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(TOKEN_IGNORE);
  examples.forEach((e, b) => {
    ids.set(e.ids, b * T);
    mask.fill(1, b * T, b * T + e.ids.length);
    labels.set(e.labels, b * T);
  });
  return { ids: Tensor.fromArray(ids, [B, T], 'i32'), attentionMask: Tensor.fromArray(mask, [B, T], 'i32'), labels: Tensor.fromArray(labels, [B, T], 'i32') };
}

/** A pre-trained encoder (BERT) or causal LM (GPT, LLaMA) with a per-token Linear `classifier`. */
export class TokenClassifier extends Module {
  readonly model: Module;
  readonly lm: EmbeddingLM;
  readonly classifier: Linear;
  readonly special: SpecialIds;
  /** HF's classifier_dropout (BERT: hidden_dropout_prob). */
  readonly dropoutP: number;

  constructor(
    model: Module,
    tokenizer: OffsetTokenizer,
    readonly numLabels: number,
    private readonly generator: Generator = defaultGenerator,
  ) {
    super();
    this.model = this.registerModule('model', model);
    this.lm = embeddingLM(model);
    this.special = specialIds(tokenizer, this.lm.kind);
    this.classifier = this.registerModule('classifier', new Linear(this.lm.hiddenSize, numLabels, { generator }));
    this.dropoutP = model instanceof BertForPreTraining ? model.config.hiddenDropoutProb : 0.1;
  }

  /** Tag logits [B, T, numLabels]. */
  forward(ids: Tensor, attentionMask: Tensor, tokenTypeIds?: Tensor): Tensor {
    const h = tokenStates(this.model, this.lm, ids, attentionMask, tokenTypeIds);
    return this.classifier.forward(dropout(h, this.dropoutP, { training: this.training, generator: this.generator }));
  }

  /** Mean cross-entropy over the labelled positions (BertForTokenClassification's loss). */
  loss(batch: TokenBatch, tokenTypeIds?: Tensor): Tensor {
    const logits = this.forward(batch.ids, batch.attentionMask, tokenTypeIds);
    const [B, T, K] = logits.shape as [number, number, number];
    return crossEntropy(logits.reshape([B * T, K]), batch.labels.reshape([B * T]), { ignoreIndex: TOKEN_IGNORE });
  }

  /** The best tag index of every word (words without a scored sub-token get `fallback`). */
  predict(examples: readonly TaggedExample[], fallback: number, batchSize = 32): number[][] {
    const out: number[][] = [];
    for (let i = 0; i < examples.length; i += batchSize) {
      const chunk = examples.slice(i, i + batchSize);
      const batch = tokenBatch(chunk, this.special.pad);
      const logits = this.forward(batch.ids, batch.attentionMask);
      const [, T, K] = logits.shape as [number, number, number];
      const d = logits.dense();
      chunk.forEach((e, b) =>
        out.push(
          e.firstToken.map((pos) => {
            if (pos < 0) return fallback;
            const base = (b * T + pos) * K;
            let best = 0;
            for (let k = 1; k < K; k++) if (d[base + k]! > d[base + best]!) best = k;
            return best;
          }),
        ),
      );
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Data: words + tags, or text + character-span entities
// ---------------------------------------------------------------------------------------------

export interface TaggedWords {
  words: string[];
  tags: string[];
}

function stringList(v: unknown, what: string, i: number, source: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' && typeof x !== 'number')) {
    throw new Error(`${source}: record ${i + 1}: '${what}' must be an array of strings`);
  }
  return v.map(String);
}

/** Whitespace-separated words of `text` with their character spans. */
export function splitWords(text: string): { words: string[]; spans: [number, number][] } {
  const words: string[] = [];
  const spans: [number, number][] = [];
  for (const m of text.matchAll(/\S+/g)) {
    words.push(m[0]);
    spans.push([m.index, m.index + m[0].length]);
  }
  return { words, spans };
}

/**
 * One record as words and BIO tags: `{tokens: [...], tags: [...]}` (field names mapped), or
 * `{text, entities: [{start, end, label}]}` whose character spans become B-/I- tags on the
 * whitespace words they overlap.
 */
export function taggedWords(r: DataRecord, i: number, source: string, fields: { tokens: string; tags: string; text: string }): TaggedWords {
  if (r[fields.tokens] !== undefined) {
    const words = stringList(r[fields.tokens], fields.tokens, i, source);
    const tags = stringList(r[fields.tags], fields.tags, i, source);
    if (tags.length !== words.length) throw new Error(`${source}: record ${i + 1} has ${words.length} words but ${tags.length} tags`);
    return { words, tags };
  }
  if (typeof r[fields.text] === 'string' && Array.isArray(r.entities)) {
    const { words, spans } = splitWords(r[fields.text] as string);
    const tags = words.map(() => 'O');
    for (const ent of r.entities as unknown[]) {
      const e = ent as { start?: unknown; end?: unknown; label?: unknown };
      if (typeof e.start !== 'number' || typeof e.end !== 'number' || typeof e.label !== 'string' || e.end <= e.start) {
        throw new Error(`${source}: record ${i + 1}: each entity needs numeric start < end and a string label, got ${JSON.stringify(ent)}`);
      }
      let first = true;
      spans.forEach(([s, t], w) => {
        if (s < (e.end as number) && t > (e.start as number)) {
          tags[w] = `${first ? 'B' : 'I'}-${e.label as string}`;
          first = false;
        }
      });
    }
    return { words, tags };
  }
  throw new Error(`${source}: record ${i + 1} has neither '${fields.tokens}' + '${fields.tags}' nor '${fields.text}' + 'entities' (fields: ${Object.keys(r).join(', ')}); map yours with --tokens-field/--tags-field/--text-field`);
}

// ---------------------------------------------------------------------------------------------
// Metric: seqeval's entity-level scores
// ---------------------------------------------------------------------------------------------

/** An entity: [type, first index, last index] (inclusive), as seqeval's get_entities. */
export type Entity = [string, number, number];

function endOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (prevTag === 'E' || prevTag === 'S') return true;
  if ((prevTag === 'B' || prevTag === 'I') && (tag === 'B' || tag === 'S' || tag === 'O')) return true;
  return prevTag !== 'O' && prevTag !== '.' && prevType !== type;
}

function startOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (tag === 'B' || tag === 'S') return true;
  if ((prevTag === 'E' || prevTag === 'S' || prevTag === 'O') && (tag === 'E' || tag === 'I')) return true;
  return tag !== 'O' && tag !== '.' && prevType !== type;
}

/** Entities of BIO/IOBES tags in seqeval's default (CoNLL-style) reading: a stray I- starts an entity. */
export function getEntities(tags: readonly string[]): Entity[] {
  const out: Entity[] = [];
  let prevTag = 'O';
  let prevType = '';
  let begin = 0;
  [...tags, 'O'].forEach((chunk, i) => {
    const tag = chunk.slice(0, 1);
    const rest = chunk.slice(1);
    const dash = rest.indexOf('-');
    const type = (dash >= 0 ? rest.slice(dash + 1) : rest) || '_';
    if (endOfChunk(prevTag, tag, prevType, type)) out.push([prevType, begin, i - 1]);
    if (startOfChunk(prevTag, tag, prevType, type)) begin = i;
    prevTag = tag;
    prevType = type;
  });
  return out;
}

export interface EntityScores {
  precision: number;
  recall: number;
  f1: number;
  /** Fraction of words whose tag is right. */
  accuracy: number;
}

/** Micro-averaged entity precision/recall/F1 (exact type and span) over sentences, and word accuracy. */
export function entityScores(gold: readonly (readonly string[])[], pred: readonly (readonly string[])[]): EntityScores {
  if (gold.length !== pred.length) throw new RangeError(`entityScores: ${gold.length} gold sentences, ${pred.length} predicted`);
  let nGold = 0;
  let nPred = 0;
  let nCorrect = 0;
  let words = 0;
  let right = 0;
  gold.forEach((g, s) => {
    const p = pred[s]!;
    if (p.length !== g.length) throw new RangeError(`entityScores: sentence ${s + 1} has ${g.length} gold tags, ${p.length} predicted`);
    const ge = getEntities(g);
    const pe = new Set(getEntities(p).map((e) => e.join('\u0000')));
    nGold += ge.length;
    nPred += pe.size;
    for (const e of ge) if (pe.has(e.join('\u0000'))) nCorrect++;
    words += g.length;
    for (let i = 0; i < g.length; i++) if (g[i] === p[i]) right++;
  });
  const precision = nPred === 0 ? 0 : nCorrect / nPred;
  const recall = nGold === 0 ? 0 : nCorrect / nGold;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1, accuracy: words === 0 ? 0 : right / words };
}

// ---------------------------------------------------------------------------------------------
// The task as `weft finetune` runs it
// ---------------------------------------------------------------------------------------------

/** What a task hands the shared loop: the module to train, a batch loss and the validation. */
export interface TaskSetup {
  root: Module;
  lossOf: (batch: DataRecord[]) => Tensor;
  evaluate: () => { metric: number; metrics: Record<string, number> };
}

export interface TokensFields {
  tokens: string;
  tags: string;
  text: string;
}

export const DEFAULT_TOKENS_FIELDS: TokensFields = { tokens: 'tokens', tags: 'tags', text: 'text' };

/** Word tagging with a rebuilt or new head: tag index ↔ name, the fallback for untokenised words. */
export class Tagger {
  constructor(
    readonly classifier: TokenClassifier,
    readonly tokenizer: OffsetTokenizer,
    readonly labels: readonly string[],
    readonly maxLength: number,
  ) {}

  encode(words: readonly string[], tags: readonly string[] | null): TaggedExample {
    // Never longer than the model's positions (GPT's block size, BERT's max_position_embeddings).
    const maxLength = Math.min(this.maxLength, this.classifier.lm.maxLength);
    return encodeWords(this.tokenizer, this.classifier.special, words, tags === null ? null : tags.map((t) => this.labels.indexOf(t)), maxLength);
  }

  /** Tags of every word of every sentence. */
  tag(sentences: readonly (readonly string[])[]): string[][] {
    const fallback = Math.max(0, this.labels.indexOf('O'));
    return this.classifier.predict(sentences.map((w) => this.encode(w, null)), fallback).map((row) => row.map((k) => this.labels[k]!));
  }
}

export function setupTokensTask(
  model: Module,
  tokenizer: OffsetTokenizer,
  o: { train: DataRecord[]; eval: DataRecord[]; trainSource: string; evalSource: string; fields: TokensFields; maxLength: number; generator: Generator },
): TaskSetup & { tagger: Tagger } {
  const read = (rs: DataRecord[], src: string): TaggedWords[] => rs.map((r, i) => taggedWords(r, i, src, o.fields));
  const train = read(o.train, o.trainSource);
  const evalSet = read(o.eval, o.evalSource);
  const labels = [...new Set(train.flatMap((t) => t.tags))].sort();
  if (labels.length < 2) throw new Error(`${o.trainSource}: ${labels.length} distinct tag(s); token classification needs at least 2`);
  evalSet.forEach((t, i) => {
    const unknown = t.tags.find((tag) => !labels.includes(tag));
    if (unknown !== undefined) throw new Error(`${o.evalSource}: record ${i + 1} has tag ${JSON.stringify(unknown)}, not one of the training tags ${labels.join(', ')}`);
  });
  const clf = new TokenClassifier(model, tokenizer, labels.length, o.generator);
  const tagger = new Tagger(clf, tokenizer, labels, o.maxLength);
  const encoded = new Map(o.train.map((r, i) => [r, tagger.encode(train[i]!.words, train[i]!.tags)]));
  return {
    root: clf,
    tagger,
    lossOf: (batch) => clf.loss(tokenBatch(batch.map((r) => encoded.get(r)!), clf.special.pad)),
    evaluate: () => {
      const pred = noGrad(() => tagger.tag(evalSet.map((t) => t.words)));
      const s = entityScores(
        evalSet.map((t) => t.tags),
        pred,
      );
      return { metric: s.f1, metrics: { f1: s.f1, precision: s.precision, recall: s.recall, accuracy: s.accuracy } };
    },
  };
}
