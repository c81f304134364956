/**
 * The calculator: a recursive-descent parser and evaluator for arithmetic (never eval/Function).
 *
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/' | '%') unary)*
 *   unary   := ('-' | '+') unary | power
 *   power   := primary ('^' unary)?          right-associative; -2^2 = -(2^2) = -4, 2^-1 = 0.5
 *   primary := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
 *
 * Numbers: 12, 1.5, .5, 1e-3. Constants: pi, e. Functions: sqrt, sin, cos, tan, log (natural),
 * ln, log10, log2, exp, abs, min, max, round, floor, ceil. `%` is the remainder (as in JavaScript),
 * `**` is accepted as `^`. Errors name the position.
 */
import { z } from 'zod';
import { defineTool } from './tool.js';

export class CalcError extends Error {
  override name = 'CalcError';
}

type Tok = { kind: 'num'; value: number; pos: number } | { kind: 'name'; value: string; pos: number } | { kind: 'op'; value: string; pos: number } | { kind: 'end'; pos: number };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(src.slice(i));
    if (num !== null) {
      out.push({ kind: 'num', value: Number(num[0]), pos: i });
      i += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (name !== null) {
      out.push({ kind: 'name', value: name[0].toLowerCase(), pos: i });
      i += name[0].length;
      continue;
    }
    if (src.startsWith('**', i)) {
      out.push({ kind: 'op', value: '^', pos: i });
      i += 2;
      continue;
    }
    if ('+-*/%^(),'.includes(c)) {
      out.push({ kind: 'op', value: c, pos: i });
      i++;
      continue;
    }
    throw new CalcError(`unexpected character '${c}' at position ${i + 1}`);
  }
  out.push({ kind: 'end', pos: src.length });
  return out;
}

const CONSTANTS: Record<string, number> = { pi: Math.PI, e: Math.E };

const FUNCTIONS: Record<string, { arity: [number, number]; fn: (...xs: number[]) => number }> = {
  sqrt: { arity: [1, 1], fn: (x) => Math.sqrt(x) },
  sin: { arity: [1, 1], fn: Math.sin },
  cos: { arity: [1, 1], fn: Math.cos },
  tan: { arity: [1, 1], fn: Math.tan },
  log: { arity: [1, 1], fn: Math.log },
  ln: { arity: [1, 1], fn: Math.log },
  log10: { arity: [1, 1], fn: Math.log10 },
  log2: { arity: [1, 1], fn: Math.log2 },
  exp: { arity: [1, 1], fn: Math.exp },
  abs: { arity: [1, 1], fn: Math.abs },
  floor: { arity: [1, 1], fn: Math.floor },
  ceil: { arity: [1, 1], fn: Math.ceil },
  // round(x) or round(x, digits).
  round: { arity: [1, 2], fn: (x, d = 0) => Math.round(x * 10 ** d) / 10 ** d },
  min: { arity: [1, Infinity], fn: Math.min },
  max: { arity: [1, Infinity], fn: Math.max },
};

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.i]!;
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.value === v;
  }

  private expectOp(v: string): void {
    const t = this.peek();
    if (!(t.kind === 'op' && t.value === v)) throw new CalcError(`expected '${v}' at position ${t.pos + 1}${t.kind === 'end' ? ' (end of input)' : ''}`);
    this.i++;
  }

  parseAll(): number {
    const v = this.expr();
    const t = this.peek();
    if (t.kind !== 'end') throw new CalcError(`unexpected '${t.kind === 'num' ? t.value : t.value}' at position ${t.pos + 1}`);
    return v;
  }

  private expr(): number {
    // Deep nesting is refused rather than allowed to overflow the stack.
    if (++this.depth > 200) throw new CalcError('expression nests too deeply');
    let v = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.toks[this.i++] as { value: string }).value;
      const r = this.term();
      v = op === '+' ? v + r : v - r;
    }
    this.depth--;
    return v;
  }

  private term(): number {
    let v = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const t = this.toks[this.i++] as { value: string; pos: number };
      const r = this.unary();
      if ((t.value === '/' || t.value === '%') && r === 0) throw new CalcError(`division by zero at position ${t.pos + 1}`);
      v = t.value === '*' ? v * r : t.value === '/' ? v / r : v % r;
    }
    return v;
  }

  private unary(): number {
    if (this.isOp('-')) {
      this.i++;
      if (++this.depth > 200) throw new CalcError('expression nests too deeply');
      const v = -this.unary();
      this.depth--;
      return v;
    }
    if (this.isOp('+')) {
      this.i++;
      return this.unary();
    }
    return this.power();
  }

  private power(): number {
    const base = this.primary();
    if (this.isOp('^')) {
      this.i++;
      return base ** this.unary();
    }
    return base;
  }

  private primary(): number {
    const t = this.peek();
    if (t.kind === 'num') {
      this.i++;
      return t.value;
    }
    if (t.kind === 'op' && t.value === '(') {
      this.i++;
      const v = this.expr();
      this.expectOp(')');
      return v;
    }
    if (t.kind === 'name') {
      this.i++;
      if (this.isOp('(')) {
        const f = FUNCTIONS[t.value];
        if (f === undefined) throw new CalcError(`unknown function '${t.value}' at position ${t.pos + 1} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
        this.i++;
        const args = [this.expr()];
        while (this.isOp(',')) {
          this.i++;
          args.push(this.expr());
        }
        this.expectOp(')');
        if (args.length < f.arity[0] || args.length > f.arity[1]) throw new CalcError(`${t.value} takes ${f.arity[0] === f.arity[1] ? f.arity[0] : `${f.arity[0]} or more`} argument(s), got ${args.length}`);
        return f.fn(...args);
      }
      const c = CONSTANTS[t.value];
      if (c === undefined) throw new CalcError(`unknown name '${t.value}' at position ${t.pos + 1} (constants: pi, e)`);
      return c;
    }
    throw new CalcError(t.kind === 'end' ? 'unexpected end of expression' : `unexpected '${t.value}' at position ${t.pos + 1}`);
  }
}

/** Evaluates an arithmetic expression (see the grammar above). */
export function evaluateExpression(source: string): number {
  if (source.length > 2000) throw new CalcError('expression longer than 2000 characters');
  const v = new Parser(tokenize(source)).parseAll();
  if (Number.isNaN(v)) throw new CalcError('the result is not a number (e.g. sqrt of a negative)');
  return v;
}

/** A result as text: integers exactly, others to 12 significant digits without trailing zeros. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(v) && Math.abs(v) < 1e21) return String(v);
  return String(Number(v.toPrecision(12)));
}

export function calculatorTool() {
  return defineTool({
    name: 'calculator',
    description: 'Evaluates an arithmetic expression: + - * / % ^, parentheses, sqrt sin cos tan log ln log10 log2 exp abs min max round floor ceil, constants pi and e. Example: "(3 + 4) * 2^3".',
    schema: z.object({ expression: z.string().min(1).describe('the expression, e.g. "sqrt(2) * 10"') }),
    run: ({ expression }) => formatNumber(evaluateExpression(expression)),
  });
}
