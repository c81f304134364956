/**
 * The data pipeline orchestrator: `weft data prepare`.
 *
 * Stages, in order:
 *   0. boilerplate (only with the 'boilerplate' filter): pass 1 counts lines across documents
 *   1. clean: read → normalise → boilerplate → language id → Gopher/C4/CJK filters → PII masking,
 *      plus each survivor's exact-dedup hash, MinHash sketch and (with a tokenizer file) tokens —
 *      in worker threads, in chunks
 *   2. dedup: exact (first copy kept) then MinHash-LSH clusters (earliest document kept)
 *   3. mix: copies per document (language temperature capped per language, source weights, epochs;
 *      seeded per document)
 *   4. pack: the kept copies' tokens (tokenized now only for the corpus character tokenizer) →
 *      EOS-joined stream → shards of whole seqLen sequences
 *   5. stats.json (and index.json, tokenizer.json)
 *
 * Resuming. `<out>/manifest.json` is the single commit point, rewritten atomically after every
 * completed unit: a clean chunk (its three work files written first), the dedup decision, and
 * every output shard. Units past the manifest are simply redone (same inputs → same bytes), so a
 * run killed at any instant (kill -9) continues from the last completed unit without duplicating
 * or losing documents:
 *   - clean: inputs are re-read and the `docsRead` documents already chunked are skipped;
 *   - pack: the cursor (pass, chunk, document, token offset) names the first token not yet in a
 *     shard; the document is re-tokenized and the tokens before the offset skipped.
 * Determinism: documents are read in sorted file order, worker results are consumed in
 * submission order, clusters keep their earliest document and mixing draws come from a hash of
 * (seed, document index) — so the output depends on the inputs, settings and seed only (not on
 * the number of workers, nor on where a run was interrupted).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../io/atomic.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import type { Tokenizer as DataTokenizer } from '../tokenizer.js';
import type { BoilerplateSnapshot } from './boilerplate.js';
import { EXACT_HASH_NAME, ExactDeduplicator, NearDuplicateIndex, resolveMinHashOptions, type MinHashOptions, type ResolvedMinHashOptions } from './dedup.js';
import type { EldModelSize } from './langid.js';
import { copiesOf, DEFAULT_MAX_LANGUAGE_EPOCHS, planMix, type MixPlan } from './mix.js';
import type { NormalizeOptions } from './normalize.js';
import {
  charTokenizerFor,
  dtypeFor,
  INDEX_FILE,
  resolveEos,
  SHARD_TOKENIZER_FILE,
  shardFileName,
  ShardAssembler,
  type TokenArray,
  writeShardParts,
  type ShardEntry,
  type ShardIndex,
  type TokenDtype,
} from './pack.js';
import { WorkerPool, type WorkerInit } from './pool.js';
import { expandInputs, readInputs, type ReaderOptions } from './readers.js';
import { emptyStageStats, mergeStageStats, type PipelineStats } from './stats.js';
import type { CleanBatchResult, CleanConfig, CleanDoc, DedupMode, FilterName, TokenizeResult, TokenizerInfo } from './tasks.js';
import type { Doc, StageStats } from './types.js';

export const MANIFEST_FILE = 'manifest.json';
export const STATS_FILE = 'stats.json';
export const WORK_DIR = '.work';

export interface PrepareOptions {
  /** Files, directories or globs. */
  inputs: string[];
  out: string;
  /** JSONL/CSV field holding the text (default "text"). */
  textField?: string;
  /** Other reader settings (format, plain-text splitting, …). */
  reader?: Omit<ReaderOptions, 'textField'>;
  /** Tokenizer file or directory (loadTokenizer); default: a character tokenizer built from the cleaned corpus. */
  tokenizer?: string;
  /** End-of-document token (default: the tokenizer's own end-of-text token). */
  eos?: string;
  dedup?: DedupMode;
  minhash?: MinHashOptions;
  /** Default gopher, c4, cjk, pii. */
  filters?: FilterName[];
  /** Keep only these languages; default all. */
  languages?: string[];
  langidModel?: EldModelSize;
  normalize?: NormalizeOptions;
  /** Language temperature α (default 0.3); null = no size reweighting. */
  temperature?: number | null;
  languageWeights?: Record<string, number>;
  /** Most copies the language reweighting may give a language (UniMax cap); default 4. */
  maxLanguageEpochs?: number;
  sourceWeights?: Record<string, number>;
  epochs?: Record<string, number>;
  /** Tokens per sequence (default 1024). */
  seqLen?: number;
  /** Sequences per shard (default: about 2^24 tokens per shard). */
  shardSequences?: number;
  seed?: number;
  /** Worker threads for cleaning and tokenizing (default: available cores; 0 = in-process). */
  workers?: number;
  /** Input documents per clean chunk (a resume unit); default 4096. */
  chunkDocs?: number;
  /** Documents per worker request (default 64). */
  batchDocs?: number;
  /** Boilerplate: a line is boilerplate when it is in at least this many documents (default 10). */
  boilerplateMinDocs?: number;
  /**
   * With a --tokenizer: the clean workers tokenize each batch's kept documents right after cleaning,
   * so tokenizing (the costliest step with a BPE tokenizer) runs on every core and off the
   * critical path — rather than on this thread, which would then bound the whole pipeline at one
   * core's tokenizing speed. Default true; false tokenizes in the pack stage's workers after dedup
   * (no tokens spent on documents dedup removes). The output is the same bytes either way.
   */
  pretokenize?: boolean;
  /** Keep <out>/.work after success (default false). */
  keepWork?: boolean;
  onProgress?: (e: ProgressEvent) => void;
}

export interface ProgressEvent {
  stage: 'boilerplate' | 'clean' | 'dedup' | 'pack' | 'done';
  /** Input documents read so far (clean), documents deduplicated, or document copies packed. */
  docs: number;
  /** UTF-8 bytes of input text processed so far (boilerplate, clean). */
  bytes: number;
  /** Total input size on disk (for an estimate of the remaining time; compressed files differ). */
  totalBytes: number;
  tokens: number;
  shards: number;
  /** Fraction of the stage done, when known. */
  fraction: number | null;
}

