import { describe, expect, it } from 'vitest';
import { buildFilterStages } from '../../src/data/pipeline/filters/index.js';
import { normalizeTransform } from '../../src/data/pipeline/normalize.js';
import { renderStatsHtml } from '../../src/data/pipeline/report.js';
import {
  emptyStageStats,
  filterStage,
  LanguageCounter,
  mergeStageStats,
  StageChain,
  StageStatsCollector,
  transformStage,
  utf8Bytes,
  type PipelineStats,
} from '../../src/data/pipeline/stats.js';
import type { Doc, DocFilter } from '../../src/data/pipeline/types.js';

const SENTENCES = [
  'The committee met on Monday and agreed that the new library will open to the public in the spring.',
  'Its reading rooms have been closed since the flood, and most of the books were moved to a warehouse.',
  'Volunteers have spent the winter cleaning and sorting them, and only a few hundred could not be saved.',
  'The architect said that the building will keep its old facade but gain a modern wing with a cafe.',
  'Children from the local school have painted a mural for the entrance, which shows the river in summer.',
];
const good = (i: number): Doc => ({ id: `good${i}`, source: 'web', text: SENTENCES.map((s, k) => (k === i % 5 ? `${s} (${i})` : s)).join(' ') });

describe('stage statistics', () => {
  it('counts documents and UTF-8 bytes in and out, drops per rule with capped examples', () => {
    const longEnough: DocFilter = { name: 'min_len', check: (d) => (d.text.length < 10 ? 'too_short' : null) };
    const chain = new StageChain([transformStage(normalizeTransform()), filterStage(longEnough)], { maxExamples: 2, exampleChars: 8 });
    const docs: Doc[] = [
      { id: 'a', source: 's', text: '  café  au lait, très bien  ' },
      { id: 'b', source: 's', text: 'tiny' },
      { id: 'c', source: 's', text: 'ok' },
      { id: 'd', source: 's', text: '字' },
    ];
    const kept = docs.map((d) => chain.process(d)).filter((d): d is Doc => d !== null);
    expect(kept.map((d) => d.text)).toEqual(['café au lait, très bien']);
    const [norm, len] = chain.stats();
    expect(norm).toMatchObject({ name: 'normalize', docsIn: 4, docsOut: 4, counters: { changed: 1 } });
    expect(norm?.bytesIn).toBe(docs.reduce((s, d) => s + utf8Bytes(d.text), 0));
    expect(norm?.bytesOut).toBe(utf8Bytes('café au lait, très bien') + 4 + 2 + 3);
    expect(len).toMatchObject({ docsIn: 4, docsOut: 1, bytesOut: utf8Bytes('café au lait, très bien') });
    expect(len?.drops).toEqual({ too_short: { count: 3, examples: ['[b] tiny', '[c] ok'] } });
  });

  it('merging per-worker stats equals one pass over all documents', () => {
    const stages = () => buildFilterStages(['pii', 'gopher']);
    const docs: Doc[] = [
      good(1),
      { id: 'short', source: 'web', text: 'Too short to keep, contact me at someone@example.com today.' },
      good(2),
      { id: 'list', source: 'web', text: Array(60).fill('• cheap flights london paris best deals').join('\n') },
      good(3),
    ];
    const whole = new StageChain(stages());
    for (const d of docs) whole.process(d);
    const w1 = new StageChain(stages());
    const w2 = new StageChain(stages());
    docs.forEach((d, i) => (i < 2 ? w1 : w2).process(d));
    const merged = w1.stats().map((s, i) => mergeStageStats(s, w2.stats()[i] as never));
    expect(merged).toEqual(whole.stats());
    expect(merged[0]?.counters).toEqual({ email: 1 });
    // The dropped document's example shows masked text: PII runs first.
    expect(merged[1]?.drops.gopher_short_doc?.examples[0]).toContain('<EMAIL>');
    expect(() => mergeStageStats(emptyStageStats('a'), emptyStageStats('b'))).toThrow(/cannot merge stage 'b' into 'a'/);
  });

  it('stage names must be unique (they key the statistics)', () => {
    const f: DocFilter = { name: 'x', check: () => null };
    expect(() => new StageChain([filterStage(f), filterStage(f)])).toThrow(/two stages are named 'x'/);
  });

  it('language counter sums docs, bytes and tokens', () => {
    const c = new LanguageCounter();
    c.add({ id: '1', source: 's', text: 'hello', lang: 'en' });
    c.add({ id: '2', source: 's', text: '你好', lang: 'zh' }, undefined, 2);
    c.add({ id: '3', source: 's', text: 'x' });
    c.merge({ en: { docs: 2, bytes: 10 } });
    expect(c.counts).toEqual({ en: { docs: 3, bytes: 15 }, zh: { docs: 1, bytes: 6, tokens: 2 }, und: { docs: 1, bytes: 1 } });
  });
});

describe('HTML report', () => {
  const collector = new StageStatsCollector('gopher');
  collector.in(good(1));
  collector.out(good(1));
  collector.in({ id: 'evil', source: 's', text: '<script>alert(1)</script> & "quotes"' });
  collector.drop('gopher_short_doc', { id: 'evil', source: 's', text: '<script>alert(1)</script> & "quotes"' });
  const stats: PipelineStats = {
    stages: [{ name: 'read', docsIn: 2, docsOut: 2, bytesIn: 1000, bytesOut: 1000, drops: {} }, collector.stats],
    languages: { en: { docs: 1, bytes: 800 }, zh: { docs: 1, bytes: 200 } },
    duplicates: { method: 'minhash', clusters: 1, docsRemoved: 1, largestCluster: 2, examples: [{ kept: 'a', removed: ['b'] }] },
    output: { docs: 1, tokens: 250 },
  };
  const html = renderStatsHtml(stats);

  it('is self-contained: no scripts, no external resources', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).toContain('<svg');
  });

  it('escapes document text in examples', () => {
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;');
  });

  it('shows stages, drops, languages and duplicates', () => {
    for (const s of ['Stages', 'gopher_short_doc', 'Languages', 'minhash', '80.0%', '50.0%', '250']) expect(html).toContain(s);
    // One bar per stage, per drop rule and per language.
    expect(html.match(/<rect /g)?.length).toBe(2 * 2 + 1 + 2);
  });
});
