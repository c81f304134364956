/**
 * BPE trainer with Hugging Face `tokenizers` semantics (models/bpe/trainer.rs):
 *   1. special tokens take the first ids, in the order given;
 *   2. the alphabet — every character of the corpus plus `initialAlphabet`, cut to the
 *      `limitAlphabet` most frequent (the initial alphabet counts as infinitely frequent) — follows,
 *      sorted by code point; characters left out of it are dropped from the words;
 *   3. each word becomes its characters (with `continuingSubwordPrefix` on all but the first and
 *      `endOfWordSuffix` on the last, new ids as they appear);
 *   4. merges: repeatedly the pair with the highest count (ties: the smallest (left id, right id),
 *      as HF's `Merge` ordering) becomes a new token, until the vocabulary reaches `vocabSize`, no
 *      pair is left, or the best count is below `minFrequency`.
 *
 * Speed: pair counts are kept up to date incrementally — merging a pair in a word only changes the
 * counts of the pairs touching it — and a max-heap holds (count, pair) entries that are checked
 * lazily: an entry whose count is stale is re-queued with the current count when it surfaces. Each
 * pair knows which words contain it, so a merge visits only those words. No step recounts the corpus.
 */
import {
  alphabetChars,
  checkNonNegativeInt,
  checkSpecialTokens,
  checkVocabSize,
  type ProgressCallback,
  type WordCounts,
} from './common.js';

export interface BpeTrainerOptions {
  /** Target vocabulary size, special tokens included (HF default 30000). */
  vocabSize?: number;
  /** Pairs seen fewer times than this are never merged (HF default 0). */
  minFrequency?: number;
  /** Tokens that take the first ids, in this order. */
  specialTokens?: readonly string[];
  /** Keep at most this many distinct characters (the most frequent). */
  limitAlphabet?: number;
  /** Characters always in the alphabet, even when absent from the corpus. */
  initialAlphabet?: Iterable<string>;
  /** Marks tokens that continue a word (WordPiece's "##"). */
  continuingSubwordPrefix?: string;
  /** Marks tokens that end a word (e.g. "</w>"). */
  endOfWordSuffix?: string;
  /** Never create a token longer than this many characters (prefix and suffix included). */
  maxTokenLength?: number;
  onProgress?: ProgressCallback;
}

export interface BpeTrainResult {
  /** Token → id; ids are 0..size-1 with the special tokens first. */
  vocab: Map<string, number>;
  /** The merges in the order they were learned (rank order). */
  merges: [string, string][];
  specialTokens: string[];
}

/** Pair keys pack (left, right) ids into one exact double; ordering keys orders pairs as (left, right). */
const PAIR_SHIFT = 2 ** 21;
const MAX_IDS = PAIR_SHIFT;

/** A binary max-heap of (count, pair) ordered by count, then by the smaller pair key (HF's tie-break). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  /** True when entry (ca, ka) should pop before (cb, kb). */
  private static before(ca: number, ka: number, cb: number, kb: number): boolean {
    return ca > cb || (ca === cb && ka < kb);
  }

  push(count: number, key: number): void {
    const counts = this.counts;
    const keys = this.keys;
    let i = counts.length;
    counts.push(count);
    keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!PairHeap.before(count, key, counts[parent], keys[parent])) break;
      counts[i] = counts[parent];
      keys[i] = keys[parent];
      i = parent;
    }
    counts[i] = count;
    keys[i] = key;
  }

  topCount(): number {
    return this.counts[0];
  }

  topKey(): number {
    return this.keys[0];
  }

  pop(): void {
    const counts = this.counts;
    const keys = this.keys;
    const lastCount = counts.pop()!;
    const lastKey = keys.pop()!;
    const n = counts.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && PairHeap.before(counts[r], keys[r], counts[l], keys[l]) ? r : l;
      if (!PairHeap.before(counts[child], keys[child], lastCount, lastKey)) break;
      counts[i] = counts[child];
      keys[i] = keys[child];
      i = child;
    }
    counts[i] = lastCount;
    keys[i] = lastKey;
  }
}

/** Adds `token` to the vocabulary if absent; returns its id. */
function idOf(token: string, wordToId: Map<string, number>, idToWord: string[], idLength: number[]): number {
  let id = wordToId.get(token);
  if (id === undefined) {
    id = idToWord.length;
    if (id >= MAX_IDS) throw new RangeError(`BpeTrainer: more than ${MAX_IDS} distinct tokens; this trainer packs pair ids into 21 bits`);
    idToWord.push(token);
    idLength.push([...token].length);
    wordToId.set(token, id);
  }
  return id;
}

