/**
 * Fine-tuning datasets: JSONL, CSV and TSV records with named fields (the user maps their column
 * names to what a task needs), and deterministic train/test splits.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parseJsonlObjects } from '../../io/jsonl.js';
import { Generator as Rng } from '../../tensor/random.js';

export type DataRecord = Record<string, unknown>;

/** Reads every record of a .jsonl/.json, .csv or .tsv file; errors name the file, line and problem. */
export function loadRecords(path: string): DataRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.json') {
    if (ext === '.json') {
      const parsed = JSON.parse(text) as unknown;
      if (!Array.isArray(parsed)) throw new Error(`${path}: a .json dataset must be an array of objects (or use .jsonl)`);
      return parsed as DataRecord[];
    }
    return parseJsonlObjects(text, path).map((r) => r.record);
  }
  if (ext === '.csv' || ext === '.tsv') {
    // SST-2's TSV has unescaped quotes inside sentences: quoting is off for TSV, as GLUE reads it.
    const rows = parseCsv(text, { columns: true, delimiter: ext === '.tsv' ? '\t' : ',', quote: ext === '.tsv' ? false : '"', skip_empty_lines: true, relax_column_count: false }) as DataRecord[];
    return rows;
  }
  throw new Error(`${path}: unknown dataset format '${ext}' (use .jsonl, .json, .csv or .tsv)`);
}

/** The string value of `field` in record `i`, or a clear error naming the fields present. */
export function field(r: DataRecord, name: string, i: number, source: string): string {
  const v = r[name];
  if (v === undefined || v === null) {
    throw new Error(`${source}: record ${i + 1} has no field '${name}' (fields: ${Object.keys(r).join(', ')}); map yours with the --*-field options`);
  }
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

/** A seeded shuffle, then the first `testFraction` of the records as test: the same split every run. */
export function splitRecords<T>(records: readonly T[], testFraction: number, seed = 1): { train: T[]; test: T[] } {
  if (!(testFraction > 0 && testFraction < 1)) throw new RangeError(`split: test fraction must be in (0, 1), got ${testFraction}`);
  const order = records.map((_, i) => i);
  const g = new Rng(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = g.int(0, i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const nTest = Math.max(1, Math.round(records.length * testFraction));
  return { test: order.slice(0, nTest).map((i) => records[i]!), train: order.slice(nTest).map((i) => records[i]!) };
}

/** Seeded mini-batches of indices, reshuffled each epoch. */
export function* epochBatches(n: number, batchSize: number, g: Rng): IterableIterator<number[]> {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = g.int(0, i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  for (let i = 0; i < n; i += batchSize) yield order.slice(i, i + batchSize);
}
