/**
 * Incremental ingestion (add / replace / delete with a manifest), the embedding cache (unchanged
 * text embeds nothing), and crash safety: a child process killed with SIGKILL mid-ingest, then a
 * re-run, leaves exactly the expected chunks — none lost, none duplicated.
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CachedEmbedder, EmbeddingCache } from '../../src/rag/embeddings.js';
import { ingest, readManifest } from '../../src/rag/ingest.js';
import { loadFile, resolveInputs } from '../../src/rag/loaders.js';
import { RecursiveCharacterTextSplitter, splitDocuments } from '../../src/rag/splitters.js';
import { LanceDBStore } from '../../src/rag/stores/lancedb.js';
import { CountingEmbedder } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'weft-rag-ingest-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterAll(() => rmSync(join(import.meta.dirname, `../../node_modules/.cache/weft-rag-test/crash-child-${process.pid}.mjs`), { force: true }));

const sentence = (i: number): string => `Sentence ${i} talks about topic ${i % 7} and item ${(i * 13) % 29}.`;
function writeCorpus(dir: string, files: number, sentences: number): void {
  mkdirSync(dir, { recursive: true });
  for (let f = 0; f < files; f++) {
    const paras = Array.from({ length: sentences }, (_, i) => sentence(f * 1000 + i)).join(i2(f));
    writeFileSync(join(dir, `doc${String(f).padStart(2, '0')}.txt`), paras);
  }
}
const i2 = (f: number): string => (f % 2 === 0 ? '\n\n' : ' ');

/** The chunk ids a correct ingest of `dir` must hold (computed independently of the store). */
async function expectedIds(dir: string, chunkSize: number, chunkOverlap: number): Promise<string[]> {
  const ids: string[] = [];
  for (const f of await resolveInputs(dir)) {
    ids.push(...splitDocuments(await loadFile(f), new RecursiveCharacterTextSplitter({ chunkSize, chunkOverlap, separators: 'auto' })).map((c) => c.id));
  }
  return ids.sort();
}

describe('incremental ingestion', () => {
  const docs = join(root, 'docs');
  const storeDir = join(root, 'store');
  const inner = new CountingEmbedder();
  let embedder: CachedEmbedder;
  let store: LanceDBStore;

  beforeAll(async () => {
    writeCorpus(docs, 4, 30);
    embedder = new CachedEmbedder(inner, await EmbeddingCache.open(join(storeDir, 'embedding-cache.bin')));
    store = await LanceDBStore.open(storeDir, { embedder });
  });
  afterAll(() => store.close());

  const run = (): ReturnType<typeof ingest> => ingest({ input: docs, store, embedder, stateDir: storeDir, chunkSize: 200, chunkOverlap: 40 });

  it('first run adds every file', async () => {
    const r = await run();
    expect(r).toMatchObject({ files: 4, added: 4, changed: 0, removed: 0 });
    expect((await store.allIds()).sort()).toEqual(await expectedIds(docs, 200, 40));
    expect(inner.texts).toBe(r.chunksWritten);
  });

  it('re-running on an unchanged folder writes and embeds nothing', async () => {
    const before = inner.texts;
    const r = await run();
    expect(r).toMatchObject({ unchanged: 4, chunksWritten: 0, chunksDeleted: 0 });
    expect(inner.texts).toBe(before);
  });

  it('a changed file is replaced, a removed one deleted, a new one added; unchanged text is not re-embedded', async () => {
    appendFileSync(join(docs, 'doc01.txt'), ' An appended sentence about something entirely new.');
    unlinkSync(join(docs, 'doc03.txt'));
    writeFileSync(join(docs, 'doc09.txt'), 'A brand new file.\n\nWith two paragraphs.');
    const before = inner.texts;
    const r = await run();
    expect(r).toMatchObject({ files: 4, added: 1, changed: 1, removed: 1, unchanged: 2 });
    const ids = await store.allIds();
    expect(ids.length).toBe(new Set(ids).size);
    expect(ids.sort()).toEqual(await expectedIds(docs, 200, 40));
    // Only the new texts went to the model: the cache served every chunk that kept its text.
    expect(inner.texts - before).toBeLessThan(r.chunksWritten);
    expect(inner.texts - before).toBeGreaterThan(0);
    const manifest = readManifest(join(storeDir, 'manifest.json'))!;
    expect(Object.keys(manifest.files).map((f) => f.slice(docs.length))).toEqual(['/doc00.txt', '/doc01.txt', '/doc02.txt', '/doc09.txt']);
  });

  it('the embedding cache survives a torn final record', async () => {
    const path = join(storeDir, 'embedding-cache.bin');
    const size = statSync(path).size;
    appendFileSync(path, Buffer.alloc(50, 7)); // a record cut short by a crash
    const cache = await EmbeddingCache.open(path);
    expect(statSync(path).size).toBe(size);
    expect(cache.size).toBe(embedder.cache.size);
  });
});

