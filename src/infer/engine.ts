/**
 * The inference engine: requests in, token events out. Each step the scheduler plans a batch
 * (decodes first, then prefill chunks, preempting when KV blocks run out), the model adapter runs it
 * as one forward over all the step's tokens against the paged KV cache, and every sequence whose
 * chunk reached its last token samples its next one (RequestSampler), is detokenized incrementally
 * (IncrementalDetokenizer, stop strings held back) and checked for its end (EOS / stop ids, stop
 * strings, a finished structured-output constraint, maxTokens, the context).
 *
 * The engine drives itself: submit() starts a loop that runs one step per macrotask (setImmediate)
 * while there is work, so submissions and cancellations from the same thread get in between steps.
 * step() is public for tests and for callers that drive it themselves.
 */
import { mean } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ConstraintSpec, EngineEvent, EngineRequest, EngineStats, FinishReason, InferenceEngine, TokenConstraint, TokenLogprob } from './api.js';
import type { SequenceChunk } from './adapters/types.js';
import type { LoadedModel } from './load.js';
import { BLOCK_SIZE, PagedKVCache } from './paged-kv.js';
import { type PlannedChunk, ScheduledSequence, Scheduler } from './scheduler.js';
import { RequestSampler, type TokenText } from './sampler.js';
import { IncrementalDetokenizer } from './detokenize.js';

export interface EngineOptions {
  /** Most sequences decoding at once (default 32). */
  maxBatch?: number;
  /** KV cache blocks of 16 tokens (default: what 1 GiB holds, at most maxBatch full contexts). */
  kvBlocks?: number;
  /** Most prompt tokens computed per step (default 512): longer prompts are prefilled in chunks. */
  maxPrefillTokens?: number;
  /**
   * Builds the constraint of a request with structured output. Default: createConstraint of
   * src/infer/structured over this model's vocabulary, loaded on first use.
   */
  constraints?: (spec: ConstraintSpec) => TokenConstraint;
}

// ---------------------------------------------------------------------------------------------
// Structured output: loaded on demand from ./structured (kept apart so the engine runs without it).
// ---------------------------------------------------------------------------------------------

interface StructuredModule {
  tokenVocabulary(tokenizer: unknown, eosIds: readonly number[]): unknown;
  createConstraint(spec: ConstraintSpec, vocab: unknown): TokenConstraint;
}

let structuredModule: Promise<StructuredModule | Error> | undefined;

function loadStructured(): Promise<StructuredModule | Error> {
  // A computed specifier: the engine compiles and runs whether or not the module exists.
  const specifier = './structured/index.js';
  structuredModule ??= import(specifier).then(
    (m: Partial<StructuredModule>) =>
      typeof m.createConstraint === 'function' && typeof m.tokenVocabulary === 'function'
        ? (m as StructuredModule)
        : new Error('src/infer/structured does not export createConstraint/tokenVocabulary'),
    (e: unknown) => new Error(`structured output is unavailable: ${(e as Error).message}`),
  );
  return structuredModule;
}

// ---------------------------------------------------------------------------------------------

const DEFAULT_KV_BYTES = 1024 * 1024 * 1024;

/** Calls a request's event callback; a callback that throws is reported, never allowed to break a step. */
function deliver(onEvent: (event: EngineEvent) => void, event: EngineEvent): void {
  try {
    onEvent(event);
  } catch (e) {
    process.emitWarning(`Weft engine: the event callback of request '${event.id}' threw: ${(e as Error).message}`, { code: 'WEFT_ENGINE_CALLBACK' });
  }
}

/** A request in flight: the scheduler's sequence plus sampling, text and accounting. */
class Request {
  readonly seq: ScheduledSequence;
  readonly sampler: RequestSampler;
  readonly detok: IncrementalDetokenizer;
  readonly stopIds: Set<number>;
  readonly arrival = performance.now();
  firstScheduled: number | null = null;
  firstToken: number | null = null;
  generated = 0;
  finished = false;