/**
 * The alphabet HF's `compute_alphabet` keeps, sorted by code point. When `limitAlphabet` cuts it,
 * the least frequent characters go first; among equally frequent ones, the higher code point goes
 * first (HF's unstable sort leaves that order unspecified; this makes it deterministic).
 */
export function computeAlphabet(wordCounts: WordCounts, initialAlphabet: readonly string[], limitAlphabet: number | undefined): string[] {
  const freq = new Map<string, number>();
  for (const [word, count] of wordCounts) {
    for (const ch of word) freq.set(ch, (freq.get(ch) ?? 0) + count);
  }
  for (const ch of initialAlphabet) freq.set(ch, Number.POSITIVE_INFINITY);
  const byCodePoint = (a: string, b: string): number => a.codePointAt(0)! - b.codePointAt(0)!;
  let kept = [...freq.keys()];
  if (limitAlphabet !== undefined && kept.length > limitAlphabet) {
    kept.sort((a, b) => freq.get(a)! - freq.get(b)! || byCodePoint(b, a));
    kept = kept.slice(kept.length - limitAlphabet);
  }
  return kept.sort(byCodePoint);
}

export class BpeTrainer {
  readonly vocabSize: number;
  readonly minFrequency: number;
  readonly specialTokens: string[];
  readonly limitAlphabet: number | undefined;
  readonly initialAlphabet: string[];
  readonly continuingSubwordPrefix: string | undefined;
  readonly endOfWordSuffix: string | undefined;
  readonly maxTokenLength: number | undefined;
  private readonly onProgress: ProgressCallback | undefined;

  constructor(options: BpeTrainerOptions = {}, private readonly name = 'BpeTrainer') {
    this.vocabSize = options.vocabSize ?? 30000;
    checkVocabSize(name, this.vocabSize);
    this.minFrequency = options.minFrequency ?? 0;
    checkNonNegativeInt(name, 'minFrequency', this.minFrequency);
    this.specialTokens = [...(options.specialTokens ?? [])];
    checkSpecialTokens(name, this.specialTokens);
    this.limitAlphabet = options.limitAlphabet;
    if (this.limitAlphabet !== undefined) checkNonNegativeInt(name, 'limitAlphabet', this.limitAlphabet);
    this.initialAlphabet = alphabetChars(name, options.initialAlphabet ?? []);
    this.continuingSubwordPrefix = options.continuingSubwordPrefix;
    this.endOfWordSuffix = options.endOfWordSuffix;
    this.maxTokenLength = options.maxTokenLength;
    if (this.maxTokenLength !== undefined && (!Number.isSafeInteger(this.maxTokenLength) || this.maxTokenLength < 1)) {
      throw new RangeError(`${name}: maxTokenLength must be a positive integer, got ${this.maxTokenLength}`);
    }
    this.onProgress = options.onProgress;
  }

  /** Learns the vocabulary and merges from word counts (see the file comment for the rules). */
  train(wordCounts: WordCounts): BpeTrainResult {
    const wordToId = new Map<string, number>();
    const idToWord: string[] = [];
    const idLength: number[] = [];
    for (const t of this.specialTokens) idOf(t, wordToId, idToWord, idLength);
    for (const ch of computeAlphabet(wordCounts, this.initialAlphabet, this.limitAlphabet)) idOf(ch, wordToId, idToWord, idLength);

    // Words as runs of symbol ids in one flat array; a merge compacts a word within its slot.
    let totalChars = 0;
    for (const word of wordCounts.keys()) totalChars += word.length;
    const symbols = new Int32Array(totalChars);
    const nWords = wordCounts.size;
    const wordStart = new Int32Array(nWords);
    const wordLen = new Int32Array(nWords);
    const wordCount = new Float64Array(nWords);
    const prefix = this.continuingSubwordPrefix;
    const suffix = this.endOfWordSuffix;
    let w = 0;
    let at = 0;
    for (const [word, count] of wordCounts) {
      if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`${this.name}: the count of word ${JSON.stringify(word)} is ${count}, not an integer ≥ 0`);
      wordStart[w] = at;
      wordCount[w] = count;
      const chars = [...word];
      for (let i = 0; i < chars.length; i++) {
        let s = chars[i];
        if (!wordToId.has(s)) continue; // outside the (limited) alphabet: dropped, as HF does
        if (i > 0 && prefix !== undefined) s = prefix + s;
        if (i === chars.length - 1 && suffix !== undefined) s = s + suffix;
        symbols[at++] = idOf(s, wordToId, idToWord, idLength);
      }
      wordLen[w] = at - wordStart[w];
      w++;
    }

