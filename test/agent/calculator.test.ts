import { describe, expect, it } from 'vitest';
import { CalcError, evaluateExpression, formatNumber } from '../../src/agent/tools/calculator.js';

describe('calculator', () => {
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 - 4 - 3', 3],
    ['2 ^ 3 ^ 2', 512],
    ['-2 ^ 2', -4],
    ['2 ^ -1', 0.5],
    ['(-2) ^ 2', 4],
    ['- - 3', 3],
    ['7 % 4', 3],
    ['-7 % 4', -3],
    ['100 / 8 / 5', 2.5],
    ['2 ** 10', 1024],
    ['sqrt(16) + abs(-3)', 7],
    ['max(1, 5, 3) - min(4, 2)', 3],
    ['round(2.5)', 3],
    ['round(3.14159, 2)', 3.14],
    ['log(e)', 1],
    ['exp(0) + cos(0)', 2],
    ['1.5e3 + .5', 1500.5],
    ['floor(7 / 2) * ceil(0.2)', 3],
  ])('%s = %d', (expr, want) => {
    expect(evaluateExpression(expr)).toBeCloseTo(want, 12);
  });

  it('trigonometry and constants', () => {
    expect(evaluateExpression('sin(pi / 2)')).toBeCloseTo(1, 15);
    expect(evaluateExpression('2 * PI')).toBeCloseTo(2 * Math.PI, 15);
    expect(evaluateExpression('log10(1000)')).toBeCloseTo(3, 15);
  });

  it.each([
    ['1 +', /end of expression/],
    ['(1 + 2', /expected '\)'/],
    ['1 / 0', /division by zero/],
    ['foo(2)', /unknown function 'foo'/],
    ['x + 1', /unknown name 'x'/],
    ['2 $ 3', /unexpected character '\$' at position 3/],
    ['sqrt(1, 2)', /sqrt takes 1 argument/],
    ['sqrt(-1)', /not a number/],
    ['1 2', /unexpected '2'/],
    ['process.exit()', /unexpected character '\.'/],
  ])('%s is refused with a clear error', (expr, msg) => {
    expect(() => evaluateExpression(expr)).toThrow(CalcError);
    expect(() => evaluateExpression(expr)).toThrow(msg);
  });

  it('refuses absurd nesting instead of overflowing the stack', () => {
    expect(() => evaluateExpression('('.repeat(500) + '1' + ')'.repeat(500))).toThrow(/nests too deeply/);
    expect(() => evaluateExpression('-'.repeat(500) + '1')).toThrow(/nests too deeply/);
  });

  it('formats results', () => {
    expect(formatNumber(42)).toBe('42');
    expect(formatNumber(0.1 + 0.2)).toBe('0.3');
    expect(formatNumber(1 / 3)).toBe('0.333333333333');
  });
});
