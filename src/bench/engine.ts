/**
 * `weft bench engine`: the inference engine in process, on a random-weight LLaMA of about 28M
 * parameters (8 layers, dim 512, GQA 8/4 heads, SwiGLU 1408, vocab 8192, tied).
 *
 *   - output tokens/s at concurrency 1, 4 and 16 (greedy, every request the same length), and the
 *     ratio to single stream (issue 7's target: ≥ 5× at 16);
 *   - single-stream engine decode against the model's own Llama.generate (forwardCached) on the
 *     same prompt: the engine's bookkeeping must cost nothing noticeable (ratio ≈ 1 or above);
 *   - time to first token of a request whose 512-token prefix is cached against the same request
 *     on a cold cache (target: ≤ 0.2×).
 */
import type { Command } from 'commander';
import { Llama, type LlamaConfigInput } from '../models/llama.js';
import { Generator } from '../tensor/random.js';
import { getBackend } from '../tensor/backend/index.js';
import { nativeAddonInfo, setNativeThreads } from '../tensor/backend/native.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { EngineRequest } from '../infer/api.js';
import { Engine } from '../infer/engine.js';
import { loadedModelFrom, type LoadedModel } from '../infer/load.js';
import { round } from './common.js';

export const ENGINE_BENCH_MODEL: LlamaConfigInput = {
  vocabSize: 8192,
  hiddenSize: 512,
  intermediateSize: 1408,
  nLayer: 8,
  nHead: 8,
  nKVHead: 4,
  maxPositionEmbeddings: 1024,
  rmsNormEps: 1e-5,
  tieWordEmbeddings: true,
  initializerRange: 0.05,
};

export interface EngineBenchRecord {
  bench: 'engine';
  metric: string;
  [key: string]: string | number | boolean | null;
}

/** Ids rendered as base-36 words: the detokenizer has real text to work on. */
function idTokenizer(vocab: number): Tokenizer {
  return { vocabSize: vocab, encode: () => [], decode: (ids) => ids.map((i) => i.toString(36) + ' ').join(''), toJSON: () => ({}) };
}

function randomIds(n: number, vocab: number, g: Generator): number[] {
  return Array.from({ length: n }, () => g.nextU32() % vocab);
}

/** Runs requests to completion by stepping the engine; returns seconds and tokens generated. */
function runBatch(engine: Engine, reqs: EngineRequest[]): { seconds: number; tokens: number; firstTokenMs: number[] } {
  let tokens = 0;
  const t0 = performance.now();
  const first = new Map<string, number>();
  const failures: string[] = [];
  for (const r of reqs) {
    engine.submit(r, (e) => {
      if (e.type === 'token') {
        tokens += e.tokenIds.length;
        if (!first.has(e.id)) first.set(e.id, performance.now() - t0);
      } else if (e.finishReason !== 'length') {
        failures.push(`request ${e.id} ended with ${e.finishReason}${e.error === undefined ? '' : `: ${e.error}`}`);
      }
    });
  }
  while (engine.step());
  if (failures.length > 0) throw new Error(`bench engine: ${failures.join('; ')}`);
  return { seconds: (performance.now() - t0) / 1e3, tokens, firstTokenMs: [...first.values()] };
}

export interface EngineBenchOptions {
  /** Tokens generated per request (default 64). */
  tokens?: number;
  /** Prompt length of the throughput runs (default 32). */
  promptTokens?: number;
  /** Alternated rounds of every throughput figure, best of each (default 2). */
  rounds?: number;
  threads: number;
}

