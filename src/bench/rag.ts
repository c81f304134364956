/**
 * `weft bench rag`: the RAG evidence.
 *  - quality: a retrieval test set built from ../shared/data — WikiText-2 articles and the opening
 *    of Romance of the Three Kingdoms, chunked, with cloze-style queries made from a sentence of a
 *    chunk (half its words, or 40% of its characters, dropped at random) whose answer chunks are
 *    known (every chunk containing the sentence). recall@5, MRR@10 and nDCG@10 for BM25 (Weft's,
 *    and LanceDB's full-text index on the same terms as the anchor), dense (all-MiniLM-L6-v2 when
 *    its directory is present) and hybrid (RRF).
 *  - stores: ingest rate and query latency p50/p99 at N chunks of 384-d vectors (a Gaussian mixture,
 *    as sentence embeddings cluster) for LanceDB (HNSW, cosine) and PostgreSQL in PGlite, with
 *    recall@10 against the exact brute-force search (the anchor).
 *  - crash: `weft rag ingest` killed with SIGKILL at random moments, then re-run: chunks lost or
 *    duplicated (needs dist/, i.e. npm run build).
 * Prints one JSON line per figure (and a table unless --json).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CachedEmbedder, EmbeddingCache, type Embedder, SentenceTransformer } from '../rag/embeddings.js';
import { RecursiveCharacterTextSplitter, sentenceSpans, splitDocuments } from '../rag/splitters.js';
import { LanceDBStore } from '../rag/stores/lancedb.js';
import { MemoryVectorStore } from '../rag/stores/memory.js';
import { openPGlite } from '../rag/stores/index.js';
import { retrieve, type RetrievalMode } from '../rag/retrieve.js';
import type { VectorStore } from '../rag/store.js';
import { type Chunk, sha256Hex } from '../rag/types.js';
import { Generator } from '../tensor/random.js';
import { packageRoot, round } from './common.js';

const shared = (): string => join(packageRoot(), '..', 'shared', 'data');
export const DEFAULT_MINILM = process.env.WEFT_MINILM_DIR ?? '/tmp/weft-models/all-MiniLM-L6-v2';

interface Query {
  corpus: 'wikitext2' | 'sanguo';
  text: string;
  relevant: Set<string>;
}

/** WikiText-2 articles (" = Title = " lines start one). */
function wikiArticles(maxArticles: number): { title: string; text: string }[] {
  const raw = readFileSync(join(shared(), 'wikitext2', 'wiki.test.raw'), 'utf8');
  const out: { title: string; text: string }[] = [];
  let cur: { title: string; lines: string[] } | null = null;
  for (const line of raw.split(/\r?\n/)) {
    const m = /^ = ([^=].*) = $/.exec(line);
    if (m !== null) {
      if (cur !== null) out.push({ title: cur.title, text: cur.lines.join('\n').trim() });
      if (out.length >= maxArticles) return out;
      cur = { title: m[1]!, lines: [] };
    } else if (cur !== null && line.trim() !== '') cur.lines.push(line.trim());
  }
  if (cur !== null && out.length < maxArticles) out.push({ title: cur.title, text: cur.lines.join('\n').trim() });
  return out;
}

export interface QualityOptions {
  articles?: number;
  zhChars?: number;
  queriesPerCorpus?: number;
  minilm?: string;
  seed?: number;
}

