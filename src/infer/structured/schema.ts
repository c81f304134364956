/**
 * JSON Schema → the small node graph the byte-level matcher walks. Supported: type (one or a list),
 * properties, required, additionalProperties (false / true / a schema), minProperties,
 * maxProperties, items, prefixItems, minItems, maxItems, enum, const, minLength, maxLength, format
 * (date, time, date-time and uuid enforced — see formats.ts —, others annotations as in JSON
 * Schema's default vocabulary), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum (numbers or draft-4 booleans), anyOf, oneOf (matched as anyOf: keep the
 * alternatives disjoint), allOf with one element, $ref into $defs / definitions (recursion works).
 * Any other keyword is refused by name, so a schema is never silently loosened.
 */

import { STRING_FORMATS, type StringFormat } from './formats.js';

export type SchemaNode =
  | { kind: 'any' }
  | ObjectNode
  | ArrayNode
  | StringNode
  | NumberNode
  | { kind: 'boolean' }
  | { kind: 'null' }
  | LiteralNode
  | { kind: 'union'; options: SchemaNode[] }
  | RefNode
  | ToolCallNode;

export interface ObjectNode {
  kind: 'object';
  /** Declared properties by their JSON-escaped name (the bytes between the quotes). */
  properties: Map<string, SchemaNode>;
  required: Set<string>;
  /** Schema of undeclared properties; null: none allowed. */
  additional: SchemaNode | null;
  minProperties: number;
  maxProperties: number;
}

export interface ArrayNode {
  kind: 'array';
  prefixItems: SchemaNode[];
  /** Items after the prefix; null: none. */
  items: SchemaNode | null;
  minItems: number;
  maxItems: number;
}

export interface StringNode {
  kind: 'string';
  minLength: number;
  maxLength: number;
  /** An enforced format (formats.ts), or null. */
  format: StringFormat | null;
}

export interface NumberNode {
  kind: 'number';
  integer: boolean;
  min: number;
  max: number;
  exclusiveMin: boolean;
  exclusiveMax: boolean;
}

/** enum / const: the canonical JSON texts of the allowed values. */
export interface LiteralNode {
  kind: 'literal';
  texts: string[];
}

export interface RefNode {
  kind: 'ref';
  ref: string;
  target: SchemaNode | null;
}

/** `{"name": <one of names>, "<argsKey>": <that tool's parameters>}` in this key order. */
export interface ToolCallNode {
  kind: 'toolcall';
  /** Tool name (its JSON text, quotes included) → parameters schema. */
  tools: Map<string, SchemaNode>;
  argsKey: string;
}

const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  'example',
  '$schema',
  '$id',
  '$comment',
  'deprecated',
  'readOnly',
  'writeOnly',
  'format',
  '$defs',
  'definitions',
  'strict',
]);

const SUPPORTED = new Set([
  ...ANNOTATIONS,
  'type',
  'properties',
  'required',
  'additionalProperties',
  'minProperties',
  'maxProperties',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'enum',
  'const',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
]);

const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type TypeName = (typeof TYPES)[number];

