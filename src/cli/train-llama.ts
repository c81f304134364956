/**
 * `weft train llama`: pre-train a small LLaMA (or Qwen2-style, with --qkv-bias) on a text file or
 * `weft data prepare` shards with the same Trainer, flags and run directory as `weft train gpt`
 * (checkpoints are HF LlamaForCausalLM directories plus the trainer state; --resume continues one).
 */
import { type Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer } from '../data/char-tokenizer.js';
import { tokenizerFromSavedJSON } from '../data/tokenizer.js';
import { isShardDir, loadShardTokenizer, ShardDataset } from '../data/pipeline/shards.js';
import { TextDataset } from '../data/text-dataset.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { Llama } from '../models/llama.js';
import { Generator } from '../tensor/random.js';
import { hasCheckpoint, loadTrainerState, TOKENIZER_FILE } from '../train/checkpoint.js';
import { parseTrainConfig, TrainConfig, UsageError, definedOnly } from '../train/config.js';
import { ProgressReporter } from '../train/progress.js';
import { Trainer, type TrainResult } from '../train/trainer.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parsePositiveNumber, parseUnitInterval, summary, type TrainFlags, loopConfigFromFlags } from './train.js';

export interface LlamaShape {
  nLayer: number;
  nHead: number;
  nKVHead: number;
  nEmbd: number;
  /** SwiGLU width; default: LLaMA's 2/3 · 4 · nEmbd rounded up to a multiple of 32. */
  intermediateSize?: number;
  ropeTheta: number;
  qkvBias: boolean;
}

export const DEFAULT_LLAMA_SHAPE: LlamaShape = { nLayer: 4, nHead: 4, nKVHead: 2, nEmbd: 128, ropeTheta: 10000, qkvBias: false };

export interface TrainLlamaFlags extends TrainFlags {
  nKvHead?: number;
  intermediateSize?: number;
  ropeTheta?: number;
  qkvBias?: boolean;
}

export const DEFAULT_LLAMA_OUT = 'runs/llama';


