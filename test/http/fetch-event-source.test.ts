import { expect } from 'chai';
import { fetchEventSource, type EventSourceMessage } from '@microsoft/fetch-event-source';
import { startServer, type TestServer } from '../helpers/server.js';
import { openRawStream, publish, waitUntil } from '../helpers/streams.js';

/**
 * Issue 11, "Stream details": @microsoft/fetch-event-source (a widely used SSE client) calls
 * `onmessage` for every blank line, so a `:\n\n` heartbeat reached it as an empty message every
 * interval (its issue #15). Heartbeats are one comment line now; the library must see the
 * connected event and the published one, and nothing else, across several heartbeats.
 */
describe('heartbeats under @microsoft/fetch-event-source', function () {
  this.timeout(20_000);
  let t: TestServer;
  const globals = globalThis as { window?: unknown; document?: unknown };
  const shimmed: Array<'window' | 'document'> = [];

  before(async () => {
    // The library is written for browsers: it calls window.setTimeout/clearTimeout and, on close,
    // document.removeEventListener (with openWhenHidden it never waits for visibility). In Node,
    // globalThis has the timers; the document needs only those two methods.
    if (!('window' in globals)) shimmed.push('window');
    if (!('document' in globals)) shimmed.push('document');
    globals.window ??= globalThis;
    globals.document ??= { hidden: false, addEventListener: () => undefined, removeEventListener: () => undefined };
    t = await startServer({ HEARTBEAT_INTERVAL: '1' });
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  after(async () => {
    for (const name of shimmed) delete globals[name];
    await t.close();
  });

  it('reports no empty message for heartbeats, only the events sent', async () => {
    const alice = (await t.login('alice')).access_token;
    const url = `${t.url}/events?topic=public/news`;
    const messages: EventSourceMessage[] = [];
    const controller = new AbortController();
    let failure: unknown;
    const done = fetchEventSource(url, {
      headers: { authorization: `Bearer ${alice}` },
      openWhenHidden: true,
      signal: controller.signal,
      onmessage: (message) => messages.push(message),
      onerror: (error) => {
        failure = error;
        throw error;
      },
    });
    // The positive signal that heartbeats went by: a second stream on the same server sees two.
    const watcher = await openRawStream(url, alice);
    try {
      await waitUntil(() => messages.some((m) => m.event === 'connected'), 5000, 'connected');
      await watcher.waitForText((text) => (text.match(/\n:\n/g) ?? []).length >= 2, 5000);
      const newsroom = (await t.login('newsroom')).access_token;
      const id = await publish(t.url, newsroom, { topics: ['public/news'], type: 'headline', data: { n: 1 } });
      await waitUntil(() => messages.some((m) => m.id === id), 5000, 'the published event');
      expect(failure).to.equal(undefined);
      expect(messages.map((m) => m.event)).to.deep.equal(['connected', 'headline']);
      expect(messages.every((m) => m.data !== '')).to.equal(true);
    } finally {
      watcher.close();
      controller.abort();
      await done.catch(() => undefined);
    }
  });
});