export function benchEngine(options: EngineBenchOptions): EngineBenchRecord[] {
  const tokens = options.tokens ?? 64;
  const promptTokens = options.promptTokens ?? 32;
  const config = ENGINE_BENCH_MODEL;
  const V = config.vocabSize;
  const llama = new Llama(config, { generator: new Generator(1) });
  llama.eval();
  const model: LoadedModel = loadedModelFrom(llama, idTokenizer(V), { modelId: 'random-llama-28m' });
  const params = llama.numParameters();
  const g = new Generator(2);
  const common = { model: 'random-llama-28m', params, threads: options.threads, backend: getBackend().name };
  const records: EngineBenchRecord[] = [];
  const sampling = { maxTokens: tokens, temperature: 0, ignoreEos: true };

  // Every figure is the best of `rounds` alternated runs (the anchor, then concurrency 1, 4, 16), since
  // other load on the machine moves single runs by tens of percent.
  const prompt = randomIds(promptTokens, V, g);
  llama.generate(prompt, { maxNewTokens: 4, temperature: 0 });
  const engineRate = (c: number): number => {
    const engine = new Engine(model, { maxBatch: 16, maxPrefillTokens: 512 });
    runBatch(engine, [{ id: 'warm', promptIds: randomIds(8, V, g), sampling: { ...sampling, maxTokens: 2 } }]);
    const reqs = Array.from({ length: c }, (_, i): EngineRequest => ({ id: `c${c}-${i}`, promptIds: c === 1 ? prompt : randomIds(promptTokens, V, g), sampling }));
    const run = runBatch(engine, reqs);
    return run.tokens / run.seconds;
  };
  let anchorPerS = 0;
  let anchorIds: number[] = [];
  const best = new Map<number, number>();
  for (let round = 0; round < (options.rounds ?? 2); round++) {
    const a0 = performance.now();
    anchorIds = llama.generate(prompt, { maxNewTokens: tokens, temperature: 0 });
    anchorPerS = Math.max(anchorPerS, tokens / ((performance.now() - a0) / 1e3));
    for (const c of [1, 4, 16]) best.set(c, Math.max(best.get(c) ?? 0, engineRate(c)));
  }
  const single = best.get(1)!;
  const ids: number[] = [];
  const probe = new Engine(model);
  probe.submit({ id: 'probe', promptIds: prompt, sampling }, (e) => {
    if (e.type === 'token') ids.push(...e.tokenIds);
  });
  while (probe.step());
  records.push({
    bench: 'engine',
    metric: 'single_stream_vs_llama_generate',
    ...common,
    ours: round(single, 1),
    anchor: round(anchorPerS, 1),
    anchor_name: 'Llama.generate (forwardCached, same model and prompt)',
    ratio: round(single / anchorPerS, 2),
    same_ids: ids.join(',') === anchorIds.join(','),
  });
  for (const c of [1, 4, 16]) {
    const rate = best.get(c)!;
    records.push({
      bench: 'engine',
      metric: 'output_tokens_per_s',
      ...common,
      concurrency: c,
      prompt_tokens: promptTokens,
      tokens_per_request: tokens,
      ours: round(rate, 1),
      vs_single_stream: round(rate / single, 2),
      target_at_16: c === 16 ? 5 : null,
    });
  }

  // Prefix caching: the same 512-token prefix, different 16-token suffixes.
  const prefix = randomIds(512, V, g);
  const ask = (suffixSeed: number): EngineRequest => ({
    id: `ttft-${suffixSeed}`,
    promptIds: [...prefix, ...randomIds(16, V, new Generator(suffixSeed))],
    sampling: { ...sampling, maxTokens: 1 },
  });
  const engine = new Engine(model, { maxBatch: 16, maxPrefillTokens: 1024 });
  runBatch(engine, [{ id: 'warm', promptIds: randomIds(600, V, g), sampling: { ...sampling, maxTokens: 1 } }]);
  const cold = runBatch(engine, [ask(10)]);
  const warm = runBatch(engine, [ask(11)]);
  const coldMs = cold.firstTokenMs[0]!;
  const warmMs = warm.firstTokenMs[0]!;
  records.push({
    bench: 'engine',
    metric: 'ttft_prefix_cached_ms',
    ...common,
    prefix_tokens: 512,
    suffix_tokens: 16,
    ours: round(warmMs, 1),
    uncached_ms: round(coldMs, 1),
    ratio: round(warmMs / coldMs, 3),
    target: 0.2,
    prefix_cache_hits: engine.stats().prefixCacheHits,
  });
  return records;
}

export function registerEngineBench(bench: Command): void {
  bench
    .command('engine')
    .description('inference engine: output tokens/s at concurrency 1/4/16, single stream vs Llama.generate, prefix-cached TTFT (random 28M LLaMA)')
    .option('--json', 'one JSON object per line')
    .option('--tokens <n>', 'tokens generated per request (default: 64)')
    .option('--threads <n>', 'native threads (default: the pool size)')
    .action((opts: { json?: boolean; tokens?: string; threads?: string }) => {
      const tokens = opts.tokens === undefined ? 64 : Number(opts.tokens);
      if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`bench engine: --tokens must be a positive integer, got ${opts.tokens}`);
      let threads = nativeAddonInfo()?.threads ?? 1;
      if (opts.threads !== undefined) {
        threads = Number(opts.threads);
        if (!Number.isInteger(threads) || threads < 1) throw new Error(`bench engine: --threads must be a positive integer, got ${opts.threads}`);
        setNativeThreads(threads);
      }
      const records = benchEngine({ tokens, threads });
      if (opts.json === true) {
        for (const r of records) console.log(JSON.stringify(r));
        return;
      }
      console.log(`inference engine — ${records[0]!.model} (${records[0]!.params} params), backend ${records[0]!.backend}, ${threads} thread(s)`);
      for (const r of records) {
        if (r.metric === 'output_tokens_per_s') console.log(`  concurrency ${String(r.concurrency).padStart(2)}: ${r.ours} output tokens/s (${r.vs_single_stream}× single stream)`);
        else if (r.metric === 'single_stream_vs_llama_generate') console.log(`  single stream: engine ${r.ours} tok/s vs Llama.generate ${r.anchor} tok/s = ${r.ratio}× (same ids: ${r.same_ids})`);
        else console.log(`  TTFT, 512-token prefix: cached ${r.ours} ms vs uncached ${r.uncached_ms} ms = ${r.ratio}× (target ≤ ${r.target})`);
      }
    });
}
