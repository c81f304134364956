/**
 * Loaders: files to Documents. Plain text is one document; Markdown and HTML are one document per
 * heading section (with the heading path); PDF is one document per page; JSONL and CSV are one
 * document per record, the text and metadata fields chosen by a field mapping. A directory or glob
 * loads every supported file under it. Each document's location.start is its offset in the file's
 * extracted text, so chunk spans are positions in the file (pages and rows restart at 0).
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import fg from 'fast-glob';
import { Parser } from 'htmlparser2';
import { parse as parseCsv } from 'csv-parse/sync';
import { parseJsonlObjects } from '../io/jsonl.js';
import { markdownSections } from './splitters.js';
import type { Document, Metadata, MetadataValue } from './types.js';

export type LoaderKind = 'text' | 'markdown' | 'html' | 'pdf' | 'jsonl' | 'csv';

/** How a JSONL record or CSV row becomes a document. */
export interface FieldMapping {
  /** Field(s) whose values form the text (joined by a blank line). Default 'text'. */
  textFields?: string[];
  /** Fields copied into metadata (default: none). */
  metadataFields?: string[];
}

export interface LoadOptions {
  fields?: FieldMapping;
  /** Force a loader instead of choosing by extension. */
  kind?: LoaderKind;
}

const BY_EXTENSION: Record<string, LoaderKind> = {
  '.txt': 'text',
  '.text': 'text',
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.html': 'html',
  '.htm': 'html',
  '.pdf': 'pdf',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.tsv': 'csv',
};

export const SUPPORTED_EXTENSIONS = Object.keys(BY_EXTENSION);

export function loaderKindFor(path: string): LoaderKind | null {
  return BY_EXTENSION[extname(path).toLowerCase()] ?? null;
}

export function loadTextString(text: string, source: string): Document[] {
  return [{ text, source, location: { start: 0, end: text.length }, metadata: {} }];
}

/** One document per heading section, text including its heading line. */
export function loadMarkdownString(text: string, source: string): Document[] {
  return markdownSections(text).map((s) => ({
    text: text.slice(s.start, s.end),
    source,
    location: { start: s.start, end: s.end, ...(s.headingPath.length > 0 ? { headingPath: s.headingPath } : {}) },
    metadata: {},
  }));
}

