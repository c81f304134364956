/**
 * Finding, validating and loading task definitions: the bundled ones (bundled/*.json) by name, or
 * any JSON file with the same schema by path. Dataset paths resolve against a data root (default:
 * the package's eval-data/, which mirrors the layout of the full benchmark sets, so
 * `--data-dir ../shared/data` evaluates on them instead).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import gsm8k from './bundled/gsm8k.json' with { type: 'json' };
import humaneval from './bundled/humaneval.json' with { type: 'json' };
import mmlu from './bundled/mmlu.json' with { type: 'json' };
import sst2 from './bundled/sst2.json' with { type: 'json' };
import tinyshakespeare from './bundled/tinyshakespeare.json' with { type: 'json' };
import wikitext from './bundled/wikitext.json' with { type: 'json' };
import { readDataset } from './datasets.js';
import { TaskSpec } from './schema.js';
import type { Doc } from './template.js';
import { describeZodIssues } from '../../io/zod-issues.js';

const BUNDLED: Record<string, unknown> = { sst2, mmlu, gsm8k, humaneval, wikitext, tinyshakespeare };

export function bundledTaskNames(): string[] {
  return Object.keys(BUNDLED);
}

/** The package root: the nearest directory above this module holding package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'eval-data'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('eval: cannot find the Weft package root (a directory with package.json and eval-data/)');
    dir = up;
  }
}

export function defaultDataRoot(): string {
  return join(packageRoot(), 'eval-data');
}

/** Validates a task definition object; errors name the task and the offending field. */
export function parseTaskSpec(json: unknown, source: string): TaskSpec {
  const parsed = TaskSpec.safeParse(json);
  if (!parsed.success) {
    const issues = describeZodIssues(parsed.error, '(task)');
    throw new Error(`task definition ${source} is invalid: ${issues}`);
  }
  return parsed.data;
}

/** A task ready to run: its definition (expanded) and its documents. */
export interface LoadedTask {
  spec: TaskSpec;
  /** Group the task belongs to (mmlu for mmlu_astronomy), or its own name. */
  group: string;
  docs: Doc[];
  fewshotDocs: Doc[];
  /** Files the documents came from (for the results' config). */
  files: string[];
}

function substitute<T>(value: T, vars: Record<string, string>): T {
  if (typeof value === 'string') return value.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => substitute(v, vars)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)])) as T;
  }
  return value;
}

export function resolveDataPath(path: string, dataRoot: string): string {
  if (path.startsWith('pkg:')) return join(packageRoot(), path.slice(4));
  return isAbsolute(path) ? path : join(dataRoot, path);
}

/** Expands a definition with `expand` into one definition per matching file. */
export function expandSpec(spec: TaskSpec, dataRoot: string): TaskSpec[] {
  if (spec.expand === undefined) return [spec];
  const { variable, dir, suffix } = spec.expand;
  const full = resolveDataPath(dir, dataRoot);
  if (!existsSync(full)) throw new Error(`task ${spec.task}: directory ${full} does not exist (no ${variable} to evaluate)`);
  const values = readdirSync(full)
    .filter((f) => f.endsWith(suffix))
    .map((f) => f.slice(0, -suffix.length))
    .sort();
  if (values.length === 0) throw new Error(`task ${spec.task}: no *${suffix} files in ${full}`);
  return values.map((v) => {
    const { expand: _expand, ...rest } = spec;
    return parseTaskSpec(substitute(rest, { [variable]: v, [`${variable}_words`]: v.replace(/_/g, ' ') }), `${spec.task} (${variable}=${v})`);
  });
}

/** A task name (bundled), or a path to a task JSON file. */
export function taskSpecFrom(nameOrPath: string): TaskSpec {
  const bundled = BUNDLED[nameOrPath];
  if (bundled !== undefined) return parseTaskSpec(bundled, `bundled/${nameOrPath}.json`);
  if (nameOrPath.endsWith('.json') && existsSync(nameOrPath)) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(nameOrPath, 'utf8'));
    } catch (e) {
      throw new Error(`task definition ${nameOrPath} is not valid JSON: ${(e as Error).message}`);
    }
    return parseTaskSpec(json, nameOrPath);
  }
  throw new Error(`unknown task "${nameOrPath}" (bundled: ${bundledTaskNames().join(', ')}; or give a path to a task .json file)`);
}

export interface LoadOptions {
  dataRoot?: string;
}

/** Loads the tasks named in `names` (comma-separated list items), expanding groups. */
export function loadTasks(names: readonly string[], options: LoadOptions = {}): LoadedTask[] {
  const dataRoot = resolve(options.dataRoot ?? defaultDataRoot());
  const out: LoadedTask[] = [];
  for (const name of names) {
    const base = taskSpecFrom(name);
    const group = base.expand !== undefined ? name : base.task;
    for (const spec of expandSpec(base, dataRoot)) {
      const path = resolveDataPath(spec.dataset.path, dataRoot);
      const docs = readDataset(path, spec.dataset);
      const files = [path];
      let fewshotDocs = docs;
      if (spec.dataset.fewshotPath !== undefined) {
        const fp = resolveDataPath(spec.dataset.fewshotPath, dataRoot);
        fewshotDocs = readDataset(fp, spec.dataset);
        files.push(fp);
      }
      if (docs.length === 0) throw new Error(`task ${spec.task}: ${path} holds no documents`);
      out.push({ spec, group, docs, fewshotDocs, files });
    }
  }
  return out;
}