export interface PrepareResult {
  out: string;
  index: ShardIndex;
  stats: PipelineStats;
  /** True when the run continued an interrupted one. */
  resumed: boolean;
  seconds: number;
}

/** The settings that decide the output; their hash guards a resume against changed settings. */
interface Settings {
  files: { path: string; bytes: number; mtimeMs: number }[];
  textField: string;
  reader: Omit<ReaderOptions, 'textField'>;
  tokenizer: string | null;
  eos: string | null;
  clean: Omit<CleanConfig, 'boilerplate' | 'tokenize'>;
  temperature: number | null;
  languageWeights: Record<string, number>;
  maxLanguageEpochs: number;
  sourceWeights: Record<string, number>;
  epochs: Record<string, number>;
  seqLen: number;
  shardSequences: number;
  seed: number;
  chunkDocs: number;
}

interface ChunkInfo {
  /** Documents kept by cleaning (the chunk's lines). */
  docs: number;
}

interface Manifest {
  format: 'weft-data-manifest';
  version: 1;
  fingerprint: string;
  stage: 'boilerplate' | 'clean' | 'dedup' | 'pack' | 'done';
  startedSeconds: number;
  boilerplateDone: boolean;
  clean: { docsRead: number; bytesRead: number; chunks: ChunkInfo[]; stats: StageStats[]; done: boolean };
  dedup: null | {
    stats: StageStats[];
    duplicates: NonNullable<PipelineStats['duplicates']>;
    languagesClean: Record<string, { docs: number; bytes: number }>;
    languagesKept: Record<string, { docs: number; bytes: number }>;
    plan: MixPlan;
    passes: number;
    copies: number;
    /** UTF-8 bytes of all copies (absent in manifests from before it was kept). */
    copyBytes?: number;
    tokenizer: { source: string | null; eos: string; eosId: number; vocabSize: number; dtype: TokenDtype };
  };
  pack: { pass: number; chunk: number; doc: number; offset: number; shards: ShardEntry[]; tokens: number; copiesPacked: number; droppedTailTokens: number };
}

const DEFAULT_FILTERS: FilterName[] = ['gopher', 'c4', 'cjk', 'pii'];
/** Chunk token bytes the pack stage keeps in memory between its passes (beyond it, chunks are read again). */
const PACK_CACHE_BYTES = 256 * 2 ** 20;

function resolveSettings(o: PrepareOptions, files: Settings['files']): { settings: Settings; minhash: ResolvedMinHashOptions } {
  const seqLen = o.seqLen ?? 1024;
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new RangeError(`data prepare: --seq-len must be a positive integer, got ${seqLen}`);
  const shardSequences = o.shardSequences ?? Math.max(1, Math.ceil(2 ** 24 / seqLen));
  if (!Number.isInteger(shardSequences) || shardSequences < 1) throw new RangeError(`data prepare: shardSequences must be a positive integer, got ${shardSequences}`);
  const seed = o.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`data prepare: --seed must be an integer ≥ 0, got ${seed}`);
  const chunkDocs = o.chunkDocs ?? 4096;
  if (!Number.isInteger(chunkDocs) || chunkDocs < 1) throw new RangeError(`data prepare: chunkDocs must be a positive integer, got ${chunkDocs}`);
  const dedup = o.dedup ?? 'minhash';
  if (dedup !== 'exact' && dedup !== 'minhash' && dedup !== 'none') throw new RangeError(`data prepare: --dedup must be exact, minhash or none, got ${JSON.stringify(dedup)}`);
  const filters = [...new Set(o.filters ?? DEFAULT_FILTERS)];
  const minhash = resolveMinHashOptions({ seed, ...o.minhash });
  const temperature = o.temperature === undefined ? 0.3 : o.temperature;
  // Validates temperature and weights now, before any work.
  const maxLanguageEpochs = o.maxLanguageEpochs ?? DEFAULT_MAX_LANGUAGE_EPOCHS;
  planMix({}, { temperature: temperature ?? undefined, languageWeights: o.languageWeights, sourceWeights: o.sourceWeights, epochs: o.epochs, maxLanguageEpochs, seed });
  const settings: Settings = {
    files,
    textField: o.textField ?? 'text',
    reader: o.reader ?? {},
    tokenizer: o.tokenizer ?? null,
    eos: o.eos ?? null,
    clean: {
      normalize: o.normalize ?? {},
      languages: o.languages ?? [],
      langidModel: o.langidModel ?? 'medium',
      filters,
      dedup,
      minhash,
      boilerplateMinDocs: o.boilerplateMinDocs ?? 10,
    },
    temperature,
    languageWeights: o.languageWeights ?? {},
    maxLanguageEpochs,
    sourceWeights: o.sourceWeights ?? {},
    epochs: o.epochs ?? {},
    seqLen,
    shardSequences,
    seed,
    chunkDocs,
  };
  return { settings, minhash };
}

const chunkName = (i: number, ext: string): string => `chunk-${String(i).padStart(6, '0')}.${ext}`;

