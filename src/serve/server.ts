/**
 * The OpenAI-compatible HTTP server: a thin face on the inference engine. It validates requests,
 * renders chat templates, tokenizes and checks the context on its own thread, and hands token ids
 * to the engine host (a worker thread in production). Everything that can go wrong is answered in
 * OpenAI's error shape; the engine only ever sees requests that fit.
 *
 * Admission is bounded: at most maxBatch + maxQueue sequences are in flight, beyond that 429 with
 * Retry-After. A client that disconnects has its sequences cancelled (the engine frees their KV
 * blocks); a request over --timeout is cancelled and answered 408.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { EngineEvent, EngineRequest, FinishReason, RequestUsage, SamplingParams, TokenLogprob, ConstraintSpec } from '../infer/api.js';
import { chatTemplateFor, parseToolCalls, ToolCallStreamParser, type ChatMessage, type ChatTemplate } from './chat-support.js';
import { tokenizerFromSavedJSON, type Tokenizer } from '../data/tokenizer.js';
import { Tokenizer as HFTokenizer } from '../tokenizers/tokenizer.js';
import { ApiError, badRequest, modelNotFound, overloaded, requestTimeout, serverError, unauthorized, unavailable } from './errors.js';
import type { EngineHost, ServedModelInfo } from './host.js';
import { ServerMetrics, type RequestOutcome } from './metrics.js';
import { PLAYGROUND_HTML } from './playground.js';
import {
  chatRenderSchema,
  chatRequestSchema,
  completionRequestSchema,
  detokenizeRequestSchema,
  embeddingRequestSchema,
  parseRequest,
  tokenizeRequestSchema,
  type ChatRequest,
  type ChatRequestMessage,
  type ChatTool,
  type CompletionRequest,
} from './schemas.js';

export interface ServerOptions {
  host?: string;
  port?: number;
  /** Bearer key every route but /health and / requires (default: WEFT_API_KEY, else none). */
  apiKey?: string;
  /** Serve without a key on a non-loopback address (refused by default). */
  allowUnauthenticated?: boolean;
  /** Sequences the engine runs at once (used to size admission). */
  maxBatch?: number;
  /** Sequences allowed to wait beyond maxBatch before new requests get 429. */
  maxQueue?: number;
  /** The id clients use in `model` (default: the engine's model id). */
  modelId?: string;
  /** Allowed CORS origin(s), comma-separated, or '*'. */
  cors?: string;
  /** Per-request timeout in seconds (default: none). */
  timeoutS?: number;
  /** Largest request body in bytes (default 16 MiB). */
  bodyLimit?: number;
}

export const SERVER_DEFAULTS = { host: '127.0.0.1', port: 8000, maxBatch: 32, maxQueue: 256 } as const;

type RenderOptions = Parameters<ChatTemplate['render']>[1];
type RenderTool = NonNullable<RenderOptions['tools']>[number];

/** The model as the server holds it once the engine is up. */
interface Served {
  host: EngineHost;
  info: ServedModelInfo;
  modelId: string;
  tokenizer: Tokenizer;
  template: ChatTemplate | Error;
  bosText: string | null;
}

interface SeqResult {
  text: string;
  tokenCount: number;
  logprobs: TokenLogprob[];
  finishReason: FinishReason;
  usage: RequestUsage;
  error?: string;
}

interface Generation {
  /** Submits the sequences (after a streaming response has sent its headers). */
  start(): void;
  readonly results: Promise<SeqResult[]>;
  cancel(): void;
  readonly timedOut: () => boolean;
}

