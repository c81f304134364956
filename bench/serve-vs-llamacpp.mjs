#!/usr/bin/env node
/**
 * Single-stream LLaMA inference, Weft against llama.cpp on the same f32 GGUF file:
 *   pp512  prompt processing tokens/s (a 512-token prompt, time to its first output token)
 *   tg128  generation tokens/s (128 greedy tokens after a 1-token prompt)
 * and whether both engines produce the same 32 greedy token ids from the same prompt.
 *
 * llama.cpp runs through node-llama-cpp (bench/anchors: its prebuilt CPU binary, never rebuilt);
 * both sides get the same thread count (default 1: llama.cpp's default threading spins, and on a
 * shared machine one thread each is the stable comparison). Weft runs through its inference engine
 * (src/infer/engine.ts, what `weft serve` runs), or with --weft model Llama.forwardCached.
 *
 *   npm run build   # dist/ must be current
 *   node bench/serve-vs-llamacpp.mjs [--model model.gguf] [--threads 1] [--pp 512] [--tg 128]
 *                                    [--check 32] [--reps 2] [--weft engine|model] [--json]
 * (--weft model: Llama.forwardCached directly, no engine: separates engine overhead from the model's.)
 *
 * Without --model it writes (once) a random-weight LLaMA to /tmp/weft-bench-llama-f32.gguf: 4
 * layers, width 512, SwiGLU 1376, 8 heads, untied head, about 45M parameters, with the Llama-2
 * SentencePiece vocabulary taken from ../shared/data/models/llama-2-tiny-random (llama.cpp wants a
 * real tokenizer), written with exportGGUF (src/io/gguf-export.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const ANCHOR = join(ROOT, 'bench', 'anchors', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
const VOCAB_GGUF = join(ROOT, '..', 'shared', 'data', 'models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf');

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string', default: '1' },
    pp: { type: 'string', default: '512' },
    tg: { type: 'string', default: '128' },
    check: { type: 'string', default: '32' },
    reps: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    weft: { type: 'string', default: 'engine' },
  },
});
const int = (name) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`serve-vs-llamacpp: --${name} must be a positive integer, got '${args[name]}'`);
  return v;
};
const threads = int('threads');
const PP = int('pp');
const TG = int('tg');
const CHECK = int('check');
const REPS = int('reps');
// Before the addon loads: its pool size is read from the environment.
process.env.WEFT_NUM_THREADS = String(threads);

const dist = (p) => import(pathToFileURL(join(DIST, p)).href);
const has = (p) => existsSync(join(DIST, p));
if (!has('models/llama.js')) throw new Error('serve-vs-llamacpp: dist/ is missing; run `npm run build` first');
if (!existsSync(ANCHOR)) throw new Error(`serve-vs-llamacpp: ${ANCHOR} is missing; run \`npm ci\` in bench/anchors`);

const log = (s) => process.stderr.write(`${s}\n`);
const now = () => performance.now();

// -----------------------------------------------------------------------------------------------
// The model file

const CONFIG = {
  vocabSize: 32000,
  hiddenSize: 512,
  intermediateSize: 1376,
  nLayer: 4,
  nHead: 8,
  nKVHead: 8,
  maxPositionEmbeddings: 1024,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
  // Wide logits: a greedy choice is never a near tie that float rounding could flip between engines.
  initializerRange: 0.05,
};

async function ensureModel() {
  if (args.model !== undefined) return resolve(args.model);
  const path = '/tmp/weft-bench-llama-f32.gguf';
  if (existsSync(path)) return path;
  if (!existsSync(VOCAB_GGUF)) throw new Error(`serve-vs-llamacpp: ${VOCAB_GGUF} is missing (the vocabulary); pass --model`);
  const { Llama } = await dist('models/llama.js');
  const { Generator } = await dist('tensor/random.js');
  const model = new Llama(CONFIG, { generator: new Generator(20260701) });
  const { exportGGUF } = await dist('io/gguf-export.js');
  const { tokenizerFromGGUF } = await dist('tokenizers/formats/gguf-vocab.js');
  await exportGGUF(model, tokenizerFromGGUF(VOCAB_GGUF), path, 'f32');
  log(`wrote ${path} with exportGGUF`);
  return path;
}

// -----------------------------------------------------------------------------------------------
// Prompts: random ids after BOS, a different prompt per repetition (no prefix cache hit).

function prompt(seed, length, vocab) {
  let s = seed >>> 0;
  const ids = [1];
  while (ids.length < length) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    ids.push(3 + (s % (vocab - 3)));
  }
  return ids;
}

// -----------------------------------------------------------------------------------------------
// Weft

async function weftRunner(path) {
  const native = await dist('tensor/backend/native.js');
  native.setNativeThreads?.(threads);
  const backend = (await dist('tensor/backend/index.js')).getBackend().name;
  if (args.weft !== 'engine' && args.weft !== 'model') throw new Error(`serve-vs-llamacpp: --weft must be engine or model, got '${args.weft}'`);
  if (args.weft === 'engine') {
    const { loadModel } = await dist('infer/load.js');
    const { Engine } = await dist('infer/engine.js');
    const loaded = await loadModel(path);
    const engine = new Engine(loaded, { maxBatch: 1, maxPrefillTokens: Math.max(PP, 512) });
    let n = 0;
    const generate = (promptIds, maxTokens) =>
      new Promise((resolveRun, reject) => {
        const ids = [];
        engine.submit({ id: `bench-${n++}`, promptIds, sampling: { maxTokens, temperature: 0, ignoreEos: true } }, (ev) => {
          if (ev.type === 'token') ids.push(...ev.tokenIds);
          else if (ev.finishReason === 'error') reject(new Error(ev.error));
          else resolveRun({ ids, firstMs: ev.timings.firstTokenMs, totalMs: ev.timings.totalMs });
        });
      });
    return {
      name: `weft engine (${backend})`,
      vocab: loaded.vocabSize,
      generate,
      close: () => engine.shutdown({ cancelRunning: true }),
    };
  }
  const { loadLlamaGGUF } = await dist('io/llama-gguf.js');
  const { Tensor } = await dist('tensor/tensor.js');
  const model = loadLlamaGGUF(path);
  const argmax = (row) => {
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    return best;
  };
  const generate = async (promptIds, maxTokens) => {
    const cache = model.newCache(1, promptIds.length + maxTokens);
    const t0 = now();
    let firstMs = 0;
    const ids = [];
    let feed = promptIds;
    while (ids.length < maxTokens) {
      const logits = model.forwardCached(Tensor.fromArray(Int32Array.from(feed), [1, feed.length], 'i32'), cache, { lastOnly: true });
      const next = argmax(logits.f32('bench'));
      logits.dispose();
      if (ids.length === 0) firstMs = now() - t0;
      ids.push(next);
      feed = [next];
    }
    return { ids, firstMs, totalMs: now() - t0 };
  };
  return { name: `weft Llama.forwardCached (${backend})`, vocab: model.config.vocabSize, generate, close: async () => {} };
}

// -----------------------------------------------------------------------------------------------
// llama.cpp

async function llamaCppRunner(path) {
  const { getLlama, LlamaLogLevel } = await import(pathToFileURL(ANCHOR).href);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel?.error ?? 'error' });
  const model = await llama.loadModel({ modelPath: path });
  const context = await model.createContext({ contextSize: 1024, batchSize: Math.max(PP, 512), threads, sequences: 1 });
  const sequence = context.getSequence();
  const generate = async (promptIds, maxTokens) => {
    await sequence.clearHistory();
    const t0 = now();
    let firstMs = 0;
    const ids = [];
    for await (const token of sequence.evaluate(promptIds, { temperature: 0 })) {
      if (ids.length === 0) firstMs = now() - t0;
      ids.push(token);
      if (ids.length >= maxTokens) break;
    }
    return { ids, firstMs, totalMs: now() - t0 };
  };
  return {
    name: `llama.cpp via node-llama-cpp ${llama.buildType ?? ''} (cpu)`.replace(/\s+/g, ' '),
    generate,
    close: async () => {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

// -----------------------------------------------------------------------------------------------

/** pp: prompt tokens / time to first token; tg: (tokens − 1) / time after the first token. Best of reps. */
async function measure(runner, vocab) {
  let pp = 0;
  let tg = 0;
  for (let r = 0; r < REPS; r++) {
    const a = await runner.generate(prompt(1000 + r, PP, vocab), 1);
    pp = Math.max(pp, PP / (a.firstMs / 1000));
    const b = await runner.generate(prompt(2000 + r, 1, vocab), TG);
    if (b.ids.length === TG) tg = Math.max(tg, (TG - 1) / ((b.totalMs - b.firstMs) / 1000));
  }
  const check = await runner.generate(prompt(7, 16, vocab), CHECK);
  return { pp, tg, ids: check.ids };
}

