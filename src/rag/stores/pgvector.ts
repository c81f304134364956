/**
 * PostgreSQL as the scale-out store, through `pg` (a server URL) or PGlite (embedded PostgreSQL in
 * WebAssembly, for tests and single-process use). With the pgvector extension the embedding column
 * is `vector(d)`, searched with the cosine operator `<=>` and, from 20,000 rows, an HNSW index
 * (vector_cosine_ops). Where the server has no pgvector (a PGlite without @electric-sql/pglite-pgvector;
 * Debian's PostgreSQL needs the postgresql-NN-pgvector package), the store says so and falls back
 * to `real[]` columns with an exact cosine computed in SQL — same results, no index.
 *
 * Metadata lives in jsonb; filters become jsonb SQL (see filters.ts). BM25 keyword search is Weft's
 * own index, built from the table's texts on first use and kept in step with this process's writes.
 */
import { BM25Index } from '../bm25.js';
import type { Embedder } from '../embeddings.js';
import { matchesFilters, type MetadataFilters, toPgSql } from '../filters.js';
import { BaseVectorStore, type ScoredChunk, type SearchOptions } from '../store.js';
import type { Chunk, Location, Metadata } from '../types.js';

/** The slice of a PostgreSQL client the store uses (PGlite and pg both fit through the adapters below). */
export interface SqlClient {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  /** Runs fn inside BEGIN … COMMIT (ROLLBACK on error). */
  transaction<T>(fn: (q: Pick<SqlClient, 'query'>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

interface PGliteLike {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  transaction<T>(fn: (tx: { query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }> }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function sqlClientFromPGlite(db: PGliteLike): SqlClient {
  return {
    query: (sql, params) => db.query(sql, params),
    transaction: (fn) => db.transaction((tx) => fn({ query: (sql, params) => tx.query(sql, params) })),
    close: () => db.close(),
  };
}

interface PgPoolLike {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  connect(): Promise<{ query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>; release(): void }>;
  end(): Promise<void>;
}

export function sqlClientFromPgPool(pool: PgPoolLike): SqlClient {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await pool.query(sql, params)) as { rows: T[] },
    transaction: async (fn) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const r = await fn({ query: async <T>(sql: string, params?: unknown[]) => (await c.query(sql, params)) as { rows: T[] } });
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK');
        throw e;
      } finally {
        c.release();
      }
    },
    close: () => pool.end(),
  };
}

export interface PgStoreOptions {
  embedder?: Embedder | null;
  /** Table name (default weft_chunks). */
  table?: string;
  /** Build the HNSW index at this many rows (default 20,000; pgvector mode only). */
  indexMinRows?: number;
  /** hnsw.ef_search for queries (default 100). */
  efSearch?: number;
}

interface Row {
  id: string;
  text: string;
  source: string;
  hash: string;
  location: Location | string;
  metadata: Metadata | string;
  score?: number;
  emb?: string | number[];
}

const asJson = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

export class PgVectorStore extends BaseVectorStore {
  readonly kind = 'pgvector';
  /** 'pgvector' (vector column, HNSW) or 'array' (real[] and exact SQL cosine: no pgvector on this server). */
  vectorMode: 'pgvector' | 'array' = 'array';
  /** Why the store runs in its mode (for the CLI and benchmarks to print). */
  note = '';
  private dimValue: number | null = null;
  private bm25: BM25Index | null = null;
  private readonly table: string;
  private readonly indexMinRows: number;
  private readonly efSearch: number;
  private hasIndex = false;

  private constructor(
    private readonly sql: SqlClient,
    options: PgStoreOptions,
  ) {
    super(options.embedder ?? null);
    this.table = options.table ?? 'weft_chunks';
    if (!/^[a-z_][a-z0-9_]*$/.test(this.table)) throw new RangeError(`pgvector store: table name '${this.table}' must be a lower-case identifier`);
    this.indexMinRows = options.indexMinRows ?? 20_000;
    this.efSearch = options.efSearch ?? 100;
  }

