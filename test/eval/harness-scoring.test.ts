/**
 * The harness's scoring with a scripted back end whose answers are known, so every expected value is
 * computed here by hand: acc vs acc_norm, GSM8K's two filters, pass@k from sandboxed runs, WikiText's
 * perplexities (detokenized text scored, original words and bytes counted), pooled groups, and
 * robustness drops.
 */
import { describe, expect, it } from 'vitest';
import { evaluateTask, groupMetrics, robustnessDrops } from '../../src/eval/harness.js';
import { type LoadedTask, loadTasks, parseTaskSpec } from '../../src/eval/tasks/loader.js';
import { wikitextDetokenizer } from '../../src/eval/tasks/transforms.js';
import { ScriptedBackend } from './helpers.js';

const value = (o: { metrics: { metric: string; filter: string | null; value: number }[] }, metric: string, filter: string | null = null): number =>
  o.metrics.find((m) => m.metric === metric && m.filter === filter)!.value;

describe('multiple choice (loglikelihood)', () => {
  it('acc takes the most likely choice, acc_norm the most likely per byte', async () => {
    const spec = parseTaskSpec(
      { task: 'mc', dataset: { path: 'x', format: 'jsonl' }, outputType: 'loglikelihood', docToText: '{{q}}', docToTarget: '{{gold}}', docToChoice: ['ab', 'abcdef'], metrics: [{ metric: 'acc' }, { metric: 'acc_norm' }] },
      'mc',
    );
    const docs = [
      { q: 'a', gold: 0 },
      { q: 'b', gold: 1 },
      { q: 'c', gold: 1 },
      { q: 'd', gold: 0 },
    ];
    const task: LoadedTask = { spec, group: 'mc', docs, fewshotDocs: docs, files: [] };
    // 'ab': −3 (−1.5 per byte); 'abcdef': −4 (−0.67 per byte).
    const backend = new ScriptedBackend({ ll: (r) => (r.continuation === ' ab' ? -3 : -4) });
    const o = await evaluateTask(task, { backend });
    expect(value(o, 'acc')).toBe(0.5); // always picks choice 0
    expect(value(o, 'acc_norm')).toBe(0.5); // always picks choice 1
    expect(o.samples.map((s) => s.scores)).toEqual([
      { acc: 1, acc_norm: 0 },
      { acc: 0, acc_norm: 1 },
      { acc: 0, acc_norm: 1 },
      { acc: 1, acc_norm: 0 },
    ]);
    expect(backend.seen.ll.map((r) => r.context + r.continuation)).toEqual(['a ab', 'a abcdef', 'b ab', 'b abcdef', 'c ab', 'c abcdef', 'd ab', 'd abcdef']);
    expect(o.efficiency.requests).toBe(8);
  });
});

describe('GSM8K (generate_until)', () => {
  it("scores lm-eval's strict and flexible extraction with exact match", async () => {
    const [task] = loadTasks(['gsm8k']);
    const gold = (i: number): string => String(task!.docs[i]!.answer);
    const number = (i: number): string => gold(i).split('#### ').pop()!;
    const backend = new ScriptedBackend({
      gen: (r) => {
        const i = task!.docs.findIndex((d) => r.context.endsWith(`Question: ${String(d.question)}\nAnswer:`));
        if (i <= 1) return ` ${gold(i)}`; // full chain of thought with #### N
        if (i === 2) return ` so the total is ${number(i)}.`; // only the flexible filter finds it
        return ' I do not know 12345';
      },
    });
    const o = await evaluateTask(task!, { backend, limit: 5 });
    expect(value(o, 'exact_match', 'strict-match')).toBeCloseTo(2 / 5, 12);
    expect(value(o, 'exact_match', 'flexible-extract')).toBeCloseTo(3 / 5, 12);
    const req = backend.seen.gen[0]!;
    expect(req.until).toEqual(['Question:', '</s>', '<|im_end|>']);
    expect(req.temperature).toBe(0);
    // Five labelled examples, then the question.
    expect(req.context.split('Question: ').length - 1).toBe(6);
    expect(req.context.split('\n\n').length).toBeGreaterThanOrEqual(6);
  });
});

describe('HumanEval (pass@k in the sandbox)', () => {
  it('computes pass@1 and pass@10 from 10 samples per problem', async () => {
    const [task] = loadTasks(['humaneval']);
    const canonical = (i: number): string => String(task!.docs[i]!.canonical_solution);
    const backend = new ScriptedBackend({
      gen: (r, s) => {
        const i = task!.docs.findIndex((d) => d.prompt === r.context);
        if (i === 0) return s < 4 ? canonical(0) : '    return None\n';
        if (i === 1) return '    raise ValueError()\n';
        return canonical(i);
      },
    });
    const o = await evaluateTask(task!, { backend, limit: 3 });
    // Problem 0: n=10, c=4 → pass@1 = 0.4, pass@10 = 1; problem 1: 0, 0; problem 2: 1, 1.
    expect(value(o, 'pass@1')).toBeCloseTo((0.4 + 0 + 1) / 3, 12);
    expect(value(o, 'pass@10')).toBeCloseTo((1 + 0 + 1) / 3, 12);
    expect(o.samples.map((s) => s.scores.correct)).toEqual([4, 0, 10]);
    expect(backend.seen.gen[0]!.samples).toBe(10);
  });
});

