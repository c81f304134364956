/**
 * Okapi BM25 (k1 = 1.2, b = 0.75) with Lucene's always-positive idf, ln(1 + (N − n + 0.5)/(n + 0.5)),
 * for stores without a full-text index of their own (memory, pgvector). Words are lower-cased runs
 * of letters and digits; Chinese/Japanese runs become overlapping character bigrams (a one-character
 * run stays a unigram), the usual CJK indexing unit when no segmenter is at hand.
 */

export interface BM25Options {
  k1?: number;
  b?: number;
}

const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/u;
const TOKEN_RE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[\p{L}\p{N}]+/gu;

/** BM25's terms for a text. */
export function bm25Tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(TOKEN_RE)) {
    const run = m[0];
    if (!CJK.test(run[0]!)) {
      out.push(run);
      continue;
    }
    const chars = [...run];
    if (chars.length === 1) out.push(chars[0]!);
    for (let i = 0; i + 1 < chars.length; i++) out.push(chars[i]! + chars[i + 1]!);
  }
  return out;
}

export class BM25Index {
  readonly k1: number;
  readonly b: number;
  private readonly postings = new Map<string, Map<string, number>>();
  private readonly docTerms = new Map<string, Map<string, number>>();
  private readonly docLength = new Map<string, number>();
  private totalLength = 0;

  constructor(options: BM25Options = {}) {
    this.k1 = options.k1 ?? 1.2;
    this.b = options.b ?? 0.75;
  }

  get size(): number {
    return this.docLength.size;
  }

  /** Adds or replaces a document. */
  add(id: string, text: string): void {
    this.addTokens(id, bm25Tokenize(text));
  }

  addTokens(id: string, tokens: readonly string[]): void {
    if (this.docLength.has(id)) this.remove(id);
    const tf = new Map<string, number>();
    for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const [t, n] of tf) {
      let p = this.postings.get(t);
      if (p === undefined) this.postings.set(t, (p = new Map()));
      p.set(id, n);
    }
    this.docTerms.set(id, tf);
    this.docLength.set(id, tokens.length);
    this.totalLength += tokens.length;
  }

  remove(id: string): void {
    const tf = this.docTerms.get(id);
    if (tf === undefined) return;
    for (const t of tf.keys()) {
      const p = this.postings.get(t)!;
      p.delete(id);
      if (p.size === 0) this.postings.delete(t);
    }
    this.totalLength -= this.docLength.get(id)!;
    this.docTerms.delete(id);
    this.docLength.delete(id);
  }

  idf(term: string): number {
    const N = this.docLength.size;
    const n = this.postings.get(term)?.size ?? 0;
    return Math.log(1 + (N - n + 0.5) / (n + 0.5));
  }

  /** Scores of every document containing a query term (a repeated query term counts each time, as rank_bm25). */
  scoresForTokens(queryTokens: readonly string[]): Map<string, number> {
    const scores = new Map<string, number>();
    const N = this.docLength.size;
    if (N === 0) return scores;
    const avgdl = this.totalLength / N;
    for (const term of queryTokens) {
      const p = this.postings.get(term);
      if (p === undefined) continue;
      const idf = this.idf(term);
      for (const [id, tf] of p) {
        const dl = this.docLength.get(id)!;
        const s = (idf * (tf * (this.k1 + 1))) / (tf + this.k1 * (1 - this.b + (this.b * dl) / avgdl));
        scores.set(id, (scores.get(id) ?? 0) + s);
      }
    }
    return scores;
  }

  /** Top-k ids by score (ties by id), restricted to ids `accept` passes. */
  search(query: string, k: number, accept?: (id: string) => boolean): { id: string; score: number }[] {
    const scores = this.scoresForTokens(bm25Tokenize(query));
    const hits: { id: string; score: number }[] = [];
    for (const [id, score] of scores) if (accept === undefined || accept(id)) hits.push({ id, score });
    hits.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return hits.slice(0, k);
  }
}
