/**
 * The OpenAI-compatible back end against a fake server on 127.0.0.1 whose "model" is known: every
 * character is a token, with a fixed log-prob (greedy: 'e'). Checks what is sent (echo, logprobs,
 * stop, n, auth), what is summed (continuation tokens only), retries with backoff on 429/5xx and
 * timeouts, no retry on 4xx, and a whole `eval run --base-url` against it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runEval } from '../../src/cli/eval.js';
import { EndpointError, OpenAIBackend } from '../../src/eval/backends/openai.js';
import { loadTasks } from '../../src/eval/tasks/loader.js';
import { Capture } from '../train/helpers.js';
import { tempDir } from './helpers.js';

const lp = (c: string): number => (c === 'e' ? -0.05 : -(((c.codePointAt(0)! % 7) + 1) / 10));

type Plan = 'ok' | 503 | 429 | 400 | 'hang';
let plan: Plan[] = [];
const requests: { path: string; body: Record<string, unknown>; auth: string | undefined }[] = [];
let server: Server;
let baseUrl = '';

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
  const body = JSON.parse(raw) as Record<string, unknown>;
  requests.push({ path: req.url ?? '', body, auth: req.headers.authorization });
  const step = plan.shift() ?? 'ok';
  if (step === 'hang') return; // never answers: the client's timeout must fire
  if (step !== 'ok') return reply(res, step, { error: { message: `scripted ${step}` } });
  const n = Number(body.n ?? 1);
  if (req.url === '/v1/completions' && body.echo === true) {
    const chars = [...String(body.prompt)];
    const tokens = [...chars, 'e'];
    return reply(res, 200, {
      choices: [
        {
          index: 0,
          text: `${String(body.prompt)}e`,
          logprobs: {
            tokens,
            token_logprobs: tokens.map((c, i) => (i === 0 ? null : lp(c))),
            top_logprobs: tokens.map((_, i) => (i === 0 ? null : { e: -0.05 })),
            text_offset: tokens.map((_, i) => i),
          },
        },
      ],
      usage: { prompt_tokens: chars.length, completion_tokens: 1 },
    });
  }
  const text = 'The answer is 42.\nQuestion: more';
  const choices = Array.from({ length: n }, (_, i) => (req.url === '/v1/chat/completions' ? { index: n - 1 - i, message: { role: 'assistant', content: `${text} #${n - 1 - i}` } } : { index: i, text: `${text} #${i}` }));
  return reply(res, 200, { choices, usage: { prompt_tokens: 10, completion_tokens: 7 * n } });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => handle(req, res, raw));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  plan = [];
  requests.length = 0;
});

const backend = (over: Partial<ConstructorParameters<typeof OpenAIBackend>[0]> = {}): OpenAIBackend =>
  new OpenAIBackend({ baseUrl, model: 'fake-1', apiKey: 'sk-test', retryBaseMs: 5, timeoutMs: 500, ...over });

const sumLp = (s: string): number => [...s].reduce((t, c) => t + lp(c), 0);

describe('OpenAIBackend', () => {
  it('scores only the continuation from echoed logprobs, and tells greedy from not', async () => {
    const b = backend();
    const [r1, r2] = await b.loglikelihood([
      { context: 'Question: hi\nAnswer:', continuation: ' yes' },
      { context: 'abc', continuation: 'eee' },
    ]);
    expect(r1!.logprob).toBeCloseTo(sumLp(' yes'), 12);
    expect(r1!.isGreedy).toBe(false);
    expect(r2!.logprob).toBeCloseTo(sumLp('eee'), 12);
    expect(r2!.isGreedy).toBe(true);
    const sent = requests[0]!;
    expect(sent.path).toBe('/v1/completions');
    expect(sent.auth).toBe('Bearer sk-test');
    expect(sent.body).toMatchObject({ model: 'fake-1', echo: true, logprobs: 1, temperature: 0 });
    // Trailing whitespace of the context is scored with the continuation (lm-eval's _encode_pair).
    const [moved] = await b.loglikelihood([{ context: 'Answer: ', continuation: 'yes' }]);
    expect(moved!.logprob).toBeCloseTo(sumLp(' yes'), 12);
  });

  it('rolling loglikelihood sums every scored token of the text', async () => {
    const [r] = await backend().loglikelihoodRolling(['hello there'], 1);
    expect(r!.tokens).toBe(10); // the first token has no logprob
    expect(r!.logprob).toBeCloseTo(sumLp('ello there'), 12);
  });

  it('generates through completions or chat, n samples in order, cut at stop strings', async () => {
    const req = { context: 'Q', until: ['Question:', 'zz1', 'zz2', 'zz3', '\n'], maxTokens: 50, temperature: 0.7, topP: 0.9, samples: 3, seed: 9 };
    const [out] = await backend().generate([req]);
    // The API takes four stop strings; the fifth ('\n') is applied here.
    expect(out).toEqual(['The answer is 42.', 'The answer is 42.', 'The answer is 42.']);
    expect(requests[0]!.body).toMatchObject({ prompt: 'Q', max_tokens: 50, n: 3, stop: ['Question:', 'zz1', 'zz2', 'zz3'], top_p: 0.9, seed: 9 });
    const [chat] = await backend({ generationApi: 'chat' }).generate([{ ...req, until: [] }]);
    expect(chat).toEqual([0, 1, 2].map((i) => `The answer is 42.\nQuestion: more #${i}`));
    expect(requests[1]!.path).toBe('/v1/chat/completions');
    expect(requests[1]!.body.messages).toEqual([{ role: 'user', content: 'Q' }]);
  });

  it('retries 429, 5xx and timeouts with backoff, then succeeds', async () => {
    plan = [503, 429, 'hang', 'ok'];
    const t0 = performance.now();
    const [r] = await backend({ timeoutMs: 200 }).loglikelihood([{ context: 'ab', continuation: 'c' }]);
    expect(r!.logprob).toBeCloseTo(lp('c'), 12);
    expect(requests.length).toBe(4);
    expect(performance.now() - t0).toBeGreaterThan(200);
  });

  it('gives up after maxRetries with the last error, and never retries a 400', async () => {
    plan = [503, 503, 503];
    await expect(backend({ maxRetries: 2 }).loglikelihood([{ context: 'a', continuation: 'b' }])).rejects.toThrow(/failed after 3 attempts: HTTP 503: .*scripted 503/);
    requests.length = 0;
    plan = [400];
    const err = await backend().loglikelihood([{ context: 'a', continuation: 'b' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndpointError);
    expect(String(err)).toMatch(/HTTP 400: .*scripted 400/);
    expect(requests.length).toBe(1);
  });

  it('rejects a base URL that is not http(s)', () => {
    expect(() => new OpenAIBackend({ baseUrl: 'ftp://x', model: 'm' })).toThrow(/must be http\(s\)/);
    expect(() => new OpenAIBackend({ baseUrl: 'not a url', model: 'm' })).toThrow(/is not a URL/);
  });
});

describe('weft eval run --base-url', () => {
  it('evaluates SST-2 through the endpoint and writes results.json', async () => {
    const out = tempDir('weft-eval-api-');
    try {
      const io = { stdout: new Capture(), stderr: new Capture() };
      await runEval({ baseUrl, apiModel: 'fake-1', tasks: 'sst2', limit: 6, out, bootstrapIters: 50 }, io);
      const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { results: { metric: string; value: number; n: number }[]; model: Record<string, unknown> };
      const [task] = loadTasks(['sst2']);
      const pick = sumLp(' positive') > sumLp(' negative') ? 1 : 0;
      const expected = task!.docs.slice(0, 6).filter((d) => d.label === pick).length / 6;
      expect(results.results.find((m) => m.metric === 'acc')).toMatchObject({ value: expected, n: 6 });
      expect(results.model).toMatchObject({ kind: 'openai', model: 'fake-1', base_url: baseUrl });
      expect(io.stdout.text).toContain('| sst2 | acc ↑ |');
      expect(requests.length).toBe(12);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
