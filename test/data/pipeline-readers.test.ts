import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectFormat,
  expandInputs,
  parseDelimited,
  readFileDocs,
  readInputs,
  splitLines,
  type ReaderOptions,
} from '../../src/data/pipeline/readers.js';
import type { Doc } from '../../src/data/pipeline/types.js';

const ZH = new URL('../../../shared/data/zh/sanguo_yanyi.txt', import.meta.url);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-readers-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
}

async function collect(path: string, opts: ReaderOptions = {}): Promise<Doc[]> {
  const out: Doc[] = [];
  for await (const d of readFileDocs(path, opts)) out.push(d);
  return out;
}

async function* chunked(text: string, sizes: number[]): AsyncGenerator<string> {
  let at = 0;
  let i = 0;
  while (at < text.length) {
    const n = Math.max(1, sizes[i++ % sizes.length] as number);
    yield text.slice(at, at + n);
    at += n;
  }
}

describe('plain text', () => {
  const text = 'First para line one.\r\nline two.\r\n\r\n\r\nSecond para.\n   \nThird para.\n';

  it('one document per file, CRLF kept verbatim (normalisation is a later stage)', async () => {
    const p = write('a.txt', text);
    const docs = await collect(p);
    expect(docs).toEqual([{ id: p, text, source: p }]);
  });

  it('one document per line, blank lines skipped, CR stripped, ids are path:line', async () => {
    const p = write('b.txt', text);
    const docs = await collect(p, { textMode: 'line' });
    expect(docs.map((d) => d.text)).toEqual(['First para line one.', 'line two.', 'Second para.', 'Third para.']);
    expect(docs.map((d) => d.id)).toEqual([`${p}:1`, `${p}:2`, `${p}:5`, `${p}:7`]);
  });

  it('paragraphs separated by blank (or whitespace-only) lines', async () => {
    const p = write('c.txt', text);
    const docs = await collect(p, { textMode: 'paragraph', source: 'books' });
    expect(docs.map((d) => d.text)).toEqual(['First para line one.\nline two.', 'Second para.', 'Third para.']);
    expect(docs.every((d) => d.source === 'books')).toBe(true);
  });

  it('gzip input gives the same documents as the plain file', async () => {
    const p = write('d.txt.gz', gzipSync(Buffer.from(text)));
    const docs = await collect(p, { textMode: 'paragraph' });
    expect(docs.map((d) => d.text)).toEqual(['First para line one.\nline two.', 'Second para.', 'Third para.']);
  });

  it('a corrupt gzip file fails with the path in the message', async () => {
    const p = write('bad.txt.gz', Buffer.from('definitely not gzip data'));
    await expect(collect(p)).rejects.toThrow(/bad\.txt\.gz.*gzip/);
  });

  it('decodes multi-byte UTF-8 split across 1 MiB read boundaries and drops a BOM', async () => {
    // ASCII padding puts a 3-byte character across the first 1 MiB boundary (after the 3-byte BOM); the
    // rest falls where it falls. The Chinese is the shared novel when present, else a generated text.
    const sample = existsSync(ZH) ? readFileSync(ZH, 'utf8').slice(0, 400_000) : '天下大势，分久必合，合久必分。'.repeat(30_000);
    const zh = 'a'.repeat(2 ** 20 - 4) + sample;
    const p = write('zh.txt', '\uFEFF' + zh);
    const docs = await collect(p, { maxDocChars: 10_000_000 });
    expect(docs).toHaveLength(1);
    expect(docs[0]?.text).toBe(zh);
  });

  it('file mode cuts a long file into parts at paragraph breaks, losing nothing', async () => {
    const paras = Array.from({ length: 400 }, (_, i) => `Paragraph ${i} ` + 'word '.repeat(20 + (i % 7)).trim());
    const full = paras.join('\n\n');
    const p = write('long.txt', full);
    const docs = await collect(p, { maxDocChars: 5000 });
    expect(docs.length).toBeGreaterThan(10);
    expect(docs.map((d) => d.text).join('')).toBe(full);
    for (const d of docs) expect(d.text.length).toBeLessThanOrEqual(5000);
    // Every part but the last ends at a paragraph break, and ids number the parts.
    for (const d of docs.slice(0, -1)) expect(d.text.endsWith('\n\n')).toBe(true);
    expect(docs.map((d) => d.id)).toEqual(docs.map((_, i) => `${p}#${i}`));
  });

  it('rejects an unknown text mode clearly', async () => {
    const p = write('m.txt', 'x\ny\n');
    await expect(collect(p, { textMode: 'sentence' as never })).rejects.toThrow(/unknown text mode 'sentence'/);
  });

  it('memory stays bounded: a 48 MB file read line by line does not grow the heap by its size', async () => {
    const line = 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.\n';
    const p = join(dir, 'big.txt');
    const count = Math.ceil(48e6 / line.length);
    writeFileSync(p, line.repeat(count));
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    let n = 0;
    for await (const d of readFileDocs(p, { textMode: 'line' })) {
      n++;
      if (d.text.length !== line.length - 1) throw new Error('bad line');
      if ((n & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    }
    expect(n).toBe(count);
    // Holding the file would need ≥ 48 MB (96 MB as UTF-16); a streaming reader holds a chunk or two plus garbage.
    expect(peak).toBeLessThan(24e6);
    rmSync(p);
  });
});

describe('JSONL', () => {
  it('reads the text field (dotted path) and the id field, skipping blank lines', async () => {
    const p = write('a.jsonl', ['{"id":"x1","doc":{"body":"hello there"}}', '', '{"id":7,"doc":{"body":"second"}}'].join('\n'));
    const docs = await collect(p, { textField: 'doc.body', idField: 'id' });
    expect(docs).toEqual([
      { id: 'x1', text: 'hello there', source: p },
      { id: '7', text: 'second', source: p },
    ]);
  });

  it('gzipped JSONL with the default "text" field and path:line ids', async () => {
    const p = write('b.jsonl.gz', gzipSync(Buffer.from('{"text":"one"}\n{"text":"two"}\n')));
    const docs = await collect(p);
    expect(docs.map((d) => [d.id, d.text])).toEqual([
      [`${p}:1`, 'one'],
      [`${p}:2`, 'two'],
    ]);
  });

  it('invalid JSON and a missing or non-string field fail naming file and line', async () => {
    const bad = write('c.jsonl', '{"text":"ok"}\n{"text": nope}\n');
    await expect(collect(bad)).rejects.toThrow(/c\.jsonl:2: invalid JSON/);
    const missing = write('d.jsonl', '{"text":"ok"}\n{"body":"x"}\n');
    await expect(collect(missing)).rejects.toThrow(/d\.jsonl:2: field 'text' is missing/);
    const num = write('e.jsonl', '{"text":42}\n');
    await expect(collect(num)).rejects.toThrow(/e\.jsonl:1: field 'text' is number, not a string/);
  });

  it('skipInvalid skips bad records instead', async () => {
    const p = write('f.jsonl', '{"text":"a"}\n{"text": nope}\n{"body":1}\n{"text":"b"}\n');
    const docs = await collect(p, { skipInvalid: true });
    expect(docs.map((d) => d.text)).toEqual(['a', 'b']);
  });

  it('a record over maxRecordChars is an error, not a silent split', async () => {
    const p = write('g.jsonl', `{"text":"${'x'.repeat(5000)}"}\n`);
    await expect(collect(p, { maxRecordChars: 1000 })).rejects.toThrow(/g\.jsonl:1: JSONL record longer than 1000/);
  });
});

describe('CSV / TSV', () => {
  it('quoted fields with commas, doubled quotes, CRLF and embedded newlines', async () => {
    const csv = 'id,text,label\r\n1,"Hello, ""world""\r\nsecond line",a\r\n2,plain text,b\r\n3,"",c\r\n';
    const p = write('a.csv', csv);
    const docs = await collect(p, { idField: 'id' });
    expect(docs).toEqual([
      { id: '1', text: 'Hello, "world"\r\nsecond line', source: p },
      { id: '2', text: 'plain text', source: p },
    ]);
  });

  it('column by index without a header; TSV', async () => {
    const p = write('b.tsv', 'x\tfirst doc\ny\t"quoted\ttab"\n');
    const docs = await collect(p, { header: false, textField: '1' });
    expect(docs.map((d) => d.text)).toEqual(['first doc', 'quoted\ttab']);
  });

  it('names the missing column and lists the header', async () => {
    const p = write('c.csv', 'a,b\n1,2\n');
    await expect(collect(p)).rejects.toThrow(/no column 'text' in header \[a, b\]/);
  });

  it('an unclosed quote is reported', async () => {
    const p = write('d.csv', 'text\n"never closed\nmore\n');
    await expect(collect(p)).rejects.toThrow(/row 2 has an unclosed quoted field/);
  });

  it('parses any RFC 4180 table, whatever the chunk boundaries (property)', async () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r\n', ' ', '字', 'é') as fc.Arbitrary<string>, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(field, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 }),
        async (rows, sizes) => {
          const quote = (f: string): string => (/[",\r\n]/.test(f) || f === '' ? `"${f.replace(/"/g, '""')}"` : f);
          const csv = rows.map((r) => r.map(quote).join(',')).join('\r\n') + '\r\n';
          const got: string[][] = [];
          for await (const row of parseDelimited(chunked(csv, sizes), ',', 1e6, 'prop.csv')) got.push(row);
          expect(got).toEqual(rows);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('splitLines', () => {
  it('handles CRLF split across chunks and a last line without newline', async () => {
    const lines: string[] = [];
    for await (const l of splitLines(chunked('ab\r\ncd\r\n\r\nef', [3, 1, 2]), 100, () => null)) lines.push(l);
    expect(lines).toEqual(['ab', 'cd', '', 'ef']);
  });
});

describe('inputs', () => {
  it('format by extension, .gz removed first', () => {
    expect(detectFormat('x/data.JSONL.gz')).toEqual({ format: 'jsonl', gzip: true });
    expect(detectFormat('a.tsv')).toEqual({ format: 'tsv', gzip: false });
    expect(detectFormat('a.csv.gz')).toEqual({ format: 'csv', gzip: true });
    expect(detectFormat('book.txt')).toEqual({ format: 'text', gzip: false });
  });

  it('directories recurse in sorted order skipping hidden files; globs; duplicates once', async () => {
    const root = join(dir, 'tree');
    write('tree/b/2.txt', 'two');
    write('tree/a.txt', 'one');
    write('tree/b/1.jsonl', '{"text":"jsonl one"}\n');
    write('tree/.hidden/x.txt', 'hidden');
    write('tree/.DS_Store', 'junk');
    const files = await expandInputs([root, join(root, 'b', '*.txt')]);
    expect(files).toEqual([join(root, 'a.txt'), join(root, 'b', '1.jsonl'), join(root, 'b', '2.txt')]);
    const texts: string[] = [];
    for await (const d of readInputs([root])) texts.push(d.text);
    expect(texts).toEqual(['one', 'jsonl one', 'two']);
  });

  it('an input that matches nothing is an error', async () => {
    await expect(expandInputs([join(dir, 'nope.txt')])).rejects.toThrow(/does not exist/);
    await expect(expandInputs([join(dir, 'nothing-*.zzz')])).rejects.toThrow(/matched no files/);
    await expect(expandInputs([])).rejects.toThrow(/no inputs/);
  });
});
