/** `weft rag ingest | query | ask` end to end, through commander, against a fake OpenAI-compatible server. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerRag } from '../../src/cli/rag.js';
import { type FakeServer, startFakeOpenAI } from './helpers.js';

class Sink {
  text = '';
  isTTY = false;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function weft(args: string[]): Promise<{ out: string; err: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  const program = new Command().exitOverride();
  registerRag(program, { stdout, stderr });
  await program.parseAsync(['node', 'weft', ...args]);
  return { out: stdout.text, err: stderr.text };
}

const root = mkdtempSync(join(tmpdir(), 'weft-rag-cli-'));
const docs = join(root, 'docs');
let server: FakeServer;
beforeAll(async () => {
  mkdirSync(docs);
  writeFileSync(join(docs, 'paris.md'), '# Paris\nThe Eiffel Tower was completed in 1889.\n\n## Food\nCroissants are popular in Paris.\n');
  writeFileSync(join(docs, 'space.txt'), 'Apollo 11 landed on the Moon in 1969. Neil Armstrong walked first.');
  writeFileSync(join(docs, 'faq.jsonl'), '{"q":"What is BM25?","a":"A ranking function over words.","lang":"en"}\n');
  server = await startFakeOpenAI();
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

describe('weft rag', () => {
  it('ingest without an embedder builds a keyword-only store and says so; query --json has the exact shape', async () => {
    const store = join(root, 'kw');
    const ing = await weft(['rag', 'ingest', docs, '--store', store, '--chunk-size', '200', '--chunk-overlap', '20', '--text-field', 'q', '--text-field', 'a', '--metadata-field', 'lang']);
    expect(ing.err).toMatch(/keyword-only store \(BM25\)/);
    expect(ing.out).toMatch(/ingested 3 files .* 3 new/);
    const q = await weft(['rag', 'query', '--store', store, 'When was the Eiffel Tower completed?', '--k', '2', '--json']);
    const parsed = JSON.parse(q.out) as { results: Record<string, unknown>[] };
    expect(Object.keys(parsed)).toEqual(['results']);
    expect(parsed.results.length).toBeGreaterThan(0);
    expect(Object.keys(parsed.results[0]!).sort()).toEqual(['location', 'score', 'source', 'text']);
    expect(parsed.results[0]!.text).toContain('Eiffel');
    expect(parsed.results[0]!.source).toBe(join(docs, 'paris.md'));
    expect(parsed.results[0]!.location).toMatchObject({ headingPath: ['Paris'] });
    await expect(weft(['rag', 'query', '--store', store, 'x', '--mode', 'dense'])).rejects.toThrow(/keyword-only/);
    const filtered = await weft(['rag', 'query', '--store', store, 'ranking function words', '--mode', 'bm25', '--json', '--filter', '{"key":"lang","operator":"==","value":"en"}']);
    expect((JSON.parse(filtered.out) as { results: { source: string }[] }).results.map((r) => r.source)).toEqual([join(docs, 'faq.jsonl')]);
  });

  it('ingest with an embeddings URL, hybrid query, re-ingest embeds nothing, ask cites sources', async () => {
    const store = join(root, 'dense');
    const first = await weft(['rag', 'ingest', docs, '--store', store, '--embedder', server.url, '--chunk-size', '200', '--chunk-overlap', '20', '--text-field', 'q', '--text-field', 'a', '--json']);
    const done = JSON.parse(first.out.trim().split('\n').at(-1)!) as { event: string; embedded: number; totalChunks: number };
    expect(done.event).toBe('done');
    expect(done.embedded).toBe(done.totalChunks);
    const again = await weft(['rag', 'ingest', docs, '--store', store, '--json']);
    expect(JSON.parse(again.out.trim().split('\n').at(-1)!)).toMatchObject({ unchanged: 3, chunksWritten: 0, embedded: 0 });
    const q = await weft(['rag', 'query', '--store', store, 'Apollo Moon landing 1969', '--mode', 'hybrid', '--json', '--k', '1']);
    expect((JSON.parse(q.out) as { results: { source: string }[] }).results[0]!.source).toBe(join(docs, 'space.txt'));
    server.reply = () => 'Apollo 11 landed in 1969 [1].';
    const ask = await weft(['rag', 'ask', '--store', store, '--model', server.url, 'When did Apollo 11 land on the Moon?', '--min-score', '0.1', '--json']);
    const a = JSON.parse(ask.out) as { answer: string; refused: boolean; citations: { n: number; source: string; cited: boolean }[] };
    expect(a.refused).toBe(false);
    expect(a.answer).toBe('Apollo 11 landed in 1969 [1].');
    expect(a.citations[0]).toMatchObject({ n: 1, source: join(docs, 'space.txt'), cited: true });
    const streamed = await weft(['rag', 'ask', '--store', store, '--model', server.url, 'When did Apollo 11 land on the Moon?', '--min-score', '0.1']);
    expect(streamed.out).toContain('Apollo 11 landed in 1969 [1].');
    expect(streamed.out).toMatch(/Sources:\n\[1\]\* .*space\.txt/);
  });

  it('errors name the flag and the way out', async () => {
    await expect(weft(['rag', 'query', '--store', join(root, 'none'), 'x'])).rejects.toThrow(/no Weft RAG store .*weft rag ingest/);
    await expect(weft(['rag', 'ingest', docs, '--store', join(root, 'e'), '--embedder', join(root, 'nope')])).rejects.toThrow(/--embedder: .* neither a URL/);
    await expect(weft(['rag', 'ingest', docs, '--store', join(root, 'e2'), '--chunk-size', '100', '--chunk-overlap', '100'])).rejects.toThrow(/--chunk-overlap/);
  });

  const tiny = '../shared/data/models/gpt2-fake-tiny';
  it.skipIf(!existsSync(tiny) || !existsSync('../shared/data/gpt2/tokenizer.json'))('ask with a local Weft model directory (a tiny random GPT-2 from ../shared/data)', async () => {
    const store = join(root, 'dense');
    const r = await weft(['rag', 'ask', '--store', store, '--model', tiny, '--tokenizer', '../shared/data/gpt2/tokenizer.json', 'When did Apollo 11 land?', '--min-score', '0.1', '--max-tokens', '8', '--json']);
    const a = JSON.parse(r.out) as { answer: string; refused: boolean; citations: unknown[] };
    expect(a.refused).toBe(false);
    expect(typeof a.answer).toBe('string');
    expect(a.citations.length).toBeGreaterThan(0);
  });
});
