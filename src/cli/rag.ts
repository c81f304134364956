/**
 * `weft rag ingest | query | ask`: documents into a vector store, retrieval by meaning and by words,
 * answers with citations. The store is a LanceDB directory by default (`--store <dir>`), or
 * PostgreSQL (`--store postgres://…`, `--store pglite:<dir>`). What ingest used (embedder, chunking)
 * is remembered in the store's state directory, so query and ask need only --store.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type ChatMessage, type ChatModel, type CompleteOptions, OpenAIChatModel, answerQuestion } from '../rag/answer.js';
import { CachedEmbedder, EmbeddingCache, type Embedder, OpenAIEmbeddings, SentenceTransformer } from '../rag/embeddings.js';
import { parseFilters, type MetadataFilters } from '../rag/filters.js';
import { type IngestProgress, type IngestResult, ingest, readRagConfig, writeRagConfig } from '../rag/ingest.js';
import { RETRIEVAL_MODES, type RetrievalMode, retrieve } from '../rag/retrieve.js';
import { openStore, storeKindOf } from '../rag/stores/index.js';
import { formatLocation, type Location } from '../rag/types.js';
import { loadTokenizer } from '../tokenizers/index.js';
import { UsageError } from '../train/config.js';
import type { OutputStream } from '../train/progress.js';
import { defaultTokenizer, loadCausalLM } from './generate.js';
import { tokenStreamer } from './stream-text.js';
import { parseNonNegativeInt, parsePositiveInt } from './train.js';

export interface RagIO {
  stdout: OutputStream;
  stderr: OutputStream;
}
const defaultIO = (): RagIO => ({ stdout: process.stdout, stderr: process.stderr });

const isUrl = (s: string): boolean => /^https?:\/\//.test(s);

/** Where a store's manifest, config and embedding cache live. */
export function stateDirFor(store: string, explicit?: string): string {
  if (explicit !== undefined) return explicit;
  switch (storeKindOf(store)) {
    case 'lancedb':
      return store;
    case 'pglite':
      return `${store.slice('pglite:'.length)}.weft`;
    case 'pgvector':
      return join('.weft-rag', createHash('sha256').update(store).digest('hex').slice(0, 12));
    case 'memory':
      throw new UsageError("--store memory keeps nothing between commands; give a directory (LanceDB) or a PostgreSQL URL");
  }
}

/** The embedder an --embedder value names: an OpenAI-compatible URL or a local model directory. */
export async function embedderFrom(spec: string, model?: string): Promise<Embedder> {
  if (isUrl(spec)) return new OpenAIEmbeddings({ baseURL: spec, model, apiKey: process.env.OPENAI_API_KEY });
  if (!existsSync(spec) || !statSync(spec).isDirectory()) {
    throw new UsageError(`--embedder: ${spec} is neither a URL (http://host/v1) nor a model directory (a sentence-transformers or BERT directory)`);
  }
  return SentenceTransformer.load(spec);
}

export interface IngestFlags {
  store: string;
  embedder?: string;
  embedderModel?: string;
  chunkSize?: number;
  chunkOverlap?: number;
  textField?: string[];
  metadataField?: string[];
  state?: string;
  json?: boolean;
}

class IngestBar {
  private last = 0;
  private drawn = false;
  private readonly started = performance.now();
  constructor(
    private readonly io: RagIO,
    private readonly json: boolean,
  ) {}

  event(p: IngestProgress): void {
    const now = performance.now();
    if (this.json) {
      if (p.stage === 'file' && now - this.last < 250 && p.filesDone < p.files) return;
      this.last = now;
      this.io.stdout.write(`${JSON.stringify({ event: 'progress', ...p, seconds: Math.round((now - this.started) / 10) / 100 })}\n`);
      return;
    }
    const tty = this.io.stderr.isTTY === true;
    if (p.stage === 'done') {
      if (this.drawn) this.io.stderr.write('\n');
      return;
    }
    if (p.stage === 'file' && now - this.last < (tty ? 100 : 5000) && p.filesDone < p.files) return;
    this.last = now;
    const frac = p.files === 0 ? 0 : p.filesDone / p.files;
    const width = 24;
    const filled = Math.round(frac * width);
    const secs = (now - this.started) / 1000;
    const eta = frac > 0 && frac < 1 ? `, ETA ${Math.ceil((secs * (1 - frac)) / frac)} s` : '';
    const line =
      p.stage === 'scan'
        ? 'ingest: scanning inputs…'
        : p.stage === 'optimize'
          ? 'ingest: optimizing the store (indexes, compaction)…'
          : `ingest [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.filesDone}/${p.files} files, ${p.chunksAdded} chunks written${eta}`;
    if (tty) {
      this.io.stderr.write(`\r${line}\x1b[K`);
      this.drawn = true;
    } else this.io.stderr.write(`${line}\n`);
  }
}