export function buildTestSet(o: QualityOptions = {}): { chunks: Chunk[]; queries: Query[] } {
  const rng = new Generator(o.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)]!;
  const en = new RecursiveCharacterTextSplitter({ chunkSize: 1000, chunkOverlap: 200 });
  const zh = new RecursiveCharacterTextSplitter({ chunkSize: 300, chunkOverlap: 60, separators: 'auto' });
  const wikiChunks = splitDocuments(
    wikiArticles(o.articles ?? 20).map((a) => ({ text: a.text, source: `wikitext2:${a.title}`, location: {}, metadata: { corpus: 'wikitext2' } })),
    en,
  );
  const sanguoText = readFileSync(join(shared(), 'zh', 'sanguo_yanyi.txt'), 'utf8')
    .slice(0, o.zhChars ?? 60_000)
    .replace(/[ \t\u3000\r]+/g, '')
    .replace(/\n+/g, '');
  const zhChunks = splitDocuments([{ text: sanguoText, source: 'sanguo_yanyi.txt', location: {}, metadata: { corpus: 'sanguo' } }], zh);
  const chunks = [...wikiChunks, ...zhChunks];
  const queries: Query[] = [];
  const n = o.queriesPerCorpus ?? 100;
  for (const [corpus, pool] of [['wikitext2', wikiChunks], ['sanguo', zhChunks]] as const) {
    const seen = new Set<string>();
    for (let tries = 0; queries.filter((q) => q.corpus === corpus).length < n && tries < n * 50; tries++) {
      const c = pick(pool);
      const sentences = sentenceSpans(c.text).map((s) => c.text.slice(s.start, s.end)).filter((s) => (corpus === 'sanguo' ? s.length >= 12 && s.length <= 60 : s.length >= 60 && s.length <= 300));
      if (sentences.length === 0) continue;
      const s = pick(sentences);
      if (seen.has(s)) continue;
      seen.add(s);
      const relevant = new Set(chunks.filter((x) => x.text.includes(s)).map((x) => x.id));
      let text: string;
      if (corpus === 'wikitext2') text = s.split(/\s+/).filter(() => rng.uniform() >= 0.5).join(' ');
      else text = [...s].filter(() => rng.uniform() >= 0.4).join('');
      if (text.length < 5) continue;
      queries.push({ corpus, text, relevant });
    }
  }
  return { chunks, queries };
}

export interface QualityRow {
  bench: 'rag-quality';
  corpus: string;
  method: string;
  queries: number;
  recall_at_5: number;
  mrr_at_10: number;
  ndcg_at_10: number;
}

function scoreRanking(ids: readonly string[], relevant: Set<string>): { r5: number; rr: number; ndcg: number } {
  const top5 = ids.slice(0, 5).filter((id) => relevant.has(id)).length;
  const first = ids.slice(0, 10).findIndex((id) => relevant.has(id));
  let dcg = 0;
  ids.slice(0, 10).forEach((id, i) => {
    if (relevant.has(id)) dcg += 1 / Math.log2(i + 2);
  });
  let idcg = 0;
  for (let i = 0; i < Math.min(10, relevant.size); i++) idcg += 1 / Math.log2(i + 2);
  return { r5: top5 / relevant.size, rr: first < 0 ? 0 : 1 / (first + 1), ndcg: idcg === 0 ? 0 : dcg / idcg };
}

export async function benchQuality(o: QualityOptions = {}, log: (s: string) => void = () => undefined): Promise<QualityRow[]> {
  const { chunks, queries } = buildTestSet(o);
  log(`quality: ${chunks.length} chunks, ${queries.length} queries`);
  const minilm = o.minilm ?? DEFAULT_MINILM;
  let embedder: Embedder | null = null;
  if (existsSync(join(minilm, 'modules.json'))) {
    const cacheDir = join(tmpdir(), 'weft-bench-rag-cache');
    mkdirSync(cacheDir, { recursive: true });
    embedder = new CachedEmbedder(await SentenceTransformer.load(minilm), await EmbeddingCache.open(join(cacheDir, 'minilm.bin')));
  } else log(`quality: dense skipped — no all-MiniLM-L6-v2 at ${minilm} (set WEFT_MINILM_DIR; see scripts/fixtures/rag_minilm.py)`);
  const memory = new MemoryVectorStore(embedder);
  const t0 = performance.now();
  if (embedder !== null) await memory.addVectors(await embedder.embed(chunks.map((c) => c.text)), chunks);
  else await memory.addVectors(chunks.map(() => new Float32Array([1])), chunks);
  log(`quality: embedded and indexed in ${round((performance.now() - t0) / 1000, 1)} s`);
  const lanceDir = mkdtempSync(join(tmpdir(), 'weft-bench-rag-q-'));
  const lance = await LanceDBStore.open(lanceDir);
  await lance.addVectors([], chunks);
  await lance.optimize();
  const methods: [string, VectorStore, RetrievalMode][] = [
    ['bm25 (weft)', memory, 'bm25'],
    ['bm25 (lancedb fts, anchor)', lance, 'bm25'],
  ];
  if (embedder !== null) methods.push(['dense (all-MiniLM-L6-v2)', memory, 'dense'], ['hybrid (rrf k=60)', memory, 'hybrid']);
  const rows: QualityRow[] = [];
  for (const corpus of ['wikitext2', 'sanguo'] as const) {
    const qs = queries.filter((q) => q.corpus === corpus);
    for (const [method, store, mode] of methods) {
      let r5 = 0;
      let rr = 0;
      let nd = 0;
      for (const q of qs) {
        const hits = await retrieve(store, q.text, { k: 10, mode, filter: { filters: [{ key: 'corpus', operator: '==', value: corpus }] } });
        const s = scoreRanking(hits.map((h) => h.chunk.id), q.relevant);
        r5 += s.r5;
        rr += s.rr;
        nd += s.ndcg;
      }
      rows.push({ bench: 'rag-quality', corpus, method, queries: qs.length, recall_at_5: round(r5 / qs.length, 3), mrr_at_10: round(rr / qs.length, 3), ndcg_at_10: round(nd / qs.length, 3) });
    }
  }
  await lance.close();
  rmSync(lanceDir, { recursive: true, force: true });
  return rows;
}

