/**
 * `weft eval`: run benchmark tasks against a local model or an OpenAI-compatible endpoint
 * (`eval run`), turn results directories into one HTML page (`eval report`), and compute metrics on
 * files (`eval metric`, in eval-metric.ts).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { EvalBackend } from '../eval/backends/backend.js';
import { LocalBackend } from '../eval/backends/local.js';
import { OpenAIBackend } from '../eval/backends/openai.js';
import type { EfficiencySummary } from '../eval/efficiency.js';
import { evaluateTask, groupMetrics, type HarnessOptions, type MetricValue, type ProgressSink, type RobustnessValue, robustnessDrops, type TaskOutcome, weftVersion } from '../eval/harness.js';
import { htmlReport, makeResults, markdownSummary, readResultsDir, writeRun } from '../eval/report.js';
import { parsePerturbations, PERTURBATIONS, type Perturbation } from '../eval/robustness.js';
import { detectIsolation } from '../eval/sandbox.js';
import { defaultDataRoot, loadTasks } from '../eval/tasks/loader.js';
import { UsageError } from '../train/config.js';
import { formatDuration, type OutputStream } from '../train/progress.js';
import { registerEvalMetric } from './eval-metric.js';
import { type CommandIO, parsePositiveInt, parseNonNegativeInt } from './train.js';

const defaultIO = (): CommandIO => ({ stdout: process.stdout, stderr: process.stderr });

export interface EvalRunFlags {
  model?: string;
  baseUrl?: string;
  apiKey?: string;
  apiModel?: string;
  chat?: boolean;
  tasks: string;
  limit?: number;
  out?: string;
  dataDir?: string;
  seed?: number;
  robustness?: string | boolean;
  bootstrapIters?: number;
  concurrency?: number;
  timeoutMs?: number;
  maxRetries?: number;
  samples?: boolean;
}

/** Progress on stderr: a bar redrawn in place on a terminal, a line per 10% otherwise. */
export class EvalProgress implements ProgressSink {
  private label = '';
  private total = 0;
  private started = 0;
  private lastTenth = -1;
  private drawn = false;

  constructor(private readonly out: OutputStream) {}

  start(label: string, total: number): void {
    this.finishLine();
    this.label = label;
    this.total = total;
    this.started = performance.now();
    this.lastTenth = -1;
    this.advance(0);
  }

  advance(done: number): void {
    const frac = this.total > 0 ? done / this.total : 1;
    const elapsed = (performance.now() - this.started) / 1000;
    const eta = done > 0 ? formatDuration((elapsed / done) * (this.total - done)) : '--';
    if (this.out.isTTY === true) {
      const width = 24;
      const filled = Math.round(frac * width);
      let line = `${this.label} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${done}/${this.total} ETA ${eta}`;
      const cols = this.out.columns;
      if (cols !== undefined && cols > 20 && line.length >= cols) line = line.slice(0, cols - 1);
      this.out.write(`\r${line}\x1b[K`);
      this.drawn = true;
      return;
    }
    const tenth = Math.floor(frac * 10);
    if (tenth > this.lastTenth) {
      this.lastTenth = tenth;
      this.out.write(`${this.label}: ${done}/${this.total} (${Math.round(frac * 100)}%), ${formatDuration(elapsed)} elapsed, ETA ${eta}\n`);
    }
  }

  end(): void {
    this.finishLine();
  }

  note(text: string): void {
    this.finishLine();
    this.out.write(`${text}\n`);
  }

