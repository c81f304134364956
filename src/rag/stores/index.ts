/**
 * Opening a store from a --store value: a directory is LanceDB (the embedded default);
 * `postgres://…` / `postgresql://…` is PostgreSQL through `pg`; `pglite:<dir>` (or `pglite:memory`)
 * is embedded PostgreSQL; `memory` is the exact in-memory store.
 */
import type { Embedder } from '../embeddings.js';
import type { VectorStore } from '../store.js';
import { LanceDBStore } from './lancedb.js';
import { MemoryVectorStore } from './memory.js';
import { type PgStoreOptions, PgVectorStore, sqlClientFromPGlite, sqlClientFromPgPool } from './pgvector.js';

export { LanceDBStore } from './lancedb.js';
export { MemoryVectorStore } from './memory.js';
export { PgVectorStore, sqlClientFromPGlite, sqlClientFromPgPool, type PgStoreOptions, type SqlClient } from './pgvector.js';

export type StoreKind = 'lancedb' | 'pgvector' | 'pglite' | 'memory';

export function storeKindOf(spec: string): StoreKind {
  if (spec === 'memory') return 'memory';
  if (/^postgres(ql)?:\/\//.test(spec)) return 'pgvector';
  if (spec.startsWith('pglite:')) return 'pglite';
  return 'lancedb';
}

export async function openPGlite(dirOrMemory: string, embedder: Embedder | null = null): Promise<PgVectorStore> {
  const { PGlite } = await import('@electric-sql/pglite');
  // pgvector ships as its own package for PGlite 0.5 (pinned to the PGlite release it was built for).
  const { vector } = await import('@electric-sql/pglite-pgvector');
  const extensions = { vector };
  const db = dirOrMemory === 'memory' || dirOrMemory === '' ? new PGlite({ extensions }) : new PGlite(dirOrMemory, { extensions });
  await db.waitReady;
  return PgVectorStore.open(sqlClientFromPGlite(db), { embedder });
}

export async function openPostgres(url: string, embedder: Embedder | null = null, options: Omit<PgStoreOptions, 'embedder'> = {}): Promise<PgVectorStore> {
  const pg = await import('pg');
  const pool = new pg.default.Pool({ connectionString: url, max: 4 });
  return PgVectorStore.open(sqlClientFromPgPool(pool), { ...options, embedder });
}

/** Opens the store a --store value names. */
export async function openStore(spec: string, embedder: Embedder | null = null): Promise<VectorStore & { optimize?: () => Promise<void> }> {
  switch (storeKindOf(spec)) {
    case 'memory':
      return new MemoryVectorStore(embedder);
    case 'pgvector':
      return openPostgres(spec, embedder);
    case 'pglite':
      return openPGlite(spec.slice('pglite:'.length), embedder);
    case 'lancedb':
      return LanceDBStore.open(spec, { embedder });
  }
}
