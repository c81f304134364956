/**
 * Any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, TGI…) as an evaluation back end.
 * Loglikelihood goes through the completions API with `echo` and `logprobs` (the prompt's own token
 * logprobs come back); generation through chat or completions. Every call has a timeout and is retried
 * with exponential backoff on network errors, 429 and 5xx.
 */
import { type BackendCallbacks, cutAtStop, type EvalBackend, type GenerationRequest, type LoglikelihoodRequest, type LoglikelihoodResult, type RollingResult } from './backend.js';
import { mapLimit } from '../sandbox.js';

export interface OpenAIBackendOptions {
  /** e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (paths /completions, /chat/completions are appended). */
  baseUrl: string;
  apiKey?: string;
  /** The `model` field of each request. */
  model: string;
  /** Generation through /chat/completions (`chat`) or /completions (default). */
  generationApi?: 'completions' | 'chat';
  timeoutMs?: number;
  maxRetries?: number;
  /** First backoff delay; doubles each retry (plus up to 25% jitter). */
  retryBaseMs?: number;
  /** Requests in flight at once. */
  concurrency?: number;
}

/** An error from the endpoint that retrying will not fix (4xx other than 429, malformed answers). */
export class EndpointError extends Error {
  override name = 'EndpointError';
}

interface CompletionLogprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[] | null;
  text_offset?: number[];
}
interface CompletionChoice {
  text?: string;
  index?: number;
  logprobs?: CompletionLogprobs | null;
  message?: { content?: string | null };
}
interface CompletionResponse {
  choices?: CompletionChoice[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));


/** Code-point length (the API's text offsets count characters, not UTF-16 units). */
const cpLength = (s: string): number => [...s].length;

export class OpenAIBackend implements EvalBackend {
  readonly info: Record<string, string | number | boolean | null>;
  private readonly opts: Required<Omit<OpenAIBackendOptions, 'apiKey'>> & { apiKey?: string };
  private readonly notes = new Set<string>();

  constructor(options: OpenAIBackendOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new Error(`--base-url ${JSON.stringify(options.baseUrl)} is not a URL (e.g. http://127.0.0.1:8000/v1)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--base-url must be http(s), got ${url.protocol}`);
    this.opts = {
      generationApi: 'completions',
      timeoutMs: 60_000,
      maxRetries: 5,
      retryBaseMs: 500,
      concurrency: 4,
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
    };
    this.info = { kind: 'openai', base_url: this.opts.baseUrl, model: this.opts.model, generation_api: this.opts.generationApi };
  }

  warnings(): string[] {
    return [...this.notes];
  }

