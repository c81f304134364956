/**
 * Worker-thread entry of the pipeline pool (pool.ts): builds the task its workerData names, then
 * answers one request at a time. Errors go back to the caller with their message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BoilerplateObserver, Cleaner, TokenizeTask } from './tasks.js';
import type { WorkerInit, WorkerRequest, WorkerResponse } from './pool.js';

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('pipeline worker: not started as a worker thread');
  const init = (workerData as { init: WorkerInit }).init;
  let handle: (req: WorkerRequest) => { result: unknown; transfer: ArrayBuffer[] };
  if (init.kind === 'clean') {
    const cleaner = await Cleaner.create(init.config);
    handle = (req) => {
      if (req.kind !== 'clean') throw new Error(`clean worker: unexpected request '${req.kind}'`);
      const r = cleaner.process(req.docs);
      return { result: r, transfer: [r.bandKeys.buffer as ArrayBuffer, r.sig16.buffer as ArrayBuffer, r.shingles.buffer as ArrayBuffer] };
    };
  } else if (init.kind === 'tokenize') {
    const task = new TokenizeTask(init.tokenizer, init.eosId);
    handle = (req) => {
      if (req.kind !== 'tokenize') throw new Error(`tokenize worker: unexpected request '${req.kind}'`);
      const r = task.run(req.texts);
      return { result: r, transfer: [r.ids.buffer as ArrayBuffer, r.lengths.buffer as ArrayBuffer] };
    };
  } else {
    const observer = new BoilerplateObserver(init.normalize, init.minDocs);
    handle = (req) => {
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
  port.on('message', (msg: { seq: number; req: WorkerRequest }) => {
    let response: WorkerResponse;
    let transfer: ArrayBuffer[] = [];
    try {
      const r = handle(msg.req);
      response = { seq: msg.seq, ok: true, result: r.result };
      transfer = r.transfer;
    } catch (e) {
      response = { seq: msg.seq, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
    }
    port.postMessage(response, transfer);
  });
  port.postMessage({ seq: -1, ok: true, result: 'ready' } satisfies WorkerResponse);
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ seq: -1, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies WorkerResponse);
});
