/**
 * One conformance suite, run against every store: the exact in-memory store, LanceDB and
 * PostgreSQL (PGlite). Expected results are written out by hand from the data below (ids, filter
 * outcomes) or computed by brute force in the test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/rag/embeddings.js';
import type { MetadataFilters } from '../../src/rag/filters.js';
import { LanceDBStore } from '../../src/rag/stores/lancedb.js';
import { MemoryVectorStore } from '../../src/rag/stores/memory.js';
import { openPGlite, openPostgres } from '../../src/rag/stores/index.js';
import { startTestPostgres } from './postgres.js';
import type { VectorStore } from '../../src/rag/store.js';
import { type Chunk, sha256Hex } from '../../src/rag/types.js';

const DIM = 8;

/** Unit basis-ish vectors: doc i points mostly along axis i % 8, a little along (i + 1) % 8. */
function vec(i: number, tilt = 0.3): Float32Array {
  const v = new Float32Array(DIM);
  v[i % DIM] = 1;
  v[(i + 1) % DIM] = tilt;
  return v;
}

const TEXTS = [
  'The cat sat on the mat.',
  'Dogs chase cats around the garden.',
  'LanceDB stores vectors on disk.',
  'PostgreSQL with pgvector scales out.',
  'Okapi BM25 ranks by term frequency.',
  '刘备与关羽、张飞结为兄弟。',
  'Reciprocal rank fusion merges rankings.',
  'The red mat was under the cat.',
  'Vectors and cats.',
  '诸葛亮草船借箭。',
];

function makeChunks(): Chunk[] {
  return TEXTS.map((text, i) => ({
    id: `c${i}`,
    text,
    source: i < 5 ? '/docs/a.txt' : '/docs/b.md',
    location: { start: i * 100, end: i * 100 + text.length, ...(i % 2 === 0 ? { headingPath: ['Top', `S${i}`] } : {}) },
    hash: sha256Hex(text),
    metadata: { lang: /[\u4e00-\u9fff]/.test(text) ? 'zh' : 'en', year: 2000 + i, tags: i % 3 === 0 ? ['animals', 'x'] : ['tech'], draft: i % 4 === 0, title: `Doc ${i}` },
  }));
}

/** A keyword-free embedder for text queries: the query "axis N" maps to vec(N). */
const axisEmbedder: Embedder = {
  id: 'test-axis',
  dim: DIM,
  embed: async (texts) => texts.map((t) => vec(Number(/axis (\d+)/.exec(t)?.[1] ?? 0))),
};

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'weft-rag-store-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Factory {
  name: string;
  open: (dir: string) => Promise<VectorStore>;
  persistent: boolean;
}

const server = startTestPostgres();
/** A fresh table per run, so a WEFT_PG_URL database with earlier runs' tables still starts empty. */
const pgTable = `weft_test_${process.pid}_${Date.now() % 100000}`;
afterAll(() => server.pg?.stop());
if (server.pg === null) console.warn(`skipping the PostgreSQL-server store tests: ${server.reason}`);

const factories: Factory[] = [
  { name: 'memory', open: async () => new MemoryVectorStore(axisEmbedder), persistent: false },
  { name: 'lancedb', open: (dir) => LanceDBStore.open(dir, { embedder: axisEmbedder }), persistent: true },
  { name: 'pgvector (PGlite)', open: (dir) => openPGlite(dir, axisEmbedder), persistent: true },
  ...(server.pg !== null ? [{ name: 'pgvector (PostgreSQL server via pg)', open: () => openPostgres(server.pg!.url, axisEmbedder, { table: pgTable }), persistent: true }] : []),
];

const ids = (xs: { id: string }[]): string[] => xs.map((x) => x.id);
const idsOf = async (store: VectorStore, filter: MetadataFilters): Promise<string[]> =>
  ids((await store.similaritySearchVectorWithScore(vec(0), 100, { filter })).map((h) => h.chunk)).sort();

