import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { launchChromium, watchPage } from '../helpers/browser.js';
import { addDemoAccounts, DEMO_FEED, DEMO_VIEWPORT, playDemoScene, screenshotWhenSettled } from '../helpers/demo-scene.js';
import { openApiSpec, specOperations } from '../helpers/openapi.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';

describe('in Chromium: the docs page and the demo page', function () {
  this.timeout(30_000);
  let browser: Browser;
  let t: TestServer;
  let tmp: string;

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'notify-pages-'));
    [browser, t] = await Promise.all([launchChromium(), startServer()]);
    await addDemoAccounts(t);
    await t.addAccount('bob', ['user']);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('renders every operation of openapi.yaml at /docs, with no console error and no request to another host', async () => {
    const page = await browser.newPage();
    const seen = watchPage(page, t.url);
    await page.goto(`${t.url}/docs`);
    await page.waitForSelector('.opblock');
    const rendered = await page.$$eval('.opblock', (blocks) =>
      blocks.map((block) => {
        const method = block.querySelector('.opblock-summary-method')?.textContent?.trim().toLowerCase();
        const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path');
        return `${method} ${path}`;
      }),
    );
    const described = specOperations().map((op) => `${op.method} ${op.path}`);
    // Swagger UI renders the spec's webhooks (issue 15) as operations named after them.
    const webhooks = Object.entries<Record<string, unknown>>(openApiSpec().webhooks ?? {}).flatMap(([name, item]) =>
      Object.keys(item).map((method) => `${method} ${name}`),
    );
    expect(webhooks).to.deep.equal(['post lifecycleEvents']);
    expect(rendered.sort()).to.deep.equal([...described, ...webhooks].sort());
    expect(seen.errors).to.deep.equal([]);
    expect(seen.foreign).to.deep.equal([]);
    await page.close();
  });

  it('signs in, shows an event published through REST, and leaves no token where a script can read it', async () => {
    const { context, page, seen, close } = await playDemoScene(browser, t);
    expect(await page.textContent('#who')).to.equal('alice');
    expect(await page.isVisible('#publish-card')).to.equal(true);
    expect(await page.$$eval('#feed li .body', (items) => items.map((item) => item.textContent))).to.deep.equal(DEMO_FEED);

    const readable = await page.evaluate(() => ({
      cookie: document.cookie,
      local: Object.keys(localStorage).length,
      session: Object.keys(sessionStorage).length,
    }));
    expect(readable).to.deep.equal({ cookie: '', local: 0, session: 0 });
    const cookies = await context.cookies(t.url);
    const access = cookies.find((cookie) => cookie.name === 'notify_at');
    expect(access?.httpOnly).to.equal(true);
    expect(access?.sameSite).to.equal('Strict');
    expect(await page.content()).to.not.contain(access!.value);
    expect(seen.errors).to.deep.equal([]);
    expect(seen.foreign).to.deep.equal([]);

    // The picture in the README is taken of this scene by `npm run docs:screenshot`; here it goes
    // to a temporary directory (a test never rewrites a committed file) and is checked to be one.
    const file = path.join(tmp, 'demo.png');
    await screenshotWhenSettled(page, file);
    const png = readFileSync(file);
    expect(png.subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a');
    // IHDR: width and height, big-endian, at bytes 16 and 20.
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).to.deep.equal([DEMO_VIEWPORT.width, DEMO_VIEWPORT.height]);
    await close();
  });

  it('shows a refused sign-in, and an account that may not publish gets no publish form', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.url}/`);
    await page.fill('#username', 'bob');
    await page.fill('#password', 'wrong password');
    await page.click('#signin-button');
    await page.waitForSelector('#signin-error:not([hidden])');
    await page.fill('#password', PASSWORD);
    await page.click('#signin-button');
    await page.waitForSelector('#state[data-state="open"]');
    expect(await page.isVisible('#publish-card')).to.equal(false);
    // A reload signs in again from the refresh cookie.
    await page.reload();
    await page.waitForSelector('#state[data-state="open"]');
    await page.click('#logout');
    await page.waitForSelector('#signin:not([hidden])');
    // The server ended the sign-in (the logout POST passed its Origin check) and cleared the cookies.
    expect((await context.cookies(t.url)).map((cookie) => cookie.name)).to.deep.equal([]);
    await page.reload();
    await page.waitForSelector('#signin:not([hidden])');
    await context.close();
  });
});
