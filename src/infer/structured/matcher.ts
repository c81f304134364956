/**
 * A byte-level pushdown matcher for JSON constrained by a compiled schema (schema.ts).
 *
 * The state is a persistent stack of immutable frames (object, array, string, formatted string,
 * number, literal, sequence), so advancing by one byte allocates a few small objects and never
 * copies the stack: the token trie walk (constraint.ts) branches on every byte and keeps the
 * parent state untouched.
 * Alternatives (anyOf, a list of types) are followed in parallel as several stacks.
 *
 * Every accepted prefix can still be completed — required properties stay reachable, number
 * prefixes are checked against their bounds, string lengths against maxLength, dates against
 * their month — so a model is
 * never left with no allowed token. Whitespace between tokens is allowed, at most MAX_WS bytes in
 * a row, so that a model cannot loop on spaces; strings hold valid UTF-8 only (no lone surrogate
 * escapes), so the decoded text is exactly the bytes matched.
 */
import { formatState, type StringFormat } from './formats.js';
import { ANY_OBJECT, type ArrayNode, type LiteralNode, type NumberNode, type ObjectNode, type SchemaNode, type StringNode, type ToolCallNode } from './schema.js';

/** Whitespace bytes allowed in a row between JSON tokens. */
export const MAX_WS = 8;
/** Digits allowed in a number's integer part, fraction and exponent (keeps numbers finite and exact enough). */
const MAX_INT_DIGITS = 16;
const MAX_FRAC_DIGITS = 15;
const MAX_EXP_DIGITS = 2;

export interface Stack {
  readonly frame: Frame;
  readonly below: Stack | null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACK = 0x5b;
const RBRACK = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;

/** Whitespace between tokens: space, newline, tab (JSON's carriage return is left out: models have no use for it). */
function isWs(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x09;
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

const ids = new WeakMap<object, number>();
let nextId = 1;
function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) {
    id = nextId++;
    ids.set(o, id);
  }
  return id;
}

export abstract class Frame {
  /** Consumes byte `b` with this frame on top of `below`, pushing every resulting stack to `out`. */
  abstract feed(b: number, below: Stack | null, out: Stack[]): void;
  /** The value may end here (a number, or a literal another candidate extends): the next byte goes to the parent. */
  get canEnd(): boolean {
    return false;
  }
  /** The child value on top of this frame completed: this frame advanced past it. */
  childDone(child: Frame): Frame {
    void child;
    throw new Error(`${this.constructor.name} has no child values`);
  }
  /** Identity of the state, to merge alternative stacks that became equal. */
  abstract key(): string;
}

/** `child` ended for good: its parent advances past it. */
function complete(child: Frame, below: Stack | null, out: Stack[]): void {
  if (below === null) throw new Error('matcher: a value completed without a parent');
  out.push({ frame: below.frame.childDone(child), below: below.below });
}

/** `child` may end and cannot take `b`: it ends and its parent takes `b`. */
function endThenFeed(child: Frame, b: number, below: Stack | null, out: Stack[]): void {
  if (below === null) return;
  below.frame.childDone(child).feed(b, below.below, out);
}

const ANY: SchemaNode = { kind: 'any' };
const ANY_ARRAY: ArrayNode = { kind: 'array', prefixItems: [], items: ANY, minItems: 0, maxItems: Infinity };
const ANY_STRING: StringNode = { kind: 'string', minLength: 0, maxLength: Infinity, format: null };
const ANY_NUMBER: NumberNode = { kind: 'number', integer: false, min: -Infinity, max: Infinity, exclusiveMin: false, exclusiveMax: false };
const enc = new TextEncoder();
const TRUE_FALSE: LiteralNode = { kind: 'literal', texts: ['true', 'false'] };
const TRUE: LiteralNode = { kind: 'literal', texts: ['true'] };
const FALSE: LiteralNode = { kind: 'literal', texts: ['false'] };
const NULL: LiteralNode = { kind: 'literal', texts: ['null'] };

