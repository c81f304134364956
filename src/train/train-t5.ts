/**
 * Pre-training a T5 with span corruption on a text file, end to end: a character vocabulary with
 * T5's special ids (pad 0, EOS 1, sentinels <extra_id_i> counting down from the top), random windows
 * of raw text corrupted on the fly (noise density 0.15, mean span 3) so that every encoder input is
 * exactly --block-size tokens, then the shared Trainer. `weft train t5` is a thin layer over this.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Tokenizer } from '../data/tokenizer.js';
import { spanCorruption, spanCorruptionLengths, T5_MEAN_NOISE_SPAN_LENGTH, T5_NOISE_DENSITY } from '../data/objectives/span-corruption.js';
import { T5ForConditionalGeneration, t5Preset, type T5Config } from '../models/t5.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { hasCheckpoint, loadTrainerState, TOKENIZER_FILE } from './checkpoint.js';
import { parseTrainConfig, type TrainConfig, type TrainConfigInput, UsageError, definedOnly } from './config.js';
import { type OutputStream, ProgressReporter, runOutput } from './progress.js';
import { Trainer, type TrainableModel, type TrainResult } from './trainer.js';

export const T5_PAD = 0;
export const T5_EOS = 1;

/** Characters plus T5's specials: 0 <pad>, 1 </s>, 2… the characters, then <extra_id_{n−1}> … <extra_id_0>. */
export class T5CharTokenizer implements Tokenizer {
  private readonly index: Map<string, number>;

  constructor(
    readonly chars: readonly string[],
    readonly numSentinels = 100,
  ) {
    this.index = new Map(chars.map((c, i) => [c, i + 2]));
  }

  static fromText(text: string, numSentinels = 100): T5CharTokenizer {
    return new T5CharTokenizer([...new Set(text)].sort(), numSentinels);
  }

  static fromJSON(json: unknown): T5CharTokenizer {
    const j = json as { type?: unknown; chars?: unknown; numSentinels?: unknown };
    if (j?.type !== 't5-char' || !Array.isArray(j.chars) || !j.chars.every((c) => typeof c === 'string') || typeof j.numSentinels !== 'number') {
      throw new Error('T5CharTokenizer.fromJSON: expected {"type":"t5-char","chars":[...],"numSentinels":n}');
    }
    return new T5CharTokenizer(j.chars as string[], j.numSentinels);
  }

  get vocabSize(): number {
    return this.chars.length + 2 + this.numSentinels;
  }

  /** Id of <extra_id_i> (T5's convention: counting down from the last id). */
  sentinelId(i: number): number {
    if (!(Number.isInteger(i) && i >= 0 && i < this.numSentinels)) throw new RangeError(`T5CharTokenizer: no sentinel <extra_id_${i}> (the vocabulary has ${this.numSentinels})`);
    return this.vocabSize - 1 - i;
  }

  encode(text: string): number[] {
    return [...text].map((c) => {
      const id = this.index.get(c);
      if (id === undefined) throw new RangeError(`T5CharTokenizer.encode: character ${JSON.stringify(c)} is not in the vocabulary`);
      return id;
    });
  }

  decode(ids: readonly number[]): string {
    const first = this.vocabSize - this.numSentinels;
    return ids
      .map((id) => (id === T5_PAD ? '' : id === T5_EOS ? '</s>' : id >= first ? `<extra_id_${this.vocabSize - 1 - id}>` : (this.chars[id - 2] ?? '')))
      .join('');
  }

  toJSON(): unknown {
    return { type: 't5-char', chars: this.chars, numSentinels: this.numSentinels };
  }
}

/** Random raw windows, span-corrupted: x = encoder inputs [B, blockSize], y = labels [B, targetsLength]. */
export class SpanCorruptionDataset {
  readonly train: Int32Array;
  readonly val: Int32Array;

