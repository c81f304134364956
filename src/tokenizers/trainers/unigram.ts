/**
 * Unigram trainer, SentencePiece-style (sentencepiece's unigram_model_trainer.cc, as Hugging Face
 * `tokenizers` ports it in models/unigram/trainer.rs):
 *   1. seed vocabulary: every character (scored by its weighted count) and the frequent substrings
 *      — the internal nodes of the suffix tree of all words joined by a boundary character
 *      (scored occurrences × length), at most `maxPieceLength` characters, up to `seedSize` pieces;
 *      scores become log-probabilities;
 *   2. EM: the E-step runs forward-backward over each word's lattice of matching pieces to get the
 *      expected count of every piece; the M-step keeps pieces expected at least 0.5 times and scores
 *      them with the Bayesian (digamma) update; `nSubIterations` rounds, then
 *   3. pruning: each piece's loss is the drop in likelihood if its occurrences were re-segmented by
 *      its second-best segmentation; the pieces with the smallest losses go, leaving
 *      max(1.1 × vocabSize, shrinkingFactor × current) — 25% per round by default;
 *   4. repeat 2–3 until at most 1.1 × vocabSize pieces remain, then keep the best-scoring ones with
 *      every character of the corpus (characters are never lost), special tokens first.
 * Where HF and SentencePiece differ, this follows SentencePiece: the alternatives' count in the
 * pruning loss is per piece, and the final cut keeps the highest scores.
 */
import {
  alphabetChars,
  checkSpecialTokens,
  checkVocabSize,
  type ProgressCallback,
  type WordCounts,
} from './common.js';

export interface UnigramTrainerOptions {
  /** Target vocabulary size, special tokens included (HF default 8000). */
  vocabSize?: number;
  /** Tokens that take the first ids (score 0), in this order. */
  specialTokens?: readonly string[];
  /** The unknown token; added at id 0 when it is not among the special tokens. */
  unkToken?: string;
  /** Characters that must be in the vocabulary even when absent from the corpus. */
  initialAlphabet?: Iterable<string>;
  /** Fraction of pieces kept by each pruning round (default 0.75). */
  shrinkingFactor?: number;
  /** Longest piece, in characters (default 16). */
  maxPieceLength?: number;
  /** EM rounds between prunings (default 2). */
  nSubIterations?: number;
  /** At most this many seed pieces (default 1,000,000). */
  seedSize?: number;
  onProgress?: ProgressCallback;
}

export interface UnigramTrainResult {
  /** [piece, log-probability] in id order, special tokens first with score 0. */
  vocab: [string, number][];
  /** Id of the unknown token, or null when there is none. */
  unkId: number | null;
  specialTokens: string[];
}

/** One piece and its score (log probability; NaN for the placeholder unknown at index 0). */
export type Piece = [string, number];

const UNK_PENALTY = 10;
const BOUNDARY = 0;

/** ψ(x), as HF's trainer computes it (asymptotic series after shifting x above 7). */
export function digamma(x: number): number {
  let result = 0;
  let v = x;
  while (v < 7) {
    result -= 1 / v;
    v += 1;
  }
  v -= 0.5;
  const xx = 1 / v;
  const xx2 = xx * xx;
  const xx4 = xx2 * xx2;
  result += Math.log(v) + (1 / 24) * xx2 - (7 / 960) * xx4 + (31 / 8064) * xx4 * xx2 - (127 / 30720) * xx4 * xx4;
  return result;
}