  constructor(
    readonly req: EngineRequest,
    readonly onEvent: (event: EngineEvent) => void,
    readonly constraint: TokenConstraint | null,
    model: LoadedModel,
    tokenText: (id: number) => TokenText,
  ) {
    this.seq = new ScheduledSequence(req.id, req.promptIds);
    this.sampler = new RequestSampler(req.sampling, req.promptIds, model.vocabSize, tokenText);
    this.detok = new IncrementalDetokenizer(model.tokenizer, req.sampling.stop ?? [], { promptIds: req.promptIds });
    this.stopIds = new Set([...(req.sampling.ignoreEos === true ? [] : model.eosTokenIds), ...(req.sampling.stopTokenIds ?? [])]);
  }
}

export class Engine implements InferenceEngine {
  readonly model: LoadedModel;
  readonly kv: PagedKVCache;
  private readonly scheduler: Scheduler;
  private readonly requests = new Map<string, Request>();
  private readonly tokenTexts = new Map<number, TokenText>();
  private structuredVocab: unknown = null;
  private readonly constraints: ((spec: ConstraintSpec) => TokenConstraint) | null;
  private loopScheduled = false;
  private stepping = false;
  private accepting = true;
  private readonly deferredCancels: string[] = [];
  /** Requests waiting for the structured-output module to load → cancelled meanwhile. */
  private readonly loadingConstraint = new Map<string, boolean>();
  private idleWaiters: (() => void)[] = [];
  private promptTokensTotal = 0;
  private generationTokensTotal = 0;
  private stepsTotal = 0;

  constructor(model: LoadedModel, options: EngineOptions = {}) {
    this.model = model;
    const maxBatch = options.maxBatch ?? 32;
    const maxPrefillTokens = options.maxPrefillTokens ?? 512;
    const shape = model.adapter.kvShape;
    const perBlock = PagedKVCache.bytesPerBlock(shape.nLayer, shape.kvHeads, shape.headDim);
    const kvBlocks = options.kvBlocks ?? Math.max(1, Math.min(Math.floor(DEFAULT_KV_BYTES / perBlock), maxBatch * Math.ceil(model.contextLength / BLOCK_SIZE)));
    if (!Number.isInteger(kvBlocks) || kvBlocks < 1) throw new RangeError(`Engine: kvBlocks must be a positive integer, got ${kvBlocks}`);
    this.kv = new PagedKVCache({ ...shape, numBlocks: kvBlocks });
    this.scheduler = new Scheduler(this.kv, { maxBatch, maxPrefillTokens });
    this.constraints = options.constraints ?? null;
  }

  // -------------------------------------------------------------------------------------------
  // InferenceEngine
  // -------------------------------------------------------------------------------------------

  submit(request: EngineRequest, onEvent: (event: EngineEvent) => void): void {
    const fail = (message: string): void => deliver(onEvent, this.doneEvent(request.id, 'error', '', 0, 0, null, null, performance.now(), message));
    if (!this.accepting) return fail('the engine is shutting down');
    if (this.requests.has(request.id) || this.loadingConstraint.has(request.id)) return fail(`a request with id '${request.id}' is already running`);
    const problem = this.checkRequest(request);
    if (problem !== null) return fail(problem);
    if (request.constraint !== undefined && this.constraints !== null) {
      let constraint: TokenConstraint;
      try {
        constraint = this.constraints(request.constraint);
      } catch (e) {
        return fail(`response format: ${(e as Error).message}`);
      }
      return this.enqueue(request, onEvent, constraint);
    }
    if (request.constraint !== undefined) {
      // Built when the structured module has loaded (once per process; later requests get it at once).
      this.loadingConstraint.set(request.id, false);
      void loadStructured().then((mod) => {
        const cancelled = this.loadingConstraint.get(request.id) === true;
        this.loadingConstraint.delete(request.id);
        if (cancelled) return deliver(onEvent, this.doneEvent(request.id, 'abort', '', request.promptIds.length, 0, null, null, performance.now()));
        if (mod instanceof Error) return fail(mod.message);
        let constraint: TokenConstraint;
        try {
          this.structuredVocab ??= mod.tokenVocabulary(this.model.tokenizer, this.model.eosTokenIds);
          constraint = mod.createConstraint(request.constraint!, this.structuredVocab);
        } catch (e) {
          return fail(`response format: ${(e as Error).message}`);
        }
        this.enqueue(request, onEvent, constraint);
      });
      return;
    }
    this.enqueue(request, onEvent, null);
  }