interface GenerationHooks {
  onToken?: (index: number, event: Extract<EngineEvent, { type: 'token' }>) => void;
  onDone?: (index: number, event: Extract<EngineEvent, { type: 'done' }>) => void;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time key check: compares digests, which are always the same length. */
export function apiKeyMatches(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

export class WeftServer {
  readonly app: FastifyInstance;
  readonly options: Required<Pick<ServerOptions, 'host' | 'port' | 'maxBatch' | 'maxQueue'>> & ServerOptions;
  private state: 'loading' | 'ready' | 'draining' | 'failed' = 'loading';
  private failure: string | null = null;
  private served: Served | null = null;
  private metrics: ServerMetrics;
  private readonly generations = new Set<Generation>();
  private inflightSeqs = 0;
  private readonly idleWaiters: (() => void)[] = [];
  /** Recent end-to-end latencies (s), for Retry-After. */
  private readonly recentE2E: number[] = [];
  private readonly apiKey: string | null;

  constructor(options: ServerOptions = {}) {
    const apiKey = options.apiKey ?? process.env.WEFT_API_KEY;
    this.options = {
      ...options,
      host: options.host ?? SERVER_DEFAULTS.host,
      port: options.port ?? SERVER_DEFAULTS.port,
      maxBatch: options.maxBatch ?? SERVER_DEFAULTS.maxBatch,
      maxQueue: options.maxQueue ?? SERVER_DEFAULTS.maxQueue,
      apiKey: apiKey === '' ? undefined : apiKey,
    };
    if (this.options.apiKey === undefined && !isLoopback(this.options.host) && this.options.allowUnauthenticated !== true) {
      throw new Error(
        `refusing to serve on ${this.options.host} (reachable from other machines) without an API key: ` +
          'pass --api-key <key> or set WEFT_API_KEY, bind to 127.0.0.1, or pass --allow-unauthenticated if you really mean it',
      );
    }
    this.apiKey = this.options.apiKey ?? null;
    this.metrics = new ServerMetrics(options.modelId ?? 'loading');
    this.app = Fastify({ logger: false, bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024, forceCloseConnections: 'idle' });
    this.installHooks();
    this.installRoutes();
  }

  /** Attaches a loaded engine host; the server starts answering generation requests. */
  attach(host: EngineHost): void {
    const info = host.info;
    const modelId = this.options.modelId ?? info.modelId;
    let template: ChatTemplate | Error;
    try {
      template = chatTemplateFor(info.tokenizerConfig);
    } catch (e) {
      template = e instanceof Error ? e : new Error(String(e));
    }
    const tokenizer = tokenizerFromSavedJSON(info.tokenizerJSON);
    this.served = { host, info, modelId, tokenizer, template, bosText: bosTextOf(info, tokenizer) };
    this.metrics = new ServerMetrics(modelId);
    host.onFailure = (err) => {
      this.state = 'failed';
      this.failure = err.message;
    };
    if (this.state === 'loading') this.state = 'ready';
  }

  /** Attaches the host when `loading` resolves; /health says 503 until then (and after a failure). */
  async load(loading: Promise<EngineHost>): Promise<void> {
    let host: EngineHost | null = null;
    try {
      host = await loading;
      this.attach(host);
    } catch (err) {
      this.state = 'failed';
      this.failure = err instanceof Error ? err.message : String(err);
      // A host that loaded but cannot be served (e.g. an unreadable tokenizer) is released.
      if (host !== null) await host.close({ cancelRunning: true }).catch(() => undefined);
      throw err;
    }
  }

  async listen(): Promise<string> {
    await this.app.listen({ host: this.options.host, port: this.options.port });
    const addr = this.app.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : this.options.port;
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${port}`;
  }

  /** Sequences admitted and not finished. */
  get inflight(): number {
    return this.inflightSeqs;
  }

  /**
   * Graceful shutdown: new requests get 503, in-flight ones may finish for `graceMs`, the rest are
   * cancelled; then the HTTP server and the engine close.
   */
  async shutdown(graceMs = 10_000): Promise<void> {
    if (this.state !== 'failed') this.state = 'draining';
    if (this.inflightSeqs > 0) {
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), delay(graceMs)]);
    }
    if (this.inflightSeqs > 0) {
      for (const g of this.generations) g.cancel();
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), delay(2000)]);
    }
    await this.app.close();
    await this.served?.host.close({ cancelRunning: true });
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private installHooks(): void {
    const corsOrigins = this.options.cors?.split(',').map((s) => s.trim()).filter((s) => s !== '') ?? [];
    this.app.addHook('onRequest', async (request, reply) => {
      if (corsOrigins.length > 0) {
        const origin = request.headers.origin;
        const allow = corsOrigins.includes('*') ? '*' : origin !== undefined && corsOrigins.includes(origin) ? origin : null;
        if (allow !== null) {
          reply.header('access-control-allow-origin', allow);
          if (allow !== '*') reply.header('vary', 'Origin');
        }
        if (request.method === 'OPTIONS') {
          reply
            .code(204)
            .header('access-control-allow-methods', 'GET, POST, OPTIONS')
            .header('access-control-allow-headers', request.headers['access-control-request-headers'] ?? 'authorization, content-type')
            .header('access-control-max-age', '600')
            .send();
          return reply;
        }
      }
      if (this.apiKey === null) return;
      const path = request.url.split('?')[0];
      if (path === '/health' || path === '/' || request.method === 'OPTIONS') return;
      const header = request.headers.authorization;
      const match = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header);
      if (match === null) throw unauthorized('Missing API key: send the header "Authorization: Bearer <key>".');
      if (!apiKeyMatches(match[1]!.trim(), this.apiKey)) throw unauthorized('Incorrect API key provided.');
    });

    this.app.setErrorHandler((err: unknown, _request, reply) => {
      const apiErr = toApiError(err);
      for (const [k, v] of Object.entries(apiErr.headers)) reply.header(k, v);
      this.metrics.reject(apiErr.code ?? String(apiErr.status));
      reply.code(apiErr.status).send(apiErr.toJSON());
    });
    this.app.setNotFoundHandler((request, reply) => {
      reply
        .code(404)
        .send(new ApiError(404, `No route ${request.method} ${request.url.split('?')[0]}; see GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings.`, 'not_found_error', null, 'not_found').toJSON());
    });
  }

  private ready(): Served {
    if (this.state === 'draining') throw unavailable('The server is shutting down and admits no new requests.', 'shutting_down');
    if (this.state === 'failed') throw unavailable(`The engine failed: ${this.failure ?? 'unknown error'}`, 'engine_failed');
    if (this.served === null) throw unavailable('The model is still loading; GET /health answers 200 once it is ready.', 'model_loading');
    return this.served;
  }

  private checkModel(served: Served, model: string | null | undefined): void {
    if (model !== undefined && model !== null && model !== served.modelId) throw modelNotFound(model, served.modelId);
  }

  private retryAfterS(): number {
    if (this.recentE2E.length === 0) return 1;
    const mean = this.recentE2E.reduce((a, b) => a + b, 0) / this.recentE2E.length;
    return Math.min(60, Math.max(1, Math.ceil(mean)));
  }

  /** Submits sequences to the engine, tracking capacity, metrics, timeout and cancellation. */
  /** A non-streamed generation: runs every request to its end (cancelled if the client goes), errors thrown. */
  private async generateAll(served: Served, requests: EngineRequest[], arrival: number, reply: FastifyReply): Promise<SeqResult[]> {
    const gen = this.generate(served, requests, arrival);
    cancelOnDisconnect(reply, gen);
    gen.start();
    const results = await gen.results;
    throwIfFailed(gen, results, this.options.timeoutS);
    return results;
  }

  /** Starts an opened stream's generation and ends the stream: an error event, or the usage chunk (when asked) and [DONE]. */
  private async streamToEnd(sse: SseWriter, gen: Generation, usageChunk: ((results: SeqResult[]) => unknown) | null): Promise<void> {
    gen.start();
    const results = await gen.results;
    if (!sse.finishWithError(gen, results, this.options.timeoutS)) {
      if (usageChunk !== null) sse.send(usageChunk(results));
      sse.done();
    }
  }

  private generate(served: Served, requests: EngineRequest[], arrival: number, hooks: GenerationHooks = {}): Generation {
    if (this.inflightSeqs + requests.length > this.options.maxBatch + this.options.maxQueue) throw overloaded(this.retryAfterS());
    this.inflightSeqs += requests.length;
    const results: (SeqResult | null)[] = requests.map(() => null);
    let remaining = requests.length;
    let timedOut = false;
    let timer: NodeJS.Timeout | null = null;
    let resolveAll!: (r: SeqResult[]) => void;
    const promise = new Promise<SeqResult[]>((r) => (resolveAll = r));
    const cancel = (): void => {
      requests.forEach((req, i) => {
        if (results[i] === null) served.host.cancel(req.id);
      });
    };
    let started = false;
    const generation: Generation = { start: () => submitAll(), results: promise, cancel, timedOut: () => timedOut };
    this.generations.add(generation);
    if (this.options.timeoutS !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        cancel();
      }, this.options.timeoutS * 1000);
    }
    const submitAll = (): void => {
      if (started) return;
      started = true;
      requests.forEach((req, i) => submitOne(req, i));
    };
    const submitOne = (req: EngineRequest, i: number): void => {
      const partial: SeqResult = { text: '', tokenCount: 0, logprobs: [], finishReason: 'stop', usage: { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 } };
      let firstTokenAt: number | null = null;
      let lastTokenAt = 0;
      served.host.submit(req, (event) => {
        const now = performance.now();
        if (event.type === 'token') {
          if (results[i] !== null) return;
          if (firstTokenAt === null) {
            firstTokenAt = now;
            this.metrics.firstToken((now - arrival) / 1000);
          } else if (event.tokenIds.length > 0) {
            this.metrics.interToken((now - lastTokenAt) / 1000, event.tokenIds.length);
          }
          lastTokenAt = now;
          partial.text += event.text;
          partial.tokenCount += event.tokenIds.length;
          if (event.logprobs !== undefined) partial.logprobs.push(...event.logprobs);
          hooks.onToken?.(i, event);
          return;
        }
        if (results[i] !== null) return;
        partial.text += event.text;
        partial.finishReason = event.finishReason;
        partial.usage = event.usage;
        if (event.error !== undefined) partial.error = event.error;
        results[i] = partial;
        this.inflightSeqs--;
        const e2eS = (now - arrival) / 1000;
        const outcome: RequestOutcome = timedOut ? 'timeout' : event.finishReason;
        this.metrics.finished({
          outcome,
          e2eS,
          queueS: event.timings.queueMs / 1000,
          ttftS: firstTokenAt === null ? null : (firstTokenAt - arrival) / 1000,
          promptTokens: event.usage.promptTokens,
          completionTokens: event.usage.completionTokens,
        });
        if (event.finishReason === 'stop' || event.finishReason === 'length') {
          this.recentE2E.push(e2eS);
          if (this.recentE2E.length > 32) this.recentE2E.shift();
        }
        hooks.onDone?.(i, event);
        if (--remaining === 0) {
          if (timer !== null) clearTimeout(timer);
          this.generations.delete(generation);
          resolveAll(results as SeqResult[]);
        }
        if (this.inflightSeqs === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    };
    return generation;
  }

  // ---- routes --------------------------------------------------------------------------------

  private installRoutes(): void {
    const app = this.app;
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PLAYGROUND_HTML));

    app.get('/health', async (_req, reply) => {
      if (this.state === 'ready') return { status: 'ok' };
      reply.code(503);
      return this.state === 'failed' ? { status: 'failed', error: this.failure } : { status: this.state };
    });

    app.get('/metrics', async (_req, reply) => {
      if (this.served !== null && this.state !== 'failed') {
        try {
          this.metrics.updateFromEngine(await this.served.host.stats());
        } catch {
          // Engine gone: the HTTP-side metrics are still worth returning.
        }
      }
      reply.type(this.metrics.contentType);
      return this.metrics.text();
    });

    app.get('/v1/models', async () => {
      const served = this.ready();
      return { object: 'list', data: [modelCard(served)] };
    });
    app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
      const served = this.ready();
      if (request.params.id !== served.modelId) throw modelNotFound(request.params.id, served.modelId);
      return modelCard(served);
    });

    app.post('/v1/completions', (request, reply) => this.completions(request, reply));
    app.post('/v1/chat/completions', (request, reply) => this.chat(request, reply));
    app.post('/v1/embeddings', (request) => this.embeddings(request));

    app.post('/v1/chat/render', async (request) => {
      const body = parseRequest(chatRenderSchema, request.body);
      const served = this.ready();
      this.checkModel(served, body.model);
      const prompt = renderChat(served, body.messages, body.tools ?? undefined, body.add_generation_prompt ?? true);
      const tokens = encodeRendered(served, prompt);
      return { prompt, token_count: tokens.length, tokens, max_model_len: served.info.contextLength };
    });

    app.post('/tokenize', async (request) => {
      const body = parseRequest(tokenizeRequestSchema, request.body);
      const served = this.ready();
      this.checkModel(served, body.model);
      let tokens: number[];
      if ('prompt' in body) tokens = encodeText(served, body.prompt, body.add_special_tokens ?? true, 'prompt');
      else tokens = encodeRendered(served, renderChat(served, body.messages, undefined, body.add_generation_prompt ?? true));
      return { count: tokens.length, max_model_len: served.info.contextLength, tokens };
    });

    app.post('/detokenize', async (request) => {
      const body = parseRequest(detokenizeRequestSchema, request.body);
      const served = this.ready();
      this.checkModel(served, body.model);
      checkTokenIds(served, body.tokens, 'tokens');
      return { prompt: served.tokenizer.decode(body.tokens) };
    });
  }

  private async embeddings(request: FastifyRequest): Promise<unknown> {
    const body = parseRequest(embeddingRequestSchema, request.body);
    const served = this.ready();
    this.checkModel(served, body.model);
    if (body.dimensions !== undefined && body.dimensions !== null) {
      throw badRequest('dimensions: not supported (the embedding size is the model\'s hidden size); omit it', 'dimensions', 'unsupported_parameter');
    }
    const batch = promptsToIds(served, body.input, 'input');
    batch.forEach((ids, i) => {
      if (ids.length > served.info.contextLength) {
        throw badRequest(
          `input${batch.length > 1 ? `[${i}]` : ''} has ${ids.length} tokens, over the model's context of ${served.info.contextLength}; shorten it`,
          'input',
          'context_length_exceeded',
        );
      }
    });
    if (this.state !== 'ready') throw unavailable('The server is shutting down.', 'shutting_down');
    let vectors: Float32Array[];
    try {
      vectors = await served.host.embed(batch);
    } catch (e) {
      throw serverError(`embedding failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const base64 = body.encoding_format === 'base64';
    const promptTokens = batch.reduce((a, b) => a + b.length, 0);
    return {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
      })),
      model: served.modelId,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  }

  private async completions(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const arrival = performance.now();
    const body = parseRequest(completionRequestSchema, request.body);
    const served = this.ready();
    this.checkModel(served, body.model);
    if (body.suffix !== undefined && body.suffix !== null && body.suffix !== '') throw badRequest('suffix: not supported (no fill-in-the-middle); omit it', 'suffix', 'unsupported_parameter');
    const n = body.n ?? 1;
    if (body.best_of !== undefined && body.best_of !== null && body.best_of !== n) throw badRequest('best_of: only best_of = n is supported', 'best_of', 'unsupported_parameter');
    if (body.echo === true && body.logprobs !== undefined && body.logprobs !== null) {
      throw badRequest('echo together with logprobs is not supported', 'echo', 'unsupported_parameter');
    }
    const prompts = promptsToIds(served, body.prompt, 'prompt');
    const ctx = served.info.contextLength;
    const requests: EngineRequest[] = [];
    const rid = `cmpl-${randomUUID().replace(/-/g, '')}`;
    prompts.forEach((ids, p) => {
      const maxTokens = body.max_tokens ?? Math.min(16, ctx - ids.length);
      checkContext(ids.length, maxTokens, ctx, 'prompt', body.max_tokens !== undefined && body.max_tokens !== null);
      for (let i = 0; i < n; i++) {
        requests.push(this.engineRequest(`${rid}-${p * n + i}`, ids, samplingOf(served, body, maxTokens, i, body.logprobs ?? undefined), undefined));
      }
    });
    const created = Math.floor(Date.now() / 1000);
    const echoTexts = body.echo === true ? prompts.map((ids) => served.tokenizer.decode(ids)) : null;
    const promptTokens = prompts.reduce((a, b) => a + b.length, 0);
    const base = { id: rid, object: 'text_completion', created, model: served.modelId };

    if (body.stream === true) {
      const includeUsage = body.stream_options?.include_usage === true;
      const sse = new SseWriter(reply);
      const offsets = requests.map(() => 0);
      const gen = this.generate(served, requests, arrival, {
        onToken: (i, ev) => {
          if (ev.text === '' && ev.logprobs === undefined) return;
          const lp = ev.logprobs === undefined ? null : completionLogprobs(ev.logprobs, offsets[i]!);
          offsets[i]! += ev.text.length;
          sse.send({ ...base, choices: [{ index: i, text: ev.text, logprobs: lp, finish_reason: null }], ...(includeUsage ? { usage: null } : {}) });
        },
        onDone: (i, ev) => {
          if (gen.timedOut() || ev.finishReason === 'timeout' || ev.finishReason === 'error') return;
          sse.send({ ...base, choices: [{ index: i, text: ev.text, logprobs: null, finish_reason: finishReasonOf(ev.finishReason) }], ...(includeUsage ? { usage: null } : {}) });
        },
      });
      sse.open(gen);
      if (echoTexts !== null) requests.forEach((_r, i) => sse.send({ ...base, choices: [{ index: i, text: echoTexts[Math.floor(i / n)], logprobs: null, finish_reason: null }] }));
      await this.streamToEnd(sse, gen, includeUsage ? (results) => ({ ...base, choices: [], usage: usageOf(results, promptTokens, n) }) : null);
      return reply;
    }

    const results = await this.generateAll(served, requests, arrival, reply);
    return {
      ...base,
      choices: results.map((r, i) => ({
        index: i,
        text: (echoTexts === null ? '' : echoTexts[Math.floor(i / n)]) + r.text,
        logprobs: body.logprobs === undefined || body.logprobs === null ? null : completionLogprobs(r.logprobs, 0),
        finish_reason: finishReasonOf(r.finishReason),
      })),
      usage: usageOf(results, promptTokens, n),
    };
  }

  private async chat(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const arrival = performance.now();
    const body: ChatRequest = parseRequest(chatRequestSchema, request.body);
    const served = this.ready();
    this.checkModel(served, body.model);
    const template = templateOf(served);
    const toolChoice = body.tool_choice ?? (body.tools !== undefined && body.tools !== null && body.tools.length > 0 ? 'auto' : 'none');
    const tools = body.tools ?? [];
    if (toolChoice !== 'none' && tools.length === 0) throw badRequest('tool_choice: needs tools; pass "tools" or drop tool_choice', 'tool_choice');
    const namedTool = typeof toolChoice === 'object' ? toolChoice.function.name : undefined;
    if (namedTool !== undefined && !tools.some((t) => t.function.name === namedTool)) {
      throw badRequest(`tool_choice: function '${namedTool}' is not among the tools`, 'tool_choice.function.name');
    }
    const useTools = toolChoice !== 'none';
    const prompt = renderChat(served, body.messages, useTools ? tools : undefined, true);
    const ids = encodeRendered(served, prompt);
    const ctx = served.info.contextLength;
    const explicitMax = body.max_completion_tokens ?? body.max_tokens ?? null;
    const maxTokens = explicitMax ?? ctx - ids.length;
    checkContext(ids.length, maxTokens, ctx, 'messages', explicitMax !== null);

    let constraint: ConstraintSpec | undefined;
    if (toolChoice === 'required' || namedTool !== undefined) {
      constraint = {
        type: 'tool_calls',
        tools: tools.map((t) => ({ name: t.function.name, parameters: t.function.parameters ?? { type: 'object' } })),
        ...(namedTool !== undefined ? { name: namedTool } : {}),
        format: template.toolCallFormat,
      };
    } else if (body.response_format?.type === 'json_object') {
      constraint = { type: 'json_object' };
    } else if (body.response_format?.type === 'json_schema') {
      const schema = body.response_format.json_schema.schema;
      constraint = schema === undefined || schema === null ? { type: 'json_object' } : { type: 'json_schema', schema };
    }
    const n = body.n ?? 1;
    const topLogprobs = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
    if (body.top_logprobs !== undefined && body.top_logprobs !== null && body.logprobs !== true) {
      throw badRequest('top_logprobs: needs "logprobs": true', 'top_logprobs');
    }
    const rid = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const requests: EngineRequest[] = [];
    for (let i = 0; i < n; i++) {
      const sampling = samplingOf(served, body, maxTokens, i, topLogprobs);
      // The template's end-of-turn text (e.g. ChatML's <|im_end|>) ends the reply and is never shown.
      const turnEnd = template.stop.filter((s) => !(sampling.stop ?? []).includes(s));
      if (turnEnd.length > 0) sampling.stop = [...(sampling.stop ?? []), ...turnEnd];
      requests.push(this.engineRequest(`${rid}-${i}`, ids, sampling, constraint));
    }
    const created = Math.floor(Date.now() / 1000);
    const base = { id: rid, object: 'chat.completion.chunk', created, model: served.modelId };
    const format = template.toolCallFormat;

    if (body.stream === true) {
      const includeUsage = body.stream_options?.include_usage === true;
      const usageNull = includeUsage ? { usage: null } : {};
      const sse = new SseWriter(reply);
      const parsers = requests.map(() => (useTools ? new ToolCallStreamParser(format) : null));
      const sawToolCall = requests.map(() => false);
      const emit = (i: number, piece: { content?: string; toolCallDeltas?: unknown[] }, logprobs: TokenLogprob[] | undefined): void => {
        const delta: Record<string, unknown> = {};
        if (piece.content !== undefined && piece.content !== '') delta.content = piece.content;
        if (piece.toolCallDeltas !== undefined && piece.toolCallDeltas.length > 0) {
          delta.tool_calls = piece.toolCallDeltas;
          sawToolCall[i] = true;
        }
        if (Object.keys(delta).length === 0 && logprobs === undefined) return;
        sse.send({ ...base, choices: [{ index: i, delta, logprobs: logprobs === undefined ? null : chatLogprobs(logprobs), finish_reason: null }], ...usageNull });
      };
      const pushText = (i: number, text: string, logprobs: TokenLogprob[] | undefined): void => {
        const parser = parsers[i];
        emit(i, parser === null || parser === undefined ? { content: text } : parser.push(text), logprobs);
      };
      const gen = this.generate(served, requests, arrival, {
        onToken: (i, ev) => pushText(i, ev.text, ev.logprobs),
        onDone: (i, ev) => {
          if (gen.timedOut() || ev.finishReason === 'timeout' || ev.finishReason === 'error') return;
          if (ev.text !== '') pushText(i, ev.text, undefined);
          const parser = parsers[i];
          if (parser !== null && parser !== undefined) emit(i, parser.finish(), undefined);
          const finish = sawToolCall[i] ? 'tool_calls' : finishReasonOf(ev.finishReason);
          sse.send({ ...base, choices: [{ index: i, delta: {}, logprobs: null, finish_reason: finish }], ...usageNull });
        },
      });
      sse.open(gen);
      requests.forEach((_r, i) => sse.send({ ...base, choices: [{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], ...usageNull }));
      await this.streamToEnd(sse, gen, includeUsage ? (results) => ({ ...base, choices: [], usage: usageOf(results, ids.length, n) }) : null);
      return reply;
    }

    const results = await this.generateAll(served, requests, arrival, reply);
    return {
      ...base,
      object: 'chat.completion',
      choices: results.map((r, i) => {
        let content: string | null = r.text;
        let toolCalls: unknown[] | undefined;
        if (useTools) {
          const parsed = parseToolCalls(r.text, format);
          if (parsed.toolCalls.length > 0) {
            content = parsed.content;
            toolCalls = parsed.toolCalls;
          }
        }
        return {
          index: i,
          message: { role: 'assistant', content, refusal: null, ...(toolCalls !== undefined ? { tool_calls: toolCalls } : {}) },
          logprobs: topLogprobs === undefined ? null : chatLogprobs(r.logprobs),
          finish_reason: toolCalls !== undefined ? 'tool_calls' : finishReasonOf(r.finishReason),
        };
      }),
      usage: usageOf(results, ids.length, n),
    };
  }

  private engineRequest(id: string, promptIds: number[], sampling: SamplingParams, constraint: ConstraintSpec | undefined): EngineRequest {
    return {
      id,
      promptIds,
      sampling,
      ...(constraint !== undefined ? { constraint } : {}),
      ...(this.options.timeoutS !== undefined ? { timeoutMs: this.options.timeoutS * 1000 } : {}),
    };
  }
}

// ---- helpers ---------------------------------------------------------------------------------

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  const message = e.message ?? String(err);
  if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return badRequest(`The request body is not valid JSON: ${message}`, null, 'invalid_json');
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, `The request body is too large: ${message}`, 'invalid_request_error', null, 'body_too_large');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError(415, `Send the body as application/json: ${message}`, 'invalid_request_error', null, 'unsupported_media_type');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new ApiError(e.statusCode, message, 'invalid_request_error', null, e.code ?? null);
  return serverError(message);
}

function modelCard(served: Served): Record<string, unknown> {
  return { id: served.modelId, object: 'model', created: 0, owned_by: 'weft', root: served.modelId, max_model_len: served.info.contextLength };
}

function bosTextOf(info: ServedModelInfo, tokenizer: Tokenizer): string | null {
  const cfg = info.tokenizerConfig?.bos_token;
  if (typeof cfg === 'string') return cfg;
  if (cfg !== null && typeof cfg === 'object' && typeof (cfg as { content?: unknown }).content === 'string') return (cfg as { content: string }).content;
  if (info.bosTokenId !== null && tokenizer instanceof HFTokenizer) return tokenizer.idToToken(info.bosTokenId) ?? null;
  return null;
}

function templateOf(served: Served): ChatTemplate {
  if (served.template instanceof Error) {
    throw badRequest(`This model's chat template cannot be used (${served.template.message}); use /v1/completions instead`, 'messages', 'chat_template_error');
  }
  return served.template;
}

