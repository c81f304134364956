/**
 * ROUGE exactly as Google's rouge-score 0.1.2 (`RougeScorer`, default tokenizer): lower-case,
 * every character outside [a-z0-9] becomes a space (so accented letters and CJK vanish), optional
 * NLTK Porter stemming of tokens longer than 3 characters. rougeN from clipped n-gram overlap,
 * rougeL from the LCS, rougeLsum from the union LCS over newline-separated sentences.
 */
import { porterStem } from './porter.js';

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export type RougeResult = Record<string, RougeScore> & {
  rouge1?: RougeScore;
  rouge2?: RougeScore;
  rougeL?: RougeScore;
  rougeLsum?: RougeScore;
};

export interface RougeOptions {
  /** 'rouge1'..'rouge9', 'rougeL', 'rougeLsum' (default the four of rouge1, rouge2, rougeL, rougeLsum). */
  types?: string[];
  /** Porter-stem tokens longer than 3 characters (default false). */
  useStemmer?: boolean;
}

export const DEFAULT_ROUGE_TYPES: readonly string[] = ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'];

const NON_ALPHANUM = /[^a-z0-9]+/g;
const VALID_TOKEN = /^[a-z0-9]+$/;

/** rouge-score's `tokenize.tokenize(text, stemmer)`. */
export function rougeTokenize(text: string, useStemmer = false): string[] {
  // rouge-score splits on `\s+` after the replacement; only spaces remain by then.
  const pieces = text.toLowerCase().replace(NON_ALPHANUM, ' ').split(' ');
  const out: string[] = [];
  for (const piece of pieces) {
    const token = useStemmer && piece.length > 3 ? porterStem(piece) : piece;
    if (VALID_TOKEN.test(token)) out.push(token);
  }
  return out;
}

/** rouge-score's `scoring.fmeasure`. */
function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(' ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function scoreNgrams(target: Map<string, number>, prediction: Map<string, number>): RougeScore {
  let overlap = 0;
  let targetCount = 0;
  let predictionCount = 0;
  for (const [g, c] of target) {
    overlap += Math.min(c, prediction.get(g) ?? 0);
    targetCount += c;
  }
  for (const c of prediction.values()) predictionCount += c;
  const precision = overlap / Math.max(predictionCount, 1);
  const recall = overlap / Math.max(targetCount, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** The LCS dynamic-programming table, (rows+1)×(cols+1), row-major. */
function lcsTable(ref: readonly string[], can: readonly string[]): Int32Array {
  const cols = can.length + 1;
  const t = new Int32Array((ref.length + 1) * cols);
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= can.length; j++) {
      t[i * cols + j] = ref[i - 1] === can[j - 1] ? t[(i - 1) * cols + j - 1] + 1 : Math.max(t[(i - 1) * cols + j], t[i * cols + j - 1]);
    }
  }
  return t;
}

function scoreLcs(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const t = lcsTable(target, prediction);
  const lcs = t[t.length - 1];
  const precision = lcs / prediction.length;
  const recall = lcs / target.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** rouge-score's `_backtrack_norec`: indices into `ref` of one LCS (its tie-breaking included). */
function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const t = lcsTable(ref, can);
  const cols = can.length + 1;
  const out: number[] = [];
  let i = ref.length;
  let j = can.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
      j--;
    } else {
      i--;
    }
  }
  return out.reverse();
}

/** rouge-score's `_summary_level_lcs` (union LCS, with its guard against double counting). */
function summaryLevelLcs(refSents: readonly string[][], canSents: readonly string[][]): RougeScore {
  if (refSents.length === 0 || canSents.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  let m = 0;
  let n = 0;
  for (const s of refSents) m += s.length;
  for (const s of canSents) n += s.length;
  if (n === 0 || m === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const countsRef = new Map<string, number>();
  const countsCan = new Map<string, number>();
  for (const s of refSents) for (const tok of s) countsRef.set(tok, (countsRef.get(tok) ?? 0) + 1);
  for (const s of canSents) for (const tok of s) countsCan.set(tok, (countsCan.get(tok) ?? 0) + 1);
  let hits = 0;
  for (const r of refSents) {
    const union = new Set<number>();
    for (const c of canSents) for (const idx of lcsIndices(r, c)) union.add(idx);
    for (const idx of [...union].sort((a, b) => a - b)) {
      const tok = r[idx];
      const cc = countsCan.get(tok) ?? 0;
      const cr = countsRef.get(tok) ?? 0;
      if (cc > 0 && cr > 0) {
        hits++;
        countsCan.set(tok, cc - 1);
        countsRef.set(tok, cr - 1);
      }
    }
  }
  const recall = hits / m;
  const precision = hits / n;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

function checkTypes(types: readonly string[]): void {
  for (const t of types) {
    if (t === 'rougeL' || t === 'rougeLsum') continue;
    const m = /^rouge([0-9])$/.exec(t);
    if (m === null) throw new Error(`rouge: invalid rouge type '${t}' (expected rouge1..rouge9, rougeL or rougeLsum)`);
    if (Number(m[1]) <= 0) throw new Error(`rouge: rougeN requires a positive n, got '${t}'`);
  }
}

/** rouge-score's `RougeScorer.score(target, prediction)` for one reference. */
function scoreOne(hyp: string, ref: string, types: readonly string[], useStemmer: boolean): RougeResult {
  const targetTokens = rougeTokenize(ref, useStemmer);
  const predictionTokens = rougeTokenize(hyp, useStemmer);
  const result: RougeResult = {};
  for (const type of types) {
    if (type === 'rougeL') {
      result[type] = scoreLcs(targetTokens, predictionTokens);
    } else if (type === 'rougeLsum') {
      // Sentences are the non-empty lines (split_summaries=False).
      const sents = (text: string): string[][] =>
        text
          .split('\n')
          .filter((s) => s.length > 0)
          .map((s) => rougeTokenize(s, useStemmer));
      result[type] = summaryLevelLcs(sents(ref), sents(hyp));
    } else {
      const n = Number(type.slice(5));
      result[type] = scoreNgrams(ngramCounts(targetTokens, n), ngramCounts(predictionTokens, n));
    }
  }
  return result;
}

/**
 * ROUGE of `hyp` against one reference (`RougeScorer.score`) or several (`score_multi`: per type,
 * the reference with the best F; the first one on ties).
 */
export function rouge(hyp: string, ref: string | readonly string[], opts: RougeOptions = {}): RougeResult {
  const types = opts.types ?? DEFAULT_ROUGE_TYPES;
  checkTypes(types);
  const useStemmer = opts.useStemmer ?? false;
  if (typeof hyp !== 'string') throw new Error('rouge: the hypothesis is not a string');
  if (typeof ref === 'string') return scoreOne(hyp, ref, types, useStemmer);
  if (!Array.isArray(ref) || ref.length === 0) throw new Error('rouge: the reference list is empty');
  const all = ref.map((r, j) => {
    if (typeof r !== 'string') throw new Error(`rouge: reference ${j} is not a string`);
    return scoreOne(hyp, r, types, useStemmer);
  });
  const best: RougeResult = {};
  for (const type of types) {
    let bi = 0;
    for (let j = 1; j < all.length; j++) if ((all[j][type] as RougeScore).fmeasure > (all[bi][type] as RougeScore).fmeasure) bi = j;
    best[type] = all[bi][type] as RougeScore;
  }
  return best;
}