  /** POST with timeout and retries; returns the parsed JSON body. */
  async post(path: string, body: Record<string, unknown>): Promise<CompletionResponse> {
    const url = `${this.opts.baseUrl}${path}`;
    let lastError = '';
    for (let attempt = 0; attempt <= this.opts.maxRetries; attempt++) {
      if (attempt > 0) {
        const base = this.opts.retryBaseMs * 2 ** (attempt - 1);
        await sleep(base + Math.random() * base * 0.25);
      }
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.opts.apiKey !== undefined ? { authorization: `Bearer ${this.opts.apiKey}` } : {}) },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
      } catch (e) {
        const err = e as Error;
        lastError = err.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}`;
        continue;
      }
      const text = await res.text().catch(() => '');
      if (res.status === 429 || res.status >= 500) {
        lastError = `HTTP ${res.status}: ${text.slice(0, 200)}`;
        const retryAfter = Number(res.headers.get('retry-after'));
        if (Number.isFinite(retryAfter) && retryAfter > 0) await sleep(Math.min(retryAfter * 1000, 30_000));
        continue;
      }
      if (!res.ok) throw new EndpointError(`${url}: HTTP ${res.status}: ${text.slice(0, 500)}`);
      try {
        return JSON.parse(text) as CompletionResponse;
      } catch {
        throw new EndpointError(`${url}: the answer is not JSON: ${text.slice(0, 200)}`);
      }
    }
    throw new EndpointError(`${url}: failed after ${this.opts.maxRetries + 1} attempts: ${lastError}`);
  }

  /** The echoed prompt's token logprobs, restricted to tokens starting at or after `from` (characters). */
  private async echoLogprobs(prompt: string, from: number): Promise<{ logprob: number; isGreedy: boolean; tokens: number; promptTokens: number }> {
    const res = await this.post('/completions', { model: this.opts.model, prompt, max_tokens: 1, temperature: 0, echo: true, logprobs: 1 });
    const lp = res.choices?.[0]?.logprobs;
    if (lp?.token_logprobs == null || lp.text_offset == null) {
      throw new EndpointError(`${this.opts.baseUrl}/completions: no logprobs in the answer; the endpoint must support echo with logprobs for loglikelihood tasks`);
    }
    const end = cpLength(prompt);
    let logprob = 0;
    let isGreedy = true;
    let tokens = 0;
    lp.text_offset.forEach((offset, i) => {
      // Tokens past the prompt are the one generated token (max_tokens: 1), not part of the text.
      if (offset < from || offset >= end) return;
      const v = lp.token_logprobs![i];
      if (v === null || v === undefined) return; // the very first token has no logprob
      logprob += v;
      tokens++;
      const top = lp.top_logprobs?.[i];
      if (top != null && Math.max(...Object.values(top)) > v) isGreedy = false;
    });
    return { logprob, isGreedy, tokens, promptTokens: res.usage?.prompt_tokens ?? lp.text_offset.length };
  }

  async loglikelihood(requests: readonly LoglikelihoodRequest[], cb: BackendCallbacks = {}): Promise<LoglikelihoodResult[]> {
    return mapLimit(
      requests,
      this.opts.concurrency,
      async (r) => {
        const t0 = performance.now();
        // As lm-eval's _encode_pair: trailing whitespace of the context belongs to the continuation.
        const ctx = r.context.replace(/\s+$/, '');
        const cont = r.context.slice(ctx.length) + r.continuation;
        const out = await this.echoLogprobs(ctx + cont, cpLength(ctx));
        if (out.tokens === 0) throw new EndpointError(`${this.opts.baseUrl}: no token of the continuation ${JSON.stringify(r.continuation)} was scored`);
        cb.meter?.recordScoring(out.promptTokens, performance.now() - t0);
        return { logprob: out.logprob, isGreedy: out.isGreedy };
      },
      cb.onProgress,
    );
  }

  async loglikelihoodRolling(texts: readonly string[], _contextLen: number, cb: BackendCallbacks = {}): Promise<RollingResult[]> {
    this.notes.add('openai back end: rolling loglikelihood scores each text in one request; its first token has no logprob and is not counted');
    return mapLimit(
      texts,
      this.opts.concurrency,
      async (text) => {
        const t0 = performance.now();
        const out = await this.echoLogprobs(text, 0);
        cb.meter?.recordScoring(out.promptTokens, performance.now() - t0);
        return { logprob: out.logprob, tokens: out.tokens };
      },
      cb.onProgress,
    );
  }

  async generate(requests: readonly GenerationRequest[], cb: BackendCallbacks = {}): Promise<string[][]> {
    const chat = this.opts.generationApi === 'chat';
    return mapLimit(
      requests,
      this.opts.concurrency,
      async (r) => {
        const t0 = performance.now();
        // The API takes at most 4 stop strings; the rest are applied here.
        const common = {
          model: this.opts.model,
          max_tokens: r.maxTokens,
          temperature: r.temperature,
          ...(r.topP !== undefined && r.temperature > 0 ? { top_p: r.topP } : {}),
          ...(r.until.length > 0 ? { stop: r.until.slice(0, 4) } : {}),
          n: r.samples,
          seed: r.seed,
        };
        const res = chat
          ? await this.post('/chat/completions', { ...common, messages: [{ role: 'user', content: r.context }] })
          : await this.post('/completions', { ...common, prompt: r.context });
        const choices = [...(res.choices ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
        if (choices.length !== r.samples) {
          throw new EndpointError(`${this.opts.baseUrl}: asked for ${r.samples} completions (n), got ${choices.length}`);
        }
        const texts = choices.map((c) => cutAtStop((chat ? c.message?.content : c.text) ?? '', r.until));
        cb.meter?.recordGeneration({ newTokens: res.usage?.completion_tokens ?? 0, totalMs: performance.now() - t0, ttftMs: null });
        return texts;
      },
      cb.onProgress,
    );
  }
}
