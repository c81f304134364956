/**
 * Metadata filters in LlamaIndex's vocabulary (==, !=, in, nin, >, <, contains), combined with
 * and/or. One evaluator in TypeScript (the memory store, and BM25 over any store) and translations
 * to the SQL of LanceDB (DataFusion) and PostgreSQL (jsonb), so every store answers the same filter
 * the same way. `source` and `hash` are filterable like metadata keys.
 */
import { z } from 'zod';
import type { Chunk, MetadataValue } from './types.js';
import { describeZodIssues } from '../io/zod-issues.js';

export type FilterOperator = '==' | '!=' | 'in' | 'nin' | '>' | '<' | '>=' | '<=' | 'contains';

export interface MetadataFilter {
  key: string;
  operator: FilterOperator;
  value: string | number | boolean | (string | number)[];
}

export interface MetadataFilters {
  filters: (MetadataFilter | MetadataFilters)[];
  /** Default 'and'. */
  condition?: 'and' | 'or';
}

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const FilterSchema: z.ZodType<MetadataFilter> = z
  .object({
    key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'metadata keys are identifiers (letters, digits, _)'),
    operator: z.enum(['==', '!=', 'in', 'nin', '>', '<', '>=', '<=', 'contains']),
    value: z.union([scalar, z.array(z.union([z.string(), z.number()]))]),
  })
  .superRefine((f, ctx) => {
    const isList = Array.isArray(f.value);
    if ((f.operator === 'in' || f.operator === 'nin') !== isList) ctx.addIssue({ code: 'custom', message: `operator '${f.operator}' ${isList ? 'takes a single value' : 'takes a list of values'}` });
    if ((f.operator === '>' || f.operator === '<' || f.operator === '>=' || f.operator === '<=') && typeof f.value !== 'number' && typeof f.value !== 'string') {
      ctx.addIssue({ code: 'custom', message: `operator '${f.operator}' compares numbers or strings` });
    }
  });
const FiltersSchema: z.ZodType<MetadataFilters> = z.lazy(() => z.object({ filters: z.array(z.union([FilterSchema, FiltersSchema])), condition: z.enum(['and', 'or']).optional() }));

/** Validates a filter given as data (e.g. --filter JSON); errors name the field. */
export function parseFilters(input: unknown): MetadataFilters {
  const wrapped = typeof input === 'object' && input !== null && !Array.isArray(input) && 'key' in input ? { filters: [input] } : input;
  const r = FiltersSchema.safeParse(wrapped);
  if (!r.success) throw new RangeError(`metadata filter is invalid: ${describeZodIssues(r.error, '(filter)')}`);
  return r.data;
}

const isGroup = (f: MetadataFilter | MetadataFilters): f is MetadataFilters => 'filters' in f;

function fieldOf(chunk: Pick<Chunk, 'metadata' | 'source' | 'hash'>, key: string): MetadataValue | undefined {
  if (key in chunk.metadata) return chunk.metadata[key];
  if (key === 'source') return chunk.source;
  if (key === 'hash') return chunk.hash;
  return undefined;
}

function test(v: MetadataValue | undefined, f: MetadataFilter): boolean {
  const x = f.value;
  switch (f.operator) {
    case '==':
      return v !== undefined && !Array.isArray(v) && v === x;
    case '!=':
      return v === undefined || Array.isArray(v) || v !== x;
    case 'in':
      return v !== undefined && !Array.isArray(v) && (x as (string | number)[]).some((e) => e === v);
    case 'nin':
      return v === undefined || Array.isArray(v) || !(x as (string | number)[]).some((e) => e === v);
    case '>':
    case '<':
    case '>=':
    case '<=': {
      if (v === undefined || Array.isArray(v) || typeof v !== typeof x) return false;
      const a = v as number | string;
      const b = x as number | string;
      return f.operator === '>' ? a > b : f.operator === '<' ? a < b : f.operator === '>=' ? a >= b : a <= b;
    }
    case 'contains':
      if (Array.isArray(v)) return (v as (string | number)[]).some((e) => e === x);
      return typeof v === 'string' && typeof x === 'string' && v.includes(x);
  }
}

/** Whether a chunk passes the filters (absent keys fail ==, in, >, <, contains and pass !=, nin). */
export function matchesFilters(chunk: Pick<Chunk, 'metadata' | 'source' | 'hash'>, filters: MetadataFilters | undefined): boolean {
  if (filters === undefined || filters.filters.length === 0) return true;
  const results = filters.filters.map((f) => (isGroup(f) ? matchesFilters(chunk, f) : test(fieldOf(chunk, f.key), f)));
  return (filters.condition ?? 'and') === 'and' ? results.every(Boolean) : results.some(Boolean);
}

/** The metadata keys a filter mentions (stores that keep metadata in columns need them to exist). */
export function filterKeys(filters: MetadataFilters | undefined): string[] {
  if (filters === undefined) return [];
  return [...new Set(filters.filters.flatMap((f) => (isGroup(f) ? filterKeys(f) : [f.key])))];
}

