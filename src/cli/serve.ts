/**
 * `weft serve <model path> [--tokenizer <file>] [--host 127.0.0.1] [--port 8000] [--api-key K]
 * [--max-batch 32] [--kv-blocks N] [--max-queue N] [--model-id ID] [--cors ORIGIN] [--timeout S]`:
 * an OpenAI-compatible server (chat, completions, embeddings, streaming, metrics, playground).
 * The HTTP server listens at once (GET /health says 503 until the model is loaded); the engine
 * loads and runs in a worker thread. SIGTERM / SIGINT stop admitting, let in-flight requests
 * finish for the grace period, cancel the rest and exit 0.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { WorkerHost } from '../serve/host.js';
import { SERVER_DEFAULTS, WeftServer } from '../serve/server.js';
import { UsageError } from '../train/config.js';
import { type CommandIO, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber } from './train.js';

export interface ServeFlags {
  tokenizer?: string;
  host?: string;
  port?: number;
  apiKey?: string;
  maxBatch?: number;
  kvBlocks?: number;
  maxQueue?: number;
  modelId?: string;
  cors?: string;
  timeout?: number;
  shutdownGrace?: number;
  allowUnauthenticated?: boolean;
}

/** The id clients put in `model`: --model-id, else the base name of the model path. */
export function servedModelId(modelPath: string, flags: Pick<ServeFlags, 'modelId'>): string {
  return flags.modelId ?? basename(resolve(modelPath));
}

/** Starts the server; resolves once the model is loaded and being served. */
export async function runServe(modelPath: string, flags: ServeFlags, io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<WeftServer> {
  if (!existsSync(modelPath)) throw new UsageError(`<model path>: ${modelPath} does not exist (give an HF model directory, a .gguf file or a llama2.c .bin)`);
  if (flags.tokenizer !== undefined && !existsSync(flags.tokenizer)) throw new UsageError(`--tokenizer: ${flags.tokenizer} does not exist`);
  const modelId = servedModelId(modelPath, flags);
  const maxBatch = flags.maxBatch ?? SERVER_DEFAULTS.maxBatch;
  const server = new WeftServer({
    host: flags.host,
    port: flags.port,
    apiKey: flags.apiKey,
    allowUnauthenticated: flags.allowUnauthenticated,
    maxBatch,
    maxQueue: flags.maxQueue,
    modelId,
    cors: flags.cors,
    timeoutS: flags.timeout,
  });
  const url = await server.listen();
  io.stderr.write(`weft serve: listening on ${url}; loading ${modelPath} in the engine worker…\n`);
  const started = performance.now();
  try {
    await server.load(WorkerHost.start({ modelPath: resolve(modelPath), tokenizer: flags.tokenizer, modelId, maxBatch, kvBlocks: flags.kvBlocks }));
  } catch (e) {
    await server.shutdown(0);
    throw new Error(`cannot load ${modelPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const graceMs = (flags.shutdownGrace ?? 30) * 1000;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    io.stderr.write(`weft serve: ${signal}: no new requests; finishing in-flight ones (up to ${graceMs / 1000} s)…\n`);
    server.shutdown(graceMs).then(
      () => process.exit(0),
      (err: unknown) => {
        io.stderr.write(`weft serve: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  io.stdout.write(`weft serve: ${modelId} ready in ${secs} s at ${url}  (OpenAI API: ${url}/v1, playground: ${url}/, metrics: ${url}/metrics)\n`);
  return server;
}

export function registerServe(program: Command, io?: CommandIO): void {
  program
    .command('serve')
    .description('serve a model over the OpenAI API (chat, completions, embeddings, streaming), with metrics and a playground')
    .argument('<model>', 'HF model directory, .gguf file, or llama2.c .bin checkpoint')
    .option('--tokenizer <file>', 'tokenizer file (default: found with the model)')
    .option('--host <address>', `address to bind (default: ${SERVER_DEFAULTS.host}; other addresses need an API key)`)
    .option('--port <n>', `port (default: ${SERVER_DEFAULTS.port}; 0 = any free port)`, parseNonNegativeInt)
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" (default: $WEFT_API_KEY)')
    .option('--allow-unauthenticated', 'serve on a non-loopback address without an API key')
    .option('--max-batch <n>', `sequences decoded together (default: ${SERVER_DEFAULTS.maxBatch})`, parsePositiveInt)
    .option('--kv-blocks <n>', 'KV-cache blocks of 16 tokens (default: the engine\'s)', parsePositiveInt)
    .option('--max-queue <n>', `sequences that may wait beyond --max-batch before requests get 429 (default: ${SERVER_DEFAULTS.maxQueue})`, parseNonNegativeInt)
    .option('--model-id <id>', 'the id clients use in "model" (default: the base name of the model path)')
    .option('--cors <origin>', 'allow browser requests from this origin (comma-separated, or *)')
    .option('--timeout <s>', 'cancel and answer 408 when a request runs longer than this (default: none)', parsePositiveNumber)
    .option('--shutdown-grace <s>', 'on SIGTERM, seconds in-flight requests may take to finish (default: 30)', parsePositiveNumber)
    .action(async (model: string, flags: ServeFlags) => {
      await runServe(model, flags, io);
    });
}
