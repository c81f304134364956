/**
 * The vector store contract, in LangChain.js's terms (addDocuments, addVectors,
 * similaritySearch(WithScore), maxMarginalRelevanceSearch, delete, asRetriever) with LlamaIndex's
 * metadata filters, plus keyword (BM25) search. Scores are cosine similarities (higher is closer);
 * ids are the chunks' ids and adding an id that exists replaces it (upsert), which incremental
 * ingestion relies on.
 */
import type { Embedder } from './embeddings.js';
import type { MetadataFilters } from './filters.js';
import type { Chunk } from './types.js';

export interface ScoredChunk {
  chunk: Chunk;
  score: number;
}

export interface SearchOptions {
  filter?: MetadataFilters;
}

export interface MMROptions extends SearchOptions {
  /** Results to return (default 4). */
  k?: number;
  /** Candidates fetched by similarity before MMR picks (default 20). */
  fetchK?: number;
  /** 1 = pure relevance, 0 = pure diversity (default 0.5, LangChain's). */
  lambda?: number;
}

export interface VectorStore {
  /** 'memory' | 'lancedb' | 'pgvector'. */
  readonly kind: string;
  /** The embedder used for text queries and addDocuments (null: vectors must be given). */
  readonly embedder: Embedder | null;
  /** Upserts chunks with their vectors. */
  addVectors(vectors: readonly Float32Array[], chunks: readonly Chunk[]): Promise<void>;
  /** Embeds and upserts. */
  addDocuments(chunks: readonly Chunk[]): Promise<void>;
  /** Nearest chunks to a vector, best first, with cosine similarity. */
  similaritySearchVectorWithScore(query: Float32Array, k: number, options?: SearchOptions): Promise<ScoredChunk[]>;
  similaritySearchWithScore(query: string, k?: number, options?: SearchOptions): Promise<ScoredChunk[]>;
  similaritySearch(query: string, k?: number, options?: SearchOptions): Promise<Chunk[]>;
  maxMarginalRelevanceSearch(query: string, options?: MMROptions): Promise<Chunk[]>;
  /** BM25 keyword search (the store's full-text index, or Weft's BM25). */
  keywordSearch(query: string, k: number, options?: SearchOptions): Promise<ScoredChunk[]>;
  /** Deletes by ids, by filter, or both (their union). */
  delete(params: { ids?: readonly string[]; filter?: MetadataFilters }): Promise<void>;
  /** Chunks by id (missing ids are skipped). */
  get(ids: readonly string[]): Promise<Chunk[]>;
  /** Ids (and hashes) of the chunks of one source. */
  idsForSource(source: string): Promise<string[]>;
  count(): Promise<number>;
  asRetriever(options?: RetrieverOptions): Retriever;
  close(): Promise<void>;
}

export interface RetrieverOptions extends SearchOptions {
  k?: number;
  /** 'similarity' (default) or 'mmr'. */
  searchType?: 'similarity' | 'mmr';
  fetchK?: number;
  lambda?: number;
}

/** LangChain's retriever face: a question in, documents out. */
export interface Retriever {
  invoke(query: string): Promise<Chunk[]>;
}

export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * Maximal marginal relevance (Carbonell & Goldstein 1998), as LangChain's maximalMarginalRelevance:
 * start with the most similar candidate, then repeatedly take argmax λ·sim(q, d) − (1 − λ)·max sim(d, picked).
 * Returns candidate indices in pick order.
 */
export function maximalMarginalRelevance(query: Float32Array, candidates: readonly Float32Array[], lambda: number, k: number): number[] {
  if (candidates.length === 0 || k <= 0) return [];
  const rel = candidates.map((c) => cosineSimilarity(query, c));
  const picked: number[] = [];
  const maxSimToPicked = new Float64Array(candidates.length).fill(-Infinity);
  while (picked.length < Math.min(k, candidates.length)) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < candidates.length; i++) {
      if (picked.includes(i)) continue;
      const div = picked.length === 0 ? 0 : maxSimToPicked[i]!;
      const s = lambda * rel[i]! - (1 - lambda) * div;
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    }
    picked.push(best);
    for (let i = 0; i < candidates.length; i++) maxSimToPicked[i] = Math.max(maxSimToPicked[i]!, cosineSimilarity(candidates[i]!, candidates[best]!));
  }
  return picked;
}

/** What every store shares: text queries through the embedder, MMR, retriever, checks. */
export abstract class BaseVectorStore implements VectorStore {
  abstract readonly kind: string;

  constructor(readonly embedder: Embedder | null) {}