function logSumExp(a: number, b: number): number {
  if (a === Number.NEGATIVE_INFINITY) return b;
  if (b === Number.NEGATIVE_INFINITY) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

function codePoints(s: string): Int32Array {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return Int32Array.from(out);
}

// ------------------------------------------------------------------------------------------------
// Suffix array, LCP and the suffix tree's internal nodes (esaxx's enumeration).

/** Suffix array by prefix doubling with radix sorts: O(n log n). */
export function suffixArray(text: Int32Array): Int32Array {
  const n = text.length;
  const sa = new Int32Array(n);
  if (n === 0) return sa;
  let rank = new Int32Array(n);
  let tmp = new Int32Array(n);
  // Initial ranks: dense ranks of the characters.
  const order = Array.from(text.keys()).sort((i, j) => text[i] - text[j] || i - j);
  let r = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0 && text[order[i]] !== text[order[i - 1]]) r++;
    rank[order[i]] = r;
    sa[i] = order[i];
  }
  let classes = r + 1;
  const second = new Int32Array(n);
  for (let k = 1; classes < n; k *= 2) {
    // Sort by the second key: suffixes without one (i + k ≥ n) first, then by SA order.
    let p = 0;
    for (let i = n - k; i < n; i++) second[p++] = i;
    for (let i = 0; i < n; i++) if (sa[i] >= k) second[p++] = sa[i] - k;
    // Stable counting sort by the first key.
    const count = new Int32Array(classes + 1);
    for (let i = 0; i < n; i++) count[rank[i] + 1]++;
    for (let c = 1; c <= classes; c++) count[c] += count[c - 1];
    for (let i = 0; i < n; i++) sa[count[rank[second[i]]]++] = second[i];
    tmp[sa[0]] = 0;
    r = 0;
    for (let i = 1; i < n; i++) {
      const a = sa[i - 1];
      const b = sa[i];
      const ra = a + k < n ? rank[a + k] : -1;
      const rb = b + k < n ? rank[b + k] : -1;
      if (rank[a] !== rank[b] || ra !== rb) r++;
      tmp[b] = r;
    }
    [rank, tmp] = [tmp, rank];
    classes = r + 1;
  }
  return sa;
}

/** LCP[i] = common prefix length of suffixes SA[i-1] and SA[i] (Kasai); LCP[0] = -1 as esaxx's H. */
function lcpArray(text: Int32Array, sa: Int32Array): Int32Array {
  const n = text.length;
  const rank = new Int32Array(n);
  for (let i = 0; i < n; i++) rank[sa[i]] = i;
  const lcp = new Int32Array(n);
  let h = 0;
  for (let i = 0; i < n; i++) {
    if (rank[i] > 0) {
      const j = sa[rank[i] - 1];
      while (i + h < n && j + h < n && text[i + h] === text[j + h]) h++;
      lcp[rank[i]] = h;
      if (h > 0) h--;
    } else {
      h = 0;
    }
  }
  if (n > 0) lcp[0] = -1;
  return lcp;
}

/** Internal nodes of the suffix tree as SA intervals [left, right) of depth `depth` (esaxx's suffixtree()). */
export function suffixTreeNodes(text: Int32Array, sa: Int32Array, visit: (left: number, right: number, depth: number) => void): void {
  const n = sa.length;
  const lcp = lcpArray(text, sa);
  const stackPos: number[] = [-1];
  const stackDepth: number[] = [-1];
  for (let i = 0; ; i++) {
    let curPos = i;
    const curDepth = i === n ? -1 : lcp[i];
    while (stackDepth[stackDepth.length - 1] > curDepth) {
      const candPos = stackPos[stackPos.length - 1];
      if (i - candPos > 1) visit(candPos, i, stackDepth[stackDepth.length - 1]);
      curPos = candPos;
      stackPos.pop();
      stackDepth.pop();
    }
    if (stackDepth[stackDepth.length - 1] < curDepth) {
      stackPos.push(curPos);
      stackDepth.push(curDepth);
    }
    if (i === n) break;
    // The leaf: deeper than any internal node, so it pops before any node is recorded with it alone.
    stackPos.push(i);
    stackDepth.push(n - sa[i] + 1);
  }
}

// ------------------------------------------------------------------------------------------------
// The model being trained: a code-point trie over the pieces and lattice computations.

/** Lattice nodes of one sentence, ordered by start (forward-backward and Viterbi rely on it); reused between sentences. */
export class Lattice {
  /** Sentence length in characters. */
  length = 0;
  /** Number of nodes. */
  size = 0;
  starts = new Int32Array(256);
  ends = new Int32Array(256);
  ids = new Int32Array(256);
  scores = new Float64Array(256);

