/**
 * LanceDB (embedded, durable) as the default store. One table `chunks`: id, text, source, hash,
 * location and metadata (JSON, for reconstruction), fts (the BM25 terms, whitespace-joined, so
 * LanceDB's full-text index tokenises exactly as Weft's BM25 — including CJK bigrams), one column per
 * metadata key (m_<key>, so filters are SQL pushed into the scan), and the vector.
 *
 * Following the measured notes in issue 12 for @lancedb/lancedb 0.31.0: vectors are searched with
 * distanceType 'cosine' (the HNSW index too — 'dot' gave recall 0.017); no ANN index below 20,000
 * rows (a flat scan is exact and fast there); with an index, refineFactor re-ranks candidates on
 * full vectors; optimize() after writes folds new rows into the indexes and compacts.
 */
import { mkdir } from 'node:fs/promises';
import * as lancedb from '@lancedb/lancedb';
import { Field, FixedSizeList, Float32, Float64, Schema, Utf8, type DataType, type Table as ArrowTable } from 'apache-arrow';
import { bm25Tokenize } from '../bm25.js';
import type { Embedder } from '../embeddings.js';
import { filterKeys, type MetadataFilters, toLanceSql } from '../filters.js';
import { BaseVectorStore, type ScoredChunk, type SearchOptions } from '../store.js';
import type { Chunk, Location, Metadata, MetadataValue } from '../types.js';

export const LANCE_TABLE = 'chunks';
/** Below this many rows the flat scan is used (exact); above it an HNSW index is built. */
export const LANCE_INDEX_MIN_ROWS = 20_000;

type MetaKind = 'string' | 'number' | 'boolean' | 'string[]' | 'number[]';

export interface LanceStoreOptions {
  embedder?: Embedder | null;
  /** Build the HNSW index at this many rows (default 20,000). */
  indexMinRows?: number;
  /** Candidates re-ranked on full vectors per result when an index is used (default 4). */
  refineFactor?: number;
  /** HNSW search breadth (default: LanceDB's). */
  ef?: number;
}

function metaKind(v: MetadataValue): MetaKind {
  if (Array.isArray(v)) return v.every((x) => typeof x === 'number') && v.length > 0 ? 'number[]' : 'string[]';
  return typeof v as 'string' | 'number' | 'boolean';
}

function arrowType(k: MetaKind): DataType {
  switch (k) {
    case 'string':
      return new Utf8();
    case 'number':
      return new Float64();
    case 'boolean':
      return new Utf8();
    case 'string[]':
    case 'number[]':
      return new Utf8();
  }
}

/**
 * Lists are stored as text with a unit separator around every element ("␟a␟b␟"), and `contains`
 * becomes a substring test for "␟x␟"; booleans are stored as 'true'/'false'. With lancedb 0.31.0
 * and apache-arrow 18.1.0, native List columns lose their offsets in lancedb's input sanitiser and
 * an all-null Bool column makes an IPC buffer lance cannot read ("Spill has sent an error").
 */
export const LIST_SEP = '\u001f';

function encodeList(v: MetadataValue | undefined): string | null {
  if (v === undefined || !Array.isArray(v)) return null;
  return `${LIST_SEP}${(v as (string | number)[]).map(String).join(LIST_SEP)}${LIST_SEP}`;
}

function kindOfField(f: Field): MetaKind | null {
  if (f.name.startsWith('mb_')) return 'boolean';
  if (f.name.startsWith('ml_')) return 'string[]';
  if (f.name.startsWith('mn_')) return 'number[]';
  const t = f.type as DataType;
  if (t instanceof Utf8 || String(t) === 'Utf8') return 'string';
  if (t instanceof Float64 || String(t) === 'Float64') return 'number';
  return null;
}

const columnFor = (key: string, kind: MetaKind): string => `${kind === 'string[]' ? 'ml' : kind === 'number[]' ? 'mn' : kind === 'boolean' ? 'mb' : 'm'}_${key}`;

