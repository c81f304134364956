/**
 * Fuzzes the request validation with random and malformed bodies (fast-check): whatever arrives,
 * the server answers with a status below 500, errors are in OpenAI's shape, and it keeps serving.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessHost } from '../../src/serve/host.js';
import { WeftServer } from '../../src/serve/server.js';
import { fakeBundle } from './fake-engine.js';

const ROUTES = ['/v1/completions', '/v1/chat/completions', '/v1/embeddings', '/tokenize', '/detokenize', '/v1/chat/render'] as const;

const VALID: Record<(typeof ROUTES)[number], Record<string, unknown>> = {
  '/v1/completions': { model: 'fake-model', prompt: 'hello', max_tokens: 4, temperature: 0, n: 1, stream: false, logprobs: 1, stop: ['x'], seed: 1 },
  '/v1/chat/completions': {
    model: 'fake-model',
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    max_tokens: 4,
    logprobs: true,
    top_logprobs: 2,
    response_format: { type: 'json_object' },
    stream_options: { include_usage: true },
  },
  '/v1/embeddings': { model: 'fake-model', input: ['a', 'b'], encoding_format: 'float' },
  '/tokenize': { prompt: 'hello' },
  '/detokenize': { tokens: [1, 2, 3] },
  '/v1/chat/render': { messages: [{ role: 'user', content: 'hi' }] },
};

/** A JSON-ish value of any shape, including the awkward ones (huge numbers, NaN stand-ins, deep nesting). */
const anyValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(null, -1, 0, 1e308, -1e308, 2 ** 53, 0.5, '', ' ', '\u0000', [], {}, [[]], [-1], [1.5], ['a', 1], { type: 'nope' }),
  fc.string(),
  fc.array(fc.integer({ min: -5, max: 100_000 }), { maxLength: 5 }),
);

function checkErrorShape(status: number, body: string): void {
  expect(status, body).toBeLessThan(500);
  if (status >= 400) {
    const e = (JSON.parse(body) as { error: { message: unknown; type: unknown; param: unknown; code: unknown } }).error;
    expect(typeof e.message).toBe('string');
    expect(typeof e.type).toBe('string');
    expect(e.param === null || typeof e.param === 'string').toBe(true);
  }
}

describe('serve: validator fuzz (no 500s, no crash)', () => {
  let server: WeftServer;
  beforeAll(async () => {
    server = new WeftServer({ port: 0 });
    server.attach(new InProcessHost(fakeBundle({ contextLength: 512, maxRunning: 64 })));
    await server.app.ready();
  });
  afterAll(() => server.shutdown(1000));

  const post = async (url: string, payload: string, contentType = 'application/json'): Promise<{ status: number; body: string }> => {
    const r = await server.app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } });
    return { status: r.statusCode, body: r.body };
  };

  it('valid bodies are accepted', async () => {
    for (const route of ROUTES) {
      const r = await post(route, JSON.stringify(VALID[route]));
      expect(r.status, `${route}: ${r.body}`).toBe(200);
    }
  });

  it('random JSON bodies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), anyValue, async (route, body) => {
        const r = await post(route, JSON.stringify(body) ?? 'null');
        checkErrorShape(r.status, r.body);
      }),
      { numRuns: 300 },
    );
  });

  it('valid bodies with one field replaced by a random value, or removed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.nat(), anyValue, fc.boolean(), async (route, pick, value, remove) => {
        const body: Record<string, unknown> = structuredClone(VALID[route]);
        const keys = Object.keys(body);
        const key = keys[pick % keys.length]!;
        if (remove) delete body[key];
        else body[key] = value;
        const r = await post(route, JSON.stringify(body));
        checkErrorShape(r.status, r.body);
      }),
      { numRuns: 600 },
    );
  });

  it('random extra sampling fields on a valid body', async () => {
    const fields = ['temperature', 'top_p', 'top_k', 'min_p', 'n', 'max_tokens', 'max_completion_tokens', 'presence_penalty', 'frequency_penalty', 'repetition_penalty', 'logit_bias', 'seed', 'stop', 'stream', 'stream_options', 'tools', 'tool_choice', 'response_format', 'logprobs', 'top_logprobs', 'echo', 'best_of', 'suffix', 'ignore_eos', 'stop_token_ids', 'user'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/v1/completions', '/v1/chat/completions'), fc.dictionary(fc.constantFrom(...fields), anyValue, { maxKeys: 4 }), async (route, extra) => {
        const r = await post(route, JSON.stringify({ ...VALID[route], ...extra }));
        checkErrorShape(r.status, r.body);
      }),
      { numRuns: 400 },
    );
  });

  it('malformed payloads: broken JSON, wrong content types, binary', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('{', '{"model":', '[1,2', 'null', 'true', '"x"', '{"__proto__":{"a":1}}', '{"constructor":{"prototype":{}}}')), fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'), async (route, payload, ct) => {
        const r = await post(route, payload, ct);
        checkErrorShape(r.status, r.body);
      }),
      { numRuns: 300 },
    );
    const health = await server.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
  });
});