const path = await ensureModel();
log(`model ${path}, ${threads} thread(s) each`);
const weft = await weftRunner(path);
const vocab = weft.vocab;
await weft.generate(prompt(5, 8, vocab), 2); // warm-up
const ours = await measure(weft, vocab);
await weft.close();
const cpp = await llamaCppRunner(path);
await cpp.generate(prompt(5, 8, vocab), 2);
const theirs = await measure(cpp, vocab);
await cpp.close();

const same = ours.ids.length === theirs.ids.length && ours.ids.every((id, i) => id === theirs.ids[i]);
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const records = [
  { test: `pp${PP}`, unit: 'tokens/s', ours: round(ours.pp), llama_cpp: round(theirs.pp), ratio: round(ours.pp / theirs.pp, 3) },
  { test: `tg${TG}`, unit: 'tokens/s', ours: round(ours.tg), llama_cpp: round(theirs.tg), ratio: round(ours.tg / theirs.tg, 3) },
  { test: `greedy${CHECK}`, same_ids: same, ours_ids: ours.ids, llama_cpp_ids: theirs.ids },
].map((r) => ({ ...r, model: path, threads, weft: weft.name, anchor: cpp.name }));
if (args.json) {
  for (const r of records) console.log(JSON.stringify(r));
} else {
  for (const r of records.slice(0, 2)) console.log(JSON.stringify(r));
  console.log(JSON.stringify({ test: records[2].test, same_ids: same, ...(same ? {} : { ours_ids: ours.ids, llama_cpp_ids: theirs.ids }) }));
}