  reset(length: number): void {
    this.length = length;
    this.size = 0;
  }

  push(start: number, end: number, id: number, score: number): void {
    if (this.size === this.starts.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts, (n) => new Int32Array(n));
      this.ends = grow(this.ends, (n) => new Int32Array(n));
      this.ids = grow(this.ids, (n) => new Int32Array(n));
      this.scores = grow(this.scores, (n) => new Float64Array(n));
    }
    const i = this.size++;
    this.starts[i] = start;
    this.ends[i] = end;
    this.ids[i] = id;
    this.scores[i] = score;
  }
}

/**
 * Trie edges (parent node, code point) → child node, in an open-addressing hash table over typed
 * arrays: the lattice walks millions of edges per EM step, and a Map with composite double keys is
 * several times slower.
 */
class EdgeTable {
  private mask: number;
  private parents: Int32Array;
  private chars: Int32Array;
  private children: Int32Array;
  private count = 0;

  constructor(capacity = 1024) {
    let cap = 1024;
    while (cap < capacity * 2) cap *= 2;
    this.mask = cap - 1;
    this.parents = new Int32Array(cap).fill(-1);
    this.chars = new Int32Array(cap);
    this.children = new Int32Array(cap);
  }

  private static slot(parent: number, char: number, mask: number): number {
    return (Math.imul(parent, 0x9e3779b1) ^ Math.imul(char, 0x85ebca6b)) & mask;
  }

  get(parent: number, char: number): number {
    const mask = this.mask;
    for (let i = EdgeTable.slot(parent, char, mask); ; i = (i + 1) & mask) {
      const p = this.parents[i];
      if (p === -1) return -1;
      if (p === parent && this.chars[i] === char) return this.children[i];
    }
  }

  set(parent: number, char: number, child: number): void {
    if (2 * (this.count + 1) > this.mask + 1) this.grow();
    const mask = this.mask;
    let i = EdgeTable.slot(parent, char, mask);
    while (this.parents[i] !== -1) i = (i + 1) & mask;
    this.parents[i] = parent;
    this.chars[i] = char;
    this.children[i] = child;
    this.count++;
  }

  private grow(): void {
    const { parents, chars, children } = this;
    const cap = 2 * (this.mask + 1);
    this.mask = cap - 1;
    this.parents = new Int32Array(cap).fill(-1);
    this.chars = new Int32Array(cap);
    this.children = new Int32Array(cap);
    this.count = 0;
    for (let i = 0; i < parents.length; i++) if (parents[i] !== -1) this.set(parents[i], chars[i], children[i]);
  }
}

/** The model being trained: a code-point trie over the pieces (exported for tests). */
export class TrainingModel {
  private readonly edges: EdgeTable;
  /** Piece id ending at each trie node, or -1. */
  private readonly nodePiece: Int32Array;
  private readonly pieceScore: Float64Array;
  private readonly unkScore: number;
  readonly minScore: number;

  constructor(readonly pieces: readonly Piece[]) {
    let minScore = Number.POSITIVE_INFINITY;
    const nodePiece: number[] = [-1];
    let totalChars = 0;
    for (const [piece] of pieces) totalChars += piece.length;
    this.edges = new EdgeTable(totalChars);
    this.pieceScore = new Float64Array(pieces.length);
    // Index 0 is the placeholder unknown: it matches no text.
    for (let id = 1; id < pieces.length; id++) {
      const [piece, score] = pieces[id];
      this.pieceScore[id] = score;
      if (score < minScore) minScore = score;
      let node = 0;
      for (let k = 0; k < piece.length; k++) {
        const c = piece.codePointAt(k)!;
        if (c > 0xffff) k++;
        let child = this.edges.get(node, c);
        if (child === -1) {
          child = nodePiece.length;
          nodePiece.push(-1);
          this.edges.set(node, c, child);
        }
        node = child;
      }
      if (nodePiece[node] === -1) nodePiece[node] = id;
    }
    this.nodePiece = Int32Array.from(nodePiece);
    this.minScore = minScore;
    this.unkScore = minScore - UNK_PENALTY;
  }

