/**
 * A small pool of worker threads for the pipeline's CPU-heavy stages. Requests go to whichever
 * worker is free; every request returns a promise, and callers await them in submission order,
 * so output order never depends on which worker finished first (the pipeline stays deterministic).
 * With size 0 the same tasks run in-process (tests, tiny inputs).
 *
 * Running from TypeScript sources (tests, `node --import ./scripts/ts-register.mjs`), there is no
 * worker.js next to this file; the worker then registers scripts/ts-hooks.mjs before importing
 * worker.ts, so both layouts run the same code.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BoilerplateSnapshot } from './boilerplate.js';
import type { NormalizeOptions } from './normalize.js';
import { BoilerplateObserver, Cleaner, TokenizeTask, type CleanConfig } from './tasks.js';
import type { Doc } from './types.js';

export type WorkerInit =
  | { kind: 'clean'; config: CleanConfig }
  /** The tokenizer as saved JSON, or the path of a saved tokenizer.json (each worker reads it: cheaper than cloning the object to it). */
  | { kind: 'tokenize'; tokenizer?: unknown; tokenizerFile?: string; eosId: number }
  | { kind: 'boilerplate'; normalize: NormalizeOptions; minDocs: number };

export type WorkerRequest =
  | { kind: 'clean'; docs: Doc[] }
  /** A clean worker's tokenizer: size, EOS and (with json) saved form (TokenizerInfo), or null. */
  | { kind: 'tokenizerInfo'; json: boolean }
  | { kind: 'tokenize'; texts: string[] }
  | { kind: 'observe'; docs: Doc[] }
  | { kind: 'snapshot' }
  /** Rebuild the worker's task (e.g. the clean workers become the tokenizers of the pack stage, without new threads). */
  | { kind: 'retask'; init: WorkerInit };

export type WorkerResponse = { seq: number; ok: true; result: unknown } | { seq: number; ok: false; error: string };

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/** How a worker is started: the compiled worker.js, or worker.ts through the TypeScript hooks. */
function workerEntry(): { url: URL; eval: false } | { code: string; eval: true } {
  const js = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { url: js, eval: false };
  const ts = new URL('./worker.ts', import.meta.url);
  const hooks = new URL('../../../scripts/ts-hooks.mjs', import.meta.url);
  if (!existsSync(fileURLToPath(ts)) || !existsSync(fileURLToPath(hooks))) {
    throw new Error(`pipeline pool: cannot find the worker (looked for ${fileURLToPath(js)} and ${fileURLToPath(ts)} with scripts/ts-hooks.mjs)`);
  }
  const code = `import('node:module').then((m) => { m.register(${JSON.stringify(hooks.href)}); return import(${JSON.stringify(pathToFileURL(fileURLToPath(ts)).href)}); })`;
  return { code, eval: true };
}

/**
 * A young generation of 96 MB per worker (V8's default is a few times smaller): the cleaning stages
 * make short-lived strings by the megabyte, and fewer scavenges cut the workers' GC time by about
 * half (85 MB corpus: 4.5 → 4.3 s).
 */
