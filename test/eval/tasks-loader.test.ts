/** Task definitions: the bundled tasks load from eval-data/, bad definitions fail clearly, prompts are lm-eval's. */
import { describe, expect, it } from 'vitest';
import { parseCsv, wikitextArticles } from '../../src/eval/tasks/datasets.js';
import { bundledTaskNames, loadTasks, parseTaskSpec } from '../../src/eval/tasks/loader.js';
import { buildContext, FewshotSampler } from '../../src/eval/tasks/prompt.js';
import { render, fieldsOf } from '../../src/eval/tasks/template.js';

describe('bundled tasks', () => {
  it('all validate and load their documents from eval-data/', () => {
    expect(bundledTaskNames().sort()).toEqual(['gsm8k', 'humaneval', 'mmlu', 'sst2', 'tinyshakespeare', 'wikitext']);
    const tasks = loadTasks(bundledTaskNames());
    const count = (name: string): number => tasks.find((t) => t.spec.task === name)!.docs.length;
    expect(count('sst2')).toBe(872);
    expect(count('humaneval')).toBe(164);
    expect(count('gsm8k')).toBe(200);
    expect(count('mmlu_astronomy')).toBe(152);
    expect(tasks.filter((t) => t.group === 'mmlu').map((t) => t.spec.task)).toEqual([
      'mmlu_abstract_algebra',
      'mmlu_astronomy',
      'mmlu_college_computer_science',
      'mmlu_high_school_mathematics',
      'mmlu_machine_learning',
      'mmlu_philosophy',
      'mmlu_us_foreign_policy',
      'mmlu_world_religions',
    ]);
    const wiki = tasks.find((t) => t.spec.task === 'wikitext')!;
    expect(wiki.docs.length).toBe(22);
    expect(String(wiki.docs[0]!.text).startsWith(' = Robert Boulter = \n')).toBe(true);
    // nanoGPT's validation split: the last 10% of the characters.
    const shakes = tasks.find((t) => t.spec.task === 'tinyshakespeare')!;
    const total = shakes.docs.reduce((n, d) => n + String(d.text).length, 0);
    expect(total).toBeGreaterThan(90_000);
    expect(total).toBeLessThan(111_540);
    // MMLU's 5-shot examples come from its dev split, gold answers are indices.
    const astro = tasks.find((t) => t.spec.task === 'mmlu_astronomy')!;
    expect(astro.fewshotDocs.length).toBe(5);
    expect(typeof astro.docs[0]!.answer).toBe('number');
  });

  it('rejects bad definitions with the field and the reason', () => {
    const base = { task: 'x', dataset: { path: 'a.jsonl', format: 'jsonl' }, metrics: [{ metric: 'acc' }] };
    expect(() => parseTaskSpec({ ...base, outputType: 'loglikelihood' }, 'x.json')).toThrow(/x\.json is invalid: .*docToChoice/);
    expect(() => parseTaskSpec({ ...base, outputType: 'loglikelihood', docToChoice: ['a', 'b'], metrics: [{ metric: 'exact_match' }] }, 'y')).toThrow(/exact_match does not apply to loglikelihood/);
    expect(() =>
      parseTaskSpec({ ...base, outputType: 'generate_until', generation: { samples: 1 }, execution: { type: 'humaneval' }, metrics: [{ metric: 'pass@k', k: [1, 10] }] }, 'z'),
    ).toThrow(/pass@10 needs generation.samples ≥ 10/);
    expect(() => parseTaskSpec({ ...base, outputType: 'loglikelihood', docToChoice: ['a', 'b'], dataset: { path: 'a', format: 'xml' } }, 'w')).toThrow(/dataset\.format/);
    expect(() => loadTasks(['nope'])).toThrow(/unknown task "nope" \(bundled: .*sst2/);
  });
});

describe('templates', () => {
  it('fills fields, indices and filters, and names a missing field', () => {
    const doc = { q: '  What?  ', choices: ['x', 'y'], a: { b: 'deep' }, answer: 'step\n#### 42' };
    expect(render('Q: {{q | trim}} [{{choices[1]}}] {{a.b | upper}}', doc)).toBe('Q: What? [y] DEEP');
    expect(render("{{answer | after_last:'####' | trim}}", doc)).toBe('42');
    expect(() => render('{{missing}}', doc)).toThrow(/no "missing" \(fields: q, choices, a, answer\)/);
    expect(() => render('{{q | shout}}', doc)).toThrow(/unknown filter "shout"/);
    expect(fieldsOf('{{q}} and {{a.b | trim}}')).toEqual(['q', 'a']);
  });
});

describe('few-shot prompts', () => {
  const spec = parseTaskSpec(
    {
      task: 't',
      dataset: { path: 'x', format: 'jsonl' },
      outputType: 'loglikelihood',
      promptPrefix: 'About things.\n\n',
      docToText: 'Q: {{q}}\nA:',
      docToTarget: '{{gold}}',
      docToChoice: ['no', 'yes'],
      fewshot: { num: 2, sampler: 'first_n' },
      metrics: [{ metric: 'acc' }],
    },
    't',
  );
  const docs = [
    { q: 'one', gold: 1 },
    { q: 'two', gold: 0 },
    { q: 'three', gold: 1 },
  ];

  it('builds description + labelled examples + the question (lm-eval fewshot_context)', () => {
    const sampler = new FewshotSampler(spec, docs, true);
    // first_n takes k+1 and drops the document itself.
    expect(buildContext(spec, docs[0]!, sampler.examplesFor(docs[0]!))).toBe('About things.\n\nQ: two\nA: no\n\nQ: three\nA: yes\n\nQ: one\nA:');
    expect(buildContext(spec, docs[2]!, sampler.examplesFor(docs[2]!))).toBe('About things.\n\nQ: one\nA: yes\n\nQ: two\nA: no\n\nQ: three\nA:');
  });

  it('samples random examples reproducibly by seed, never the document itself', () => {
    const rspec = { ...spec, fewshot: { num: 2, seed: 5, sampler: 'random' as const } };
    const pool = Array.from({ length: 20 }, (_, i) => ({ q: `q${i}`, gold: i % 2 }));
    const a = new FewshotSampler(rspec, pool, true);
    const b = new FewshotSampler(rspec, pool, true);
    for (const d of pool) {
      const ea = a.examplesFor(d);
      expect(ea).toEqual(b.examplesFor(d));
      expect(ea).toHaveLength(2);
      expect(ea).not.toContain(d);
    }
    const c = new FewshotSampler({ ...rspec, fewshot: { ...rspec.fewshot, seed: 6 } }, pool, true);
    expect(pool.map((d) => c.examplesFor(d).map((x) => x.q).join())).not.toEqual(pool.map((d) => new FewshotSampler(rspec, pool, true).examplesFor(d).map((x) => x.q).join()));
  });
});

describe('dataset readers', () => {
  it('parses RFC 4180 CSV (quotes, doubled quotes, commas and newlines inside fields)', () => {
    expect(parseCsv('a,b\n"x, y","say ""hi""\nthere"\r\n1,\n')).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"\nthere'],
      ['1', ''],
    ]);
    expect(() => parseCsv('a\n"open')).toThrow(/unterminated/);
  });

  it('cuts WikiText into articles at top-level headings only', () => {
    const text = ' = A = \r\n text a \r\n = = Sub = = \r\n more \r\n = B = \r\n text b \r\n';
    expect(wikitextArticles(text)).toEqual([' = A = \n text a \n = = Sub = = \n more \n', ' = B = \n text b \n']);
  });
});