    const maxLen = this.maxTokenLength ?? Number.POSITIVE_INFINITY;
    const countable = (a: number, b: number): boolean => idLength[a] + idLength[b] <= maxLen;

    // Initial pair counts and, per pair, the words holding it.
    const pairCount = new Map<number, number>();
    const pairWords = new Map<number, number[]>();
    for (let wi = 0; wi < nWords; wi++) {
      const s = wordStart[wi];
      const e = s + wordLen[wi];
      const c = wordCount[wi];
      for (let i = s; i + 1 < e; i++) {
        const a = symbols[i];
        const b = symbols[i + 1];
        if (!countable(a, b)) continue;
        const key = a * PAIR_SHIFT + b;
        pairCount.set(key, (pairCount.get(key) ?? 0) + c);
        const list = pairWords.get(key);
        if (list === undefined) pairWords.set(key, [wi]);
        else if (list[list.length - 1] !== wi) list.push(wi);
      }
    }
    const heap = new PairHeap();
    for (const [key, count] of pairCount) if (count > 0) heap.push(count, key);

    const merges: [string, string][] = [];
    const mergeTarget = Math.max(0, this.vocabSize - wordToId.size);
    const visited = new Int32Array(nWords).fill(-1);
    const touched: number[] = [];
    const touchedSet = new Set<number>();
    const report = (): void => this.onProgress?.({ phase: 'merges', done: merges.length, total: mergeTarget });
    report();

    const change = (a: number, b: number, delta: number, wi: number): void => {
      if (!countable(a, b)) return;
      const key = a * PAIR_SHIFT + b;
      pairCount.set(key, (pairCount.get(key) ?? 0) + delta);
      if (delta > 0) {
        const list = pairWords.get(key);
        if (list === undefined) pairWords.set(key, [wi]);
        else if (list[list.length - 1] !== wi) list.push(wi);
        if (!touchedSet.has(key)) {
          touchedSet.add(key);
          touched.push(key);
        }
      }
    };

    while (wordToId.size < this.vocabSize && heap.size > 0) {
      const key = heap.topKey();
      const queued = heap.topCount();
      heap.pop();
      const current = pairCount.get(key) ?? 0;
      if (queued !== current) {
        if (current > 0) heap.push(current, key);
        continue;
      }
      if (current < 1 || current < this.minFrequency) break;

      const a = Math.floor(key / PAIR_SHIFT);
      const b = key - a * PAIR_SHIFT;
      const left = idToWord[a];
      let right = idToWord[b];
      if (prefix !== undefined && right.startsWith(prefix)) right = right.slice(prefix.length);
      const merged = idOf(left + right, wordToId, idToWord, idLength);
      merges.push([idToWord[a], idToWord[b]]);

      const step = merges.length;
      for (const wi of pairWords.get(key)!) {
        if (visited[wi] === step) continue;
        visited[wi] = step;
        const start = wordStart[wi];
        const n = wordLen[wi];
        const c = wordCount[wi];
        // Left-to-right, non-overlapping, in place (write index ≤ read index), as HF's Word::merge.
        let out = 0;
        let r = 0;
        while (r < n) {
          if (symbols[start + r] === a && r + 1 < n && symbols[start + r + 1] === b) {
            if (out > 0) {
              const prev = symbols[start + out - 1];
              change(prev, a, -c, wi);
              change(prev, merged, c, wi);
            }
            if (r + 2 < n) {
              const next = symbols[start + r + 2];
              change(b, next, -c, wi);
              change(merged, next, c, wi);
            }
            symbols[start + out++] = merged;
            r += 2;
          } else {
            symbols[start + out++] = symbols[start + r++];
          }
        }
        wordLen[wi] = out;
      }
      // Every occurrence is merged: the pair is gone (its own -1 changes above would leave a stale count).
      pairCount.delete(key);
      pairWords.delete(key);
      for (const t of touched) {
        const count = pairCount.get(t) ?? 0;
        if (count > 0) heap.push(count, t);
      }
      touched.length = 0;
      touchedSet.clear();
      report();
    }

    return { vocab: wordToId, merges, specialTokens: [...this.specialTokens] };
  }
}
