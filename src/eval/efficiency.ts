/**
 * Efficiency of an evaluation run: prompt-scoring and generation throughput (tokens/s), time to first
 * token, and peak resident memory. The back ends report what they did; the meter keeps the sums.
 */

export interface EfficiencySummary {
  /** Tokens scored (loglikelihood and rolling requests) per second of scoring time. */
  scoring_tokens_per_s: number | null;
  scored_tokens: number;
  /** New tokens per second of generation time (prompt processing included, as a user sees it). */
  generation_tokens_per_s: number | null;
  generated_tokens: number;
  /** Time to first token of each generation: mean, median and 90th percentile (ms). */
  ttft_ms_mean: number | null;
  ttft_ms_p50: number | null;
  ttft_ms_p90: number | null;
  /** Highest resident set size seen while the meter ran (MiB). */
  peak_rss_mb: number;
  wall_s: number;
  requests: number;
}

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export class EfficiencyMeter {
  private scoredTokens = 0;
  private scoringMs = 0;
  private generatedTokens = 0;
  private generationMs = 0;
  private readonly ttfts: number[] = [];
  private requests = 0;
  private peakRss = 0;
  private started = performance.now();
  private stopped: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** Starts sampling RSS every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs = 50): this {
    this.started = performance.now();
    this.sampleRss();
    this.timer = setInterval(() => this.sampleRss(), intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    this.sampleRss();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stopped = performance.now();
  }

  sampleRss(): void {
    this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
  }

  recordScoring(tokens: number, ms: number): void {
    this.scoredTokens += tokens;
    this.scoringMs += ms;
    this.requests++;
    this.sampleRss();
  }

  recordGeneration(r: { newTokens: number; totalMs: number; ttftMs: number | null }): void {
    this.generatedTokens += r.newTokens;
    this.generationMs += r.totalMs;
    if (r.ttftMs !== null) this.ttfts.push(r.ttftMs);
    this.requests++;
    this.sampleRss();
  }

  summary(): EfficiencySummary {
    const sorted = [...this.ttfts].sort((a, b) => a - b);
    const end = this.stopped ?? performance.now();
    return {
      scoring_tokens_per_s: this.scoringMs > 0 ? (this.scoredTokens / this.scoringMs) * 1000 : null,
      scored_tokens: this.scoredTokens,
      generation_tokens_per_s: this.generationMs > 0 ? (this.generatedTokens / this.generationMs) * 1000 : null,
      generated_tokens: this.generatedTokens,
      ttft_ms_mean: sorted.length > 0 ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null,
      ttft_ms_p50: quantile(sorted, 0.5),
      ttft_ms_p90: quantile(sorted, 0.9),
      peak_rss_mb: this.peakRss / 2 ** 20,
      wall_s: (end - this.started) / 1000,
      requests: this.requests,
    };
  }
}
