/**
 * The CPU-heavy work of the pipeline as plain functions over batches, so the same code runs in a
 * worker thread (worker.ts) or in-process (workers: 0): cleaning (normalise → boilerplate →
 * language id → quality filters → PII masking) with the dedup hash and MinHash sketch of every kept
 * document, and tokenization. Batches carry only structured-cloneable data.
 */
import { readFileSync } from 'node:fs';
import { BoilerplateSketch, type BoilerplateSnapshot } from './boilerplate.js';
import { exactHash, MinHasher, type ResolvedMinHashOptions } from './dedup.js';
import { c4Stage } from './filters/c4.js';
import { cjkFilter } from './filters/cjk.js';
import { gopherQualityFilter, gopherRepetitionFilter } from './filters/gopher.js';
import { piiTransform } from './filters/pii.js';
import { LanguageIdentifier, languageStage, type EldModelSize } from './langid.js';
import { normalizeTransform, type NormalizeOptions } from './normalize.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import type { Tokenizer as DataTokenizer } from '../tokenizer.js';
import { tokenizerFromSavedJSON } from '../tokenizer.js';
import { resolveEos } from './pack.js';
import { filterStage as fromFilter, StageChain, transformStage as fromTransform } from './stats.js';
import type { Doc, DocStage, DocTransform, StageStats } from './types.js';

export const FILTER_NAMES = ['gopher', 'c4', 'cjk', 'pii', 'boilerplate'] as const;
export type FilterName = (typeof FILTER_NAMES)[number];
export type DedupMode = 'exact' | 'minhash' | 'none';

/** Everything a cleaning worker needs; structured-cloneable. */
export interface CleanConfig {
  normalize: NormalizeOptions;
  /** Keep only these languages (ISO 639-1); empty keeps all. Language id always runs (mixing needs it). */
  languages: string[];
  langidModel: EldModelSize;
  filters: FilterName[];
  dedup: DedupMode;
  minhash: ResolvedMinHashOptions;
  /** Pass-1 boilerplate counts, when 'boilerplate' is among the filters. */
  boilerplate: BoilerplateSnapshot | null;
  boilerplateMinDocs: number;
  /**
   * Tokenize the kept documents in the same worker, right after cleaning (EOS appended): the
   * tokenizer's source (loadTokenizer) and EOS token (null: the tokenizer's own). Null leaves
   * tokenizing to the pack stage.
   */
  tokenize: { source: string; eos: string | null } | null;
  /**
   * Send the kept texts back (default true). Off when the texts are tokenized here and nobody
   * reads them afterwards: they then never cross back to the main thread nor go to disk.
   */
  keepText?: boolean;
}

/** A kept document with what deduplication needs. */
export interface CleanDoc {
  id: string;
  source: string;
  lang: string;
  /** The cleaned text ('' when the config's keepText is false). */
  text: string;
  /** UTF-8 bytes of the cleaned text. */
  bytes: number;
}

export interface CleanBatchResult {
  kept: CleanDoc[];
  /** Per kept document: 16-byte MD5 of the exact-dedup key (empty when dedup is 'none'). */
  hashes: string[];
  /** Per kept document (MinHash only): bands keys (n × bands), 16-bit signatures (n × numPerm), shingle counts. */
  bandKeys: Float64Array;
  sig16: Uint16Array;
  shingles: Uint32Array;
  /** Per stage, in order. */
  stats: StageStats[];
  bytesIn: number;
  /** The kept documents' tokens, when the config asks the cleaner to tokenize. */
  tokens: TokenizeResult | null;
}

/** The cleaning stages in order, for a config. */
export async function buildCleanStages(config: CleanConfig): Promise<DocStage[]> {
  const on = new Set(config.filters);
  const stages: DocStage[] = [fromTransform(normalizeTransform(config.normalize))];
  if (on.has('boilerplate')) {
    if (config.boilerplate === null) throw new Error("clean: the 'boilerplate' filter needs the pass-1 line counts");
    stages.push(BoilerplateSketch.fromSnapshot(config.boilerplate, { minDocs: config.boilerplateMinDocs }).stage());
  }
  stages.push(languageStage(await LanguageIdentifier.load({ model: config.langidModel }), { languages: config.languages }));
  if (on.has('gopher')) stages.push(fromFilter(gopherRepetitionFilter()), fromFilter(gopherQualityFilter()));
  if (on.has('c4')) stages.push(c4Stage());
  if (on.has('cjk')) stages.push(fromFilter(cjkFilter()));
  if (on.has('pii')) stages.push(fromTransform(piiTransform()));
  return stages;
}

/** Cleans batches of documents and sketches the survivors. */
export class Cleaner {
  private constructor(
    readonly config: CleanConfig,
    private readonly stages: DocStage[],
    private readonly hasher: MinHasher | null,
    private readonly tokenizer: { task: TokenizeTask; tokenizer: DataTokenizer; eos: { id: number; token: string } } | null,
  ) {}

