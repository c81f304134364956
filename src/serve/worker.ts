/**
 * Entry of the engine worker thread: builds the engine with the factory module named in
 * workerData, then serves the main thread's submit / cancel / stats / embed / close messages.
 * The engine's steps run here, so the HTTP event loop never waits on a forward pass.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EngineEvent } from '../infer/api.js';
import type { EngineBundle, EngineFactory, FromWorker, ToWorker, WorkerData } from './host.js';

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('src/serve/worker.ts runs only as a worker thread');
  const data = workerData as WorkerData;
  const send = (msg: FromWorker): void => port.postMessage(msg);
  let bundle: EngineBundle;
  try {
    const mod = (await import(data.factoryModule)) as { createEngineBundle?: EngineFactory };
    if (typeof mod.createEngineBundle !== 'function') throw new Error(`${data.factoryModule} does not export createEngineBundle`);
    bundle = await mod.createEngineBundle(data.options);
  } catch (e) {
    send({ t: 'load-error', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const { engine } = bundle;
  // Events of one engine step go out together, after the step's synchronous work.
  let pending: EngineEvent[] = [];
  const emit = (event: EngineEvent): void => {
    if (pending.length === 0) {
      queueMicrotask(() => {
        const events = pending;
        pending = [];
        send({ t: 'events', events });
      });
    }
    pending.push(event);
  };
  port.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'submit':
        try {
          engine.submit(msg.request, emit);
        } catch (e) {
          emit({
            type: 'done',
            id: msg.request.id,
            finishReason: 'error',
            text: '',
            usage: { promptTokens: msg.request.promptIds.length, completionTokens: 0, cachedPromptTokens: 0 },
            timings: { queueMs: 0, firstTokenMs: 0, totalMs: 0 },
            error: e instanceof Error ? e.message : String(e),
          });
        }
        return;
      case 'cancel':
        engine.cancel(msg.id);
        return;
      case 'stats':
        send({ t: 'reply', rid: msg.rid, value: engine.stats() });
        return;
      case 'embed':
        try {
          if (bundle.embed === undefined) throw new Error(`model ${bundle.info.modelId} does not support embeddings`);
          send({ t: 'reply', rid: msg.rid, value: bundle.embed(msg.batch) });
        } catch (e) {
          send({ t: 'reply', rid: msg.rid, error: e instanceof Error ? e.message : String(e) });
        }
        return;
      case 'close':
        engine.shutdown({ cancelRunning: msg.cancelRunning }).then(
          () => send({ t: 'reply', rid: msg.rid, value: null }),
          (e: unknown) => send({ t: 'reply', rid: msg.rid, error: e instanceof Error ? e.message : String(e) }),
        );
        return;
    }
  });
  send({ t: 'ready', info: bundle.info });
}

void main();
