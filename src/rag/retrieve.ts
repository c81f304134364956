/**
 * Retrieval: dense (the store's vector search), BM25 (the store's keyword search), hybrid with
 * reciprocal rank fusion (Cormack et al. 2009, k = 60), optional MMR for diversity and an optional
 * re-ranker, then a token budget for the context.
 */
import type { MetadataFilters } from './filters.js';
import { type ScoredChunk, type VectorStore, maximalMarginalRelevance } from './store.js';
import type { Chunk } from './types.js';

export type RetrievalMode = 'dense' | 'bm25' | 'hybrid';
export const RETRIEVAL_MODES: readonly RetrievalMode[] = ['dense', 'bm25', 'hybrid'];

export interface Retrieved {
  chunk: Chunk;
  /** The mode's score: cosine (dense), BM25 (bm25) or fused RRF score (hybrid). */
  score: number;
  /** Cosine similarity to the query, when dense search saw the chunk. */
  denseScore?: number;
  bm25Score?: number;
  /** 1-based ranks in each list (hybrid). */
  denseRank?: number;
  bm25Rank?: number;
}

/** Scores a query against candidates (a cross-encoder, an LLM judge, …); higher is more relevant. */
export interface Reranker {
  rerank(query: string, chunks: readonly Chunk[]): Promise<number[]>;
}

export interface RetrieveOptions {
  k?: number;
  mode?: RetrievalMode;
  filter?: MetadataFilters;
  /** Candidates each retriever contributes before fusion / MMR / re-ranking (default max(4k, 20)). */
  candidates?: number;
  /** RRF's k (default 60). */
  rrfK?: number;
  /** Diversify the dense candidates with MMR (λ, default off). */
  mmrLambda?: number;
  reranker?: Reranker;
}

/** Reciprocal rank fusion: score(d) = Σ over lists 1 / (k + rank(d)), ranks 1-based. */
export function reciprocalRankFusion(lists: readonly (readonly string[])[], k = 60): Map<string, number> {
  const fused = new Map<string, number>();
  for (const list of lists) list.forEach((id, i) => fused.set(id, (fused.get(id) ?? 0) + 1 / (k + i + 1)));
  return fused;
}

export async function retrieve(store: VectorStore, query: string, options: RetrieveOptions = {}): Promise<Retrieved[]> {
  const k = options.k ?? 5;
  const mode = options.mode ?? 'hybrid';
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`retrieve: k must be a positive integer, got ${k}`);
  const wide = options.candidates ?? Math.max(4 * k, 20);
  const filter = options.filter;
  let dense: ScoredChunk[] = [];
  let bm25: ScoredChunk[] = [];
  if (mode !== 'bm25') {
    if (store.embedder === null) throw new Error(`retrieve: mode '${mode}' needs an embedder, and this store was opened without one; use --mode bm25 or ingest with --embedder`);
    const [q] = await store.embedder.embed([query]);
    if (options.mmrLambda !== undefined) {
      const cands = await store.similaritySearchVectorWithScore(q!, wide, { filter });
      const vecs = await store.embedder.embed(cands.map((c) => c.chunk.text));
      dense = maximalMarginalRelevance(q!, vecs, options.mmrLambda, mode === 'dense' ? k : wide).map((i) => cands[i]!);
    } else dense = await store.similaritySearchVectorWithScore(q!, mode === 'dense' && options.reranker === undefined ? k : wide, { filter });
  }
  if (mode !== 'dense') bm25 = await store.keywordSearch(query, mode === 'bm25' && options.reranker === undefined ? k : wide, { filter });
  let out: Retrieved[];
  if (mode === 'dense') out = dense.map((h, i) => ({ chunk: h.chunk, score: h.score, denseScore: h.score, denseRank: i + 1 }));
  else if (mode === 'bm25') out = bm25.map((h, i) => ({ chunk: h.chunk, score: h.score, bm25Score: h.score, bm25Rank: i + 1 }));
  else {
    const fused = reciprocalRankFusion([dense.map((h) => h.chunk.id), bm25.map((h) => h.chunk.id)], options.rrfK ?? 60);
    const byId = new Map<string, Retrieved>();
    dense.forEach((h, i) => byId.set(h.chunk.id, { chunk: h.chunk, score: 0, denseScore: h.score, denseRank: i + 1 }));
    bm25.forEach((h, i) => {
      const r = byId.get(h.chunk.id) ?? { chunk: h.chunk, score: 0 };
      r.bm25Score = h.score;
      r.bm25Rank = i + 1;
      byId.set(h.chunk.id, r);
    });
    out = [...byId.values()].map((r) => ({ ...r, score: fused.get(r.chunk.id)! }));
    out.sort((a, b) => b.score - a.score || (a.chunk.id < b.chunk.id ? -1 : 1));
  }
  if (options.reranker !== undefined && out.length > 0) {
    const scores = await options.reranker.rerank(query, out.map((r) => r.chunk));
    out = out.map((r, i) => ({ ...r, score: scores[i]! })).sort((a, b) => b.score - a.score);
  }
  return out.slice(0, k);
}

/**
 * Keeps the best chunks whose token counts fit the budget, in rank order (a chunk that does not
 * fit is skipped, a smaller later one may still go in).
 */
export function fitTokenBudget<T extends { chunk: Chunk }>(ranked: readonly T[], budget: number, countTokens: (text: string) => number): T[] {
  const out: T[] = [];
  let used = 0;
  for (const r of ranked) {
    const n = countTokens(r.chunk.text);
    if (used + n > budget) continue;
    out.push(r);
    used += n;
  }
  return out;
}

/** A rough token count for budgets when no tokenizer is at hand: ~4 characters per token, 1 per CJK character. */
export function approxTokens(text: string): number {
  const cjk = text.match(/[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]/g)?.length ?? 0;
  return cjk + Math.ceil((text.length - cjk) / 4);
}
