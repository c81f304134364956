/**
 * `weft bench data`: throughput of the whole `weft data prepare` pipeline (read → clean → filter →
 * language id → dedup → mix → tokenize → pack) on the ../shared/data corpora (TinyShakespeare,
 * WikiText-2, Romance of the Three Kingdoms), in MB of input text per second of wall time, with
 * worker threads on every core — once with exact dedup only and once with MinHash near-dedup.
 * The goals are ≥ 20 MB/s without MinHash and ≥ 5 MB/s with it, on 2 cores; the ratio
 * printed is against those goals (no reference pipeline such as datatrove is installed to run
 * beside it). Wall time includes starting the workers and loading the language-id model.
 *
 * The corpora are only ~5 MB, a second of work, so fixed costs (worker start, loading eld and the
 * tokenizer) weigh on that figure far more than on a real corpus. Each mode therefore also runs
 * on `copies` copies of the corpora, each copy's lines in its own seeded order — distinct
 * documents (exact dedup keeps them all; MinHash still finds many near-duplicates, as it should),
 * so every stage does its full work — which gives the steady-state rate.
 */
import type { Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { prepareData, type ProgressEvent } from '../data/pipeline/run.js';
import type { DedupMode } from '../data/pipeline/tasks.js';
import { packageRoot, round } from './common.js';

export const DATA_GOALS_MB_S: Record<'exact' | 'minhash', number> = { exact: 20, minhash: 5 };

export interface DataBenchRecord {
  bench: 'data';
  dedup: DedupMode;
  tokenizer: string;
  workers: number;
  files: string[];
  /** Copies of the corpora (line order shuffled per copy after the first). */
  copies: number;
  /** UTF-8 bytes of input text read. */
  mb: number;
  docs_in: number;
  docs_out: number;
  tokens: number;
  /** Seconds per stage (clean includes reading, filtering, sketching and, with a tokenizer file, tokenizing on the main thread; pack tokenizes only for the corpus character tokenizer). */
  clean_seconds: number;
  dedup_seconds: number;
  pack_seconds: number;
  seconds: number;
  /** CPU seconds of the whole process (every thread): steadier than wall time on a shared machine. */
  cpu_seconds: number;
  mb_per_s: number;
  /** MB per CPU second: mb_per_s on an idle machine is at most this times the cores used. */
  mb_per_cpu_s: number;
  goal_mb_per_s: number;
  /** mb_per_s / goal: at least 1 meets the goal. */
  ratio_to_goal: number;
}

export interface DataBenchOptions {
  files?: string[];
  workers?: number;
  /** Tokenizer directory; default GPT-2 from ../shared/data/gpt2 when present, else the corpus characters. */
  tokenizer?: string;
  modes?: DedupMode[];
  /** Runs per mode; the best is reported. */
  rounds?: number;
  /** Corpus sizes to run, in copies of the corpora (default [1, 4]). */
  copies?: number[];
}

/** Splitmix-style 32-bit generator for the copy shuffles. */
function seededRandom(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 0x100000000;
  };
}

/** Writes `copies` copies of the files into `dir` (copy 0 as is, the others with their lines shuffled); returns the paths. */
function writeCopies(files: readonly string[], copies: number, dir: string): string[] {
  const paths: string[] = [];
  for (let c = 0; c < copies; c++) {
    files.forEach((f, i) => {
      const text = readFileSync(f, 'utf8');
      let out = text;
      if (c > 0) {
        const lines = text.split('\n');
        const rand = seededRandom(c * 1000 + i);
        for (let k = lines.length - 1; k > 0; k--) {
          const j = Math.floor(rand() * (k + 1));
          [lines[k], lines[j]] = [lines[j]!, lines[k]!];
        }
        out = lines.join('\n');
      }
      const path = join(dir, `copy${c}-${i}-${basename(f)}`);
      writeFileSync(path, out);
      paths.push(path);
    });
  }
  return paths;
}

function sharedData(): string {
  return join(packageRoot(), '..', 'shared', 'data');
}

export function defaultDataBenchFiles(): string[] {
  const d = sharedData();
  return [join(d, 'tinyshakespeare', 'input.txt'), join(d, 'wikitext2', 'wiki.test.raw'), join(d, 'wikitext2', 'wiki.valid.tokens'), join(d, 'zh', 'sanguo_yanyi.txt')];
}

export async function benchData(options: DataBenchOptions = {}): Promise<DataBenchRecord[]> {
  const files = options.files ?? defaultDataBenchFiles();
  for (const f of files) if (!existsSync(f)) throw new Error(`bench data: ${f} does not exist (the default corpora live in ../shared/data; pass --file to use others)`);
  const workers = options.workers ?? availableParallelism();
  const gpt2 = join(sharedData(), 'gpt2');
  const tokenizer = options.tokenizer ?? (existsSync(join(gpt2, 'tokenizer.json')) ? gpt2 : undefined);
  const records: DataBenchRecord[] = [];
  for (const copies of options.copies ?? [1, 4]) {
    if (!Number.isInteger(copies) || copies < 1) throw new RangeError(`bench data: copies must be a positive integer, got ${copies}`);
    const corpusDir = mkdtempSync(join(tmpdir(), 'weft-bench-corpus-'));
    try {
      const inputs = copies === 1 ? files : writeCopies(files, copies, corpusDir);
      for (const dedup of options.modes ?? (['exact', 'minhash'] as DedupMode[])) records.push(await benchMode(inputs, files, copies, dedup, workers, tokenizer, options.rounds ?? 1));
    } finally {
      rmSync(corpusDir, { recursive: true, force: true });
    }
  }
  return records;
}

