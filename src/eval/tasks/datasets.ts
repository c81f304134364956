/** Reading benchmark files into documents (plain objects the templates read). */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseJsonlObjects } from '../../io/jsonl.js';
import type { DatasetFormat, DatasetSpec } from './schema.js';
import type { Doc } from './template.js';

/** RFC 4180 CSV (quoted fields may hold commas, quotes as "" and newlines). */
export function parseCsv(text: string, file = 'csv'): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
    i++;
  }
  if (quoted) throw new Error(`${file}: unterminated quoted field at the end of the file`);
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function withHeader(rows: string[][], file: string): Doc[] {
  const [header, ...body] = rows;
  if (header === undefined) throw new Error(`${file}: empty file (expected a header row)`);
  return body.map((cells, r) => {
    if (cells.length !== header.length) {
      throw new Error(`${file}: row ${r + 2} has ${cells.length} fields, the header has ${header.length}`);
    }
    return Object.fromEntries(header.map((h, j) => [h, cells[j]!]));
  });
}

function parseJsonl(text: string, file: string): Doc[] {
  return parseJsonlObjects(text, file).map((r) => r.record as Doc);
}

/**
 * WikiText articles: a new article starts at each top-level heading line " = Title = " (second-level
 * headings are " = = … = = "), as EleutherAI's wikitext_document_level pages. Lines keep their "\n".
 */
export function wikitextArticles(text: string): string[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const docs: string[] = [];
  let cur: string[] = [];
  for (const line of lines) {
    if (/^ = [^=].* = $/.test(line) && cur.length > 0) {
      docs.push(cur.join(''));
      cur = [];
    }
    if (line !== '' || cur.length > 0) cur.push(`${line}\n`);
  }
  if (cur.length > 0) docs.push(cur.join('').replace(/\n+$/, '\n'));
  return docs.filter((d) => d.trim() !== '');
}

function textDocs(text: string, spec: DatasetSpec): Doc[] {
  let t = text;
  if (spec.startFraction !== undefined) t = t.slice(Math.floor(t.length * spec.startFraction));
  let pieces: string[];
  if (spec.documents === 'wikitext-articles') pieces = wikitextArticles(t);
  else if (spec.documents === 'blank-lines') pieces = t.split(/\n\s*\n/).map((p) => p.trim()).filter((p) => p !== '');
  else pieces = [t];
  return pieces.map((p) => ({ text: p }));
}

export function parseDataset(raw: Buffer, format: DatasetFormat, spec: DatasetSpec, file: string): Doc[] {
  let docs: Doc[];
  switch (format) {
    case 'jsonl':
      docs = parseJsonl(raw.toString('utf8'), file);
      break;
    case 'jsonl.gz':
      docs = parseJsonl(gunzipSync(raw).toString('utf8'), file);
      break;
    case 'csv':
      docs = withHeader(parseCsv(raw.toString('utf8'), file), file);
      break;
    case 'tsv': {
      const lines = raw.toString('utf8').replace(/\r\n/g, '\n').split('\n').filter((l) => l !== '');
      docs = withHeader(lines.map((l) => l.split('\t')), file);
      break;
    }
    case 'text':
      docs = textDocs(raw.toString('utf8'), spec);
      break;
  }
  for (const field of spec.integerFields) {
    docs.forEach((d, i) => {
      const v = Number(d[field]);
      if (!Number.isInteger(v)) throw new Error(`${file}: document ${i}: field "${field}" is ${JSON.stringify(d[field])}, expected an integer`);
      d[field] = v;
    });
  }
  return docs;
}

export function readDataset(path: string, spec: DatasetSpec): Doc[] {
  if (!existsSync(path)) throw new Error(`dataset file ${path} does not exist`);
  return parseDataset(readFileSync(path), spec.format, spec, path);
}
