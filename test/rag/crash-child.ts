/**
 * The process the crash test kills: ingests argv[2] into the LanceDB store argv[3] with a cached
 * test embedder; with argv[4] = N it kills itself with SIGKILL once N chunks are written.
 */
import { CachedEmbedder, EmbeddingCache } from '../../src/rag/embeddings.js';
import { ingest } from '../../src/rag/ingest.js';
import { LanceDBStore } from '../../src/rag/stores/lancedb.js';
import { CountingEmbedder } from './helpers.js';

const [input, storeDir, killAfter] = process.argv.slice(2) as [string, string, string | undefined];
const embedder = new CachedEmbedder(new CountingEmbedder(), await EmbeddingCache.open(`${storeDir}/embedding-cache.bin`));
const store = await LanceDBStore.open(storeDir, { embedder });
const limit = killAfter === undefined ? Infinity : Number(killAfter);
await ingest({
  input,
  store,
  embedder,
  stateDir: storeDir,
  chunkSize: 200,
  chunkOverlap: 40,
  batchSize: 8,
  afterBatch: (written) => {
    if (written >= limit) process.kill(process.pid, 'SIGKILL');
  },
  onProgress: (p) => {
    if (p.stage === 'file') process.stdout.write(`file ${p.filesDone}/${p.files}\n`);
  },
});
await store.close();
process.stdout.write('complete\n');
