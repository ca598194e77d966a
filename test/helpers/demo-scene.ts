import type { Browser, BrowserContext, Page } from 'playwright-core';
import { NotifyClient } from '../../src/client/index.js';
import { watchPage } from './browser.js';
import { PASSWORD, type TestServer } from './server.js';

/** The size of the picture in the README (docs/demo.png). */
export const DEMO_VIEWPORT = { width: 1180, height: 760 } as const;

/** What the feed shows once the scene has played, newest first. */
export const DEMO_FEED = [
  'All systems operational.',
  'Your export is ready to download.',
  'Release 1.4 is out: streams now renew in-band',
] as const;

/** Creates the accounts the scene signs in with. */
export async function addDemoAccounts(t: TestServer): Promise<void> {
  await t.addAccount('alice', ['user', 'publisher']);
  await t.addAccount('newsroom', ['publisher']);
}

export interface DemoScene {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console errors and requests to other origins seen while the scene played. */
  readonly seen: { errors: string[]; foreign: string[] };
  close(): Promise<void>;
}

/**
 * Plays the scene of the demo page that the README shows: alice signs in, a newsroom service
 * publishes a public event and one to her inbox through REST, and she publishes from the page
 * (through the shared worker). The browser test asserts on it; `npm run docs:screenshot` takes
 * the committed picture of it.
 */
export async function playDemoScene(browser: Browser, t: TestServer): Promise<DemoScene> {
  const context = await browser.newContext({ viewport: DEMO_VIEWPORT, colorScheme: 'light' });
  const page = await context.newPage();
  const seen = watchPage(page, t.url);
  await page.goto(`${t.url}/`);
  await page.fill('#username', 'alice');
  await page.fill('#password', PASSWORD);
  await page.click('#signin-button');
  await page.waitForSelector('#state[data-state="open"]');

  const newsroom = new NotifyClient({ baseUrl: t.url, mode: 'bearer' });
  try {
    await newsroom.login('newsroom', PASSWORD);
    await newsroom.publish(['public/news'], { headline: DEMO_FEED[2] });
    await page.waitForSelector('#feed li:nth-child(1)');
    await newsroom.publish(['users/alice/inbox'], { text: DEMO_FEED[1], inbox: true }, { type: 'notification' });
    await page.waitForSelector('#feed li:nth-child(2)');
  } finally {
    newsroom.close();
  }

  // Publishing from the page (alice's role allows public/**), through the shared worker.
  await page.fill('#topic', 'public/status');
  await page.fill('#message', DEMO_FEED[0]);
  await page.click('#publish-button');
  await page.waitForSelector('#feed li:nth-child(3)');
  await page.waitForSelector('#publish-ok:not([hidden])');
  return { context, page, seen, close: () => context.close() };
}

/** Writes a PNG of the page once its animations (an arriving event slides in) have finished. */
export async function screenshotWhenSettled(page: Page, file: string): Promise<void> {
  await page.evaluate(() => Promise.all(document.getAnimations().map((animation) => animation.finished)));
  await page.screenshot({ path: file });
}