// -------------------------------------------------------------------------------------------------

export interface StoreRow {
  bench: 'rag-store';
  store: string;
  mode: string;
  n: number;
  dim: number;
  /** Rows per second of the writes alone (upserts), before indexing. */
  write_docs_per_s: number;
  /** optimize(): the ANN index build (from 20,000 rows), the full-text index, compaction. */
  index_seconds: number;
  /** End to end: N / (writes + optimize). */
  ingest_docs_per_s: number;
  ingest_seconds: number;
  queries: number;
  p50_ms: number;
  p99_ms: number;
  recall_at_10: number;
  exact_p50_ms: number;
  /** p50 of the exact brute-force scan / p50 of the store (> 1: the store is faster). */
  speedup_vs_exact: number;
}

/** A Gaussian mixture on the sphere: clusters like sentence embeddings, unlike uniform noise. */
export function mixtureVectors(n: number, dim: number, clusters: number, seed: number): Float32Array[] {
  const rng = new Generator(seed);
  const centers = Array.from({ length: clusters }, () => Float32Array.from({ length: dim }, () => rng.normal()));
  return Array.from({ length: n }, () => {
    const c = centers[Math.floor(rng.uniform() * clusters)]!;
    const v = Float32Array.from(c, (x) => x + 0.6 * rng.normal());
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / norm);
  });
}

function exactTopK(data: readonly Float32Array[], q: Float32Array, k: number): number[] {
  const best: { i: number; s: number }[] = [];
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    let s = 0;
    for (let j = 0; j < q.length; j++) s += v[j]! * q[j]!;
    if (best.length < k || s > best[best.length - 1]!.s) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.i);
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

export interface StoreBenchOptions {
  n?: number;
  pgN?: number;
  dim?: number;
  queries?: number;
  stores?: ('lancedb' | 'pglite')[];
}

