/**
 * Contracts between the inference engine (scheduler, paged KV cache, model adapters), structured
 * decoding (JSON schema and tool-call constraints) and the OpenAI-compatible server. Everything a
 * request carries is plain data, because the engine runs in a worker thread and requests and events
 * cross a postMessage boundary.
 */

/** What a loaded model is, as the engine, the server and its clients describe it (all plain data). */
export interface ModelDescription {
  modelId: string;
  family: string;
  contextLength: number;
  vocabSize: number;
  eosTokenIds: number[];
  bosTokenId: number | null;
  /** tokenizer_config.json of the model directory (chat_template, bos_token, eos_token…), or null. */
  tokenizerConfig: Record<string, unknown> | null;
}

/** Per-request sampling, in OpenAI / vLLM terms. */
export interface SamplingParams {
  /** Tokens to generate at most (the prompt plus this must fit the context, or the request is refused). */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 or undefined: all). */
  topK?: number;
  /** Nucleus sampling: smallest set whose probability reaches topP (1 or undefined: all). */
  topP?: number;
  /** Drop tokens whose probability is below minP × the top probability (0 or undefined: none). */
  minP?: number;
  /** CTRL-style: logits of tokens seen in prompt or output divided (if > 0) / multiplied (if < 0) by this. */
  repetitionPenalty?: number;
  /** OpenAI: subtracted once from logits of tokens that appear in the output. */
  presencePenalty?: number;
  /** OpenAI: subtracted × count from logits of tokens in the output. */
  frequencyPenalty?: number;
  /** Added to the logits of the given token ids (OpenAI's logit_bias, −100 … 100). */
  logitBias?: Readonly<Record<number, number>>;
  /** Seeds this request's own generator: the same seed gives the same output, whatever else runs. */
  seed?: number;
  /** Stop strings: matched across token boundaries in the decoded text, never emitted. */
  stop?: readonly string[];
  /** Token ids that end the sequence (the model's EOS ids are added unless ignoreEos). */
  stopTokenIds?: readonly number[];
  ignoreEos?: boolean;
  /** Return the chosen token's log-probability and this many alternatives (0 … 20); undefined: none. */
  logprobs?: number;
}

/** What structured decoding enforces; built inside the engine worker from this plain description. */
export type ConstraintSpec =
  | { type: 'json_object' }
  | { type: 'json_schema'; schema: Readonly<Record<string, unknown>> }
  | {
      /** Output must be tool calls in the model's tool-call format, arguments valid for their schema. */
      type: 'tool_calls';
      tools: readonly { name: string; parameters: Readonly<Record<string, unknown>> }[];
      /** Only this function may be called (tool_choice naming one). */
      name?: string;
      /** The chat template's tool-call syntax (see src/infer/chat). */
      format: string;
    };

/**
 * A constraint on the tokens a sequence may produce next. The engine calls mask() before sampling
 * and accept() after it; when `done` turns true the sequence ends with finish reason 'stop'.
 */
export interface TokenConstraint {
  /** Sets to −Infinity the logits of every token that cannot continue a valid output. */
  mask(logits: Float32Array): void;
  /** Advances by the sampled token (which mask() allowed). */
  accept(tokenId: number): void;
  /** The output is complete and valid. */
  readonly done: boolean;
}

/** A request as the engine sees it: token ids in, token events out. */
export interface EngineRequest {
  id: string;
  promptIds: readonly number[];
  sampling: SamplingParams;
  constraint?: ConstraintSpec;
  /** Give up after this long (ms) since submission: finish reason 'timeout', KV blocks freed. */
  timeoutMs?: number;
}

export interface TopLogprob {
  tokenId: number;
  token: string;
  logprob: number;
  bytes: number[];
}

export interface TokenLogprob extends TopLogprob {
  top: TopLogprob[];
}

export type FinishReason = 'stop' | 'length' | 'abort' | 'timeout' | 'error';

export interface RequestUsage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens whose KV came from the prefix cache (no prefill). */
  cachedPromptTokens: number;
}

export interface RequestTimings {
  /** Submission → first scheduled. */
  queueMs: number;
  /** Submission → first output token. */
  firstTokenMs: number;
  /** Submission → finish. */
  totalMs: number;
}

export type EngineEvent =
  | {
      type: 'token';
      id: string;
      /** New token ids this step (one, or several after an accepted speculative run). */
      tokenIds: number[];
      /** Text that became safe to emit (held back while it could still be the start of a stop string). */
      text: string;
      logprobs?: TokenLogprob[];
    }
  | {
      type: 'done';
      id: string;
      finishReason: FinishReason;
      /** Any remaining text (a held-back tail that turned out not to be a stop string). */
      text: string;
      usage: RequestUsage;
      timings: RequestTimings;
      /** When finishReason is 'error'. */
      error?: string;
    };

export interface EngineStats {
  running: number;
  waiting: number;
  kvBlocksTotal: number;
  kvBlocksUsed: number;
  /** Prompt tokens looked up in the prefix cache, and how many of them hit. */
  prefixCacheQueries: number;
  prefixCacheHits: number;
  promptTokensTotal: number;
  generationTokensTotal: number;
  preemptionsTotal: number;
  stepsTotal: number;
}

export interface InferenceEngine {
  /** Queues a request; events arrive through onEvent until a 'done' event. */
  submit(request: EngineRequest, onEvent: (event: EngineEvent) => void): void;
  /** Cancels a request (client gone): a 'done' event with 'abort' follows; its KV blocks are freed within one step. */
  cancel(id: string): void;
  stats(): EngineStats;
  /** Stops admitting; resolves when running requests finished or were cancelled. */
  shutdown(options?: { cancelRunning?: boolean }): Promise<void>;
}