const BLOCK_TAGS = new Set(['p', 'div', 'section', 'article', 'br', 'li', 'ul', 'ol', 'tr', 'table', 'blockquote', 'pre', 'header', 'footer', 'main', 'aside', 'dt', 'dd', 'hr', 'figcaption', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
const SKIP_TAGS = new Set(['script', 'style', 'noscript', 'template', 'svg', 'head']);

/**
 * HTML to text: scripts and styles dropped, block elements on their own lines, whitespace collapsed
 * as a browser would; h1–h6 start sections and set the heading path.
 */
export function loadHtmlString(html: string, source: string): Document[] {
  const sections: { headingPath: string[]; lines: string[] }[] = [{ headingPath: [], lines: [] }];
  const headings: { level: number; title: string }[] = [];
  let skipDepth = 0;
  let preDepth = 0;
  let line = '';
  let headingLevel = 0;
  let headingText = '';
  let title = '';
  let inTitle = false;
  const flush = (): void => {
    const t = line.replace(/[ \t\f\r]+/g, ' ').trim();
    if (t !== '') sections[sections.length - 1]!.lines.push(t);
    line = '';
  };
  const parser = new Parser(
    {
      onopentag(name) {
        if (name === 'title') inTitle = true;
        if (SKIP_TAGS.has(name)) skipDepth++;
        if (name === 'pre') preDepth++;
        if (BLOCK_TAGS.has(name)) flush();
        const m = /^h([1-6])$/.exec(name);
        if (m !== null && skipDepth === 0) {
          headingLevel = Number(m[1]);
          headingText = '';
        }
      },
      ontext(data) {
        if (inTitle) title += data;
        if (skipDepth > 0) return;
        if (headingLevel > 0) headingText += data;
        if (preDepth > 0) {
          const parts = data.split('\n');
          parts.forEach((p, i) => {
            if (i > 0) flush();
            line += p;
          });
        } else line += data.replace(/\s+/g, ' ');
      },
      onclosetag(name) {
        if (name === 'title') inTitle = false;
        if (SKIP_TAGS.has(name)) skipDepth = Math.max(0, skipDepth - 1);
        if (name === 'pre') preDepth = Math.max(0, preDepth - 1);
        const m = /^h([1-6])$/.exec(name);
        if (m !== null && headingLevel > 0) {
          const level = headingLevel;
          headingLevel = 0;
          const text = headingText.replace(/\s+/g, ' ').trim();
          line = '';
          while (headings.length > 0 && headings[headings.length - 1]!.level >= level) headings.pop();
          headings.push({ level, title: text });
          sections.push({ headingPath: headings.map((h) => h.title), lines: [`${'#'.repeat(level)} ${text}`] });
          return;
        }
        if (BLOCK_TAGS.has(name)) flush();
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  flush();
  const docs: Document[] = [];
  let offset = 0;
  for (const s of sections) {
    if (s.lines.length === 0) continue;
    const text = s.lines.join('\n');
    const metadata: Metadata = title.trim() !== '' ? { title: title.trim() } : {};
    docs.push({ text, source, location: { start: offset, end: offset + text.length, ...(s.headingPath.length > 0 ? { headingPath: s.headingPath } : {}) }, metadata });
    offset += text.length + 2;
  }
  return docs;
}

interface PdfTextItem {
  str?: string;
  hasEOL?: boolean;
}

/** One document per page with text (pdfjs-dist's text layer: items in reading order, line breaks where the PDF has them). */
export async function loadPdfBytes(bytes: Uint8Array, source: string): Promise<Document[]> {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  let doc;
  try {
    doc = await pdfjs.getDocument({ data: bytes, useSystemFonts: false, isEvalSupported: false, verbosity: 0 }).promise;
  } catch (e) {
    throw new Error(`${source}: not a readable PDF (${(e as Error).message})`);
  }
  const docs: Document[] = [];
  try {
    for (let p = 1; p <= doc.numPages; p++) {
      const page = await doc.getPage(p);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items as PdfTextItem[]) {
        if (item.str !== undefined) text += item.str;
        if (item.hasEOL === true) text += '\n';
      }
      text = text.replace(/[ \t]+\n/g, '\n').trim();
      if (text !== '') docs.push({ text, source, location: { page: p, start: 0, end: text.length }, metadata: { pages: doc.numPages } });
      page.cleanup();
    }
  } finally {
    await doc.destroy();
  }
  return docs;
}

function asMetadataValue(v: unknown): MetadataValue | undefined {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  if (v === null || v === undefined) return undefined;
  return JSON.stringify(v);
}

function recordToDocument(rec: Record<string, unknown>, source: string, row: number, fields: FieldMapping, what: string): Document | null {
  const textFields = fields.textFields ?? ['text'];
  const parts: string[] = [];
  for (const f of textFields) {
    const v = rec[f];
    if (v === undefined || v === null) continue;
    parts.push(typeof v === 'string' ? v : JSON.stringify(v));
  }
  if (parts.length === 0) {
    const have = Object.keys(rec).slice(0, 10).join(', ');
    throw new Error(`${source}:${row}: ${what} has none of the text field(s) ${textFields.join(', ')} (it has: ${have}); choose them with --text-field`);
  }
  const text = parts.join('\n\n');
  if (text.trim() === '') return null;
  const metadata: Metadata = {};
  for (const f of fields.metadataFields ?? []) {
    const v = asMetadataValue(rec[f]);
    if (v !== undefined) metadata[f] = v;
  }
  return { text, source, location: { row, start: 0, end: text.length }, metadata };
}

export function loadJsonlString(text: string, source: string, fields: FieldMapping = {}): Document[] {
  const docs: Document[] = [];
  for (const { record, line } of parseJsonlObjects(text, source)) {
    const d = recordToDocument(record, source, line, fields, 'record');
    if (d !== null) docs.push(d);
  }
  return docs;
}

export function loadCsvString(text: string, source: string, fields: FieldMapping = {}, delimiter = ','): Document[] {
  let rows: Record<string, string>[];
  try {
    rows = parseCsv(text, { columns: true, delimiter, skip_empty_lines: true, bom: true, relax_column_count: false }) as Record<string, string>[];
  } catch (e) {
    throw new Error(`${source}: invalid CSV (${(e as Error).message})`);
  }
  const docs: Document[] = [];
  rows.forEach((r, i) => {
    const d = recordToDocument(r, source, i + 1, fields, 'row');
    if (d !== null) docs.push(d);
  });
  return docs;
}

/** Loads one file with the loader its extension (or options.kind) names. */
export async function loadFile(path: string, options: LoadOptions = {}): Promise<Document[]> {
  const source = resolve(path);
  const kind = options.kind ?? loaderKindFor(path);
  if (kind === null) throw new Error(`${path}: no loader for '${extname(path)}' files (supported: ${SUPPORTED_EXTENSIONS.join(', ')})`);
  const bytes = await readFile(path);
  if (kind === 'pdf') return loadPdfBytes(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), source);
  const text = bytes.toString('utf8');
  switch (kind) {
    case 'text':
      return loadTextString(text, source);
    case 'markdown':
      return loadMarkdownString(text, source);
    case 'html':
      return loadHtmlString(text, source);
    case 'jsonl':
      return loadJsonlString(text, source, options.fields);
    case 'csv':
      return loadCsvString(text, source, options.fields, extname(path).toLowerCase() === '.tsv' ? '\t' : ',');
  }
}

/**
 * The files a path names: a file itself, every supported file under a directory, or the matches of
 * a glob. Sorted, absolute.
 */
export async function resolveInputs(pathOrGlob: string): Promise<string[]> {
  let isDir = false;
  let isFile = false;
  try {
    const s = await stat(pathOrGlob);
    isDir = s.isDirectory();
    isFile = s.isFile();
  } catch {
    // Not an existing path: a glob.
  }
  if (isFile) return [resolve(pathOrGlob)];
  const pattern = isDir ? `${fg.convertPathToPattern(pathOrGlob)}/**/*` : pathOrGlob;
  const files = await fg(pattern, { onlyFiles: true, absolute: true, dot: false, followSymbolicLinks: false });
  const supported = files.filter((f) => loaderKindFor(f) !== null).sort();
  if (supported.length === 0) {
    throw new Error(`${pathOrGlob}: ${isDir ? 'the directory holds' : 'the pattern matches'} no supported files (${SUPPORTED_EXTENSIONS.join(', ')})`);
  }
  return supported;
}

/** Loads every file a path, directory or glob names. */
export async function loadPath(pathOrGlob: string, options: LoadOptions = {}): Promise<Document[]> {
  const docs: Document[] = [];
  for (const f of await resolveInputs(pathOrGlob)) docs.push(...(await loadFile(f, options)));
  return docs;
}