function messageText(content: string | { type: 'text'; text: string }[] | null | undefined): string | null {
  if (content === undefined || content === null) return null;
  return typeof content === 'string' ? content : content.map((p) => p.text).join('');
}

function toChatMessages(messages: readonly ChatRequestMessage[]): ChatMessage[] {
  return messages.map((m): ChatMessage => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: messageText(m.content), ...(m.name ? { name: m.name } : {}) };
      case 'user':
        return { role: 'user', content: messageText(m.content), ...(m.name ? { name: m.name } : {}) };
      case 'assistant':
        return {
          role: 'assistant',
          content: messageText(m.content),
          ...(m.name ? { name: m.name } : {}),
          ...(m.tool_calls !== undefined && m.tool_calls !== null && m.tool_calls.length > 0 ? { tool_calls: m.tool_calls } : {}),
        };
      case 'tool':
        return { role: 'tool', content: messageText(m.content), tool_call_id: m.tool_call_id };
    }
  });
}

function toRenderTools(tools: readonly ChatTool[]): RenderTool[] {
  return tools.map(
    (t): RenderTool => ({
      type: 'function',
      function: {
        name: t.function.name,
        ...(t.function.description !== undefined && t.function.description !== null ? { description: t.function.description } : {}),
        parameters: t.function.parameters ?? { type: 'object', properties: {} },
      },
    }),
  );
}

