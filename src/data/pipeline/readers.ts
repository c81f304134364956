/**
 * Streaming document readers: plain text (one document per file, per line, or per blank-line
 * separated paragraph), JSONL with a text field, CSV/TSV with a text column, any of them gzipped,
 * from files, directories and globs.
 *
 * Everything is an async generator over a byte stream, so memory is bounded by the largest single
 * document (itself capped by `maxDocChars` for plain text, which is split at paragraph/line
 * boundaries) — never by the input size. File order is sorted, and records keep file order, so a
 * run over the same inputs sees the same document sequence (resume and determinism rely on it).
 */
import { createReadStream, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import fg from 'fast-glob';
import type { Doc } from './types.js';

export type TextMode = 'file' | 'line' | 'paragraph';
export type InputFormat = 'auto' | 'text' | 'jsonl' | 'csv' | 'tsv';

export interface ReaderOptions {
  /** Input format; 'auto' picks by extension (.jsonl/.ndjson/.json, .csv, .tsv, anything else is text), after removing .gz. */
  format?: InputFormat;
  /** How plain text splits into documents; default 'file'. */
  textMode?: TextMode;
  /** JSONL: field holding the text (dotted path such as "meta.body" allowed). CSV/TSV: column name, or 0-based index. Default "text". */
  textField?: string;
  /** JSONL/CSV/TSV: optional field used as the document id (default: path:line or path:row). */
  idField?: string;
  /** CSV/TSV: whether the first row is a header (default true). Without one, textField must be a column index. */
  header?: boolean;
  /** Label stored in Doc.source (mixing weights key on it); default the file path as given. */
  source?: string;
  /**
   * Plain text: a document longer than this many UTF-16 units is cut into parts (at the last blank
   * line, else the last newline, else hard) with ids `<path>#<part>`; this is what bounds memory on
   * a multi-gigabyte single-document file. Default 100,000 (about 20k English words).
   */
  maxDocChars?: number;
  /** JSONL/CSV/TSV: a single record longer than this is an error (it cannot be split). Default 64 Mi chars. */
  maxRecordChars?: number;
  /** JSONL/CSV/TSV: skip records whose text field is missing or not a string instead of failing. Default false. */
  skipInvalid?: boolean;
  /** Keep documents whose text is empty or whitespace only. Default false. */
  keepEmpty?: boolean;
}

const DEFAULT_MAX_DOC_CHARS = 100_000;
const DEFAULT_MAX_RECORD_CHARS = 64 * 1024 * 1024;

/** Format and compression of one path as 'auto' sees it. */
export function detectFormat(path: string): { format: Exclude<InputFormat, 'auto'>; gzip: boolean } {
  const lower = path.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  if (base.endsWith('.jsonl') || base.endsWith('.ndjson') || base.endsWith('.json')) return { format: 'jsonl', gzip };
  if (base.endsWith('.csv')) return { format: 'csv', gzip };
  if (base.endsWith('.tsv')) return { format: 'tsv', gzip };
  return { format: 'text', gzip };
}

async function walkDir(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    // Hidden entries are editor/VCS droppings (.git, .DS_Store), never corpus files.
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await walkDir(p, out);
    else if (e.isFile()) out.push(p);
  }
}

/**
 * Expand inputs (files, directories — recursively — and glob patterns) into a sorted, de-duplicated
 * file list. An input that matches nothing is an error: a typo must not silently produce an empty corpus.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  if (inputs.length === 0) throw new Error('readers: no inputs given');
  const seen = new Set<string>();
  const out: string[] = [];
  for (const input of inputs) {
    let files: string[];
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(input);
    } catch {
      st = undefined;
    }
    if (st?.isFile()) files = [input];
    else if (st?.isDirectory()) {
      files = [];
      await walkDir(input, files);
    } else if (fg.isDynamicPattern(input)) {
      files = await fg(input, { onlyFiles: true, dot: false, followSymbolicLinks: true });
    } else {
      throw new Error(`readers: input '${input}' does not exist`);
    }
    if (files.length === 0) throw new Error(`readers: input '${input}' matched no files`);
    // Code-unit order (not locale order) so every machine lists the same sequence.
    files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const f of files) {
      const key = resolve(f);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(f);
    }
  }
  return out;
}

/** Decoded text chunks of a file (gunzipped when asked); a leading BOM is dropped. */
export async function* readTextChunks(path: string, gzip: boolean): AsyncGenerator<string> {
  // 1 MiB reads: fewer syscalls and stream events per MB (the orchestrator thread shares the cores with the workers).
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  let stream: Readable = raw;
  if (gzip) {
    const gunzip = createGunzip();
    // A read error on the file must surface through the gunzip stream we iterate.
    raw.on('error', (e) => gunzip.destroy(e));
    stream = raw.pipe(gunzip);
  }
  // setEncoding uses a StringDecoder, which keeps multi-byte UTF-8 sequences split across chunks intact.
  stream.setEncoding('utf8');
  let first = true;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      if (first) {
        first = false;
        yield chunk.charCodeAt(0) === 0xfeff ? chunk.slice(1) : chunk;
      } else yield chunk;
    }
  } catch (e) {
    throw new Error(`readers: cannot read '${path}'${gzip ? ' (gzip)' : ''}: ${(e as Error).message}`, { cause: e });
  } finally {
    raw.destroy();
  }
}