/** rolldown (vitest's bundler) turns the TypeScript child into one plain-Node file. */
const rolldown = await import('rolldown').catch(() => null);
if (rolldown === null) console.warn('skipping the kill -9 tests: rolldown (installed with vitest) cannot be imported to bundle the child process');

describe.skipIf(rolldown === null)('crash safety (kill -9 mid-ingest)', () => {
  const docs = join(root, 'crash-docs');
  beforeAll(() => writeCorpus(docs, 6, 40));
  const child = join(import.meta.dirname, 'crash-child.ts');
  let bundle = '';

  beforeAll(async () => {
    // The child runs as plain Node: bundle it (node_modules stay external).
    const { build } = rolldown!;
    // Inside the repository, so the bundle's bare imports resolve to our node_modules.
    const cacheDir = join(import.meta.dirname, '../../node_modules/.cache/weft-rag-test');
    mkdirSync(cacheDir, { recursive: true });
    bundle = join(cacheDir, `crash-child-${process.pid}.mjs`);
    await build({
      input: child,
      platform: 'node',
      external: (id) => !id.startsWith('.') && !id.startsWith('/'),
      resolve: { extensionAlias: { '.js': ['.ts', '.js'] } },
      output: { file: bundle, format: 'esm' },
      logLevel: 'silent',
    });
  });

  async function checkConsistent(storeDir: string): Promise<number> {
    const s = await LanceDBStore.open(storeDir);
    const ids = await s.allIds();
    await s.close();
    expect(ids.length, 'no duplicated chunk').toBe(new Set(ids).size);
    expect(ids.sort(), 'no lost chunk').toEqual(await expectedIds(docs, 200, 40));
    return ids.length;
  }

  it('SIGKILL after a batch: the re-run completes, no chunk lost or duplicated', async () => {
    const storeDir = join(root, 'crash-store-a');
    const out = spawnSync(bundle, [docs, storeDir, '60']);
    expect(out.signal).toBe('SIGKILL');
    expect(out.stdout).not.toContain('complete');
    const done = spawnSync(bundle, [docs, storeDir]);
    expect(done.stdout).toContain('complete');
    expect(await checkConsistent(storeDir)).toBeGreaterThan(60);
  });

  it('SIGKILL at arbitrary moments (mid-write), repeatedly: still consistent after a re-run', async () => {
    const storeDir = join(root, 'crash-store-b');
    let interrupted = 0;
    for (let round = 0; round < 4; round++) {
      const p = spawn(process.execPath, [bundle, docs, storeDir], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise((r) => p.once('exit', r));
      // Kill once the child is writing (its first progress line), after a further 0–150 ms.
      await Promise.race([exited, new Promise<void>((r) => p.stdout.once('data', () => r()))]);
      await new Promise((r) => setTimeout(r, (round * 53) % 150));
      p.kill('SIGKILL');
      await exited;
      if (!out.includes('complete')) interrupted++;
    }
    expect(interrupted, 'kills that landed mid-ingest').toBeGreaterThan(0);
    const done = spawnSync(bundle, [docs, storeDir]);
    expect(done.stdout).toContain('complete');
    await checkConsistent(storeDir);
  });
});

function spawnSync(bundle: string, args: string[]): { stdout: string; signal: string | null } {
  try {
    const stdout = execFileSync(process.execPath, [bundle, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { stdout, signal: null };
  } catch (e) {
    const err = e as { stdout?: string; signal?: string | null; stderr?: string };
    if (err.signal === null || err.signal === undefined) throw new Error(`child failed: ${err.stderr ?? ''}`);
    return { stdout: err.stdout ?? '', signal: err.signal };
  }
}

