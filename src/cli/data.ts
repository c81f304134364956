/**
 * `weft data prepare` (clean, deduplicate, filter, balance, tokenize and pack a corpus into token
 * shards; resumable) and `weft data stats` (what a run kept and dropped, as text or an HTML page).
 */
import { writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { prepareData, readRunStats, type PrepareOptions, type PrepareResult, type ProgressEvent } from '../data/pipeline/run.js';
import { renderStatsHtml } from '../data/pipeline/report.js';
import type { PipelineStats } from '../data/pipeline/stats.js';
import { FILTER_NAMES, type DedupMode, type FilterName } from '../data/pipeline/tasks.js';
import type { OutputStream } from '../train/progress.js';
import { parseNonNegativeInt, parsePositiveInt } from './train.js';

export interface DataIO {
  stdout: OutputStream;
  stderr: OutputStream;
}

const defaultIO = (): DataIO => ({ stdout: process.stdout, stderr: process.stderr });

export interface PrepareFlags {
  input: string[];
  textField?: string;
  textMode?: 'file' | 'line' | 'paragraph';
  format?: 'auto' | 'text' | 'jsonl' | 'csv' | 'tsv';
  out: string;
  tokenizer?: string;
  eos?: string;
  dedup?: DedupMode;
  filters?: FilterName[];
  languages?: string[];
  temperature?: number;
  maxLanguageEpochs?: number;
  seqLen?: number;
  shardSequences?: number;
  seed?: number;
  workers?: number;
  numPerm?: number;
  shingleSize?: number;
  threshold?: number;
  keepWork?: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export const parseFilters = (value: string): FilterName[] => {
  if (value.trim() === '' || value.trim() === 'none') return [];
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(FILTER_NAMES as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown filter '${n}'; expected a comma-separated list of ${FILTER_NAMES.join(', ')} (or none).`);
  }
  return names as FilterName[];
};

export const parseLanguages = (value: string): string[] => {
  const codes = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const c of codes) if (!/^[a-z]{2}$/.test(c)) throw new InvalidArgumentError(`'${c}' is not an ISO 639-1 code; expected e.g. en,zh.`);
  return codes;
};

const parseUnitClosed = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a number in [0, 1], e.g. 0.3.');
  return n;
};

const parseAtLeastOne = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 1) throw new InvalidArgumentError('expected a number ≥ 1, e.g. 4.');
  return n;
};

const parseOpenUnit = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError('expected a number in (0, 1), e.g. 0.8.');
  return n;
};

/** The progress display: a bar with rate and ETA on a terminal, plain lines on a pipe, JSON lines with --json. */
class PrepareProgress {
  private readonly tty: boolean;
  private lastDraw = 0;
  private lastStage = '';
  private readonly started = performance.now();
  private drawn = false;

  constructor(
    private readonly io: DataIO,
    private readonly json: boolean,
  ) {
    this.tty = !json && io.stderr.isTTY === true;
  }

  event(e: ProgressEvent): void {
    const now = performance.now();
    const stageChanged = e.stage !== this.lastStage;
    this.lastStage = e.stage;
    const seconds = (now - this.started) / 1000;
    if (this.json) {
      // Throttled to about four lines a second, but every stage change and the end are printed.
      if (!stageChanged && e.stage !== 'done' && now - this.lastDraw < 250) return;
      this.lastDraw = now;
      this.io.stdout.write(`${JSON.stringify({ event: 'progress', ...e, seconds: round(seconds, 2) })}\n`);
      return;
    }
    if (e.stage === 'done') {
      if (this.drawn) this.io.stderr.write('\n');
      return;
    }
    if (!stageChanged && now - this.lastDraw < (this.tty ? 100 : 5000)) return;
    this.lastDraw = now;
    const line = describe(e, seconds);
    if (this.tty) {
      const width = Math.max(40, (this.io.stderr.columns ?? 100) - 1);
      this.io.stderr.write(`\r${line.slice(0, width).padEnd(width)}`);
      this.drawn = true;
    } else {
      this.io.stderr.write(`${line}\n`);
    }
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function bar(fraction: number | null, width = 20): string {
  if (fraction === null) return '';
  const n = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
}

function describe(e: ProgressEvent, seconds: number): string {
  if (e.stage === 'clean' || e.stage === 'boilerplate') {
    const rate = seconds > 0 ? e.bytes / 1e6 / seconds : 0;
    const eta = e.fraction !== null && e.fraction > 0 && e.fraction < 1 ? ` ETA ${formatSeconds((seconds * (1 - e.fraction)) / e.fraction)}` : '';
    return `${e.stage} ${bar(e.fraction)}${e.docs.toLocaleString('en-US')} docs, ${(e.bytes / 1e6).toFixed(1)} MB, ${rate.toFixed(1)} MB/s${eta}`;
  }
  if (e.stage === 'dedup') return 'dedup: clustering near-duplicates…';
  return `pack ${bar(e.fraction)}${e.tokens.toLocaleString('en-US')} tokens in ${e.shards} shard${e.shards === 1 ? '' : 's'}`;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Turns flags into a prepareData call. */
export async function runPrepare(flags: PrepareFlags, io: DataIO = defaultIO()): Promise<PrepareResult> {
  const progress = new PrepareProgress(io, flags.json === true);
  const minhash = { numPerm: flags.numPerm, shingleSize: flags.shingleSize, threshold: flags.threshold };
  const options: PrepareOptions = {
    inputs: flags.input,
    out: flags.out,
    textField: flags.textField,
    reader: { textMode: flags.textMode, format: flags.format },
    tokenizer: flags.tokenizer,
    eos: flags.eos,
    dedup: flags.dedup,
    filters: flags.filters,
    languages: flags.languages,
    temperature: flags.temperature,
    maxLanguageEpochs: flags.maxLanguageEpochs,
    seqLen: flags.seqLen,
    shardSequences: flags.shardSequences,
    seed: flags.seed,
    workers: flags.workers,
    minhash: Object.fromEntries(Object.entries(minhash).filter(([, v]) => v !== undefined)),
    keepWork: flags.keepWork,
    onProgress: (e) => progress.event(e),
  };
  const r = await prepareData(options);
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ event: 'done', out: r.out, resumed: r.resumed, seconds: round(r.seconds, 2), shards: r.index.shards.length, tokens: r.index.totalTokens, dtype: r.index.dtype, vocabSize: r.index.vocabSize, output: r.stats.output })}\n`);
  } else {
    io.stdout.write(`${summaryLines(r.stats).join('\n')}\n`);
    io.stdout.write(`${r.resumed ? 'resumed and finished' : 'done'}: ${r.index.totalTokens.toLocaleString('en-US')} tokens (${r.index.dtype}) in ${r.index.shards.length} shard${r.index.shards.length === 1 ? '' : 's'} in ${r.out}\n`);
    io.stdout.write(`train on it: weft train gpt --data ${r.out}\n`);
  }
  return r;
}

/** The text summary of a run's statistics (stages, drop rules, languages, duplicates, output). */
export function summaryLines(stats: PipelineStats): string[] {
  const lines: string[] = [];
  const w = Math.max(...stats.stages.map((s) => s.name.length), 5);
  lines.push(`${'stage'.padEnd(w)}  ${'docs in'.padStart(10)}  ${'docs out'.padStart(10)}  ${'MB in'.padStart(9)}  ${'MB out'.padStart(9)}`);
  for (const s of stats.stages) {
    lines.push(`${s.name.padEnd(w)}  ${String(s.docsIn).padStart(10)}  ${String(s.docsOut).padStart(10)}  ${(s.bytesIn / 1e6).toFixed(2).padStart(9)}  ${(s.bytesOut / 1e6).toFixed(2).padStart(9)}`);
    const drops = Object.entries(s.drops).sort((a, b) => b[1].count - a[1].count);
    for (const [rule, d] of drops) lines.push(`${''.padEnd(w)}    dropped ${d.count} by ${rule}`);
  }
  if (stats.languages) {
    const langs = Object.entries(stats.languages).sort((a, b) => b[1].bytes - a[1].bytes);
    lines.push(`languages: ${langs.map(([l, v]) => `${l} ${v.docs} docs / ${(v.bytes / 1e6).toFixed(2)} MB`).join(', ')}`);
  }
  if (stats.duplicates) lines.push(`duplicates (${stats.duplicates.method}): ${stats.duplicates.docsRemoved} removed, ${stats.duplicates.clusters} clusters, largest ${stats.duplicates.largestCluster}`);
  if (stats.output) lines.push(`output: ${Object.entries(stats.output).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return lines;
}

export function runStats(dir: string, flags: { html?: string; json?: boolean }, io: DataIO = defaultIO()): PipelineStats {
  const stats = readRunStats(dir);
  if (flags.json) io.stdout.write(`${JSON.stringify(stats)}\n`);
  else io.stdout.write(`${summaryLines(stats).join('\n')}\n`);
  if (flags.html !== undefined) {
    writeFileSync(flags.html, renderStatsHtml(stats, `weft data: ${dir}`));
    if (!flags.json) io.stdout.write(`wrote ${flags.html}\n`);
  }
  return stats;
}

export function registerData(program: Command, io?: DataIO): void {
  const data = program.command('data').description('prepare pre-training data: clean, deduplicate, filter, balance, tokenize, pack');
  data
    .command('prepare')
    .description('clean, deduplicate, filter, mix, tokenize and pack a corpus into token shards (resumable: rerun the same command after an interruption)')
    .requiredOption('--input <glob>', 'input file, directory or glob (repeatable): text, JSONL, CSV/TSV, optionally .gz', collect)
    .option('--text-field <name>', 'JSONL field / CSV column holding the text (default: text)')
    .addOption(new Option('--text-mode <mode>', 'plain text: one document per file, line or blank-line-separated paragraph (default: file)').choices(['file', 'line', 'paragraph']))
    .addOption(new Option('--format <format>', 'input format (default: auto, by extension)').choices(['auto', 'text', 'jsonl', 'csv', 'tsv']))
    .requiredOption('--out <dir>', 'output directory for the shards, index.json, tokenizer.json and stats.json')
    .option('--tokenizer <dir>', 'tokenizer file or directory (tokenizer.json, GPT-2/BERT/llama2.c/GGUF files; default: characters of the cleaned corpus)')
    .option('--eos <token>', "end-of-document token (default: the tokenizer's end-of-text token)")
    .addOption(new Option('--dedup <mode>', 'deduplication (default: minhash, which includes exact)').choices(['exact', 'minhash', 'none']))
    .option('--filters <list>', `comma-separated filters from ${FILTER_NAMES.join(', ')}, or none (default: gopher,c4,cjk,pii)`, parseFilters)
    .option('--languages <list>', 'keep only these languages, ISO 639-1, e.g. en,zh (default: all)', parseLanguages)
    .option('--temperature <alpha>', 'language sampling temperature α: p_i ∝ n_i^α (default: 0.3; 1 keeps natural sizes)', parseUnitClosed)
    .option('--max-language-epochs <n>', 'most copies the temperature reweighting may give a language, UniMax-style (default: 4)', parseAtLeastOne)
    .option('--seq-len <n>', 'tokens per packed sequence (default: 1024)', parsePositiveInt)
    .option('--shard-sequences <n>', 'sequences per shard (default: about 16M tokens per shard)', parsePositiveInt)
    .option('--seed <n>', 'seed for mixing and MinHash (default: 1)', parseNonNegativeInt)
    .option('--workers <n>', 'worker threads (default: available cores; 0 = in-process)', parseNonNegativeInt)
    .option('--num-perm <n>', 'MinHash permutations (default: 128)', parsePositiveInt)
    .option('--shingle-size <n>', 'MinHash shingle size in words (default: 5)', parsePositiveInt)
    .option('--threshold <j>', 'near-duplicate Jaccard threshold (default: 0.7)', parseOpenUnit)
    .option('--keep-work', 'keep the intermediate files in <out>/.work')
    .option('--json', 'JSON lines (progress and a final summary) instead of the progress bar')
    .action(async (flags: PrepareFlags) => {
      await runPrepare(flags, io);
    });
  data
    .command('stats')
    .description('statistics of a prepared directory: documents in/out per stage, drops per filter, languages, duplicates')
    .argument('<dir>', 'directory written by weft data prepare')
    .option('--html <file>', 'also write a self-contained HTML report')
    .option('--json', 'print the statistics as JSON')
    .action((dir: string, flags: { html?: string; json?: boolean }) => {
      runStats(dir, flags, io);
    });
}
