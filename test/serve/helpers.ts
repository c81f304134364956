/** Starts a server over a fake (or given) engine on a free port, for the serve tests. */
import { InProcessHost, type EngineBundle } from '../../src/serve/host.js';
import { WeftServer, type ServerOptions } from '../../src/serve/server.js';
import { fakeBundle, type FakeBundleOptions, type FakeEngine } from './fake-engine.js';

export interface Running {
  server: WeftServer;
  url: string;
  close: () => Promise<void>;
}

export async function startServer(bundle: EngineBundle, options: ServerOptions = {}): Promise<Running> {
  const server = new WeftServer({ port: 0, ...options });
  server.attach(new InProcessHost(bundle));
  const url = await server.listen();
  return { server, url, close: () => server.shutdown(1000) };
}

export async function startFake(engineOptions: FakeBundleOptions = {}, options: ServerOptions = {}): Promise<Running & { engine: FakeEngine }> {
  const bundle = fakeBundle(engineOptions);
  const running = await startServer(bundle, options);
  return { ...running, engine: bundle.engine };
}

export async function postJSON(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; headers: Headers }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}

/** Reads an SSE body into its `data:` payloads (parsed JSON, or the string "[DONE]"). */
export async function readSSE(r: Response): Promise<unknown[]> {
  const text = await r.text();
  expectFraming(text);
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      const data = e.slice('data: '.length);
      return data === '[DONE]' ? data : JSON.parse(data);
    });
}

/** Every event is exactly `data: <payload>\n\n`, and the stream ends with [DONE]. */
export function expectFraming(text: string): void {
  if (!text.endsWith('data: [DONE]\n\n')) throw new Error(`stream does not end with data: [DONE]: ${JSON.stringify(text.slice(-80))}`);
  for (const e of text.split('\n\n').filter((x) => x !== '')) {
    if (!e.startsWith('data: ') || e.includes('\n')) throw new Error(`bad SSE event: ${JSON.stringify(e)}`);
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A metric's value (summed over label sets) from /metrics text. */
export function metricValue(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([^\s{]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m !== null && m[1] === name) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}
