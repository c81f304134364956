/** Loaders: every format keeps source, location and text; directories and globs find the files. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCsvString, loadFile, loadHtmlString, loadJsonlString, loadMarkdownString, loadPath, resolveInputs } from '../../src/rag/loaders.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-rag-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A two-page PDF with Helvetica text, xref offsets computed. */
function tinyPdf(pages: string[]): Buffer {
  const objs: string[] = [];
  const pageIds = pages.map((_, i) => 3 + i * 2);
  const fontId = 3 + pages.length * 2;
  objs[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objs[2] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${pages.length} >>`;
  pages.forEach((text, i) => {
    const lines = text.split('\n');
    const ops = lines.map((l, j) => `BT /F1 12 Tf 72 ${720 - j * 16} Td (${l}) Tj ET`).join('\n');
    objs[pageIds[i]!] = `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${pageIds[i]! + 1} 0 R /Resources << /Font << /F1 ${fontId} 0 R >> >> >>`;
    objs[pageIds[i]! + 1] = `<< /Length ${ops.length} >>\nstream\n${ops}\nendstream`;
  });
  objs[fontId] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>';
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  for (let i = 1; i < objs.length; i++) {
    offsets[i] = out.length;
    out += `${i} 0 obj\n${objs[i]}\nendobj\n`;
  }
  const xref = out.length;
  out += `xref\n0 ${objs.length}\n0000000000 65535 f \n${offsets.slice(1).map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objs.length} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

describe('loaders', () => {
  it('Markdown: one document per heading section with its path and offset', () => {
    const md = 'Preface\n# A\ntext a\n## B\ntext b\n';
    const docs = loadMarkdownString(md, 'x.md');
    expect(docs.map((d) => [d.location.headingPath ?? [], d.text])).toEqual([
      [[], 'Preface\n'],
      [['A'], '# A\ntext a\n'],
      [['A', 'B'], '## B\ntext b\n'],
    ]);
    for (const d of docs) expect(md.slice(d.location.start, d.location.end)).toBe(d.text);
  });

  it('HTML: text without scripts and styles, headings as sections, entities decoded', () => {
    const html =
      '<html><head><title>T</title><style>x{}</style></head><body><h1>Guide</h1><p>Intro &amp; more.</p><script>bad()</script>' +
      '<h2>Install</h2><p>Run <b>npm</b>   i.</p><h2>Use</h2><ul><li>a</li><li>b</li></ul><pre>line 1\nline 2</pre></body></html>';
    const docs = loadHtmlString(html, 'x.html');
    expect(docs.map((d) => [d.location.headingPath, d.text])).toEqual([
      [['Guide'], '# Guide\nIntro & more.'],
      [['Guide', 'Install'], '## Install\nRun npm i.'],
      [['Guide', 'Use'], '## Use\na\nb\nline 1\nline 2'],
    ]);
    expect(docs[0]!.metadata).toEqual({ title: 'T' });
    expect(docs.map((d) => d.text).join('\n')).not.toContain('bad()');
  });

  it('JSONL and CSV: field mapping picks the text and the metadata', () => {
    const jsonl = '{"title":"A","body":"alpha","year":2020,"tags":["x"]}\n\n{"title":"B","body":"beta","year":2021}\n';
    const docs = loadJsonlString(jsonl, 'x.jsonl', { textFields: ['title', 'body'], metadataFields: ['year', 'tags'] });
    expect(docs.map((d) => [d.text, d.location.row, d.metadata])).toEqual([
      ['A\n\nalpha', 1, { year: 2020, tags: ['x'] }],
      ['B\n\nbeta', 3, { year: 2021 }],
    ]);
    expect(() => loadJsonlString('{"x":1}\n', 'bad.jsonl')).toThrow(/bad.jsonl:1: record has none of the text field\(s\) text/);
    expect(() => loadJsonlString('{"x":\n', 'bad.jsonl')).toThrow(/bad.jsonl:1: invalid JSON/);
    const csv = 'id,question,answer\n1,"What, exactly?",Yes\n2,Why,"Because\nof it"\n';
    const rows = loadCsvString(csv, 'x.csv', { textFields: ['question', 'answer'], metadataFields: ['id'] });
    expect(rows.map((d) => [d.text, d.location.row, d.metadata])).toEqual([
      ['What, exactly?\n\nYes', 1, { id: '1' }],
      ['Why\n\nBecause\nof it', 2, { id: '2' }],
    ]);
  });

  it('PDF: one document per page, with the page number', async () => {
    const path = join(dir, 'two.pdf');
    writeFileSync(path, tinyPdf(['Hello page one.\nSecond line.', 'Page two says goodbye.']));
    const docs = await loadFile(path);
    expect(docs.map((d) => [d.location.page, d.text.replace(/\s+/g, ' ')])).toEqual([
      [1, 'Hello page one. Second line.'],
      [2, 'Page two says goodbye.'],
    ]);
    expect(docs[0]!.source).toBe(path);
    writeFileSync(join(dir, 'broken.pdf'), 'not a pdf');
    await expect(loadFile(join(dir, 'broken.pdf'))).rejects.toThrow(/not a readable PDF/);
  });

  it('directories and globs: every supported file, sorted; unknown extensions skipped', async () => {
    const d = join(dir, 'tree');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'a.txt'), 'plain text');
    writeFileSync(join(d, 'sub', 'b.md'), '# B\nbee');
    writeFileSync(join(d, 'sub', 'c.bin'), 'skip me');
    expect((await resolveInputs(d)).map((f) => f.slice(d.length))).toEqual(['/a.txt', '/sub/b.md']);
    expect((await resolveInputs(`${d}/**/*.md`)).map((f) => f.slice(d.length))).toEqual(['/sub/b.md']);
    const docs = await loadPath(d);
    expect(docs.map((d2) => d2.text)).toEqual(['plain text', '# B\nbee']);
    await expect(resolveInputs(join(d, 'nothing-*.xyz'))).rejects.toThrow(/no supported files/);
    await expect(loadFile(join(d, 'sub', 'c.bin'))).rejects.toThrow(/no loader for '.bin'/);
  });
});
