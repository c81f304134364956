/**
 * The statistics page: one self-contained HTML file (inline CSS and SVG, no scripts, no external
 * resources) so it opens anywhere, offline, and can be attached to a report as is.
 */
import type { PipelineStats } from './stats.js';
import type { StageStats } from './types.js';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function pct(part: number, whole: number): string {
  if (!(whole > 0)) return '–';
  const p = (100 * part) / whole;
  // "0.0%" for a rule that did drop documents would read as "never fired".
  return p > 0 && p < 0.05 ? '<0.1%' : `${p.toFixed(1)}%`;
}

interface Bar {
  label: string;
  value: number;
  /** Optional second value drawn behind (e.g. docs in, with docs out in front). */
  total?: number;
  note?: string;
}

/** Horizontal bar chart as inline SVG; widths scale to the largest value. */
function barChart(bars: Bar[], opts: { color?: string; unit?: (v: number) => string } = {}): string {
  if (bars.length === 0) return '<p class="muted">none</p>';
  const unit = opts.unit ?? fmtInt;
  const rowH = 22;
  const labelW = 200;
  const barW = 420;
  const valueW = 190;
  const width = labelW + barW + valueW;
  const height = bars.length * rowH + 4;
  const max = Math.max(1, ...bars.map((b) => Math.max(b.value, b.total ?? 0)));
  const rows = bars.map((b, i) => {
    const y = i * rowH + 2;
    const w = (b.value / max) * barW;
    const back = b.total !== undefined ? `<rect x="${labelW}" y="${y + 3}" width="${((b.total / max) * barW).toFixed(1)}" height="${rowH - 8}" fill="#dde3ea"/>` : '';
    const label = b.label.length > 28 ? `${b.label.slice(0, 27)}…` : b.label;
    const text = b.note ? `${unit(b.value)} (${b.note})` : unit(b.value);
    return (
      `<g><title>${esc(b.label)}: ${esc(text)}</title>` +
      `<text x="${labelW - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(label)}</text>${back}` +
      `<rect x="${labelW}" y="${y + 3}" width="${Math.max(w, b.value > 0 ? 1 : 0).toFixed(1)}" height="${rowH - 8}" fill="${opts.color ?? '#3b6ea8'}"/>` +
      `<text x="${labelW + barW + 8}" y="${y + rowH / 2 + 4}">${esc(text)}</text></g>`
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">${rows.join('')}</svg>`;
}

function table(head: string[], rows: string[][], numericFrom = 1): string {
  const th = head.map((h, i) => `<th${i >= numericFrom ? ' class="num"' : ''}>${esc(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`).join('');
  return `<table><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
}

function stageSection(stages: StageStats[]): string {
  const rows = stages.map((s) => [
    esc(s.name),
    fmtInt(s.docsIn),
    fmtInt(s.docsOut),
    pct(s.docsIn - s.docsOut, s.docsIn),
    fmtBytes(s.bytesIn),
    fmtBytes(s.bytesOut),
    s.tokensOut !== undefined ? fmtInt(s.tokensOut) : '–',
    s.seconds !== undefined ? s.seconds.toFixed(2) : '–',
    s.seconds ? (s.bytesIn / 1e6 / s.seconds).toFixed(1) : '–',
  ]);
  const chart = barChart(
    stages.map((s) => ({ label: s.name, value: s.docsOut, total: s.docsIn, note: `of ${fmtInt(s.docsIn)}` })),
    {},
  );
  return (
    `<h2>Stages</h2>` +
    table(['stage', 'docs in', 'docs out', 'dropped', 'bytes in', 'bytes out', 'tokens out', 'seconds', 'MB/s'], rows) +
    `<h3>Documents kept per stage</h3><p class="muted">dark: documents out; light: documents in.</p>${chart}`
  );
}

function dropsSection(stages: StageStats[]): string {
  const all: Array<{ stage: string; rule: string; count: number; examples: string[]; docsIn: number }> = [];
  for (const s of stages) {
    for (const [rule, d] of Object.entries(s.drops)) all.push({ stage: s.name, rule, count: d.count, examples: d.examples, docsIn: s.docsIn });
  }
  if (all.length === 0) return '<h2>Drops per rule</h2><p class="muted">No document was dropped.</p>';
  all.sort((a, b) => b.count - a.count || (a.rule < b.rule ? -1 : 1));
  const chart = barChart(
    all.map((d) => ({ label: d.rule, value: d.count, note: pct(d.count, d.docsIn) })),
    { color: '#b5523b' },
  );
  const details = all
    .map(
      (d) =>
        `<details><summary><b>${esc(d.rule)}</b> <span class="muted">(${esc(d.stage)})</span> — ${fmtInt(d.count)} dropped, ${pct(d.count, d.docsIn)} of the stage's input</summary>` +
        (d.examples.length > 0 ? `<ol>${d.examples.map((e) => `<li><pre>${esc(e)}</pre></li>`).join('')}</ol>` : '<p class="muted">no examples kept</p>') +
        `</details>`,
    )
    .join('');
  return `<h2>Drops per rule</h2>${chart}<h3>Examples</h3>${details}`;
}

function countersSection(stages: StageStats[]): string {
  const rows: string[][] = [];
  for (const s of stages) {
    // Largest first within a stage: language counters alone can be dozens of rows.
    const entries = Object.entries(s.counters ?? {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const [k, v] of entries) rows.push([esc(s.name), esc(k), fmtInt(v)]);
  }
  if (rows.length === 0) return '';
  return `<h2>Stage counters</h2>${table(['stage', 'counter', 'value'], rows, 2)}`;
}

function languagesSection(langs: NonNullable<PipelineStats['languages']>): string {
  const entries = Object.entries(langs).sort((a, b) => b[1].bytes - a[1].bytes || (a[0] < b[0] ? -1 : 1));
  const totalDocs = entries.reduce((s, [, v]) => s + v.docs, 0);
  const totalBytes = entries.reduce((s, [, v]) => s + v.bytes, 0);
  const hasTokens = entries.some(([, v]) => v.tokens !== undefined);
  const rows = entries.map(([lang, v]) => {
    const r = [esc(lang), fmtInt(v.docs), pct(v.docs, totalDocs), fmtBytes(v.bytes), pct(v.bytes, totalBytes)];
    if (hasTokens) r.push(v.tokens !== undefined ? fmtInt(v.tokens) : '–');
    return r;
  });
  const head = ['language', 'docs', 'docs %', 'bytes', 'bytes %'];
  if (hasTokens) head.push('tokens');
  const chart = barChart(
    entries.map(([lang, v]) => ({ label: lang, value: v.bytes, note: pct(v.bytes, totalBytes) })),
    { color: '#4f8a4b', unit: fmtBytes },
  );
  return `<h2>Languages</h2>${table(head, rows)}${chart}`;
}

function duplicatesSection(d: NonNullable<PipelineStats['duplicates']>): string {
  const rows = [
    ['method', esc(d.method)],
    ['clusters', fmtInt(d.clusters)],
    ['documents removed', fmtInt(d.docsRemoved)],
    ['largest cluster', fmtInt(d.largestCluster)],
  ];
  const ex = (d.examples ?? [])
    .map((c) => `<li>kept <code>${esc(c.kept)}</code>; removed ${c.removed.map((r) => `<code>${esc(r)}</code>`).join(', ')}</li>`)
    .join('');
  return `<h2>Duplicates</h2>${table(['', 'value'], rows)}${ex ? `<h3>Example clusters</h3><ul>${ex}</ul>` : ''}`;
}

/** Render the statistics as one HTML document. */
export function renderStatsHtml(stats: PipelineStats, title = 'Weft data pipeline statistics'): string {
  const stages = stats.stages;
  const first = stages[0];
  const last = stages[stages.length - 1];
  const summaryRows: string[][] = [];
  if (first && last) {
    summaryRows.push(['documents', fmtInt(first.docsIn), fmtInt(last.docsOut), pct(last.docsOut, first.docsIn)]);
    summaryRows.push(['bytes (UTF-8)', fmtBytes(first.bytesIn), fmtBytes(last.bytesOut), pct(last.bytesOut, first.bytesIn)]);
  }
  if (stats.output?.tokens !== undefined) summaryRows.push(['tokens', '–', fmtInt(stats.output.tokens), '–']);
  let extra = '';
  if (stats.output) extra += `<h2>Output</h2>${table(['', 'value'], Object.entries(stats.output).map(([k, v]) => [esc(k), fmtInt(v ?? 0)]))}`;
  if (stats.extra && Object.keys(stats.extra).length > 0) extra += `<h2>Other</h2><pre>${esc(JSON.stringify(stats.extra, null, 2))}</pre>`;
  const css = `
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:14px;margin:24px auto;max-width:1100px;color:#1d2733;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccd4dd;padding-bottom:4px}h3{font-size:14px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}th,td{border:1px solid #ccd4dd;padding:4px 10px;text-align:left}
th{background:#eef2f6}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7785}pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:6px;margin:2px 0;font-size:12px}
details{margin:4px 0}summary{cursor:pointer}svg{display:block;margin:6px 0}code{font-size:12px}`;
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${esc(title)}</title><style>${css}</style></head><body>` +
    `<h1>${esc(title)}</h1>` +
    (stats.seconds !== undefined ? `<p class="muted">Run time ${stats.seconds.toFixed(1)} s.</p>` : '') +
    (summaryRows.length > 0 ? `<h2>Summary</h2>${table(['', 'in', 'out', 'kept'], summaryRows)}` : '') +
    stageSection(stages) +
    dropsSection(stages) +
    countersSection(stages) +
    (stats.languages ? languagesSection(stats.languages) : '') +
    (stats.duplicates ? duplicatesSection(stats.duplicates) : '') +
    extra +
    `</body></html>\n`
  );
}
