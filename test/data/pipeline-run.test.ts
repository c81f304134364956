import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHAR_EOS, loadSavedTokenizer } from '../../src/data/pipeline/pack.js';
import { MANIFEST_FILE, prepareData, WORK_DIR, type PrepareOptions } from '../../src/data/pipeline/run.js';
import { ShardDataset } from '../../src/data/pipeline/shards.js';
import type { CleanDoc } from '../../src/data/pipeline/tasks.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHARED = join(ROOT, '..', 'shared', 'data');
const WIKI = join(SHARED, 'wikitext2', 'wiki.test.raw');
const SANGUO = join(SHARED, 'zh', 'sanguo_yanyi.txt');
const haveCorpora = existsSync(WIKI) && existsSync(SANGUO);
const GPT2 = join(SHARED, 'gpt2');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'weft-run-'));
}

/**
 * A small bilingual corpus with known problems: an exact duplicate (case and spacing changed), a
 * near-duplicate (a few words changed), a "lorem ipsum" page (C4 drops it) and a two-word page
 * (Gopher drops it). Returns the input paths and the planted documents' ids.
 */
function buildCorpus(dir: string, enDocs = 300): { inputs: string[]; original: string; exactDup: string; nearOrig: string; nearDup: string } {
  const paras = readFileSync(WIKI, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('=') && l.split(' ').length >= 60)
    .slice(0, enDocs)
    // Undo wikitext's tokenization (" @-@ ", " , ") so the paragraphs read as ordinary prose.
    .map((l) => l.replace(/ @(.)@ /g, '$1').replace(/ ([,.;:!?)'])/g, '$1').replace(/\( /g, '('));
  const records = paras.map((text, i) => ({ id: `en-${i}`, text }));
  records.push({ id: 'en-exact-dup', text: `  ${paras[3]!.toUpperCase().replace(/ /g, '   ')}  ` });
  const words = paras[5]!.split(' ');
  for (const p of [10, 30, 50]) words[p] = 'altered';
  records.push({ id: 'en-near-dup', text: words.join(' ') });
  records.push({ id: 'en-lorem', text: `${paras[7]!} Lorem ipsum dolor sit amet, consectetur adipiscing elit.` });
  records.push({ id: 'en-short', text: 'Too short.' });
  const en = join(dir, 'en.jsonl');
  writeFileSync(en, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const lines = readFileSync(SANGUO, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const zhRecords: { id: string; text: string }[] = [];
  for (let i = 0; i + 12 <= lines.length && zhRecords.length < 15; i += 12) zhRecords.push({ id: `zh-${zhRecords.length}`, text: lines.slice(i, i + 12).join('\n') });
  const zh = join(dir, 'zh.jsonl');
  writeFileSync(zh, zhRecords.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return { inputs: [en, zh], original: 'en-3', exactDup: 'en-exact-dup', nearOrig: 'en-5', nearDup: 'en-near-dup' };
}

function outputFiles(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.bin') || f === 'index.json' || f === 'tokenizer.json') m.set(f, readFileSync(join(dir, f)));
  return m;
}

function readChunks(work: string): CleanDoc[] {
  const docs: CleanDoc[] = [];
  for (const f of readdirSync(work).filter((n) => n.endsWith('.jsonl')).sort()) {
    const text = readFileSync(join(work, f), 'utf8');
    if (text.length > 0) for (const l of text.slice(0, -1).split('\n')) docs.push(JSON.parse(l) as CleanDoc);
  }
  return docs;
}

describe.skipIf(!haveCorpora)('data prepare pipeline', () => {
  it('cleans, deduplicates and packs: every kept document exactly once, joined by EOS, planted duplicates and junk removed', async () => {
    const dir = tempDir();
    const c = buildCorpus(dir);
    const out = join(dir, 'out');
    const r = await prepareData({ inputs: c.inputs, out, seqLen: 32, shardSequences: 200, temperature: null, workers: 0, keepWork: true, reader: { idField: 'id' } });

    const stage = (name: string): (typeof r.stats.stages)[number] => r.stats.stages.find((s) => s.name === name)!;
    expect(stage('read').docsIn).toBe(304 + 15);
    expect(stage('c4').drops.c4_lorem_ipsum?.examples[0]).toMatch(/^\[en-lorem\]/);
    expect(stage('gopher').drops.gopher_short_doc?.count).toBeGreaterThan(0);
    expect(stage('exact_dedup').drops.exact_duplicate?.count).toBe(1);
    expect(stage('exact_dedup').drops.exact_duplicate?.examples[0]).toMatch(/en-exact-dup.*duplicate of.*en-3/);
    expect(stage('minhash_dedup').drops.near_duplicate?.count).toBe(1);
    expect(stage('minhash_dedup').drops.near_duplicate?.examples[0]).toMatch(/en-near-dup.*near-duplicate of.*en-5/);
    expect(Object.keys(r.stats.languages!).sort()).toEqual(['en', 'zh']);

    // The packed stream is the kept documents in input order, each followed by EOS, cut at whole sequences.
    const cleaned = readChunks(join(out, WORK_DIR));
    expect(cleaned.map((d) => d.id)).not.toContain('en-short');
    expect(cleaned.map((d) => d.id)).not.toContain('en-lorem');
    expect(cleaned.map((d) => d.id)).toContain(c.exactDup);
    const kept = cleaned.filter((d) => d.id !== c.exactDup && d.id !== c.nearDup);
    const tok = loadSavedTokenizer(join(out, 'tokenizer.json'));
    const expected = kept.flatMap((d) => [...tok.encode(d.text), r.index.eosId]);
    const dropped = expected.length % 32;
    expect(r.index.droppedTailTokens).toBe(dropped);
    const shards = ShardDataset.open(out);
    expect([...shards.tokens()]).toEqual(expected.slice(0, expected.length - dropped));
    expect(r.index.shards.length).toBe(Math.ceil((expected.length - dropped) / (32 * 200)));
    expect(r.index.tokenizer.eos).toBe(CHAR_EOS);
    const texts = tok.decode([...shards.tokens()]).split(CHAR_EOS);
    expect(texts.filter((t) => t === kept.find((d) => d.id === c.original)!.text)).toHaveLength(1);
  });

  it('is deterministic: worker threads give the bytes of an in-process run; temperature upsamples the small language', async () => {
    const dir = tempDir();
    const c = buildCorpus(dir, 150);
    const opts: Omit<PrepareOptions, 'out' | 'workers'> = { inputs: c.inputs, reader: { idField: 'id' }, seqLen: 64, shardSequences: 50, temperature: 0.3, chunkDocs: 50, batchDocs: 8 };
    const a = await prepareData({ ...opts, out: join(dir, 'a'), workers: 0 });
    const b = await prepareData({ ...opts, out: join(dir, 'b'), workers: 2 });
    expect(outputFiles(join(dir, 'b'))).toEqual(outputFiles(join(dir, 'a')));
    expect(b.index.shards.length).toBeGreaterThan(1);
    const counts = (st: typeof a.stats): unknown => st.stages.map((x) => [x.name, x.docsIn, x.docsOut, x.bytesIn, x.bytesOut, x.drops]);
    expect(counts(b.stats)).toEqual(counts(a.stats));
    const mix = a.stats.extra!.mix as { languageFactor: Record<string, number>; passes: number };
    const langs = a.stats.languages!;
    const [small, large] = langs.en!.bytes < langs.zh!.bytes ? ['en', 'zh'] : ['zh', 'en'];
    expect(mix.languageFactor[small]).toBeGreaterThan(1);
    expect(mix.languageFactor[large]).toBeLessThan(1);
    expect(mix.passes).toBeGreaterThanOrEqual(2);
    const mixStage = a.stats.stages.find((s) => s.name === 'mix')!;
    expect(mixStage.docsOut).toBe(a.stats.output!.docs);
    // The copies' bytes: the small language's bytes times its factor, more or less (copies are whole).
    const expectedBytes = langs[small]!.bytes * mix.languageFactor[small]! + langs[large]!.bytes * mix.languageFactor[large]!;
    expect(mixStage.bytesOut / expectedBytes).toBeGreaterThan(0.8);
    expect(mixStage.bytesOut / expectedBytes).toBeLessThan(1.2);
    // The same settings again are a no-op on the finished directory; other settings are refused there.
    const again = await prepareData({ ...opts, out: join(dir, 'a'), workers: 0 });
    expect(again.resumed).toBe(false);
    await expect(prepareData({ ...opts, seed: 2, out: join(dir, 'a'), workers: 0 })).rejects.toThrow(/holds a data run with different inputs or settings/);
  });

  it('a run killed with SIGKILL (mid-clean, then after its first shard) resumes to the bytes of an uninterrupted run', async () => {
    const dir = tempDir();
    const c = buildCorpus(dir, 120);
    // Small shards so packing takes many atomic commits, small chunks so cleaning takes several.
    const opts: Omit<PrepareOptions, 'out'> = { inputs: c.inputs, seqLen: 16, shardSequences: 32, temperature: 0.3, chunkDocs: 40, batchDocs: 8, workers: 0 };
    const straight = join(dir, 'straight');
    await prepareData({ ...opts, out: straight });

    const out = join(dir, 'killed');
    const child = join(dir, 'child.mjs');
    writeFileSync(child, `import { prepareData } from ${JSON.stringify(join(ROOT, 'src', 'data', 'pipeline', 'run.ts'))};\nawait prepareData(JSON.parse(process.argv[2]));\n`);
    const killWhen = async (done: (m: { stage: string; clean: { chunks: unknown[] }; pack: { shards: unknown[] } }) => boolean): Promise<string> => {
      const proc = spawn(process.execPath, ['--import', join(ROOT, 'scripts', 'ts-register.mjs'), child, JSON.stringify({ ...opts, out })], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
      for (;;) {
        const path = join(out, MANIFEST_FILE);
        if (existsSync(path)) {
          let m: Parameters<typeof done>[0] | null = null;
          try {
            m = JSON.parse(readFileSync(path, 'utf8')) as Parameters<typeof done>[0];
          } catch {
            m = null; // read while being renamed over; try again
          }
          if (m !== null && done(m)) break;
          if (m?.stage === 'done') throw new Error('the child finished before it could be killed');
        }
        if (proc.exitCode !== null) throw new Error(`the child exited early (${proc.exitCode}): ${err}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      proc.kill('SIGKILL');
      await exited;
      return readFileSync(join(out, MANIFEST_FILE), 'utf8');
    };
    const afterClean = JSON.parse(await killWhen((m) => m.stage === 'clean' && m.clean.chunks.length >= 1)) as { stage: string };
    expect(afterClean.stage).toBe('clean');
    const afterShard = JSON.parse(await killWhen((m) => m.stage === 'pack' && m.pack.shards.length >= 1)) as { stage: string; pack: { shards: unknown[] } };
    expect(afterShard.stage).toBe('pack');

    const r = await prepareData({ ...opts, out });
    expect(r.resumed).toBe(true);
    expect(outputFiles(out)).toEqual(outputFiles(straight));
    const counts = (s: typeof r.stats): unknown => s.stages.map((x) => [x.name, x.docsIn, x.docsOut, x.bytesIn, x.bytesOut]);
    const straightStats = JSON.parse(readFileSync(join(straight, 'stats.json'), 'utf8')) as typeof r.stats;
    expect(counts(r.stats)).toEqual(counts(straightStats));
  });

  it.skipIf(!existsSync(GPT2))('with a tokenizer: tokenizing in the clean workers gives the bytes of tokenizing in the pack workers, also after a SIGKILL mid-pack', async () => {
    const dir = tempDir();
    const c = buildCorpus(dir, 60);
    // In-process (workers: 0) keeps it quick; worker threads against in-process is the test above.
    const opts: Omit<PrepareOptions, 'out'> = { inputs: c.inputs, tokenizer: GPT2, seqLen: 64, shardSequences: 32, temperature: 0.3, chunkDocs: 20, batchDocs: 8, workers: 0 };
    const viaWorkers = join(dir, 'workers');
    await prepareData({ ...opts, out: viaWorkers, pretokenize: false });
    const pre = join(dir, 'pre');
    const r = await prepareData({ ...opts, out: pre, keepWork: true });
    expect(outputFiles(pre)).toEqual(outputFiles(viaWorkers));
    expect(r.index.shards.length).toBeGreaterThan(2);
    // The pretokenized run kept its token files (one per chunk): the fast path was taken.
    const chunks = (JSON.parse(readFileSync(join(pre, MANIFEST_FILE), 'utf8')) as { clean: { chunks: unknown[] } }).clean.chunks.length;
    expect(readdirSync(join(pre, WORK_DIR)).filter((f) => f.endsWith('.tok')).length).toBe(chunks);

    // Killed after its first shard, resumed with pretokenize off: the token files written before the kill are used.
    const out = join(dir, 'killed');
    const child = join(dir, 'child.mjs');
    writeFileSync(child, `import { prepareData } from ${JSON.stringify(join(ROOT, 'src', 'data', 'pipeline', 'run.ts'))};\nawait prepareData(JSON.parse(process.argv[2]));\n`);
    const proc = spawn(process.execPath, ['--import', join(ROOT, 'scripts', 'ts-register.mjs'), child, JSON.stringify({ ...opts, out })], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
    for (;;) {
      type Manifest = { stage: string; pack: { shards: unknown[] } };
      let m: Manifest | null = null;
      try {
        m = JSON.parse(readFileSync(join(out, MANIFEST_FILE), 'utf8')) as Manifest;
      } catch {
        m = null; // not written yet, or read while being renamed over
      }
      if (m?.stage === 'pack' && m.pack.shards.length >= 1) break;
      if (m?.stage === 'done') throw new Error('the child finished before it could be killed');
      if (proc.exitCode !== null) throw new Error(`the child exited early (${proc.exitCode}): ${err}`);
      await new Promise((res) => setTimeout(res, 2));
    }
    proc.kill('SIGKILL');
    await exited;
    const resumed = await prepareData({ ...opts, out, pretokenize: false });
    expect(resumed.resumed).toBe(true);
    expect(outputFiles(out)).toEqual(outputFiles(viaWorkers));
  });

  it('the boilerplate filter counts lines across documents first, then strips the repeated ones', async () => {
    const dir = tempDir();
    const paras = readFileSync(WIKI, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => !l.startsWith('=') && l.split(' ').length >= 60)
      .slice(0, 30);
    const header = 'Home | News | Sport | Weather | Contact us';
    const input = join(dir, 'site.jsonl');
    writeFileSync(input, paras.map((t) => JSON.stringify({ text: `${header}\n${t}` })).join('\n') + '\n');
    const out = join(dir, 'out');
    const r = await prepareData({ inputs: [input], out, filters: ['boilerplate'], seqLen: 16, workers: 0, keepWork: true });
    const bp = r.stats.stages.find((s) => s.name === 'boilerplate')!;
    expect(bp.counters).toMatchObject({ lines_removed: 30, docs_changed: 30 });
    const docs = readChunks(join(out, WORK_DIR));
    expect(docs).toHaveLength(30);
    for (const d of docs) expect(d.text).not.toContain(header);
  });

  it('fails clearly on inputs that do not exist and on bad settings', async () => {
    const dir = tempDir();
    await expect(prepareData({ inputs: [join(dir, 'missing.txt')], out: join(dir, 'o') })).rejects.toThrow(/missing\.txt' does not exist/);
    writeFileSync(join(dir, 'a.txt'), 'hello');
    await expect(prepareData({ inputs: [join(dir, 'a.txt')], out: join(dir, 'o'), seqLen: 0 })).rejects.toThrow(/--seq-len must be a positive integer/);
    await expect(prepareData({ inputs: [join(dir, 'a.txt')], out: join(dir, 'o'), dedup: 'fuzzy' as 'exact' })).rejects.toThrow(/--dedup must be exact, minhash or none/);
  });
});
