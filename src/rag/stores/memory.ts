/**
 * An exact in-memory store: brute-force cosine similarity over every vector, Weft's BM25 for
 * keywords. The reference the other stores' recall is measured against, and the store for tests.
 */
import { BM25Index } from '../bm25.js';
import type { Embedder } from '../embeddings.js';
import { matchesFilters, type MetadataFilters } from '../filters.js';
import { BaseVectorStore, type ScoredChunk, type SearchOptions, topK } from '../store.js';
import type { Chunk } from '../types.js';

interface Entry {
  chunk: Chunk;
  vector: Float32Array;
  norm: number;
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export class MemoryVectorStore extends BaseVectorStore {
  readonly kind = 'memory';
  private readonly entries = new Map<string, Entry>();
  private readonly bm25 = new BM25Index();
  private dim: number | null = null;

  constructor(embedder: Embedder | null = null) {
    super(embedder);
  }

  async addVectors(vectors: readonly Float32Array[], chunks: readonly Chunk[]): Promise<void> {
    this.checkVectors(vectors, chunks, this.dim);
    chunks.forEach((c, i) => {
      const v = Float32Array.from(vectors[i]!);
      this.dim ??= v.length;
      this.entries.set(c.id, { chunk: structuredClone(c), vector: v, norm: norm(v) });
      this.bm25.add(c.id, c.text);
    });
  }

  private scan(query: Float32Array, k: number, filter: MetadataFilters | undefined): { e: Entry; s: number }[] {
    if (this.dim !== null && query.length !== this.dim) throw new RangeError(`memory store: query has ${query.length} dimensions, the store holds ${this.dim}`);
    const qn = norm(query);
    const sim = (e: Entry): number => {
      let dot = 0;
      for (let i = 0; i < query.length; i++) dot += query[i]! * e.vector[i]!;
      return qn === 0 || e.norm === 0 ? 0 : dot / (qn * e.norm);
    };
    const candidates = [...this.entries.values()].filter((e) => matchesFilters(e.chunk, filter));
    const scored = candidates.map((e) => ({ e, s: sim(e) }));
    return topK(scored, k, (x) => x.s);
  }

  async similaritySearchVectorWithScore(query: Float32Array, k: number, options: SearchOptions = {}): Promise<ScoredChunk[]> {
    return (await this.searchWithVectors(query, k, options)).map((r) => r.hit);
  }

  protected async searchWithVectors(query: Float32Array, k: number, options: SearchOptions = {}): Promise<{ hit: ScoredChunk; vector: Float32Array }[]> {
    return this.scan(query, k, options.filter).map(({ e, s }) => ({ hit: { chunk: structuredClone(e.chunk), score: s }, vector: e.vector }));
  }

  async keywordSearch(query: string, k: number, options: SearchOptions = {}): Promise<ScoredChunk[]> {
    const hits = this.bm25.search(query, k, (id) => matchesFilters(this.entries.get(id)!.chunk, options.filter));
    return hits.map((h) => ({ chunk: structuredClone(this.entries.get(h.id)!.chunk), score: h.score }));
  }

  async delete(params: { ids?: readonly string[]; filter?: MetadataFilters }): Promise<void> {
    const doomed = new Set(params.ids ?? []);
    if (params.filter !== undefined) for (const [id, e] of this.entries) if (matchesFilters(e.chunk, params.filter)) doomed.add(id);
    for (const id of doomed) {
      this.entries.delete(id);
      this.bm25.remove(id);
    }
  }

  async get(ids: readonly string[]): Promise<Chunk[]> {
    return ids.flatMap((id) => {
      const e = this.entries.get(id);
      return e === undefined ? [] : [structuredClone(e.chunk)];
    });
  }

  async idsForSource(source: string): Promise<string[]> {
    return [...this.entries.values()].filter((e) => e.chunk.source === source).map((e) => e.chunk.id).sort();
  }

  async count(): Promise<number> {
    return this.entries.size;
  }

  async close(): Promise<void> {}
}