function renderChat(served: Served, messages: readonly ChatRequestMessage[], tools: readonly ChatTool[] | undefined, addGenerationPrompt: boolean): string {
  const template = templateOf(served);
  try {
    return template.render(toChatMessages(messages), {
      ...(tools !== undefined && tools.length > 0 ? { tools: toRenderTools(tools) } : {}),
      addGenerationPrompt,
    });
  } catch (e) {
    throw badRequest(`messages: the chat template refused them: ${e instanceof Error ? e.message : String(e)}`, 'messages', 'chat_template_error');
  }
}

function encodeText(served: Served, text: string, addSpecialTokens: boolean, param: string): number[] {
  try {
    const tok = served.tokenizer;
    return tok instanceof HFTokenizer ? tok.encode(text, { addSpecialTokens }) : tok.encode(text);
  } catch (e) {
    throw badRequest(`${param}: cannot be tokenized: ${e instanceof Error ? e.message : String(e)}`, param, 'tokenization_error');
  }
}

/** A rendered chat prompt carries its own BOS text when the template writes it; don't add a second. */
function encodeRendered(served: Served, prompt: string): number[] {
  const hasBos = served.bosText !== null && served.bosText !== '' && prompt.startsWith(served.bosText);
  return encodeText(served, prompt, !hasBos, 'messages');
}