  constructor(
    ids: readonly number[],
    readonly sentinelId: (i: number) => number,
  ) {
    const n = Math.floor(ids.length * 0.9);
    this.train = Int32Array.from(ids.slice(0, n));
    this.val = Int32Array.from(ids.slice(n));
  }

  /** Raw tokens per example for encoder inputs of `blockSize` (T5's random_spans_helper). */
  static tokensLength(blockSize: number): number {
    return spanCorruptionLengths(blockSize, T5_NOISE_DENSITY, T5_MEAN_NOISE_SPAN_LENGTH).tokensLength;
  }

  batch(split: 'train' | 'val', batchSize: number, blockSize: number, generator: Generator): { x: Tensor; y: Tensor } {
    const data = split === 'train' ? this.train : this.val;
    const { tokensLength, targetsLength } = spanCorruptionLengths(blockSize);
    if (data.length < tokensLength) {
      throw new RangeError(`SpanCorruptionDataset.batch: the ${split} split has ${data.length} tokens, fewer than the ${tokensLength} one example of block size ${blockSize} needs`);
    }
    const x = new Int32Array(batchSize * blockSize);
    const y = new Int32Array(batchSize * targetsLength);
    for (let b = 0; b < batchSize; b++) {
      const start = generator.int(0, data.length - tokensLength + 1);
      const ex = spanCorruption(data.subarray(start, start + tokensLength), { sentinelId: this.sentinelId, eosId: T5_EOS }, { generator });
      x.set(ex.inputs, b * blockSize);
      y.set(ex.targets, b * targetsLength);
    }
    return { x: Tensor.fromArray(x, [batchSize, blockSize], 'i32'), y: Tensor.fromArray(y, [batchSize, targetsLength], 'i32') };
  }
}

/** The trainer's view of a T5: forward(inputs, labels) is transformers' labels= loss. */
export function trainableT5(model: T5ForConditionalGeneration): TrainableModel {
  return {
    forward: (x, y) => model.forward({ inputIds: x, ...(y ? { labels: y } : { decoderInputIds: Tensor.full([x.shape[0]!, 1], model.config.decoderStartTokenId, 'i32') }) }),
    train: (mode) => model.train(mode),
    eval: () => model.eval(),
    namedParameters: () => model.namedParameters(),
    savePretrained: (dir) => model.savePretrained(dir),
  };
}

export interface T5Shape {
  variant: 'v1.0' | 'v1.1';
  dModel: number;
  dKv: number;
  dFf: number;
  numLayers: number;
  numHeads: number;
  dropout: number;
}

export const DEFAULT_T5_SHAPE: T5Shape = { variant: 'v1.1', dModel: 128, dKv: 32, dFf: 256, numLayers: 2, numHeads: 4, dropout: 0 };

export interface TrainT5Options {
  config: Partial<TrainConfigInput>;
  model?: Partial<T5Shape>;
  outDir: string;
  resume?: boolean;
  json?: boolean;
  stdout?: OutputStream;
  stderr?: OutputStream;
}

export interface TrainT5Result extends TrainResult {
  outDir: string;
  config: TrainConfig;
  numParameters: number;
  wallSeconds: number;
  model: T5ForConditionalGeneration;
  tokenizer: T5CharTokenizer;
  dataset: SpanCorruptionDataset;
}

