/**
 * Task definitions as data, after EleutherAI lm-evaluation-harness's task YAML: a dataset, prompt
 * templates, few-shot settings, an output type and metrics. Bundled tasks live in bundled/*.json;
 * users can pass their own file with the same schema.
 */
import { z } from 'zod';

/** lm-eval's three request types (multiple_choice is loglikelihood over the choices). */
export const OutputType = z.enum(['loglikelihood', 'generate_until', 'loglikelihood_rolling']);
export type OutputType = z.infer<typeof OutputType>;

export const DatasetFormat = z.enum(['jsonl', 'jsonl.gz', 'tsv', 'csv', 'text']);
export type DatasetFormat = z.infer<typeof DatasetFormat>;

/** How a plain-text file becomes documents. */
export const TextDocuments = z.enum(['whole', 'blank-lines', 'wikitext-articles']);

export const DatasetSpec = z
  .object({
    /** File of the evaluated documents, relative to the data root (eval-data/ or --data-dir), or `pkg:` + a path inside the package. */
    path: z.string().min(1),
    format: DatasetFormat,
    /** Documents few-shot examples are drawn from (default: the evaluated documents themselves). */
    fewshotPath: z.string().min(1).optional(),
    /** Text files: how to cut the text into documents (each becomes {text}). */
    documents: TextDocuments.default('whole'),
    /** Text files: keep characters from this fraction of the text on (nanoGPT's val split is 0.9). */
    startFraction: z.number().min(0).max(1).optional(),
    /** Field coercions applied to every row (CSV/TSV give strings). */
    integerFields: z.array(z.string()).default([]),
  })
  .strict();
export type DatasetSpec = z.infer<typeof DatasetSpec>;

export const FewshotSpec = z
  .object({
    num: z.number().int().min(0).default(0),
    /** lm-eval's default fewshot seed. */
    seed: z.number().int().default(1234),
    /** first_n: the first `num` documents (MMLU's dev split); random: a seeded sample without the current doc. */
    sampler: z.enum(['first_n', 'random']).default('random'),
  })
  .strict();

export const GenerationSpec = z
  .object({
    until: z.array(z.string().min(1)).default([]),
    maxGenToks: z.number().int().positive().default(256),
    /** 0 = greedy. */
    temperature: z.number().min(0).default(0),
    topP: z.number().gt(0).max(1).optional(),
    /** Completions sampled per document (HumanEval pass@10 needs n ≥ 10). */
    samples: z.number().int().positive().default(1),
  })
  .strict();

/** One step of an lm-eval filter pipeline. */
export const FilterStep = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('regex'),
      pattern: z.string().min(1),
      /** Index into all matches (negative counts from the end), as lm-eval's group_select. */
      groupSelect: z.number().int().default(0),
      fallback: z.string().default('[invalid]'),
    })
    .strict(),
  z.object({ type: z.literal('strip') }).strict(),
  z.object({ type: z.literal('lowercase') }).strict(),
]);
export type FilterStep = z.infer<typeof FilterStep>;

export const FilterSpec = z.object({ name: z.string().min(1), steps: z.array(FilterStep) }).strict();
export type FilterSpec = z.infer<typeof FilterSpec>;

export const MetricName = z.enum([
  'acc',
  'acc_norm',
  'exact_match',
  'word_perplexity',
  'byte_perplexity',
  'bits_per_byte',
  'token_perplexity',
  'pass@k',
]);
export type MetricName = z.infer<typeof MetricName>;

export const MetricSpec = z
  .object({
    metric: MetricName,
    /** exact_match options (lm-eval / HF evaluate's exact_match). */
    ignoreCase: z.boolean().default(false),
    ignorePunctuation: z.boolean().default(false),
    regexesToIgnore: z.array(z.string()).default([]),
    /** pass@k: the k values (each ≤ generation.samples). */
    k: z.array(z.number().int().positive()).default([1]),
  })
  .strict();
export type MetricSpec = z.infer<typeof MetricSpec>;

