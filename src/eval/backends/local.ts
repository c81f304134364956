/**
 * A local Weft model (a run directory or any GPT.fromPretrained directory) as an evaluation back end,
 * scoring as lm-evaluation-harness's HFLM does: contexts and continuations encoded together, windows
 * truncated from the left to the model's block size, rolling windows for long texts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer } from '../../data/char-tokenizer.js';
import { generate } from '../../infer/generate.js';
import { GPT } from '../../models/gpt.js';
import { noGrad } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { makeDisjointWindow, rollingTokenWindows } from '../metrics/perplexity.js';
import { Tokenizer } from '../../tokenizers/index.js';
import type { Json } from '../../tokenizers/types.js';
import { recoverCheckpoint, TOKENIZER_FILE } from '../../train/checkpoint.js';
import { type BackendCallbacks, cutAtStop, type EvalBackend, type GenerationRequest, type LoglikelihoodRequest, type LoglikelihoodResult, type RollingResult } from './backend.js';

/** The tokenizer contract the local back end needs; any tokenizer with encode/decode fits. */
export interface EvalTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  readonly vocabSize: number;
  /** Token that starts a text with no context (lm-eval's prefix_token_id: EOT/BOS). */
  readonly prefixTokenId: number;
}

/**
 * A character tokenizer for evaluation. Benchmarks hold characters a small char model never saw
 * (digits in Shakespeare's vocabulary, curly quotes…); rather than failing, each is replaced by
 * `replacement` and counted, and the count is reported with the results.
 */
export class LossyCharTokenizer implements EvalTokenizer {
  replaced = 0;
  private readonly known: Set<string>;
  private readonly fallback: string;

  constructor(
    private readonly inner: CharTokenizer,
    replacement = ' ',
  ) {
    const vocab = inner.vocab;
    this.known = new Set(vocab);
    this.fallback = this.known.has(replacement) ? replacement : vocab[0]!;
    this.prefixTokenId = this.known.has('\n') ? inner.encode('\n')[0]! : 0;
  }

  readonly prefixTokenId: number;

  get vocabSize(): number {
    return this.inner.vocabSize;
  }

  encode(text: string): number[] {
    let clean = '';
    for (const ch of text) {
      if (this.known.has(ch)) clean += ch;
      else {
        clean += this.fallback;
        this.replaced++;
      }
    }
    return this.inner.encode(clean);
  }

  decode(ids: readonly number[]): string {
    return this.inner.decode(ids);
  }
}

/**
 * A Hugging Face tokenizer.json tokenizer, encoding without special tokens as lm-eval's HFLM does for
 * causal models; texts with no context start from the end-of-text (or BOS) token.
 */
export class HFEvalTokenizer implements EvalTokenizer {
  readonly prefixTokenId: number;
  constructor(private readonly inner: Tokenizer) {
    this.prefixTokenId = ['<|endoftext|>', '</s>', '<s>', '<|begin_of_text|>'].map((t) => inner.tokenToId(t)).find((id) => id !== undefined) ?? 0;
  }
  get vocabSize(): number {
    return this.inner.vocabSize;
  }
  encode(text: string): number[] {
    return this.inner.encode(text, { addSpecialTokens: false });
  }
  decode(ids: readonly number[]): string {
    return this.inner.decode(ids, { skipSpecialTokens: false });
  }
}

/** A character tokenizer (either tokenizer.json form), or null when the file describes another kind. */
function charTokenizerOrNull(json: unknown): CharTokenizer | null {
  try {
    return CharTokenizer.fromJSON(json);
  } catch {
    return null;
  }
}

