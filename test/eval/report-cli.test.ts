/**
 * End to end with a local model: `weft eval run --model <dir>` writes results.json / summary.md /
 * samples, with efficiency and robustness; `weft eval report` turns it into one self-contained HTML
 * page. Plus the report's escaping, schema checks and usage errors.
 */
import { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerEval, runEval, runEvalReport } from '../../src/cli/eval.js';
import { barChart, type EvalResults, htmlReport, makeResults, markdownSummary, parseResults, readResultsDir } from '../../src/eval/report.js';
import { Capture } from '../train/helpers.js';
import { tempDir, tinyRunDir } from './helpers.js';

let runDir: string;
let work: string;

beforeAll(async () => {
  ({ dir: runDir } = await tinyRunDir(32));
  work = tempDir('weft-eval-cli-');
});
afterAll(() => {
  rmSync(runDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('weft eval run --model / weft eval report', () => {
  it('runs tasks on a local model and writes results, summary, samples and an HTML report', async () => {
    const out = join(work, 'run1');
    const program = new Command().exitOverride();
    const io = { stdout: new Capture(), stderr: new Capture() };
    registerEval(program, io);
    await program.parseAsync(['node', 'weft', 'eval', 'run', '--model', runDir, '--tasks', 'sst2,tinyshakespeare,gsm8k', '--limit', '3', '--out', out, '--robustness', 'casing,typos', '--bootstrap-iters', '100'], { from: 'node' });
    const results = parseResults(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')), 'results.json');
    const metric = (task: string, m: string, filter: string | null = null): EvalResults['results'][number] | undefined => results.results.find((r) => r.task === task && r.metric === m && r.filter === filter);
    expect(metric('sst2', 'acc')?.n).toBe(3);
    expect(metric('sst2', 'acc')!.value).toBeGreaterThanOrEqual(0);
    const bpb = metric('tinyshakespeare', 'bits_per_byte')!;
    // An untrained char model over 65 characters is near uniform: ≈ log2(65) = 6.02 bits per byte.
    expect(bpb.value).toBeGreaterThan(5);
    expect(bpb.value).toBeLessThan(7.5);
    expect(metric('tinyshakespeare', 'token_perplexity')!.value).toBeGreaterThan(30);
    expect(metric('gsm8k', 'exact_match', 'strict-match')?.n).toBe(3);
    expect(results.model).toMatchObject({ kind: 'local', path: runDir, block_size: 32 });
    expect(results.config).toMatchObject({ limit: 3, tasks: ['sst2', 'tinyshakespeare', 'gsm8k'], robustness: ['casing', 'typos'] });
    expect(results.weft_version).toMatch(/^\d+\.\d+\.\d+/);
    expect(Number.isNaN(Date.parse(results.date))).toBe(false);
    // Efficiency: each task measured.
    expect(results.efficiency.sst2!.scoring_tokens_per_s).toBeGreaterThan(0);
    expect(results.efficiency.gsm8k!.generation_tokens_per_s).toBeGreaterThan(0);
    expect(results.efficiency.gsm8k!.ttft_ms_p50).toBeGreaterThan(0);
    expect(results.efficiency.sst2!.peak_rss_mb).toBeGreaterThan(10);
    // Robustness: sst2 and gsm8k under two perturbations; none for perplexity tasks.
    expect(new Set(results.robustness.map((r) => `${r.task}/${r.perturbation}`))).toEqual(new Set(['sst2/casing', 'sst2/typos', 'gsm8k/casing', 'gsm8k/typos']));
    for (const r of results.robustness) expect(r.drop).toBeCloseTo(r.clean! - r.perturbed!, 12);
    // Gsm8k has a 5-shot prompt longer than the block, and digits outside the vocabulary.
    expect(results.warnings.join('\n')).toMatch(/characters outside the model's character vocabulary/);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('| tinyshakespeare | bits_per_byte ↓ |');
    expect(readFileSync(join(out, 'samples_sst2.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(io.stderr.text).toMatch(/sst2 \(6 loglikelihood requests\): 6\/6 \(100%\)/);

    const report = join(work, 'report.html');
    await program.parseAsync(['node', 'weft', 'eval', 'report', work, '--out', report], { from: 'node' });
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('tinyshakespeare');
    expect(html).toContain('Robustness');
    // Self-contained: nothing fetched (the SVG namespace is an identifier, not a request).
    expect(html.replaceAll('xmlns="http://www.w3.org/2000/svg"', '')).not.toMatch(/https?:\/\/|<link|<script|src=|@import|url\(/);
  });

  it('says what is wrong with the command line', async () => {
    const io = { stdout: new Capture(), stderr: new Capture() };
    await expect(runEval({ tasks: 'sst2' }, io)).rejects.toThrow(/exactly one of --model <run dir> .* or --base-url/);
    await expect(runEval({ model: runDir, baseUrl: 'http://x', tasks: 'sst2' }, io)).rejects.toThrow(/exactly one of/);
    await expect(runEval({ model: runDir, tasks: 'sst2', robustness: 'rain' }, io)).rejects.toThrow(/--robustness: unknown perturbation "rain"/);
    await expect(runEval({ model: runDir, tasks: 'squad' }, io)).rejects.toThrow(/unknown task "squad"/);
    expect(() => runEvalReport(join(work, 'none'), join(work, 'r.html'), undefined, io)).toThrow(/no such results directory/);
  });
});

describe('report', () => {
  const sample = (task: string, value: number): EvalResults =>
    makeResults({
      weftVersion: '0.1.0',
      model: { kind: 'local', path: `/runs/<b>${task}</b>` },
      config: { limit: 5 },
      metrics: [
        { task, group: task, metric: 'acc', filter: null, value, stderr: 0.1, n: 5, higher_is_better: true },
        { task, group: task, metric: 'bits_per_byte', filter: null, value: Number.NaN, stderr: null, n: 0, higher_is_better: false },
      ],
      efficiency: {},
      robustness: [],
      warnings: ['<script>alert(1)</script>'],
      date: new Date('2024-01-02T03:04:05Z'),
    });

  it('writes NaN as null, escapes HTML, and compares several runs', () => {
    const a = sample('t<1>', 0.5);
    expect(a.results[1]!.value).toBeNull();
    const html = htmlReport([a, sample('t<1>', 0.75)]);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('t&lt;1&gt;');
    expect(html).toContain('0.750');
    expect(markdownSummary(a)).toContain('| t<1> | acc ↑ | 0.5000 | 0.1000 | 5 |');
  });

  it('reads every run of a directory and rejects files that are not results', () => {
    const dir = join(work, 'many');
    for (const [i, v] of [0.25, 0.5].entries()) {
      mkdirSync(join(dir, `r${i}`), { recursive: true });
      writeFileSync(join(dir, `r${i}`, 'results.json'), JSON.stringify(sample('x', v)));
    }
    expect(readResultsDir(dir).map((r) => r.results[0]!.value)).toEqual([0.25, 0.5]);
    writeFileSync(join(dir, 'r1', 'results.json'), '{"format":"other"}');
    expect(() => readResultsDir(dir)).toThrow(/r1\/results\.json: not a weft eval results file \(format/);
    expect(existsSync(join(dir, 'r0', 'results.json'))).toBe(true);
  });

  it('draws bars proportional to values, negative values to the left of zero', () => {
    const svg = barChart({ title: 't', categories: ['a', 'b', 'c'], series: [{ name: 's', values: [1, 0.5, -0.5] }] });
    const widths = [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(widths).toHaveLength(3);
    expect(widths[0]![1] / widths[1]![1]).toBeCloseTo(2, 2);
    expect(widths[2]![1]).toBeCloseTo(widths[1]![1], 2);
    expect(widths[2]![0]).toBeLessThan(widths[1]![0]); // starts left of zero
  });
});
