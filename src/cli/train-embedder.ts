/**
 * `weft train embedder`: contrastive fine-tuning of a BERT-family encoder on the user's corpus —
 * labelled (anchor, positive) pairs from a JSONL file with in-batch negatives, or SimCSE on the
 * sentences of any documents `weft rag ingest` reads. Saves a sentence-transformers directory.
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { SentenceTransformer } from '../rag/embeddings.js';
import { loadPath } from '../rag/loaders.js';
import { sentenceSpans } from '../rag/splitters.js';
import { type TextPair, trainEmbedder, type TrainEmbedderResult } from '../rag/train-embedder.js';
import { ProgressReporter } from '../train/progress.js';
import { UsageError } from '../train/config.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parsePositiveNumber } from './train.js';

export interface TrainEmbedderFlags {
  model: string;
  data?: string;
  pairs?: string;
  anchorField?: string;
  positiveField?: string;
  out: string;
  steps?: number;
  batchSize?: number;
  lr?: number;
  temperature?: number;
  warmupSteps?: number;
  gradClip?: number;
  maxTexts?: number;
  seed?: number;
  json?: boolean;
}

export const EMBEDDER_DEFAULTS = { steps: 100, batchSize: 16, lr: 2e-5, temperature: 0.05, maxTexts: 10_000, minSentence: 20 } as const;

export function readPairs(path: string, anchorField = 'anchor', positiveField = 'positive'): TextPair[] {
  const pairs: TextPair[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch (e) {
        throw new UsageError(`--pairs: ${path}:${i + 1}: invalid JSON (${(e as Error).message})`);
      }
      const a = rec[anchorField];
      const p = rec[positiveField];
      if (typeof a !== 'string' || typeof p !== 'string') throw new UsageError(`--pairs: ${path}:${i + 1}: needs string fields '${anchorField}' and '${positiveField}' (choose them with --anchor-field / --positive-field)`);
      pairs.push({ anchor: a, positive: p });
    });
  return pairs;
}

/** The sentences of the documents a path names (for SimCSE), at least minSentence characters, deduplicated. */
export async function corpusSentences(path: string, max: number): Promise<string[]> {
  const seen = new Set<string>();
  for (const doc of await loadPath(path)) {
    for (const s of sentenceSpans(doc.text)) {
      const t = doc.text.slice(s.start, s.end).replace(/\s+/g, ' ');
      if (t.length >= EMBEDDER_DEFAULTS.minSentence) seen.add(t);
      if (seen.size >= max) return [...seen];
    }
  }
  return [...seen];
}

export async function runTrainEmbedder(flags: TrainEmbedderFlags, io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<TrainEmbedderResult> {
  if ((flags.data === undefined) === (flags.pairs === undefined)) throw new UsageError('give exactly one of --data <documents> (SimCSE on their sentences) or --pairs <jsonl of anchor/positive>');
  const model = await SentenceTransformer.load(flags.model);
  const pairs = flags.pairs !== undefined ? readPairs(flags.pairs, flags.anchorField, flags.positiveField) : undefined;
  const texts = flags.data !== undefined ? await corpusSentences(flags.data, flags.maxTexts ?? EMBEDDER_DEFAULTS.maxTexts) : undefined;
  const count = pairs?.length ?? texts?.length ?? 0;
  if (count < 2) throw new UsageError(`${flags.pairs !== undefined ? '--pairs' : '--data'}: found ${count} ${flags.pairs !== undefined ? 'pairs' : `sentences of ≥ ${EMBEDDER_DEFAULTS.minSentence} characters`}; need at least 2`);
  const steps = flags.steps ?? EMBEDDER_DEFAULTS.steps;
  const progress = new ProgressReporter({ out: io.stdout, err: io.stderr, json: flags.json === true, maxIters: steps });
  progress.note(`train embedder: ${flags.model} (${model.spec.note}), ${pairs !== undefined ? `${count} pairs, in-batch negatives` : `${count} sentences, SimCSE`}, ${steps} steps`);
  const r = await trainEmbedder({
    model,
    pairs,
    texts,
    outDir: flags.out,
    steps,
    batchSize: flags.batchSize ?? EMBEDDER_DEFAULTS.batchSize,
    lr: flags.lr ?? EMBEDDER_DEFAULTS.lr,
    temperature: flags.temperature ?? EMBEDDER_DEFAULTS.temperature,
    warmupSteps: flags.warmupSteps,
    gradClip: flags.gradClip,
    seed: flags.seed,
    progress,
  });
  progress.note(`done: loss ${r.firstLoss.toFixed(4)} → ${r.lastLoss.toFixed(4)} over ${r.steps} steps; sentence-transformers model in ${r.outDir} (use it: weft rag ingest <docs> --store <dir> --embedder ${r.outDir})`);
  return r;
}

const parseTemperature = (v: string): number => {
  const n = parsePositiveNumber(v);
  if (n > 1) throw new InvalidArgumentError('expected a temperature in (0, 1], e.g. 0.05.');
  return n;
};

export function registerTrainEmbedder(train: Command, io?: CommandIO): void {
  const d = EMBEDDER_DEFAULTS;
  train
    .command('embedder')
    .description('contrastive fine-tuning of a BERT-family sentence embedder (in-batch negatives; SimCSE for unlabelled text); saves a sentence-transformers directory')
    .requiredOption('--model <dir>', 'sentence-transformers or BERT directory to start from (e.g. all-MiniLM-L6-v2)')
    .option('--data <path>', 'documents (file, directory or glob): SimCSE on their sentences')
    .option('--pairs <file>', 'JSONL of {"anchor": …, "positive": …} pairs (e.g. question → passage)')
    .option('--anchor-field <name>', 'pairs field holding the anchor (default: anchor)')
    .option('--positive-field <name>', 'pairs field holding the positive (default: positive)')
    .requiredOption('--out <dir>', 'output sentence-transformers directory')
    .option('--steps <n>', `optimizer steps (default: ${d.steps})`, parsePositiveInt)
    .option('--batch-size <n>', `examples per batch; the others in a batch are the negatives (default: ${d.batchSize})`, parsePositiveInt)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, parsePositiveNumber)
    .option('--warmup-steps <n>', 'linear warm-up steps (default: 10% of --steps)', parseNonNegativeInt)
    .option('--temperature <t>', `softmax temperature τ over cosine similarities (default: ${d.temperature})`, parseTemperature)
    .option('--grad-clip <x>', 'clip the global gradient norm; 0 = off (default: 1)', parseNonNegativeNumber)
    .option('--max-texts <n>', `sentences taken from --data at most (default: ${d.maxTexts})`, parsePositiveInt)
    .option('--seed <n>', 'shuffling seed (default: 1)', parseNonNegativeInt)
    .option('--json', 'one JSON line per step instead of the progress bar')
    .action(async (flags: TrainEmbedderFlags) => {
      await runTrainEmbedder(flags, io);
    });
}
