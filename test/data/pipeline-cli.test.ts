import { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerData } from '../../src/cli/data.js';
import { registerTrain } from '../../src/cli/train.js';
import { readShardIndex } from '../../src/data/pipeline/shards.js';
import { Capture, tempDir } from '../train/helpers.js';

const SHARED = join(import.meta.dirname, '..', '..', '..', 'shared', 'data');
const WIKI = join(SHARED, 'wikitext2', 'wiki.test.raw');
const SANGUO = join(SHARED, 'zh', 'sanguo_yanyi.txt');
const GPT2 = join(SHARED, 'gpt2');
const haveCorpora = existsSync(WIKI) && existsSync(SANGUO);

function cli(tty = false): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture; commanderErr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture(tty);
  const commanderErr = new Capture();
  const program = new Command().name('weft').exitOverride().configureOutput({ writeOut: (s) => void stdout.write(s), writeErr: (s) => void commanderErr.write(s) });
  registerData(program, { stdout, stderr });
  registerTrain(program, { stdout, stderr });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr, commanderErr };
}

/** English JSONL (with an exact duplicate) and Chinese plain text. */
function corpus(dir: string): { en: string; zh: string } {
  const paras = readFileSync(WIKI, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('=') && l.split(' ').length >= 60)
    .slice(0, 80)
    .map((l) => l.replace(/ @(.)@ /g, '$1').replace(/ ([,.;:!?)'])/g, '$1').replace(/\( /g, '('));
  const en = join(dir, 'en.jsonl');
  writeFileSync(en, [...paras, paras[2]!].map((text) => JSON.stringify({ body: text })).join('\n') + '\n');
  const zh = join(dir, 'zh.txt');
  writeFileSync(zh, readFileSync(SANGUO, 'utf8').slice(0, 6000));
  return { en, zh };
}

describe.skipIf(!haveCorpora)('weft data', () => {
  it('prepare (the exact flag forms, --json) then stats with an HTML report', async () => {
    const dir = tempDir('weft-data-cli-');
    const { en, zh } = corpus(dir);
    const out = join(dir, 'out');
    const c = cli();
    await c.run('data', 'prepare', '--input', en, '--input', join(dir, '*.txt'), '--text-field', 'body', '--out', out, '--dedup', 'exact', '--filters', 'gopher,c4,pii', '--languages', 'en,zh', '--temperature', '0.3', '--seq-len', '32', '--seed', '1', '--json', '--workers', '0');
    const events = c.stdout.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; stage?: string; tokens?: number; shards?: number });
    expect(events.filter((e) => e.event === 'progress').map((e) => e.stage)).toEqual(expect.arrayContaining(['clean', 'dedup', 'pack', 'done']));
    const done = events[events.length - 1]!;
    expect(done.event).toBe('done');
    const index = readShardIndex(out);
    expect(done.tokens).toBe(index.totalTokens);
    expect(index.seqLen).toBe(32);
    expect(index.totalTokens % 32).toBe(0);
    expect(zh.endsWith('.txt')).toBe(true);

    const s = cli();
    const html = join(dir, 'report.html');
    await s.run('data', 'stats', out, '--html', html);
    expect(s.stdout.text).toMatch(/exact_dedup\s+\d+\s+\d+/);
    expect(s.stdout.text).toMatch(/dropped 1 by exact_duplicate/);
    expect(s.stdout.text).toMatch(/languages: .*en .*zh|languages: .*zh .*en/);
    const page = readFileSync(html, 'utf8');
    expect(page).toMatch(/^<!DOCTYPE html>/);
    expect(page).toContain('exact_duplicate');
  });

  it('shows a progress bar with rate and ETA on a terminal', async () => {
    const dir = tempDir('weft-data-cli-');
    const { en } = corpus(dir);
    const c = cli(true);
    await c.run('data', 'prepare', '--input', en, '--text-field', 'body', '--out', join(dir, 'o'), '--seq-len', '16', '--workers', '0');
    expect(c.stderr.text).toMatch(/\rclean \[[#.]{20}\]\s+\d+% [\d,]+ docs, [\d.]+ MB, [\d.]+ MB\/s/);
    expect(c.stdout.text).toMatch(/done: [\d,]+ tokens \(uint16\) in \d+ shards? in .*\ntrain on it: weft train gpt --data /);
  });

  it('rejects bad flags with messages that say what is expected', async () => {
    const c = cli();
    await expect(c.run('data', 'prepare', '--input', 'x', '--out', 'y', '--dedup', 'fuzzy')).rejects.toThrow();
    expect(c.commanderErr.text).toMatch(/--dedup.*fuzzy.*Allowed choices are exact, minhash, none/);
    const d = cli();
    await expect(d.run('data', 'prepare', '--input', 'x', '--out', 'y', '--filters', 'gopher,nope')).rejects.toThrow();
    expect(d.commanderErr.text).toMatch(/unknown filter 'nope'; expected a comma-separated list of gopher, c4, cjk, pii, boilerplate/);
    const e = cli();
    await expect(e.run('data', 'prepare', '--input', 'x', '--out', 'y', '--languages', 'english')).rejects.toThrow();
    expect(e.commanderErr.text).toMatch(/'english' is not an ISO 639-1 code/);
    const f = cli();
    await expect(f.run('data', 'stats', tempDir('weft-data-cli-'))).rejects.toThrow(/no stats\.json; point at a directory written by `weft data prepare`/);
  });

  it.skipIf(!existsSync(GPT2))('packs with a BPE tokenizer; `weft train gpt --data <shards>` trains on them and records that tokenizer', async () => {
    const dir = tempDir('weft-data-cli-');
    const { en } = corpus(dir);
    const out = join(dir, 'gpt2-shards');
    const c = cli();
    await c.run('data', 'prepare', '--input', en, '--text-field', 'body', '--out', out, '--tokenizer', GPT2, '--seq-len', '64', '--workers', '0', '--json');
    const index = readShardIndex(out);
    expect(index).toMatchObject({ dtype: 'uint16', vocabSize: 50_257, eosId: 50_256, tokenizer: { eos: '<|endoftext|>', source: GPT2 } });
    const run = join(dir, 'run');
    const t = cli();
    await t.run('train', 'gpt', '--data', out, '--out', run, '--n-layer', '1', '--n-head', '2', '--n-embd', '8', '--block-size', '16', '--batch-size', '2', '--max-iters', '2', '--eval-interval', '2', '--eval-iters', '1', '--json');
    const tok = JSON.parse(readFileSync(join(run, 'tokenizer.json'), 'utf8')) as { model: { type: string; vocab: Record<string, number> } };
    expect(tok.model.type).toBe('BPE');
    expect(tok.model.vocab['<|endoftext|>']).toBe(50_256);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { vocab_size: number };
    expect(config.vocab_size).toBe(50_257);
  });
});
