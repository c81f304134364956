/**
 * The task runner: builds each task's requests (lm-eval's construct_requests), sends them to a back
 * end, scores the answers (process_results) and aggregates them with bootstrap standard errors.
 * Groups (MMLU's subjects) are also reported pooled over their documents (a size-weighted mean).
 */
import { createRequire } from 'node:module';
import type { EvalBackend, GenerationRequest, LoglikelihoodRequest } from './backends/backend.js';
import { EfficiencyMeter, type EfficiencySummary } from './efficiency.js';
import { countBytes, countWords } from './metrics/perplexity.js';
import { passAtK } from './metrics/pass-at-k.js';
import { type Perturbation, perturbDoc } from './robustness.js';
import { humanevalProgram, mapLimit, runPython, type SandboxOptions, detectIsolation } from './sandbox.js';
import type { LoadedTask } from './tasks/loader.js';
import { buildContext, choicesOf, FewshotSampler, goldIndex } from './tasks/prompt.js';
import type { MetricSpec, TaskSpec } from './tasks/schema.js';
import { type Aggregation, aggregateItems, applyFilter, bootstrapStderr, exactMatchLmEval, type MetricItems } from './tasks/scoring.js';
import { type Doc, render } from './tasks/template.js';
import { getTransform } from './tasks/transforms.js';

export interface MetricValue {
  task: string;
  group: string;
  metric: string;
  /** The answer-extraction filter (generate_until tasks), else null. */
  filter: string | null;
  value: number;
  /** Bootstrap standard error (null with fewer than two documents). */
  stderr: number | null;
  /** Documents scored. */
  n: number;
  higher_is_better: boolean;
}

export interface RobustnessValue {
  task: string;
  perturbation: Perturbation;
  metric: string;
  filter: string | null;
  clean: number;
  perturbed: number;
  /** clean − perturbed for higher-is-better metrics (positive = worse under the perturbation). */
  drop: number;
  /** Paired bootstrap standard error of the drop. */
  drop_stderr: number | null;
  n: number;
}

/** One document's record (written to samples_<task>.jsonl). */
export interface SampleRecord {
  doc_id: number;
  prompt: string;
  target: string;
  responses: (string | number)[];
  filtered?: Record<string, string>;
  scores: Record<string, number>;
}

export interface TaskOutcome {
  task: string;
  group: string;
  n: number;
  metrics: MetricValue[];
  /** Per-document contributions, keyed by `metric|filter`. */
  items: Map<string, MetricItems>;
  samples: SampleRecord[];
  efficiency: EfficiencySummary;
}

export interface ProgressSink {
  start(label: string, total: number): void;
  advance(done: number): void;
  end(): void;
  note(text: string): void;
}

export interface HarnessOptions {
  backend: EvalBackend;
  /** Evaluate only the first N documents of each task (lm-eval's --limit). */
  limit?: number;
  /** Base seed for generation sampling. */
  seed?: number;
  bootstrapIters?: number;
  sandbox?: SandboxOptions & { concurrency?: number };
  progress?: ProgressSink;
}

const LOWER_IS_BETTER = new Set(['word_perplexity', 'byte_perplexity', 'bits_per_byte', 'token_perplexity']);

