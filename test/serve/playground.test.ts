/**
 * The chat playground (GET /) end to end in a real browser: Debian's Chromium driven by
 * playwright-core loads the page, sends a message, watches the reply stream in, and sees the
 * rendered prompt, TTFT / tokens/s and the metrics panel update. Skips, saying why, when
 * /usr/bin/chromium is absent (`apt-get install -y chromium`; .ci/run installs it).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake, type Running } from './helpers.js';
import type { FakeEngine } from './fake-engine.js';

const CHROMIUM = '/usr/bin/chromium';
const REPLY = 'Hello there, dear friend of the playground!';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`playground browser test skipped: ${CHROMIUM} not found (apt-get install -y chromium)`);

describe.skipIf(!hasChromium)('serve: chat playground in Chromium', () => {
  let s: Running & { engine: FakeEngine };
  let browser: Browser;
  beforeAll(async () => {
    s = await startFake({ stepMs: 25, reply: () => REPLY, contextLength: 4096 }, { apiKey: 'play-key' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('streams a reply, shows the rendered prompt, TTFT and tokens/s, and live metrics', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // The page is public; the API needs the key, which the user types in.
    await page.goto(s.url);
    await page.fill('#apikey', 'play-key');
    await page.dispatchEvent('#apikey', 'change');
    await page.waitForFunction(`document.querySelector('#model').textContent.includes('fake-model')`, undefined, { timeout: 10_000 });
    await page.fill('#temperature', '0');
    await page.fill('#seed', '3');
    await page.fill('#input', 'Hi there');
    await page.click('#send-btn');
    // Streaming: part of the reply is on screen before the whole of it.
    await page.waitForFunction(
      `(() => {
        const el = document.querySelector('.msg.assistant');
        const text = el ? el.querySelector('.content').textContent : '';
        return el !== null && el.dataset.state === 'streaming' && text.length > 0 && text.length < ${REPLY.length};
      })()`,
      undefined,
      { timeout: 10_000 },
    );
    await page.waitForSelector('.msg.assistant[data-state="done"]', { timeout: 20_000 });
    expect(await page.textContent('.msg.assistant .content')).toBe(REPLY);
    const stats = (await page.textContent('.msg.assistant .stats')) ?? '';
    expect(stats).toMatch(/TTFT \d+ ms · 43 tokens · [\d.]+ tok\/s · finish stop/);
    const sub = s.engine.submitted.at(-1)!;
    expect(sub.sampling).toMatchObject({ temperature: 0, seed: 3, maxTokens: 128 });
    await page.waitForFunction(`document.querySelector('#rendered').textContent.includes('<|im_start|>user\\nHi there')`, undefined, { timeout: 10_000 });
    expect(await page.textContent('#prompt-tokens')).toMatch(/\(\d+ tokens\)/);
    // The metrics panel polls /metrics: the generated tokens show up.
    await page.waitForFunction(
      `Number(document.querySelector('tr[data-metric="weft:generation_tokens_total"] td:last-child')?.textContent ?? '0') >= ${REPLY.length}`,
      undefined,
      { timeout: 10_000 },
    );
    // A second turn carries the history.
    await page.fill('#input', 'And again');
    await page.keyboard.press('Enter');
    await page.waitForFunction(`document.querySelectorAll('.msg.assistant[data-state="done"]').length === 2`, undefined, { timeout: 20_000 });
    const prompt = (await import('./fake-engine.js')).fakeTokenizer().decode(s.engine.submitted.at(-1)!.promptIds);
    expect(prompt).toContain(`<|im_start|>assistant\n${REPLY}<|im_end|>`);
    expect(errors).toEqual([]);
  });
});