  static async create(config: CleanConfig): Promise<Cleaner> {
    const stages = await buildCleanStages(config);
    let tokenizer: { task: TokenizeTask; tokenizer: DataTokenizer; eos: { id: number; token: string } } | null = null;
    if (config.tokenize !== null) {
      const tok = loadTokenizer(config.tokenize.source);
      const eos = resolveEos(tok, config.tokenize.eos ?? undefined);
      tokenizer = { task: new TokenizeTask(tok, eos.id), tokenizer: tok, eos };
    }
    return new Cleaner(config, stages, config.dedup === 'minhash' ? new MinHasher(config.minhash) : null, tokenizer);
  }

  /**
   * What the orchestrator needs of the tokenizer (so it need not load one too): null when not
   * tokenizing. The saved form (megabytes of JSON to build and send) only when `withJson`.
   */
  tokenizerInfo(withJson: boolean): TokenizerInfo | null {
    if (this.tokenizer === null) return null;
    const { tokenizer, eos } = this.tokenizer;
    return { vocabSize: tokenizer.vocabSize, eos, json: withJson ? `${JSON.stringify(tokenizer.toJSON())}\n` : null };
  }

  get stageNames(): string[] {
    return this.stages.map((s) => s.name);
  }

  process(docs: readonly Doc[]): CleanBatchResult {
    // A fresh chain per batch: its stats are this batch's, merged in order by the caller.
    const chain = new StageChain(this.stages);
    const kept: CleanDoc[] = [];
    const hashes: string[] = [];
    const sketches: { bandKeys: Float64Array; sig16: Uint16Array; shingles: number }[] = [];
    let bytesIn = 0;
    for (const input of docs) {
      const size = Buffer.byteLength(input.text, 'utf8');
      bytesIn += size;
      const out = chain.processMeasured(input, size);
      if (out === null) continue;
      const doc = out.doc;
      kept.push({ id: doc.id, source: doc.source, lang: doc.lang ?? 'und', text: doc.text, bytes: out.bytes });
      if (this.config.dedup !== 'none') hashes.push(exactHash(doc.text));
      if (this.hasher !== null) sketches.push(this.hasher.sketch(doc.text));
    }
    const { bands, numPerm } = this.config.minhash;
    const bandKeys = new Float64Array(sketches.length * bands);
    const sig16 = new Uint16Array(sketches.length * numPerm);
    const shingles = new Uint32Array(sketches.length);
    sketches.forEach((sk, i) => {
      bandKeys.set(sk.bandKeys, i * bands);
      sig16.set(sk.sig16, i * numPerm);
      shingles[i] = sk.shingles;
    });
    const tokens = this.tokenizer === null ? null : this.tokenizer.task.run(kept.map((d) => d.text));
    if (this.config.keepText === false) for (const d of kept) d.text = '';
    return { kept, hashes, bandKeys, sig16, shingles, stats: chain.stats(), bytesIn, tokens };
  }
}

/** Pass 1 of boilerplate stripping: normalise and count lines (per worker; the sketches are merged). */
export class BoilerplateObserver {
  private readonly normalize: DocTransform;
  readonly sketch: BoilerplateSketch;

  constructor(normalize: NormalizeOptions, minDocs: number) {
    this.normalize = normalizeTransform(normalize);
    this.sketch = new BoilerplateSketch({ minDocs });
  }

  observe(docs: readonly Doc[]): void {
    for (const d of docs) this.sketch.observe(this.normalize.apply(d).text);
  }
}

/** A tokenizer's size, end-of-document token and, when asked for, saved form (tokenizer.json). */
export interface TokenizerInfo {
  vocabSize: number;
  eos: { id: number; token: string };
  json: string | null;
}

export interface TokenizeResult {
  /** Every document's ids followed by EOS, concatenated. */
  ids: Uint32Array;
  /** Tokens per document (EOS included). */
  lengths: Uint32Array;
}

/** Tokenizes batches of texts, appending EOS to each. */
export class TokenizeTask {
  /** Over a built tokenizer (the orchestrator tokenizes with its own while the workers clean). */
  constructor(
    private readonly tokenizer: DataTokenizer,
    private readonly eosId: number,
  ) {}

  /** From a pool's init: the saved JSON itself, or the file holding it. */
  static fromInit(init: { tokenizer?: unknown; tokenizerFile?: string; eosId: number }): TokenizeTask {
    if (init.tokenizerFile !== undefined) return new TokenizeTask(tokenizerFromSavedJSON(JSON.parse(readFileSync(init.tokenizerFile, 'utf8')) as unknown), init.eosId);
    if (init.tokenizer === undefined) throw new Error('tokenize task: needs the tokenizer JSON or its file');
    return new TokenizeTask(tokenizerFromSavedJSON(init.tokenizer), init.eosId);
  }

  run(texts: readonly string[]): TokenizeResult {
    const parts: number[][] = [];
    let total = 0;
    for (const t of texts) {
      // Not pushed onto: a tokenizer may hand out an array it caches.
      const ids = this.tokenizer.encode(t);
      parts.push(ids);
      total += ids.length + 1;
    }
    const ids = new Uint32Array(total);
    const lengths = new Uint32Array(parts.length);
    let o = 0;
    parts.forEach((p, i) => {
      ids.set(p, o);
      ids[o + p.length] = this.eosId;
      o += p.length + 1;
      lengths[i] = p.length + 1;
    });
    return { ids, lengths };
  }
}
