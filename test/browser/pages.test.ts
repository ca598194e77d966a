import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { NotifyClient } from '../../src/client/index.js';
import { launchChromium, watchPage } from '../helpers/browser.js';
import { specOperations } from '../helpers/openapi.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';

const SCREENSHOT = fileURLToPath(new URL('../../docs/demo.png', import.meta.url));

describe('in Chromium: the docs page and the demo page', function () {
  this.timeout(30_000);
  let browser: Browser;
  let t: TestServer;

  before(async () => {
    [browser, t] = await Promise.all([launchChromium(), startServer()]);
    await t.addAccount('alice', ['user', 'publisher']);
    await t.addAccount('bob', ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
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
    expect(rendered.sort()).to.deep.equal(described.sort());
    expect(seen.errors).to.deep.equal([]);
    expect(seen.foreign).to.deep.equal([]);
    await page.close();
  });

  it('signs in, shows an event published through REST, and leaves no token where a script can read it', async () => {
    const context = await browser.newContext({ viewport: { width: 1180, height: 760 }, colorScheme: 'light' });
    const page = await context.newPage();
    const seen = watchPage(page, t.url);
    await page.goto(`${t.url}/`);
    await page.fill('#username', 'alice');
    await page.fill('#password', PASSWORD);
    await page.click('#signin-button');
    await page.waitForSelector('#state[data-state="open"]');
    expect(await page.textContent('#who')).to.equal('alice');
    expect(await page.isVisible('#publish-card')).to.equal(true);

    const newsroom = new NotifyClient({ baseUrl: t.url, mode: 'bearer' });
    await newsroom.login('newsroom', PASSWORD);
    await newsroom.publish(['public/news'], { headline: 'Release 1.4 is out: streams now renew in-band' });
    await newsroom.publish(['users/alice/inbox'], { text: 'Your export is ready to download.', inbox: true }, { type: 'notification' });
    await page.waitForSelector('#feed li:nth-child(2)');
    expect(await page.textContent('#feed li:first-child .body')).to.equal('Your export is ready to download.');

    // Publishing from the page (alice's role allows public/**), through the shared worker.
    await page.fill('#topic', 'public/status');
    await page.fill('#message', 'All systems operational.');
    await page.click('#publish-button');
    await page.waitForSelector('#feed li:nth-child(3)');
    await page.waitForSelector('#publish-ok:not([hidden])');

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

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.waitForTimeout(400); // let the arrival animation finish
    await page.screenshot({ path: SCREENSHOT });
    newsroom.close();
    await context.close();
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