/**
 * Split a chunk stream into lines (LF or CRLF; the terminator is not included). For a line longer
 * than `maxLineChars`, `onTooLong` returns the error to throw, or null to emit the line in pieces.
 */
export async function* splitLines(
  chunks: AsyncIterable<string>,
  maxLineChars: number,
  onTooLong: (lineNo: number) => Error | null,
): AsyncGenerator<string> {
  let carry = '';
  let lineNo = 0;
  for await (const chunk of chunks) {
    let buf = carry + chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf('\n', start);
      if (nl < 0) break;
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      lineNo++;
      if (end - start > maxLineChars) {
        const err = onTooLong(lineNo);
        if (err) throw err;
        yield* piecesOf(buf.slice(start, end), maxLineChars);
      } else yield buf.slice(start, end);
      start = nl + 1;
    }
    buf = buf.slice(start);
    while (buf.length > maxLineChars) {
      const err = onTooLong(lineNo + 1);
      if (err) throw err;
      const cut = safeCut(buf, maxLineChars);
      yield buf.slice(0, cut);
      buf = buf.slice(cut);
    }
    carry = buf;
  }
  if (carry.length > 0) {
    yield carry.charCodeAt(carry.length - 1) === 13 ? carry.slice(0, -1) : carry;
  }
}

function* piecesOf(line: string, max: number): Generator<string> {
  let rest = line;
  while (rest.length > max) {
    const cut = safeCut(rest, max);
    yield rest.slice(0, cut);
    rest = rest.slice(cut);
  }
  yield rest;
}

/** An index ≤ n that does not fall between the two halves of a surrogate pair. */
function safeCut(s: string, n: number): number {
  if (n <= 0 || n >= s.length) return Math.max(0, Math.min(n, s.length));
  const c = s.charCodeAt(n - 1);
  return c >= 0xd800 && c <= 0xdbff ? n - 1 : n;
}

function isBlank(s: string): boolean {
  return s.trim().length === 0;
}

function makeDoc(id: string, text: string, source: string, meta?: Record<string, unknown>): Doc {
  return meta ? { id, text, source, meta } : { id, text, source };
}

/** Cut an over-long text at the last paragraph break, else line break, else hard, at or before `max`. */
function cutPoint(text: string, max: number): number {
  const para = text.lastIndexOf('\n\n', max);
  if (para > max / 2) return para + 2;
  const line = text.lastIndexOf('\n', max);
  if (line > max / 2) return line + 1;
  return safeCut(text, max);
}