interface Row {
  id: string;
  text: string;
  source: string;
  hash: string;
  location: string;
  metadata: string;
  fts: string;
  vector?: number[];
  _distance?: number;
  _score?: number;
  [m: string]: unknown;
}

export class LanceDBStore extends BaseVectorStore {
  readonly kind = 'lancedb';
  private table: lancedb.Table | null;
  private metaColumns = new Map<string, MetaKind>();
  private dimValue: number | null;
  private hasVectorIndex = false;
  private ftsDirty = true;
  private readonly indexMinRows: number;
  private readonly refineFactor: number;
  private readonly ef: number | undefined;

  private constructor(
    readonly dir: string,
    private readonly db: lancedb.Connection,
    table: lancedb.Table | null,
    options: LanceStoreOptions,
  ) {
    super(options.embedder ?? null);
    this.table = table;
    this.dimValue = null;
    this.indexMinRows = options.indexMinRows ?? LANCE_INDEX_MIN_ROWS;
    this.refineFactor = options.refineFactor ?? 4;
    this.ef = options.ef;
  }

  /** Opens (or creates on first write) the store in `dir`. */
  static async open(dir: string, options: LanceStoreOptions = {}): Promise<LanceDBStore> {
    await mkdir(dir, { recursive: true });
    const db = await lancedb.connect(dir);
    const names = await db.tableNames();
    const table = names.includes(LANCE_TABLE) ? await db.openTable(LANCE_TABLE) : null;
    const store = new LanceDBStore(dir, db, table, options);
    if (table !== null) await store.readSchema();
    return store;
  }

  /** The vector width (null: no vectors yet, or a keyword-only store). */
  get dim(): number | null {
    return this.dimValue;
  }

  private async readSchema(): Promise<void> {
    const schema = await this.table!.schema();
    this.metaColumns = new Map();
    this.dimValue = null;
    for (const f of schema.fields) {
      if (f.name === 'vector') this.dimValue = (f.type as FixedSizeList).listSize;
      else if (/^m[lnb]?_/.test(f.name)) {
        const k = kindOfField(f);
        if (k !== null) this.metaColumns.set(f.name.slice(f.name.indexOf('_') + 1), k);
      }
    }
    const indices = await this.table!.listIndices();
    this.hasVectorIndex = indices.some((i) => i.columns.includes('vector'));
    this.ftsDirty = !indices.some((i) => i.columns.includes('fts'));
  }

  private baseFields(dim: number | null): Field[] {
    const fields: Field[] = [
      new Field('id', new Utf8(), false),
      new Field('text', new Utf8(), false),
      new Field('source', new Utf8(), false),
      new Field('hash', new Utf8(), false),
      new Field('location', new Utf8(), false),
      new Field('metadata', new Utf8(), false),
      new Field('fts', new Utf8(), false),
    ];
    if (dim !== null) fields.push(new Field('vector', new FixedSizeList(dim, new Field('item', new Float32(), true)), false));
    return fields;
  }

  private schema(): Schema {
    const fields = this.baseFields(this.dimValue);
    for (const [k, kind] of this.metaColumns) fields.push(new Field(columnFor(k, kind), arrowType(kind), true));
    return new Schema(fields);
  }