function key(metric: string, filter: string | null): string {
  return filter === null ? metric : `${metric}|${filter}`;
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

class ItemSink {
  readonly items = new Map<string, MetricItems>();
  add(metric: string, filter: string | null, aggregation: Aggregation, num: number, den = 1): void {
    const k = key(metric, filter);
    let it = this.items.get(k);
    if (it === undefined) {
      it = { aggregation, num: [], den: [] };
      this.items.set(k, it);
    }
    it.num.push(num);
    it.den.push(den);
  }
}

function summarize(task: string, group: string, items: Map<string, MetricItems>, iters: number): MetricValue[] {
  return [...items.entries()].map(([k, it]) => {
    const [metric, filter] = k.split('|') as [string, string | undefined];
    const stderr = bootstrapStderr(it, iters);
    return {
      task,
      group,
      metric,
      filter: filter ?? null,
      value: aggregateItems(it),
      stderr: Number.isFinite(stderr) ? stderr : null,
      n: it.num.length,
      higher_is_better: !LOWER_IS_BETTER.has(metric),
    };
  });
}

async function runLoglikelihood(spec: TaskSpec, docs: Doc[], examples: Doc[][], h: HarnessOptions, meter: EfficiencyMeter, sink: ItemSink, samples: SampleRecord[]): Promise<void> {
  const requests: LoglikelihoodRequest[] = [];
  const perDoc: { context: string; choices: string[]; gold: number; first: number }[] = [];
  for (const [i, doc] of docs.entries()) {
    const context = buildContext(spec, doc, examples[i]!);
    const choices = choicesOf(spec, doc);
    const gold = goldIndex(spec, doc, choices);
    perDoc.push({ context, choices, gold, first: requests.length });
    for (const c of choices) requests.push({ context, continuation: spec.targetDelimiter + c });
  }
  h.progress?.start(`${spec.task} (${requests.length} loglikelihood requests)`, requests.length);
  const results = await h.backend.loglikelihood(requests, { meter, onProgress: (d) => h.progress?.advance(d) });
  const wanted = new Set(spec.metrics.map((m) => m.metric));
  perDoc.forEach((d, i) => {
    const lls = results.slice(d.first, d.first + d.choices.length).map((r) => r.logprob);
    // acc_norm: loglikelihood per byte of the choice (lm-eval normalises by the choice's length).
    const norm = lls.map((ll, j) => ll / Math.max(1, countBytes(d.choices[j]!)));
    const scores: Record<string, number> = {};
    if (wanted.has('acc')) scores.acc = argmax(lls) === d.gold ? 1 : 0;
    if (wanted.has('acc_norm')) scores.acc_norm = argmax(norm) === d.gold ? 1 : 0;
    for (const [m, v] of Object.entries(scores)) sink.add(m, null, 'mean', v);
    samples.push({ doc_id: i, prompt: d.context, target: d.choices[d.gold]!, responses: lls, scores });
  });
}

async function runRolling(spec: TaskSpec, docs: Doc[], h: HarnessOptions, meter: EfficiencyMeter, sink: ItemSink, samples: SampleRecord[]): Promise<void> {
  const originals = docs.map((d) => render(spec.docToTarget, d));
  const transform = spec.targetTransform !== undefined ? getTransform(spec.targetTransform) : (s: string): string => s;
  const texts = originals.map(transform);
  h.progress?.start(`${spec.task} (${texts.length} documents, rolling loglikelihood)`, texts.length);
  const results = await h.backend.loglikelihoodRolling(texts, spec.rollingContextLen, { meter, onProgress: (d) => h.progress?.advance(d) });
  const wanted = new Set(spec.metrics.map((m) => m.metric));
  results.forEach((r, i) => {
    // lm-eval counts words and bytes of the document before detokenization.
    const words = countWords(originals[i]!);
    const bytes = countBytes(originals[i]!);
    const scores: Record<string, number> = { loglikelihood: r.logprob, words, bytes, tokens: r.tokens };
    if (wanted.has('word_perplexity')) sink.add('word_perplexity', null, 'word_perplexity', r.logprob, words);
    if (wanted.has('byte_perplexity')) sink.add('byte_perplexity', null, 'byte_perplexity', r.logprob, bytes);
    if (wanted.has('bits_per_byte')) sink.add('bits_per_byte', null, 'bits_per_byte', r.logprob, bytes);
    if (wanted.has('token_perplexity')) sink.add('token_perplexity', null, 'token_perplexity', r.logprob, r.tokens);
    samples.push({ doc_id: i, prompt: '', target: texts[i]!.slice(0, 200), responses: [r.logprob], scores });
  });
}

async function runGeneration(spec: TaskSpec, docs: Doc[], examples: Doc[][], h: HarnessOptions, meter: EfficiencyMeter, sink: ItemSink, samples: SampleRecord[]): Promise<void> {
  const gen = spec.generation!;
  const seed = h.seed ?? 1234;
  const requests: GenerationRequest[] = docs.map((doc, i) => ({
    context: buildContext(spec, doc, examples[i]!),
    until: gen.until,
    maxTokens: gen.maxGenToks,
    temperature: gen.temperature,
    topP: gen.topP,
    samples: gen.samples,
    seed: seed + i * 1000,
  }));
  h.progress?.start(`${spec.task} (${docs.length} documents × ${gen.samples} generations)`, docs.length);
  const outputs = await h.backend.generate(requests, { meter, onProgress: (d) => h.progress?.advance(d) });
  const filters = spec.filters.length > 0 ? spec.filters : [{ name: 'none', steps: [] }];
  const records: SampleRecord[] = docs.map((doc, i) => ({ doc_id: i, prompt: requests[i]!.context, target: render(spec.docToTarget, doc), responses: outputs[i]!, scores: {} }));

  for (const m of spec.metrics.filter((x): x is MetricSpec => x.metric === 'exact_match')) {
    records.forEach((rec) => {
      rec.filtered ??= {};
      for (const f of filters) {
        const filtered = applyFilter(String(rec.responses[0] ?? ''), f.steps);
        rec.filtered[f.name] = filtered;
        const score = exactMatchLmEval(filtered, rec.target, m);
        rec.scores[key('exact_match', f.name)] = score;
        sink.add('exact_match', f.name, 'mean', score);
      }
    });
  }

  const passMetric = spec.metrics.find((m) => m.metric === 'pass@k');
  if (passMetric !== undefined) {
    const exec = spec.execution!;
    const jobs: { doc: number; program: string }[] = [];
    docs.forEach((doc, i) => {
      for (const completion of outputs[i]!) {
        jobs.push({ doc: i, program: humanevalProgram({ prompt: String(doc.prompt), test: String(doc.test), entry_point: String(doc.entry_point) }, completion) });
      }
    });
    h.progress?.start(`${spec.task} (${jobs.length} programs in the sandbox, isolation ${h.sandbox?.isolation ?? detectIsolation()})`, jobs.length);
    const sandboxOpts: SandboxOptions = { timeoutMs: exec.timeoutS * 1000, memoryMb: exec.memoryMb, ...h.sandbox };
    const runs = await mapLimit(jobs, h.sandbox?.concurrency ?? 2, (j) => runPython(j.program, sandboxOpts), (d) => h.progress?.advance(d));
    const correct = new Array<number>(docs.length).fill(0);
    runs.forEach((r, j) => {
      if (r.status === 'passed') correct[jobs[j]!.doc]!++;
    });
    records.forEach((rec, i) => {
      const n = outputs[i]!.length;
      rec.scores.correct = correct[i]!;
      for (const k of passMetric.k) {
        const v = passAtK(n, correct[i]!, k);
        rec.scores[`pass@${k}`] = v;
        sink.add(`pass@${k}`, null, 'mean', v);
      }
    });
  }
  samples.push(...records);
}

/** Runs one task (optionally on perturbed documents) and scores it. */
export async function evaluateTask(task: LoadedTask, h: HarnessOptions, perturbation?: Perturbation): Promise<TaskOutcome> {
  const { spec } = task;
  const originals = h.limit !== undefined ? task.docs.slice(0, h.limit) : task.docs;
  // Few-shot examples come from the unperturbed documents (excluding the document itself).
  const sampler = new FewshotSampler(spec, task.fewshotDocs, task.fewshotDocs === task.docs);
  const examples = originals.map((d) => sampler.examplesFor(d));
  const docs = perturbation === undefined ? originals : originals.map((d, i) => perturbDoc(d, spec.perturbFields, perturbation, (h.seed ?? 1234) + i));
  const meter = new EfficiencyMeter().start();
  const sink = new ItemSink();
  const samples: SampleRecord[] = [];
  try {
    if (spec.outputType === 'loglikelihood') await runLoglikelihood(spec, docs, examples, h, meter, sink, samples);
    else if (spec.outputType === 'loglikelihood_rolling') await runRolling(spec, docs, h, meter, sink, samples);
    else await runGeneration(spec, docs, examples, h, meter, sink, samples);
  } finally {
    meter.stop();
    h.progress?.end();
  }
  return {
    task: spec.task,
    group: task.group,
    n: docs.length,
    metrics: summarize(spec.task, task.group, sink.items, h.bootstrapIters ?? 1000),
    items: sink.items,
    samples,
    efficiency: meter.summary(),
  };
}

/** Metrics of each group with more than one task, pooled over all of its documents. */
export function groupMetrics(outcomes: readonly TaskOutcome[], iters = 1000): MetricValue[] {
  const groups = new Map<string, TaskOutcome[]>();
  for (const o of outcomes) if (o.group !== o.task) groups.set(o.group, [...(groups.get(o.group) ?? []), o]);
  const out: MetricValue[] = [];
  for (const [group, members] of groups) {
    const pooled = new Map<string, MetricItems>();
    for (const m of members) {
      for (const [k, it] of m.items) {
        const p = pooled.get(k) ?? { aggregation: it.aggregation, num: [], den: [] };
        p.num.push(...it.num);
        p.den.push(...it.den);
        pooled.set(k, p);
      }
    }
    out.push(...summarize(group, group, pooled, iters));
  }
  return out;
}

/** Paired drop of each mean metric between a clean and a perturbed run of the same documents. */
export function robustnessDrops(clean: TaskOutcome, perturbed: TaskOutcome, perturbation: Perturbation, iters = 1000): RobustnessValue[] {
  const out: RobustnessValue[] = [];
  for (const [k, c] of clean.items) {
    const p = perturbed.items.get(k);
    if (p === undefined || c.aggregation !== 'mean' || c.num.length !== p.num.length) continue;
    const [metric, filter] = k.split('|') as [string, string | undefined];
    const diff: MetricItems = { aggregation: 'mean', num: c.num.map((v, i) => v - p.num[i]!), den: c.den };
    const se = bootstrapStderr(diff, iters);
    const cv = aggregateItems(c);
    const pv = aggregateItems(p);
    out.push({ task: clean.task, perturbation, metric, filter: filter ?? null, clean: cv, perturbed: pv, drop: cv - pv, drop_stderr: Number.isFinite(se) ? se : null, n: c.num.length });
  }
  return out;
}

export function weftVersion(): string {
  const require = createRequire(import.meta.url);
  for (const p of ['../../package.json', '../package.json']) {
    try {
      return (require(p) as { version: string }).version;
    } catch {
      // try the next layout (src/eval → root, dist/eval → root)
    }
  }
  return 'unknown';
}
