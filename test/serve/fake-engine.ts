/**
 * A deterministic stand-in for the inference engine, for testing the HTTP layer on its own:
 * replies with scripted text one character token per step, honours maxTokens, cancel, timeouts
 * and a running-batch limit, reports stats like the real engine (KV blocks of 16 tokens), and
 * records what it was asked to do.
 */
import type { EngineEvent, EngineRequest, EngineStats, InferenceEngine, TokenLogprob } from '../../src/infer/api.js';
import { CharTokenizer } from '../../src/tokenizers/char.js';
import type { EngineBundle } from '../../src/serve/host.js';

export const FAKE_VOCAB = ['\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))];
export const fakeTokenizer = (): CharTokenizer => CharTokenizer.fromVocab(FAKE_VOCAB);

export interface FakeEngineOptions {
  /** The text a request answers with (default: "Hello from the fake engine!"). */
  reply?: (request: EngineRequest) => string;
  /** ms between steps (default 0: next macrotask). */
  stepMs?: number;
  /** Sequences run per step; the rest wait (default 4). */
  maxRunning?: number;
  kvBlocksTotal?: number;
  /** Synchronous busy work per step (ms), to mimic a forward pass blocking its thread. */
  busyMsPerStep?: number;
}

interface Seq {
  req: EngineRequest;
  onEvent: (e: EngineEvent) => void;
  reply: number[];
  emitted: number;
  submittedAt: number;
  scheduledAt: number | null;
  firstTokenAt: number | null;
  cancelled: boolean;
  cached: number;
}

const BLOCK = 16;

export class FakeEngine implements InferenceEngine {
  readonly submitted: EngineRequest[] = [];
  readonly cancelled: string[] = [];
  private readonly tokenizer = fakeTokenizer();
  private readonly waiting: Seq[] = [];
  private readonly running: Seq[] = [];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly counters = { prompt: 0, generated: 0, steps: 0 };
  private idle: (() => void)[] = [];
  /** Prompts seen before: their full 16-token blocks count as prefix-cache hits, like the real engine's. */
  private readonly seenPrompts = new Set<string>();

  constructor(private readonly options: FakeEngineOptions = {}) {}

  submit(req: EngineRequest, onEvent: (e: EngineEvent) => void): void {
    this.submitted.push(req);
    const text = this.options.reply?.(req) ?? 'Hello from the fake engine!';
    const seq: Seq = { req, onEvent, reply: this.tokenizer.encode(text), emitted: 0, submittedAt: performance.now(), scheduledAt: null, firstTokenAt: null, cancelled: false, cached: 0 };
    if (this.stopped) {
      setImmediate(() => this.finish(seq, 'abort'));
      return;
    }
    this.waiting.push(seq);
    this.schedule();
  }

  cancel(id: string): void {
    this.cancelled.push(id);
    for (const s of [...this.waiting, ...this.running]) if (s.req.id === id) s.cancelled = true;
    this.schedule();
  }

  stats(): EngineStats {
    const used = this.running.reduce((a, s) => a + Math.ceil((s.req.promptIds.length + s.emitted) / BLOCK), 0);
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      kvBlocksTotal: this.options.kvBlocksTotal ?? 1024,
      kvBlocksUsed: used,
      prefixCacheQueries: this.counters.prompt,
      prefixCacheHits: 0,
      promptTokensTotal: this.counters.prompt,
      generationTokensTotal: this.counters.generated,
      preemptionsTotal: 0,
      stepsTotal: this.counters.steps,
    };
  }

  async shutdown(options?: { cancelRunning?: boolean }): Promise<void> {
    this.stopped = true;
    if (options?.cancelRunning === true) for (const s of [...this.waiting, ...this.running]) s.cancelled = true;
    this.schedule();
    if (this.waiting.length + this.running.length === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  /** Mean-pooled "embedding": a normalised histogram of token ids mod 8. */
  embed(batch: readonly (readonly number[])[]): Float32Array[] {
    return batch.map((ids) => {
      const v = new Float32Array(8);
      for (const id of ids) v[id % 8]! += 1;
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    });
  }

  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.step();
    }, this.options.stepMs ?? 0);
  }

  private step(): void {
    this.counters.steps++;
    const now = performance.now();
    for (const s of [...this.waiting]) {
      if (s.cancelled) this.finish(s, 'abort');
      else if (s.req.timeoutMs !== undefined && now - s.submittedAt > s.req.timeoutMs) this.finish(s, 'timeout');
    }
    while (this.waiting.length > 0 && this.running.length < (this.options.maxRunning ?? 4)) {
      const s = this.waiting.shift()!;
      s.scheduledAt = now;
      const key = s.req.promptIds.join(',');
      if (this.seenPrompts.has(key)) s.cached = Math.floor(s.req.promptIds.length / BLOCK) * BLOCK;
      this.seenPrompts.add(key);
      this.counters.prompt += s.req.promptIds.length;
      this.running.push(s);
    }
    const busy = this.options.busyMsPerStep ?? 0;
    if (busy > 0) {
      const until = performance.now() + busy;
      while (performance.now() < until) {
        // Spin: a forward pass holds its thread.
      }
    }
    for (const s of [...this.running]) {
      if (s.cancelled) {
        this.finish(s, 'abort');
        continue;
      }
      if (s.req.timeoutMs !== undefined && now - s.submittedAt > s.req.timeoutMs) {
        this.finish(s, 'timeout');
        continue;
      }
      if (s.emitted >= s.reply.length) {
        this.finish(s, 'stop');
        continue;
      }
      if (s.emitted >= s.req.sampling.maxTokens) {
        this.finish(s, 'length');
        continue;
      }
      const id = s.reply[s.emitted++]!;
      this.counters.generated++;
      s.firstTokenAt ??= performance.now();
      const text = this.tokenizer.decode([id]);
      const k = s.req.sampling.logprobs;
      const logprobs: TokenLogprob[] | undefined =
        k === undefined
          ? undefined
          : [
              {
                tokenId: id,
                token: text,
                logprob: -0.25,
                bytes: [...Buffer.from(text)],
                top: Array.from({ length: k }, (_, j) => {
                  const alt = (id + j) % FAKE_VOCAB.length;
                  const t = FAKE_VOCAB[alt]!;
                  return { tokenId: alt, token: t, logprob: -0.25 - j, bytes: [...Buffer.from(t)] };
                }),
              },
            ];
      s.onEvent({ type: 'token', id: s.req.id, tokenIds: [id], text, ...(logprobs !== undefined ? { logprobs } : {}) });
    }
    if (this.waiting.length + this.running.length > 0) this.schedule();
    else for (const r of this.idle.splice(0)) r();
  }

  private finish(s: Seq, reason: 'stop' | 'length' | 'abort' | 'timeout'): void {
    const i = this.running.indexOf(s);
    if (i >= 0) this.running.splice(i, 1);
    const j = this.waiting.indexOf(s);
    if (j >= 0) this.waiting.splice(j, 1);
    const now = performance.now();
    s.onEvent({
      type: 'done',
      id: s.req.id,
      finishReason: reason,
      text: '',
      usage: { promptTokens: s.req.promptIds.length, completionTokens: s.emitted, cachedPromptTokens: s.cached },
      timings: {
        queueMs: (s.scheduledAt ?? now) - s.submittedAt,
        firstTokenMs: (s.firstTokenAt ?? now) - s.submittedAt,
        totalMs: now - s.submittedAt,
      },
    });
    if (this.waiting.length + this.running.length === 0) for (const r of this.idle.splice(0)) r();
  }
}

export interface FakeBundleOptions extends FakeEngineOptions {
  contextLength?: number;
  tokenizerConfig?: Record<string, unknown> | null;
  modelId?: string;
}

export function fakeBundle(options: FakeBundleOptions = {}): EngineBundle & { engine: FakeEngine } {
  const engine = new FakeEngine(options);
  const tokenizer = fakeTokenizer();
  return {
    engine,
    embed: (batch) => engine.embed(batch),
    info: {
      modelId: options.modelId ?? 'fake-model',
      family: 'fake',
      contextLength: options.contextLength ?? 256,
      vocabSize: tokenizer.vocabSize,
      eosTokenIds: [0],
      bosTokenId: null,
      tokenizerConfig: options.tokenizerConfig ?? null,
      tokenizerJSON: tokenizer.toJSON(),
    },
  };
}
