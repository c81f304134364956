/**
 * Pre-training a GPT on a text file, end to end: read and tokenize the text, build (or reload) the
 * model, run the Trainer into a run directory. The `weft train gpt` and `weft quickstart` commands
 * are thin layers over this.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer } from '../data/char-tokenizer.js';
import { tokenizerFromSavedJSON } from '../data/tokenizer.js';
import { isShardDir, loadShardTokenizer, ShardDataset } from '../data/pipeline/shards.js';
import { TextDataset } from '../data/text-dataset.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { gptConfigFromHF } from '../models/config.js';
import { GPT } from '../models/gpt.js';
import { Generator } from '../tensor/random.js';
import { coefficientOfVariation, type MoEConfigInput, parseMoEConfig, SparseMoE } from '../nn/moe.js';
import { noGrad } from '../tensor/autograd.js';
import { hasCheckpoint, loadTrainerState, TOKENIZER_FILE } from './checkpoint.js';
import { parseTrainConfig, type TrainConfig, type TrainConfigInput, UsageError, definedOnly } from './config.js';
import { type IterationRecord, type OutputStream, type ProgressOptions, ProgressReporter } from './progress.js';
import { Trainer, type TrainResult } from './trainer.js';

/** The model's shape; defaults are nanoGPT's CPU shakespeare_char run (no biases unless asked). */
export interface GPTShape {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  dropout: number;
  bias: boolean;
}

export const DEFAULT_GPT_SHAPE: GPTShape = { nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0, bias: false };

export interface TrainGPTOptions {
  /** GPT-MoE: routed FFN layers (absent: a dense GPT). On resume, given fields must agree with the checkpoint. */
  moe?: MoEConfigInput;
  /** Training settings. On resume, the checkpoint's settings with these (given) fields overriding them. */
  config: Partial<TrainConfigInput>;
  /** Model shape. On resume it must agree with the checkpoint where given. */
  model?: Partial<GPTShape>;
  outDir: string;
  resume?: boolean;
  json?: boolean;
  stdout?: OutputStream;
  stderr?: OutputStream;
}

export interface TrainGPTResult extends TrainResult {
  outDir: string;
  config: TrainConfig;
  numParameters: number;
  wallSeconds: number;
}