function checkTokenIds(served: Served, ids: readonly number[], param: string): void {
  const bad = ids.find((id) => id >= served.info.vocabSize);
  if (bad !== undefined) throw badRequest(`${param}: token id ${bad} is outside the vocabulary (size ${served.info.vocabSize})`, param, 'invalid_token_id');
}

function promptsToIds(served: Served, prompt: string | string[] | number[] | number[][], param: string): number[][] {
  let out: number[][];
  if (typeof prompt === 'string') out = [encodeText(served, prompt, true, param)];
  else if (prompt.length > 0 && typeof prompt[0] === 'number') out = [prompt as number[]];
  else if (prompt.length > 0 && typeof prompt[0] === 'string') out = (prompt as string[]).map((p, i) => encodeText(served, p, true, `${param}[${i}]`));
  else out = prompt as number[][];
  out.forEach((ids, i) => {
    const where = out.length > 1 ? `${param}[${i}]` : param;
    if (ids.length === 0) throw badRequest(`${where}: encodes to no tokens; give some text`, where, 'empty_prompt');
    checkTokenIds(served, ids, where);
  });
  return out;
}

function checkContext(promptLen: number, maxTokens: number, ctx: number, param: string, explicit: boolean): void {
  if (promptLen >= ctx || promptLen + maxTokens > ctx) {
    const what = explicit ? ` plus max_tokens = ${maxTokens}` : '';
    throw badRequest(
      `This model's maximum context length is ${ctx} tokens; the prompt has ${promptLen} tokens${what}, ` +
        `which is ${promptLen + (explicit ? maxTokens : 1)} > ${ctx}. Shorten the ${param}${explicit ? ' or lower max_tokens' : ''}.`,
      param,
      'context_length_exceeded',
    );
  }
}