export async function runIngest(input: string, flags: IngestFlags, io: RagIO = defaultIO()): Promise<IngestResult> {
  const stateDir = stateDirFor(flags.store, flags.state);
  const previous = readRagConfig(stateDir);
  const embedderSpec = flags.embedder ?? previous?.embedder ?? null;
  const embedderModel = flags.embedderModel ?? previous?.embedderModel;
  if (previous !== null && flags.embedder !== undefined && previous.embedder !== null && resolveSpec(previous.embedder) !== resolveSpec(flags.embedder)) {
    throw new UsageError(`--embedder: ${flags.store} was built with ${previous.embedder}; use that embedder, or a new --store for ${flags.embedder}`);
  }
  const note = (s: string): void => void (flags.json === true ? io.stderr : io.stderr).write(`${s}\n`);
  let embedder: Embedder | null = null;
  if (embedderSpec === null) {
    note(
      'ingest: no --embedder given, so this is a keyword-only store (BM25). Dense and hybrid search need an embedder: ' +
        '--embedder <sentence-transformers dir, e.g. all-MiniLM-L6-v2> or --embedder http://host/v1 (an OpenAI-compatible /v1/embeddings, e.g. weft serve).',
    );
    if (storeKindOf(flags.store) !== 'lancedb') throw new UsageError('--embedder: PostgreSQL stores need an embedder (keyword-only stores are LanceDB directories)');
  } else {
    const inner = await embedderFrom(embedderSpec, embedderModel);
    embedder = new CachedEmbedder(inner, await EmbeddingCache.open(join(stateDir, 'embedding-cache.bin')));
    if (inner instanceof SentenceTransformer) note(`ingest: embedder ${embedderSpec} (${inner.spec.note}, ${inner.dim}-d)`);
  }
  const store = await openStore(flags.store, embedder);
  try {
    const chunkSize = flags.chunkSize ?? previous?.chunkSize ?? 1000;
    const chunkOverlap = flags.chunkOverlap ?? previous?.chunkOverlap ?? 200;
    if (chunkOverlap >= chunkSize) throw new UsageError(`--chunk-overlap (${chunkOverlap}) must be smaller than --chunk-size (${chunkSize})`);
    const bar = new IngestBar(io, flags.json === true);
    const r = await ingest({
      input,
      store,
      embedder,
      stateDir,
      chunkSize,
      chunkOverlap,
      fields: { textFields: flags.textField, metadataFields: flags.metadataField },
      onProgress: (p) => bar.event(p),
    });
    await writeRagConfig(stateDir, { version: 1, embedder: embedderSpec === null ? null : isUrl(embedderSpec) ? embedderSpec : resolve(embedderSpec), ...(embedderModel !== undefined ? { embedderModel } : {}), chunkSize, chunkOverlap });
    const cache = embedder instanceof CachedEmbedder ? { embedded: embedder.misses, cached: embedder.hits } : {};
    if (flags.json === true) io.stdout.write(`${JSON.stringify({ event: 'done', ...r, ...cache })}\n`);
    else {
      io.stdout.write(
        `ingested ${r.files} files into ${flags.store}: ${r.added} new, ${r.changed} changed, ${r.unchanged} unchanged, ${r.removed} removed; ` +
          `${r.chunksWritten} chunks written, ${r.chunksDeleted} deleted, ${r.totalChunks} in the store` +
          (embedder instanceof CachedEmbedder ? ` (${embedder.misses} embedded, ${embedder.hits} from the cache)` : '') +
          '\n',
      );
    }
    return r;
  } finally {
    await store.close();
  }
}

const resolveSpec = (s: string): string => (isUrl(s) ? s : resolve(s));

async function openForQuery(storeSpec: string, state?: string): Promise<{ store: Awaited<ReturnType<typeof openStore>>; hasEmbedder: boolean }> {
  const stateDir = stateDirFor(storeSpec, state);
  const cfg = readRagConfig(stateDir);
  if (cfg === null) throw new UsageError(`--store: ${storeSpec} holds no Weft RAG store (no ${join(stateDir, 'weft-rag.json')}); create it with weft rag ingest <path> --store ${storeSpec}`);
  let embedder: Embedder | null = null;
  if (cfg.embedder !== null) embedder = new CachedEmbedder(await embedderFrom(cfg.embedder, cfg.embedderModel), await EmbeddingCache.open(join(stateDir, 'embedding-cache.bin')));
  return { store: await openStore(storeSpec, embedder), hasEmbedder: embedder !== null };
}

function chooseMode(mode: RetrievalMode | undefined, hasEmbedder: boolean): RetrievalMode {
  if (mode === undefined) return hasEmbedder ? 'hybrid' : 'bm25';
  if (mode !== 'bm25' && !hasEmbedder) throw new UsageError(`--mode ${mode}: this store was ingested without an embedder (keyword-only); use --mode bm25, or re-ingest into a new store with --embedder`);
  return mode;
}