export async function trainT5(options: TrainT5Options): Promise<TrainT5Result> {
  const started = performance.now();
  const { stdout, stderr, json, note } = runOutput(options);
  const { outDir } = options;
  const resume = options.resume === true;
  const modelGenerator = new Generator(0);
  let config: TrainConfig;
  let tokenizer: T5CharTokenizer;
  let model: T5ForConditionalGeneration;

  if (resume) {
    if (!hasCheckpoint(outDir)) throw new UsageError(`--resume: ${outDir} holds no checkpoint (no trainer_state.json); drop --resume or pass the --out of an existing run`);
    if (Object.values(definedOnly(options.model ?? {})).length > 0) throw new UsageError('--resume keeps the saved model: drop the model-shape flags');
    const state = loadTrainerState(outDir);
    config = parseTrainConfig({ ...state.trainConfig, ...definedOnly(options.config) });
    tokenizer = T5CharTokenizer.fromJSON(JSON.parse(readFileSync(join(outDir, TOKENIZER_FILE), 'utf8')));
    model = await T5ForConditionalGeneration.fromPretrained(outDir, { generator: modelGenerator });
    note(`resuming ${outDir} at iteration ${state.iter} (max iters ${config.maxIters})`);
  } else {
    if (options.config.data === undefined) throw new UsageError('--data: required; pass a UTF-8 text file, e.g. --data data/tinyshakespeare.txt');
    config = parseTrainConfig({ ...definedOnly(options.config), data: options.config.data });
    tokenizer = T5CharTokenizer.fromText(readText(config.data));
    const s = { ...DEFAULT_T5_SHAPE, ...definedOnly(options.model ?? {}) };
    if (s.variant !== 'v1.0' && s.variant !== 'v1.1') throw new UsageError(`--variant ${String(s.variant)}: expected v1.0 (ReLU, tied head) or v1.1 (gated GELU)`);
    modelGenerator.manualSeed(config.seed);
    const shape = { vocabSize: tokenizer.vocabSize, dModel: s.dModel, dKv: s.dKv, dFf: s.dFf, numLayers: s.numLayers, numHeads: s.numHeads, dropoutRate: s.dropout };
    model = new T5ForConditionalGeneration(t5Preset(s.variant, shape), { generator: modelGenerator });
  }
  if (config.blockSize < 8) throw new UsageError(`--block-size ${config.blockSize}: span corruption needs encoder inputs of at least 8 tokens`);
  const text = readText(config.data);
  let dataset: SpanCorruptionDataset;
  try {
    dataset = new SpanCorruptionDataset(tokenizer.encode(text), (i) => tokenizer.sentinelId(i));
  } catch (err) {
    throw new UsageError(`--data ${config.data}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const need = SpanCorruptionDataset.tokensLength(config.blockSize);
  for (const split of ['train', 'val'] as const) {
    if (dataset[split].length < need) {
      throw new UsageError(`--data ${config.data}: the ${split} split has ${dataset[split].length} characters, fewer than the ${need} one example of --block-size ${config.blockSize} needs; use a longer text or a smaller --block-size`);
    }
  }
  mkdirSync(outDir, { recursive: true });
  const c: T5Config = model.config;
  note(
    `T5 ${c.gated ? 'v1.1 (gated GELU)' : 'v1.0 (ReLU, tied head)'}: ${(model.numParameters() / 1e6).toFixed(2)}M parameters ` +
      `(${c.numLayers}+${c.numDecoderLayers} layers, ${c.numHeads} heads × ${c.dKv}, d_model ${c.dModel}, d_ff ${c.dFf}, vocab ${c.vocabSize})`,
  );
  note(`span corruption: ${need} characters → ${config.blockSize} input / ${spanCorruptionLengths(config.blockSize).targetsLength} target tokens; run dir ${outDir}`);
  const progress = new ProgressReporter({ out: stdout, err: stderr, json, maxIters: config.maxIters, logInterval: config.logInterval });
  const trainer = new Trainer({ model: trainableT5(model), tokenizer, dataset, config, outDir, generators: { model: modelGenerator }, progress, resume });
  const result = await trainer.run();
  return { ...result, outDir, config, numParameters: model.numParameters(), wallSeconds: (performance.now() - started) / 1000, model, tokenizer, dataset };
}

function readText(path: string): string {
  if (!existsSync(path)) throw new UsageError(`--data ${path}: no such file; pass the path of a UTF-8 text file`);
  if (!statSync(path).isFile()) throw new UsageError(`--data ${path}: not a file; pass a UTF-8 text file`);
  const text = readFileSync(path, 'utf8');
  if (text.length === 0) throw new UsageError(`--data ${path}: the file is empty`);
  return text;
}
