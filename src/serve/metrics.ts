/**
 * Prometheus metrics with vLLM's names under `weft:` (Prometheus allows ':' in metric names, and
 * prom-client accepts it), so Grafana dashboards made for vLLM work after a prefix change.
 * Latencies are measured where the client sees them (arrival at the HTTP layer → first token,
 * between tokens, → last token); queue time is the engine's own (submission → first scheduled).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats, FinishReason } from '../infer/api.js';

// vLLM's bucket boundaries (seconds).
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

export type RequestOutcome = FinishReason | 'tool_calls';

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly labels: { model_name: string };
  private readonly ttft: Histogram<'model_name'>;
  private readonly itl: Histogram<'model_name'>;
  private readonly tpot: Histogram<'model_name'>;
  private readonly e2e: Histogram<'model_name'>;
  private readonly queue: Histogram<'model_name'>;
  private readonly running: Gauge<'model_name'>;
  private readonly waiting: Gauge<'model_name'>;
  private readonly kvUsage: Gauge<'model_name'>;
  private readonly prefixQueries: Counter<'model_name'>;
  private readonly prefixHits: Counter<'model_name'>;
  private readonly preemptions: Counter<'model_name'>;
  private readonly promptTokens: Counter<'model_name'>;
  private readonly generationTokens: Counter<'model_name'>;
  private readonly success: Counter<'model_name' | 'finished_reason'>;
  private readonly rejected: Counter<'model_name' | 'reason'>;
  /** Last engine counters seen, to add their growth to ours. */
  private last = { prefixQueries: 0, prefixHits: 0, preemptions: 0 };

  constructor(modelName: string) {
    this.labels = { model_name: modelName };
    const registers = [this.registry];
    const labelNames = ['model_name'] as const;
    const h = (name: string, help: string, buckets: number[]): Histogram<'model_name'> =>
      new Histogram({ name, help, buckets, labelNames, registers });
    const g = (name: string, help: string): Gauge<'model_name'> => new Gauge({ name, help, labelNames, registers });
    const c = (name: string, help: string): Counter<'model_name'> => new Counter({ name, help, labelNames, registers });
    this.ttft = h('weft:time_to_first_token_seconds', 'Time to first token (request arrival to first generated token).', TTFT_BUCKETS);
    this.itl = h('weft:inter_token_latency_seconds', 'Time between consecutive generated tokens.', ITL_BUCKETS);
    this.tpot = h('weft:time_per_output_token_seconds', 'Mean time per output token after the first, per request.', ITL_BUCKETS);
    this.e2e = h('weft:e2e_request_latency_seconds', 'End-to-end request latency (arrival to last token).', E2E_BUCKETS);
    this.queue = h('weft:request_queue_time_seconds', 'Time a request waited in the engine queue before it was first scheduled.', TTFT_BUCKETS);
    this.running = g('weft:num_requests_running', 'Sequences in the engine\'s running batch.');
    this.waiting = g('weft:num_requests_waiting', 'Sequences waiting in the engine queue.');
    this.kvUsage = g('weft:kv_cache_usage_perc', 'Fraction of KV-cache blocks in use (1 = full).');
    this.prefixQueries = c('weft:prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.');
    this.prefixHits = c('weft:prefix_cache_hits_total', 'Prompt tokens found in the prefix cache.');
    this.preemptions = c('weft:num_preemptions_total', 'Sequences preempted (KV blocks ran out; recomputed later).');
    this.promptTokens = c('weft:prompt_tokens_total', 'Prompt tokens of finished requests.');
    this.generationTokens = c('weft:generation_tokens_total', 'Generated tokens of finished requests.');
    this.success = new Counter({
      name: 'weft:request_success_total',
      help: 'Finished requests by finish reason.',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.rejected = new Counter({
      name: 'weft:request_errors_total',
      help: 'Requests answered with an error, by error code (rate_limit_exceeded, context_length_exceeded, invalid_value, timeout…).',
      labelNames: ['model_name', 'reason'],
      registers,
    });
    // Expose every series from the start (a scrape before the first request sees zeros, not gaps).
    for (const c of [this.prefixQueries, this.prefixHits, this.preemptions, this.promptTokens, this.generationTokens]) c.inc(this.labels, 0);
    for (const g of [this.running, this.waiting, this.kvUsage]) g.set(this.labels, 0);
  }

  firstToken(seconds: number): void {
    this.ttft.observe(this.labels, seconds);
  }
  interToken(seconds: number, tokens: number): void {
    // Several tokens in one event (speculative decoding): each gets the mean gap.
    for (let i = 0; i < tokens; i++) this.itl.observe(this.labels, seconds / tokens);
  }
  finished(o: { outcome: RequestOutcome; e2eS: number; queueS: number; ttftS: number | null; promptTokens: number; completionTokens: number }): void {
    this.e2e.observe(this.labels, o.e2eS);
    this.queue.observe(this.labels, o.queueS);
    if (o.ttftS !== null && o.completionTokens > 1) this.tpot.observe(this.labels, (o.e2eS - o.ttftS) / (o.completionTokens - 1));
    this.promptTokens.inc(this.labels, o.promptTokens);
    this.generationTokens.inc(this.labels, o.completionTokens);
    this.success.inc({ ...this.labels, finished_reason: o.outcome });
  }
  reject(reason: string): void {
    this.rejected.inc({ ...this.labels, reason });
  }

  /** Copies the engine's gauges and the growth of its counters. */
  updateFromEngine(s: EngineStats): void {
    this.running.set(this.labels, s.running);
    this.waiting.set(this.labels, s.waiting);
    this.kvUsage.set(this.labels, s.kvBlocksTotal > 0 ? s.kvBlocksUsed / s.kvBlocksTotal : 0);
    const grow = (counter: Counter<'model_name'>, key: keyof typeof this.last, now: number): void => {
      if (now > this.last[key]) counter.inc(this.labels, now - this.last[key]);
      this.last[key] = now;
    };
    grow(this.prefixQueries, 'prefixQueries', s.prefixCacheQueries);
    grow(this.prefixHits, 'prefixHits', s.prefixCacheHits);
    grow(this.preemptions, 'preemptions', s.preemptionsTotal);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