function samplingOf(
  served: Served,
  body: CompletionRequest | ChatRequest,
  maxTokens: number,
  index: number,
  logprobs: number | undefined,
): SamplingParams {
  const stop = body.stop === undefined || body.stop === null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  let logitBias: Record<number, number> | undefined;
  if (body.logit_bias !== undefined && body.logit_bias !== null) {
    logitBias = {};
    for (const [k, v] of Object.entries(body.logit_bias)) {
      const id = Number(k);
      if (id >= served.info.vocabSize) throw badRequest(`logit_bias: token id ${k} is outside the vocabulary (size ${served.info.vocabSize})`, 'logit_bias', 'invalid_token_id');
      logitBias[id] = v;
    }
  }
  if (body.stop_token_ids !== undefined && body.stop_token_ids !== null) checkTokenIds(served, body.stop_token_ids, 'stop_token_ids');
  const p: SamplingParams = { maxTokens, temperature: body.temperature ?? 1 };
  if (body.top_p !== undefined && body.top_p !== null) p.topP = body.top_p;
  if (body.top_k !== undefined && body.top_k !== null && body.top_k > 0) p.topK = body.top_k;
  if (body.min_p !== undefined && body.min_p !== null) p.minP = body.min_p;
  if (body.repetition_penalty !== undefined && body.repetition_penalty !== null) p.repetitionPenalty = body.repetition_penalty;
  if (body.presence_penalty !== undefined && body.presence_penalty !== null) p.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty !== undefined && body.frequency_penalty !== null) p.frequencyPenalty = body.frequency_penalty;
  if (logitBias !== undefined) p.logitBias = logitBias;
  if (body.seed !== undefined && body.seed !== null) p.seed = body.seed + index;
  if (stop !== undefined && stop.length > 0) p.stop = stop;
  if (body.stop_token_ids !== undefined && body.stop_token_ids !== null) p.stopTokenIds = body.stop_token_ids;
  if (body.ignore_eos === true) p.ignoreEos = true;
  if (logprobs !== undefined) p.logprobs = logprobs;
  return p;
}