const resourceLimits = { maxYoungGenerationSizeMb: 96 };

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { seq: number; req: WorkerRequest; transfer: ArrayBuffer[] }[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly busy = new Map<Worker, number>();
  private seq = 0;
  private failure: Error | null = null;
  private local: { run(req: WorkerRequest): unknown } | null = null;
  /** Settles when every worker has built its task. */
  ready: Promise<void> = Promise.resolve();

  private constructor(readonly size: number) {}

  /** Starts `size` workers (0: run in-process) and waits until each has built its task. */
  static async start(size: number, init: WorkerInit): Promise<WorkerPool> {
    const pool = WorkerPool.launch(size, init);
    try {
      await pool.ready;
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /**
   * Starts `size` workers (0: run in-process) without waiting for them: requests submitted now
   * queue until a worker has built its task, so the caller can read input while the threads
   * load their modules and tables. `ready` settles when every worker is up (or one failed).
   */
  static launch(size: number, init: WorkerInit): WorkerPool {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`pipeline pool: workers must be an integer ≥ 0, got ${size}`);
    const pool = new WorkerPool(size);
    if (size === 0) {
      pool.ready = localTask(init).then((task) => {
        pool.local = task;
      });
    } else {
      const entry = workerEntry();
      const started: Promise<void>[] = [];
      for (let i = 0; i < size; i++) {
        const w = entry.eval ? new Worker(entry.code, { eval: true, workerData: { init }, resourceLimits }) : new Worker(entry.url, { workerData: { init }, resourceLimits });
        pool.workers.push(w);
        started.push(
          new Promise<void>((resolve, reject) => {
            const onFirst = (m: WorkerResponse): void => {
              if (m.seq !== -1) return;
              w.off('message', onFirst);
              if (m.ok) {
                // Each worker takes requests as soon as it is up, not when the slowest one is.
                pool.idle.push(w);
                pool.pump();
                resolve();
              } else {
                const e = new Error(`pipeline worker failed to start: ${m.error}`);
                pool.fail(e);
                reject(e);
              }
            };
            w.on('message', onFirst);
            w.once('error', reject);
          }),
        );
        w.on('message', (m: WorkerResponse) => pool.onMessage(w, m));
        w.on('error', (e) => pool.fail(e));
        w.on('exit', (code) => {
          if (code !== 0) pool.fail(new Error(`pipeline worker exited with code ${code}`));
        });
      }
      pool.ready = Promise.all(started).then(() => undefined);
    }
    // Awaited by start() and broadcast(); a start failure also rejects every submitted request.
    pool.ready.catch(() => undefined);
    return pool;
  }

  /** Runs a request; the promise settles with the task's result. */
  submit<T>(req: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.size === 0) return this.ready.then(() => this.local!.run(req) as T);
    const seq = this.seq++;
    const p = new Promise<T>((resolve, reject) => this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject }));
    this.queue.push({ seq, req, transfer });
    this.pump();
    return p;
  }

  /** Sends one request to each worker (e.g. 'snapshot'), in worker order. */
  async broadcast<T>(req: WorkerRequest): Promise<T[]> {
    await this.ready;
    if (this.size === 0) return [this.local!.run(req) as T];
    if (this.pending.size > 0) throw new Error('pipeline pool: broadcast needs every submitted request answered first');
    return Promise.all(
      this.workers.map((w) => {
        const seq = this.seq++;
        const p = new Promise<T>((resolve, reject) => this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject }));
        this.idle.splice(this.idle.indexOf(w), 1);
        this.busy.set(w, seq);
        w.postMessage({ seq, req });
        return p;
      }),
    );
  }

  /**
   * Gives every worker a new task, as if the pool had been started with `init`; saves starting
   * threads and loading modules again between stages. Needs every submitted request answered.
   */
  async retask(init: WorkerInit): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.size === 0) {
      this.local = await localTask(init);
      return;
    }
    await this.broadcast<null>({ kind: 'retask', init });
  }

  /** Number of requests submitted and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.shift()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job.seq);
      w.postMessage({ seq: job.seq, req: job.req }, job.transfer);
    }
  }

  private onMessage(w: Worker, m: WorkerResponse): void {
    if (m.seq === -1) return;
    const p = this.pending.get(m.seq);
    this.pending.delete(m.seq);
    this.busy.delete(w);
    this.idle.push(w);
    if (p) {
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`pipeline worker: ${m.error}`));
    }
    this.pump();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.failure ??= new Error('pipeline pool: closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

async function localTask(init: WorkerInit): Promise<{ run(req: WorkerRequest): unknown }> {
  if (init.kind === 'clean') {
    const cleaner = await Cleaner.create(init.config);
    return { run: (req) => (req.kind === 'clean' ? cleaner.process(req.docs) : req.kind === 'tokenizerInfo' ? cleaner.tokenizerInfo(req.json) : unexpected(req)) };
  }
  if (init.kind === 'tokenize') {
    const task = TokenizeTask.fromInit(init);
    return { run: (req) => (req.kind === 'tokenize' ? task.run(req.texts) : unexpected(req)) };
  }
  const observer = new BoilerplateObserver(init.normalize, init.minDocs);
  return {
    run: (req): BoilerplateSnapshot | null => {
      if (req.kind === 'observe') {
        observer.observe(req.docs);
        return null;
      }
      if (req.kind === 'snapshot') return observer.sketch.snapshot();
      return unexpected(req);
    },
  };
}

function unexpected(req: WorkerRequest): never {
  throw new Error(`pipeline pool: unexpected request '${req.kind}' for this task`);
}