function writeJson(path: string, value: unknown): void {
  writeFileAtomicSync(path, `${JSON.stringify(value)}\n`);
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Chunk sidecar: per kept document, dedup data; laid out as sections so each is one typed array. */
function encodeSketches(r: { hashes: string[]; bandKeys: Float64Array; sig16: Uint16Array; shingles: Uint32Array }): Uint8Array {
  const n = r.hashes.length;
  const head = Buffer.alloc(8);
  head.writeUInt32LE(n, 0);
  head.writeUInt32LE(r.shingles.length, 4);
  const hashes = Buffer.concat(r.hashes.map((h) => Buffer.from(h, 'base64')));
  return Buffer.concat([head, hashes, Buffer.from(r.bandKeys.buffer, r.bandKeys.byteOffset, r.bandKeys.byteLength), Buffer.from(r.sig16.buffer, r.sig16.byteOffset, r.sig16.byteLength), Buffer.from(r.shingles.buffer, r.shingles.byteOffset, r.shingles.byteLength)]);
}

function decodeSketches(buf: Buffer, mh: ResolvedMinHashOptions): { hashes: Buffer[]; bandKeys: Float64Array; sig16: Uint16Array; shingles: Uint32Array } {
  const n = buf.readUInt32LE(0);
  const m = buf.readUInt32LE(4);
  let off = 8;
  const hashes: Buffer[] = [];
  for (let i = 0; i < n; i++, off += 16) hashes.push(buf.subarray(off, off + 16));
  // Copies (slice) so every typed array starts aligned.
  const take = (bytes: number): ArrayBuffer => {
    const ab = buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + bytes) as ArrayBuffer;
    off += bytes;
    return ab;
  };
  const bandKeys = new Float64Array(take(m * mh.bands * 8));
  const sig16 = new Uint16Array(take(m * mh.numPerm * 2));
  const shingles = new Uint32Array(take(m * 4));
  return { hashes, bandKeys, sig16, shingles };
}

/** First word of a chunk token file in the current layout (older files start with the document count). */
const TOK_MAGIC = 0x314b4f54; // "TOK1"

/**
 * Chunk token sidecar (pretokenize): [TOK1][width 2|4][n][lengths: n × u32][ids: n-sum × width bytes],
 * each length with its EOS; ids as uint16 when the vocabulary fits (half the bytes to write and read back).
 */
