/**
 * Results of an evaluation run and the ways people read them: results.json (one per run: task,
 * metric, value, bootstrap stderr, config, model, date, Weft version), a Markdown summary table, and
 * one self-contained HTML page (tables and inline SVG charts; nothing loaded from the network).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { EfficiencySummary } from './efficiency.js';
import type { MetricValue, RobustnessValue, SampleRecord } from './harness.js';

export const RESULTS_FILE = 'results.json';
export const SUMMARY_FILE = 'summary.md';

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const Efficiency = z.object({
  scoring_tokens_per_s: z.number().nullable(),
  scored_tokens: z.number(),
  generation_tokens_per_s: z.number().nullable(),
  generated_tokens: z.number(),
  ttft_ms_mean: z.number().nullable(),
  ttft_ms_p50: z.number().nullable(),
  ttft_ms_p90: z.number().nullable(),
  peak_rss_mb: z.number(),
  wall_s: z.number(),
  requests: z.number(),
});

/** JSON has no NaN: non-finite numbers are written as null. */
const Num = z.number().nullable();

export const EvalResultsSchema = z.object({
  format: z.literal('weft-eval-results'),
  version: z.literal(1),
  weft_version: z.string(),
  date: z.string(),
  model: z.record(z.string(), Scalar),
  config: z.record(z.string(), z.unknown()),
  results: z.array(
    z.object({
      task: z.string(),
      group: z.string(),
      metric: z.string(),
      filter: z.string().nullable(),
      value: Num,
      stderr: Num,
      n: z.number(),
      higher_is_better: z.boolean(),
    }),
  ),
  efficiency: z.record(z.string(), Efficiency),
  robustness: z.array(
    z.object({
      task: z.string(),
      perturbation: z.string(),
      metric: z.string(),
      filter: z.string().nullable(),
      clean: Num,
      perturbed: Num,
      drop: Num,
      drop_stderr: Num,
      n: z.number(),
    }),
  ),
  warnings: z.array(z.string()),
});
export type EvalResults = z.infer<typeof EvalResultsSchema>;

const finite = (x: number | null): number | null => (x !== null && Number.isFinite(x) ? x : null);

export function makeResults(args: {
  weftVersion: string;
  model: Record<string, string | number | boolean | null>;
  config: Record<string, unknown>;
  metrics: readonly MetricValue[];
  efficiency: Record<string, EfficiencySummary>;
  robustness: readonly RobustnessValue[];
  warnings: readonly string[];
  date?: Date;
}): EvalResults {
  return {
    format: 'weft-eval-results',
    version: 1,
    weft_version: args.weftVersion,
    date: (args.date ?? new Date()).toISOString(),
    model: args.model,
    config: args.config,
    results: args.metrics.map((m) => ({ ...m, value: finite(m.value), stderr: finite(m.stderr) })),
    efficiency: args.efficiency,
    robustness: args.robustness.map((r) => ({ ...r, clean: finite(r.clean), perturbed: finite(r.perturbed), drop: finite(r.drop), drop_stderr: finite(r.drop_stderr) })),
    warnings: [...args.warnings],
  };
}

/** Writes results.json, summary.md and samples_<task>.jsonl into `dir`. */
export function writeRun(dir: string, results: EvalResults, samples: Record<string, readonly SampleRecord[]> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, RESULTS_FILE), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(dir, SUMMARY_FILE), markdownSummary(results));
  for (const [task, recs] of Object.entries(samples)) {
    writeFileSync(join(dir, `samples_${task}.jsonl`), recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
}

export function parseResults(json: unknown, source: string): EvalResults {
  const r = EvalResultsSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${source}: not a weft eval results file (${i?.path.join('.') ?? ''}: ${i?.message ?? ''})`);
  }
  return r.data;
}

/** Every results.json in `dir` (the directory itself and its immediate subdirectories), oldest first. */
export function readResultsDir(dir: string): EvalResults[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such results directory`);
  const files: string[] = [];
  if (existsSync(join(dir, RESULTS_FILE))) files.push(join(dir, RESULTS_FILE));
  for (const name of readdirSync(dir).sort()) {
    const f = join(dir, name, RESULTS_FILE);
    if (statSync(join(dir, name)).isDirectory() && existsSync(f)) files.push(f);
  }
  if (files.length === 0) throw new Error(`${dir}: no ${RESULTS_FILE} here or in its subdirectories; run weft eval run --out ${dir} first`);
  const runs = files.map((f) => {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new Error(`${f}: not valid JSON: ${(e as Error).message}`);
    }
    return parseResults(json, f);
  });
  return runs.sort((a, b) => a.date.localeCompare(b.date));
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

