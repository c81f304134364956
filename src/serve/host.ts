/**
 * The engine as the HTTP layer sees it. In production the engine lives in a worker thread (its
 * decode steps are long synchronous computations that would otherwise stall the event loop);
 * requests, events, stats and embeddings cross a postMessage boundary as plain data. Tests can host
 * an engine in-process instead, through the same interface.
 */
import { Worker } from 'node:worker_threads';
import type { EngineEvent, EngineRequest, EngineStats, InferenceEngine, ModelDescription } from '../infer/api.js';

/** What the server needs to know about the model it serves (all plain data). */
export interface ServedModelInfo extends ModelDescription {
  /** The tokenizer in its tokenizer.json form (Tokenizer.toJSON()); the main thread rebuilds it. */
  tokenizerJSON: unknown;
}

/** An engine plus what is needed to serve it; what an engine factory builds. */
export interface EngineBundle {
  engine: InferenceEngine;
  info: ServedModelInfo;
  /** Mean-pooled, L2-normalised final hidden states; absent when the model cannot embed. */
  embed?: (batch: readonly (readonly number[])[]) => Float32Array[];
}

export interface EngineFactoryOptions {
  modelPath: string;
  tokenizer?: string;
  modelId?: string;
  maxBatch?: number;
  kvBlocks?: number;
}

/** The module a worker loads to build its engine exports this (src/serve/engine-factory.ts does). */
export type EngineFactory = (options: EngineFactoryOptions) => Promise<EngineBundle>;

export interface EngineHost {
  readonly info: ServedModelInfo;
  submit(request: EngineRequest, onEvent: (event: EngineEvent) => void): void;
  cancel(id: string): void;
  stats(): Promise<EngineStats>;
  embed(batch: readonly (readonly number[])[]): Promise<Float32Array[]>;
  /** Stops the engine (cancelling what still runs when asked) and releases the thread. */
  close(options?: { cancelRunning?: boolean }): Promise<void>;
  /** Called once if the host dies (worker crash): the server reports unhealthy. */
  onFailure?: (error: Error) => void;
}

/** Hosts an engine on the calling thread (tests, or embedding Weft in another program). */
export class InProcessHost implements EngineHost {
  readonly info: ServedModelInfo;
  onFailure?: (error: Error) => void;
  constructor(private readonly bundle: EngineBundle) {
    this.info = bundle.info;
  }
  submit(request: EngineRequest, onEvent: (event: EngineEvent) => void): void {
    this.bundle.engine.submit(request, onEvent);
  }
  cancel(id: string): void {
    this.bundle.engine.cancel(id);
  }
  async stats(): Promise<EngineStats> {
    return this.bundle.engine.stats();
  }
  async embed(batch: readonly (readonly number[])[]): Promise<Float32Array[]> {
    if (this.bundle.embed === undefined) throw new Error(`model ${this.info.modelId} does not support embeddings`);
    return this.bundle.embed(batch);
  }
  async close(options?: { cancelRunning?: boolean }): Promise<void> {
    await this.bundle.engine.shutdown({ cancelRunning: options?.cancelRunning ?? true });
  }
}

// ---- worker protocol -------------------------------------------------------------------------

export interface WorkerData {
  /** URL of the module exporting `createEngineBundle: EngineFactory`. */
  factoryModule: string;
  options: EngineFactoryOptions;
}

export type ToWorker =
  | { t: 'submit'; request: EngineRequest }
  | { t: 'cancel'; id: string }
  | { t: 'stats'; rid: number }
  | { t: 'embed'; rid: number; batch: number[][] }
  | { t: 'close'; rid: number; cancelRunning: boolean };

export type FromWorker =
  | { t: 'ready'; info: ServedModelInfo }
  | { t: 'load-error'; message: string }
  /** The events of one engine step, in order (one message per step, not per sequence). */
  | { t: 'events'; events: EngineEvent[] }
  | { t: 'reply'; rid: number; value?: unknown; error?: string };