describe('WikiText (loglikelihood_rolling)', () => {
  it('scores the detokenized text; word/byte counts come from the original', async () => {
    const [task] = loadTasks(['wikitext']);
    const backend = new ScriptedBackend({ rolling: (t) => ({ logprob: -0.5 * Buffer.byteLength(t), tokens: t.length }) });
    const o = await evaluateTask(task!, { backend, limit: 3 });
    const originals = task!.docs.slice(0, 3).map((d) => String(d.text));
    expect(backend.seen.rolling).toEqual(originals.map(wikitextDetokenizer));
    const ll = originals.map((t) => -0.5 * Buffer.byteLength(wikitextDetokenizer(t)));
    const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);
    const words = originals.map((t) => t.split(/\s+/).length);
    const bytes = originals.map((t) => Buffer.byteLength(t));
    expect(value(o, 'word_perplexity')).toBeCloseTo(Math.exp(-sum(ll) / sum(words)), 9);
    expect(value(o, 'byte_perplexity')).toBeCloseTo(Math.exp(-sum(ll) / sum(bytes)), 9);
    expect(value(o, 'bits_per_byte')).toBeCloseTo(-sum(ll) / sum(bytes) / Math.LN2, 12);
    const tokens = originals.map((t) => wikitextDetokenizer(t).length);
    expect(value(o, 'token_perplexity')).toBeCloseTo(Math.exp(-sum(ll) / sum(tokens)), 9);
    expect(o.metrics.every((m) => !m.higher_is_better)).toBe(true);
  });
});

describe('groups and robustness', () => {
  it('pools MMLU subjects into one size-weighted group metric', async () => {
    const tasks = loadTasks(['mmlu']);
    // Always answers "A" (index 0).
    const backend = new ScriptedBackend({ ll: (r) => (r.continuation === ' A' ? -1 : -2) });
    const outcomes = [];
    for (const t of tasks) outcomes.push(await evaluateTask(t, { backend, limit: 3 }));
    const group = groupMetrics(outcomes).find((m) => m.metric === 'acc')!;
    const golds = tasks.flatMap((t) => t.docs.slice(0, 3).map((d) => d.answer));
    expect(group.task).toBe('mmlu');
    expect(group.n).toBe(24);
    expect(group.value).toBeCloseTo(golds.filter((g) => g === 0).length / 24, 12);
    // 5-shot from the dev split, with lm-eval's subject description.
    const ctx = backend.seen.ll[0]!.context;
    expect(ctx.startsWith('The following are multiple choice questions (with answers) about abstract algebra.\n\n')).toBe(true);
    expect(ctx.split('\nAnswer:').length - 1).toBe(6);
  });

  it('reports the drop of each metric under a perturbation of the input fields', async () => {
    const [task] = loadTasks(['sst2']);
    const labelOf = new Map(task!.docs.map((d) => [String(d.sentence).trim().replace(/\s+/g, ' '), Number(d.label)]));
    // Right whenever the sentence has no double space; wrong otherwise.
    const backend = new ScriptedBackend({
      ll: (r) => {
        const sentence = r.context.split('\nQuestion:')[0]!;
        const norm = sentence.trim().replace(/\s+/g, ' ');
        // A distractor sentence is appended after the original text.
        const gold = labelOf.get(norm) ?? [...labelOf].find(([k]) => norm.startsWith(k))?.[1] ?? -1;
        const right = (gold === 1 ? ' positive' : ' negative') === r.continuation;
        return right !== sentence.includes('  ') ? -1 : -2;
      },
    });
    const clean = await evaluateTask(task!, { backend, limit: 30 });
    expect(value(clean, 'acc')).toBe(1);
    const spaced = await evaluateTask(task!, { backend, limit: 30 }, 'whitespace');
    const drops = robustnessDrops(clean, spaced, 'whitespace');
    const acc = drops.find((d) => d.metric === 'acc')!;
    const doubled = backend.seen.ll.slice(60).filter((r, i) => i % 2 === 0 && r.context.split('\nQuestion:')[0]!.includes('  ')).length;
    expect(acc.drop).toBeCloseTo(doubled / 30, 12);
    expect(acc.drop).toBeGreaterThan(0.5);
    // Targets and choices are untouched by perturbations.
    expect(backend.seen.ll.slice(60).every((r) => r.continuation === ' positive' || r.continuation === ' negative')).toBe(true);
    const distracted = await evaluateTask(task!, { backend, limit: 30 }, 'distractor');
    expect(robustnessDrops(clean, distracted, 'distractor').find((d) => d.metric === 'acc')!.drop).toBe(0);
  });
});
