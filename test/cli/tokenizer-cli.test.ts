import { Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIds, registerTokenizer } from '../../src/cli/tokenizer.js';
import { CharTokenizer as LegacyCharTokenizer } from '../../src/data/char-tokenizer.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';
import { Capture } from '../train/helpers.js';

function cli(ttyErr = false): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture; commanderErr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture(ttyErr);
  const commanderErr = new Capture();
  const program = new Command().name('weft').exitOverride().configureOutput({ writeOut: (s) => void stdout.write(s), writeErr: (s) => void commanderErr.write(s) });
  registerTokenizer(program, { stdout, stderr });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr, commanderErr };
}

const SHAKESPEARE = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8');
const GPT2 = new URL('../../../shared/data/gpt2/', import.meta.url).pathname;
const BERT = new URL('../../../shared/data/tokenizers/bert-base-uncased/', import.meta.url).pathname;

function corpus(): { dir: string; a: string; b: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-tok-cli-'));
  const a = join(dir, 'a.txt');
  const b = join(dir, 'b.txt');
  writeFileSync(a, SHAKESPEARE.slice(0, 15_000));
  writeFileSync(b, '话说天下大势，分久必合，合久必分。\n'.repeat(20));
  return { dir, a, b };
}

describe('weft tokenizer train', () => {
  it.each(['bpe', 'wordpiece', 'unigram'])('--type %s writes <out>/tokenizer.json that encode and decode use', async (type) => {
    const { dir, a, b } = corpus();
    const out = join(dir, 'tok');
    const c = cli();
    await c.run('tokenizer', 'train', '--type', type, '--vocab-size', '400', '--input', a, '--input', b, '--out', out);
    const file = join(out, 'tokenizer.json');
    expect(existsSync(file)).toBe(true);
    expect(c.stdout.text).toMatch(new RegExp(`^trained a ${type} tokenizer with 400 tokens in \\d+\\.\\d s; wrote .*tokenizer\\.json\\n$`));
    // Not a terminal: one summary line per phase on stderr, no bar.
    expect(c.stderr.text).toMatch(/^count words: \d+ chars in \d+\.\d s\n/);
    expect(c.stderr.text).not.toContain('\r');
    const tok = Tokenizer.fromFile(file);
    expect(tok.vocabSize).toBe(400);

    const text = 'Before we proceed any further, hear me speak. 天下大势';
    const e = cli();
    await e.run('tokenizer', 'encode', '--tokenizer', out, '--text', text, '--json');
    const ids = (JSON.parse(e.stdout.text) as { ids: number[] }).ids;
    expect(e.stdout.text).toBe(`${JSON.stringify({ ids: tok.encode(text) })}\n`);
    const d = cli();
    await d.run('tokenizer', 'decode', '--tokenizer', file, '--ids', ids.join(','));
    expect(d.stdout.text).toBe(`${tok.decode(ids)}\n`);
  });

  it('--json prints progress objects then a summary, all JSON lines on stdout', async () => {
    const { dir, a } = corpus();
    const c = cli();
    await c.run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--input', a, '--out', join(dir, 'o'), '--json');
    const records = c.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const progress = records.slice(0, -1);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const r of progress) {
      expect(Object.keys(r)).toEqual(['phase', 'done', 'total', 'elapsed_s']);
      expect(['count words', 'merges']).toContain(r.phase);
    }
    const mergesDone = progress.filter((r) => r.phase === 'merges').at(-1)!;
    expect(mergesDone.done).toBe(mergesDone.total);
    expect(records.at(-1)).toMatchObject({ done: true, type: 'bpe', vocab_size: 300 });
    expect(c.stderr.text).toBe('');
  });

  it('draws a progress bar with rate and ETA on a terminal', async () => {
    const { dir, a } = corpus();
    const c = cli(true);
    await c.run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '400', '--input', a, '--out', join(dir, 'o'));
    expect(c.stderr.text).toContain('\r');
    expect(c.stderr.text).toMatch(/merges +█+░*\s+\d+\/143 [\d.]+k? merges\/s {2}ETA /);
    expect(c.stderr.text).toMatch(/merges +█{24} 143\/143/);
  });

  it('--special-tokens, --min-frequency and --limit-alphabet reach the trainer', async () => {
    const { dir, a } = corpus();
    const out = join(dir, 'o');
    await cli().run('tokenizer', 'train', '--type', 'wordpiece', '--vocab-size', '200', '--input', a, '--out', out, '--special-tokens', '[UNK],[X]', '--min-frequency', '1000', '--limit-alphabet', '20');
    const tok = Tokenizer.fromFile(join(out, 'tokenizer.json'));
    expect(tok.tokenToId('[UNK]')).toBe(0);
    expect(tok.tokenToId('[X]')).toBe(1);
    const singles = [...tok.getVocab().keys()].filter((t) => !t.startsWith('##') && !t.startsWith('['));
    expect(singles.filter((t) => t.length === 1).length).toBeLessThanOrEqual(20);
    expect(tok.vocabSize).toBeLessThan(200); // few pairs reach 1000 occurrences
  });

  it('rejects missing and malformed flags with messages that name them', async () => {
    const { dir, a } = corpus();
    const out = join(dir, 'o');
    await expect(cli().run('tokenizer', 'train', '--type', 'gpt', '--vocab-size', '10', '--input', a, '--out', out)).rejects.toThrow(/argument 'gpt' is invalid\. Allowed choices are bpe, wordpiece, unigram/);
    await expect(cli().run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', 'ten', '--input', a, '--out', out)).rejects.toThrow(/--vocab-size <n>' argument 'ten' is invalid\. expected a positive integer/);
    await expect(cli().run('tokenizer', 'train', '--vocab-size', '10', '--input', a, '--out', out)).rejects.toThrow(/--type is required: one of bpe, wordpiece, unigram/);
    await expect(cli().run('tokenizer', 'train', '--type', 'bpe', '--input', a, '--out', out)).rejects.toThrow(/--vocab-size is required/);
    await expect(cli().run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--out', out)).rejects.toThrow(/--input <file> is required/);
    await expect(cli().run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--input', join(dir, 'nope.txt'), '--out', out)).rejects.toThrow(/--input .*nope\.txt: no such file/);
    await expect(cli().run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--input', a)).rejects.toThrow(/--out <dir> is required/);
    await expect(cli().run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '300', '--input', a, '--out', a)).rejects.toThrow(/--out .*a\.txt: exists and is not a directory/);
    await expect(cli().run('tokenizer', 'train', '--type', 'unigram', '--vocab-size', '5', '--input', a, '--out', out)).rejects.toThrow(/distinct characters, more than vocabSize 5/);
    await expect(cli().run('tokenizer', 'train', '--type', 'unigram', '--vocab-size', '500', '--input', a, '--out', out, '--min-frequency', '3')).rejects.toThrow(/minFrequency and limitAlphabet apply to bpe and wordpiece only/);
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(false);
  });
});