describe.each(factories)('$name store', (f) => {
  const dir = tmp();
  let store: VectorStore;

  it('adds vectors and finds the exact nearest neighbours with cosine scores', async () => {
    store = await f.open(dir);
    const chunks = makeChunks();
    await store.addVectors(chunks.map((_, i) => vec(i)), chunks);
    expect(await store.count()).toBe(10);
    const hits = await store.similaritySearchVectorWithScore(vec(3), 3);
    // vec(3) is nearest to c3 (itself), then c2 (tilted towards axis 3), then c11… none; brute force:
    const q = vec(3);
    const cos = (a: Float32Array, b: Float32Array): number => {
      let d = 0;
      let na = 0;
      let nb = 0;
      for (let i = 0; i < DIM; i++) {
        d += a[i]! * b[i]!;
        na += a[i]! ** 2;
        nb += b[i]! ** 2;
      }
      return d / Math.sqrt(na * nb);
    };
    const brute = chunks.map((c, i) => ({ id: c.id, s: cos(q, vec(i)) })).sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1));
    expect(hits[0]!.chunk.id).toBe('c3');
    expect(hits.map((h) => h.chunk.id).slice(0, 1)).toEqual(brute.slice(0, 1).map((b) => b.id));
    expect(new Set(hits.slice(1).map((h) => h.chunk.id))).toEqual(new Set(brute.slice(1, 3).map((b) => b.id)));
    hits.forEach((h) => expect(h.score).toBeCloseTo(brute.find((b) => b.id === h.chunk.id)!.s, 5));
    // Everything round-trips: text, source, location, hash, metadata.
    expect(hits[0]!.chunk).toEqual(chunks[3]);
  });

  it('upserts by id (no duplicates) and searches text through the embedder', async () => {
    const c = makeChunks()[4]!;
    const changed = { ...c, text: 'Okapi BM25, revised.', hash: sha256Hex('Okapi BM25, revised.') };
    await store.addVectors([vec(4)], [changed]);
    expect(await store.count()).toBe(10);
    expect((await store.get(['c4']))[0]!.text).toBe('Okapi BM25, revised.');
    const byText = await store.similaritySearch('axis 4', 1);
    expect(byText[0]!.id).toBe('c4');
    const r = await store.asRetriever({ k: 2 }).invoke('axis 6');
    expect(r[0]!.id).toBe('c6');
  });

  it('applies metadata filters ==, !=, in, nin, >, <, contains (and or-groups)', async () => {
    expect(await idsOf(store, { filters: [{ key: 'lang', operator: '==', value: 'zh' }] })).toEqual(['c5', 'c9']);
    expect(await idsOf(store, { filters: [{ key: 'lang', operator: '!=', value: 'en' }] })).toEqual(['c5', 'c9']);
    expect(await idsOf(store, { filters: [{ key: 'year', operator: 'in', value: [2001, 2003, 2042] }] })).toEqual(['c1', 'c3']);
    expect(await idsOf(store, { filters: [{ key: 'year', operator: 'nin', value: [2000, 2001, 2002, 2003, 2004, 2005, 2006] }] })).toEqual(['c7', 'c8', 'c9']);
    expect(await idsOf(store, { filters: [{ key: 'year', operator: '>', value: 2007 }] })).toEqual(['c8', 'c9']);
    expect(await idsOf(store, { filters: [{ key: 'year', operator: '<', value: 2002 }] })).toEqual(['c0', 'c1']);
    expect(await idsOf(store, { filters: [{ key: 'tags', operator: 'contains', value: 'animals' }] })).toEqual(['c0', 'c3', 'c6', 'c9']);
    expect(await idsOf(store, { filters: [{ key: 'title', operator: 'contains', value: 'oc 1' }] })).toEqual(['c1']);
    expect(await idsOf(store, { filters: [{ key: 'draft', operator: '==', value: true }] })).toEqual(['c0', 'c4', 'c8']);
    expect(await idsOf(store, { filters: [{ key: 'source', operator: '==', value: '/docs/b.md' }, { key: 'year', operator: '<', value: 2007 }] })).toEqual(['c5', 'c6']);
    expect(
      await idsOf(store, {
        condition: 'or',
        filters: [
          { key: 'lang', operator: '==', value: 'zh' },
          { filters: [{ key: 'year', operator: '<', value: 2001 }] },
        ],
      }),
    ).toEqual(['c0', 'c5', 'c9']);
    // A key no chunk has: == matches nothing, != matches everything.
    expect(await idsOf(store, { filters: [{ key: 'nosuch', operator: '==', value: 'x' }] })).toEqual([]);
    expect((await idsOf(store, { filters: [{ key: 'nosuch', operator: '!=', value: 'x' }] })).length).toBe(10);
    // The nearest neighbour under a filter is the nearest among the filtered ones.
    const hit = await store.similaritySearchVectorWithScore(vec(3), 1, { filter: { filters: [{ key: 'lang', operator: '==', value: 'zh' }] } });
    expect(hit[0]!.chunk.id).toBe('c5');
  });

  it('finds words with BM25, CJK included, under filters', async () => {
    const cat = await store.keywordSearch('cat mat', 3);
    expect(cat.map((h) => h.chunk.id).slice(0, 2).sort()).toEqual(['c0', 'c7']);
    expect(cat[0]!.score).toBeGreaterThan(0);
    const zh = await store.keywordSearch('关羽', 2);
    expect(zh[0]!.chunk.id).toBe('c5');
    const filtered = await store.keywordSearch('cats', 5, { filter: { filters: [{ key: 'source', operator: '==', value: '/docs/b.md' }] } });
    expect(filtered.map((h) => h.chunk.id)).toEqual(['c8']);
  });

  it('maximal marginal relevance skips near-duplicates', async () => {
    // Three near-copies of axis 7 and one different vector near the query.
    const extra: Chunk[] = ['dupA', 'dupB', 'dupC', 'other'].map((id) => ({ id, text: id, source: '/docs/mmr', location: {}, hash: sha256Hex(id), metadata: { lang: 'en' } }));
    const v7 = vec(7, 0.0);
    const other = new Float32Array(DIM);
    other[7] = 0.8;
    other[2] = 0.6;
    await store.addVectors([v7, Float32Array.from(v7, (x, i) => (i === 0 ? 0.01 : x)), Float32Array.from(v7, (x, i) => (i === 1 ? 0.01 : x)), other], extra);
    const filter: MetadataFilters = { filters: [{ key: 'source', operator: '==', value: '/docs/mmr' }] };
    const plain = await store.similaritySearch('axis 7', 2, { filter });
    expect(plain.map((c) => c.id)).not.toContain('other');
    const mmr = await store.maxMarginalRelevanceSearch('axis 7', { k: 2, fetchK: 4, lambda: 0.5, filter });
    expect(mmr.map((c) => c.id)).toContain('other');
    const mmrRetriever = await store.asRetriever({ k: 2, searchType: 'mmr', fetchK: 4, filter }).invoke('axis 7');
    expect(mmrRetriever.map((c) => c.id)).toEqual(mmr.map((c) => c.id));
  });

  it('deletes by id and by filter', async () => {
    await store.delete({ ids: ['dupA', 'dupB', 'dupC', 'other'] });
    expect(await store.count()).toBe(10);
    await store.delete({ filter: { filters: [{ key: 'lang', operator: '==', value: 'zh' }] } });
    expect(await store.count()).toBe(8);
    expect(await store.get(['c5', 'c9', 'c0'])).toHaveLength(1);
    expect(await store.idsForSource('/docs/b.md')).toEqual(['c6', 'c7', 'c8']);
    expect((await store.keywordSearch('关羽', 2)).length).toBe(0);
  });

  it.skipIf(!f.persistent)('survives close and reopen', async () => {
    await store.close();
    const again = await f.open(dir);
    expect(await again.count()).toBe(8);
    expect((await again.similaritySearchVectorWithScore(vec(6), 1))[0]!.chunk.id).toBe('c6');
    expect((await again.keywordSearch('pgvector', 1))[0]!.chunk.id).toBe('c3');
    await again.close();
  });
});

describe('PGlite runs real pgvector', () => {
  it('uses a vector(d) column and the cosine operator (not the real[] fallback)', async () => {
    const store = await openPGlite('memory', axisEmbedder);
    expect(store.vectorMode).toBe('pgvector');
    const chunks: Chunk[] = [0, 1].map((i) => ({ id: `c${i}`, text: `t${i}`, source: 's', hash: `h${i}`, location: {}, metadata: {} }));
    await store.addVectors([new Float32Array([1, 0, 0]), new Float32Array([0, 1, 0])], chunks);
    const hits = await store.similaritySearchVectorWithScore(new Float32Array([0.9, 0.1, 0]), 2);
    expect(hits.map((h) => h.chunk.text)).toEqual(['t0', 't1']);
    expect(hits[0]!.score).toBeCloseTo(0.9 / Math.hypot(0.9, 0.1), 5);
  });
});