const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const sqlLiteralRaw = (v: string | number | boolean): string => (typeof v === 'string' ? sqlString(v) : typeof v === 'boolean' ? (v ? 'TRUE' : 'FALSE') : String(v));

/**
 * LanceDB SQL over metadata columns: `column(key)` names the column holding key and says whether it
 * holds a list (stored as text, each element between U+001F separators) — null when no row has the
 * key (then the filter is decided as if every value were absent).
 */
export function toLanceSql(filters: MetadataFilters, column: (key: string) => { name: string; list: boolean; boolText?: boolean } | null): string {
  const parts = filters.filters.map((f) => {
    if (isGroup(f)) return `(${toLanceSql(f, column)})`;
    const c = column(f.key);
    const absentPasses = f.operator === '!=' || f.operator === 'nin';
    if (c === null) return absentPasses ? 'TRUE' : 'FALSE';
    const col = c.name;
    const list = (f.value as (string | number)[] | undefined) ?? [];
    // Boolean metadata is stored as the text 'true' / 'false'.
    const sqlLiteral = (v: string | number | boolean): string => (c.boolText === true && typeof v === 'boolean' ? sqlString(String(v)) : sqlLiteralRaw(v));
    switch (f.operator) {
      case '==':
        return c.list ? 'FALSE' : `(${col} IS NOT NULL AND ${col} = ${sqlLiteral(f.value as string | number | boolean)})`;
      case '!=':
        return c.list ? 'TRUE' : `(${col} IS NULL OR ${col} <> ${sqlLiteral(f.value as string | number | boolean)})`;
      case 'in':
        return c.list ? 'FALSE' : `(${col} IS NOT NULL AND ${col} IN (${list.map(sqlLiteral).join(', ')}))`;
      case 'nin':
        return c.list ? 'TRUE' : `(${col} IS NULL OR ${col} NOT IN (${list.map(sqlLiteral).join(', ')}))`;
      case '>':
      case '<':
      case '>=':
      case '<=':
        return c.list ? 'FALSE' : `(${col} IS NOT NULL AND ${col} ${f.operator} ${sqlLiteral(f.value as string | number)})`;
      case 'contains':
        return c.list ? `(${col} IS NOT NULL AND strpos(${col}, ${sqlString(`\u001f${String(f.value)}\u001f`)}) > 0)` : typeof f.value === 'string' ? `(${col} IS NOT NULL AND strpos(${col}, ${sqlString(f.value)}) > 0)` : 'FALSE';
    }
  });
  if (parts.length === 0) return 'TRUE';
  return parts.join((filters.condition ?? 'and') === 'and' ? ' AND ' : ' OR ');
}

/** PostgreSQL over a jsonb `metadata` column; values go in `params` ($n placeholders). */
export function toPgSql(filters: MetadataFilters, params: unknown[], metadataColumn = 'metadata'): string {
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const parts = filters.filters.map((f) => {
    if (isGroup(f)) return `(${toPgSql(f, params, metadataColumn)})`;
    const field = `${metadataColumn}->${p(f.key)}`;
    const scalarOf = (v: unknown): string => `to_jsonb(${p(v)}::${typeof v === 'number' ? 'float8' : typeof v === 'boolean' ? 'boolean' : 'text'})`;
    const notArray = `jsonb_typeof(${field}) <> 'array'`;
    switch (f.operator) {
      case '==':
        return `(${field} = ${scalarOf(f.value)})`;
      case '!=':
        return `(${field} IS NULL OR ${field} <> ${scalarOf(f.value)})`;
      case 'in':
        return `(${notArray} AND ${field} IN (${(f.value as (string | number)[]).map(scalarOf).join(', ')}))`;
      case 'nin':
        return `(${field} IS NULL OR jsonb_typeof(${field}) = 'array' OR ${field} NOT IN (${(f.value as (string | number)[]).map(scalarOf).join(', ')}))`;
      case '>':
      case '<':
      case '>=':
      case '<=': {
        const t = typeof f.value === 'number' ? 'number' : 'string';
        return `(jsonb_typeof(${field}) = '${t}' AND ${field} ${f.operator} ${scalarOf(f.value)})`;
      }
      case 'contains':
        return typeof f.value === 'string'
          ? `(CASE jsonb_typeof(${field}) WHEN 'array' THEN ${field} @> jsonb_build_array(${p(f.value)}::text) WHEN 'string' THEN strpos(${field} #>> '{}', ${p(f.value)}) > 0 ELSE FALSE END)`
          : `(jsonb_typeof(${field}) = 'array' AND ${field} @> jsonb_build_array(${p(f.value)}::float8))`;
    }
  });
  if (parts.length === 0) return 'TRUE';
  return parts.join((filters.condition ?? 'and') === 'and' ? ' AND ' : ' OR ');
}