export interface QueryFlags {
  store: string;
  k?: number;
  mode?: RetrievalMode;
  filter?: MetadataFilters;
  state?: string;
  json?: boolean;
}

export interface QueryResult {
  text: string;
  score: number;
  source: string;
  location: Location;
}

export async function runQuery(question: string, flags: QueryFlags, io: RagIO = defaultIO()): Promise<QueryResult[]> {
  const { store, hasEmbedder } = await openForQuery(flags.store, flags.state);
  try {
    const hits = await retrieve(store, question, { k: flags.k ?? 5, mode: chooseMode(flags.mode, hasEmbedder), filter: flags.filter });
    const results = hits.map((h) => ({ text: h.chunk.text, score: h.score, source: h.chunk.source, location: h.chunk.location }));
    if (flags.json === true) io.stdout.write(`${JSON.stringify({ results })}\n`);
    else {
      if (results.length === 0) io.stdout.write('no results\n');
      results.forEach((r, i) => {
        const where = formatLocation(r.location);
        io.stdout.write(`[${i + 1}] ${r.score.toFixed(4)}  ${r.source}${where === '' ? '' : ` (${where})`}\n    ${r.text.replace(/\s+/g, ' ').slice(0, 300)}\n`);
      });
    }
    return results;
  } finally {
    await store.close();
  }
}

/** A local Weft causal LM as a ChatModel: messages rendered as plain sections, greedy by default. */
export async function localChatModel(dir: string, tokenizerPath?: string): Promise<ChatModel & { countTokens(text: string): number; contextLength: number }> {
  const loaded = await loadCausalLM(dir);
  const tokenizer = tokenizerPath !== undefined ? loadTokenizer(tokenizerPath) : defaultTokenizer(dir);
  const m = loaded.model as unknown as { contextLength?: number; config: { blockSize?: number } };
  const contextLength = m.contextLength ?? m.config.blockSize ?? 1024;
  const render = (messages: readonly ChatMessage[]): string => `${messages.map((x) => `### ${x.role[0]!.toUpperCase()}${x.role.slice(1)}\n${x.content}`).join('\n\n')}\n\n### Assistant\n`;
  return {
    id: `local:${resolve(dir)}`,
    contextLength,
    countTokens: (text) => tokenizer.encode(text, { addSpecialTokens: false }).length,
    complete: async (messages, options: CompleteOptions = {}) => {
      const maxNewTokens = options.maxTokens ?? 256;
      let ids = tokenizer.encode(render(messages));
      // The context must hold the prompt and the answer: keep the prompt's end (the question).
      const room = contextLength - maxNewTokens;
      if (room < 16) throw new UsageError(`--model: context length ${contextLength} leaves no room for a prompt with --max-tokens ${maxNewTokens}`);
      if (ids.length > room) ids = ids.slice(ids.length - room);
      const onToken = options.onToken === undefined ? undefined : tokenStreamer((x) => tokenizer.decode(x), options.onToken);
      const out = loaded.generate(ids, { maxNewTokens, temperature: options.temperature ?? 0, seed: 1, onToken });
      return tokenizer.decode(out);
    },
  };
}

export interface AskFlags {
  store: string;
  model: string;
  modelName?: string;
  tokenizer?: string;
  k?: number;
  mode?: RetrievalMode;
  minScore?: number;
  maxTokens?: number;
  contextTokens?: number;
  filter?: MetadataFilters;
  state?: string;
  json?: boolean;
}

export async function runAsk(question: string, flags: AskFlags, io: RagIO = defaultIO()): Promise<ReturnType<typeof answerQuestion>> {
  const { store, hasEmbedder } = await openForQuery(flags.store, flags.state);
  try {
    let model: ChatModel;
    let countTokens: ((t: string) => number) | undefined;
    let contextTokens = flags.contextTokens ?? 2000;
    if (isUrl(flags.model)) model = new OpenAIChatModel({ baseURL: flags.model, model: flags.modelName, apiKey: process.env.OPENAI_API_KEY });
    else {
      const local = await localChatModel(flags.model, flags.tokenizer);
      model = local;
      countTokens = local.countTokens;
      // Documents get at most about half of what the prompt may use.
      contextTokens = Math.min(contextTokens, Math.max(32, Math.floor((local.contextLength - (flags.maxTokens ?? 256)) / 2)));
    }
    const stream = flags.json !== true;
    const r = await answerQuestion(store, model, question, {
      k: flags.k ?? 5,
      mode: chooseMode(flags.mode, hasEmbedder),
      filter: flags.filter,
      minScore: flags.minScore,
      maxTokens: flags.maxTokens ?? 256,
      contextTokens,
      countTokens,
      onToken: stream ? (t) => void io.stdout.write(t) : undefined,
    });
    if (flags.json === true) {
      io.stdout.write(`${JSON.stringify({ answer: r.answer, refused: r.refused, citations: r.citations.map((c) => ({ n: c.n, source: c.source, location: c.location, text: c.text, cited: r.cited.includes(c) })) })}\n`);
    } else {
      io.stdout.write('\n');
      if (r.citations.length > 0) {
        io.stdout.write('\nSources:\n');
        for (const c of r.citations) io.stdout.write(`[${c.n}]${r.cited.includes(c) ? '*' : ' '} ${c.source}${c.where === '' ? '' : ` (${c.where})`}\n`);
      }
    }
    return r;
  } finally {
    await store.close();
  }
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];
const parseFilterFlag = (value: string): MetadataFilters => {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('expected JSON, e.g. \'{"key":"lang","operator":"==","value":"en"}\' or {"filters":[…],"condition":"and"}.');
  }
  try {
    return parseFilters(json);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};