  /** Fills `lat` (or a new lattice) with every piece matching `sentence`, plus unknowns where no piece covers a character. */
  lattice(sentence: Int32Array, lat: Lattice = new Lattice()): Lattice {
    lat.reset(sentence.length);
    const n = sentence.length;
    const edges = this.edges;
    const nodePiece = this.nodePiece;
    for (let start = 0; start < n; start++) {
      let node = 0;
      let single = false;
      for (let end = start; end < n; ) {
        const child = edges.get(node, sentence[end]);
        if (child === -1) break;
        node = child;
        end++;
        const id = nodePiece[node];
        if (id < 0) continue;
        lat.push(start, end, id, this.pieceScore[id]);
        if (end === start + 1) single = true;
      }
      if (!single) lat.push(start, start + 1, 0, this.unkScore);
    }
    return lat;
  }
}

let alphaScratch = new Float64Array(256);
let betaScratch = new Float64Array(256);

/** Adds freq × (marginal probability of each node) to `expected`; returns log Z. */
export function marginals(lat: Lattice, freq: number, expected: Float64Array): number {
  const n = lat.length;
  if (alphaScratch.length < n + 1) {
    alphaScratch = new Float64Array(2 * (n + 1));
    betaScratch = new Float64Array(2 * (n + 1));
  }
  const alpha = alphaScratch;
  const beta = betaScratch;
  alpha.fill(Number.NEGATIVE_INFINITY, 0, n + 1);
  beta.fill(Number.NEGATIVE_INFINITY, 0, n + 1);
  alpha[0] = 0;
  beta[n] = 0;
  const { starts, ends, scores, ids, size } = lat;
  for (let i = 0; i < size; i++) alpha[ends[i]] = logSumExp(alpha[ends[i]], alpha[starts[i]] + scores[i]);
  for (let i = size - 1; i >= 0; i--) beta[starts[i]] = logSumExp(beta[starts[i]], scores[i] + beta[ends[i]]);
  const z = alpha[n];
  for (let i = 0; i < size; i++) expected[ids[i]] += freq * Math.exp(alpha[starts[i]] + scores[i] + beta[ends[i]] - z);
  return z;
}

/** Best segmentation's piece ids (first-found wins ties). */
export function viterbi(lat: Lattice): number[] {
  const n = lat.length;
  const best = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
  const back = new Int32Array(n + 1).fill(-1);
  best[0] = 0;
  for (let i = 0; i < lat.size; i++) {
    const cand = best[lat.starts[i]] + lat.scores[i];
    if (cand > best[lat.ends[i]]) {
      best[lat.ends[i]] = cand;
      back[lat.ends[i]] = i;
    }
  }
  const ids: number[] = [];
  for (let pos = n; pos > 0; ) {
    const node = back[pos];
    ids.push(lat.ids[node]);
    pos = lat.starts[node];
  }
  return ids.reverse();
}

/** The best and second-best segmentations (piece ids); one entry when only one path exists. */
export function twoBest(lat: Lattice): number[][] {
  const n = lat.length;
  // Per position, two ranked paths: score, last node, and the rank of the path it extends.
  const score = [new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY), new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY)];
  const node = [new Int32Array(n + 1).fill(-1), new Int32Array(n + 1).fill(-1)];
  const prevRank = [new Int32Array(n + 1), new Int32Array(n + 1)];
  score[0][0] = 0;
  for (let i = 0; i < lat.size; i++) {
    const s = lat.starts[i];
    const e = lat.ends[i];
    for (let r = 0; r < 2; r++) {
      if (s > 0 ? node[r][s] === -1 : r > 0) continue;
      const cand = score[r][s] + lat.scores[i];
      if (cand > score[0][e] || node[0][e] === -1) {
        score[1][e] = score[0][e];
        node[1][e] = node[0][e];
        prevRank[1][e] = prevRank[0][e];
        score[0][e] = cand;
        node[0][e] = i;
        prevRank[0][e] = r;
      } else if (cand > score[1][e] || node[1][e] === -1) {
        score[1][e] = cand;
        node[1][e] = i;
        prevRank[1][e] = r;
      }
    }
  }
  const out: number[][] = [];
  for (let rank = 0; rank < 2; rank++) {
    if (node[rank][n] === -1) break;
    const ids: number[] = [];
    let r = rank;
    for (let pos = n; pos > 0; ) {
      const i = node[r][pos];
      ids.push(lat.ids[i]);
      r = prevRank[r][pos];
      pos = lat.starts[i];
    }
    out.push(ids.reverse());
  }
  return out;
}