export async function benchStores(o: StoreBenchOptions = {}, log: (s: string) => void = () => undefined): Promise<StoreRow[]> {
  const dim = o.dim ?? 384;
  const nq = o.queries ?? 100;
  const rows: StoreRow[] = [];
  for (const kind of o.stores ?? ['lancedb', 'pglite']) {
    const n = kind === 'lancedb' ? (o.n ?? 100_000) : (o.pgN ?? 10_000);
    const data = mixtureVectors(n, dim, Math.max(10, Math.round(n / 100)), 11);
    const queries = mixtureVectors(nq, dim, Math.max(10, Math.round(n / 100)), 11).map((_, i) => {
      // Fresh points from the same mixture: perturb stored ones (a query is near, never equal to, a chunk).
      const base = data[(i * 7919) % n]!;
      const rng = new Generator(1000 + i);
      const v = Float32Array.from(base, (x) => x + 0.05 * rng.normal());
      const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
      return v.map((x) => x / norm);
    });
    const chunks: Chunk[] = data.map((_, i) => ({ id: `v${i}`, text: `vector ${i}`, source: `bench/${i % 100}`, location: {}, hash: sha256Hex(`vector ${i}`), metadata: { shard: i % 10 } }));
    const exactTimes: number[] = [];
    const truth = queries.map((q) => {
      const t = performance.now();
      const r = exactTopK(data, q, 10);
      exactTimes.push(performance.now() - t);
      return new Set(r.map((i) => `v${i}`));
    });
    const dir = mkdtempSync(join(tmpdir(), `weft-bench-rag-${kind}-`));
    const store = kind === 'lancedb' ? await LanceDBStore.open(dir, { refineFactor: 4 }) : await openPGlite(join(dir, 'pg'));
    const t0 = performance.now();
    const batch = kind === 'lancedb' ? 10_000 : 1000;
    for (let s = 0; s < n; s += batch) {
      await store.addVectors(data.slice(s, s + batch), chunks.slice(s, s + batch));
      log(`stores: ${kind} ${Math.min(n, s + batch)}/${n} written, ${round((performance.now() - t0) / 1000, 1)} s`);
    }
    const writeSeconds = (performance.now() - t0) / 1000;
    await store.optimize();
    const ingestSeconds = (performance.now() - t0) / 1000;
    const times: number[] = [];
    let hit = 0;
    for (let i = 0; i < nq; i++) {
      const t = performance.now();
      const r = await store.similaritySearchVectorWithScore(queries[i]!, 10);
      times.push(performance.now() - t);
      hit += r.filter((h) => truth[i]!.has(h.chunk.id)).length;
    }
    const mode = store instanceof LanceDBStore ? (n >= 20_000 ? 'hnsw-sq cosine, refineFactor 4' : 'flat (exact)') : (store as Awaited<ReturnType<typeof openPGlite>>).vectorMode === 'pgvector' ? 'pgvector hnsw' : 'real[] + SQL cosine (no pgvector in this PGlite)';
    const p50 = pct(times, 50);
    rows.push({
      bench: 'rag-store',
      store: kind,
      mode,
      n,
      dim,
      write_docs_per_s: round(n / writeSeconds, 0),
      index_seconds: round(ingestSeconds - writeSeconds, 1),
      ingest_docs_per_s: round(n / ingestSeconds, 0),
      ingest_seconds: round(ingestSeconds, 1),
      queries: nq,
      p50_ms: round(p50, 2),
      p99_ms: round(pct(times, 99), 2),
      recall_at_10: round(hit / (nq * 10), 3),
      exact_p50_ms: round(pct(exactTimes, 50), 2),
      speedup_vs_exact: round(pct(exactTimes, 50) / p50, 4),
    });
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

// -------------------------------------------------------------------------------------------------

export interface CrashRow {
  bench: 'rag-crash';
  kills: number;
  interrupted: number;
  expected_chunks: number;
  chunks_after_rerun: number;
  lost: number;
  duplicated: number;
}

/** Kills `weft rag ingest` (dist build) with SIGKILL at random moments, re-runs it, compares with a clean ingest. */
export async function benchCrash(kills = 5, log: (s: string) => void = () => undefined): Promise<CrashRow> {
  const cli = join(packageRoot(), 'dist', 'cli', 'index.js');
  if (!existsSync(cli)) throw new Error(`bench rag --part crash: ${cli} is missing; build first (npx tsc -p tsconfig.build.json)`);
  const root = mkdtempSync(join(tmpdir(), 'weft-bench-rag-crash-'));
  const docs = join(root, 'docs');
  mkdirSync(docs);
  for (const a of wikiArticles(30)) writeFileSync(join(docs, `${a.title.replace(/[^A-Za-z0-9]+/g, '_').slice(0, 60)}.txt`), a.text);
  const args = (store: string): string[] => [cli, 'rag', 'ingest', docs, '--store', store, '--chunk-size', '300', '--chunk-overlap', '50'];
  const clean = join(root, 'clean');
  execFileSync(process.execPath, args(clean), { stdio: 'ignore' });
  const crashed = join(root, 'crashed');
  const rng = new Generator(3);
  let interrupted = 0;
  for (let i = 0; i < kills; i++) {
    const p = spawn(process.execPath, args(crashed), { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    await Promise.race([exited, new Promise((r) => setTimeout(r, 600 + rng.uniform() * 1500))]);
    const killed = p.kill('SIGKILL');
    const code = await exited;
    if (killed && code !== 0) interrupted++;
    log(`crash: kill ${i + 1}/${kills}${killed && code !== 0 ? ' (mid-ingest)' : ' (had finished)'}`);
  }
  execFileSync(process.execPath, args(crashed), { stdio: 'ignore' });
  const a = await LanceDBStore.open(clean);
  const b = await LanceDBStore.open(crashed);
  const want = new Set(await a.allIds());
  const got = await b.allIds();
  await a.close();
  await b.close();
  rmSync(root, { recursive: true, force: true });
  const gotSet = new Set(got);
  return {
    bench: 'rag-crash',
    kills,
    interrupted,
    expected_chunks: want.size,
    chunks_after_rerun: got.length,
    lost: [...want].filter((id) => !gotSet.has(id)).length,
    duplicated: got.length - gotSet.size + [...gotSet].filter((id) => !want.has(id)).length,
  };
}

export function registerRagBench(bench: Command): void {
  bench
    .command('rag')
    .description('RAG evidence: retrieval quality (recall@5, MRR, nDCG@10) on ../shared/data, store ingest/query speed and recall at N chunks, kill -9 crash test')
    .option('--part <list>', 'comma-separated: quality, stores, crash (default: all)', 'quality,stores,crash')
    .option('--n <n>', 'LanceDB store size (default: 100000)')
    .option('--pg-n <n>', 'PGlite store size (default: 10000; exact SQL scan without pgvector)')
    .option('--stores <list>', 'stores to measure: lancedb, pglite (default: both)', 'lancedb,pglite')
    .option('--queries <n>', 'queries per corpus / per store (default: 100)')
    .option('--articles <n>', 'WikiText-2 articles in the quality set (default: 20)')
    .option('--minilm <dir>', `all-MiniLM-L6-v2 directory for dense retrieval (default: ${DEFAULT_MINILM})`)
    .option('--json', 'JSON lines only')
    .action(async (opts: { part: string; n?: string; pgN?: string; stores: string; queries?: string; articles?: string; minilm?: string; json?: boolean }) => {
      const parts = new Set(opts.part.split(',').map((s) => s.trim()));
      const num = (v: string | undefined, name: string): number | undefined => {
        if (v === undefined) return undefined;
        const x = Number(v);
        if (!Number.isInteger(x) || x < 1) throw new Error(`${name}: expected a positive integer, got ${v}`);
        return x;
      };
      const log = (s: string): void => void process.stderr.write(`${s}\n`);
      const out = (row: object): void => console.log(JSON.stringify(row));
      if (parts.has('quality')) {
        const rows = await benchQuality({ articles: num(opts.articles, '--articles'), queriesPerCorpus: num(opts.queries, '--queries'), minilm: opts.minilm }, log);
        rows.forEach(out);
        if (opts.json !== true) {
          console.log('| corpus | method | queries | recall@5 | MRR@10 | nDCG@10 |\n|---|---|---|---|---|---|');
          for (const r of rows) console.log(`| ${r.corpus} | ${r.method} | ${r.queries} | ${r.recall_at_5} | ${r.mrr_at_10} | ${r.ndcg_at_10} |`);
        }
      }
      if (parts.has('stores')) {
        const stores = opts.stores.split(',').map((x) => x.trim());
        for (const x of stores) if (x !== 'lancedb' && x !== 'pglite') throw new Error(`--stores: unknown store '${x}' (lancedb, pglite)`);
        const rows = await benchStores({ n: num(opts.n, '--n'), pgN: num(opts.pgN, '--pg-n'), queries: num(opts.queries, '--queries'), stores: stores as ('lancedb' | 'pglite')[] }, log);
        rows.forEach(out);
        if (opts.json !== true) {
          console.log('| store | mode | N | writes docs/s | index s | ingest docs/s | query p50 ms | p99 ms | recall@10 | exact p50 ms (anchor) | speed-up |\n|---|---|---|---|---|---|---|---|---|---|---|');
          for (const r of rows) console.log(`| ${r.store} | ${r.mode} | ${r.n} | ${r.write_docs_per_s} | ${r.index_seconds} | ${r.ingest_docs_per_s} | ${r.p50_ms} | ${r.p99_ms} | ${r.recall_at_10} | ${r.exact_p50_ms} | ${r.speedup_vs_exact} |`);
        }
      }
      if (parts.has('crash')) out(await benchCrash(5, log));
    });
}