async function* readPlainText(path: string, gzip: boolean, opts: ReaderOptions): AsyncGenerator<Doc> {
  const mode = opts.textMode ?? 'file';
  const max = opts.maxDocChars ?? DEFAULT_MAX_DOC_CHARS;
  const source = opts.source ?? path;
  const keepEmpty = opts.keepEmpty ?? false;
  const chunks = readTextChunks(path, gzip);

  if (mode === 'file') {
    let buf = '';
    let part = 0;
    let cut = false;
    for await (const chunk of chunks) {
      buf += chunk;
      while (buf.length > max) {
        const at = cutPoint(buf, max);
        yield makeDoc(`${path}#${part++}`, buf.slice(0, at), source);
        buf = buf.slice(at);
        cut = true;
      }
    }
    if (keepEmpty || !isBlank(buf)) yield makeDoc(cut ? `${path}#${part}` : path, buf, source);
    return;
  }

  // Long lines are split rather than rejected: plain text has no record structure to break.
  const lines = splitLines(chunks, max, () => null);
  if (mode === 'line') {
    let n = 0;
    for await (const line of lines) {
      n++;
      if (keepEmpty || !isBlank(line)) yield makeDoc(`${path}:${n}`, line, source);
    }
    return;
  }
  if (mode !== 'paragraph') throw new Error(`readers: unknown text mode '${String(mode)}' (expected file, line or paragraph)`);

  let para: string[] = [];
  let paraChars = 0;
  let paraStart = 1;
  let part = 0;
  let n = 0;
  for await (const line of lines) {
    n++;
    if (isBlank(line)) {
      if (para.length > 0) yield makeDoc(part > 0 ? `${path}:${paraStart}#${part}` : `${path}:${paraStart}`, para.join('\n'), source);
      para = [];
      paraChars = 0;
      part = 0;
      paraStart = n + 1;
      continue;
    }
    if (paraChars + line.length > max && para.length > 0) {
      // An over-long paragraph comes out in parts at line boundaries (memory bound).
      yield makeDoc(`${path}:${paraStart}#${part++}`, para.join('\n'), source);
      para = [];
      paraChars = 0;
    }
    para.push(line);
    paraChars += line.length + 1;
  }
  if (para.length > 0) yield makeDoc(part > 0 ? `${path}:${paraStart}#${part}` : `${path}:${paraStart}`, para.join('\n'), source);
}

