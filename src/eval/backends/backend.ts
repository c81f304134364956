/**
 * What the harness asks of a model, after lm-evaluation-harness's LM interface: loglikelihood of a
 * continuation given a context, rolling loglikelihood of a whole text, and generation until a stop
 * string. Back ends: a local Weft run directory (local.ts) and any OpenAI-compatible endpoint (openai.ts).
 */
import type { EfficiencyMeter } from '../efficiency.js';

export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
}

export interface LoglikelihoodResult {
  /** Σ log p(continuation token | prefix), natural log. */
  logprob: number;
  /** Whether greedy decoding would have produced exactly the continuation. */
  isGreedy: boolean;
}

export interface RollingResult {
  /** Σ log p over every token of the text. */
  logprob: number;
  /** Number of tokens scored (for token-level perplexity). */
  tokens: number;
}

export interface GenerationRequest {
  context: string;
  /** Generation stops at the first of these strings, which is cut off (lm-eval's `until`). */
  until: readonly string[];
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP?: number;
  /** Completions to sample for this context. */
  samples: number;
  /** Seed for sampling (reproducible runs). */
  seed: number;
}

export interface BackendCallbacks {
  /** Called after each request completes, with the number done so far. */
  onProgress?: (done: number) => void;
  meter?: EfficiencyMeter;
}

export interface EvalBackend {
  /** Model description for the results file (kind, path or endpoint, name, parameters…). */
  readonly info: Record<string, string | number | boolean | null>;
  loglikelihood(requests: readonly LoglikelihoodRequest[], cb?: BackendCallbacks): Promise<LoglikelihoodResult[]>;
  /** `contextLen`: tokens of context carried between windows (lm-eval's rolling windows use 1). */
  loglikelihoodRolling(texts: readonly string[], contextLen: number, cb?: BackendCallbacks): Promise<RollingResult[]>;
  /** For each request, `samples` completions (stop strings already removed). */
  generate(requests: readonly GenerationRequest[], cb?: BackendCallbacks): Promise<string[][]>;
  /** Non-fatal notes the results should carry (e.g. characters outside a tokenizer's vocabulary). */
  warnings(): string[];
}

/** Cuts `text` at the first occurrence of any stop string (lm-eval: text.split(term)[0] for each term). */
export function cutAtStop(text: string, until: readonly string[]): string {
  let s = text;
  for (const term of until) {
    const i = s.indexOf(term);
    if (i >= 0) s = s.slice(0, i);
  }
  return s;
}
