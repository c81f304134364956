/**
 * An independent JSON Schema validator for the subset structured output supports, written from
 * the specification (not from the matcher), so that tests check generated documents against it.
 */

type Schema = boolean | Record<string, unknown>;

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function typeMatches(v: unknown, t: string): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
  }
  return false;
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** RFC 3339 full-date, with the day checked against its month. */
function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m === null) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const days = [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return mo >= 1 && mo <= 12 && d >= 1 && d <= days[mo - 1]!;
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

const FORMATS: Record<string, (s: string) => boolean> = {
  date: isDate,
  time: (s) => TIME.test(s),
  'date-time': (s) => {
    const i = s.search(/[Tt]/);
    return i > 0 && isDate(s.slice(0, i)) && TIME.test(s.slice(i + 1));
  },
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
};

/** Errors of `v` against `schema` (empty when valid). */
export function validate(v: unknown, schema: Schema, root: Schema = schema, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: false schema`];
  const s = schema;
  const errs: string[] = [];
  if (typeof s.$ref === 'string') {
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(s.$ref);
    const target = s.$ref === '#' ? root : ((root as Record<string, Record<string, Schema>>)[m![1]!]![m![2]!] as Schema);
    return validate(v, target, root, path);
  }
  if (Array.isArray(s.allOf)) for (const sub of s.allOf as Schema[]) errs.push(...validate(v, sub, root, path));
  if (Array.isArray(s.anyOf) && !(s.anyOf as Schema[]).some((sub) => validate(v, sub, root, path).length === 0)) errs.push(`${path}: no anyOf alternative matches`);
  if (Array.isArray(s.oneOf)) {
    const n = (s.oneOf as Schema[]).filter((sub) => validate(v, sub, root, path).length === 0).length;
    if (n !== 1) errs.push(`${path}: ${n} oneOf alternatives match`);
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    if (!types.some((t) => typeMatches(v, t))) errs.push(`${path}: not of type ${types.join('|')}`);
  }
  if (s.const !== undefined && !deepEqual(v, s.const)) errs.push(`${path}: not the const`);
  if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(v, e))) errs.push(`${path}: not in enum`);
  if (typeof v === 'string') {
    const n = [...v].length;
    if (typeof s.minLength === 'number' && n < s.minLength) errs.push(`${path}: shorter than ${s.minLength}`);
    if (typeof s.maxLength === 'number' && n > s.maxLength) errs.push(`${path}: longer than ${s.maxLength}`);
    const check = typeof s.format === 'string' ? FORMATS[s.format] : undefined;
    if (check !== undefined && !check(v)) errs.push(`${path}: not a valid ${String(s.format)}`);
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && !(v >= s.minimum)) errs.push(`${path}: below minimum`);
    if (typeof s.maximum === 'number' && !(v <= s.maximum)) errs.push(`${path}: above maximum`);
    if (typeof s.exclusiveMinimum === 'number' && !(v > s.exclusiveMinimum)) errs.push(`${path}: not above exclusiveMinimum`);
    if (typeof s.exclusiveMaximum === 'number' && !(v < s.exclusiveMaximum)) errs.push(`${path}: not below exclusiveMaximum`);
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) errs.push(`${path}: fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) errs.push(`${path}: more than ${s.maxItems} items`);
    const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as Schema[]) : [];
    v.forEach((x, i) => {
      if (i < prefix.length) errs.push(...validate(x, prefix[i]!, root, `${path}[${i}]`));
      else if (s.items !== undefined) errs.push(...validate(x, s.items as Schema, root, `${path}[${i}]`));
    });
  }
  if (typeMatches(v, 'object')) {
    const o = v as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, Schema>;
    const keys = Object.keys(o);
    if (typeof s.minProperties === 'number' && keys.length < s.minProperties) errs.push(`${path}: fewer than ${s.minProperties} properties`);
    if (typeof s.maxProperties === 'number' && keys.length > s.maxProperties) errs.push(`${path}: more than ${s.maxProperties} properties`);
    if (Array.isArray(s.required)) for (const r of s.required as string[]) if (!(r in o)) errs.push(`${path}: missing ${r}`);
    for (const k of keys) {
      if (Object.prototype.hasOwnProperty.call(props, k)) errs.push(...validate(o[k], props[k]!, root, `${path}.${k}`));
      else if (s.additionalProperties !== undefined) errs.push(...validate(o[k], s.additionalProperties as Schema, root, `${path}.${k}`));
    }
  }
  return errs;
}
