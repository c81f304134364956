/**
 * Pre-training a PaLM-style model on a text file (or `weft data prepare` shards) with the same
 * Trainer, data pipeline, checkpoints and progress output as `weft train gpt`; only the model differs.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer } from '../data/char-tokenizer.js';
import { tokenizerFromSavedJSON } from '../data/tokenizer.js';
import { isShardDir, loadShardTokenizer, ShardDataset } from '../data/pipeline/shards.js';
import { TextDataset } from '../data/text-dataset.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { PaLM } from '../models/palm.js';
import { Generator } from '../tensor/random.js';
import { hasCheckpoint, loadTrainerState, TOKENIZER_FILE } from './checkpoint.js';
import { parseTrainConfig, type TrainConfig, type TrainConfigInput, UsageError, definedOnly } from './config.js';
import { type OutputStream, ProgressReporter, runOutput } from './progress.js';
import { Trainer, type TrainResult } from './trainer.js';

export interface PaLMShape {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** SwiGLU hidden width; default 4·nEmbd (the paper's ratio). */
  ffnDim?: number;
}

export const DEFAULT_PALM_SHAPE: PaLMShape = { nLayer: 4, nHead: 4, nEmbd: 128 };

export interface TrainPaLMOptions {
  config: Partial<TrainConfigInput>;
  model?: Partial<PaLMShape>;
  outDir: string;
  resume?: boolean;
  json?: boolean;
  stdout?: OutputStream;
  stderr?: OutputStream;
}

export interface TrainPaLMResult extends TrainResult {
  outDir: string;
  config: TrainConfig;
  numParameters: number;
  wallSeconds: number;
}

export async function trainPaLM(options: TrainPaLMOptions): Promise<TrainPaLMResult> {
  const started = performance.now();
  const { stdout, stderr, json, note } = runOutput(options);
  const { outDir } = options;
  const resume = options.resume === true;
  const modelGenerator = new Generator(0);
  let config: TrainConfig;
  let tokenizer: Tokenizer;
  let model: PaLM;
  let text: string | null = null;

  if (resume) {
    if (!hasCheckpoint(outDir)) throw new UsageError(`--resume: ${outDir} holds no checkpoint (no trainer_state.json); drop --resume to start a new run there`);
    const state = loadTrainerState(outDir);
    config = parseTrainConfig({ ...state.trainConfig, ...definedOnly(options.config) });
    tokenizer = tokenizerFromSavedJSON(JSON.parse(readFileSync(join(outDir, TOKENIZER_FILE), 'utf8')));
    if (!isShardDir(config.data)) text = readText(config.data);
    model = await PaLM.fromPretrained(outDir, { generator: modelGenerator });
    const given = definedOnly(options.model ?? {});
    for (const [key, value] of Object.entries(given) as [keyof PaLMShape, unknown][]) {
      if (model.config[key] !== value) throw new UsageError(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${String(value)} differs from the checkpoint's ${String(model.config[key])}: a resumed run keeps its model`);
    }
    note(`resuming ${outDir} at iteration ${state.iter} (max iters ${config.maxIters})`);
  } else {
    if (options.config.data === undefined) throw new UsageError('--data: required; pass a UTF-8 text file, e.g. --data data/tinyshakespeare.txt');
    config = parseTrainConfig({ ...definedOnly(options.config), data: options.config.data });
    if (isShardDir(config.data)) {
      tokenizer = loadShardTokenizer(config.data);
    } else {
      text = readText(config.data);
      tokenizer = CharTokenizer.fromText(text);
    }
    const shape = { ...DEFAULT_PALM_SHAPE, ...definedOnly(options.model ?? {}) };
    if (shape.nEmbd % shape.nHead !== 0 || (shape.nEmbd / shape.nHead) % 2 !== 0) {
      throw new UsageError(`--n-embd ${shape.nEmbd} / --n-head ${shape.nHead} must give an even head dimension (RoPE rotates pairs), e.g. --n-embd ${shape.nHead * 32}`);
    }
    modelGenerator.manualSeed(config.seed);
    model = new PaLM(
      { vocabSize: tokenizer.vocabSize, blockSize: config.blockSize, nLayer: shape.nLayer, nHead: shape.nHead, nEmbd: shape.nEmbd, ffnDim: shape.ffnDim ?? 4 * shape.nEmbd },
      { generator: modelGenerator },
    );
  }

  let dataset: TextDataset | ShardDataset;
  try {
    dataset = text === null ? ShardDataset.open(config.data) : TextDataset.fromText(text, tokenizer);
  } catch (err) {
    throw new UsageError(`--data ${config.data}: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const split of ['train', 'val'] as const) {
    if (dataset.windows(split, config.blockSize) < 1) throw new UsageError(`--data ${config.data}: the ${split} split is too short for --block-size ${config.blockSize}; use a longer text or a smaller --block-size`);
  }
  mkdirSync(outDir, { recursive: true });
  const c = model.config;
  note(`PaLM: ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${c.nLayer} parallel layers, ${c.nHead} query heads / 1 key-value head, ${c.nEmbd} embd, SwiGLU ${c.ffnDim}, block ${c.blockSize}, vocab ${c.vocabSize})`);
  const progress = new ProgressReporter({ out: stdout, err: stderr, json, maxIters: config.maxIters, logInterval: config.logInterval });
  const trainer = new Trainer({ model, tokenizer, dataset, config, outDir, generators: { model: modelGenerator }, progress, resume });
  const result = await trainer.run();
  return { ...result, outDir, config, numParameters: model.numParameters(), wallSeconds: (performance.now() - started) / 1000 };
}

function readText(path: string): string {
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`--data ${path}: no such file; pass a UTF-8 text file or a directory written by \`weft data prepare\``);
  const text = readFileSync(path, 'utf8');
  if (text.length === 0) throw new UsageError(`--data ${path}: the file is empty; pass a text file to train on`);
  return text;
}

