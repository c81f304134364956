/**
 * Embedders behind one interface, `embed(texts) → Float32Array[]`:
 *  - SentenceTransformer: a local BERT-family encoder loaded from a sentence-transformers directory
 *    (modules.json → Transformer, Pooling, Normalize; 1_Pooling/config.json; sentence_bert_config.json
 *    for max_seq_length), so all-MiniLM-L6-v2 gives sentence-transformers' vectors.
 *  - OpenAIEmbeddings: any OpenAI-compatible POST /v1/embeddings endpoint (weft serve, vLLM, OpenAI).
 *  - CachedEmbedder: wraps either with a persistent cache keyed by the embedder and the text's hash,
 *    so re-ingesting unchanged text embeds nothing.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readFile, truncate } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../tensor/autograd.js';
import { add, clamp, div, max, mul, sqrt, square, sum } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';
import { BertForPreTraining } from '../models/bert.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { writeFileAtomic } from '../io/atomic.js';

export interface Embedder {
  /** Identifies the model (and its weights): part of the embedding cache key. */
  readonly id: string;
  /** Vector width, when known before the first call. */
  readonly dim: number | null;
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}

// -------------------------------------------------------------------------------------------------
// sentence-transformers directories
// -------------------------------------------------------------------------------------------------

const ModulesSchema = z.array(z.object({ idx: z.number().int(), name: z.string(), path: z.string(), type: z.string() }));
const PoolingSchema = z
  .object({
    word_embedding_dimension: z.number().int().positive().optional(),
    pooling_mode_cls_token: z.boolean().default(false),
    pooling_mode_mean_tokens: z.boolean().default(true),
    pooling_mode_max_tokens: z.boolean().default(false),
    pooling_mode_mean_sqrt_len_tokens: z.boolean().default(false),
  })
  .loose();
const SentenceBertConfigSchema = z.object({ max_seq_length: z.number().int().positive().default(512), do_lower_case: z.boolean().default(false) }).loose();

export type PoolingMode = 'mean' | 'cls' | 'max' | 'mean_sqrt_len';

