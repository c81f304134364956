/**
 * A small template language for prompts, in the spirit of lm-eval's Jinja templates but closed (no
 * code runs): `{{ path | filter | filter:'arg' }}` where path is `field`, `field.sub` or `field[0]`,
 * and filters are trim, lower, upper, after_last:'sep', before_first:'sep'.
 */
export type Doc = Record<string, unknown>;

const TAG = /\{\{\s*([^}]*?)\s*\}\}/g;

function lookup(doc: Doc, path: string, template: string): unknown {
  const parts = path.match(/[A-Za-z_][A-Za-z0-9_]*|\[\d+\]/g);
  if (parts === null || parts.join('').replace(/\./g, '') !== path.replace(/\./g, '')) {
    throw new Error(`template ${JSON.stringify(template)}: cannot read the path "${path}" (use field, field.sub or field[0])`);
  }
  let value: unknown = doc;
  for (const part of parts) {
    const key = part.startsWith('[') ? Number(part.slice(1, -1)) : part;
    if (value === null || typeof value !== 'object' || !(key in (value as object))) {
      const fields = typeof doc === 'object' ? Object.keys(doc).join(', ') : '';
      throw new Error(`template ${JSON.stringify(template)}: the document has no "${path}" (fields: ${fields})`);
    }
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

function unquote(arg: string, template: string): string {
  const m = /^'(.*)'$/s.exec(arg) ?? /^"(.*)"$/s.exec(arg);
  if (m === null) throw new Error(`template ${JSON.stringify(template)}: filter argument ${arg} must be quoted`);
  return m[1]!;
}

function applyFilter(value: string, filter: string, template: string): string {
  const colon = filter.indexOf(':');
  const name = (colon < 0 ? filter : filter.slice(0, colon)).trim();
  const arg = colon < 0 ? undefined : unquote(filter.slice(colon + 1).trim(), template);
  switch (name) {
    case 'trim':
      return value.trim();
    case 'lower':
      return value.toLowerCase();
    case 'upper':
      return value.toUpperCase();
    case 'after_last': {
      if (arg === undefined) break;
      const i = value.lastIndexOf(arg);
      return i < 0 ? value : value.slice(i + arg.length);
    }
    case 'before_first': {
      if (arg === undefined) break;
      const i = value.indexOf(arg);
      return i < 0 ? value : value.slice(0, i);
    }
  }
  throw new Error(`template ${JSON.stringify(template)}: unknown filter "${filter}" (trim, lower, upper, after_last:'s', before_first:'s')`);
}

/** Fills `template` from `doc`; a missing field is an error naming it and the fields present. */
export function render(template: string, doc: Doc): string {
  return template.replace(TAG, (_m, inner: string) => {
    const [path, ...filters] = inner.split('|').map((s) => s.trim());
    const raw = lookup(doc, path!, template);
    let value = typeof raw === 'string' ? raw : typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : JSON.stringify(raw);
    for (const f of filters) value = applyFilter(value, f, template);
    return value;
  });
}

/** Top-level document fields a template reads (for the robustness suite's defaults and checks). */
export function fieldsOf(template: string): string[] {
  const out = new Set<string>();
  for (const m of template.matchAll(TAG)) {
    const head = /^[A-Za-z_][A-Za-z0-9_]*/.exec(m[1]!.split('|')[0]!.trim());
    if (head !== null) out.add(head[0]);
  }
  return [...out];
}
