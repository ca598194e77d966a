import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../helpers/browser.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';

/** POSTs JSON over HTTPS, trusting only the test's own certificate. */
function httpsJson(url: string, body: unknown, ca: Buffer, token?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, {
      method: 'POST',
      ca,
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    });
    request.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

/**
 * HTTP/1.1 browsers hold at most six connections per host, so a page with ten EventSources only
 * works when they share one HTTP/2 connection. Self-signed certificate made at test time.
 */
describe('in Chromium over HTTPS with HTTP/2', function () {
  this.timeout(40_000);
  let browser: Browser;
  let t: TestServer;
  let dir: string;
  let ca: Buffer;
  let origin: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-h2-browser-'));
    const { certFile: cert, keyFile: key } = selfSignedCertificate(dir, 'IP:127.0.0.1');
    ca = readFileSync(cert);
    t = await startServer({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key, MAX_STREAMS_PER_USER: '16' });
    origin = `https://127.0.0.1:${new URL(t.url).port}`;
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'],
    });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every event to ten EventSources in one page, all on one HTTP/2 connection', async () => {
    const page = await browser.newPage();
    // The docs page: its CSP allows same-origin connections (an API answer's CSP allows none).
    await page.goto(`${origin}/docs`);
    expect(
      await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol),
    ).to.equal('h2');

    // Sign in from the page: the access token goes into the HttpOnly __Host- cookie.
    const status = await page.evaluate(async (password) => {
      const res = await fetch('/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password, cookie: true }),
      });
      return res.status;
    }, PASSWORD);
    expect(status).to.equal(200);

    await page.evaluate(() => {
      const w = window as unknown as { received: string[][]; opened: number };
      w.received = [];
      w.opened = 0;
      for (let i = 0; i < 10; i++) {
        const seen: string[] = [];
        w.received.push(seen);
        const source = new EventSource('/events?topic=public/news');
        source.addEventListener('connected', () => w.opened++);
        source.onmessage = (event) => seen.push(JSON.stringify(JSON.parse(event.data).data));
      }
    });
    await page.waitForFunction(() => (window as unknown as { opened: number }).opened === 10, undefined, { timeout: 10_000 });
    expect(t.server.registry.size).to.equal(10);

    const newsroom = await httpsJson(`${origin}/auth/login`, { username: 'newsroom', password: PASSWORD }, ca);
    expect(newsroom.status).to.equal(200);
    for (let n = 1; n <= 5; n++) {
      const res = await httpsJson(`${origin}/events`, { topics: ['public/news'], data: n }, ca, newsroom.body.access_token);
      expect(res.status).to.equal(201);
    }
    await page.waitForFunction(
      () => (window as unknown as { received: string[][] }).received.every((seen) => seen.length === 5),
      undefined,
      { timeout: 10_000 },
    );
    const received = await page.evaluate(() => (window as unknown as { received: string[][] }).received);
    for (const seen of received) expect(seen).to.deep.equal(['1', '2', '3', '4', '5']);
    const protocols = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .filter((entry) => entry.name.includes('/events?'))
        .map((entry) => (entry as PerformanceResourceTiming).nextHopProtocol),
    );
    for (const protocol of protocols) expect(protocol).to.equal('h2');
  });
});
