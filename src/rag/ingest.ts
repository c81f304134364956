/**
 * Incremental ingestion. A manifest (manifest.json in the store's state directory) records, per
 * source file, the hash of its bytes and its chunk ids. A run:
 *   1. deletes the chunks of files that are gone;
 *   2. for each new or changed file (or every file when the chunking or the embedder changed):
 *      upserts its chunks (ids are stable: same source, position and text → same id), then deletes
 *      the file's chunks that are no longer produced, then records the file in the manifest;
 *   3. optimizes the store (indexes, compaction).
 * The manifest is written atomically after each file, and only after the store holds that file's
 * final chunks. A crash at any point leaves each file either recorded with exactly its chunks, or
 * unrecorded — and an unrecorded file is redone in full on the next run, whose upserts replace
 * (never duplicate) what the crashed run wrote and whose stale-id deletion removes the rest.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic.js';
import type { Embedder } from './embeddings.js';
import { type FieldMapping, loadFile, resolveInputs } from './loaders.js';
import { RecursiveCharacterTextSplitter, splitDocuments, type TextSplitter } from './splitters.js';
import type { VectorStore } from './store.js';
import { type Chunk, sha256Hex } from './types.js';

const ManifestSchema = z.object({
  version: z.literal(1),
  /** Changing any of these re-ingests everything. */
  config: z.object({ chunkSize: z.number().int(), chunkOverlap: z.number().int(), embedder: z.string().nullable() }),
  files: z.record(z.string(), z.object({ fileHash: z.string(), chunkIds: z.array(z.string()) })),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export function readManifest(path: string): Manifest | null {
  if (!existsSync(path)) return null;
  const r = ManifestSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!r.success) throw new Error(`${path}: not a Weft RAG manifest (${r.error.issues[0]?.message}); delete it to re-ingest from scratch`);
  return r.data;
}

export interface IngestProgress {
  stage: 'scan' | 'file' | 'optimize' | 'done';
  files: number;
  filesDone: number;
  chunksAdded: number;
  source?: string;
}

export interface IngestOptions {
  /** File, directory or glob. */
  input: string;
  store: VectorStore & { optimize?: () => Promise<void> };
  /** null: keyword-only (BM25) store. */
  embedder: Embedder | null;
  /** Where manifest.json lives. */
  stateDir: string;
  chunkSize?: number;
  chunkOverlap?: number;
  fields?: FieldMapping;
  /** Chunks embedded and written per batch (default 64). */
  batchSize?: number;
  onProgress?: (p: IngestProgress) => void;
  /** Test hook: called after each batch is written (the crash test kills the process here). */
  afterBatch?: (written: number) => void;
}

export interface IngestResult {
  files: number;
  added: number;
  unchanged: number;
  changed: number;
  removed: number;
  chunksWritten: number;
  chunksDeleted: number;
  totalChunks: number;
}

/** Markdown and HTML arrive as heading sections (with their paths), so one splitter serves every format. */
function splitterFor(chunkSize: number, chunkOverlap: number): TextSplitter {
  return new RecursiveCharacterTextSplitter({ chunkSize, chunkOverlap, separators: 'auto' });
}

export async function ingest(options: IngestOptions): Promise<IngestResult> {
  const chunkSize = options.chunkSize ?? 1000;
  const chunkOverlap = options.chunkOverlap ?? 200;
  const batchSize = options.batchSize ?? 64;
  const { store, embedder } = options;
  if (embedder === null && store.kind !== 'lancedb' && store.kind !== 'memory') {
    throw new Error(`ingest: a ${store.kind} store needs an embedder (--embedder); keyword-only stores are LanceDB directories`);
  }
  await mkdir(options.stateDir, { recursive: true });
  const manifestPath = join(options.stateDir, 'manifest.json');
  const config = { chunkSize, chunkOverlap, embedder: embedder?.id ?? null };
  const previous = readManifest(manifestPath);
  const sameConfig = previous !== null && JSON.stringify(previous.config) === JSON.stringify(config);
  const manifest: Manifest = { version: 1, config, files: previous?.files ?? {} };
  const save = (): Promise<void> => writeFileAtomic(manifestPath, JSON.stringify(manifest) + '\n');

  options.onProgress?.({ stage: 'scan', files: 0, filesDone: 0, chunksAdded: 0 });
  const files = await resolveInputs(options.input);
  const result: IngestResult = { files: files.length, added: 0, unchanged: 0, changed: 0, removed: 0, chunksWritten: 0, chunksDeleted: 0, totalChunks: 0 };
  const present = new Set(files);
  for (const source of Object.keys(manifest.files)) {
    if (present.has(source)) continue;
    const ids = await store.idsForSource(source);
    await store.delete({ ids });
    result.chunksDeleted += ids.length;
    result.removed++;
    delete manifest.files[source];
    await save();
  }
  let done = 0;
  for (const path of files) {
    const bytes = await readFile(path);
    const fileHash = sha256Hex(bytes);
    const known = manifest.files[path];
    if (sameConfig && known !== undefined && known.fileHash === fileHash) {
      result.unchanged++;
      done++;
      options.onProgress?.({ stage: 'file', files: files.length, filesDone: done, chunksAdded: result.chunksWritten, source: path });
      continue;
    }
    const chunks: Chunk[] = splitDocuments(await loadFile(path, { fields: options.fields }), splitterFor(chunkSize, chunkOverlap));
    for (let s = 0; s < chunks.length; s += batchSize) {
      const batch = chunks.slice(s, s + batchSize);
      if (embedder === null) await store.addVectors([], batch);
      else await store.addVectors(await embedder.embed(batch.map((c) => c.text)), batch);
      result.chunksWritten += batch.length;
      options.afterBatch?.(result.chunksWritten);
    }
    const keep = new Set(chunks.map((c) => c.id));
    const stale = (await store.idsForSource(path)).filter((id) => !keep.has(id));
    if (stale.length > 0) await store.delete({ ids: stale });
    result.chunksDeleted += stale.length;
    if (known === undefined) result.added++;
    else result.changed++;
    manifest.files[path] = { fileHash, chunkIds: [...keep] };
    await save();
    done++;
    options.onProgress?.({ stage: 'file', files: files.length, filesDone: done, chunksAdded: result.chunksWritten, source: path });
  }
  if (!sameConfig) await save();
  options.onProgress?.({ stage: 'optimize', files: files.length, filesDone: done, chunksAdded: result.chunksWritten });
  await store.optimize?.();
  result.totalChunks = await store.count();
  options.onProgress?.({ stage: 'done', files: files.length, filesDone: done, chunksAdded: result.chunksWritten });
  return result;
}

// -------------------------------------------------------------------------------------------------
// What a store directory remembers for `weft rag query` / `ask`
// -------------------------------------------------------------------------------------------------

const RagConfigSchema = z.object({
  version: z.literal(1),
  /** The --embedder given at ingest (a model directory or a URL), or null for keyword-only. */
  embedder: z.string().nullable(),
  embedderModel: z.string().optional(),
  chunkSize: z.number().int(),
  chunkOverlap: z.number().int(),
});
export type RagConfig = z.infer<typeof RagConfigSchema>;

export function readRagConfig(stateDir: string): RagConfig | null {
  const path = join(stateDir, 'weft-rag.json');
  if (!existsSync(path)) return null;
  const r = RagConfigSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!r.success) throw new Error(`${path}: invalid (${r.error.issues[0]?.message})`);
  return r.data;
}

export async function writeRagConfig(stateDir: string, config: RagConfig): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  await writeFileAtomic(join(stateDir, 'weft-rag.json'), JSON.stringify(config, null, 2) + '\n');
}