describe('weft tokenizer encode / decode', () => {
  it.skipIf(!existsSync(join(GPT2, 'encoder.json')))('GPT-2 files: "Hello world" is [15496, 995]; decode gives the text back', async () => {
    const e = cli();
    await e.run('tokenizer', 'encode', '--tokenizer', GPT2, '--text', 'Hello world', '--json');
    expect(e.stdout.text).toBe('{"ids":[15496,995]}\n');
    const d = cli();
    await d.run('tokenizer', 'decode', '--tokenizer', GPT2, '--ids', '15496, 995');
    expect(d.stdout.text).toBe('Hello world\n');
    const h = cli();
    await h.run('tokenizer', 'encode', '--tokenizer', GPT2, '--text', 'Hello world');
    expect(h.stdout.text).toBe('2 tokens\nids: 15496,995\ntokens: ["Hello","Ġworld"]\n');
  });

  it.skipIf(!existsSync(join(BERT, 'vocab.txt')))('BERT vocab.txt: [CLS] hello world [SEP], or without special tokens', async () => {
    const e = cli();
    await e.run('tokenizer', 'encode', '--tokenizer', BERT, '--text', 'Hello World', '--json');
    expect(e.stdout.text).toBe('{"ids":[101,7592,2088,102]}\n');
    const n = cli();
    await n.run('tokenizer', 'encode', '--tokenizer', BERT, '--text', 'Hello World', '--json', '--no-add-special-tokens');
    expect(n.stdout.text).toBe('{"ids":[7592,2088]}\n');
    const d = cli();
    await d.run('tokenizer', 'decode', '--tokenizer', BERT, '--ids', '101,7592,2088,102');
    expect(d.stdout.text).toBe('hello world\n');
    const k = cli();
    await k.run('tokenizer', 'decode', '--tokenizer', BERT, '--ids', '101,7592,2088,102', '--no-skip-special-tokens', '--json');
    expect(k.stdout.text).toBe('{"text":"[CLS] hello world [SEP]"}\n');
  });

  it('--file encodes a file; a run directory\'s character tokenizer.json works too', async () => {
    const { dir, a } = corpus();
    const legacy = LegacyCharTokenizer.fromText(SHAKESPEARE.slice(0, 15_000));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(legacy.toJSON()));
    const e = cli();
    await e.run('tokenizer', 'encode', '--tokenizer', dir, '--file', a, '--json');
    expect(e.stdout.text).toBe(`${JSON.stringify({ ids: legacy.encode(SHAKESPEARE.slice(0, 15_000)) })}\n`);
    const d = cli();
    await d.run('tokenizer', 'decode', '--tokenizer', dir, '--ids', legacy.encode('ROMEO:').join(','));
    expect(d.stdout.text).toBe('ROMEO:\n');
  });

  it('rejects bad flags with messages that name them', async () => {
    const { dir, a } = corpus();
    const tokDir = join(dir, 't');
    await cli().run('tokenizer', 'train', '--type', 'bpe', '--vocab-size', '260', '--input', a, '--out', tokDir);
    await expect(cli().run('tokenizer', 'encode', '--tokenizer', tokDir)).rejects.toThrow(/give exactly one of --text "…" or --file <path>/);
    await expect(cli().run('tokenizer', 'encode', '--tokenizer', tokDir, '--text', 'x', '--file', a)).rejects.toThrow(/exactly one of/);
    await expect(cli().run('tokenizer', 'encode', '--text', 'x')).rejects.toThrow(/--tokenizer <dir or file> is required/);
    await expect(cli().run('tokenizer', 'encode', '--tokenizer', join(dir, 'none'), '--text', 'x')).rejects.toThrow(/--tokenizer .*none: no such file or directory/);
    await expect(cli().run('tokenizer', 'encode', '--tokenizer', tokDir, '--file', join(dir, 'none.txt'))).rejects.toThrow(/--file .*none\.txt: ENOENT/);
    await expect(cli().run('tokenizer', 'encode', '--tokenizer', dir, '--text', 'x')).rejects.toThrow(/--tokenizer .*: loadTokenizer: .* holds no tokenizer/);
    await expect(cli().run('tokenizer', 'decode', '--tokenizer', tokDir)).rejects.toThrow(/--ids is required/);
    await expect(cli().run('tokenizer', 'decode', '--tokenizer', tokDir, '--ids', '1,x,3')).rejects.toThrow(/--ids: entry 2 \("x"\) is not a token id/);
    await expect(cli().run('tokenizer', 'decode', '--tokenizer', tokDir, '--ids', '1,99999')).rejects.toThrow(/--ids: .*id 99999 is not in the vocabulary/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"model": ');
    await expect(cli().run('tokenizer', 'encode', '--tokenizer', bad, '--text', 'x')).rejects.toThrow(/bad\.json: tokenizer\.json: invalid JSON/);
  });

  it('parseIds accepts spaces and the empty list, nothing else', () => {
    expect(parseIds(' 1, 2 ,3')).toEqual([1, 2, 3]);
    expect(parseIds('')).toEqual([]);
    expect(() => parseIds('1,-2')).toThrow(/entry 2/);
    expect(() => parseIds('1,,2')).toThrow(/entry 2/);
    expect(() => parseIds('1.5')).toThrow(/entry 1/);
  });
});