const parseScore = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < -1 || n > 1) throw new InvalidArgumentError('expected a cosine similarity in [-1, 1], e.g. 0.3.');
  return n;
};
const modeOption = (): Option => new Option('--mode <mode>', 'dense, bm25 or hybrid (RRF of both) (default: hybrid, or bm25 for a keyword-only store)').choices([...RETRIEVAL_MODES]);
const storeHelp = 'LanceDB directory (default store), postgres://… URL, or pglite:<dir>';

export function registerRag(program: Command, io?: RagIO): void {
  const rag = program.command('rag').description('retrieval-augmented generation: ingest documents, retrieve by meaning and words, answer with citations');
  rag
    .command('ingest')
    .description('load, split, embed and store documents (text, Markdown, HTML, PDF, JSONL, CSV); re-running updates only what changed')
    .argument('<path>', 'file, directory or glob')
    .requiredOption('--store <dir>', storeHelp)
    .option('--embedder <dir|url>', 'sentence-transformers / BERT model directory, or an OpenAI-compatible base URL (http://host/v1); default: keyword-only store')
    .option('--embedder-model <name>', "model name sent to an embeddings URL (default: 'default')")
    .option('--chunk-size <n>', 'characters per chunk (default: 1000)', parsePositiveInt)
    .option('--chunk-overlap <n>', 'characters shared by consecutive chunks (default: 200)', parseNonNegativeInt)
    .option('--text-field <name>', 'JSONL field / CSV column holding text (repeatable; default: text)', collect)
    .option('--metadata-field <name>', 'JSONL field / CSV column kept as filterable metadata (repeatable)', collect)
    .option('--state <dir>', 'where the manifest and embedding cache live (default: the store directory)')
    .option('--json', 'JSON lines (progress and a summary) instead of the progress bar')
    .action(async (path: string, flags: IngestFlags) => {
      await runIngest(path, flags, io);
    });
  rag
    .command('query')
    .description('retrieve the chunks that best match a question')
    .argument('<question>', 'the question')
    .requiredOption('--store <dir>', storeHelp)
    .option('--k <n>', 'results (default: 5)', parsePositiveInt)
    .addOption(modeOption())
    .option('--filter <json>', 'metadata filter, e.g. \'{"key":"year","operator":">","value":2020}\'', parseFilterFlag)
    .option('--state <dir>', 'state directory (default: the store directory)')
    .option('--json', 'print {"results":[{"text","score","source","location"}]}')
    .action(async (question: string, flags: QueryFlags) => {
      await runQuery(question, flags, io);
    });
  rag
    .command('ask')
    .description('answer a question from the store with numbered citations (streams the answer)')
    .argument('<question>', 'the question')
    .requiredOption('--store <dir>', storeHelp)
    .requiredOption('--model <dir|url>', 'local Weft model directory, or an OpenAI-compatible base URL (http://host/v1, e.g. weft serve)')
    .option('--model-name <name>', "model name sent to a URL (default: 'default')")
    .option('--tokenizer <file>', 'tokenizer for a local model (default: found with the model)')
    .option('--k <n>', 'documents retrieved (default: 5)', parsePositiveInt)
    .addOption(modeOption())
    .option('--min-score <x>', "answer \"I don't know\" when the best cosine similarity is below x (default: 0.3)", parseScore)
    .option('--max-tokens <n>', 'answer length limit (default: 256)', parsePositiveInt)
    .option('--context-tokens <n>', 'token budget for retrieved text (default: 2000)', parsePositiveInt)
    .option('--filter <json>', 'metadata filter (as for query)', parseFilterFlag)
    .option('--state <dir>', 'state directory (default: the store directory)')
    .option('--json', 'print {"answer","refused","citations":[…]} instead of streaming')
    .action(async (question: string, flags: AskFlags) => {
      await runAsk(question, flags, io);
    });
}