  /** Opens the store on a connected client; creates nothing until the first write. */
  static async open(sql: SqlClient, options: PgStoreOptions = {}): Promise<PgVectorStore> {
    const store = new PgVectorStore(sql, options);
    try {
      await sql.query('CREATE EXTENSION IF NOT EXISTS vector');
      store.vectorMode = 'pgvector';
      store.note = 'pgvector: vector(d) column, cosine distance <=>, HNSW index from 20,000 rows';
    } catch (e) {
      store.vectorMode = 'array';
      store.note = `pgvector is not available on this server (${(e as Error).message.split('\n')[0]}); using real[] columns with exact cosine in SQL (no ANN index)`;
    }
    await sql.query(
      `CREATE OR REPLACE FUNCTION weft_cosine(a real[], b real[]) RETURNS float8 AS $$
         SELECT CASE WHEN sum(x * x) = 0 OR sum(y * y) = 0 THEN 0 ELSE sum(x * y) / sqrt(sum(x * x) * sum(y * y)) END
         FROM unnest(a, b) AS t(x, y) $$ LANGUAGE sql IMMUTABLE PARALLEL SAFE`,
    );
    const exists = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = $1`, [store.table]);
    if (exists.rows[0]!.n > 0) {
      const col = await sql.query<{ udt_name: string }>(`SELECT udt_name FROM information_schema.columns WHERE table_name = $1 AND column_name = 'embedding'`, [store.table]);
      const udt = col.rows[0]?.udt_name;
      if (udt === 'vector') {
        if (store.vectorMode !== 'pgvector') throw new Error(`pgvector store: table ${store.table} has a vector column but the extension cannot be loaded`);
        const d = await sql.query<{ d: number }>(`SELECT atttypmod AS d FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'embedding'`, [store.table]);
        store.dimValue = d.rows[0]?.d ?? null;
      } else if (udt === '_float4') {
        store.vectorMode = 'array';
        const d = await sql.query<{ d: number | null }>(`SELECT array_length(embedding, 1) AS d FROM ${store.table} LIMIT 1`);
        store.dimValue = d.rows[0]?.d ?? null;
      }
      const idx = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = $1 AND indexname = $2`, [store.table, `${store.table}_hnsw`]);
      store.hasIndex = idx.rows[0]!.n > 0;
    }
    return store;
  }

  get dim(): number | null {
    return this.dimValue;
  }

  private vecLiteral(v: Float32Array): string {
    return `[${Array.from(v).join(',')}]`;
  }

  private vecParam(v: Float32Array): unknown {
    return this.vectorMode === 'pgvector' ? this.vecLiteral(v) : Array.from(v);
  }

  private get vecCast(): string {
    return this.vectorMode === 'pgvector' ? '::vector' : '::real[]';
  }

  private async ensureTable(dim: number): Promise<void> {
    if (this.dimValue !== null) return;
    const type = this.vectorMode === 'pgvector' ? `vector(${dim})` : 'real[]';
    await this.sql.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (id text PRIMARY KEY, text text NOT NULL, source text NOT NULL, hash text NOT NULL,
         location jsonb NOT NULL, metadata jsonb NOT NULL, fmeta jsonb NOT NULL, embedding ${type} NOT NULL)`,
    );
    await this.sql.query(`CREATE INDEX IF NOT EXISTS ${this.table}_source ON ${this.table} (source)`);
    this.dimValue = dim;
  }

  async addVectors(vectors: readonly Float32Array[], chunks: readonly Chunk[]): Promise<void> {
    if (chunks.length === 0) return;
    if (vectors.length === 0) throw new RangeError('pgvector store: every chunk needs a vector (keyword-only ingestion is for the lancedb store)');
    this.checkVectors(vectors, chunks, this.dimValue);
    await this.ensureTable(vectors[0]!.length);
    const BATCH = 500;
    await this.sql.transaction(async (tx) => {
      for (let s = 0; s < chunks.length; s += BATCH) {
        const params: unknown[] = [];
        const values: string[] = [];
        for (let i = s; i < Math.min(chunks.length, s + BATCH); i++) {
          const c = chunks[i]!;
          const b = params.length;
          params.push(c.id, c.text, c.source, c.hash, JSON.stringify(c.location), JSON.stringify(c.metadata), JSON.stringify({ source: c.source, hash: c.hash, ...c.metadata }), this.vecParam(vectors[i]!));
          values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}::jsonb, $${b + 6}::jsonb, $${b + 7}::jsonb, $${b + 8}${this.vecCast})`);
        }
        await tx.query(
          `INSERT INTO ${this.table} (id, text, source, hash, location, metadata, fmeta, embedding) VALUES ${values.join(', ')}
           ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, source = EXCLUDED.source, hash = EXCLUDED.hash, location = EXCLUDED.location,
             metadata = EXCLUDED.metadata, fmeta = EXCLUDED.fmeta, embedding = EXCLUDED.embedding`,
          params,
        );
      }
    });
    if (this.bm25 !== null) for (const c of chunks) this.bm25.add(c.id, c.text);
  }

  /** Builds the HNSW index once the table is large enough (pgvector mode), and refreshes planner statistics. */
  async optimize(): Promise<void> {
    if (this.dimValue === null) return;
    const n = await this.count();
    if (this.vectorMode === 'pgvector' && !this.hasIndex && n >= this.indexMinRows) {
      await this.sql.query(`CREATE INDEX IF NOT EXISTS ${this.table}_hnsw ON ${this.table} USING hnsw (embedding vector_cosine_ops)`);
      this.hasIndex = true;
    }
    await this.sql.query(`ANALYZE ${this.table}`);
  }

  private toChunk(r: Row): Chunk {
    return { id: r.id, text: r.text, source: r.source, hash: r.hash, location: asJson<Location>(r.location), metadata: asJson<Metadata>(r.metadata) };
  }

  async similaritySearchVectorWithScore(query: Float32Array, k: number, options: SearchOptions = {}): Promise<ScoredChunk[]> {
    return (await this.searchWithVectors(query, k, options, false)).map((r) => r.hit);
  }

  protected async searchWithVectors(query: Float32Array, k: number, options: SearchOptions = {}, withVectors = true): Promise<{ hit: ScoredChunk; vector: Float32Array }[]> {
    if (this.dimValue === null) return [];
    if (query.length !== this.dimValue) throw new RangeError(`pgvector store: query has ${query.length} dimensions, the store holds ${this.dimValue}`);
    const params: unknown[] = [this.vecParam(query)];
    const where = options.filter !== undefined && options.filter.filters.length > 0 ? `WHERE ${toPgSql(options.filter, params, 'fmeta')}` : '';
    params.push(k);
    const score = this.vectorMode === 'pgvector' ? `1 - (embedding <=> $1::vector)` : `weft_cosine(embedding, $1::real[])`;
    const order = this.vectorMode === 'pgvector' ? `embedding <=> $1::vector` : `weft_cosine(embedding, $1::real[]) DESC`;
    const cols = `id, text, source, hash, location, metadata, ${score} AS score${withVectors ? `, embedding${this.vectorMode === 'pgvector' ? '::text' : ''} AS emb` : ''}`;
    const sqlText = `SELECT ${cols} FROM ${this.table} ${where} ORDER BY ${order}, id LIMIT $${params.length}`;
    const run = async (q: Pick<SqlClient, 'query'>): Promise<Row[]> => {
      if (this.vectorMode === 'pgvector' && this.hasIndex) {
        await q.query(`SET LOCAL hnsw.ef_search = ${Math.max(this.efSearch, k)}`);
        // pgvector ≥ 0.8 keeps scanning the graph until enough rows pass the filter.
        if (where !== '') await q.query(`SET LOCAL hnsw.iterative_scan = relaxed_order`).catch(() => undefined);
      }
      return (await q.query<Row>(sqlText, params)).rows;
    };
    const rows = this.vectorMode === 'pgvector' && this.hasIndex ? await this.sql.transaction(run) : await run(this.sql);
    // relaxed_order may return near-ties out of order: restore it.
    rows.sort((a, b) => Number(b.score) - Number(a.score));
    return rows.map((r) => ({
      hit: { chunk: this.toChunk(r), score: Number(r.score) },
      vector: r.emb === undefined ? new Float32Array(0) : Float32Array.from(typeof r.emb === 'string' ? (JSON.parse(r.emb) as number[]) : r.emb),
    }));
  }

  private async keywordIndex(): Promise<BM25Index> {
    if (this.bm25 !== null) return this.bm25;
    const idx = new BM25Index();
    if (this.dimValue !== null) for (const r of (await this.sql.query<{ id: string; text: string }>(`SELECT id, text FROM ${this.table}`)).rows) idx.add(r.id, r.text);
    this.bm25 = idx;
    return idx;
  }

  async keywordSearch(query: string, k: number, options: SearchOptions = {}): Promise<ScoredChunk[]> {
    const idx = await this.keywordIndex();
    const filtered = options.filter !== undefined && options.filter.filters.length > 0;
    // Filters are checked on the candidates, fetched in growing rounds until k pass.
    for (let fetch = filtered ? k * 4 : k; ; fetch *= 4) {
      const hits = idx.search(query, fetch);
      const chunks = new Map((await this.get(hits.map((h) => h.id))).map((c) => [c.id, c]));
      const out = hits.flatMap((h) => {
        const c = chunks.get(h.id);
        return c !== undefined && matchesFilters(c, options.filter) ? [{ chunk: c, score: h.score }] : [];
      });
      if (out.length >= k || hits.length < fetch) return out.slice(0, k);
    }
  }

  async delete(params: { ids?: readonly string[]; filter?: MetadataFilters }): Promise<void> {
    if (this.dimValue === null) return;
    const p: unknown[] = [];
    const parts: string[] = [];
    if (params.ids !== undefined && params.ids.length > 0) {
      p.push([...params.ids]);
      parts.push(`id = ANY($1::text[])`);
    }
    if (params.filter !== undefined && params.filter.filters.length > 0) parts.push(`(${toPgSql(params.filter, p, 'fmeta')})`);
    if (parts.length === 0) return;
    const deleted = await this.sql.query<{ id: string }>(`DELETE FROM ${this.table} WHERE ${parts.join(' OR ')} RETURNING id`, p);
    if (this.bm25 !== null) for (const r of deleted.rows) this.bm25.remove(r.id);
  }

  async get(ids: readonly string[]): Promise<Chunk[]> {
    if (this.dimValue === null || ids.length === 0) return [];
    const rows = (await this.sql.query<Row>(`SELECT id, text, source, hash, location, metadata FROM ${this.table} WHERE id = ANY($1::text[])`, [[...ids]])).rows;
    const byId = new Map(rows.map((r) => [r.id, this.toChunk(r)]));
    return ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
  }

  async idsForSource(source: string): Promise<string[]> {
    if (this.dimValue === null) return [];
    return (await this.sql.query<{ id: string }>(`SELECT id FROM ${this.table} WHERE source = $1 ORDER BY id`, [source])).rows.map((r) => r.id);
  }

  async count(): Promise<number> {
    if (this.dimValue === null) return 0;
    return (await this.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.table}`)).rows[0]!.n;
  }

  async close(): Promise<void> {
    await this.sql.close();
  }
}