  abstract addVectors(vectors: readonly Float32Array[], chunks: readonly Chunk[]): Promise<void>;
  abstract similaritySearchVectorWithScore(query: Float32Array, k: number, options?: SearchOptions): Promise<ScoredChunk[]>;
  /** Like similaritySearchVectorWithScore, with the stored vectors (for MMR). */
  protected abstract searchWithVectors(query: Float32Array, k: number, options?: SearchOptions): Promise<{ hit: ScoredChunk; vector: Float32Array }[]>;
  abstract keywordSearch(query: string, k: number, options?: SearchOptions): Promise<ScoredChunk[]>;
  abstract delete(params: { ids?: readonly string[]; filter?: MetadataFilters }): Promise<void>;
  abstract get(ids: readonly string[]): Promise<Chunk[]>;
  abstract idsForSource(source: string): Promise<string[]>;
  abstract count(): Promise<number>;
  abstract close(): Promise<void>;

  protected requireEmbedder(what: string): Embedder {
    if (this.embedder === null) throw new Error(`${this.kind} store: ${what} needs an embedder; open the store with one (or use keywordSearch / the vector methods)`);
    return this.embedder;
  }

  protected checkVectors(vectors: readonly Float32Array[], chunks: readonly Chunk[], dim: number | null): void {
    if (vectors.length !== chunks.length) throw new RangeError(`${this.kind} store: ${vectors.length} vectors for ${chunks.length} chunks`);
    const d = dim ?? vectors[0]?.length;
    vectors.forEach((v, i) => {
      if (v.length !== d) throw new RangeError(`${this.kind} store: vector ${i} has ${v.length} dimensions, the store holds ${d}`);
      for (let j = 0; j < v.length; j++) if (!Number.isFinite(v[j]!)) throw new RangeError(`${this.kind} store: vector ${i} has a non-finite value at ${j}`);
    });
    const seen = new Set<string>();
    for (const c of chunks) {
      if (seen.has(c.id)) throw new RangeError(`${this.kind} store: chunk id ${c.id} appears twice in one batch`);
      seen.add(c.id);
    }
  }

  async addDocuments(chunks: readonly Chunk[]): Promise<void> {
    if (chunks.length === 0) return;
    const vectors = await this.requireEmbedder('addDocuments').embed(chunks.map((c) => c.text));
    await this.addVectors(vectors, chunks);
  }

  async similaritySearchWithScore(query: string, k = 4, options: SearchOptions = {}): Promise<ScoredChunk[]> {
    const [q] = await this.requireEmbedder('similaritySearch').embed([query]);
    return this.similaritySearchVectorWithScore(q!, k, options);
  }

  async similaritySearch(query: string, k = 4, options: SearchOptions = {}): Promise<Chunk[]> {
    return (await this.similaritySearchWithScore(query, k, options)).map((h) => h.chunk);
  }

  async maxMarginalRelevanceSearch(query: string, options: MMROptions = {}): Promise<Chunk[]> {
    const k = options.k ?? 4;
    const fetchK = Math.max(k, options.fetchK ?? 20);
    const lambda = options.lambda ?? 0.5;
    if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`maxMarginalRelevanceSearch: lambda must be in [0, 1], got ${lambda}`);
    const [q] = await this.requireEmbedder('maxMarginalRelevanceSearch').embed([query]);
    const candidates = await this.searchWithVectors(q!, fetchK, options);
    return maximalMarginalRelevance(q!, candidates.map((c) => c.vector), lambda, k).map((i) => candidates[i]!.hit.chunk);
  }

  asRetriever(options: RetrieverOptions = {}): Retriever {
    const k = options.k ?? 4;
    return {
      invoke: (query) =>
        options.searchType === 'mmr'
          ? this.maxMarginalRelevanceSearch(query, { k, fetchK: options.fetchK, lambda: options.lambda, filter: options.filter })
          : this.similaritySearch(query, k, { filter: options.filter }),
    };
  }
}

/** Top-k of scored items without sorting everything. */
export function topK<T>(items: Iterable<T>, k: number, score: (t: T) => number): T[] {
  const heap: { item: T; s: number }[] = [];
  for (const item of items) {
    const s = score(item);
    if (heap.length < k) {
      heap.push({ item, s });
      if (heap.length === k) heap.sort((a, b) => a.s - b.s);
    } else if (s > heap[0]!.s) {
      heap[0] = { item, s };
      // Restore ascending order by one insertion pass (k is small).
      for (let i = 0; i + 1 < heap.length && heap[i]!.s > heap[i + 1]!.s; i++) [heap[i], heap[i + 1]] = [heap[i + 1]!, heap[i]!];
    }
  }
  return heap.sort((a, b) => b.s - a.s).map((h) => h.item);
}
