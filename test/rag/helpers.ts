/**
 * Test-only helpers: a deterministic bag-of-words embedder (so tests need no model) and a fake
 * OpenAI-compatible server (embeddings and chat, streamed or not) that records what it received.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bm25Tokenize } from '../../src/rag/bm25.js';
import type { Embedder } from '../../src/rag/embeddings.js';
import { sha256Hex } from '../../src/rag/types.js';

export const TEST_DIM = 64;

/** Each term adds ±1 at a hashed position; the vector is L2-normalised. Shared words → high cosine. */
export function bagOfWords(text: string, dim = TEST_DIM): Float32Array {
  const v = new Float32Array(dim);
  for (const t of bm25Tokenize(text)) {
    const h = sha256Hex(t);
    v[parseInt(h.slice(0, 8), 16) % dim]! += parseInt(h.slice(8, 9), 16) % 2 === 0 ? 1 : -1;
  }
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  return v.map((x) => x / n);
}

export class CountingEmbedder implements Embedder {
  readonly id = 'test-bag-of-words';
  readonly dim = TEST_DIM;
  calls = 0;
  texts = 0;
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls++;
    this.texts += texts.length;
    return texts.map((t) => bagOfWords(t));
  }
}

export interface FakeServer {
  url: string;
  requests: { path: string; body: Record<string, unknown> }[];
  /** What the chat endpoint answers (a function of the messages). */
  reply: (messages: { role: string; content: string }[]) => string;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += c;
  return s;
}

export async function startFakeOpenAI(): Promise<FakeServer> {
  const state: FakeServer = { url: '', requests: [], reply: () => 'The answer is in [1].', close: async () => undefined };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
      state.requests.push({ path: req.url ?? '', body });
      if (req.url === '/v1/embeddings') {
        const input = body.input as string[];
        res.writeHead(200, { 'content-type': 'application/json' });
        // Reversed order on purpose: clients must sort by index.
        res.end(JSON.stringify({ object: 'list', data: input.map((t, i) => ({ object: 'embedding', index: i, embedding: Array.from(bagOfWords(t)) })).reverse() }));
        return;
      }
      if (req.url === '/v1/chat/completions') {
        const text = state.reply(body.messages as { role: string; content: string }[]);
        if (body.stream === true) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          for (const piece of text.match(/.{1,4}/gs) ?? []) res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece } }] })}\n\n`);
          res.end('data: [DONE]\n\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }] }));
        return;
      }
      res.writeHead(404);
      res.end('{"error":"not found"}');
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  state.close = () => new Promise<void>((r) => server.close(() => r()));
  return state;
}
