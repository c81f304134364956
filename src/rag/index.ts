/** Retrieval-augmented generation: loaders, splitters, embedders, stores, retrieval, answers, ingestion. */
export * from './types.js';
export * from './loaders.js';
export * from './splitters.js';
export * from './embeddings.js';
export * from './filters.js';
export * from './bm25.js';
export * from './store.js';
export * from './retrieve.js';
export * from './answer.js';
export * from './ingest.js';
export * from './train-embedder.js';
export { LanceDBStore, MemoryVectorStore, PgVectorStore, openStore, openPGlite, openPostgres, sqlClientFromPGlite, sqlClientFromPgPool, storeKindOf, type SqlClient, type StoreKind } from './stores/index.js';