/** Value at a dotted path ("a.b.c") of a parsed JSON record; undefined when any step is missing. */
function getField(record: unknown, field: string): unknown {
  let cur: unknown = record;
  for (const key of field.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

async function* readJsonl(path: string, gzip: boolean, opts: ReaderOptions): AsyncGenerator<Doc> {
  const field = opts.textField ?? 'text';
  const maxRecord = opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  const source = opts.source ?? path;
  const lines = splitLines(readTextChunks(path, gzip), maxRecord, (lineNo) =>
    new Error(`readers: ${path}:${lineNo}: JSONL record longer than ${maxRecord} characters (raise maxRecordChars)`),
  );
  let n = 0;
  for await (const line of lines) {
    n++;
    if (isBlank(line)) continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (e) {
      if (opts.skipInvalid) continue;
      throw new Error(`readers: ${path}:${n}: invalid JSON (${(e as Error).message})`, { cause: e });
    }
    const text = getField(record, field);
    if (typeof text !== 'string') {
      if (opts.skipInvalid) continue;
      const what = text === undefined ? 'is missing' : `is ${Array.isArray(text) ? 'an array' : typeof text}, not a string`;
      throw new Error(`readers: ${path}:${n}: field '${field}' ${what} (use --text-field to pick the text field)`);
    }
    if (!opts.keepEmpty && isBlank(text)) continue;
    const idValue = opts.idField ? getField(record, opts.idField) : undefined;
    const id = typeof idValue === 'string' || typeof idValue === 'number' ? String(idValue) : `${path}:${n}`;
    yield makeDoc(id, text, source);
  }
}

/**
 * Streaming RFC 4180 parser: fields separated by `delimiter`, records by LF or CRLF; a field that
 * starts with a double quote may contain delimiters, newlines and doubled quotes ("").
 */
export async function* parseDelimited(
  chunks: AsyncIterable<string>,
  delimiter: string,
  maxRecordChars: number,
  where: string,
): AsyncGenerator<string[]> {
  const QUOTE = 34;
  const delimCode = delimiter.charCodeAt(0);
  let row: string[] = [];
  let field = '';
  let inQuotes = false;
  // After a closing quote we may see "" (escaped quote, handled by re-entering), the delimiter or a newline.
  let afterQuote = false;
  let fieldStarted = false;
  // Characters held by the record being parsed: what bounds memory on a runaway quoted field.
  let rowChars = 0;
  let rowNo = 1;
  for await (const chunk of chunks) {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (inQuotes) {
        const q = chunk.indexOf('"', i);
        if (q < 0) {
          field += chunk.slice(i);
          i = n;
          break;
        }
        field += chunk.slice(i, q);
        i = q + 1;
        inQuotes = false;
        afterQuote = true;
        continue;
      }
      const c = chunk.charCodeAt(i);
      if (afterQuote) {
        afterQuote = false;
        if (c === QUOTE) {
          // "" inside a quoted field: a literal quote, and we are still inside the quotes.
          field += '"';
          inQuotes = true;
          i++;
          continue;
        }
      }
      if (c === delimCode) {
        row.push(field);
        rowChars += field.length;
        field = '';
        fieldStarted = false;
        i++;
      } else if (c === 10) {
        if (field.endsWith('\r') && !inQuotes) field = field.slice(0, -1);
        row.push(field);
        yield row;
        row = [];
        field = '';
        fieldStarted = false;
        rowChars = 0;
        rowNo++;
        i++;
      } else if (c === QUOTE && !fieldStarted) {
        inQuotes = true;
        fieldStarted = true;
        i++;
      } else {
        // Unquoted run up to the next delimiter or newline, taken in one slice for speed.
        let j = i;
        while (j < n) {
          const d = chunk.charCodeAt(j);
          if (d === delimCode || d === 10) break;
          j++;
        }
        field += chunk.slice(i, j);
        fieldStarted = true;
        i = j;
      }
    }
    if (rowChars + field.length > maxRecordChars) {
      throw new Error(`readers: ${where}: row ${rowNo} is longer than ${maxRecordChars} characters (unclosed quote?)`);
    }
  }
  if (inQuotes) throw new Error(`readers: ${where}: row ${rowNo} has an unclosed quoted field`);
  if (field.endsWith('\r')) field = field.slice(0, -1);
  if (row.length > 0 || field.length > 0 || fieldStarted) {
    row.push(field);
    yield row;
  }
}

async function* readDelimited(path: string, gzip: boolean, delimiter: string, opts: ReaderOptions): AsyncGenerator<Doc> {
  const field = opts.textField ?? 'text';
  const header = opts.header ?? true;
  const source = opts.source ?? path;
  const rows = parseDelimited(readTextChunks(path, gzip), delimiter, opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS, path);
  let textCol = -1;
  let idCol = -1;
  const asIndex = /^\d+$/.test(field) ? Number(field) : -1;
  if (!header) {
    if (asIndex < 0) throw new Error(`readers: ${path}: without a header row the text column must be an index, got '${field}'`);
    textCol = asIndex;
    if (opts.idField !== undefined) idCol = /^\d+$/.test(opts.idField) ? Number(opts.idField) : -1;
  }
  let rowNo = 0;
  for await (const row of rows) {
    rowNo++;
    if (header && rowNo === 1) {
      textCol = row.indexOf(field);
      if (textCol < 0) textCol = asIndex;
      if (textCol < 0 || textCol >= row.length) {
        throw new Error(`readers: ${path}: no column '${field}' in header [${row.slice(0, 20).join(', ')}] (use --text-field)`);
      }
      if (opts.idField !== undefined) idCol = row.indexOf(opts.idField);
      continue;
    }
    // A trailing empty line is a record with one empty field; skip it rather than fail.
    if (row.length === 1 && row[0] === '') continue;
    const text = row[textCol];
    if (text === undefined) {
      if (opts.skipInvalid) continue;
      throw new Error(`readers: ${path}: row ${rowNo} has ${row.length} fields, no column ${textCol}`);
    }
    if (!opts.keepEmpty && isBlank(text)) continue;
    const idValue = idCol >= 0 ? row[idCol] : undefined;
    yield makeDoc(idValue !== undefined && idValue !== '' ? idValue : `${path}:${rowNo}`, text, source);
  }
}

/** Documents of one file, in file order. */
export function readFileDocs(path: string, opts: ReaderOptions = {}): AsyncGenerator<Doc> {
  const detected = detectFormat(path);
  const format = opts.format && opts.format !== 'auto' ? opts.format : detected.format;
  switch (format) {
    case 'text':
      return readPlainText(path, detected.gzip, opts);
    case 'jsonl':
      return readJsonl(path, detected.gzip, opts);
    case 'csv':
      return readDelimited(path, detected.gzip, ',', opts);
    case 'tsv':
      return readDelimited(path, detected.gzip, '\t', opts);
    default:
      throw new Error(`readers: unknown format '${String(format)}' (expected auto, text, jsonl, csv or tsv)`);
  }
}

/** Documents of all inputs (files, directories, globs), files in sorted order. */
export async function* readInputs(inputs: readonly string[], opts: ReaderOptions = {}): AsyncGenerator<Doc> {
  const files = await expandInputs(inputs);
  for (const f of files) yield* readFileDocs(f, opts);
}