  private finishLine(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export interface EvalRunResult {
  outDir: string;
  metrics: MetricValue[];
  outcomes: TaskOutcome[];
}

export async function runEval(flags: EvalRunFlags, io: CommandIO = defaultIO(), backendOverride?: EvalBackend): Promise<EvalRunResult> {
  if (backendOverride === undefined && (flags.model === undefined) === (flags.baseUrl === undefined)) {
    throw new UsageError('give exactly one of --model <run dir> (a local Weft model) or --base-url <url> (an OpenAI-compatible endpoint)');
  }
  const names = flags.tasks.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError('--tasks: give at least one task, e.g. --tasks sst2,wikitext');
  let perturbations: Perturbation[] = [];
  if (flags.robustness === true) perturbations = [...PERTURBATIONS];
  else if (typeof flags.robustness === 'string') {
    try {
      perturbations = parsePerturbations(flags.robustness);
    } catch (e) {
      throw new UsageError(`--robustness: ${(e as Error).message}`);
    }
  }
  const dataRoot = resolve(flags.dataDir ?? defaultDataRoot());
  const tasks = loadTasks(names, { dataRoot });
  const progress = new EvalProgress(io.stderr);

  let backend: EvalBackend;
  if (backendOverride !== undefined) backend = backendOverride;
  else if (flags.model !== undefined) backend = await LocalBackend.fromDir(flags.model);
  else {
    backend = new OpenAIBackend({
      baseUrl: flags.baseUrl!,
      apiKey: flags.apiKey ?? process.env.OPENAI_API_KEY,
      model: flags.apiModel ?? 'default',
      generationApi: flags.chat === true ? 'chat' : 'completions',
      ...(flags.timeoutMs !== undefined ? { timeoutMs: flags.timeoutMs } : {}),
      ...(flags.maxRetries !== undefined ? { maxRetries: flags.maxRetries } : {}),
      ...(flags.concurrency !== undefined ? { concurrency: flags.concurrency } : {}),
    });
  }
  const iters = flags.bootstrapIters ?? 1000;
  const h: HarnessOptions = { backend, limit: flags.limit, seed: flags.seed ?? 1234, bootstrapIters: iters, progress };
  const needsSandbox = tasks.some((t) => t.spec.execution !== undefined);
  const isolation = needsSandbox ? detectIsolation() : null;
  const warnings: string[] = [];
  if (isolation !== null && isolation !== 'namespaces') {
    warnings.push(`code ran with sandbox isolation "${isolation}" (no user/mount/pid namespaces here): protection rests on the audit hook and resource limits`);
  }

  const outDir = resolve(flags.out ?? `eval-results/${stamp(new Date())}`);
  const started = performance.now();
  const outcomes: TaskOutcome[] = [];
  for (const task of tasks) {
    const o = await evaluateTask(task, h);
    outcomes.push(o);
    progress.note(`${o.task}: ${o.metrics.map((m) => `${m.metric}${m.filter !== null ? `[${m.filter}]` : ''}=${m.value.toFixed(4)}`).join(', ')} (n=${o.n}, ${o.efficiency.wall_s.toFixed(1)} s)`);
  }
  const robustness: RobustnessValue[] = [];
  for (const p of perturbations) {
    for (const [i, task] of tasks.entries()) {
      if (task.spec.perturbFields.length === 0 || task.spec.outputType === 'loglikelihood_rolling') continue;
      const perturbed = await evaluateTask(task, h, p);
      robustness.push(...robustnessDrops(outcomes[i]!, perturbed, p, iters));
    }
  }
  const metrics = [...outcomes.flatMap((o) => o.metrics), ...groupMetrics(outcomes, iters)];
  const efficiency: Record<string, EfficiencySummary> = Object.fromEntries(outcomes.map((o) => [o.task, o.efficiency]));
  warnings.push(...backend.warnings());
  const results = makeResults({
    weftVersion: weftVersion(),
    model: backend.info,
    config: {
      tasks: names,
      task_instances: tasks.map((t) => t.spec.task),
      limit: flags.limit ?? null,
      seed: h.seed,
      bootstrap_iters: iters,
      data_root: dataRoot,
      files: [...new Set(tasks.flatMap((t) => t.files))],
      fewshot: Object.fromEntries(tasks.map((t) => [t.spec.task, t.spec.fewshot])),
      robustness: perturbations,
      sandbox_isolation: isolation,
      wall_s: Number(((performance.now() - started) / 1000).toFixed(2)),
      process_peak_rss_mb: Number((process.resourceUsage().maxRSS / 1024).toFixed(1)),
      command: process.argv.slice(2).join(' '),
    },
    metrics,
    efficiency,
    robustness,
    warnings,
  });
  writeRun(outDir, results, flags.samples === false ? {} : Object.fromEntries(outcomes.map((o) => [o.task, o.samples])));
  io.stdout.write(markdownSummary(results));
  io.stdout.write(`\nresults: ${outDir}/results.json (summary.md, samples_*.jsonl); HTML: weft eval report ${outDir} --out report.html\n`);
  return { outDir, metrics, outcomes };
}

export function runEvalReport(dir: string, out: string, title?: string, io: CommandIO = defaultIO()): string {
  const runs = readResultsDir(dir);
  const html = htmlReport(runs, title);
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(out, html);
  io.stdout.write(`wrote ${out} (${runs.length} run${runs.length > 1 ? 's' : ''}, ${(html.length / 1024).toFixed(1)} KiB)\n`);
  return html;
}

const parseUrl = (v: string): string => {
  try {
    new URL(v);
  } catch {
    throw new InvalidArgumentError('expected a URL, e.g. http://127.0.0.1:8000/v1.');
  }
  return v;
};

export function registerEval(program: Command, io?: CommandIO): Command {
  const evalCmd = program.command('eval').description('evaluate models: benchmark tasks, reports and metrics');
  evalCmd
    .command('run')
    .description('run benchmark tasks (sst2, mmlu, gsm8k, humaneval, wikitext, tinyshakespeare, or task .json files)')
    .option('--model <dir>', 'a local Weft model: a run directory written by weft train')
    .option('--base-url <url>', 'an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1', parseUrl)
    .option('--api-key <key>', 'bearer token for --base-url (default: $OPENAI_API_KEY)')
    .option('--api-model <name>', 'the "model" field sent to --base-url (default: "default")')
    .option('--chat', 'generate through /chat/completions instead of /completions')
    .requiredOption('--tasks <list>', 'comma-separated tasks, e.g. sst2,mmlu,gsm8k,humaneval,wikitext')
    .option('--limit <n>', 'evaluate only the first n documents of each task', parsePositiveInt)
    .option('--out <dir>', 'results directory (default: eval-results/<date>-<time>)')
    .option('--data-dir <dir>', `benchmark data root (default: ${defaultDataRoot()}; the full sets: ../shared/data)`)
    .option('--seed <n>', 'seed for sampling and the bootstrap (default 1234)', parseNonNegativeInt)
    .option('--robustness [list]', `also run perturbed copies of the documents (${PERTURBATIONS.join(',')}; default all)`)
    .option('--bootstrap-iters <n>', 'bootstrap resamples for standard errors (default 1000)', parsePositiveInt)
    .option('--concurrency <n>', 'requests in flight for --base-url (default 4)', parsePositiveInt)
    .option('--timeout-ms <n>', 'per-request timeout for --base-url (default 60000)', parsePositiveInt)
    .option('--max-retries <n>', 'retries per request for --base-url (default 5)', parseNonNegativeInt)
    .option('--no-samples', 'do not write samples_<task>.jsonl')
    .action(async (flags: EvalRunFlags) => {
      await runEval(flags, io);
    });
  evalCmd
    .command('report')
    .description('write one self-contained HTML page from a results directory (one run or several in subdirectories)')
    .argument('<results-dir>', 'directory written by weft eval run --out')
    .requiredOption('--out <file>', 'HTML file to write, e.g. report.html')
    .option('--title <text>', 'page title')
    .action((dir: string, flags: { out: string; title?: string }) => {
      runEvalReport(dir, flags.out, flags.title, io);
    });
  registerEvalMetric(evalCmd, io);
  return evalCmd;
}
