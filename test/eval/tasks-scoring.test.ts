/**
 * Scoring parity with lm-evaluation-harness's Python: the GSM8K regex filters (re.findall semantics,
 * group_select, tuples), HF evaluate's exact_match with lm-eval's options, and the WikiText
 * detokenizer — the Python functions are transcribed below and run by python3 on the same inputs.
 * Plus the bootstrap standard error against its closed form for a mean.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadTasks } from '../../src/eval/tasks/loader.js';
import { aggregateItems, bootstrapStderr, exactMatchLmEval, findAll, pyRegex, regexExtract } from '../../src/eval/tasks/scoring.js';
import { wikitextDetokenizer } from '../../src/eval/tasks/transforms.js';

const hasPython = spawnSync('python3', ['-c', 'import re'], { stdio: 'ignore' }).status === 0;

const PY = String.raw`
import json, re, string, sys
def regex_filter(resp, pattern, group_select, fallback="[invalid]"):
    regex = re.compile(pattern)
    match = regex.findall(resp)
    if match:
        try:
            match = match[group_select]
        except IndexError:
            return fallback
        if isinstance(match, tuple):
            match = [m for m in match if m]
            if match:
                match = match[0]
            else:
                match = fallback
        match = match.strip()
    else:
        match = fallback
    return match
def exact_match(pred, ref, regexes_to_ignore, ignore_case, ignore_punctuation):
    for s in regexes_to_ignore:
        pred = re.sub(s, "", pred)
        ref = re.sub(s, "", ref)
    if ignore_case:
        pred = pred.lower(); ref = ref.lower()
    if ignore_punctuation:
        repl_table = string.punctuation.maketrans("", "", string.punctuation)
        pred = pred.translate(repl_table); ref = ref.translate(repl_table)
    return 1 if pred == ref else 0
def wikitext_detokenizer(string):
    string = string.replace("s '", "s'")
    string = re.sub(r"/' [0-9]/", r"/'[0-9]/", string)
    string = string.replace(" @-@ ", "-")
    string = string.replace(" @,@ ", ",")
    string = string.replace(" @.@ ", ".")
    string = string.replace(" : ", ": ")
    string = string.replace(" ; ", "; ")
    string = string.replace(" . ", ". ")
    string = string.replace(" ! ", "! ")
    string = string.replace(" ? ", "? ")
    string = string.replace(" , ", ", ")
    string = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", string)
    string = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", string)
    string = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", string)
    string = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', string)
    string = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", string)
    string = string.replace("= = = =", "====")
    string = string.replace("= = =", "===")
    string = string.replace("= =", "==")
    string = string.replace(" " + chr(176) + " ", chr(176))
    string = string.replace(" \n", "\n")
    string = string.replace("\n ", "\n")
    string = string.replace(" N ", " 1 ")
    string = string.replace(" 's", "'s")
    return string
inp = json.load(sys.stdin)
STRICT = "#### (\\-?[0-9\\.\\,]+)"
FLEX = "(-?[$0-9.,]{2,})|(-?[0-9]+)"
IGN = [",", "\\$", "(?s).*#### ", "\\.$"]
out = {
  "strict": [regex_filter(r, STRICT, 0) for r in inp["responses"]],
  "flex": [regex_filter(r, FLEX, -1) for r in inp["responses"]],
  "em": [[exact_match(regex_filter(r, STRICT, 0), t, IGN, True, False), exact_match(regex_filter(r, FLEX, -1), t, IGN, True, False), exact_match(r, t, [], False, True)] for r, t in zip(inp["responses"], inp["targets"])],
  "wiki": [wikitext_detokenizer(d) for d in inp["wiki"]],
}
json.dump(out, sys.stdout)
`;

describe.skipIf(!hasPython)('lm-eval scoring parity (python3 runs the reference functions)', () => {
  const tasks = loadTasks(['gsm8k', 'wikitext']);
  const gsm = tasks.find((t) => t.spec.task === 'gsm8k')!;
  const wiki = tasks.find((t) => t.spec.task === 'wikitext')!;
  const golds = gsm.docs.slice(0, 60).map((d) => String(d.answer));
  // Responses: the gold chains of thought (strict match works), variants without "####", with $ and
  // commas, trailing periods, negative numbers, several numbers, and none.
  const responses = [
    ...golds,
    ...golds.slice(0, 20).map((g) => g.replace('#### ', 'The answer is $').concat('.')),
    ...golds.slice(20, 40).map((g) => g.replace(/#### (\d+)/, '#### $1,000')),
    'no numbers here',
    '#### -12.5\nQuestion: next',
    'It costs $1,234.50 in total, so 7 left.',
    'x = 3 and y = 44',
    '#### ',
    '',
  ];
  const targets = responses.map((_, i) => golds[i % golds.length]!);
  const strict = gsm.spec.filters.find((f) => f.name === 'strict-match')!.steps[0]!;
  const flex = gsm.spec.filters.find((f) => f.name === 'flexible-extract')!.steps[0]!;
  const em = gsm.spec.metrics[0]!;
  const py = spawnSync('python3', ['-c', PY], { input: JSON.stringify({ responses, targets, wiki: wiki.docs.map((d) => d.text) }), maxBuffer: 64 << 20 });
  const ref = JSON.parse(py.stdout.toString('utf8')) as { strict: string[]; flex: string[]; em: number[][]; wiki: string[] };

  it('extracts answers like RegexFilter (strict #### and flexible last number)', () => {
    if (strict.type !== 'regex' || flex.type !== 'regex') throw new Error('gsm8k filters changed');
    expect(responses.map((r) => regexExtract(r, strict.pattern, strict.groupSelect, strict.fallback))).toEqual(ref.strict);
    expect(responses.map((r) => regexExtract(r, flex.pattern, flex.groupSelect, flex.fallback))).toEqual(ref.flex);
    expect(ref.strict.slice(0, 60).every((s) => s !== '[invalid]')).toBe(true);
  });

  it('scores exact_match like HF evaluate with lm-eval gsm8k options', () => {
    const ours = responses.map((r, i) => [
      exactMatchLmEval(regexExtract(r, (strict as { pattern: string }).pattern, 0, '[invalid]'), targets[i]!, em),
      exactMatchLmEval(regexExtract(r, (flex as { pattern: string }).pattern, -1, '[invalid]'), targets[i]!, em),
      exactMatchLmEval(r, targets[i]!, { ignoreCase: false, ignorePunctuation: true, regexesToIgnore: [] }),
    ]);
    expect(ours).toEqual(ref.em);
    // Gold answers match themselves under strict extraction.
    expect(ours.slice(0, 60).every((s) => s[0] === 1)).toBe(true);
  });

  it('detokenizes every bundled WikiText article like preprocess_wikitext.py', () => {
    const ours = wiki.docs.map((d) => wikitextDetokenizer(String(d.text)));
    expect(ours.length).toBe(ref.wiki.length);
    ours.forEach((s, i) => expect(s, `article ${i}`).toBe(ref.wiki[i]));
    expect(ours[0]).not.toBe(wiki.docs[0]!.text); // it did change something
  });
});

describe('regex helpers', () => {
  it('translates Python inline flags and findall group semantics', () => {
    expect(pyRegex('(?s).*#### ').flags).toContain('s');
    expect('a\nb #### 5'.replace(pyRegex('(?s).*#### ', 'g'), '')).toBe('5');
    expect(findAll(/(\d)(x)?/, '1x 2')).toEqual([['1', 'x'], ['2', '']]);
    expect(findAll(/\d+/, 'a 12 b 3')).toEqual(['12', '3']);
    expect(() => pyRegex('(?L)x')).toThrow(/no JavaScript equivalent/);
  });
});

describe('bootstrap standard error', () => {
  it('matches sqrt(p(1−p)/n) for a mean of 0/1 scores', () => {
    const n = 400;
    const num = Array.from({ length: n }, (_, i) => (i % 10 < 3 ? 1 : 0));
    const items = { aggregation: 'mean' as const, num, den: num.map(() => 1) };
    expect(aggregateItems(items)).toBeCloseTo(0.3, 12);
    const se = bootstrapStderr(items, 2000, 7);
    expect(se / Math.sqrt((0.3 * 0.7) / n)).toBeGreaterThan(0.9);
    expect(se / Math.sqrt((0.3 * 0.7) / n)).toBeLessThan(1.1);
    expect(bootstrapStderr({ ...items, num: [1], den: [1] })).toBeNaN();
  });

  it('aggregates perplexities as lm-eval weighted_perplexity and bits_per_byte', () => {
    const items = { aggregation: 'word_perplexity' as const, num: [-10, -20], den: [5, 10] };
    expect(aggregateItems(items)).toBeCloseTo(Math.exp(2), 12);
    expect(aggregateItems({ ...items, aggregation: 'bits_per_byte' })).toBeCloseTo(2 / Math.LN2, 12);
  });
});
