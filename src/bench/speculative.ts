/**
 * `weft bench speculative`: greedy decoding tokens/s of a LLaMA target alone and with speculative
 * decoding (src/infer/speculative.ts), from the same prompt in the same run, plus the draft's
 * acceptance rate and whether both outputs are identical (they must be). The draft is another model
 * sharing the tokenizer (--draft: e.g. a small model trained with `weft train llama` on the same
 * data), the target's own first k layers (--draft-layers k, self-speculative early exit), or
 * prompt lookup (--draft-ngram n: no draft model). The bench loads models only; it trains nothing.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { cachedDecoder, type CachedDecoder, greedyDecode, ngramDrafter, speculativeGreedy, type TokenDrafter, truncatedDraft } from '../infer/speculative.js';
import { loadLlama2c } from '../io/llama2c.js';
import { loadAnyModel, loadGGUFModel } from '../compress/index.js';
import { Llama } from '../models/llama.js';
import { type Tokenizer, tokenizerFromSavedJSON } from '../data/tokenizer.js';
import { tokenizerFromGGUF } from '../tokenizers/formats/gguf-vocab.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { getBackend } from '../tensor/backend/index.js';
import { nativeAddonInfo, setNativeThreads } from '../tensor/backend/native.js';
import { packageRoot, round } from './common.js';

export interface SpeculativeBenchRecord {
  target: string;
  draft: string;
  target_params: number;
  /** Parameters the draft runs per token (a truncated draft shares the target's weights). */
  draft_params: number;
  tokens: number;
  gamma: number;
  adaptive: boolean;
  baseline_tokens_per_s: number;
  speculative_tokens_per_s: number;
  /** speculative over baseline tokens/s: above 1 is a speed-up. */
  ratio: number;
  acceptance_rate: number;
  /** Target forwards per emitted token (1 without speculation). */
  target_forwards_per_token: number;
  same_output: boolean;
  threads: number;
  backend: string;
}

/** A LLaMA from an HF directory (quantized too), a .gguf (quantized blocks run as they are) or a llama2.c .bin. */
export async function loadLlamaAny(path: string): Promise<Llama> {
  if (!existsSync(path)) throw new Error(`bench speculative: ${path} does not exist`);
  if (statSync(path).isDirectory()) {
    const m = await loadAnyModel(path);
    if (!(m instanceof Llama)) throw new Error(`bench speculative: ${path} is not a LLaMA-family model`);
    return m;
  }
  if (path.endsWith('.gguf')) return loadGGUFModel(path);
  if (path.endsWith('.bin')) return loadLlama2c(path);
  throw new Error(`bench speculative: ${path} is not a model directory, .gguf or llama2.c .bin`);
}

/** The tokenizer that goes with a model path: a run directory's tokenizer.json, a GGUF's own, a llama2.c tok*.bin beside it. */
export function tokenizerForModel(path: string): Tokenizer {
  if (statSync(path).isDirectory()) {
    const file = join(path, 'tokenizer.json');
    if (!existsSync(file)) throw new Error(`bench speculative: ${path} has no tokenizer.json; give --prompt-ids instead of --prompt`);
    return tokenizerFromSavedJSON(JSON.parse(readFileSync(file, 'utf8')));
  }
  if (path.endsWith('.gguf')) return tokenizerFromGGUF(path);
  return loadTokenizer(dirname(path));
}

function paramsOf(m: Llama, layers?: number): number {
  if (layers === undefined) return m.numParameters();
  let n = 0;
  for (const [name, t] of m.namedParameters()) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer === null || Number(layer[1]) < layers) n += t.numel;
  }
  return n;
}

/** Best-of-`reps` wall time of fn, in seconds (after one warm-up call). */
function bestSeconds(fn: () => void, reps: number): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

export interface SpeculativeBenchOptions {
  target: string;
  draft?: string;
  draftLayers?: number;
  /** Prompt-lookup draft with n-grams up to this length. */
  draftNgram?: number;
  promptIds: number[];
  tokens: number;
  gamma: number;
  adaptive: boolean;
  reps: number;
  threads: number;
}

export async function benchSpeculative(o: SpeculativeBenchOptions): Promise<SpeculativeBenchRecord> {
  const target = await loadLlamaAny(o.target);
  let draft: CachedDecoder | TokenDrafter;
  let draftName: string;
  let draftParams: number;
  if (o.draftNgram !== undefined) {
    draft = ngramDrafter({ maxNgram: o.draftNgram });
    draftName = `prompt lookup, n-grams of ${o.draftNgram} down to 1`;
    draftParams = 0;
  } else if (o.draft !== undefined) {
    const d = await loadLlamaAny(o.draft);
    draft = cachedDecoder(d);
    draftName = o.draft;
    draftParams = paramsOf(d);
  } else {
    const k = o.draftLayers ?? 1;
    draft = truncatedDraft(target, k);
    draftName = `first ${k} of ${target.config.nLayer} target layers`;
    draftParams = paramsOf(target, k);
  }
  const draftContext = 'contextLength' in draft ? draft.contextLength : Infinity;
  const tokens = Math.min(o.tokens, target.config.maxPositionEmbeddings - o.promptIds.length, draftContext - o.promptIds.length);
  if (tokens < 1) throw new Error(`bench speculative: the prompt (${o.promptIds.length} ids) leaves no room in the context`);
  let plain: number[] = [];
  let spec: number[] = [];
  let stats = speculativeGreedy(target, draft, o.promptIds, { maxNewTokens: tokens, gamma: o.gamma, adaptive: o.adaptive }).stats;
  const baseline = bestSeconds(() => {
    plain = greedyDecode(target, o.promptIds, { maxNewTokens: tokens });
  }, o.reps);
  const speculative = bestSeconds(() => {
    const r = speculativeGreedy(target, draft, o.promptIds, { maxNewTokens: tokens, gamma: o.gamma, adaptive: o.adaptive });
    spec = r.tokens;
    stats = r.stats;
  }, o.reps);
  return {
    target: o.target,
    draft: draftName,
    target_params: paramsOf(target),
    draft_params: draftParams,
    tokens,
    gamma: o.gamma,
    adaptive: o.adaptive,
    baseline_tokens_per_s: round(tokens / baseline, 1),
    speculative_tokens_per_s: round(tokens / speculative, 1),
    ratio: round(baseline / speculative, 3),
    acceptance_rate: round(stats.acceptanceRate, 3),
    target_forwards_per_token: round(stats.targetForwards / Math.max(1, stats.tokens), 3),
    same_output: plain.length === spec.length && plain.every((id, i) => id === spec[i]),
    threads: o.threads,
    backend: getBackend().name,
  };
}

