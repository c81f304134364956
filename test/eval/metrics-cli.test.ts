/** `weft eval metric bleu|chrf|rouge|cider`: file reading, line-count checks and parity with the API. */
import { Command } from 'commander';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerEvalMetric } from '../../src/cli/eval-metric.js';
import { chrf, ciderD, corpusBleu, rouge } from '../../src/eval/index.js';

class Capture {
  text = '';
  readonly isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

function cli(): { run: (...args: string[]) => Promise<void>; stdout: Capture } {
  const stdout = new Capture();
  const program = new Command().name('weft').exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  registerEvalMetric(program.command('eval'), { stdout, stderr: new Capture() });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout };
}

const HYPS = ['The cat sat on the mat.', 'A quick brown fox jumps over the lazy dog', '', 'It rained all day in Paris.'];
const REFS1 = ['The cat is on the mat.', 'The quick brown fox jumped over the lazy dog.', 'Nothing here.', 'It was raining in Paris all day.'];
const REFS2 = ['There is a cat on the mat.', 'A fast brown fox leaps over a lazy dog.', 'Empty.', 'Paris had rain all day long.'];

function files(): { dir: string; hyp: string; ref1: string; ref2: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-eval-metric-'));
  const write = (name: string, lines: string[], eol = '\n'): string => {
    const p = join(dir, name);
    writeFileSync(p, lines.join(eol) + eol);
    return p;
  };
  return { dir, hyp: write('hyp.txt', HYPS), ref1: write('ref1.txt', REFS1, '\r\n'), ref2: write('ref2.txt', REFS2) };
}

describe('weft eval metric', () => {
  it('bleu --json equals corpusBleu with one reference stream per --ref file', async () => {
    const f = files();
    const c = cli();
    await c.run('eval', 'metric', 'bleu', '--hyp', f.hyp, '--ref', f.ref1, '--ref', f.ref2, '--tokenize', 'intl', '--json');
    const got = JSON.parse(c.stdout.text) as { score: number; counts: number[]; segments: number; references: number };
    const want = corpusBleu(HYPS, HYPS.map((_, i) => [REFS1[i], REFS2[i]]), { tokenize: 'intl' });
    expect(got.score).toBe(want.score);
    expect(got.counts).toEqual(want.counts);
    expect(got.segments).toBe(4);
    expect(got.references).toBe(2);
    expect(want.score).toBeGreaterThan(0);
    const text = cli();
    await text.run('eval', 'metric', 'bleu', '--hyp', f.hyp, '--ref', f.ref1);
    expect(text.stdout.text).toMatch(/^BLEU = \d+\.\d\d [\d.]+\/[\d.]+\/[\d.]+\/[\d.]+ \(BP = /);
  });

  it('chrf, rouge --stem and cider agree with the API', async () => {
    const f = files();
    const c1 = cli();
    await c1.run('eval', 'metric', 'chrf', '--hyp', f.hyp, '--ref', f.ref1, '--word-order', '2', '--json');
    const refs = HYPS.map((_, i) => [REFS1[i]]);
    expect((JSON.parse(c1.stdout.text) as { score: number }).score).toBe(chrf(HYPS, refs, { wordOrder: 2 }).score);

    const c2 = cli();
    await c2.run('eval', 'metric', 'rouge', '--hyp', f.hyp, '--ref', f.ref1, '--ref', f.ref2, '--stem', '--json');
    const got = JSON.parse(c2.stdout.text) as Record<string, { fmeasure: number }>;
    let mean = 0;
    for (let i = 0; i < HYPS.length; i++) mean += rouge(HYPS[i], [REFS1[i], REFS2[i]], { useStemmer: true }).rougeL?.fmeasure ?? NaN;
    expect(got.rougeL.fmeasure).toBeCloseTo(mean / HYPS.length, 14);

    const c3 = cli();
    await c3.run('eval', 'metric', 'cider', '--hyp', f.hyp, '--ref', f.ref1, '--ref', f.ref2, '--json');
    const cider = ciderD(HYPS.map((hyp, i) => ({ id: String(i), hyp, refs: [REFS1[i], REFS2[i]] })));
    expect((JSON.parse(c3.stdout.text) as { score: number }).score).toBe(cider.score);
  });

  it('names the files and line counts when they differ, and missing files', async () => {
    const f = files();
    const short = join(f.dir, 'short.txt');
    writeFileSync(short, 'one line\n');
    await expect(cli().run('eval', 'metric', 'bleu', '--hyp', f.hyp, '--ref', f.ref1, '--ref', short)).rejects.toThrow(
      `eval metric bleu: line counts differ: --hyp '${f.hyp}' has 4 line(s) but --ref '${short}' has 1`,
    );
    const missing = join(f.dir, 'nope.txt');
    await expect(cli().run('eval', 'metric', 'chrf', '--hyp', missing, '--ref', f.ref1)).rejects.toThrow(`eval metric chrf: cannot read --hyp '${missing}': no such file`);
    await expect(cli().run('eval', 'metric', 'bleu', '--hyp', f.hyp, '--ref', f.ref1, '--tokenize', 'moses')).rejects.toThrow(/Allowed choices are 13a, intl, zh, char, none/);
    await expect(cli().run('eval', 'metric', 'rouge', '--hyp', f.hyp)).rejects.toThrow(/--ref <file>/);
  });
});
