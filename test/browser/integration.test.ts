import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { launchChromium, watchPage } from '../helpers/browser.js';
import { DELEGATION_ROLES } from '../helpers/issuers.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { publish } from '../helpers/streams.js';

const GUIDE = fileURLToPath(new URL('../../docs/integration.md', import.meta.url));
const CLIENT_SECRET = 'shop-secret-shop-secret-shop-sec';

/** The `backend.mjs` code block of docs/integration.md, exactly as a reader would paste it. */
function backendSnippet(): string {
  const text = readFileSync(GUIDE, 'utf8');
  const match = /<!-- backend\.mjs -->\n```js\n([\s\S]*?)\n```/.exec(text);
  if (match === null) throw new Error('docs/integration.md has no backend.mjs block');
  return match[1]!;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(true));
      socket.on('error', () => resolve(false));
      socket.on('connect', () => socket.destroy());
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Issue 10 §2 and §4 in a real browser: the Node backend of docs/integration.md, run as written,
 * exchanges its client credentials for a ticket for its signed-in user; headless Chromium loads
 * its page from the application's origin, redeems the ticket at notify and subscribes with the
 * cookie. The cookie lands HttpOnly on notify's origin and no token is ever visible to the page.
 */
describe('in Chromium: an application backend hands the browser a ticket (docs/integration.md)', function () {
  this.timeout(40_000);
  let browser: Browser;
  let t: TestServer;
  let backend: ChildProcess;
  let dir: string;
  let appUrl: string;
  let backendOutput = '';

  before(async () => {
    const appPort = await freePort();
    appUrl = `http://127.0.0.1:${appPort}`;
    [browser, t] = await Promise.all([launchChromium(), startServer({ CORS_ORIGINS: appUrl }, (c) => ({ ...c, roles: DELEGATION_ROLES }))]);
    await t.addAccount('shop', ['app'], { kind: 'service', password: CLIENT_SECRET });
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-backend-'));
    writeFileSync(path.join(dir, 'backend.mjs'), backendSnippet());
    backend = spawn(process.execPath, [path.join(dir, 'backend.mjs')], {
      env: {
        PATH: process.env.PATH,
        NOTIFY_URL: t.url,
        NOTIFY_CLIENT_ID: 'shop',
        NOTIFY_CLIENT_SECRET: CLIENT_SECRET,
        PORT: String(appPort),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    backend.stdout!.on('data', (chunk) => (backendOutput += chunk));
    backend.stderr!.on('data', (chunk) => (backendOutput += chunk));
    await waitForPort(appPort, 10_000);
  });
  after(async () => {
    backend?.kill();
    await browser?.close();
    await t?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("sets the HttpOnly cookie on notify's origin from the ticket, streams the user's inbox, and never shows the page a token", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = watchPage(page, appUrl);
    // Record every answer the page's own scripts can read through fetch.
    await page.addInitScript(() => {
      const seenBodies: string[] = [];
      (window as unknown as { seenBodies: string[] }).seenBodies = seenBodies;
      const original = window.fetch.bind(window);
      window.fetch = async (...args: Parameters<typeof fetch>) => {
        const response = await original(...args);
        seenBodies.push(await response.clone().text());
        return response;
      };
    });
    await page.goto(appUrl);
    await page
      .waitForFunction(() => document.body.dataset.connected === 'yes', undefined, { timeout: 10_000 })
      .catch((error: Error) => {
        throw new Error(`${error.message}; page errors: ${JSON.stringify(seen.errors)}; backend: ${backendOutput}`);
      });

    const cookies = await context.cookies(t.url);
    const access = cookies.find((cookie) => cookie.name === 'notify_at');
    expect(access, JSON.stringify(cookies)).to.not.equal(undefined);
    expect(access!.httpOnly).to.equal(true);
    expect(access!.sameSite).to.equal('Strict');
    expect(new URL(t.url).hostname).to.equal(access!.domain);
    const claims = JSON.parse(Buffer.from(access!.value.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(claims).to.include({ sub: 'shop~alice', client_id: 'shop' });

    const newsroom = (
      (await (
        await fetch(`${t.url}/auth/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`shop:${CLIENT_SECRET}`).toString('base64')}` },
          body: new URLSearchParams({ grant_type: 'client_credentials' }),
        })
      ).json()) as { access_token: string }
    ).access_token;
    await publish(t.url, newsroom, { topics: ['users/shop~alice/inbox'], data: { text: 'Your order shipped' } });
    await page.waitForFunction(() => document.querySelector('#inbox')?.textContent?.includes('Your order shipped'), undefined, {
      timeout: 10_000,
    });

    // Nothing the page's scripts can reach holds the token: not document.cookie, not the page, not an answer they read.
    const visible = await page.evaluate(() => ({ cookie: document.cookie, html: document.documentElement.outerHTML }));
    expect(visible.cookie).to.equal('');
    expect(visible.html).to.not.include(access!.value);
    const answers = await page.evaluate(() => (window as unknown as { seenBodies: string[] }).seenBodies);
    expect(answers.map((answer) => JSON.parse(answer))).to.deep.equal([{ subject: 'shop~alice', expires_in: 300 }]);
    for (const answer of answers) expect(answer).to.not.include('eyJ');
    expect(seen.errors).to.deep.equal([]);
    await context.close();
  });

  it('refuses the same ticket a second time: a reload gets a new one, a replayed one is invalid_grant', async () => {
    const html = await (await fetch(appUrl)).text();
    const ticket = /ticket: '([A-Za-z0-9_-]+)'/.exec(html)![1]!;
    const redeem = () =>
      fetch(`${t.url}/auth/ticket`, {
        method: 'POST',
        headers: { origin: appUrl, 'content-type': 'application/json' },
        body: JSON.stringify({ ticket }),
      });
    expect((await redeem()).status).to.equal(200);
    const replay = await redeem();
    expect(replay.status).to.equal(400);
    expect(((await replay.json()) as { error: string }).error).to.equal('invalid_grant');
  });
});