function encodeChunkTokens(parts: readonly TokenizeResult[], vocabSize: number): Uint8Array[] {
  const n = parts.reduce((s, p) => s + p.lengths.length, 0);
  const width = vocabSize <= 0x10000 ? 2 : 4;
  const head = new Uint32Array([TOK_MAGIC, width, n]);
  const bytes = (a: Uint16Array | Uint32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ids = parts.map((p) => {
    if (width === 4) return p.ids;
    const narrow = new Uint16Array(p.ids.length);
    narrow.set(p.ids);
    return narrow;
  });
  return [bytes(head), ...parts.map((p) => bytes(p.lengths)), ...ids.map(bytes)];
}

/** Per document of a chunk, its token ids (EOS included), from encodeChunkTokens' bytes (or the older all-u32 layout). */
function decodeChunkTokens(buf: Buffer): { ids: Uint16Array | Uint32Array; starts: Float64Array } {
  const corrupt = (why: string): Error => new Error(`data prepare: a chunk token file is corrupt (${why}); delete the output directory and rerun`);
  // Typed views where aligned (a large file's buffer is its own), else aligned copies.
  const view = <T extends Uint16Array | Uint32Array>(Ctor: { new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number }, at: number, count: number): T => {
    const o = buf.byteOffset + at;
    if (o % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(buf.buffer as ArrayBuffer, o, count);
    return new Ctor(buf.buffer.slice(o, o + count * Ctor.BYTES_PER_ELEMENT) as ArrayBuffer, 0, count);
  };
  if (buf.length >= 12 && buf.readUInt32LE(0) === TOK_MAGIC) {
    const width = buf.readUInt32LE(4);
    const n = buf.readUInt32LE(8);
    if ((width !== 2 && width !== 4) || 12 + 4 * n > buf.length) throw corrupt(`width ${width}, ${n} documents in ${buf.length} bytes`);
    const lengths = view(Uint32Array, 12, n);
    const starts = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) starts[i + 1] = starts[i]! + lengths[i]!;
    const idBytes = buf.length - 12 - 4 * n;
    if (idBytes !== starts[n]! * width) throw corrupt(`${idBytes / width} ids for lengths summing to ${starts[n]}`);
    return { ids: width === 2 ? view(Uint16Array, 12 + 4 * n, idBytes / 2) : view(Uint32Array, 12 + 4 * n, idBytes / 4), starts };
  }
  const n = buf.readUInt32LE(0);
  const all = view(Uint32Array, 4, (buf.length - 4) >> 2);
  const starts = new Float64Array(n + 1);
  let o = n;
  for (let i = 0; i < n; i++) {
    starts[i] = o;
    o += all[i]!;
  }
  starts[n] = o;
  if (o !== all.length) throw corrupt(`${all.length - n} ids for lengths summing to ${o - n}`);
  return { ids: all, starts };
}

interface ChunkMeta {
  ids: string[];
  langs: string[];
  sources: string[];
  bytes: number[];
  /** The chunk's distinct characters (for a corpus character tokenizer). */
  chars: string;
}

/** Runs (or resumes) the pipeline into `options.out`. */
export async function prepareData(options: PrepareOptions): Promise<PrepareResult> {
  const t0 = performance.now();
  const out = options.out;
  const work = join(out, WORK_DIR);
  const files = (await expandInputs(options.inputs)).map((path) => {
    const st = statSync(path);
    return { path, bytes: st.size, mtimeMs: Math.floor(st.mtimeMs) };
  });
  const totalBytes = files.reduce((s, f) => s + f.bytes, 0);
  const { settings, minhash } = resolveSettings(options, files);
  // The exact-dedup hash's name is part of it: a run begun with another hash (MD5 before) must not resume with this one.
  const fingerprint = createHash('sha256').update(JSON.stringify({ ...settings, exactHash: EXACT_HASH_NAME })).digest('hex');
  const workers = options.workers ?? availableParallelism();
  const batchDocs = options.batchDocs ?? 64;
  const progress = options.onProgress ?? ((): void => {});

  mkdirSync(out, { recursive: true });
  const manifestPath = join(out, MANIFEST_FILE);
  let manifest: Manifest;
  let resumed = false;
  if (existsSync(manifestPath)) {
    manifest = readJson<Manifest>(manifestPath);
    if (manifest.format !== 'weft-data-manifest' || manifest.version !== 1) throw new Error(`${manifestPath}: not a weft data manifest; pass an empty --out directory`);
    if (manifest.fingerprint !== fingerprint) {
      throw new Error(`${out} holds a data run with different inputs or settings (or the inputs changed since); pass another --out, or delete ${out} to start over`);
    }
    resumed = manifest.stage !== 'done';
    if (resumed) mkdirSync(work, { recursive: true });
  } else {
    mkdirSync(work, { recursive: true });
    if (existsSync(join(out, INDEX_FILE))) throw new Error(`${out} holds shards without a manifest; pass an empty --out directory`);
    manifest = {
      format: 'weft-data-manifest',
      version: 1,
      fingerprint,
      stage: settings.clean.filters.includes('boilerplate') ? 'boilerplate' : 'clean',
      startedSeconds: 0,
      boilerplateDone: false,
      clean: { docsRead: 0, bytesRead: 0, chunks: [], stats: [], done: false },
      dedup: null,
      pack: { pass: 0, chunk: 0, doc: 0, offset: 0, shards: [], tokens: 0, copiesPacked: 0, droppedTailTokens: 0 },
    };
    writeJson(manifestPath, manifest);
  }
  const commit = (): void => writeJson(manifestPath, manifest);
  const readerOptions: ReaderOptions = { ...settings.reader, textField: settings.textField };
  const filePaths = files.map((f) => f.path);

  // ---- 0. boilerplate pass 1 ----
  const boilerplatePath = join(work, 'boilerplate.bin');
  if (manifest.stage === 'boilerplate') {
    const pool = await WorkerPool.start(workers, { kind: 'boilerplate', normalize: settings.clean.normalize, minDocs: settings.clean.boilerplateMinDocs });
    try {
      let batch: Doc[] = [];
      let docs = 0;
      let bytes = 0;
      const pending: Promise<unknown>[] = [];
      const flush = async (): Promise<void> => {
        if (batch.length > 0) pending.push(pool.submit({ kind: 'observe', docs: batch }));
        batch = [];
        while (pending.length > 2 * Math.max(1, workers)) await pending.shift();
      };
      for await (const doc of readInputs(filePaths, readerOptions)) {
        batch.push(doc);
        docs++;
        bytes += Buffer.byteLength(doc.text, 'utf8');
        if (batch.length >= batchDocs) {
          await flush();
          if (docs % (batchDocs * 16) === 0) progress({ stage: 'boilerplate', docs, bytes, totalBytes, tokens: 0, shards: 0, fraction: totalBytes > 0 ? Math.min(1, bytes / totalBytes) : null });
        }
      }
      await flush();
      await Promise.all(pending);
      const snaps = await pool.broadcast<BoilerplateSnapshot>({ kind: 'snapshot' });
      const merged = snaps[0]!;
      for (const s of snaps.slice(1)) {
        for (let i = 0; i < merged.table.length; i++) merged.table[i] = Math.min(0xffffffff, merged.table[i]! + s.table[i]!);
        merged.docs += s.docs;
        merged.increments += s.increments;
      }
      const head = Buffer.from(JSON.stringify({ width: merged.width, depth: merged.depth, docs: merged.docs, increments: merged.increments }));
      const len = Buffer.alloc(4);
      len.writeUInt32LE(head.length, 0);
      writeFileAtomicSync(boilerplatePath, [len, head, new Uint8Array(merged.table.buffer, merged.table.byteOffset, merged.table.byteLength)]);
    } finally {
      await pool.close();
    }
    manifest.stage = 'clean';
    manifest.boilerplateDone = true;
    commit();
  }
  let boilerplate: BoilerplateSnapshot | null = null;
  if (settings.clean.filters.includes('boilerplate') && manifest.stage === 'clean') {
    const buf = readFileSync(boilerplatePath);
    const n = buf.readUInt32LE(0);
    const head = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as Omit<BoilerplateSnapshot, 'table'>;
    const table = new Uint32Array(buf.buffer.slice(buf.byteOffset + 4 + n, buf.byteOffset + buf.length) as ArrayBuffer);
    boilerplate = { ...head, table };
  }

  // The clean workers, kept alive after their stage so the pack stage reuses the threads.
  let idlePool: WorkerPool | null = null;
  // The tokenizer's size and EOS, once tokenizer.json is written during cleaning.
  let pre: { vocabSize: number; eos: { id: number; token: string } } | null = null;

  // ---- 1. clean ----
  if (manifest.stage === 'clean') {
    const tokenizeInWorkers = settings.tokenizer !== null && options.pretokenize !== false;
    // Tokenized in the workers, the cleaned texts are needed again only to be kept for inspection.
    const keepText = !tokenizeInWorkers || options.keepWork === true;
    const cleanConfig: CleanConfig = { ...settings.clean, boilerplate, tokenize: tokenizeInWorkers ? { source: settings.tokenizer!, eos: settings.eos } : null, keepText };
    // Not awaited: this thread reads the first chunks while the workers load their models.
    const pool = WorkerPool.launch(workers, { kind: 'clean', config: cleanConfig });
    // A worker's tokenizer describes itself: this thread need not load one too. Its size is needed
    // from the first commit on; its saved form is asked for after the last batch, when a worker is free.
    const tokenizerInfo = tokenizeInWorkers
      ? pool.submit<TokenizerInfo>({ kind: 'tokenizerInfo', json: false }).then((info) => {
          pre = { vocabSize: info.vocabSize, eos: info.eos };
        })
      : Promise.resolve();
    // Awaited at the first commit; a failure there (or in the batches) closes the pool below.
    tokenizerInfo.catch(() => undefined);
    const wantChars = settings.tokenizer === null;
    try {
      type Open = { batches: Promise<CleanBatchResult>[]; batch: Doc[]; docs: number };
      const open = (): Open => ({ batches: [], batch: [], docs: 0 });
      let cur = open();
      const queue: Open[] = [];
      const commitChunk = async (c: Open): Promise<void> => {
        const results = await Promise.all(c.batches);
        await tokenizerInfo;
        const idx = manifest.clean.chunks.length;
        if (tokenizeInWorkers) writeFileAtomicSync(join(work, chunkName(idx, 'tok')), encodeChunkTokens(results.map((r) => r.tokens!), pre!.vocabSize));
        const kept: CleanDoc[] = results.flatMap((r) => r.kept);
        if (keepText) {
          const lines = kept.map((d) => JSON.stringify(d)).join('\n');
          writeFileAtomicSync(join(work, chunkName(idx, 'jsonl')), kept.length > 0 ? `${lines}\n` : '');
        }
        const sk = {
          hashes: results.flatMap((r) => r.hashes),
          bandKeys: concatF64(results.map((r) => r.bandKeys)),
          sig16: concatU16(results.map((r) => r.sig16)),
          shingles: concatU32(results.map((r) => r.shingles)),
        };
        writeFileAtomicSync(join(work, chunkName(idx, 'sig')), encodeSketches(sk));
        const meta: ChunkMeta = {
          ids: kept.map((d) => d.id),
          langs: kept.map((d) => d.lang),
          sources: kept.map((d) => d.source),
          bytes: kept.map((d) => d.bytes),
          chars: wantChars ? distinctChars(kept) : '',
        };
        writeJson(join(work, chunkName(idx, 'meta.json')), meta);
        for (const r of results) {
          r.stats.forEach((s, i) => {
            const into = (manifest.clean.stats[i] ??= emptyStageStats(s.name));
            mergeStageStats(into, s);
          });
        }
        manifest.clean.chunks.push({ docs: kept.length });
        manifest.clean.docsRead += c.docs;
        // The workers measured each input document's bytes (bytesIn): no second pass over the text here.
        manifest.clean.bytesRead += results.reduce((n, r) => n + r.bytesIn, 0);
        commit();
        progress({ stage: 'clean', docs: manifest.clean.docsRead, bytes: manifest.clean.bytesRead, totalBytes, tokens: 0, shards: 0, fraction: totalBytes > 0 ? Math.min(1, manifest.clean.bytesRead / totalBytes) : null });
      };
      const flushBatch = (): void => {
        if (cur.batch.length > 0) cur.batches.push(pool.submit<CleanBatchResult>({ kind: 'clean', docs: cur.batch }));
        cur.batch = [];
      };
      let skip = manifest.clean.docsRead;
      for await (const doc of readInputs(filePaths, readerOptions)) {
        if (skip > 0) {
          skip--;
          continue;
        }
        cur.batch.push(doc);
        cur.docs++;
        if (cur.batch.length >= batchDocs) flushBatch();
        if (cur.docs >= settings.chunkDocs) {
          flushBatch();
          queue.push(cur);
          cur = open();
          // Two chunks in flight keep the workers busy while the oldest is written; memory stays bounded.
          while (queue.length > 1) await commitChunk(queue.shift()!);
        }
      }
      flushBatch();
      const savedForm = tokenizeInWorkers ? pool.submit<TokenizerInfo>({ kind: 'tokenizerInfo', json: true }) : null;
      savedForm?.catch(() => undefined);
      if (cur.docs > 0) queue.push(cur);
      while (queue.length > 0) await commitChunk(queue.shift()!);
      // Also when no chunk was committed (an empty corpus), so nothing lands after this stage.
      await tokenizerInfo;
      if (savedForm !== null) writeFileAtomicSync(join(out, SHARD_TOKENIZER_FILE), (await savedForm).json!);
      // Kept for the pack stage, which retasks these threads as tokenizers.
      idlePool = pool;
    } finally {
      if (idlePool !== pool) await pool.close();
    }
    manifest.clean.done = true;
    manifest.stage = 'dedup';
    commit();
  }

  // ---- 2. dedup, 3. mix plan, tokenizer ----
  const chunks = manifest.clean.chunks;
  const chunkStart: number[] = [];
  let totalClean = 0;
  for (const c of chunks) {
    chunkStart.push(totalClean);
    totalClean += c.docs;
  }
  const keepPath = join(work, 'keep.bin');
  const tokPath = (ci: number): string => join(work, chunkName(ci, 'tok'));
  // Every chunk tokenized during cleaning: the pack stage needs no tokenizer workers.
  const pretokenized = settings.tokenizer !== null && chunks.every((_, ci) => existsSync(tokPath(ci)));
  // The pack stage's tokenizer workers, started as soon as tokenizer.json exists, so that their
  // start (threads, modules, tokenizer tables) overlaps the dedup work on this thread.
  let packPool: Promise<WorkerPool> | null = null;
  const closePackPool = async (): Promise<void> => {
    if (packPool !== null) await packPool.then((p) => p.close(), () => undefined);
    if (idlePool !== null) await idlePool.close();
    idlePool = null;
  };
  const startPackPool = (init: WorkerInit): Promise<WorkerPool> => {
    const reuse = idlePool;
    idlePool = null;
    if (reuse === null) return WorkerPool.start(workers, init);
    return reuse.retask(init).then(
      () => reuse,
      async (e: unknown) => {
        await reuse.close();
        throw e;
      },
    );
  };
  if (manifest.stage === 'dedup') {
    progress({ stage: 'dedup', docs: 0, bytes: 0, totalBytes, tokens: 0, shards: 0, fraction: 0 });
    try {
      // The tokenizer: described by the workers that tokenized, given, or the corpus's characters.
      let vocabSize: number;
      let eos: { id: number; token: string };
      if (pre !== null) {
        ({ vocabSize, eos } = pre);
      } else {
        let tokenizer: DataTokenizer;
        if (settings.tokenizer !== null) {
          tokenizer = loadTokenizer(settings.tokenizer);
        } else {
          const chars = new Set<string>();
          chunks.forEach((_, ci) => {
            for (const ch of readJson<ChunkMeta>(join(work, chunkName(ci, 'meta.json'))).chars) chars.add(ch);
          });
          tokenizer = charTokenizerFor(chars);
        }
        eos = resolveEos(tokenizer, settings.eos ?? undefined);
        vocabSize = tokenizer.vocabSize;
        writeFileAtomicSync(join(out, SHARD_TOKENIZER_FILE), `${JSON.stringify(tokenizer.toJSON())}\n`);
      }
      if (pretokenized) {
        if (idlePool !== null) await idlePool.close();
        idlePool = null;
      } else {
        // The tokenizer does not depend on the dedup decisions (the character tokenizer covers every cleaned chunk).
        packPool = startPackPool({ kind: 'tokenize', tokenizerFile: join(out, SHARD_TOKENIZER_FILE), eosId: eos.id });
        // Awaited in the pack stage; a failure there is rethrown then.
        packPool.catch(() => undefined);
      }
      const mode = settings.clean.dedup;
      const keep = new Uint8Array(totalClean).fill(1);
      const exact = new ExactDeduplicator();
      const near = mode === 'minhash' ? new NearDuplicateIndex(minhash) : null;
      const nearOf = new Int32Array(totalClean).fill(-1);
      const nearDoc: number[] = [];
      const exactStats = emptyStageStats('exact_dedup');
      const nearStats = emptyStageStats('minhash_dedup');
      const ids: string[] = [];
      const langs: string[] = [];
      const sources: string[] = [];
      const sizes: number[] = [];
      const languagesClean: Record<string, { docs: number; bytes: number }> = {};
      const exactExamples: { kept: string; removed: string[] }[] = [];
      chunks.forEach((_, ci) => {
        const meta = readJson<ChunkMeta>(join(work, chunkName(ci, 'meta.json')));
        const sk = mode === 'none' ? null : decodeSketches(readFileSync(join(work, chunkName(ci, 'sig'))), minhash);
        for (let k = 0; k < meta.ids.length; k++) {
          const g = chunkStart[ci]! + k;
          ids.push(meta.ids[k]!);
          langs.push(meta.langs[k]!);
          sources.push(meta.sources[k]!);
          sizes.push(meta.bytes[k]!);
          const lc = (languagesClean[meta.langs[k]!] ??= { docs: 0, bytes: 0 });
          lc.docs++;
          lc.bytes += meta.bytes[k]!;
          if (sk === null) continue;
          exactStats.docsIn++;
          exactStats.bytesIn += meta.bytes[k]!;
          const dupOf = exact.add(sk.hashes[k]!.toString('base64'), g);
          if (dupOf !== null) {
            keep[g] = 0;
            const d = (exactStats.drops.exact_duplicate ??= { count: 0, examples: [] });
            d.count++;
            if (exactExamples.length < 5) exactExamples.push({ kept: ids[dupOf]!, removed: [meta.ids[k]!] });
            if (d.examples.length < 5) d.examples.push(`[${meta.ids[k]}] duplicate of [${ids[dupOf]}]`);
            continue;
          }
          exactStats.docsOut++;
          exactStats.bytesOut += meta.bytes[k]!;
          if (near !== null) {
            const { bands, numPerm } = minhash;
            nearOf[g] = near.add({
              bandKeys: sk.bandKeys.subarray(k * bands, (k + 1) * bands),
              sig16: sk.sig16.subarray(k * numPerm, (k + 1) * numPerm),
              shingles: sk.shingles[k]!,
            });
            nearDoc.push(g);
          }
        }
      });
      let duplicates: NonNullable<PipelineStats['duplicates']> = { method: mode, clusters: 0, docsRemoved: 0, largestCluster: 0, examples: exactExamples };
      const dedupStats: StageStats[] = [];
      if (mode !== 'none') dedupStats.push(exactStats);
      if (near !== null) {
        for (let g = 0; g < totalClean; g++) {
          if (nearOf[g]! < 0) continue;
          nearStats.docsIn++;
          nearStats.bytesIn += sizes[g]!;
          if (near.isKept(nearOf[g]!)) {
            nearStats.docsOut++;
            nearStats.bytesOut += sizes[g]!;
          } else {
            keep[g] = 0;
            const root = nearDoc[near.find(nearOf[g]!)]!;
            const d = (nearStats.drops.near_duplicate ??= { count: 0, examples: [] });
            d.count++;
            if (d.examples.length < 5) d.examples.push(`[${ids[g]}] near-duplicate of [${ids[root]}]`);
          }
        }
        const clusters = near.clusters();
        let largest = 0;
        const examples: { kept: string; removed: string[] }[] = [];
        for (const [root, members] of clusters) {
          largest = Math.max(largest, members.length);
          if (examples.length < 10) examples.push({ kept: ids[nearDoc[root]!]!, removed: members.slice(1, 6).map((m) => ids[nearDoc[m]!]!) });
        }
        nearStats.counters = { candidate_pairs: near.candidates, verified_pairs: near.verified, clusters: clusters.size, bands: minhash.bands, rows: minhash.rows };
        dedupStats.push(nearStats);
        duplicates = { method: `exact + minhash (${minhash.numPerm} permutations, ${minhash.bands}×${minhash.rows} bands, Jaccard ≥ ${minhash.threshold})`, clusters: clusters.size, docsRemoved: nearStats.docsIn - nearStats.docsOut + exactStats.docsIn - exactStats.docsOut, largestCluster: largest, examples: [...examples, ...exactExamples].slice(0, 10) };
      } else if (mode === 'exact') {
        duplicates = { method: 'exact', clusters: exact.size, docsRemoved: exactStats.docsIn - exactStats.docsOut, largestCluster: 0, examples: exactExamples };
      }

      // Mixing plan over the kept documents.
      const languagesKept: Record<string, { docs: number; bytes: number }> = {};
      for (let g = 0; g < totalClean; g++) {
        if (!keep[g]) continue;
        const e = (languagesKept[langs[g]!] ??= { docs: 0, bytes: 0 });
        e.docs++;
        e.bytes += sizes[g]!;
      }
      const plan = planMix(Object.fromEntries(Object.entries(languagesKept).map(([l, v]) => [l, v.bytes])), {
        temperature: settings.temperature ?? undefined,
        languageWeights: settings.languageWeights,
        maxLanguageEpochs: settings.maxLanguageEpochs,
        sourceWeights: settings.sourceWeights,
        epochs: settings.epochs,
        seed: settings.seed,
      });
      let passes = 0;
      let copies = 0;
      let copyBytes = 0;
      for (let g = 0; g < totalClean; g++) {
        if (!keep[g]) continue;
        const c = copiesOf(plan, g, langs[g]!, sources[g]!);
        passes = Math.max(passes, c);
        copies += c;
        copyBytes += c * sizes[g]!;
      }

      writeFileAtomicSync(keepPath, keep);
      manifest.dedup = {
        stats: dedupStats,
        duplicates,
        languagesClean,
        languagesKept,
        plan,
        passes,
        copies,
        copyBytes,
        tokenizer: { source: settings.tokenizer, eos: eos.token, eosId: eos.id, vocabSize, dtype: dtypeFor(vocabSize) },
      };
      manifest.stage = 'pack';
      commit();
    } catch (e) {
      await closePackPool();
      throw e;
    }
  }

  // ---- 4. pack ----
  const dd = manifest.dedup!;
  const index = (): ShardIndex => ({
    format: 'weft-token-shards',
    version: 1,
    dtype: dd.tokenizer.dtype,
    seqLen: settings.seqLen,
    vocabSize: dd.tokenizer.vocabSize,
    eosId: dd.tokenizer.eosId,
    tokenizer: { file: SHARD_TOKENIZER_FILE, source: dd.tokenizer.source, eos: dd.tokenizer.eos },
    shards: manifest.pack.shards,
    totalTokens: manifest.pack.tokens,
    droppedTailTokens: manifest.pack.droppedTailTokens,
  });
  if (manifest.stage === 'pack') {
    const keep = readFileSync(keepPath);
    if (pretokenized && idlePool !== null) {
      await idlePool.close();
      idlePool = null;
    }
    const pool = pretokenized ? null : await (packPool ?? startPackPool({ kind: 'tokenize', tokenizerFile: join(out, SHARD_TOKENIZER_FILE), eosId: dd.tokenizer.eosId }));
    const shardTokens = settings.seqLen * settings.shardSequences;
    const { vocabSize, dtype } = dd.tokenizer;
    const packer = new ShardAssembler(shardTokens, dtype, vocabSize);
    const st = manifest.pack;
    // Restart point: the first token not yet in a committed shard.
    const start = { pass: st.pass, chunk: st.chunk, doc: st.doc, offset: st.offset };
    const report = (): void =>
      progress({ stage: 'pack', docs: st.copiesPacked, bytes: 0, totalBytes, tokens: st.tokens + packer.pending, shards: st.shards.length, fraction: dd.copies > 0 ? Math.min(1, st.copiesPacked / dd.copies) : null });
    // A chunk's metadata and tokens, read once and kept for the later passes while they fit the budget
    // (a language upsampled to k epochs makes k passes over the chunks).
    type ChunkData = { meta: ChunkMeta; tokens: ReturnType<typeof decodeChunkTokens> | null };
    const chunkCache = new Map<number, ChunkData>();
    let cachedBytes = 0;
    const chunkData = (ci: number): ChunkData => {
      const have = chunkCache.get(ci);
      if (have !== undefined) return have;
      const meta = readJson<ChunkMeta>(join(work, chunkName(ci, 'meta.json')));
      const tokens = settings.tokenizer !== null && existsSync(tokPath(ci)) ? decodeChunkTokens(readFileSync(tokPath(ci))) : null;
      const data = { meta, tokens };
      const bytes = tokens === null ? 0 : tokens.ids.byteLength;
      if (dd.passes > 1 && cachedBytes + bytes <= PACK_CACHE_BYTES) {
        chunkCache.set(ci, data);
        cachedBytes += bytes;
      }
      return data;
    };
    report();
    try {
      for (let pass = start.pass; pass < dd.passes; pass++) {
        for (let ci = pass === start.pass ? start.chunk : 0; ci < chunks.length; ci++) {
          const firstDoc = pass === start.pass && ci === start.chunk ? start.doc : 0;
          // The chunk's languages and sources decide the copies; the texts are read only when they still need tokenizing.
          const meta = chunkData(ci).meta;
          const docCount = meta.ids.length;
          const selected: number[] = [];
          for (let k = firstDoc; k < docCount; k++) {
            const g = chunkStart[ci]! + k;
            if (keep[g] && copiesOf(dd.plan, g, meta.langs[k]!, meta.sources[k]!) > pass) selected.push(k);
          }
          const consume = (k: number, ids: TokenArray): void => {
            const len = ids.length;
            let pos = pass === start.pass && ci === start.chunk && k === start.doc ? Math.min(start.offset, len) : 0;
            while (pos < len) {
              const take = Math.min(len - pos, shardTokens - packer.pending);
              let full: readonly TokenArray[] | null = null;
              packer.append(ids.subarray(pos, pos + take), (parts) => (full = parts));
              pos += take;
              if (full !== null) {
                const entry = writeShardParts(out, shardFileName(st.shards.length), full);
                st.shards.push(entry);
                st.tokens += entry.tokens;
                Object.assign(st, { pass, chunk: ci, doc: k, offset: pos });
                commit();
                report();
              }
            }
            // Counted when the document's last token is in; a resumed document is counted once.
            st.copiesPacked++;
          };
          const tokFile = chunkData(ci).tokens;
          if (tokFile !== null) {
            if (tokFile.starts.length - 1 !== docCount) throw new Error(`data prepare: chunk ${ci} has ${docCount} documents but ${tokFile.starts.length - 1} tokenized; delete the output directory and rerun`);
            for (const k of selected) consume(k, tokFile.ids.subarray(tokFile.starts[k]!, tokFile.starts[k + 1]!));
            report();
            continue;
          }
          const tokenizer = pool;
          if (tokenizer === null) throw new Error(`data prepare: chunk ${ci} has no token file; delete the output directory and rerun`);
          const lines = readChunkDocs(join(work, chunkName(ci, 'jsonl')));
          if (lines.length !== docCount) throw new Error(`data prepare: chunk ${ci} has ${lines.length} documents but its metadata ${docCount}; delete the output directory and rerun`);
          // Submit every batch of the chunk, then consume the results in order.
          const batches: { docs: number[]; result: Promise<TokenizeResult> }[] = [];
          for (let b = 0; b < selected.length; b += batchDocs) {
            const docs = selected.slice(b, b + batchDocs);
            batches.push({ docs, result: tokenizer.submit<TokenizeResult>({ kind: 'tokenize', texts: docs.map((k) => lines[k]!.text) }) });
          }
          for (const batch of batches) {
            const r = await batch.result;
            let o = 0;
            batch.docs.forEach((k, i) => {
              const len = r.lengths[i]!;
              consume(k, r.ids.subarray(o, o + len));
              o += len;
            });
          }
          report();
        }
      }
    } finally {
      await pool?.close();
    }
    const { tail, dropped } = packer.finish(settings.seqLen);
    if (tail.length > 0) {
      const entry = writeShardParts(out, shardFileName(st.shards.length), tail);
      st.shards.push(entry);
      st.tokens += entry.tokens;
    }
    st.droppedTailTokens = dropped;
    st.pass = dd.passes;
    writeJson(join(out, INDEX_FILE), index());
    manifest.stage = 'done';
    manifest.startedSeconds += (performance.now() - t0) / 1000;
    writeJson(join(out, STATS_FILE), buildStats(manifest, settings));
    commit();
    if (options.keepWork !== true) rmSync(work, { recursive: true, force: true });
  }
  progress({ stage: 'done', docs: manifest.pack.copiesPacked, bytes: manifest.clean.bytesRead, totalBytes, tokens: manifest.pack.tokens, shards: manifest.pack.shards.length, fraction: 1 });
  return { out, index: index(), stats: readJson<PipelineStats>(join(out, STATS_FILE)), resumed, seconds: (performance.now() - t0) / 1000 };
}

function buildStats(m: Manifest, settings: Settings): PipelineStats {
  const dd = m.dedup!;
  const read: StageStats = {
    name: 'read',
    docsIn: m.clean.docsRead,
    docsOut: m.clean.docsRead,
    bytesIn: m.clean.bytesRead,
    bytesOut: m.clean.bytesRead,
    drops: {},
  };
  const keptBytes = Object.values(dd.languagesKept).reduce((s, v) => s + v.bytes, 0);
  const keptDocs = Object.values(dd.languagesKept).reduce((s, v) => s + v.docs, 0);
  const mix: StageStats = { name: 'mix', docsIn: keptDocs, docsOut: dd.copies, bytesIn: keptBytes, bytesOut: dd.copyBytes ?? 0, drops: {} };
  const pack: StageStats = { name: 'pack', docsIn: m.pack.copiesPacked, docsOut: m.pack.copiesPacked, bytesIn: 0, bytesOut: m.pack.tokens * (dd.tokenizer.dtype === 'uint16' ? 2 : 4), drops: {}, tokensOut: m.pack.tokens, counters: { shards: m.pack.shards.length, dropped_tail_tokens: m.pack.droppedTailTokens } };
  return {
    stages: [read, ...m.clean.stats, ...dd.stats, mix, pack],
    languages: dd.languagesKept,
    duplicates: dd.duplicates,
    output: { docs: m.pack.copiesPacked, tokens: m.pack.tokens, sequences: Math.floor(m.pack.tokens / settings.seqLen), shards: m.pack.shards.length },
    seconds: m.startedSeconds,
    extra: {
      inputs: settings.files.map((f) => f.path),
      languagesAfterCleaning: dd.languagesClean,
      mix: { temperature: dd.plan.temperature, natural: dd.plan.natural, target: dd.plan.target, languageFactor: dd.plan.languageFactor, passes: dd.passes },
      tokenizer: dd.tokenizer,
      seqLen: settings.seqLen,
      seed: settings.seed,
    },
  };
}

function readChunkDocs(path: string): CleanDoc[] {
  const text = readFileSync(path, 'utf8');
  if (text.length === 0) return [];
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as CleanDoc);
}

function distinctChars(docs: readonly CleanDoc[]): string {
  const set = new Set<string>();
  for (const d of docs) for (const ch of d.text) set.add(ch);
  return [...set].sort().join('');
}

function concatF64(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function concatU16(parts: Uint16Array[]): Uint16Array {
  const out = new Uint16Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function concatU32(parts: Uint32Array[]): Uint32Array {
  const out = new Uint32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Reads a finished run's statistics. */
export function readRunStats(dir: string): PipelineStats {
  const path = join(dir, STATS_FILE);
  if (!existsSync(path)) {
    const inProgress = existsSync(join(dir, MANIFEST_FILE));
    throw new Error(`${dir}: no ${STATS_FILE}${inProgress ? ' (the run has not finished; rerun the same `weft data prepare` command to resume it)' : '; point at a directory written by `weft data prepare`'}`);
  }
  return readJson<PipelineStats>(path);
}

/** Files of a shard directory, for tests and tools. */
export function listShardFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /^shard-\d{6}\.bin$/.test(f))
    .sort();
}