/** The production factory, next to this file in src/ or dist/. */
export const DEFAULT_FACTORY_MODULE = new URL('./engine-factory.js', import.meta.url).href;
const WORKER_ENTRY = new URL('./worker.js', import.meta.url);

/** Hosts the engine in a worker thread; resolves once the model is loaded there. */
export class WorkerHost implements EngineHost {
  onFailure?: (error: Error) => void;
  private readonly listeners = new Map<string, (event: EngineEvent) => void>();
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextRid = 1;
  private dead: Error | null = null;
  private closing = false;

  private constructor(
    private readonly worker: Worker,
    readonly info: ServedModelInfo,
  ) {
    worker.on('message', (msg: FromWorker) => this.receive(msg));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`the engine worker exited unexpectedly (code ${code})`));
    });
  }

  /** Starts a worker running `factoryModule`'s createEngineBundle(options). */
  static start(options: EngineFactoryOptions, factoryModule: string = DEFAULT_FACTORY_MODULE): Promise<WorkerHost> {
    const data: WorkerData = { factoryModule, options };
    const worker = new Worker(WORKER_ENTRY, { workerData: data });
    return new Promise<WorkerHost>((resolve, reject) => {
      const onMessage = (msg: FromWorker): void => {
        if (msg.t === 'ready') {
          cleanup();
          resolve(new WorkerHost(worker, msg.info));
        } else if (msg.t === 'load-error') {
          cleanup();
          void worker.terminate();
          reject(new Error(msg.message));
        }
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new Error(`the engine worker exited while loading (code ${code})`));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  submit(request: EngineRequest, onEvent: (event: EngineEvent) => void): void {
    if (this.dead !== null) {
      onEvent(deadEvent(request.id, request.promptIds.length, this.dead));
      return;
    }
    this.listeners.set(request.id, onEvent);
    this.post({ t: 'submit', request });
  }

  cancel(id: string): void {
    if (this.dead === null && this.listeners.has(id)) this.post({ t: 'cancel', id });
  }

  stats(): Promise<EngineStats> {
    return this.call({ t: 'stats', rid: 0 }) as Promise<EngineStats>;
  }

  embed(batch: readonly (readonly number[])[]): Promise<Float32Array[]> {
    return this.call({ t: 'embed', rid: 0, batch: batch.map((b) => [...b]) }) as Promise<Float32Array[]>;
  }

  async close(options?: { cancelRunning?: boolean }): Promise<void> {
    if (this.closing) return;
    if (this.dead === null) {
      try {
        await this.call({ t: 'close', rid: 0, cancelRunning: options?.cancelRunning ?? true });
      } catch {
        // The worker is going away either way.
      }
    }
    this.closing = true;
    await this.worker.terminate();
  }

  private post(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  private call(msg: Extract<ToWorker, { rid: number }>): Promise<unknown> {
    if (this.dead !== null) return Promise.reject(this.dead);
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      this.pending.set(rid, { resolve, reject });
      this.post({ ...msg, rid });
    });
  }

  private receive(msg: FromWorker): void {
    if (msg.t === 'events') {
      for (const event of msg.events) {
        const listener = this.listeners.get(event.id);
        if (event.type === 'done') this.listeners.delete(event.id);
        listener?.(event);
      }
    } else if (msg.t === 'reply') {
      const p = this.pending.get(msg.rid);
      if (p === undefined) return;
      this.pending.delete(msg.rid);
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.value);
    }
  }

  private fail(err: Error): void {
    if (this.dead !== null) return;
    this.dead = err;
    for (const [id, listener] of this.listeners) listener(deadEvent(id, 0, err));
    this.listeners.clear();
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.onFailure?.(err);
  }
}

function deadEvent(id: string, promptTokens: number, err: Error): EngineEvent {
  return {
    type: 'done',
    id,
    finishReason: 'error',
    text: '',
    usage: { promptTokens, completionTokens: 0, cachedPromptTokens: 0 },
    timings: { queueMs: 0, firstTokenMs: 0, totalMs: 0 },
    error: `engine unavailable: ${err.message}`,
  };
}
