import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { NotifyClient } from '../../src/client/index.js';
import type { Config } from '../../src/config.js';
import { launchChromium, openHarness, startRestartableServer, type RestartableServer } from '../helpers/browser.js';
import { delay, PASSWORD } from '../helpers/server.js';

interface Harness {
  received: unknown[];
  ids: string[];
  resets: string[];
  stops: string[];
  connects: number;
  renewals: number;
  start(options: {
    shared?: boolean;
    coordinated?: boolean;
    login?: { username: string; password: string };
    topics: string[];
    renew?: boolean;
  }): Promise<string | undefined>;
}
type HarnessWindow = Window & { harness: Harness };

const numbers = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Reads the harness's counters from the page. */
const read = (page: Page) =>
  page.evaluate(() => {
    const h = (window as unknown as HarnessWindow).harness;
    return { received: h.received, ids: h.ids, resets: h.resets, stops: h.stops, connects: h.connects, renewals: h.renewals };
  });

async function waitFor(page: Page, predicate: (state: Awaited<ReturnType<typeof read>>) => boolean, what: string, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await read(page);
    if (predicate(state)) return state;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(state)}`);
    await delay(50);
  }
}

async function signedInPage(
  context: BrowserContext,
  url: string,
  options: { shared?: boolean; coordinated?: boolean; renew?: boolean; login?: boolean } = {},
): Promise<Page> {
  const page = await context.newPage();
  await openHarness(page, url);
  await page.evaluate(
    (o) =>
      (window as unknown as HarnessWindow).harness.start({
        shared: o.shared,
        coordinated: o.coordinated,
        renew: o.renew,
        topics: ['users/alice/**', 'public/**'],
        login: o.login ? { username: 'alice', password: o.password } : undefined,
      }),
    {
      shared: options.shared ?? false,
      coordinated: options.coordinated ?? false,
      renew: options.renew ?? true,
      login: options.login ?? true,
      password: PASSWORD,
    },
  );
  await waitFor(page, (s) => s.connects >= 1, 'connected');
  return page;
}

/** A publisher in Node that numbers its events. */
async function numberedPublisher(url: string) {
  const client = new NotifyClient({ baseUrl: url, mode: 'bearer' });
  await client.login('newsroom', PASSWORD);
  let n = 0;
  return {
    client,
    get count() {
      return n;
    },
    async send(count = 1) {
      for (let i = 0; i < count; i++) await client.publish(['public/ticks'], { n: ++n });
    },
    /** Publishes one event every `everyMs` for `forMs`. */
    async stream(forMs: number, everyMs = 150) {
      const until = Date.now() + forMs;
      while (Date.now() < until) {
        await this.send();
        await delay(everyMs);
      }
    },
  };
}

const shortTokens = (c: Config): Config => ({
  ...c,
  jwt: { ...c.jwt, accessTokenTtlMs: 4000, clockToleranceMs: 0 },
  streams: { ...c.streams, expiryWarningMs: 2000 },
});

describe('in Chromium: the client keeps a stream alive', function () {
  this.timeout(40_000);
  let browser: Browser;
  let context: BrowserContext;
  let t: RestartableServer;
  const publishers: NotifyClient[] = [];

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    for (const client of publishers.splice(0)) client.close();
    await context?.close();
    await t?.close();
  });

  async function setUp(overrides?: (c: Config) => Config) {
    t = await startRestartableServer(overrides);
    await t.server.users.add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: await hashed() });
    await t.server.users.add({ name: 'newsroom', kind: 'user', roles: ['publisher'], passwordHash: await hashed() });
    context = await browser.newContext();
    const publisher = await numberedPublisher(t.url);
    publishers.push(publisher.client);
    return publisher;
  }

  it('renews in-band on token-expiring, on one connection, with no event lost or repeated (4 s tokens; shared worker)', async () => {
    const publisher = await setUp(shortTokens);
    const page = await signedInPage(context, t.url, { shared: true });
    await publisher.stream(9000);
    const state = await waitFor(page, (s) => s.received.length >= publisher.count, 'every event');
    expect(state.received).to.deep.equal(numbers(1, publisher.count));
    expect(state.renewals).to.be.at.least(2);
    expect(state.connects).to.equal(1);
    expect(state.stops).to.deep.equal([]);
  });

  it('refreshes the cookie and reconnects when the stream ends at expiry, with no event lost or repeated', async () => {
    const publisher = await setUp(shortTokens);
    const page = await signedInPage(context, t.url, { renew: false });
    await publisher.stream(9000);
    const state = await waitFor(page, (s) => s.received.length >= publisher.count, 'every event');
    expect(state.received).to.deep.equal(numbers(1, publisher.count));
    expect(state.renewals).to.equal(0);
    expect(state.connects).to.be.at.least(3);
    expect(state.stops).to.deep.equal([]);
  });

  it('resumes with Last-Event-ID after the connection is killed mid-stream, with no event lost or repeated', async () => {
    const publisher = await setUp();
    const page = await signedInPage(context, t.url);
    await publisher.send(5);
    await waitFor(page, (s) => s.received.length === 5, 'the first events');
    for (let round = 0; round < 3; round++) {
      t.server.http.closeAllConnections();
      await publisher.send(5); // while the page is away
      await waitFor(page, (s) => s.connects === round + 2, 'the reconnect');
    }
    await publisher.send(5);
    const state = await waitFor(page, (s) => s.received.length >= 25, 'every event');
    expect(state.received).to.deep.equal(numbers(1, 25));
    expect(state.resets).to.deep.equal([]);
  });

  it('after a server restart resumes without a reset: the events published while it was away arrive, nothing repeated (issue 14)', async () => {
    const publisher = await setUp();
    const page = await signedInPage(context, t.url);
    await publisher.send(5);
    await waitFor(page, (s) => s.received.length === 5, 'the first events');
    await t.restart();
    await publisher.send(5); // before the page is back: it resumes from its Last-Event-ID
    const afterRestart = await waitFor(page, (s) => s.connects === 2 && s.received.length >= 10, 'the reconnect and the missed events');
    expect(afterRestart.resets).to.deep.equal([]);
    await publisher.send(5);
    const state = await waitFor(page, (s) => s.received.length >= 15, 'the later events');
    expect(state.received).to.deep.equal(numbers(1, 15));
    expect(new Set(state.ids).size).to.equal(15);
    expect(state.resets).to.deep.equal([]);
  });

  it('after a server restart on STORE=memory (history gone) gets a reset, then carries on live with nothing repeated', async () => {
    const publisher = await setUp((c) => ({ ...c, backend: { kind: 'memory' } }));
    const page = await signedInPage(context, t.url);
    await publisher.send(5);
    await waitFor(page, (s) => s.received.length === 5, 'the first events');
    await t.restart();
    const afterRestart = await waitFor(page, (s) => s.connects === 2, 'the reconnect');
    expect(afterRestart.resets).to.have.length(1);
    await publisher.send(5);
    const state = await waitFor(page, (s) => s.received.length >= 10, 'the later events');
    expect(state.received).to.deep.equal(numbers(1, 10));
    expect(new Set(state.ids).size).to.equal(10);
  });

  it('without SharedWorker, tabs take turns refreshing the shared cookie, so none signs the others out (4 s tokens)', async () => {
    const publisher = await setUp(shortTokens);
    const pages = [await signedInPage(context, t.url, { coordinated: true })];
    for (let i = 1; i < 3; i++) pages.push(await signedInPage(context, t.url, { coordinated: true, login: false }));
    expect(t.server.registry.size).to.equal(3);
    await publisher.stream(9000, 200);
    for (const page of pages) {
      const state = await waitFor(page, (s) => s.received.length >= publisher.count, 'every event in every tab');
      expect(state.received).to.deep.equal(numbers(1, publisher.count));
      expect(state.stops).to.deep.equal([]);
      expect(state.renewals).to.be.at.least(2);
    }
  });

  it('shares ONE server connection between ten tabs of an origin, and every tab receives every event', async () => {
    const publisher = await setUp();
    const first = await signedInPage(context, t.url, { shared: true });
    const pages = [first];
    for (let i = 1; i < 10; i++) pages.push(await signedInPage(context, t.url, { shared: true, login: false }));
    expect(t.server.registry.size).to.equal(1);
    await publisher.send(10);
    for (const page of pages) {
      const state = await waitFor(page, (s) => s.received.length >= 10, 'every event in every tab');
      expect(state.received).to.deep.equal(numbers(1, 10));
    }
    expect(t.server.registry.size).to.equal(1);
  });
});

let hash: string | undefined;
async function hashed(): Promise<string> {
  const { hashPassword } = await import('../../src/auth/password.js');
  hash ??= await hashPassword(PASSWORD, { logN: 10 });
  return hash;
}