export async function trainGPT(options: TrainGPTOptions): Promise<TrainGPTResult> {
  const started = performance.now();
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const json = options.json === true;
  const notes = json ? stderr : stdout;
  const note = (s: string): void => void notes.write(`${s}\n`);
  const { outDir } = options;
  const resume = options.resume === true;

  let config: TrainConfig;
  let tokenizer: Tokenizer;
  let model: GPT;
  const modelGenerator = new Generator(0);
  // --data is a text file, or a shard directory written by `weft data prepare` (text stays null).
  let text: string | null = null;

  if (resume) {
    if (!hasCheckpoint(outDir)) {
      throw new UsageError(`--resume: ${outDir} holds no checkpoint (no trainer_state.json); drop --resume to start a new run there, or pass the --out of an existing run`);
    }
    const state = loadTrainerState(outDir);
    config = parseTrainConfig({ ...state.trainConfig, ...definedOnly(options.config) });
    const saved = gptConfigFromHF(JSON.parse(readFileSync(join(outDir, 'config.json'), 'utf8')));
    const given = definedOnly(options.model ?? {});
    for (const [key, value] of Object.entries(given) as [keyof GPTShape, unknown][]) {
      if (saved[key] !== value) {
        throw new UsageError(`${flag(key)} ${String(value)} differs from the checkpoint's ${String(saved[key])}: a resumed run keeps its model; drop ${flag(key)} or start a new run with another --out`);
      }
    }
    if (options.config.blockSize !== undefined && options.config.blockSize !== saved.blockSize) {
      throw new UsageError(`--block-size ${options.config.blockSize} differs from the checkpoint's ${saved.blockSize}: a resumed run keeps its model; drop --block-size`);
    }
    tokenizer = tokenizerFromSavedJSON(JSON.parse(readFileSync(join(outDir, TOKENIZER_FILE), 'utf8')));
    if (!isShardDir(config.data)) text = readText(config.data, options.config.data === undefined ? ' (the path saved in the checkpoint; pass --data to point at the training text)' : '');
    model = await GPT.fromPretrained(outDir, { generator: modelGenerator });
    checkResumedMoE(model, options.moe);
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
    const shape = { ...DEFAULT_GPT_SHAPE, ...definedOnly(options.model ?? {}) };
    if (shape.nEmbd % shape.nHead !== 0) {
      throw new UsageError(`--n-embd ${shape.nEmbd} is not divisible by --n-head ${shape.nHead}; pick --n-embd a multiple of --n-head (e.g. ${shape.nHead * Math.max(1, Math.round(shape.nEmbd / shape.nHead))})`);
    }
    if (!(shape.dropout >= 0 && shape.dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got ${shape.dropout}`);
    modelGenerator.manualSeed(config.seed);
    const moe = options.moe === undefined ? null : moeOrUsageError(options.moe);
    model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: config.blockSize, ...shape, moe }, { generator: modelGenerator });
    if (hasCheckpoint(outDir)) note(`note: ${outDir} holds a checkpoint; this new run replaces it at its first save (pass --resume to continue it instead)`);
  }

  let dataset: TextDataset | ShardDataset;
  try {
    if (text === null) {
      dataset = ShardDataset.open(config.data);
      if (dataset.vocabSize !== tokenizer.vocabSize) throw new Error(`the shards' vocabulary (${dataset.vocabSize}) differs from the run's tokenizer (${tokenizer.vocabSize})`);
    } else {
      dataset = TextDataset.fromText(text, tokenizer);
    }
  } catch (err) {
    throw new UsageError(`--data ${config.data}: ${err instanceof Error ? err.message : String(err)}${resume ? ' (a resumed run must use text its saved tokenizer covers)' : ''}`);
  }
  const ds = dataset;
  const splitTokens = (split: 'train' | 'val'): number => (ds instanceof ShardDataset ? ds.splitTokens(split) : split === 'train' ? ds.train.length : ds.val.length);
  for (const split of ['train', 'val'] as const) {
    if (dataset.windows(split, config.blockSize) < 1) {
      throw new UsageError(
        `--data ${config.data}: the ${split} split has ${splitTokens(split)} tokens, too few for --block-size ${config.blockSize}; use a longer text or a smaller --block-size`,
      );
    }
  }

  mkdirSync(outDir, { recursive: true });
  const c = model.config;
  note(
    `GPT: ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${c.nLayer} layers, ${c.nHead} heads, ${c.nEmbd} embd, block ${c.blockSize}, vocab ${c.vocabSize}${c.bias ? ', bias' : ''}${c.dropout > 0 ? `, dropout ${c.dropout}` : ''})`,
  );
  note(`data: ${config.data}: ${splitTokens('train').toLocaleString('en-US')} train / ${splitTokens('val').toLocaleString('en-US')} val tokens${text === null ? ' (token shards)' : ''}; run dir ${outDir}`);

  if (model.moe !== null) {
    const m = model.moe;
    const routed = model.transformer.h.items.filter((b) => b.mlp instanceof SparseMoE).length;
    note(
      `MoE: ${m.nExperts} experts, top-${m.topK}, in ${routed} of ${c.nLayer} blocks (every ${m.every}); capacity factor ${m.capacityFactor ?? 'dropless'}, ` +
        `aux ${m.auxLossCoef}, z ${m.zLossCoef}; ${(activeParameters(model) / 1e6).toFixed(2)}M parameters active per token`,
    );
  }
  const progressOptions: ProgressOptions = { out: stdout, err: stderr, json, maxIters: config.maxIters, logInterval: config.logInterval };
  const progress = model.moe === null ? new ProgressReporter(progressOptions) : new MoEProgressReporter(progressOptions, model);
  const trainer = new Trainer({ model, tokenizer, dataset, config, outDir, generators: { model: modelGenerator }, progress, resume });
  const result = await trainer.run();
  return { ...result, outDir, config, numParameters: model.numParameters(), wallSeconds: (performance.now() - started) / 1000 };
}

function readText(path: string, fromCheckpoint = ''): string {
  if (!existsSync(path)) {
    throw new UsageError(`--data ${path}${fromCheckpoint}: no such file; pass the path of a UTF-8 text file (the bundled corpus is data/tinyshakespeare.txt)`);
  }
  if (!statSync(path).isFile()) throw new UsageError(`--data ${path}: not a file, nor a shard directory (it has no index.json); pass a UTF-8 text file or a directory written by \`weft data prepare\``);
  const text = readFileSync(path, 'utf8');
  if (text.length === 0) throw new UsageError(`--data ${path}: the file is empty; pass a text file to train on`);
  return text;
}

function flag(key: string): string {
  return `--${key.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)}`;
}


/** A MoE config from flags, its validation error turned into a usage error that names the flags. */
function moeOrUsageError(input: MoEConfigInput): ReturnType<typeof parseMoEConfig> {
  try {
    return parseMoEConfig(input, 'the --moe-* flags');
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function checkResumedMoE(model: GPT, given: MoEConfigInput | undefined): void {
  if (given === undefined) return;
  const saved = model.moe as Record<string, unknown> | null;
  if (saved === null) throw new UsageError('--moe-*: the checkpoint is a dense GPT; a resumed run keeps its model (drop the --moe-* flags or start a new run)');
  for (const [key, value] of Object.entries(definedOnly(given as Record<string, unknown>))) {
    if (saved[key] !== value) {
      throw new UsageError(`MoE ${key} ${String(value)} differs from the checkpoint's ${String(saved[key])}: a resumed run keeps its model; drop that flag`);
    }
  }
}

/** Parameters one token uses: all, minus the (nExperts − topK) experts it skips in every routed block. */
export function activeParameters(model: GPT): number {
  let inactive = 0;
  for (const block of model.transformer.h) {
    if (model.moe === null || !(block.mlp instanceof SparseMoE)) continue;
    const perExpert = block.mlp.experts.items[0]!.numParameters();
    inactive += (model.moe.nExperts - model.moe.topK) * perExpert;
  }
  return model.numParameters() - inactive;
}

/**
 * Adds GPT-MoE's routing statistics to each iteration record (per routed block: expert load, importance,
 * dropped assignments, the load's coefficient of variation; the last step's auxiliary losses), so that
 * `--json` output and metrics.jsonl carry them.
 */
class MoEProgressReporter extends ProgressReporter {
  constructor(
    options: ProgressOptions,
    private readonly model: GPT,
  ) {
    super(options);
  }

  override iteration(r: IterationRecord): void {
    const layers = this.model.takeMoEStats().map((s) => ({
      layer: s.layer,
      load: s.load,
      importance: s.importance.map((v) => Math.round(v * 1000) / 1000),
      dropped: s.dropped,
      load_cv: Math.round(coefficientOfVariation(s.load) * 1e4) / 1e4,
      capacity: s.capacity,
    }));
    const aux = noGrad(() => this.model.moeAuxiliaryLoss());
    if (layers.length > 0) Object.assign(r, { moe: { layers, aux_loss: aux === null ? null : aux.item() } });
    aux?.dispose();
    super.iteration(r);
  }
}