/** Starts a value of `node` with its first byte `b`; `below` is the parent, already waiting for the child. */
export function startValue(node: SchemaNode, b: number, below: Stack, out: Stack[]): void {
  switch (node.kind) {
    case 'ref':
      startValue(node.target!, b, below, out);
      return;
    case 'union':
      for (const o of node.options) startValue(o, b, below, out);
      return;
    case 'any':
      if (b === LBRACE) startValue(ANY_OBJECT, b, below, out);
      else if (b === LBRACK) startValue(ANY_ARRAY, b, below, out);
      else if (b === QUOTE) startValue(ANY_STRING, b, below, out);
      else if (b === MINUS || isDigit(b)) startValue(ANY_NUMBER, b, below, out);
      else if (b === 0x74) startValue(TRUE, b, below, out);
      else if (b === 0x66) startValue(FALSE, b, below, out);
      else if (b === 0x6e) startValue(NULL, b, below, out);
      return;
    case 'object':
      if (b === LBRACE) out.push({ frame: new ObjectFrame(node, O_START, EMPTY_SEEN, null, 0), below });
      return;
    case 'array':
      if (b === LBRACK) out.push({ frame: new ArrayFrame(node, A_START, 0, 0), below });
      return;
    case 'string':
      if (b !== QUOTE) return;
      if (node.format !== null) out.push({ frame: new FormatFrame(node.format, []), below });
      else out.push({ frame: new StringFrame(node.minLength, node.maxLength, 0, 0, 0, 0, 0, null, ''), below });
      return;
    case 'number':
      new NumberFrame(node, N_START, '').feed(b, below, out);
      return;
    case 'boolean':
      LiteralFrame.start(TRUE_FALSE, b, below, out);
      return;
    case 'null':
      LiteralFrame.start(NULL, b, below, out);
      return;
    case 'literal':
      LiteralFrame.start(node, b, below, out);
      return;
    case 'toolcall':
      new SeqFrame(toolCallProgram(node), 0, 0, 0, null, null).feed(b, below, out);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Objects

const O_START = 0;
const O_KEY = 1; // waiting for the key string (child)
const O_AFTER_KEY = 2;
const O_AFTER_COLON = 3;
const O_VALUE = 4; // waiting for the value (child)
const O_AFTER_VALUE = 5;
const O_AFTER_COMMA = 6;
const EMPTY_SEEN: readonly string[] = [];

/** What a key string may be: one of `names` (JSON-escaped, as byte strings), or any other unseen key when allowOther. */
interface KeySpec {
  names: readonly string[];
  allowOther: boolean;
  /** Keys that may not be used (already present, or declared: a declared name is a property, never "other"). */
  taken: ReadonlySet<string>;
}

class ObjectFrame extends Frame {
  constructor(
    readonly node: ObjectNode,
    readonly phase: number,
    readonly seen: readonly string[],
    readonly pending: string | null,
    readonly ws: number,
  ) {
    super();
  }

  private canClose(): boolean {
    if (this.seen.length < this.node.minProperties) return false;
    for (const r of this.node.required) if (!this.seen.includes(r)) return false;
    return true;
  }

  private spec: KeySpec | null | undefined = undefined;

  /** The key spec for the next key, or null when no key can be added (computed once per frame). */
  private keySpec(): KeySpec | null {
    if (this.spec === undefined) this.spec = this.computeKeySpec();
    return this.spec;
  }

  private computeKeySpec(): KeySpec | null {
    const n = this.node;
    const slots = n.maxProperties - this.seen.length;
    if (slots <= 0) return null;
    const missing: string[] = [];
    for (const r of n.required) if (!this.seen.includes(r)) missing.push(r);
    const forced = missing.length > 0 && missing.length >= slots;
    const names: string[] = [];
    if (forced) names.push(...missing);
    else for (const k of n.properties.keys()) if (!this.seen.includes(k)) names.push(k);
    const allowOther = !forced && n.additional !== null;
    if (names.length === 0 && !allowOther) return null;
    const taken = new Set<string>(this.seen);
    for (const k of n.properties.keys()) taken.add(k);
    return { names: names.map(latin1OfUtf8), allowOther, taken: new Set([...taken].map(latin1OfUtf8)) };
  }

  feed(b: number, below: Stack | null, out: Stack[]): void {
    const { node, phase, seen, pending, ws } = this;
    if (isWs(b)) {
      if (ws < MAX_WS) out.push({ frame: new ObjectFrame(node, phase, seen, pending, ws + 1), below });
      return;
    }
    switch (phase) {
      case O_START:
      case O_AFTER_COMMA:
        if (b === QUOTE) {
          const spec = this.keySpec();
          if (spec !== null) out.push({ frame: new StringFrame(0, Infinity, 0, 0, 0, 0, 0, spec, ''), below: { frame: new ObjectFrame(node, O_KEY, seen, null, 0), below } });
        } else if (b === RBRACE && phase === O_START && this.canClose()) complete(this, below, out);
        return;
      case O_AFTER_KEY:
        if (b === COLON) out.push({ frame: new ObjectFrame(node, O_AFTER_COLON, seen, pending, 0), below });
        return;
      case O_AFTER_COLON: {
        const schema = node.properties.get(pending!) ?? node.additional ?? ANY;
        startValue(schema, b, { frame: new ObjectFrame(node, O_VALUE, seen, pending, 0), below }, out);
        return;
      }
      case O_AFTER_VALUE:
        if (b === COMMA) {
          if (this.keySpec() !== null) out.push({ frame: new ObjectFrame(node, O_AFTER_COMMA, seen, null, 0), below });
        } else if (b === RBRACE && this.canClose()) complete(this, below, out);
        return;
    }
  }

  override childDone(child: Frame): Frame {
    if (this.phase === O_KEY) {
      const key = utf8OfLatin1((child as StringFrame).text);
      return new ObjectFrame(this.node, O_AFTER_KEY, [...this.seen, key], key, 0);
    }
    return new ObjectFrame(this.node, O_AFTER_VALUE, this.seen, null, 0);
  }

  key(): string {
    return `O${idOf(this.node)},${this.phase},${this.ws},${this.pending ?? ''}\u0001${this.seen.join('\u0000')}`;
  }
}

// Key names are compared as "byte strings" (one char per UTF-8 byte), as the string frame sees them.
function latin1OfUtf8(s: string): string {
  let out = '';
  for (const b of enc.encode(s)) out += String.fromCharCode(b);
  return out;
}

function utf8OfLatin1(s: string): string {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

// ---------------------------------------------------------------------------------------------
// Arrays

const A_START = 0;
const A_VALUE = 1;
const A_AFTER_VALUE = 2;
const A_AFTER_COMMA = 3;

function itemSchema(node: ArrayNode, i: number): SchemaNode | null {
  return i < node.prefixItems.length ? node.prefixItems[i]! : node.items;
}

class ArrayFrame extends Frame {
  constructor(
    readonly node: ArrayNode,
    readonly phase: number,
    readonly count: number,
    readonly ws: number,
  ) {
    super();
  }

  private canAdd(): boolean {
    return this.count < this.node.maxItems && itemSchema(this.node, this.count) !== null;
  }

  feed(b: number, below: Stack | null, out: Stack[]): void {
    const { node, phase, count, ws } = this;
    if (isWs(b)) {
      if (ws < MAX_WS) out.push({ frame: new ArrayFrame(node, phase, count, ws + 1), below });
      return;
    }
    if (b === RBRACK && (phase === A_START || phase === A_AFTER_VALUE)) {
      if (count >= node.minItems) complete(this, below, out);
      return;
    }
    if (phase === A_AFTER_VALUE) {
      if (b === COMMA && this.canAdd()) out.push({ frame: new ArrayFrame(node, A_AFTER_COMMA, count, 0), below });
      return;
    }
    if ((phase === A_START || phase === A_AFTER_COMMA) && this.canAdd()) {
      startValue(itemSchema(node, count)!, b, { frame: new ArrayFrame(node, A_VALUE, count, 0), below }, out);
    }
  }

  override childDone(): Frame {
    return new ArrayFrame(this.node, A_AFTER_VALUE, this.count + 1, 0);
  }

  key(): string {
    return `A${idOf(this.node)},${this.phase},${this.count},${this.ws}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Strings

const E_NONE = 0;
const E_BACKSLASH = 1;
// \u escapes: E_HEX + k = k hex digits still to come; E_HEX_LOW: the second digit after a 'd' (0-7: no surrogates).
const E_HEX = 10;
const E_HEX_LOW = 20;

class StringFrame extends Frame {
  constructor(
    readonly minLength: number,
    readonly maxLength: number,
    /** Code points so far (an escape counts as one). */
    readonly count: number,
    readonly esc: number,
    /** UTF-8 continuation bytes still needed, and the range the next one must be in. */
    readonly need: number,
    readonly lo: number,
    readonly hi: number,
    /** Non-null for object keys. */
    readonly keySpec: KeySpec | null,
    /** The key's bytes so far (one char per byte); empty for values. */
    readonly text: string,
  ) {
    super();
  }

  /** At a clean boundary (no escape or multi-byte character in progress). */
  get clean(): boolean {
    return this.esc === E_NONE && this.need === 0;
  }

  private next(count: number, esc: number, need: number, lo: number, hi: number, b: number): StringFrame {
    return new StringFrame(this.minLength, this.maxLength, count, esc, need, lo, hi, this.keySpec, this.keySpec === null ? '' : this.text + String.fromCharCode(b));
  }

  feed(b: number, below: Stack | null, out: Stack[]): void {
    const spec = this.keySpec;
    if (spec !== null) {
      this.feedKey(spec, b, below, out);
      return;
    }
    const r = this.step(b);
    if (r === 'close') complete(this, below, out);
    else if (r !== null) out.push({ frame: r, below });
  }

  /** The string grammar for one byte: the next frame, 'close' for the closing quote, or null. */
  private step(b: number): StringFrame | 'close' | null {
    const { count, esc, need } = this;
    if (need > 0) {
      if (b < this.lo || b > this.hi) return null;
      return this.next(count, E_NONE, need - 1, 0x80, 0xbf, b);
    }
    if (esc !== E_NONE) {
      if (esc === E_BACKSLASH) {
        if (b === 0x75) return this.next(count, E_HEX + 4, 0, 0, 0, b);
        if (b === QUOTE || b === BACKSLASH || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74) return this.next(count, E_NONE, 0, 0, 0, b);
        return null;
      }
      if (esc === E_HEX_LOW) return b >= 0x30 && b <= 0x37 ? this.next(count, E_HEX + 2, 0, 0, 0, b) : null;
      const isHex = isDigit(b) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46);
      if (!isHex) return null;
      if (esc === E_HEX + 4 && (b === 0x64 || b === 0x44)) return this.next(count, E_HEX_LOW, 0, 0, 0, b);
      return this.next(count, esc === E_HEX + 1 ? E_NONE : esc - 1, 0, 0, 0, b);
    }
    if (b === QUOTE) return count >= this.minLength ? 'close' : null;
    if (count >= this.maxLength) return null;
    if (b === BACKSLASH) return this.next(count + 1, E_BACKSLASH, 0, 0, 0, b);
    if (b < 0x20) return null;
    if (b < 0x80) return this.next(count + 1, E_NONE, 0, 0, 0, b);
    if (b >= 0xc2 && b <= 0xdf) return this.next(count + 1, E_NONE, 1, 0x80, 0xbf, b);
    if (b === 0xe0) return this.next(count + 1, E_NONE, 2, 0xa0, 0xbf, b);
    if (b === 0xed) return this.next(count + 1, E_NONE, 2, 0x80, 0x9f, b);
    if (b >= 0xe1 && b <= 0xef) return this.next(count + 1, E_NONE, 2, 0x80, 0xbf, b);
    if (b === 0xf0) return this.next(count + 1, E_NONE, 3, 0x90, 0xbf, b);
    if (b >= 0xf1 && b <= 0xf3) return this.next(count + 1, E_NONE, 3, 0x80, 0xbf, b);
    if (b === 0xf4) return this.next(count + 1, E_NONE, 3, 0x80, 0x8f, b);
    return null;
  }

  /**
   * Keys: either a prefix of a declared name (byte for byte, escapes included) or, when other keys
   * are allowed, any escape-free string that is not taken.
   */
  private feedKey(spec: KeySpec, b: number, below: Stack | null, out: Stack[]): void {
    const text = this.text;
    if (b === QUOTE && this.clean) {
      const isName = spec.names.includes(text);
      const isOther = spec.allowOther && !text.includes('\\') && !spec.taken.has(text);
      if (isName || isOther) {
        complete(this, below, out);
        return;
      }
    }
    const ext = text + String.fromCharCode(b);
    if (spec.names.some((n) => n.startsWith(ext))) {
      // Declared names are valid JSON string bodies: follow them byte for byte.
      const r = b === BACKSLASH || text.includes('\\') ? null : this.step(b);
      out.push({ frame: r instanceof StringFrame ? r : new StringFrame(0, Infinity, this.count + 1, E_NONE, 0, 0, 0, spec, ext), below });
      return;
    }
    if (!spec.allowOther || b === BACKSLASH || text.includes('\\')) return;
    const r = this.step(b);
    if (r instanceof StringFrame) out.push({ frame: r, below });
  }

  key(): string {
    return `S${this.minLength},${this.maxLength},${this.count},${this.esc},${this.need},${this.lo},${this.hi},${this.keySpec === null ? 0 : idOf(this.keySpec)},${this.text}`;
  }
}

/** A string (a value, or a key that may be any name) at a character boundary: constraint.ts's fast path. */
export function plainStringState(frame: Frame): { remaining: number } | null {
  if (!(frame instanceof StringFrame) || !frame.clean) return null;
  const spec = frame.keySpec;
  // A key that may be any (escape-free) name takes plain text as freely as a value does.
  if (spec !== null && (!spec.allowOther || frame.text.includes('\\'))) return null;
  return { remaining: frame.maxLength - frame.count };
}

/** A string of an enforced format (formats.ts), after its opening quote. */
class FormatFrame extends Frame {
  constructor(
    readonly format: StringFormat,
    readonly typed: readonly number[],
  ) {
    super();
  }

  feed(b: number, below: Stack | null, out: Stack[]): void {
    if (b === QUOTE) {
      if (formatState(this.format, this.typed) === 'complete') complete(this, below, out);
      return;
    }
    const next = [...this.typed, b];
    if (formatState(this.format, next) !== null) out.push({ frame: new FormatFrame(this.format, next), below });
  }

  key(): string {
    return `F${this.format.name},${String.fromCharCode(...this.typed)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers

const N_START = 0;
const N_SIGN = 1; // after '-'
const N_ZERO = 2; // integer part is "0"
const N_INT = 3;
const N_DOT = 4;
const N_FRAC = 5;
const N_E = 6;
const N_ESIGN = 7;
const N_EXP = 8;

class NumberFrame extends Frame {
  constructor(
    readonly node: NumberNode,
    readonly phase: number,
    readonly text: string,
  ) {
    super();
  }

  override get canEnd(): boolean {
    const p = this.phase;
    if (p !== N_ZERO && p !== N_INT && p !== N_FRAC && p !== N_EXP) return false;
    const n = this.node;
    if (n.min === -Infinity && n.max === Infinity) return true;
    const v = Number(this.text);
    return (n.exclusiveMin ? v > n.min : v >= n.min) && (n.exclusiveMax ? v < n.max : v <= n.max);
  }

  private bounded(): boolean {
    return this.node.min !== -Infinity || this.node.max !== Infinity;
  }

  private advance(phase: number, b: number): NumberFrame | null {
    const f = new NumberFrame(this.node, phase, this.text + String.fromCharCode(b));
    return !f.bounded() || f.feasible() ? f : null;
  }

  private nextFrame(b: number): NumberFrame | null {
    const { phase, text, node } = this;
    const digit = isDigit(b);
    switch (phase) {
      case N_START:
        if (b === MINUS) return this.advance(N_SIGN, b);
        if (!digit) return null;
        return this.advance(b === 0x30 ? N_ZERO : N_INT, b);
      case N_SIGN:
        // "-0" is a valid JSON integer but a pointless one; for integers it could only end there.
        if (!digit || (b === 0x30 && node.integer)) return null;
        return this.advance(b === 0x30 ? N_ZERO : N_INT, b);
      case N_ZERO:
      case N_INT:
        if (digit && phase === N_INT && intDigits(text) < MAX_INT_DIGITS) return this.advance(N_INT, b);
        if (b === DOT && !node.integer) return this.advance(N_DOT, b);
        if ((b === 0x65 || b === 0x45) && !node.integer && !this.bounded()) return this.advance(N_E, b);
        return null;
      case N_DOT:
        return digit ? this.advance(N_FRAC, b) : null;
      case N_FRAC:
        if (digit && text.length - text.indexOf('.') - 1 < MAX_FRAC_DIGITS) return this.advance(N_FRAC, b);
        if ((b === 0x65 || b === 0x45) && !this.bounded()) return this.advance(N_E, b);
        return null;
      case N_E:
        if (b === MINUS || b === PLUS) return this.advance(N_ESIGN, b);
        return digit ? this.advance(N_EXP, b) : null;
      case N_ESIGN:
        return digit ? this.advance(N_EXP, b) : null;
      case N_EXP: {
        const expDigits = text.length - Math.max(text.lastIndexOf('e'), text.lastIndexOf('E'), text.lastIndexOf('+'), text.lastIndexOf('-')) - 1;
        return digit && expDigits < MAX_EXP_DIGITS ? this.advance(N_EXP, b) : null;
      }
    }
    return null;
  }

  feed(b: number, below: Stack | null, out: Stack[]): void {
    const f = this.nextFrame(b);
    if (f !== null) out.push({ frame: f, below });
    else if (this.canEnd) endThenFeed(this, b, below, out);
  }

  /** Some completion of this prefix lies within the bounds (bounded numbers have no exponent). */
  private feasible(): boolean {
    const { text, node } = this;
    const neg = text.startsWith('-');
    const body = neg ? text.slice(1) : text;
    // Intervals [lo, hi] of the magnitudes reachable from this prefix; `open` when hi itself is not reachable.
    const ranges: [number, number, boolean][] = [];
    const step = node.integer ? 1 : 0;
    if (body === '') {
      // Only '-' so far: integers cannot be "-0" (see N_SIGN), numbers can approach zero.
      ranges.push([node.integer ? 1 : 0, 10 ** MAX_INT_DIGITS, false]);
    } else if (!body.includes('.')) {
      const d = Number(body);
      if (body === '0') ranges.push([0, node.integer ? 0 : 1, !node.integer]);
      else {
        for (let j = 0; j + body.length <= MAX_INT_DIGITS; j++) {
          const scale = 10 ** j;
          ranges.push([d * scale, (d + 1) * scale - step, !node.integer]);
        }
      }
    } else {
      const fracDigits = body.length - body.indexOf('.') - 1;
      const v = Number(fracDigits === 0 ? body.slice(0, -1) : body);
      if (fracDigits >= MAX_FRAC_DIGITS) ranges.push([v, v, false]);
      else ranges.push([v, v + 10 ** -fracDigits, true]);
    }
    for (const [lo, hi, open] of ranges) {
      // Signed interval [a, b] with openness of each end.
      const [a, aIn, c, cIn] = neg ? [-hi, !open, -lo, true] : [lo, true, hi, !open];
      if (meets(a, aIn, c, cIn, node)) return true;
    }
    return false;
  }

  key(): string {
    return `N${idOf(this.node)},${this.phase},${this.text}`;
  }
}

function intDigits(text: string): number {
  return text.replace('-', '').length;
}

/** The interval [a, c] (ends included when aIn / cIn) meets the node's bounds. */
function meets(a: number, aIn: boolean, c: number, cIn: boolean, n: NumberNode): boolean {
  let lo = a;
  let loIn = aIn;
  if (n.min > lo || (n.min === lo && n.exclusiveMin)) [lo, loIn] = [n.min, !n.exclusiveMin];
  let hi = c;
  let hiIn = cIn;
  if (n.max < hi || (n.max === hi && n.exclusiveMax)) [hi, hiIn] = [n.max, !n.exclusiveMax];
  return lo < hi || (lo === hi && loIn && hiIn);
}

// ---------------------------------------------------------------------------------------------
// Literals (true / false / null, enum and const values)

const literalBytes = new WeakMap<LiteralNode, Uint8Array[]>();

class LiteralFrame extends Frame {
  constructor(
    readonly cands: readonly Uint8Array[],
    readonly texts: readonly string[],
    readonly pos: number,
    readonly alive: readonly number[],
  ) {
    super();
  }

  static start(node: LiteralNode, b: number, below: Stack, out: Stack[]): void {
    let cands = literalBytes.get(node);
    if (cands === undefined) {
      cands = node.texts.map((t) => enc.encode(t));
      literalBytes.set(node, cands);
    }
    const all = cands.map((_, i) => i);
    new LiteralFrame(cands, node.texts, 0, all).feed(b, below, out);
  }

  override get canEnd(): boolean {
    return this.alive.some((i) => this.cands[i]!.length === this.pos);
  }

  /** The text of the candidate matched in full. */
  get matched(): string {
    const i = this.alive.find((k) => this.cands[k]!.length === this.pos);
    return i === undefined ? '' : this.texts[i]!;
  }

  feed(b: number, below: Stack | null, out: Stack[]): void {
    const next: number[] = [];
    let longer = false;
    for (const i of this.alive) {
      const c = this.cands[i]!;
      if (this.pos < c.length && c[this.pos] === b) {
        next.push(i);
        if (c.length > this.pos + 1) longer = true;
      }
    }
    if (next.length === 0) {
      if (this.canEnd) endThenFeed(this, b, below, out);
      return;
    }
    const f = new LiteralFrame(this.cands, this.texts, this.pos + 1, next);
    if (longer) out.push({ frame: f, below });
    else complete(f, below, out);
  }

  key(): string {
    return `L${idOf(this.cands)},${this.pos},${this.alive.join(',')}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Sequences: the root program and tool-call objects

export type SeqItem =
  | { kind: 'lit'; bytes: Uint8Array }
  | { kind: 'ws' }
  | { kind: 'value'; node: SchemaNode }
  /** A literal whose matched text becomes the sequence's choice (a tool name). */
  | { kind: 'choose'; node: LiteralNode }
  /** A value whose schema depends on the choice. */
  | { kind: 'chosen'; nodes: ReadonlyMap<string, SchemaNode> };

export interface SeqProgram {
  items: readonly SeqItem[];
  /** Root only: after completing, `sep` starts another round, up to `max` rounds in all. */
  repeat: { sep: Uint8Array; max: number } | null;
  root: boolean;
}

const lit = (s: string): SeqItem => ({ kind: 'lit', bytes: enc.encode(s) });
const WS: SeqItem = { kind: 'ws' };
const toolPrograms = new WeakMap<ToolCallNode, SeqProgram>();

function toolCallProgram(node: ToolCallNode): SeqProgram {
  let p = toolPrograms.get(node);
  if (p === undefined) {
    const names: LiteralNode = { kind: 'literal', texts: [...node.tools.keys()] };
    p = {
      items: [lit('{'), WS, lit('"name"'), WS, lit(':'), WS, { kind: 'choose', node: names }, WS, lit(','), WS, lit(JSON.stringify(node.argsKey)), WS, lit(':'), WS, { kind: 'chosen', nodes: node.tools }, WS, lit('}')],
      repeat: null,
      root: false,
    };
    toolPrograms.set(node, p);
  }
  return p;
}

export class SeqFrame extends Frame {
  constructor(
    readonly prog: SeqProgram,
    readonly idx: number,
    /** Position within a literal item (or within the repeat separator when sep is true). */
    readonly pos: number,
    readonly ws: number,
    readonly choice: string | null,
    /** Root only: rounds completed, and whether the separator is being matched. */
    readonly rounds: { done: number; sep: boolean } | null,
  ) {
    super();
  }

  /** Root: the program completed (another round may still follow). */
  get finished(): boolean {
    return this.idx === this.prog.items.length && this.rounds?.sep !== true;
  }

  /** Root: complete and nothing can follow. */
  get closed(): boolean {
    const r = this.prog.repeat;
    return this.finished && (r === null || (this.rounds?.done ?? 0) + 1 >= r.max);
  }

  private with(idx: number, pos: number, ws: number, choice = this.choice, rounds = this.rounds): SeqFrame {
    return new SeqFrame(this.prog, idx, pos, ws, choice, rounds);
  }

  feed(b: number, below: Stack | null, out: Stack[]): void {
    const items = this.prog.items;
    const idx = this.idx;
    if (this.rounds?.sep === true) {
      const sep = this.prog.repeat!.sep;
      if (sep[this.pos] !== b) return;
      if (this.pos + 1 < sep.length) out.push({ frame: this.with(idx, this.pos + 1, 0), below });
      else out.push({ frame: this.with(0, 0, 0, null, { done: this.rounds.done + 1, sep: false }), below });
      return;
    }
    if (idx === items.length) {
      const r = this.prog.repeat;
      if (r !== null && !this.closed && r.sep[0] === b) {
        const rounds = { done: this.rounds?.done ?? 0, sep: true };
        if (r.sep.length === 1) out.push({ frame: this.with(0, 0, 0, null, { done: rounds.done + 1, sep: false }), below });
        else out.push({ frame: this.with(idx, 1, 0, this.choice, rounds), below });
      }
      return;
    }
    const item = items[idx]!;
    switch (item.kind) {
      case 'lit': {
        if (item.bytes[this.pos] !== b) return;
        if (this.pos + 1 < item.bytes.length) out.push({ frame: this.with(idx, this.pos + 1, 0), below });
        else if (idx + 1 === items.length && !this.prog.root) complete(this.with(idx + 1, 0, 0), below, out);
        else out.push({ frame: this.with(idx + 1, 0, 0), below });
        return;
      }
      case 'ws':
        if (isWs(b)) {
          if (this.ws < MAX_WS) out.push({ frame: this.with(idx, 0, this.ws + 1), below });
          return;
        }
        this.with(idx + 1, 0, 0).feed(b, below, out);
        return;
      case 'value':
        startValue(item.node, b, { frame: this, below }, out);
        return;
      case 'choose':
        LiteralFrame.start(item.node, b, { frame: this, below }, out);
        return;
      case 'chosen': {
        const node = this.choice === null ? undefined : item.nodes.get(this.choice);
        if (node !== undefined) startValue(node, b, { frame: this, below }, out);
        return;
      }
    }
  }

  override childDone(child: Frame): Frame {
    const item = this.prog.items[this.idx];
    const choice = item?.kind === 'choose' ? (child as LiteralFrame).matched : this.choice;
    return this.with(this.idx + 1, 0, 0, choice);
  }

  key(): string {
    return `Q${idOf(this.prog)},${this.idx},${this.pos},${this.ws},${this.choice ?? ''},${this.rounds === null ? '' : `${this.rounds.done}${this.rounds.sep ? 's' : ''}`}`;
  }
}

/** The initial state of a root program. */
export function rootStack(prog: SeqProgram): Stack {
  return { frame: new SeqFrame(prog, 0, 0, 0, null, prog.repeat === null ? null : { done: 0, sep: false }), below: null };
}

/** Program items for a JSON value of `node` at the root (leading whitespace allowed, none after). */
export function valueProgram(node: SchemaNode): SeqProgram {
  return { items: [WS, { kind: 'value', node }], repeat: null, root: true };
}

/** Program for tool calls: `open` + call object + `close`, repeated with `sep` up to maxCalls times. */
export function toolCallsProgram(node: ToolCallNode, open: string, close: string, sep: string | null, maxCalls: number): SeqProgram {
  const items: SeqItem[] = [];
  if (open !== '') items.push(lit(open));
  items.push({ kind: 'value', node });
  if (close !== '') items.push(lit(close));
  return { items, repeat: sep === null || maxCalls <= 1 ? null : { sep: enc.encode(sep), max: maxCalls }, root: true };
}

/** Advances every stack by one byte. */
export function feedAll(states: readonly Stack[], b: number): Stack[] {
  const out: Stack[] = [];
  for (const s of states) s.frame.feed(b, s.below, out);
  return out;
}

/** The stack can end here: every open value may end and the root program is complete. */
export function finishable(stack: Stack): boolean {
  let s = stack;
  while (s.below !== null) {
    if (!s.frame.canEnd) return false;
    s = { frame: s.below.frame.childDone(s.frame), below: s.below.below };
  }
  return s.frame instanceof SeqFrame && s.frame.finished;
}

/** The stack is a closed root: the output is complete and nothing may follow. */
export function closed(stack: Stack): boolean {
  return stack.below === null && stack.frame instanceof SeqFrame && stack.frame.closed;
}

/** Drops duplicate stacks (alternatives that converged). */
export function dedupe(states: Stack[]): Stack[] {
  if (states.length <= 1) return states;
  const seen = new Set<string>();
  const out: Stack[] = [];
  for (const s of states) {
    let k = '';
    for (let t: Stack | null = s; t !== null; t = t.below) k += t.frame.key() + '|';
    if (!seen.has(k)) {
      seen.add(k);
      out.push(s);
    }
  }
  return out;
}