/** Reads the tokenizer.json of a run directory (Weft's character tokenizer or a Hugging Face one). */
export function loadRunTokenizer(dir: string): EvalTokenizer {
  const path = join(dir, TOKENIZER_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no ${TOKENIZER_FILE}; point --model at a run directory written by weft train`);
  const json: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const type = typeof json === 'object' && json !== null && 'type' in json ? (json as { type: unknown }).type : undefined;
  const char = charTokenizerOrNull(json);
  if (char !== null) return new LossyCharTokenizer(char);
  if (typeof json === 'object' && json !== null && 'model' in json) return new HFEvalTokenizer(Tokenizer.fromJSON(json as Json));
  throw new Error(
    `${path}: tokenizer type ${JSON.stringify(type)} is not supported by weft eval (character tokenizers and Hugging Face tokenizer.json are); ` +
      'from code, pass any {encode, decode, vocabSize, prefixTokenId} to new LocalBackend(model, tokenizer)',
  );
}

function logSoftmaxAt(row: Float32Array, offset: number, V: number, target: number): { logprob: number; isArgmax: boolean } {
  let max = -Infinity;
  let arg = 0;
  for (let v = 0; v < V; v++) {
    const x = row[offset + v]!;
    if (x > max) {
      max = x;
      arg = v;
    }
  }
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(row[offset + v]! - max);
  return { logprob: row[offset + target]! - max - Math.log(sum), isArgmax: arg === target };
}

export class LocalBackend implements EvalBackend {
  readonly info: Record<string, string | number | boolean | null>;

  constructor(
    private readonly model: GPT,
    private readonly tokenizer: EvalTokenizer,
    description: Record<string, string | number | boolean | null> = {},
  ) {
    if (model.config.vocabSize < tokenizer.vocabSize) {
      throw new Error(`LocalBackend: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${model.config.vocabSize}`);
    }
    model.eval();
    this.info = {
      kind: 'local',
      parameters: model.numParameters(),
      block_size: model.config.blockSize,
      vocab_size: model.config.vocabSize,
      n_layer: model.config.nLayer,
      n_embd: model.config.nEmbd,
      ...description,
    };
  }

  static async fromDir(dir: string): Promise<LocalBackend> {
    if (!existsSync(dir)) throw new Error(`--model ${dir}: no such directory`);
    recoverCheckpoint(dir);
    const tokenizer = loadRunTokenizer(dir);
    const model = await GPT.fromPretrained(dir);
    return new LocalBackend(model, tokenizer, { path: dir });
  }

  warnings(): string[] {
    const t = this.tokenizer;
    if (t instanceof LossyCharTokenizer && t.replaced > 0) {
      return [`${t.replaced} characters outside the model's character vocabulary were replaced by a known character`];
    }
    return [];
  }

  /**
   * Σ log p(target[i] | input[..i]) over the last `target.length` positions of `input`, where input is
   * (context + target)[-(blockSize+1):][:-1], as lm-eval's _loglikelihood_tokens.
   */
  private scoreTokens(contextIds: readonly number[], targetIds: readonly number[]): LoglikelihoodResult {
    const { blockSize, vocabSize: V } = this.model.config;
    if (targetIds.length === 0) return { logprob: 0, isGreedy: true };
    if (targetIds.length > blockSize) throw new Error(`LocalBackend: a continuation of ${targetIds.length} tokens exceeds the block size ${blockSize}`);
    const whole = [...contextIds, ...targetIds];
    const input = whole.slice(-(blockSize + 1)).slice(0, -1);
    const T = input.length;
    const logits = noGrad(() => this.model.forward(Tensor.fromArray(Int32Array.from(input), [1, T], 'i32')).logits);
    const data = logits.f32('LocalBackend.scoreTokens');
    let logprob = 0;
    let isGreedy = true;
    const n = targetIds.length;
    for (let i = 0; i < n; i++) {
      const pos = T - n + i;
      const r = logSoftmaxAt(data, pos * V, V, targetIds[i]!);
      logprob += r.logprob;
      isGreedy &&= r.isArgmax;
    }
    logits.dispose();
    this.model.releaseActivations();
    return { logprob, isGreedy };
  }

  /** lm-eval's _encode_pair: trailing context whitespace moves to the continuation. */
  private encodePair(context: string, continuation: string): [number[], number[]] {
    if (context === '') return [[this.tokenizer.prefixTokenId], this.tokenizer.encode(continuation)];
    const trimmed = context.replace(/\s+$/, '');
    const nSpaces = context.length - trimmed.length;
    const ctx = nSpaces > 0 ? trimmed : context;
    const cont = nSpaces > 0 ? context.slice(-nSpaces) + continuation : continuation;
    const whole = this.tokenizer.encode(ctx + cont);
    const ctxIds = this.tokenizer.encode(ctx);
    return [ctxIds, whole.slice(ctxIds.length)];
  }

  async loglikelihood(requests: readonly LoglikelihoodRequest[], cb: BackendCallbacks = {}): Promise<LoglikelihoodResult[]> {
    const out: LoglikelihoodResult[] = [];
    for (const r of requests) {
      const t0 = performance.now();
      const [ctx, cont] = this.encodePair(r.context, r.continuation);
      out.push(this.scoreTokens(ctx, cont));
      cb.meter?.recordScoring(Math.min(ctx.length + cont.length, this.model.config.blockSize), performance.now() - t0);
      cb.onProgress?.(out.length);
      // Let timers (progress, RSS sampling) run between requests.
      if (out.length % 16 === 0) await new Promise((res) => setImmediate(res));
    }
    return out;
  }

  async loglikelihoodRolling(texts: readonly string[], contextLen: number, cb: BackendCallbacks = {}): Promise<RollingResult[]> {
    const out: RollingResult[] = [];
    const { blockSize } = this.model.config;
    for (const text of texts) {
      const t0 = performance.now();
      const ids = this.tokenizer.encode(text);
      let logprob = 0;
      // lm-eval's rolling windows: every token scored once, each window at most blockSize long.
      for (const w of rollingTokenWindows(ids, this.tokenizer.prefixTokenId, blockSize, contextLen).map(makeDisjointWindow)) {
        logprob += this.scoreTokens(w.context, w.continuation).logprob;
      }
      out.push({ logprob, tokens: ids.length });
      cb.meter?.recordScoring(ids.length, performance.now() - t0);
      cb.onProgress?.(out.length);
      await new Promise((res) => setImmediate(res));
    }
    return out;
  }

  async generate(requests: readonly GenerationRequest[], cb: BackendCallbacks = {}): Promise<string[][]> {
    const out: string[][] = [];
    const { blockSize } = this.model.config;
    for (const r of requests) {
      const samples: string[] = [];
      let promptIds = this.tokenizer.encode(r.context);
      if (promptIds.length === 0) promptIds = [this.tokenizer.prefixTokenId];
      // lm-eval keeps the last (max_length − max_gen_toks) context tokens; never fewer than one.
      promptIds = promptIds.slice(-Math.max(1, blockSize - r.maxTokens));
      for (let s = 0; s < r.samples; s++) {
        const t0 = performance.now();
        let ttft: number | null = null;
        let text = '';
        const ids = generate(this.model, promptIds, {
          maxNewTokens: r.maxTokens,
          temperature: r.temperature,
          topP: r.temperature > 0 ? r.topP : undefined,
          seed: r.seed + s,
          onToken: (id) => {
            ttft ??= performance.now() - t0;
            text += this.tokenizer.decode([id]);
          },
          stop: () => r.until.some((u) => text.includes(u)),
        });
        const newTokens = ids.length - promptIds.length;
        cb.meter?.recordGeneration({ newTokens, totalMs: performance.now() - t0, ttftMs: ttft });
        samples.push(cutAtStop(this.tokenizer.decode(ids.slice(promptIds.length)), r.until));
        await new Promise((res) => setImmediate(res));
      }
      out.push(samples);
      cb.onProgress?.(out.length);
    }
    return out;
  }
}