const STRUCTURAL_BY_TYPE: Record<Exclude<TypeName, 'integer' | 'boolean' | 'null'>, readonly string[]> = {
  object: ['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties'],
  array: ['items', 'prefixItems', 'minItems', 'maxItems'],
  string: ['minLength', 'maxLength'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
};

/** Error in a schema: says where (a JSON pointer) and what to change. */
export class SchemaError extends Error {
  constructor(pointer: string, message: string) {
    super(`json_schema${pointer === '' ? '' : ` at ${pointer}`}: ${message}`);
    this.name = 'SchemaError';
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The bytes between the quotes of `name` as JSON writes it. */
export function escapedName(name: string): string {
  return JSON.stringify(name).slice(1, -1);
}

function typeOfValue(v: unknown): TypeName {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as TypeName;
}

class Compiler {
  private readonly refs = new Map<string, RefNode>();

  constructor(private readonly root: Record<string, unknown>) {}

  compile(s: unknown, ptr: string): SchemaNode {
    if (s === true) return { kind: 'any' };
    if (s === false) throw new SchemaError(ptr, 'the schema `false` matches nothing');
    if (!isObj(s)) throw new SchemaError(ptr, `a schema must be an object or a boolean, got ${JSON.stringify(s)}`);
    const unsupported = Object.keys(s).filter((k) => !SUPPORTED.has(k));
    if (unsupported.length > 0) {
      throw new SchemaError(
        ptr,
        `unsupported keyword${unsupported.length > 1 ? 's' : ''} ${unsupported.map((k) => JSON.stringify(k)).join(', ')} (structured output supports ${[...SUPPORTED].filter((k) => !ANNOTATIONS.has(k)).join(', ')}; remove ${unsupported.length > 1 ? 'them' : 'it'} or validate it after generation)`,
      );
    }
    const structural = Object.keys(s).filter((k) => !ANNOTATIONS.has(k));
    if (s.$ref !== undefined) {
      const others = structural.filter((k) => k !== '$ref');
      if (others.length > 0) throw new SchemaError(ptr, `$ref next to ${others.join(', ')} is not supported (move them into the referenced schema)`);
      return this.ref(s.$ref, ptr);
    }
    if (s.allOf !== undefined) {
      const others = structural.filter((k) => k !== 'allOf');
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1 || others.length > 0) {
        throw new SchemaError(ptr, 'allOf is supported only with exactly one schema and no sibling keywords (merge the schemas by hand)');
      }
      return this.compile(s.allOf[0], `${ptr}/allOf/0`);
    }
    for (const key of ['anyOf', 'oneOf'] as const) {
      if (s[key] === undefined) continue;
      const others = structural.filter((k) => k !== key);
      if (others.length > 0) throw new SchemaError(ptr, `${key} next to ${others.join(', ')} is not supported (put those keywords inside each alternative)`);
      const list = s[key];
      if (!Array.isArray(list) || list.length === 0) throw new SchemaError(`${ptr}/${key}`, 'must be a non-empty array of schemas');
      const options = list.map((o, i) => this.compile(o, `${ptr}/${key}/${i}`));
      return options.length === 1 ? options[0]! : { kind: 'union', options };
    }
    const types = this.types(s, ptr);
    if (s.const !== undefined || s.enum !== undefined) return this.literal(s, types, ptr);
    if (types.length === 0) return { kind: 'any' };
    const options = types.map((t) => this.typed(t, s, ptr));
    return options.length === 1 ? options[0]! : { kind: 'union', options };
  }

  private ref(ref: unknown, ptr: string): SchemaNode {
    if (typeof ref !== 'string') throw new SchemaError(`${ptr}/$ref`, 'must be a string');
    const existing = this.refs.get(ref);
    if (existing !== undefined) return existing;
    const m = /^#(?:\/(\$defs|definitions)\/(.+))?$/.exec(ref);
    if (m === null) throw new SchemaError(`${ptr}/$ref`, `only local references (#, #/$defs/<name>, #/definitions/<name>) are supported, got ${JSON.stringify(ref)}`);
    const node: RefNode = { kind: 'ref', ref, target: null };
    this.refs.set(ref, node);
    let target: unknown = this.root;
    if (m[1] !== undefined) {
      const defs = this.root[m[1]];
      const name = m[2]!.replace(/~1/g, '/').replace(/~0/g, '~');
      target = isObj(defs) ? defs[name] : undefined;
      if (target === undefined) throw new SchemaError(`${ptr}/$ref`, `${JSON.stringify(ref)} does not resolve (no ${m[1]}.${name})`);
    }
    node.target = this.compile(target, ref.slice(1));
    return node;
  }

  private types(s: Record<string, unknown>, ptr: string): TypeName[] {
    const t = s.type;
    if (t !== undefined) {
      const list = Array.isArray(t) ? t : [t];
      if (list.length === 0) throw new SchemaError(`${ptr}/type`, 'must not be an empty list');
      for (const x of list) {
        if (typeof x !== 'string' || !(TYPES as readonly string[]).includes(x)) {
          throw new SchemaError(`${ptr}/type`, `unknown type ${JSON.stringify(x)} (expected one of ${TYPES.join(', ')})`);
        }
      }
      const out = [...new Set(list as TypeName[])];
      // "number" already covers integers.
      return out.includes('number') ? out.filter((x) => x !== 'integer') : out;
    }
    // No type: JSON Schema allows every type; the keywords present say which one is meant.
    const inferred = (Object.keys(STRUCTURAL_BY_TYPE) as (keyof typeof STRUCTURAL_BY_TYPE)[]).filter((k) =>
      STRUCTURAL_BY_TYPE[k].some((kw) => s[kw] !== undefined),
    );
    if (inferred.length > 0) return inferred;
    if (s.const !== undefined || s.enum !== undefined) return [...TYPES];
    return [];
  }

  private literal(s: Record<string, unknown>, types: TypeName[], ptr: string): SchemaNode {
    const values: unknown[] = s.const !== undefined ? [s.const] : Array.isArray(s.enum) ? s.enum : [];
    if (s.const === undefined && !Array.isArray(s.enum)) throw new SchemaError(`${ptr}/enum`, 'must be an array');
    const allowed = types.length === 0 ? null : new Set(types);
    const texts = values
      .filter((v) => {
        if (allowed === null) return true;
        const t = typeOfValue(v);
        return allowed.has(t) || (t === 'integer' && allowed.has('number'));
      })
      .map((v) => JSON.stringify(v));
    if (texts.length === 0) throw new SchemaError(ptr, 'no enum/const value has the schema\'s type, so nothing can match');
    return { kind: 'literal', texts: [...new Set(texts)] };
  }

  private num(s: Record<string, unknown>, key: string, ptr: string): number | undefined {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new SchemaError(`${ptr}/${key}`, 'must be a finite number');
    return v;
  }

  private count(s: Record<string, unknown>, key: string, ptr: string, dflt: number): number {
    const v = s[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new SchemaError(`${ptr}/${key}`, 'must be a non-negative integer');
    return v;
  }

  private typed(t: TypeName, s: Record<string, unknown>, ptr: string): SchemaNode {
    switch (t) {
      case 'null':
        return { kind: 'null' };
      case 'boolean':
        return { kind: 'boolean' };
      case 'string': {
        const minLength = this.count(s, 'minLength', ptr, 0);
        const maxLength = this.count(s, 'maxLength', ptr, Infinity);
        if (minLength > maxLength) throw new SchemaError(ptr, `minLength ${minLength} > maxLength ${maxLength}`);
        const format = typeof s.format === 'string' ? (STRING_FORMATS.get(s.format) ?? null) : null;
        if (format !== null && (format.length < minLength || format.length > maxLength)) {
          throw new SchemaError(ptr, `a "${format.name}" string has ${format.length} characters, outside minLength ${minLength} / maxLength ${maxLength}`);
        }
        return { kind: 'string', minLength, maxLength, format };
      }
      case 'number':
      case 'integer': {
        let min = this.num(s, 'minimum', ptr) ?? -Infinity;
        let max = this.num(s, 'maximum', ptr) ?? Infinity;
        let exclusiveMin = false;
        let exclusiveMax = false;
        const exMin = s.exclusiveMinimum;
        const exMax = s.exclusiveMaximum;
        // Draft 4 spelled exclusivity as booleans next to minimum / maximum.
        if (typeof exMin === 'boolean') exclusiveMin = exMin && Number.isFinite(min);
        else if (exMin !== undefined) {
          const v = this.num(s, 'exclusiveMinimum', ptr)!;
          if (v >= min) [min, exclusiveMin] = [v, true];
        }
        if (typeof exMax === 'boolean') exclusiveMax = exMax && Number.isFinite(max);
        else if (exMax !== undefined) {
          const v = this.num(s, 'exclusiveMaximum', ptr)!;
          if (v <= max) [max, exclusiveMax] = [v, true];
        }
        const integer = t === 'integer';
        if (integer) {
          // Integers: exclusive bounds become inclusive ones.
          const lo = exclusiveMin ? Math.floor(min) + 1 : Math.ceil(min);
          const hi = exclusiveMax ? Math.ceil(max) - 1 : Math.floor(max);
          [min, max, exclusiveMin, exclusiveMax] = [lo, hi, false, false];
          if (min > max) throw new SchemaError(ptr, 'no integer lies between the minimum and the maximum');
        } else if (min > max || (min === max && (exclusiveMin || exclusiveMax))) {
          throw new SchemaError(ptr, 'no number lies between the minimum and the maximum');
        }
        if (Math.abs(min) > 1e15 && Number.isFinite(min)) throw new SchemaError(`${ptr}/minimum`, 'bounds beyond ±1e15 are not supported');
        if (Math.abs(max) > 1e15 && Number.isFinite(max)) throw new SchemaError(`${ptr}/maximum`, 'bounds beyond ±1e15 are not supported');
        return { kind: 'number', integer, min, max, exclusiveMin, exclusiveMax };
      }
      case 'array': {
        const prefix = s.prefixItems;
        if (prefix !== undefined && !Array.isArray(prefix)) throw new SchemaError(`${ptr}/prefixItems`, 'must be an array of schemas');
        const prefixItems = (prefix ?? []).map((p, i) => this.compile(p, `${ptr}/prefixItems/${i}`));
        let items: SchemaNode | null = { kind: 'any' };
        if (Array.isArray(s.items)) throw new SchemaError(`${ptr}/items`, 'the array form of items is draft-7 tuple syntax; use prefixItems');
        if (s.items === false) items = null;
        else if (s.items !== undefined) items = this.compile(s.items, `${ptr}/items`);
        const minItems = this.count(s, 'minItems', ptr, 0);
        const maxItems = this.count(s, 'maxItems', ptr, Infinity);
        if (minItems > maxItems) throw new SchemaError(ptr, `minItems ${minItems} > maxItems ${maxItems}`);
        if (items === null && minItems > prefixItems.length) throw new SchemaError(ptr, `minItems ${minItems} needs more items than prefixItems allows with items: false`);
        return { kind: 'array', prefixItems, items, minItems, maxItems };
      }
      case 'object': {
        const props = s.properties ?? {};
        if (!isObj(props)) throw new SchemaError(`${ptr}/properties`, 'must be an object of schemas');
        const properties = new Map<string, SchemaNode>();
        for (const [name, sub] of Object.entries(props)) properties.set(escapedName(name), this.compile(sub, `${ptr}/properties/${name}`));
        const req = s.required ?? [];
        if (!Array.isArray(req) || !req.every((r): r is string => typeof r === 'string')) throw new SchemaError(`${ptr}/required`, 'must be an array of property names');
        const required = new Set(req.map(escapedName));
        const ap = s.additionalProperties;
        let additional: SchemaNode | null = { kind: 'any' };
        if (ap === false) additional = null;
        else if (ap !== undefined && ap !== true) additional = this.compile(ap, `${ptr}/additionalProperties`);
        for (const r of required) {
          if (!properties.has(r) && additional === null) throw new SchemaError(`${ptr}/required`, `${JSON.stringify(r)} is required but not a property and additionalProperties is false`);
          // A required property not declared takes the additional schema.
          if (!properties.has(r)) properties.set(r, additional!);
        }
        const minProperties = this.count(s, 'minProperties', ptr, 0);
        const maxProperties = this.count(s, 'maxProperties', ptr, Infinity);
        if (required.size > maxProperties) throw new SchemaError(ptr, `maxProperties ${maxProperties} is below the ${required.size} required properties`);
        if (additional === null && minProperties > properties.size) throw new SchemaError(ptr, `minProperties ${minProperties} exceeds the ${properties.size} properties allowed`);
        return { kind: 'object', properties, required, additional, minProperties, maxProperties };
      }
    }
  }
}

/** Compiles a JSON Schema (an object, or true) into the matcher's node graph; throws SchemaError naming what is unsupported. */
export function compileSchema(schema: unknown): SchemaNode {
  if (schema === true) return { kind: 'any' };
  if (!isObj(schema)) throw new SchemaError('', `the schema must be an object, got ${JSON.stringify(schema)}`);
  return new Compiler(schema).compile(schema, '');
}

/** The node for json_object: any JSON object. */
export const ANY_OBJECT: ObjectNode = { kind: 'object', properties: new Map(), required: new Set(), additional: { kind: 'any' }, minProperties: 0, maxProperties: Infinity };