// ------------------------------------------------------------------------------------------------

export class UnigramTrainer {
  readonly vocabSize: number;
  readonly specialTokens: string[];
  readonly unkToken: string | undefined;
  readonly initialAlphabet: string[];
  readonly shrinkingFactor: number;
  readonly maxPieceLength: number;
  readonly nSubIterations: number;
  readonly seedSize: number;
  private readonly onProgress: ProgressCallback | undefined;

  constructor(options: UnigramTrainerOptions = {}) {
    const name = 'UnigramTrainer';
    this.vocabSize = options.vocabSize ?? 8000;
    checkVocabSize(name, this.vocabSize);
    this.specialTokens = [...(options.specialTokens ?? [])];
    checkSpecialTokens(name, this.specialTokens);
    this.unkToken = options.unkToken;
    this.initialAlphabet = alphabetChars(name, options.initialAlphabet ?? []);
    this.shrinkingFactor = options.shrinkingFactor ?? 0.75;
    if (!(this.shrinkingFactor > 0 && this.shrinkingFactor < 1)) throw new RangeError(`${name}: shrinkingFactor must be in (0, 1), got ${this.shrinkingFactor}`);
    this.maxPieceLength = options.maxPieceLength ?? 16;
    this.nSubIterations = options.nSubIterations ?? 2;
    this.seedSize = options.seedSize ?? 1_000_000;
    for (const [key, v] of [['maxPieceLength', this.maxPieceLength], ['nSubIterations', this.nSubIterations], ['seedSize', this.seedSize]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name}: ${key} must be a positive integer, got ${v}`);
    }
    const specials = this.specialTokens.length + (this.unkToken !== undefined && !this.specialTokens.includes(this.unkToken) ? 1 : 0);
    if (specials >= this.vocabSize) throw new RangeError(`${name}: vocabSize ${this.vocabSize} leaves no room beside ${specials} special token(s)`);
    this.onProgress = options.onProgress;
  }

  train(wordCounts: WordCounts): UnigramTrainResult {
    const sentences: Int32Array[] = [];
    const freqs: number[] = [];
    for (const [word, count] of wordCounts) {
      if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`UnigramTrainer: the count of word ${JSON.stringify(word)} is ${count}, not an integer ≥ 0`);
      if (word.length === 0 || count === 0) continue;
      sentences.push(codePoints(word));
      freqs.push(count);
    }

    const requiredChars = new Set<string>(this.initialAlphabet);
    for (const [word, count] of wordCounts) if (count > 0) for (const ch of word) requiredChars.add(ch);
    const specialsCount = this.specialTokens.length + (this.unkToken !== undefined && !this.specialTokens.includes(this.unkToken) ? 1 : 0);
    if (requiredChars.size > this.vocabSize - specialsCount) {
      throw new RangeError(
        `UnigramTrainer: the corpus has ${requiredChars.size} distinct characters, more than vocabSize ${this.vocabSize} leaves room for (${this.vocabSize - specialsCount} after special tokens); every character must be a piece — raise vocabSize`,
      );
    }

    this.onProgress?.({ phase: 'seed', done: 0, total: 1 });
    let pieces: Piece[] = [['<UNK>', Number.NaN], ...this.seedPieces(sentences, freqs)];
    this.onProgress?.({ phase: 'seed', done: 1, total: 1 });

    const desired = Math.floor((this.vocabSize * 11) / 10);
    const expectedLoops = Math.max(0, Math.floor((Math.log(desired) - Math.log(pieces.length)) / Math.log(this.shrinkingFactor))) + 1;
    const totalSteps = expectedLoops * this.nSubIterations;
    let steps = 0;
    let model = new TrainingModel(pieces);
    for (;;) {
      for (let it = 0; it < this.nSubIterations; it++) {
        const expected = this.eStep(model, sentences, freqs);
        pieces = this.mStep(pieces, expected);
        model = new TrainingModel(pieces);
        steps++;
        this.onProgress?.({ phase: 'em', done: Math.min(steps, totalSteps), total: Math.max(totalSteps, steps) });
      }
      if (pieces.length <= desired) break;
      pieces = this.prune(model, pieces, sentences, freqs);
      model = new TrainingModel(pieces);
    }
    return this.finalize(model, requiredChars);
  }

  /** Characters (weighted counts) then frequent substrings (occurrences × length), as log-probabilities. */
  private seedPieces(sentences: Int32Array[], freqs: number[]): Piece[] {
    let total = sentences.length;
    for (const s of sentences) total += s.length;
    // Code points shifted by one so that 0 is free for the boundary.
    const flat = new Int32Array(total);
    const charCount = new Map<number, number>();
    let at = 0;
    sentences.forEach((s, i) => {
      for (const c of s) {
        flat[at++] = c + 1;
        charCount.set(c, (charCount.get(c) ?? 0) + freqs[i]);
      }
      flat[at++] = BOUNDARY;
    });
    const sa = suffixArray(flat);
    const substrings: { score: number; chars: Int32Array }[] = [];
    suffixTreeNodes(flat, sa, (left, right, depth) => {
      if (depth <= 1 || depth > this.maxPieceLength) return;
      const offset = sa[left];
      const chars = flat.subarray(offset, offset + depth);
      if (chars.includes(BOUNDARY)) return;
      substrings.push({ score: (right - left) * depth, chars });
    });
    const seeds: Piece[] = [...charCount]
      .sort((a, b) => b[1] - a[1] || b[0] - a[0])
      .map(([c, n]) => [String.fromCodePoint(c), n]);
    // Highest score first; ties: the larger string first (SentencePiece sorts (score, string) descending).
    substrings.sort((a, b) => b.score - a.score || compareCodes(b.chars, a.chars));
    for (const { score, chars } of substrings) {
      if (seeds.length >= this.seedSize) break;
      let s = '';
      for (const c of chars) s += String.fromCodePoint(c - 1);
      seeds.push([s, score]);
    }
    let sum = 0;
    for (const [, score] of seeds) sum += score;
    const logSum = Math.log(sum);
    return seeds.map(([p, score]) => [p, Math.log(score) - logSum]);
  }

  private eStep(model: TrainingModel, sentences: Int32Array[], freqs: number[]): Float64Array {
    const expected = new Float64Array(model.pieces.length);
    const lat = new Lattice();
    for (let i = 0; i < sentences.length; i++) {
      const z = marginals(model.lattice(sentences[i], lat), freqs[i], expected);
      if (Number.isNaN(z)) throw new Error('UnigramTrainer: the likelihood is NaN (a word may be too long)');
    }
    return expected;
  }

  private mStep(pieces: Piece[], expected: Float64Array): Piece[] {
    const kept: Piece[] = [pieces[0]];
    let sum = 0;
    for (let i = 1; i < pieces.length; i++) {
      if (expected[i] < 0.5) continue;
      kept.push([pieces[i][0], expected[i]]);
      sum += expected[i];
    }
    // Bayesian (DP) EM: digamma acts as a sparse prior.
    const logSum = digamma(sum);
    return kept.map(([p, c], i) => [p, i === 0 ? Number.NaN : digamma(c) - logSum]);
  }

  private prune(model: TrainingModel, pieces: Piece[], sentences: Int32Array[], freqs: number[]): Piece[] {
    const lat = new Lattice();
    const alwaysKeep = new Array<boolean>(pieces.length).fill(true);
    const alternatives: number[][] = pieces.map(() => []);
    for (let id = 1; id < pieces.length; id++) {
      const nbest = twoBest(model.lattice(codePoints(pieces[id][0]), lat));
      if (nbest.length === 1) alwaysKeep[id] = true;
      else if (nbest[0].length >= 2) alwaysKeep[id] = false;
      else if (nbest[0].length === 1) {
        alwaysKeep[id] = true;
        alternatives[id] = nbest[1];
      }
    }

    // Viterbi counts and, per piece, the sentences whose best segmentation uses it.
    const freq = new Float64Array(pieces.length);
    const inverted: number[][] = pieces.map(() => []);
    let vsum = 0;
    for (let i = 0; i < sentences.length; i++) {
      vsum += freqs[i];
      for (const id of viterbi(model.lattice(sentences[i], lat))) {
        freq[id] += freqs[i];
        inverted[id].push(i);
      }
    }
    let sum = 0;
    for (const f of freq) sum += f;
    const logSum = Math.log(sum);

    const kept: Piece[] = [pieces[0]];
    const candidates: [number, number][] = [];
    for (let id = 1; id < pieces.length; id++) {
      if (freq[id] === 0 && !alwaysKeep[id]) continue; // never on a best path and replaceable
      if (alternatives[id].length === 0) {
        kept.push(pieces[id]);
        continue;
      }
      let f = 0;
      for (const s of inverted[id]) f += freqs[s];
      if (f === 0) continue;
      f /= vsum;
      const logProbPiece = Math.log(freq[id]) - logSum;
      // Removing the piece hands its count to each of its alternatives.
      const logSumAlt = Math.log(sum + freq[id] * (alternatives[id].length - 1));
      let logProbAlt = 0;
      for (const alt of alternatives[id]) logProbAlt += Math.log(freq[alt] + freq[id]) - logSumAlt;
      candidates.push([id, f * (logProbPiece - logProbAlt)]);
    }
    const desired = Math.floor((this.vocabSize * 11) / 10);
    const prunedSize = Math.max(desired, Math.floor(pieces.length * this.shrinkingFactor));
    candidates.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    for (const [id] of candidates) {
      if (kept.length >= prunedSize) break;
      kept.push(pieces[id]);
    }
    return kept;
  }

  private finalize(model: TrainingModel, requiredChars: Set<string>): UnigramTrainResult {
    const existing = new Map<string, number>();
    for (let id = 1; id < model.pieces.length; id++) if (!existing.has(model.pieces[id][0])) existing.set(model.pieces[id][0], model.pieces[id][1]);
    const specials = [...this.specialTokens];
    let unkId: number | null = null;
    if (this.unkToken !== undefined) {
      unkId = specials.indexOf(this.unkToken);
      if (unkId === -1) {
        specials.unshift(this.unkToken);
        unkId = 0;
      }
    }
    const room = this.vocabSize - specials.length;
    const inserted = new Set<string>(specials);
    const out: Piece[] = [];
    // Every character stays; one the model lost comes back at the lowest score (+0.0001 per extra one, as SentencePiece).
    let penalty = 0;
    for (const ch of [...requiredChars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!)) {
      if (inserted.has(ch)) continue;
      inserted.add(ch);
      const score = existing.get(ch);
      if (score !== undefined) out.push([ch, score]);
      else {
        out.push([ch, model.minScore + penalty]);
        penalty += 0.0001;
      }
    }
    const rest = [...existing].filter(([p]) => !inserted.has(p)).sort((a, b) => b[1] - a[1]);
    for (const [p, score] of rest) {
      if (out.length >= room) break;
      out.push([p, score]);
    }
    out.sort((a, b) => b[1] - a[1]);
    return { vocab: [...specials.map((s): Piece => [s, 0]), ...out], unkId, specialTokens: specials };
  }
}

function compareCodes(a: Int32Array, b: Int32Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