function finishReasonOf(r: FinishReason): string {
  return r === 'length' ? 'length' : r === 'abort' ? 'abort' : 'stop';
}

/** OpenAI counts each prompt once, however many choices (n) it has; results are grouped n per prompt. */
function usageOf(results: readonly SeqResult[], promptTokens: number, n: number): Record<string, unknown> {
  const completion = results.reduce((a, r) => a + r.usage.completionTokens, 0);
  let cached = 0;
  for (let i = 0; i < results.length; i += n) cached += results[i]!.usage.cachedPromptTokens;
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion, prompt_tokens_details: { cached_tokens: cached } };
}

function completionLogprobs(lps: readonly TokenLogprob[], startOffset: number): Record<string, unknown> {
  const textOffset: number[] = [];
  let off = startOffset;
  for (const lp of lps) {
    textOffset.push(off);
    off += lp.token.length;
  }
  return {
    tokens: lps.map((l) => l.token),
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset: textOffset,
  };
}

function chatLogprobs(lps: readonly TokenLogprob[]): Record<string, unknown> {
  return {
    content: lps.map((l) => ({
      token: l.token,
      logprob: l.logprob,
      bytes: l.bytes,
      top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
    })),
    refusal: null,
  };
}

function failureOf(gen: Generation, results: readonly SeqResult[], timeoutS: number | undefined): ApiError | null {
  if (gen.timedOut() || results.some((r) => r.finishReason === 'timeout')) return requestTimeout(timeoutS ?? 0);
  const failed = results.find((r) => r.finishReason === 'error');
  if (failed !== undefined) return serverError(`generation failed: ${failed.error ?? 'engine error'}`);
  return null;
}