export const ExecutionSpec = z
  .object({
    /** humaneval: program = prompt + completion + "\n" + test + "\n" + `check(entry_point)`. */
    type: z.literal('humaneval'),
    timeoutS: z.number().positive().default(3),
    memoryMb: z.number().int().positive().default(1024),
  })
  .strict();
export type ExecutionSpec = z.infer<typeof ExecutionSpec>;

export const TaskSpec = z
  .object({
    /** Lowercase letters, digits, _ . -; with `expand`, `{variable}` placeholders too. */
    task: z.string().regex(/^[a-z0-9_.{}-]+$/, 'lowercase letters, digits, _ . - (and {variable} with expand)'),
    description: z.string().default(''),
    /** Expand into one task per file found: `{var}` in strings is replaced (MMLU's subjects). */
    expand: z
      .object({ variable: z.string().min(1), dir: z.string().min(1), suffix: z.string().min(1) })
      .strict()
      .optional(),
    dataset: DatasetSpec,
    outputType: OutputType,
    /** Text prepended once before the few-shot examples (lm-eval's `description`). */
    promptPrefix: z.string().default(''),
    docToText: z.string().default(''),
    docToTarget: z.string().default(''),
    /** Multiple choice: the choice strings (templates); docToTarget renders the gold index. */
    docToChoice: z.array(z.string()).optional(),
    targetDelimiter: z.string().default(' '),
    fewshotDelimiter: z.string().default('\n\n'),
    fewshot: FewshotSpec.default({ num: 0, seed: 1234, sampler: 'random' }),
    generation: GenerationSpec.optional(),
    filters: z.array(FilterSpec).default([]),
    /** Named transform of the rolling-loglikelihood target (see transforms.ts). */
    targetTransform: z.string().optional(),
    /** loglikelihood_rolling: tokens of context kept between windows (lm-eval uses 1). */
    rollingContextLen: z.number().int().positive().default(1),
    metrics: z.array(MetricSpec).min(1),
    execution: ExecutionSpec.optional(),
    /** Document fields the robustness suite perturbs (inputs only, never targets). */
    perturbFields: z.array(z.string()).default([]),
  })
  .strict()
  .superRefine((t, ctx) => {
    const names = new Set(t.metrics.map((m) => m.metric));
    if (t.expand === undefined && /[{}]/.test(t.task)) ctx.addIssue({ code: 'custom', path: ['task'], message: 'braces are only allowed with expand' });
    const need = (cond: boolean, message: string): void => {
      if (!cond) ctx.addIssue({ code: 'custom', message });
    };
    if (t.outputType === 'loglikelihood') {
      need(t.docToChoice !== undefined && t.docToChoice.length >= 2, 'loglikelihood tasks need docToChoice with at least 2 choices');
      for (const n of names) need(n === 'acc' || n === 'acc_norm', `metric ${n} does not apply to loglikelihood (use acc, acc_norm)`);
    }
    if (t.outputType === 'generate_until') {
      need(t.generation !== undefined, 'generate_until tasks need a generation block');
      for (const n of names) need(n === 'exact_match' || n === 'pass@k', `metric ${n} does not apply to generate_until (use exact_match, pass@k)`);
      if (names.has('pass@k')) {
        need(t.execution !== undefined, 'pass@k needs an execution block');
        const samples = t.generation?.samples ?? 1;
        for (const m of t.metrics) for (const k of m.k) if (m.metric === 'pass@k') need(k <= samples, `pass@${k} needs generation.samples ≥ ${k}, got ${samples}`);
      }
    }
    if (t.outputType === 'loglikelihood_rolling') {
      for (const n of names) {
        need(['word_perplexity', 'byte_perplexity', 'bits_per_byte', 'token_perplexity'].includes(n), `metric ${n} does not apply to loglikelihood_rolling`);
      }
    }
  });
export type TaskSpecInput = z.input<typeof TaskSpec>;
export type TaskSpec = z.infer<typeof TaskSpec>;