  /** Upserts chunks; `vectors` may be empty only for a keyword-only store (no embedder). */
  async addVectors(vectors: readonly Float32Array[], chunks: readonly Chunk[]): Promise<void> {
    if (chunks.length === 0) return;
    const keywordOnly = vectors.length === 0;
    if (keywordOnly && this.dimValue !== null) throw new RangeError(`lancedb store: this store holds ${this.dimValue}-d vectors; give a vector for every chunk`);
    if (!keywordOnly) {
      if (this.table !== null && this.dimValue === null) throw new RangeError('lancedb store: this store was created without vectors (keyword-only); ingest into a new store to add an embedder');
      this.checkVectors(vectors, chunks, this.dimValue);
    } else this.checkVectors(chunks.map(() => new Float32Array(0)), chunks, 0);
    // New metadata keys become new nullable columns (existing rows read null: "absent").
    const fresh = new Map<string, MetaKind>();
    for (const c of chunks) {
      for (const [k, v] of Object.entries(c.metadata)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
        const kind = metaKind(v);
        const have = this.metaColumns.get(k) ?? fresh.get(k);
        if (have === undefined) fresh.set(k, kind);
        else if (have !== kind) throw new TypeError(`lancedb store: metadata '${k}' is ${kind} in chunk ${c.id} but ${have} elsewhere; keep one type per key`);
      }
    }
    if (this.table === null) {
      this.dimValue = keywordOnly ? null : vectors[0]!.length;
      for (const [k, v] of fresh) this.metaColumns.set(k, v);
      this.table = await this.db.createEmptyTable(LANCE_TABLE, this.schema(), { mode: 'create', existOk: true });
    } else if (fresh.size > 0) {
      await this.table.addColumns([...fresh].map(([k, v]) => new Field(columnFor(k, v), arrowType(v), true)));
      for (const [k, v] of fresh) this.metaColumns.set(k, v);
    }
    const data = this.toArrow(vectors, chunks, keywordOnly);
    await this.table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data);
    this.ftsDirty = true;
  }

  /** Rows in the table's schema (booleans as 'true'/'false' text: see encodeList for why not native types). */
  private toArrow(vectors: readonly Float32Array[], chunks: readonly Chunk[], keywordOnly: boolean): ArrowTable {
    const rows = chunks.map((c, i) => {
      const row: Record<string, unknown> = {
        id: c.id,
        text: c.text,
        source: c.source,
        hash: c.hash,
        location: JSON.stringify(c.location),
        metadata: JSON.stringify(c.metadata),
        fts: bm25Tokenize(c.text).join(' '),
      };
      if (!keywordOnly) row.vector = Array.from(vectors[i]!);
      for (const [k, kind] of this.metaColumns) {
        const v = c.metadata[k];
        row[columnFor(k, kind)] = kind.endsWith('[]') ? encodeList(v) : kind === 'boolean' ? (v === undefined ? null : String(v)) : (v ?? null);
      }
      return row;
    });
    return lancedb.makeArrowTable(rows, { schema: this.schema() });
  }

  /**
   * Folds writes into the indexes: builds the HNSW index (cosine) once the table reaches the
   * threshold, refreshes the full-text index, and compacts small fragments (LanceDB's optimize()).
   */
  async optimize(): Promise<void> {
    if (this.table === null) return;
    const n = await this.table.countRows();
    if (this.dimValue !== null && !this.hasVectorIndex && n >= this.indexMinRows) {
      await this.table.createIndex('vector', { config: lancedb.Index.hnswSq({ distanceType: 'cosine' }), replace: true });
      this.hasVectorIndex = true;
    }
    await this.table.optimize({ cleanupOlderThan: new Date(Date.now() - 60_000) });
    if (this.ftsDirty) await this.buildFts();
  }

  private async buildFts(): Promise<void> {
    await this.table!.createIndex('fts', { config: lancedb.Index.fts({ baseTokenizer: 'whitespace', lowercase: false, stem: false, removeStopWords: false, asciiFolding: false, withPosition: false }), replace: true });
    this.ftsDirty = false;
  }

  private where(filter: MetadataFilters | undefined): string | null {
    if (filter === undefined || filter.filters.length === 0) return null;
    for (const k of filterKeys(filter)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new RangeError(`lancedb store: metadata key '${k}' is not an identifier`);
    return toLanceSql(filter, (key) => {
      const kind = this.metaColumns.get(key);
      if (kind !== undefined) return { name: columnFor(key, kind), list: kind.endsWith('[]'), boolText: kind === 'boolean' };
      if (key === 'source' || key === 'hash') return { name: key, list: false };
      return null;
    });
  }

  private toChunk(r: Row): Chunk {
    return { id: r.id, text: r.text, source: r.source, hash: r.hash, location: JSON.parse(r.location) as Location, metadata: JSON.parse(r.metadata) as Metadata };
  }

  private requireVectors(): void {
    if (this.dimValue === null && this.table !== null) throw new Error('lancedb store: this store holds no vectors (it was ingested without an embedder); use keyword (bm25) search or re-ingest with --embedder');
  }

  async similaritySearchVectorWithScore(query: Float32Array, k: number, options: SearchOptions = {}): Promise<ScoredChunk[]> {
    return (await this.searchWithVectors(query, k, options, false)).map((r) => r.hit);
  }

  protected async searchWithVectors(query: Float32Array, k: number, options: SearchOptions = {}, withVectors = true): Promise<{ hit: ScoredChunk; vector: Float32Array }[]> {
    if (this.table === null) return [];
    this.requireVectors();
    if (query.length !== this.dimValue) throw new RangeError(`lancedb store: query has ${query.length} dimensions, the store holds ${this.dimValue}`);
    let q = this.table.vectorSearch(Array.from(query)).column('vector').distanceType('cosine').limit(k);
    const where = this.where(options.filter);
    if (where !== null) q = q.where(where);
    if (this.hasVectorIndex) {
      q = q.refineFactor(this.refineFactor);
      if (this.ef !== undefined) q = q.ef(this.ef);
    }
    const columns = ['id', 'text', 'source', 'hash', 'location', 'metadata', '_distance', ...(withVectors ? ['vector'] : [])];
    const rows = (await q.select(columns).toArray()) as Row[];
    return rows.map((r) => ({
      hit: { chunk: this.toChunk(r), score: 1 - (r._distance ?? 1) },
      vector: withVectors && r.vector !== undefined ? Float32Array.from(r.vector as ArrayLike<number>) : new Float32Array(0),
    }));
  }

  async keywordSearch(query: string, k: number, options: SearchOptions = {}): Promise<ScoredChunk[]> {
    if (this.table === null) return [];
    const terms = bm25Tokenize(query);
    if (terms.length === 0) return [];
    if (this.ftsDirty) await this.buildFts();
    let q = this.table.query().fullTextSearch(terms.join(' '), { columns: ['fts'] }).limit(k);
    const where = this.where(options.filter);
    if (where !== null) q = q.where(where);
    const rows = (await q.select(['id', 'text', 'source', 'hash', 'location', 'metadata', '_score']).toArray()) as Row[];
    return rows.map((r) => ({ chunk: this.toChunk(r), score: r._score ?? 0 }));
  }

  async delete(params: { ids?: readonly string[]; filter?: MetadataFilters }): Promise<void> {
    if (this.table === null) return;
    const parts: string[] = [];
    if (params.ids !== undefined && params.ids.length > 0) parts.push(`id IN (${params.ids.map((id) => `'${id.replace(/'/g, "''")}'`).join(', ')})`);
    const where = this.where(params.filter);
    if (where !== null) parts.push(`(${where})`);
    if (parts.length === 0) return;
    await this.table.delete(parts.join(' OR '));
    this.ftsDirty = true;
  }

  async get(ids: readonly string[]): Promise<Chunk[]> {
    if (this.table === null || ids.length === 0) return [];
    const rows = (await this.table
      .query()
      .where(`id IN (${ids.map((id) => `'${id.replace(/'/g, "''")}'`).join(', ')})`)
      .select(['id', 'text', 'source', 'hash', 'location', 'metadata'])
      .toArray()) as Row[];
    const byId = new Map(rows.map((r) => [r.id, this.toChunk(r)]));
    return ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
  }

  async idsForSource(source: string): Promise<string[]> {
    if (this.table === null) return [];
    const rows = (await this.table.query().where(`source = '${source.replace(/'/g, "''")}'`).select(['id']).toArray()) as { id: string }[];
    return rows.map((r) => r.id).sort();
  }

  /** Every chunk id (for consistency checks). */
  async allIds(): Promise<string[]> {
    if (this.table === null) return [];
    const rows = (await this.table.query().select(['id']).toArray()) as { id: string }[];
    return rows.map((r) => r.id);
  }

  async count(): Promise<number> {
    return this.table === null ? 0 : this.table.countRows();
  }

  async close(): Promise<void> {
    this.table?.close();
    this.db.close();
  }
}