function throwIfFailed(gen: Generation, results: readonly SeqResult[], timeoutS: number | undefined): void {
  const err = failureOf(gen, results, timeoutS);
  if (err !== null) throw err;
}

function cancelOnDisconnect(reply: FastifyReply, gen: Generation): void {
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) gen.cancel();
  });
}

/** Server-sent events in OpenAI's framing: `data: {json}\n\n` … `data: [DONE]\n\n`. */
class SseWriter {
  private ended = false;
  constructor(private readonly reply: FastifyReply) {}

  /** Sends the headers and cancels the generation if the client goes away before the end. */
  open(gen: Generation): void {
    const res = this.reply.raw;
    const headers: Record<string, string | number | string[]> = {};
    for (const [k, v] of Object.entries(this.reply.getHeaders())) if (v !== undefined) headers[k] = v as string | number | string[];
    this.reply.hijack();
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.on('close', () => {
      if (!this.ended) {
        this.ended = true;
        gen.cancel();
      }
    });
  }

  send(data: unknown): void {
    if (this.ended || this.reply.raw.destroyed) return;
    this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Streams an OpenAI error object (timeout, engine error) and ends; false when there was none. */
  finishWithError(gen: Generation, results: readonly SeqResult[], timeoutS: number | undefined): boolean {
    const err = failureOf(gen, results, timeoutS);
    if (err === null) return false;
    this.send(err.toJSON());
    this.done();
    return true;
  }

  done(): void {
    if (this.ended) return;
    if (!this.reply.raw.destroyed) this.reply.raw.end('data: [DONE]\n\n');
    this.ended = true;
  }
}

/** Creates a server, failing early (before any model loads) when its options are unsafe. */
export function createServer(options: ServerOptions = {}): WeftServer {
  return new WeftServer(options);
}