export function formatValue(metric: string, v: number | null): string {
  if (v === null) return '—';
  if (/perplexity/.test(metric)) return v >= 1000 ? v.toFixed(0) : v.toFixed(3);
  return v.toFixed(4);
}

function metricLabel(m: { metric: string; filter: string | null }): string {
  return m.filter === null || m.filter === 'none' ? m.metric : `${m.metric} (${m.filter})`;
}

function modelName(r: EvalResults): string {
  const m = r.model;
  const name = m.path ?? m.model ?? m.base_url ?? m.kind ?? 'model';
  return String(name);
}

export function markdownSummary(r: EvalResults): string {
  const lines = [
    `# Weft evaluation: ${modelName(r)}`,
    '',
    `Weft ${r.weft_version}, ${r.date}. Limit: ${String(r.config.limit ?? 'none')}.`,
    '',
    '| Task | Metric | Value | ± Stderr | n |',
    '|---|---|---:|---:|---:|',
  ];
  for (const m of r.results) {
    const name = m.group !== m.task ? `${m.task}` : m.task;
    lines.push(`| ${name} | ${metricLabel(m)} ${m.higher_is_better ? '↑' : '↓'} | ${formatValue(m.metric, m.value)} | ${m.stderr === null ? '—' : formatValue(m.metric, m.stderr)} | ${m.n} |`);
  }
  const eff = Object.entries(r.efficiency);
  if (eff.length > 0) {
    lines.push('', '## Efficiency', '', '| Task | Scoring tok/s | Generation tok/s | TTFT p50 (ms) | Peak RSS (MiB) | Wall (s) |', '|---|---:|---:|---:|---:|---:|');
    const f = (x: number | null, d = 1): string => (x === null ? '—' : x.toFixed(d));
    for (const [task, e] of eff) lines.push(`| ${task} | ${f(e.scoring_tokens_per_s)} | ${f(e.generation_tokens_per_s)} | ${f(e.ttft_ms_p50)} | ${f(e.peak_rss_mb, 0)} | ${f(e.wall_s)} |`);
  }
  if (r.robustness.length > 0) {
    lines.push('', '## Robustness (drop = clean − perturbed)', '', '| Task | Perturbation | Metric | Clean | Perturbed | Drop | ± Stderr |', '|---|---|---|---:|---:|---:|---:|');
    for (const x of r.robustness) {
      lines.push(`| ${x.task} | ${x.perturbation} | ${metricLabel(x)} | ${formatValue(x.metric, x.clean)} | ${formatValue(x.metric, x.perturbed)} | ${formatValue(x.metric, x.drop)} | ${formatValue(x.metric, x.drop_stderr)} |`);
    }
  }
  if (r.warnings.length > 0) lines.push('', '## Warnings', '', ...r.warnings.map((w) => `- ${w}`));
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const PALETTE = ['#3b6fb6', '#e0843a', '#4c9a5b', '#b94a4a', '#7d5ba6', '#8a6d3b', '#d16ba5', '#5f6b73'];

export interface BarSeries {
  name: string;
  values: (number | null)[];
  errors?: (number | null)[];
}

/** A horizontal grouped bar chart as inline SVG (bars start at zero; negative values go left). */
export function barChart(opts: { title: string; categories: string[]; series: BarSeries[]; format?: (v: number) => string; width?: number; showMissing?: boolean }): string {
  const { categories, series } = opts;
  const fmt = opts.format ?? ((v: number) => v.toFixed(3));
  const width = opts.width ?? 940;
  const labelW = 300;
  const valueW = 70;
  const barH = 14;
  const gap = 10;
  const top = 34;
  const legendH = series.length > 1 ? 20 : 0;
  const rowH = series.length * barH + gap;
  const height = top + legendH + categories.length * rowH + 24;
  let lo = 0;
  let hi = 0;
  for (const s of series) {
    s.values.forEach((v, i) => {
      if (v === null) return;
      const e = s.errors?.[i] ?? 0;
      lo = Math.min(lo, v - (e ?? 0));
      hi = Math.max(hi, v + (e ?? 0));
    });
  }
  if (hi === lo) hi = lo + 1;
  const plotW = width - labelW - valueW;
  const x = (v: number): number => labelW + ((v - lo) / (hi - lo)) * plotW;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(opts.title)}">`);
  parts.push(`<text x="0" y="18" class="ct">${escapeHtml(opts.title)}</text>`);
  series.forEach((s, si) => {
    if (series.length < 2) return;
    const lx = labelW + si * 150;
    parts.push(`<rect x="${lx}" y="${top - 6}" width="10" height="10" fill="${PALETTE[si % PALETTE.length]}"/><text x="${lx + 14}" y="${top + 3}" class="cl">${escapeHtml(s.name.slice(0, 22))}</text>`);
  });
  const y0 = top + legendH;
  const grid: string[] = [];
  // Ticks at round steps, with faint grid lines.
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) {
    const tx = x(t).toFixed(1);
    grid.push(`<line x1="${tx}" y1="${y0 - 4}" x2="${tx}" y2="${height - 20}" stroke="#e6e8eb" stroke-width="1"/>`);
    grid.push(`<text x="${tx}" y="${height - 6}" text-anchor="middle" class="cv">${escapeHtml(fmt(Math.abs(t) < 1e-12 ? 0 : t))}</text>`);
  }
  parts.push(...grid);
  parts.push(`<line x1="${x(0).toFixed(1)}" y1="${y0 - 4}" x2="${x(0).toFixed(1)}" y2="${height - 20}" stroke="#999" stroke-width="1"/>`);
  categories.forEach((cat, ci) => {
    const ry = y0 + ci * rowH;
    parts.push(`<text x="${labelW - 8}" y="${ry + (series.length * barH) / 2 + 4}" text-anchor="end" class="cl">${escapeHtml(cat.length > 46 ? `${cat.slice(0, 45)}…` : cat)}</text>`);
    series.forEach((s, si) => {
      const v = s.values[ci];
      const by = ry + si * barH;
      if (v === null || v === undefined) {
        if (opts.showMissing === false) return;
        parts.push(`<text x="${x(0) + 4}" y="${by + barH - 3}" class="cv">n/a</text>`);
        return;
      }
      const x1 = Math.min(x(0), x(v));
      const w = Math.max(1, Math.abs(x(v) - x(0)));
      parts.push(`<rect x="${x1.toFixed(1)}" y="${by + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${PALETTE[si % PALETTE.length]}"><title>${escapeHtml(`${s.name}: ${fmt(v)}`)}</title></rect>`);
      const e = s.errors?.[ci];
      if (e !== null && e !== undefined && e > 0) {
        const cy = by + barH / 2;
        parts.push(`<line x1="${x(v - e).toFixed(1)}" y1="${cy}" x2="${x(v + e).toFixed(1)}" y2="${cy}" stroke="#222" stroke-width="1"/>`);
      }
      parts.push(`<text x="${(Math.max(x(v), x(0)) + 4 + (e !== null && e !== undefined && e > 0 ? Math.max(0, x(v + e) - x(v)) : 0)).toFixed(1)}" y="${by + barH - 3}" class="cv">${escapeHtml(fmt(v))}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2329;margin:0;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.sub{color:#5d6770;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0 16px;font-variant-numeric:tabular-nums;width:100%}
th,td{padding:4px 10px;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
th{background:#f1f3f5;font-weight:600}td.n,th.n{text-align:right}tr.group td{font-weight:600;background:#fafbfc}
.ct{font:600 13px system-ui,sans-serif;fill:#1d2329}.cl{font:12px system-ui,sans-serif;fill:#333}.cv{font:11px system-ui,sans-serif;fill:#555}
.chart{margin:10px 0 18px;overflow-x:auto}.warn{background:#fff6e0;border:1px solid #f0d9a0;padding:8px 12px;border-radius:4px}
code{font:12px ui-monospace,monospace;background:#f1f3f5;padding:1px 4px;border-radius:3px}
.kv{table-layout:fixed}.kv td:first-child{color:#5d6770;width:180px}.kv code{white-space:pre-wrap;overflow-wrap:anywhere}
`;

function table(head: string[], rows: string[][], numeric: boolean[], rowClass: (i: number) => string = () => ''): string {
  const th = head.map((h, j) => `<th${numeric[j] === true ? ' class="n"' : ''}>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r, i) => `<tr class="${rowClass(i)}">${r.map((c, j) => `<td${numeric[j] === true ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function runLabel(r: EvalResults, i: number, all: readonly EvalResults[]): string {
  const name = modelName(r);
  const base = name.split('/').filter((s) => s !== '').pop() ?? name;
  return all.length > 1 ? `${i + 1}. ${base}` : base;
}

/** One self-contained HTML page for one or more runs (charts compare the runs side by side). */
export function htmlReport(runs: readonly EvalResults[], title = 'Weft evaluation report'): string {
  if (runs.length === 0) throw new Error('htmlReport: no runs to report');
  const labels = runs.map((r, i) => runLabel(r, i, runs));
  const out: string[] = [];
  out.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${CSS}</style></head><body><main>`);
  out.push(`<h1>${escapeHtml(title)}</h1><p class="sub">${runs.length} run${runs.length > 1 ? 's' : ''}; generated ${escapeHtml(new Date().toISOString())} by Weft ${escapeHtml(runs[runs.length - 1]!.weft_version)}.</p>`);

  // Overview charts: bounded scores (acc, exact match, pass@k) and bits per byte, one series per run.
  const keyOf = (m: { task: string; metric: string; filter: string | null }): string => `${m.task} · ${metricLabel(m)}`;
  const collect = (pred: (m: EvalResults['results'][number]) => boolean): { cats: string[]; series: BarSeries[] } => {
    const cats: string[] = [];
    for (const r of runs) for (const m of r.results) if (pred(m) && !cats.includes(keyOf(m))) cats.push(keyOf(m));
    const series = runs.map((r, i) => {
      const byKey = new Map(r.results.filter(pred).map((m) => [keyOf(m), m]));
      return { name: labels[i]!, values: cats.map((c) => byKey.get(c)?.value ?? null), errors: cats.map((c) => byKey.get(c)?.stderr ?? null) };
    });
    return { cats, series };
  };
  const scores = collect((m) => m.higher_is_better);
  const bpb = collect((m) => m.metric === 'bits_per_byte');
  out.push('<h2>Overview</h2>');
  if (scores.cats.length > 0) out.push(`<div class="chart">${barChart({ title: 'Scores (higher is better; bars show ± bootstrap stderr)', categories: scores.cats, series: scores.series, format: (v) => v.toFixed(3) })}</div>`);
  if (bpb.cats.length > 0) out.push(`<div class="chart">${barChart({ title: 'Bits per byte (lower is better)', categories: bpb.cats, series: bpb.series, format: (v) => v.toFixed(3) })}</div>`);

  runs.forEach((r, i) => {
    out.push(`<h2>Run ${escapeHtml(labels[i]!)}</h2>`);
    const modelRows = Object.entries(r.model).map(([k, v]) => [escapeHtml(k), `<code>${escapeHtml(String(v))}</code>`]);
    const cfgRows = Object.entries(r.config).map(([k, v]) => [escapeHtml(k), `<code>${escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</code>`]);
    out.push(`<h3>Model and configuration</h3><table class="kv"><tbody>${[...modelRows, ['date', escapeHtml(r.date)], ['weft version', escapeHtml(r.weft_version)], ...cfgRows].map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('')}</tbody></table>`);
    out.push('<h3>Results</h3>');
    out.push(
      table(
        ['Task', 'Metric', '', 'Value', '± Stderr', 'n'],
        r.results.map((m) => [escapeHtml(m.task), escapeHtml(metricLabel(m)), m.higher_is_better ? '↑' : '↓', formatValue(m.metric, m.value), m.stderr === null ? '—' : formatValue(m.metric, m.stderr), String(m.n)]),
        [false, false, false, true, true, true],
        (j) => (r.results[j]!.group === r.results[j]!.task && r.results.some((x) => x.group === r.results[j]!.task && x.task !== x.group) ? 'group' : ''),
      ),
    );
    const eff = Object.entries(r.efficiency);
    if (eff.length > 0) {
      const f = (x: number | null, d = 1): string => (x === null ? '—' : x.toFixed(d));
      out.push('<h3>Efficiency</h3>');
      out.push(
        table(
          ['Task', 'Scoring tok/s', 'Generation tok/s', 'TTFT mean / p50 / p90 (ms)', 'Peak RSS (MiB)', 'Requests', 'Wall (s)'],
          eff.map(([t, e]) => [escapeHtml(t), f(e.scoring_tokens_per_s), f(e.generation_tokens_per_s), `${f(e.ttft_ms_mean)} / ${f(e.ttft_ms_p50)} / ${f(e.ttft_ms_p90)}`, f(e.peak_rss_mb, 0), String(e.requests), f(e.wall_s)]),
          [false, true, true, true, true, true, true],
        ),
      );
      const tps = eff.filter(([, e]) => e.scoring_tokens_per_s !== null || e.generation_tokens_per_s !== null);
      if (tps.length > 0) {
        out.push(
          `<div class="chart">${barChart({
            title: 'Throughput (tokens/s)',
            categories: tps.map(([t]) => t),
            series: [
              { name: 'scoring', values: tps.map(([, e]) => e.scoring_tokens_per_s) },
              { name: 'generation', values: tps.map(([, e]) => e.generation_tokens_per_s) },
            ],
            format: (v) => v.toFixed(0),
            showMissing: false,
          })}</div>`,
        );
      }
    }
    if (r.robustness.length > 0) {
      out.push('<h3>Robustness</h3><p class="sub">Drop = clean − perturbed on the same documents (positive: the perturbation hurts); ± paired bootstrap stderr.</p>');
      out.push(
        table(
          ['Task', 'Perturbation', 'Metric', 'Clean', 'Perturbed', 'Drop', '± Stderr'],
          r.robustness.map((x) => [escapeHtml(x.task), escapeHtml(x.perturbation), escapeHtml(metricLabel(x)), formatValue(x.metric, x.clean), formatValue(x.metric, x.perturbed), formatValue(x.metric, x.drop), formatValue(x.metric, x.drop_stderr)]),
          [false, false, false, true, true, true, true],
        ),
      );
      const perts = [...new Set(r.robustness.map((x) => x.perturbation))];
      const cats = [...new Set(r.robustness.map((x) => `${x.task} · ${metricLabel(x)}`))];
      out.push(
        `<div class="chart">${barChart({
          title: 'Metric drop under each perturbation',
          categories: cats,
          series: perts.map((p) => ({
            name: p,
            values: cats.map((c) => r.robustness.find((x) => x.perturbation === p && `${x.task} · ${metricLabel(x)}` === c)?.drop ?? null),
            errors: cats.map((c) => r.robustness.find((x) => x.perturbation === p && `${x.task} · ${metricLabel(x)}` === c)?.drop_stderr ?? null),
          })),
          format: (v) => v.toFixed(3),
        })}</div>`,
      );
    }
    if (r.warnings.length > 0) out.push(`<div class="warn"><strong>Warnings</strong><ul>${r.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul></div>`);
  });
  out.push('</main></body></html>\n');
  return out.join('\n');
}
