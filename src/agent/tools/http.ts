/**
 * HTTP GET/POST limited to an allow-list of hosts. The URL is parsed and its host checked before
 * any connection is made; redirects are followed by hand (at most 3) and each hop is checked the
 * same way, so an allowed host cannot redirect the agent elsewhere. Responses are read up to a size
 * limit (the connection is cut beyond it) within a time limit.
 *
 * Allow-list entries: a host name ("api.example.com"), a host with a port ("127.0.0.1:8080"), or
 * a wildcard for subdomains ("*.example.com", which does not match example.com itself).
 */
import { z } from 'zod';
import { defineTool, type Tool } from './tool.js';

export interface HttpToolOptions {
  allowHosts: readonly string[];
  /** Largest response body read (bytes, default 256 KiB). */
  maxBytes?: number;
  /** Per-request time limit (ms, default 15 s). */
  timeoutMs?: number;
  /** Replaceable for tests. */
  fetch?: typeof fetch;
}

/** Why a URL may not be fetched, or null when it may. */
export function urlRefusal(raw: string, allowHosts: readonly string[]): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `'${raw}' is not an absolute URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `scheme ${url.protocol} is not allowed (http and https only)`;
  if (url.username !== '' || url.password !== '') return 'URLs with credentials are not allowed';
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const port = url.port;
  const ok = allowHosts.some((entry) => {
    const e = entry.trim().toLowerCase();
    if (e === '') return false;
    const [h, p] = e.startsWith('[') ? [e.slice(0, e.indexOf(']') + 1), e.slice(e.indexOf(']') + 2) || undefined] : (e.split(':') as [string, string | undefined]);
    if (p !== undefined && p !== port) return false;
    if (h.startsWith('*.')) return host.endsWith(h.slice(1)) && host.length > h.length - 1;
    return host === h;
  });
  return ok ? null : `host ${url.host} is not in the allow-list (${allowHosts.join(', ') || 'empty'})`;
}

async function readLimited(res: Response, maxBytes: number): Promise<{ text: string; cut: boolean }> {
  if (res.body === null) return { text: '', cut: false };
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  let cut = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.byteLength > maxBytes) {
      parts.push(value.subarray(0, maxBytes - n));
      n = maxBytes;
      cut = true;
      await reader.cancel();
      break;
    }
    parts.push(value);
    n += value.byteLength;
  }
  return { text: Buffer.concat(parts).toString('utf8'), cut };
}

async function request(method: 'GET' | 'POST', url: string, body: string | undefined, contentType: string, options: HttpToolOptions, signal: AbortSignal): Promise<string> {
  const maxBytes = options.maxBytes ?? 256 * 1024;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 15_000);
  const both = AbortSignal.any([signal, timeout]);
  const doFetch = options.fetch ?? fetch;
  let current = url;
  for (let hop = 0; hop <= 3; hop++) {
    const refusal = urlRefusal(current, options.allowHosts);
    if (refusal !== null) throw new Error(`refused: ${refusal}`);
    let res: Response;
    try {
      res = await doFetch(current, { method, body, headers: body !== undefined ? { 'content-type': contentType } : {}, redirect: 'manual', signal: both });
    } catch (e) {
      if (timeout.aborted) throw new Error(`no answer from ${new URL(current).host} within ${options.timeoutMs ?? 15_000} ms`);
      throw new Error(`cannot reach ${new URL(current).host}: ${(e as Error).message}`);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location') !== null) {
      current = new URL(res.headers.get('location')!, current).href;
      await res.body?.cancel();
      // A 303 (and, as browsers do, 301/302 after POST) becomes a GET.
      if (res.status === 303 || (method === 'POST' && (res.status === 301 || res.status === 302))) {
        method = 'GET';
        body = undefined;
      }
      continue;
    }
    const { text, cut } = await readLimited(res, maxBytes);
    return `status: ${res.status}\ncontent-type: ${res.headers.get('content-type') ?? ''}\n\n${text}${cut ? `\n...[body cut at ${maxBytes} bytes]` : ''}`;
  }
  throw new Error('too many redirects (more than 3)');
}

export function httpTools(options: HttpToolOptions): Tool[] {
  return [
    defineTool({
      name: 'http_get',
      description: `Fetches a URL with GET and returns the status and body. Only these hosts are reachable: ${options.allowHosts.join(', ') || 'none'}.`,
      schema: z.object({ url: z.string().describe('absolute http(s) URL') }),
      run: ({ url }, ctx) => request('GET', url, undefined, '', options, ctx.signal),
    }),
    defineTool({
      name: 'http_post',
      description: `Sends a POST request and returns the status and body. Only these hosts are reachable: ${options.allowHosts.join(', ') || 'none'}.`,
      schema: z.object({ url: z.string().describe('absolute http(s) URL'), body: z.string().describe('request body (e.g. JSON text)'), content_type: z.string().default('application/json') }),
      dangerous: true,
      run: ({ url, body, content_type }, ctx) => request('POST', url, body, content_type, options, ctx.signal),
    }),
  ];
}