function positiveInt(text: string, flag: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench speculative: ${flag} must be a positive integer, got '${text}'`);
  return v;
}

export function registerSpeculativeBench(bench: Command): void {
  bench
    .command('speculative')
    .description('greedy decoding tokens/s of a LLaMA alone and with speculative decoding (draft model or early-exit draft), acceptance rate')
    .option('--target <path>', 'target LLaMA: HF directory, .gguf or llama2.c .bin (default: shared/data stories260K)')
    .option('--draft <path>', 'draft model sharing the tokenizer (default: the target\'s first --draft-layers layers)')
    .option('--draft-layers <k>', 'early-exit draft: the target\'s first k layers + its head (default 1)')
    .option('--draft-ngram <n>', 'no draft model: prompt lookup with n-grams up to n (vLLM\'s ngram speculator)')
    .option('--prompt <text>', "prompt text, encoded with the target's tokenizer (BOS first when the vocabulary has one at id 1)")
    .option('--prompt-ids <list>', 'prompt token ids, comma-separated (default: 1, the BOS of LLaMA vocabularies)')
    .option('--tokens <n>', 'tokens to generate', '128')
    .option('--gamma <n>', 'draft tokens per round', '4')
    .option('--adaptive', 'adapt gamma per round')
    .option('--reps <n>', 'timed runs of each (best kept)', '3')
    .option('--threads <n>', 'native threads (default: the pool size)')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { target?: string; draft?: string; draftLayers?: string; draftNgram?: string; prompt?: string; promptIds?: string; tokens: string; gamma: string; adaptive?: boolean; reps: string; threads?: string; json?: boolean }) => {
      let threads = nativeAddonInfo()?.threads ?? 1;
      if (opts.threads !== undefined) {
        threads = positiveInt(opts.threads, '--threads');
        setNativeThreads(threads);
      }
      const target = opts.target ?? join(packageRoot(), '..', 'shared', 'data', 'models', 'stories260K', 'stories260K.bin');
      if ([opts.draft, opts.draftLayers, opts.draftNgram].filter((x) => x !== undefined).length > 1) {
        throw new Error('bench speculative: give one of --draft, --draft-layers, --draft-ngram');
      }
      if (opts.prompt !== undefined && opts.promptIds !== undefined) throw new Error('bench speculative: give --prompt or --prompt-ids, not both');
      let promptIds: number[];
      if (opts.prompt !== undefined) {
        const tok = tokenizerForModel(target);
        promptIds = tok.encode(opts.prompt);
        // llama2.c / SentencePiece vocabularies start generation after BOS (id 1); char tokenizers have none.
        if ((target.endsWith('.bin') || target.endsWith('.gguf')) && promptIds[0] !== 1) promptIds.unshift(1);
        if (promptIds.length === 0) throw new Error('bench speculative: --prompt encodes to no tokens');
      } else {
        promptIds = (opts.promptIds ?? '1').split(',').map((s) => {
          const v = Number(s.trim());
          if (!Number.isInteger(v) || v < 0) throw new Error(`bench speculative: --prompt-ids entry '${s}' is not a token id`);
          return v;
        });
      }
      const r = await benchSpeculative({
        target,
        draft: opts.draft,
        draftLayers: opts.draftLayers === undefined ? undefined : positiveInt(opts.draftLayers, '--draft-layers'),
        draftNgram: opts.draftNgram === undefined ? undefined : positiveInt(opts.draftNgram, '--draft-ngram'),
        promptIds,
        tokens: positiveInt(opts.tokens, '--tokens'),
        gamma: positiveInt(opts.gamma, '--gamma'),
        adaptive: opts.adaptive === true,
        reps: positiveInt(opts.reps, '--reps'),
        threads,
      });
      if (opts.json === true) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`speculative greedy decoding — backend ${r.backend}, ${r.threads} thread(s), ${r.tokens} tokens, gamma ${r.gamma}${r.adaptive ? ' (adaptive)' : ''}`);
      console.log(`  target ${r.target} (${r.target_params} params); draft ${r.draft} (${r.draft_params} params)`);
      console.log(`  plain greedy     ${r.baseline_tokens_per_s} tokens/s`);
      console.log(`  speculative      ${r.speculative_tokens_per_s} tokens/s   ratio ${r.ratio}×`);
      console.log(`  acceptance rate  ${r.acceptance_rate}   target forwards/token ${r.target_forwards_per_token}   same output: ${r.same_output}`);
    });
}