export async function runTrainLlama(
  flags: TrainLlamaFlags,
  io: CommandIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<TrainResult & { outDir: string; numParameters: number; wallSeconds: number }> {
  const started = performance.now();
  const json = flags.json === true;
  const note = (s: string): void => void (json ? io.stderr : io.stdout).write(`${s}\n`);
  const outDir = flags.out ?? DEFAULT_LLAMA_OUT;
  if (flags.tokenizer !== undefined && flags.tokenizer !== 'char') throw new UsageError(`--tokenizer ${flags.tokenizer}: only 'char' is available; pass --tokenizer char`);
  if (flags.dropout !== undefined && flags.dropout > 0) throw new UsageError('--dropout: LLaMA has no dropout; drop the flag');
  if (flags.bias === true) throw new UsageError('--bias: LLaMA has no biases (use --qkv-bias for Qwen2-style q/k/v biases)');
  const given = loopConfigFromFlags(flags);
  const modelGenerator = new Generator(0);
  let config: TrainConfig;
  let tokenizer: Tokenizer;
  let model: Llama;
  let text: string | null = null;
  const readText = (path: string): string => {
    if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`--data ${path}: no such file (or a directory without shards); pass a UTF-8 text file`);
    const t = readFileSync(path, 'utf8');
    if (t.length === 0) throw new UsageError(`--data ${path}: the file is empty`);
    return t;
  };
  if (flags.resume === true) {
    if (!hasCheckpoint(outDir)) throw new UsageError(`--resume: ${outDir} holds no checkpoint (no trainer_state.json)`);
    const state = loadTrainerState(outDir);
    config = parseTrainConfig({ ...state.trainConfig, ...given });
    tokenizer = tokenizerFromSavedJSON(JSON.parse(readFileSync(join(outDir, TOKENIZER_FILE), 'utf8')));
    if (!isShardDir(config.data)) text = readText(config.data);
    model = await Llama.fromPretrained(outDir, { generator: modelGenerator });
    for (const [flag, mine, saved] of [
      ['--n-layer', flags.nLayer, model.config.nLayer],
      ['--n-head', flags.nHead, model.config.nHead],
      ['--n-kv-head', flags.nKvHead, model.config.nKVHead],
      ['--n-embd', flags.nEmbd, model.config.hiddenSize],
    ] as const) {
      if (mine !== undefined && mine !== saved) throw new UsageError(`${flag} ${mine} differs from the checkpoint's ${saved}: a resumed run keeps its model`);
    }
    note(`resuming ${outDir} at iteration ${state.iter} (max iters ${config.maxIters})`);
  } else {
    if (flags.data === undefined) throw new UsageError('--data: required; pass a UTF-8 text file, e.g. --data data/tinyshakespeare.txt');
    config = parseTrainConfig({ ...given, data: flags.data });
    if (isShardDir(config.data)) tokenizer = loadShardTokenizer(config.data);
    else {
      text = readText(config.data);
      tokenizer = CharTokenizer.fromText(text);
    }
    const s: LlamaShape = {
      ...DEFAULT_LLAMA_SHAPE,
      ...definedOnly({ nLayer: flags.nLayer, nHead: flags.nHead, nKVHead: flags.nKvHead, nEmbd: flags.nEmbd, intermediateSize: flags.intermediateSize, ropeTheta: flags.ropeTheta, qkvBias: flags.qkvBias }),
    };
    if (flags.nHead !== undefined && flags.nKvHead === undefined) s.nKVHead = Math.min(s.nKVHead, s.nHead);
    if (s.nEmbd % s.nHead !== 0) throw new UsageError(`--n-embd ${s.nEmbd} is not divisible by --n-head ${s.nHead}`);
    if ((s.nEmbd / s.nHead) % 2 !== 0) throw new UsageError(`--n-embd / --n-head = ${s.nEmbd / s.nHead} must be even (rotary embeddings rotate pairs)`);
    if (s.nHead % s.nKVHead !== 0) throw new UsageError(`--n-head ${s.nHead} is not a multiple of --n-kv-head ${s.nKVHead}`);
    modelGenerator.manualSeed(config.seed);
    model = new Llama(
      {
        modelType: s.qkvBias ? 'qwen2' : 'llama',
        vocabSize: tokenizer.vocabSize,
        hiddenSize: s.nEmbd,
        intermediateSize: s.intermediateSize ?? 32 * Math.ceil((8 * s.nEmbd) / 3 / 32),
        nLayer: s.nLayer,
        nHead: s.nHead,
        nKVHead: s.nKVHead,
        maxPositionEmbeddings: config.blockSize,
        rmsNormEps: 1e-5,
        ropeTheta: s.ropeTheta,
        tieWordEmbeddings: true,
        qkvBias: s.qkvBias,
      },
      { generator: modelGenerator },
    );
    if (hasCheckpoint(outDir)) note(`note: ${outDir} holds a checkpoint; this new run replaces it at its first save (pass --resume to continue it instead)`);
  }
  if (config.blockSize > model.config.maxPositionEmbeddings) {
    throw new UsageError(`--block-size ${config.blockSize} exceeds the model's context ${model.config.maxPositionEmbeddings}`);
  }
  let dataset: TextDataset | ShardDataset;
  try {
    dataset = text === null ? ShardDataset.open(config.data) : TextDataset.fromText(text, tokenizer);
  } catch (err) {
    throw new UsageError(`--data ${config.data}: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const split of ['train', 'val'] as const) {
    if (dataset.windows(split, config.blockSize) < 1) throw new UsageError(`--data ${config.data}: the ${split} split is too short for --block-size ${config.blockSize}`);
  }
  mkdirSync(outDir, { recursive: true });
  const c = model.config;
  note(
    `LLaMA: ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${c.nLayer} layers, ${c.nHead} heads / ${c.nKVHead} kv, ${c.hiddenSize} embd, ` +
      `SwiGLU ${c.intermediateSize}, context ${c.maxPositionEmbeddings}, vocab ${c.vocabSize}${c.qkvBias ? ', q/k/v biases' : ''}); run dir ${outDir}`,
  );
  const progress = new ProgressReporter({ out: io.stdout, err: io.stderr, json, maxIters: config.maxIters, logInterval: config.logInterval });
  const trainer = new Trainer({ model, tokenizer, dataset, config, outDir, generators: { model: modelGenerator }, progress, resume: flags.resume === true });
  const result = await trainer.run();
  const out = { ...result, outDir, config, numParameters: model.numParameters(), wallSeconds: (performance.now() - started) / 1000 };
  if (!json) {
    io.stdout.write(`${summary(out)}\n`);
    io.stdout.write(`generate from it: weft generate --model ${outDir} --tokenizer ${join(outDir, TOKENIZER_FILE)} --prompt "ROMEO:" --max-new-tokens 200\n`);
  }
  return out;
}

const d = TrainConfig.parse({ data: '-' });
const m = DEFAULT_LLAMA_SHAPE;

export function registerTrainLlama(train: Command, io?: CommandIO): void {
  train
    .command('llama')
    .description('pre-train a small LLaMA (RMSNorm, RoPE, SwiGLU, GQA) on a text file; same options as train gpt')
    .option('--data <file>', 'UTF-8 text file or `weft data prepare` shard directory (required unless --resume)')
    .option('--tokenizer <kind>', 'tokenizer: char (default: char)')
    .option('--n-layer <n>', `decoder layers (default: ${m.nLayer})`, parsePositiveInt)
    .option('--n-head <n>', `query heads (default: ${m.nHead})`, parsePositiveInt)
    .option('--n-kv-head <n>', `key/value heads, dividing --n-head (default: ${m.nKVHead})`, parsePositiveInt)
    .option('--n-embd <n>', `model width, a multiple of --n-head (default: ${m.nEmbd})`, parsePositiveInt)
    .option('--intermediate-size <n>', 'SwiGLU width (default: 8/3 · n-embd rounded up to 32)', parsePositiveInt)
    .option('--rope-theta <x>', `rotary base θ (default: ${m.ropeTheta})`, parsePositiveNumber)
    .option('--qkv-bias', 'Qwen2-style biases on q/k/v (saved as a qwen2 model)')
    .option('--block-size <n>', `context length in tokens (default: ${d.blockSize})`, parsePositiveInt)
    .option('--batch-size <n>', `sequences per micro-batch (default: ${d.batchSize})`, parsePositiveInt)
    .option('--max-iters <n>', `training iterations (default: ${d.maxIters})`, parseNonNegativeInt)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, parsePositiveNumber)
    .option('--min-lr <x>', `learning rate at the end of the cosine decay (default: ${d.minLr})`, parseNonNegativeNumber)
    .option('--warmup-iters <n>', `linear warm-up iterations (default: ${d.warmupIters})`, parseNonNegativeInt)
    .option('--lr-decay-iters <n>', `iteration where the cosine decay reaches --min-lr (default: ${d.lrDecayIters})`, parsePositiveInt)
    .option('--eval-interval <n>', `evaluate and checkpoint every n iterations (default: ${d.evalInterval})`, parsePositiveInt)
    .option('--eval-iters <n>', `batches per split in each evaluation (default: ${d.evalIters})`, parsePositiveInt)
    .option('--log-interval <n>', `plain-text progress line every n iterations (default: ${d.logInterval})`, parsePositiveInt)
    .option('--weight-decay <x>', `AdamW weight decay (default: ${d.weightDecay})`, parseNonNegativeNumber)
    .option('--beta1 <x>', `AdamW β1 (default: ${d.beta1})`, parseUnitInterval)
    .option('--beta2 <x>', `AdamW β2 (default: ${d.beta2})`, parseUnitInterval)
    .option('--grad-clip <x>', `clip the global gradient norm to x; 0 = off (default: ${d.gradClip})`, parseNonNegativeNumber)
    .option('--gradient-accumulation-steps <n>', `micro-batches per iteration (default: ${d.gradientAccumulationSteps})`, parsePositiveInt)
    .option('--seed <n>', `seed for initialisation and batches (default: ${d.seed})`, parseNonNegativeInt)
    .option('--out <dir>', `run directory (default: ${DEFAULT_LLAMA_OUT})`)
    .option('--resume', 'continue the run in --out where its checkpoint left off')
    .option('--json', 'one JSON line per iteration and per evaluation instead of the progress bar')
    .action(async (flags: TrainLlamaFlags) => {
      await runTrainLlama(flags, io);
    });
}