async function benchMode(inputs: string[], files: string[], copies: number, dedup: DedupMode, workers: number, tokenizer: string | undefined, rounds: number): Promise<DataBenchRecord> {
  {
    let best: DataBenchRecord | null = null;
    for (let round_ = 0; round_ < rounds; round_++) {
      const out = mkdtempSync(join(tmpdir(), 'weft-bench-data-'));
      const marks: Partial<Record<ProgressEvent['stage'], number>> = {};
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      try {
        const r = await prepareData({
          inputs,
          out,
          tokenizer,
          dedup,
          workers,
          // Plain text: blank-line-separated paragraphs are the documents.
          reader: { textMode: 'file', maxDocChars: 4000 },
          onProgress: (e) => (marks[e.stage] ??= performance.now()),
        });
        const end = performance.now();
        const cpu = process.cpuUsage(cpu0);
        const cpuSeconds = (cpu.user + cpu.system) / 1e6;
        const read = r.stats.stages.find((s) => s.name === 'read')!;
        const last = r.stats.stages.find((s) => s.name === 'mix')!;
        const seconds = (end - t0) / 1000;
        const mb = read.bytesIn / 1e6;
        const goal = DATA_GOALS_MB_S[dedup === 'minhash' ? 'minhash' : 'exact'];
        const rec: DataBenchRecord = {
          bench: 'data',
          dedup,
          tokenizer: tokenizer ?? 'characters of the corpus',
          workers,
          files,
          copies,
          mb: round(mb, 3),
          docs_in: read.docsIn,
          docs_out: last.docsIn,
          tokens: r.index.totalTokens,
          clean_seconds: round(((marks.dedup ?? end) - t0) / 1000, 3),
          dedup_seconds: round(((marks.pack ?? end) - (marks.dedup ?? end)) / 1000, 3),
          pack_seconds: round((end - (marks.pack ?? end)) / 1000, 3),
          seconds: round(seconds, 3),
          cpu_seconds: round(cpuSeconds, 3),
          mb_per_s: round(mb / seconds, 2),
          mb_per_cpu_s: round(mb / cpuSeconds, 2),
          goal_mb_per_s: goal,
          ratio_to_goal: round(mb / seconds / goal, 2),
        };
        if (best === null || rec.seconds < best.seconds) best = rec;
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }
    return best!;
  }
}

export function registerDataBench(bench: Command): void {
  bench
    .command('data')
    .description('MB/s of the whole data pipeline on the shared corpora, without and with MinHash (goals ≥ 20 and ≥ 5 MB/s on 2 cores)')
    .option('--json', 'one JSON object per line')
    .option('--workers <n>', 'worker threads (default: available cores)')
    .option('--tokenizer <dir>', 'tokenizer (default: GPT-2 from ../shared/data/gpt2)')
    .option('--file <path...>', 'corpora instead of the defaults')
    .option('--rounds <n>', 'runs per mode; the best is reported', '1')
    .option('--copies <list>', 'corpus sizes in copies of the corpora, comma-separated (later copies line-shuffled)', '1,4')
    .action(async (opts: { json?: boolean; workers?: string; tokenizer?: string; file?: string[]; rounds: string; copies: string }) => {
      const workers = opts.workers === undefined ? undefined : Number(opts.workers);
      if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0)) throw new Error(`bench data: --workers must be an integer ≥ 0, got '${opts.workers}'`);
      const rounds = Number(opts.rounds);
      if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`bench data: --rounds must be a positive integer, got '${opts.rounds}'`);
      const copies = opts.copies.split(',').map(Number);
      if (copies.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`bench data: --copies must be positive integers, got '${opts.copies}'`);
      const records = await benchData({ workers, tokenizer: opts.tokenizer, files: opts.file, rounds, copies });
      for (const r of records) {
        if (opts.json) {
          console.log(JSON.stringify(r));
          continue;
        }
        console.log(
          `data ×${r.copies} — dedup ${r.dedup.padEnd(7)} ${r.mb.toFixed(2)} MB (${r.docs_in} docs → ${r.docs_out}, ${r.tokens.toLocaleString('en-US')} tokens) in ${r.seconds.toFixed(2)} s ` +
            `[clean ${r.clean_seconds.toFixed(2)} s, dedup ${r.dedup_seconds.toFixed(2)} s, pack ${r.pack_seconds.toFixed(2)} s] = ${r.mb_per_s.toFixed(2)} MB/s on ${r.workers} workers (${r.cpu_seconds.toFixed(2)} CPU s, ${r.mb_per_cpu_s.toFixed(2)} MB/CPU-s); goal ${r.goal_mb_per_s} MB/s (ratio ${r.ratio_to_goal.toFixed(2)})`,
        );
      }
    });
}