  cancel(id: string): void {
    if (this.loadingConstraint.has(id)) this.loadingConstraint.set(id, true);
    const r = this.requests.get(id);
    if (r === undefined) return;
    if (this.stepping) {
      this.deferredCancels.push(id);
      return;
    }
    this.finish(r, 'abort', '');
  }

  stats(): EngineStats {
    return {
      running: this.scheduler.running.length,
      waiting: this.scheduler.waiting.length,
      kvBlocksTotal: this.kv.numBlocks,
      kvBlocksUsed: this.kv.usedBlocks,
      prefixCacheQueries: this.kv.prefixQueries,
      prefixCacheHits: this.kv.prefixHits,
      promptTokensTotal: this.promptTokensTotal,
      generationTokensTotal: this.generationTokensTotal,
      preemptionsTotal: this.scheduler.preemptionsTotal,
      stepsTotal: this.stepsTotal,
    };
  }

  async shutdown(options: { cancelRunning?: boolean } = {}): Promise<void> {
    this.accepting = false;
    if (options.cancelRunning === true) for (const id of [...this.requests.keys()]) this.cancel(id);
    if (this.requests.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  // -------------------------------------------------------------------------------------------
  // Steps
  // -------------------------------------------------------------------------------------------

  /** Runs one scheduler step. Returns whether work remains. */
  step(): boolean {
    if (this.stepping) throw new Error('Engine.step: already inside a step');
    this.stepping = true;
    try {
      this.expireTimeouts();
      const plan = this.scheduler.schedule();
      for (const seq of plan.unfit) {
        const r = this.requests.get(seq.id);
        if (r !== undefined) {
          this.finish(r, 'error', '', `the sequence needs ${Math.ceil(seq.tokens.length / BLOCK_SIZE)} KV blocks but the cache has ${this.kv.numBlocks}; raise --kv-blocks`);
        }
      }
      if (plan.chunks.length > 0) this.runChunks(plan.chunks);
      this.scheduler.commit(plan);
      this.stepsTotal++;
      for (const chunk of plan.chunks) if (chunk.sample) this.sampleFor(chunk);
    } finally {
      this.stepping = false;
      // The logits go back to the pool; samplers only read (and bias in place) their row during the step.
      this.stepLogits?.dispose();
      this.stepLogits = null;
      this.logits = null;
    }
    for (const id of this.deferredCancels.splice(0)) this.cancel(id);
    const more = this.scheduler.hasWork;
    if (!more) this.notifyIdle();
    return more;
  }

  private stepLogits: Tensor | null = null;
  private logits: Float32Array | null = null;
  private logitRow = new Map<PlannedChunk, number>();

  private runChunks(chunks: PlannedChunk[]): void {
    const batch: SequenceChunk[] = chunks.map((c) => ({
      tokens: c.seq.tokens.slice(c.start, c.start + c.count),
      start: c.start,
      blockTable: c.seq.blocks,
      logits: c.sample ? 'last' : 'none',
    }));
    const now = performance.now();
    for (const c of chunks) {
      const r = this.requests.get(c.seq.id);
      if (r !== undefined && r.firstScheduled === null) {
        r.firstScheduled = now;
        this.promptTokensTotal += r.req.promptIds.length;
      }
    }
    let out: Tensor;
    try {
      out = this.model.adapter.forward(batch, this.kv);
    } catch (e) {
      // A model error ends the step's requests, not the engine.
      for (const c of chunks) {
        const r = this.requests.get(c.seq.id);
        if (r !== undefined) this.finish(r, 'error', '', `model forward failed: ${(e as Error).message}`);
      }
      chunks.length = 0;
      return;
    }
    this.stepLogits = out;
    this.logits = out.f32('Engine.step');
    this.logitRow.clear();
    let row = 0;
    for (const c of chunks) if (c.sample) this.logitRow.set(c, row++);
  }

  private sampleFor(chunk: PlannedChunk): void {
    const r = this.requests.get(chunk.seq.id);
    const rowIndex = this.logitRow.get(chunk);
    if (r === undefined || r.finished || rowIndex === undefined || this.logits === null) return;
    const V = this.model.vocabSize;
    const row = this.logits.subarray(rowIndex * V, (rowIndex + 1) * V);
    let tokenId: number;
    let logprob: TokenLogprob | undefined;
    try {
      r.constraint?.mask(row);
      ({ tokenId, logprob } = r.sampler.sample(row));
    } catch (e) {
      this.finish(r, 'error', '', `sampling failed: ${(e as Error).message}`);
      return;
    }
    r.firstToken ??= performance.now();
    r.generated++;
    this.generationTokensTotal++;
    r.sampler.accept(tokenId);
    if (r.stopIds.has(tokenId)) {
      // The stop token ends the sequence; it is counted but neither emitted nor decoded.
      this.finish(r, 'stop', r.detok.flush());
      return;
    }
    r.constraint?.accept(tokenId);
    r.seq.tokens.push(tokenId);
    const { text, stopped } = r.detok.push([tokenId]);
    const event: EngineEvent = { type: 'token', id: r.req.id, tokenIds: [tokenId], text };
    if (logprob !== undefined) event.logprobs = [logprob];
    deliver(r.onEvent, event);
    if (r.finished) return;
    if (stopped) this.finish(r, 'stop', '');
    else if (r.constraint?.done === true) this.finish(r, 'stop', r.detok.flush());
    else if (r.generated >= r.req.sampling.maxTokens || r.seq.tokens.length >= this.model.contextLength) this.finish(r, 'length', r.detok.flush());
  }

  private expireTimeouts(): void {
    const now = performance.now();
    // Deleting the entry being visited is safe while iterating a Map: no copy needed.
    for (const r of this.requests.values()) {
      const limit = r.req.timeoutMs;
      if (limit !== undefined && now - r.arrival > limit) this.finish(r, 'timeout', '');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Requests
  // -------------------------------------------------------------------------------------------

  private checkRequest(req: EngineRequest): string | null {
    const { promptIds, sampling } = req;
    if (typeof req.id !== 'string' || req.id === '') return 'id must be a non-empty string';
    if (promptIds.length === 0) return 'the prompt is empty; give at least one token';
    const V = this.model.vocabSize;
    for (let i = 0; i < promptIds.length; i++) {
      const id = promptIds[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) return `prompt token ${id} at position ${i} is outside the vocabulary [0, ${V})`;
    }
    if (!Number.isInteger(sampling.maxTokens) || sampling.maxTokens < 1) return `maxTokens must be a positive integer, got ${sampling.maxTokens}`;
    const ctx = this.model.contextLength;
    if (promptIds.length + sampling.maxTokens > ctx) {
      return `context_length_exceeded: prompt (${promptIds.length}) + maxTokens (${sampling.maxTokens}) exceeds the context length ${ctx}`;
    }
    if (req.timeoutMs !== undefined && !(req.timeoutMs > 0)) return `timeoutMs must be positive, got ${req.timeoutMs}`;
    return null;
  }

  private enqueue(request: EngineRequest, onEvent: (event: EngineEvent) => void, constraint: TokenConstraint | null): void {
    let r: Request;
    try {
      r = new Request(request, onEvent, constraint, this.model, (id) => this.tokenText(id));
    } catch (e) {
      deliver(onEvent, this.doneEvent(request.id, 'error', '', request.promptIds.length, 0, null, null, performance.now(), (e as Error).message));
      return;
    }
    if (this.requests.has(request.id) || !this.accepting) {
      deliver(onEvent, this.doneEvent(request.id, 'error', '', request.promptIds.length, 0, null, null, performance.now(), 'duplicate id or shutting down'));
      return;
    }
    this.requests.set(request.id, r);
    this.scheduler.add(r.seq);
    this.kick();
  }

  private finish(r: Request, reason: FinishReason, text: string, error?: string): void {
    if (r.finished) return;
    r.finished = true;
    this.requests.delete(r.req.id);
    this.scheduler.remove(r.seq);
    deliver(r.onEvent, this.doneEvent(r.req.id, reason, text, r.req.promptIds.length, r.generated, r, r.firstToken, performance.now(), error));
    if (!this.scheduler.hasWork) this.notifyIdle();
  }

  private doneEvent(
    id: string,
    reason: FinishReason,
    text: string,
    promptTokens: number,
    completionTokens: number,
    r: Request | null,
    firstToken: number | null,
    now: number,
    error?: string,
  ): EngineEvent {
    const arrival = r?.arrival ?? now;
    const event: EngineEvent = {
      type: 'done',
      id,
      finishReason: reason,
      text,
      usage: { promptTokens, completionTokens, cachedPromptTokens: r?.seq.cachedPromptTokens ?? 0 },
      timings: {
        queueMs: (r?.firstScheduled ?? now) - arrival,
        firstTokenMs: (firstToken ?? now) - arrival,
        totalMs: now - arrival,
      },
    };
    if (error !== undefined) event.error = error;
    return event;
  }

  /**
   * The token's text and the UTF-8 bytes of that text, for logprobs. (A lone piece of a multi-byte
   * character decodes to U+FFFD, so its bytes are those of U+FFFD, not the raw byte.)
   */
  private tokenText(id: number): TokenText {
    let t = this.tokenTexts.get(id);
    if (t === undefined) {
      const text = this.model.tokenizer.decode([id]);
      t = { token: text, bytes: [...Buffer.from(text, 'utf8')] };
      this.tokenTexts.set(id, t);
    }
    return t;
  }

  // -------------------------------------------------------------------------------------------
  // The loop
  // -------------------------------------------------------------------------------------------

  private kick(): void {
    if (this.loopScheduled) return;
    this.loopScheduled = true;
    setImmediate(() => {
      this.loopScheduled = false;
      if (this.stepping) return;
      let more: boolean;
      try {
        more = this.step();
      } catch (e) {
        // Unexpected: fail everything in flight rather than hang.
        for (const r of [...this.requests.values()]) this.finish(r, 'error', '', `engine step failed: ${(e as Error).message}`);
        more = false;
      }
      if (more) this.kick();
    });
  }

  private notifyIdle(): void {
    if (this.requests.size > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  // -------------------------------------------------------------------------------------------
  // Embeddings
  // -------------------------------------------------------------------------------------------

  /** Mean-pooled final hidden states of each token list, L2-normalised (OpenAI's /v1/embeddings). */
  embed(batch: readonly (readonly number[])[]): Float32Array[] {
    const V = this.model.vocabSize;
    const C = this.model.adapter.hiddenSize;
    const out: Float32Array[] = [];
    for (const ids of batch) {
      if (ids.length === 0) throw new RangeError('Engine.embed: an input is empty');
      if (ids.length > this.model.contextLength) throw new RangeError(`Engine.embed: ${ids.length} tokens exceed the context length ${this.model.contextLength}`);
      ids.forEach((id, i) => {
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`Engine.embed: token ${id} at position ${i} is outside the vocabulary [0, ${V})`);
      });
      const need = Math.ceil(ids.length / BLOCK_SIZE);
      if (need > this.kv.availableBlocks) throw new RangeError(`Engine.embed: ${ids.length} tokens need ${need} free KV blocks, ${this.kv.availableBlocks} are free now; retry later`);
      const blocks = Array.from({ length: need }, () => this.kv.allocate()!);
      try {
        const h = this.model.adapter.hiddenStates([{ tokens: ids, start: 0, blockTable: blocks, logits: 'none' }], this.kv);
        const pooled = mean(h, 0);
        h.dispose();
        const v = pooled.f32('Engine.embed').slice();
        pooled.dispose();
        let norm = 0;
        for (let c = 0; c < C; c++) norm += v[c]! * v[c]!;
        const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
        for (let c = 0; c < C; c++) v[c] = v[c]! * scale;
        out.push(v);
      } finally {
        this.kv.release(blocks);
      }
    }
    return out;
  }
}
