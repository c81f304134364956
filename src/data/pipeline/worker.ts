/**
 * Worker-thread entry of the pipeline pool (pool.ts): builds the task its workerData names, then
 * answers one request at a time. Errors go back to the caller with their message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BoilerplateObserver, Cleaner, TokenizeTask } from './tasks.js';
import type { WorkerInit, WorkerRequest, WorkerResponse } from './pool.js';

type Handler = (req: WorkerRequest) => { result: unknown; transfer: ArrayBuffer[] };

async function buildHandler(init: WorkerInit): Promise<Handler> {
  if (init.kind === 'clean') {
    const cleaner = await Cleaner.create(init.config);
    return (req) => {
      if (req.kind === 'tokenizerInfo') return { result: cleaner.tokenizerInfo(req.json), transfer: [] };
      if (req.kind !== 'clean') throw new Error(`clean worker: unexpected request '${req.kind}'`);
      const r = cleaner.process(req.docs);
      const transfer = [r.bandKeys.buffer as ArrayBuffer, r.sig16.buffer as ArrayBuffer, r.shingles.buffer as ArrayBuffer];
      if (r.tokens !== null) transfer.push(r.tokens.ids.buffer as ArrayBuffer, r.tokens.lengths.buffer as ArrayBuffer);
      return { result: r, transfer };
    };
  }
  if (init.kind === 'tokenize') {
    const task = TokenizeTask.fromInit(init);
    return (req) => {
      if (req.kind !== 'tokenize') throw new Error(`tokenize worker: unexpected request '${req.kind}'`);
      const r = task.run(req.texts);
      return { result: r, transfer: [r.ids.buffer as ArrayBuffer, r.lengths.buffer as ArrayBuffer] };
    };
  }
  const observer = new BoilerplateObserver(init.normalize, init.minDocs);
  return (req) => {
    if (req.kind === 'observe') {
      observer.observe(req.docs);
      return { result: null, transfer: [] };
    }
    if (req.kind === 'snapshot') {
      const snap = observer.sketch.snapshot();
      return { result: snap, transfer: [snap.table.buffer as ArrayBuffer] };
    }
    throw new Error(`boilerplate worker: unexpected request '${req.kind}'`);
  };
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('pipeline worker: not started as a worker thread');
  const init = (workerData as { init: WorkerInit }).init;
  let handle = await buildHandler(init);
  // The pool sends one request at a time per worker, so a retask never overlaps another request.
  port.on('message', (msg: { seq: number; req: WorkerRequest }) => {
    const reply = (response: WorkerResponse, transfer: ArrayBuffer[] = []): void => port.postMessage(response, transfer);
    const fail = (e: unknown): void => reply({ seq: msg.seq, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    if (msg.req.kind === 'retask') {
      buildHandler(msg.req.init).then((h) => {
        handle = h;
        reply({ seq: msg.seq, ok: true, result: null });
      }, fail);
      return;
    }
    try {
      const r = handle(msg.req);
      reply({ seq: msg.seq, ok: true, result: r.result }, r.transfer);
    } catch (e) {
      fail(e);
    }
  });
  port.postMessage({ seq: -1, ok: true, result: 'ready' } satisfies WorkerResponse);
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ seq: -1, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies WorkerResponse);
});