export interface SentenceTransformerSpec {
  /** Directory with the transformer (config.json, weights, tokenizer). */
  transformerDir: string;
  pooling: PoolingMode;
  normalize: boolean;
  maxSeqLength: number;
  doLowerCase: boolean;
  /** How the spec was decided, for messages. */
  note: string;
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${what}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * Reads a sentence-transformers directory's module list. A plain BERT directory (no modules.json)
 * gets mean pooling + normalisation, the sentence-transformers default for a bare encoder.
 */
export function readSentenceTransformerSpec(dir: string): SentenceTransformerSpec {
  const who = 'SentenceTransformer';
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${who}: ${dir} is not a directory`);
  const modulesPath = join(dir, 'modules.json');
  if (!existsSync(modulesPath)) {
    if (!existsSync(join(dir, 'config.json'))) throw new Error(`${who}: ${dir} has neither modules.json (a sentence-transformers model) nor config.json (a BERT model)`);
    return { transformerDir: dir, pooling: 'mean', normalize: true, maxSeqLength: 512, doLowerCase: false, note: 'no modules.json: mean pooling + L2 normalisation' };
  }
  const parsed = ModulesSchema.safeParse(readJson(modulesPath, who));
  if (!parsed.success) throw new Error(`${who}: ${modulesPath}: expected a list of {idx, name, path, type}: ${parsed.error.issues[0]?.message}`);
  const modules = [...parsed.data].sort((a, b) => a.idx - b.idx);
  const kind = (t: string): string => t.split('.').pop() ?? t;
  const transformer = modules.find((m) => kind(m.type) === 'Transformer');
  if (transformer === undefined) throw new Error(`${who}: ${modulesPath} has no sentence_transformers.models.Transformer module`);
  const known = new Set(['Transformer', 'Pooling', 'Normalize']);
  const unknown = modules.filter((m) => !known.has(kind(m.type)));
  if (unknown.length > 0) throw new Error(`${who}: ${modulesPath}: module(s) ${unknown.map((m) => m.type).join(', ')} are not supported (only Transformer, Pooling, Normalize)`);
  const transformerDir = join(dir, transformer.path);
  let pooling: PoolingMode = 'mean';
  const poolingModule = modules.find((m) => kind(m.type) === 'Pooling');
  if (poolingModule !== undefined) {
    const cfgPath = join(dir, poolingModule.path, 'config.json');
    const p = PoolingSchema.safeParse(readJson(cfgPath, who));
    if (!p.success) throw new Error(`${who}: ${cfgPath}: ${p.error.issues[0]?.message}`);
    const modes: PoolingMode[] = [];
    if (p.data.pooling_mode_cls_token) modes.push('cls');
    if (p.data.pooling_mode_mean_tokens) modes.push('mean');
    if (p.data.pooling_mode_max_tokens) modes.push('max');
    if (p.data.pooling_mode_mean_sqrt_len_tokens) modes.push('mean_sqrt_len');
    if (modes.length !== 1) throw new Error(`${who}: ${cfgPath}: exactly one pooling mode must be on (got ${modes.join(', ') || 'none'}); concatenated poolings are not supported`);
    pooling = modes[0]!;
  }
  const stCfgPath = [join(transformerDir, 'sentence_bert_config.json'), join(dir, 'sentence_bert_config.json')].find((p) => existsSync(p));
  const st = SentenceBertConfigSchema.parse(stCfgPath === undefined ? {} : readJson(stCfgPath, who));
  return {
    transformerDir,
    pooling,
    normalize: modules.some((m) => kind(m.type) === 'Normalize'),
    maxSeqLength: st.max_seq_length,
    doLowerCase: st.do_lower_case,
    note: `modules.json: ${modules.map((m) => kind(m.type)).join(' → ')} (${pooling} pooling)`,
  };
}

/** Pools token states [B, T, C] with a 0/1 mask [B, T] into sentence vectors [B, C] (differentiable). */
export function poolHidden(hidden: Tensor, mask: Float32Array, mode: PoolingMode, normalize: boolean): Tensor {
  const [B, T] = hidden.shape as [number, number, number];
  let pooled: Tensor;
  if (mode === 'cls') pooled = hidden.select(1, 0);
  else if (mode === 'max') {
    // Padding positions get a large negative value so they never win (sentence-transformers' −1e9).
    const bias = new Float32Array(B * T);
    for (let i = 0; i < bias.length; i++) bias[i] = mask[i] === 0 ? -1e9 : 0;
    pooled = max(add(hidden, Tensor.fromArray(bias, [B, T, 1])), 1);
  } else {
    const m = Tensor.fromArray(mask, [B, T, 1]);
    const counts = new Float32Array(B);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) counts[b]! += mask[b * T + t]!;
    const denom = Float32Array.from(counts, (c) => (mode === 'mean' ? Math.max(c, 1e-9) : Math.sqrt(Math.max(c, 1e-9))));
    pooled = div(sum(mul(hidden, m), 1), Tensor.fromArray(denom, [B, 1]));
  }
  if (!normalize) return pooled;
  return div(pooled, clamp(sqrt(sum(square(pooled), 1, true)), 1e-12));
}

export interface SentenceTransformerOptions {
  /** Texts per forward pass (default 32). */
  batchSize?: number;
}

/** A sentence-transformers model run by Weft's BERT. */
export class SentenceTransformer implements Embedder {
  readonly id: string;
  readonly dim: number;
  readonly batchSize: number;

  constructor(
    readonly model: BertForPreTraining,
    readonly tokenizer: Tokenizer,
    readonly spec: SentenceTransformerSpec,
    options: SentenceTransformerOptions & { id?: string } = {},
  ) {
    this.dim = model.config.hiddenSize;
    this.batchSize = options.batchSize ?? 32;
    this.id = options.id ?? `st:${resolve(spec.transformerDir)}`;
    tokenizer.truncation = { maxLength: Math.min(spec.maxSeqLength, model.config.maxPositionEmbeddings), stride: 0, strategy: 'longest_first', direction: 'right' };
    tokenizer.padding = null;
  }

  static async load(dir: string, options: SentenceTransformerOptions = {}): Promise<SentenceTransformer> {
    const spec = readSentenceTransformerSpec(dir);
    const cfg = readJson(join(spec.transformerDir, 'config.json'), 'SentenceTransformer') as { model_type?: string };
    if (cfg.model_type !== undefined && cfg.model_type !== 'bert') {
      throw new Error(`SentenceTransformer: ${spec.transformerDir}: model_type '${cfg.model_type}' is not supported yet (BERT-family encoders: model_type 'bert')`);
    }
    const model = await BertForPreTraining.fromPretrained(spec.transformerDir);
    const tokenizer = loadTokenizer(existsSync(join(spec.transformerDir, 'tokenizer.json')) || existsSync(join(spec.transformerDir, 'vocab.txt')) ? spec.transformerDir : dir);
    // The weights' identity (size and mtime) keys the cache, so a re-trained model never reuses stale vectors.
    const weights = ['model.safetensors', 'model.safetensors.index.json'].map((f) => join(spec.transformerDir, f)).find((f) => existsSync(f));
    const stamp = weights === undefined ? '' : `${statSync(weights).size}:${statSync(weights).mtimeMs}`;
    const id = `st:${createHash('sha256').update(`${resolve(spec.transformerDir)}|${stamp}|${spec.pooling}|${spec.normalize}|${spec.maxSeqLength}`).digest('hex').slice(0, 16)}`;
    return new SentenceTransformer(model, tokenizer, spec, { ...options, id });
  }

  /** Token ids, padded to the batch's longest, and the 0/1 attention mask. */
  tokenize(texts: readonly string[]): { ids: Tensor; mask: Float32Array; maskTensor: Tensor; lengths: number[] } {
    const encs = this.tokenizer.encodeBatch(texts.map((t) => (this.spec.doLowerCase ? t.toLowerCase() : t)));
    const T = Math.max(1, ...encs.map((e) => e.ids.length));
    const B = texts.length;
    const ids = new Int32Array(B * T).fill(this.model.config.padTokenId);
    const mask = new Float32Array(B * T);
    encs.forEach((e, b) => {
      e.ids.forEach((id, t) => {
        ids[b * T + t] = id;
        mask[b * T + t] = 1;
      });
    });
    return { ids: Tensor.fromArray(ids, [B, T], 'i32'), mask, maskTensor: Tensor.fromArray(mask, [B, T]), lengths: encs.map((e) => e.ids.length) };
  }

  /** Sentence vectors [B, C] as a tensor (with gradients when grad is on and the model trains). */
  forward(texts: readonly string[]): Tensor {
    const { ids, mask, maskTensor } = this.tokenize(texts);
    const hidden = this.model.encode(ids, { attentionMask: maskTensor });
    return poolHidden(hidden, mask, this.spec.pooling, this.spec.normalize);
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const out = new Array<Float32Array>(texts.length);
    // Similar lengths share a batch, so little compute goes to padding.
    const order = texts.map((t, i) => ({ i, n: t.length })).sort((a, b) => a.n - b.n);
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      for (let s = 0; s < order.length; s += this.batchSize) {
        const part = order.slice(s, s + this.batchSize);
        const v = noGrad(() => this.forward(part.map((p) => texts[p.i]!)));
        const flat = v.contiguous().f32('SentenceTransformer.embed');
        part.forEach((p, r) => {
          out[p.i] = flat.slice(r * this.dim, (r + 1) * this.dim);
        });
      }
    } finally {
      this.model.train(wasTraining);
    }
    return out;
  }

  /** Writes a sentence-transformers directory: the BERT weights and config, tokenizer, modules.json, pooling config. */
  async save(dir: string): Promise<void> {
    await mkdir(join(dir, '1_Pooling'), { recursive: true });
    await this.model.savePretrained(dir);
    this.tokenizer.save(join(dir, 'tokenizer.json'));
    const modules = [
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
      ...(this.spec.normalize ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
    ];
    await writeFileAtomic(join(dir, 'modules.json'), JSON.stringify(modules, null, 2) + '\n');
    const p = this.spec.pooling;
    await writeFileAtomic(
      join(dir, '1_Pooling', 'config.json'),
      JSON.stringify({ word_embedding_dimension: this.dim, pooling_mode_cls_token: p === 'cls', pooling_mode_mean_tokens: p === 'mean', pooling_mode_max_tokens: p === 'max', pooling_mode_mean_sqrt_len_tokens: p === 'mean_sqrt_len' }, null, 2) + '\n',
    );
    await writeFileAtomic(join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: this.spec.maxSeqLength, do_lower_case: this.spec.doLowerCase }, null, 2) + '\n');
  }
}

// -------------------------------------------------------------------------------------------------
// OpenAI-compatible endpoints
// -------------------------------------------------------------------------------------------------

export interface OpenAIEmbeddingsOptions {
  /** Base URL up to and including /v1 (a URL ending in /embeddings is used as is). */
  baseURL: string;
  model?: string;
  apiKey?: string;
  /** Texts per request (default 64). */
  batchSize?: number;
  dimensions?: number;
}

const EmbeddingsResponse = z.object({ data: z.array(z.object({ index: z.number().int(), embedding: z.array(z.number()) })) });

/** Any OpenAI-compatible /v1/embeddings endpoint. */
export class OpenAIEmbeddings implements Embedder {
  readonly id: string;
  dim: number | null;
  private readonly url: string;

  constructor(private readonly options: OpenAIEmbeddingsOptions) {
    const base = options.baseURL.replace(/\/+$/, '');
    this.url = base.endsWith('/embeddings') ? base : `${base}/embeddings`;
    this.id = `openai:${this.url}|${options.model ?? ''}|${options.dimensions ?? ''}`;
    this.dim = options.dimensions ?? null;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const batch = this.options.batchSize ?? 64;
    for (let s = 0; s < texts.length; s += batch) {
      const input = texts.slice(s, s + batch);
      let res: Response;
      try {
        res = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.options.apiKey !== undefined ? { authorization: `Bearer ${this.options.apiKey}` } : {}) },
          body: JSON.stringify({ input, model: this.options.model ?? 'default', encoding_format: 'float', ...(this.options.dimensions !== undefined ? { dimensions: this.options.dimensions } : {}) }),
        });
      } catch (e) {
        throw new Error(`embeddings: cannot reach ${this.url}: ${(e as Error).message}`);
      }
      const body = await res.text();
      if (!res.ok) throw new Error(`embeddings: ${this.url} answered ${res.status}: ${body.slice(0, 300)}`);
      let parsed;
      try {
        parsed = EmbeddingsResponse.parse(JSON.parse(body));
      } catch (e) {
        throw new Error(`embeddings: ${this.url} did not answer with {data: [{index, embedding}]}: ${(e as Error).message.slice(0, 300)}`);
      }
      if (parsed.data.length !== input.length) throw new Error(`embeddings: ${this.url} returned ${parsed.data.length} vectors for ${input.length} inputs`);
      const sorted = [...parsed.data].sort((a, b) => a.index - b.index);
      for (const d of sorted) out.push(Float32Array.from(d.embedding));
    }
    if (out.length > 0) this.dim = out[0]!.length;
    return out;
  }
}

// -------------------------------------------------------------------------------------------------
// The persistent embedding cache
// -------------------------------------------------------------------------------------------------

const MAGIC = Buffer.from('WEFTEMB1');
const KEY_BYTES = 32;

/**
 * An append-only file of (key, vector) records: 32-byte sha256 key, u32 dimension, f32 values.
 * Each append is written and fsynced before the call returns; a record cut short by a crash is
 * dropped (and truncated away) on the next open, so the file never holds a wrong vector.
 */
export class EmbeddingCache {
  private readonly map = new Map<string, Float32Array>();

  private constructor(readonly path: string) {}

  static async open(path: string): Promise<EmbeddingCache> {
    const cache = new EmbeddingCache(path);
    await mkdir(join(path, '..'), { recursive: true });
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch {
      await writeFileAtomic(path, MAGIC);
      return cache;
    }
    if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`embedding cache ${path}: not a Weft embedding cache (bad magic); delete it to start afresh`);
    let off = MAGIC.length;
    while (off + KEY_BYTES + 4 <= buf.length) {
      const key = buf.subarray(off, off + KEY_BYTES).toString('hex');
      const dim = buf.readUInt32LE(off + KEY_BYTES);
      const end = off + KEY_BYTES + 4 + dim * 4;
      if (end > buf.length) break;
      const v = new Float32Array(dim);
      for (let i = 0; i < dim; i++) v[i] = buf.readFloatLE(off + KEY_BYTES + 4 + i * 4);
      cache.map.set(key, v);
      off = end;
    }
    if (off < buf.length) await truncate(path, off);
    return cache;
  }

  static key(embedderId: string, text: string): string {
    return createHash('sha256').update(embedderId).update('\u0000').update(text).digest('hex');
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): Float32Array | undefined {
    return this.map.get(key);
  }

  async putMany(entries: readonly [string, Float32Array][]): Promise<void> {
    const fresh = entries.filter(([k]) => !this.map.has(k));
    if (fresh.length === 0) return;
    const parts: Buffer[] = [];
    for (const [k, v] of fresh) {
      const rec = Buffer.alloc(KEY_BYTES + 4 + v.length * 4);
      Buffer.from(k, 'hex').copy(rec, 0);
      rec.writeUInt32LE(v.length, KEY_BYTES);
      for (let i = 0; i < v.length; i++) rec.writeFloatLE(v[i]!, KEY_BYTES + 4 + i * 4);
      parts.push(rec);
    }
    const fh = await open(this.path, 'a');
    try {
      await fh.write(Buffer.concat(parts));
      await fh.sync();
    } finally {
      await fh.close();
    }
    for (const [k, v] of fresh) this.map.set(k, v);
  }
}

/** An embedder that asks the inner one only for texts the cache has not seen. */
export class CachedEmbedder implements Embedder {
  /** Texts embedded by the inner embedder / served from the cache, since creation. */
  misses = 0;
  hits = 0;

  constructor(
    readonly inner: Embedder,
    readonly cache: EmbeddingCache,
  ) {}

  get id(): string {
    return this.inner.id;
  }

  get dim(): number | null {
    return this.inner.dim;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const keys = texts.map((t) => EmbeddingCache.key(this.inner.id, t));
    const out = keys.map((k) => this.cache.get(k));
    const todo = [...new Set(keys.filter((_, i) => out[i] === undefined))];
    this.hits += texts.length - keys.filter((_, i) => out[i] === undefined).length;
    if (todo.length > 0) {
      const firstIndex = new Map<string, number>();
      keys.forEach((k, i) => {
        if (!firstIndex.has(k)) firstIndex.set(k, i);
      });
      const vectors = await this.inner.embed(todo.map((k) => texts[firstIndex.get(k)!]!));
      this.misses += todo.length;
      await this.cache.putMany(todo.map((k, i) => [k, vectors[i]!]));
    }
    return keys.map((k) => this.cache.get(k)!.slice());
  }
}
