import { expect } from 'chai';
import { expectResponseMatchesSpec, expectSseEventMatchesSpec } from '../helpers/openapi.js';
import { delay, openStream, postJson, startServer, type StreamClient, type TestServer } from '../helpers/server.js';
import { getEvents, openRawStream, openTcpStream, publish, publishedEvents, waitUntil } from '../helpers/streams.js';

const q = (...topics: string[]) => `?${topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')}`;

/** Asserts a JSON error answer (never a stream) with this status and code, documented by the spec. */
function expectRefused(res: Awaited<ReturnType<typeof getEvents>>, status: number, code: string): void {
  expect(res.headers['content-type'], JSON.stringify(res.body)).to.match(/^application\/json/);
  expect(res.status, JSON.stringify(res.body)).to.equal(status);
  expect(res.body.error).to.equal(code);
  expectResponseMatchesSpec(res, 'get', '/events');
}

describe('GET /events (subscribe)', () => {
  let t: TestServer;
  let alice: string;
  let bob: string;
  let newsroom: string;
  const streams: StreamClient[] = [];
  const open = (query: string, token: string, options?: Parameters<typeof openStream>[2]) => {
    const stream = openStream(`${t.url}/events${query}`, token, options);
    streams.push(stream);
    return stream;
  };

  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
    await t.addAccount('bob', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    alice = (await t.login('alice')).access_token;
    bob = (await t.login('bob')).access_token;
    newsroom = (await t.login('newsroom')).access_token;
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  after(() => t.close());

  describe('authorisation', () => {
    it('opens a stream when a user subscribes to its own inbox and to public topics', async () => {
      const stream = open(q('users/alice/**', 'public/**'), alice);
      const connected = await stream.waitFor((e) => e.type === 'connected');
      const data = JSON.parse(connected.data);
      expectSseEventMatchesSpec('connected', data);
      expect(data.topics).to.deep.equal(['users/alice/**', 'public/**']);
      expect(data.renewUrl).to.equal(`/events/connections/${data.connectionId}/token`);
      expect(connected.id).to.equal('');
    });

    it('opens a stream for an exact inbox topic and a single-segment wildcard inside the grant', async () => {
      const stream = open(q('users/alice/inbox', 'users/alice/*', 'public/news/*'), alice);
      const connected = await stream.waitFor((e) => e.type === 'connected');
      expect(JSON.parse(connected.data).topics).to.deep.equal(['users/alice/inbox', 'users/alice/*', 'public/news/*']);
    });

    it("answers 403 insufficient_scope with a Bearer challenge, before any stream byte, when a user subscribes to another user's inbox", async () => {
      const res = await getEvents(t.url, q('users/bob/**'), alice);
      expectRefused(res, 403, 'insufficient_scope');
      expect(res.headers['www-authenticate']).to.contain('Bearer realm="notify"');
      expect(res.headers['www-authenticate']).to.contain('error="insufficient_scope"');
      expect(t.server.registry.countFor('alice')).to.equal(0);
    });

    it("answers 403 when a user asks for another user's exact inbox topic", async () => {
      expectRefused(await getEvents(t.url, q('users/bob/inbox'), alice), 403, 'insufficient_scope');
    });

    // Raw query strings, as an attacker would type them: each names bob's inbox (or something that
    // is not a topic at all) in a spelling that must not slip through as alice's or as bob's.
    const spellings: Array<[string, string, number, string]> = [
      ['a dot-dot path into bob’s inbox', 'users/bob/../alice/x', 400, 'invalid_selector'],
      ['a dot-dot path out of alice’s inbox', 'users/alice/../bob/inbox', 400, 'invalid_selector'],
      ['a single-dot segment', 'users/alice/./inbox', 400, 'invalid_selector'],
      ['percent-encoded slashes (decoded once by the query parser)', 'users%2Fbob%2Finbox', 403, 'insufficient_scope'],
      ['a double-encoded slash between segments', 'users%252Fbob', 400, 'invalid_selector'],
      ['a double-encoded slash inside a segment', 'users/bob%252Fx', 400, 'invalid_selector'],
      ['a backslash separator', 'users%5Cbob%5Cinbox', 400, 'invalid_selector'],
      ['a different case of another name', 'users/Bob/**', 403, 'insufficient_scope'],
      ['a different case of the own name', 'users/Alice/**', 403, 'insufficient_scope'],
      ['a Greek omicron look-alike', encodeURIComponent('users/bοb/**'), 400, 'invalid_selector'],
      ['a Cyrillic look-alike of the own name', encodeURIComponent('users/аlice/**'), 400, 'invalid_selector'],
      ['a zero-width space in the own name', encodeURIComponent('users/al\u200bice/**'), 400, 'invalid_selector'],
      ['a NUL byte', 'users/alice/inbox%00', 400, 'invalid_selector'],
      ['a CR', 'users/alice/inbox%0D', 400, 'invalid_selector'],
      ['an LF that would forge an SSE field', 'users/alice/inbox%0Aevent:%20reset', 400, 'invalid_selector'],
      ['a CRLF', 'users/alice/inbox%0D%0A', 400, 'invalid_selector'],
      ['a space', 'users/alice/in%20box', 400, 'invalid_selector'],
      ['a plus (a space once decoded)', 'users/alice/in+box', 400, 'invalid_selector'],
      ['an empty segment', 'users//alice/inbox', 400, 'invalid_selector'],
      ['a trailing slash', 'users/alice/', 400, 'invalid_selector'],
      ['`**` before the last segment', 'users/**/inbox', 400, 'invalid_selector'],
      ['an empty topic', '', 400, 'invalid_selector'],
    ];
    for (const [what, raw, status, code] of spellings) {
      it(`answers ${status} ${code}, never a stream, when the selector is ${what}`, async () => {
        const res = await getEvents(t.url, `?topic=${raw}`, alice);
        expectRefused(res, status, code);
      });
    }

    it('answers 400 invalid_selector for a selector longer than 256 characters or with 17 segments', async () => {
      const long = `users/alice/${'a'.repeat(64)}/${'b'.repeat(64)}/${'c'.repeat(64)}/${'d'.repeat(64)}`;
      expect(long.length).to.be.greaterThan(256);
      expectRefused(await getEvents(t.url, q(long), alice), 400, 'invalid_selector');
      const deep = ['users', 'alice', ...Array.from({ length: 15 }, (_, i) => `s${i}`)].join('/');
      expectRefused(await getEvents(t.url, q(deep), alice), 400, 'invalid_selector');
    });

    for (const selector of ['users/*/inbox', 'users/*/**', 'users/**', '*/alice/inbox', '**', '*']) {
      it(`answers 403 insufficient_scope when a user asks for the wildcard ${selector}`, async () => {
        expectRefused(await getEvents(t.url, q(selector), alice), 403, 'insufficient_scope');
      });
    }

    it('refuses the whole request with 403 when one of several selectors is forbidden', async () => {
      const res = await getEvents(t.url, q('users/alice/**', 'public/news', 'users/bob/inbox'), alice);
      expectRefused(res, 403, 'insufficient_scope');
      expect(t.server.registry.countFor('alice')).to.equal(0);
    });

    it('answers 400 invalid_request when no topic is given', async () => {
      const res = await getEvents(t.url, '', alice);
      expectRefused(res, 400, 'invalid_request');
      expect(res.body.field).to.equal('topic');
    });

    it('answers 400 invalid_request when 17 topics are given', async () => {
      const topics = Array.from({ length: 17 }, (_, i) => `public/t${i}`);
      const res = await getEvents(t.url, q(...topics), alice);
      expectRefused(res, 400, 'invalid_request');
      expect(res.body.field).to.equal('topic');
    });

    it('accepts 16 topics', async () => {
      const topics = Array.from({ length: 16 }, (_, i) => `public/t${i}`);
      const stream = open(q(...topics), alice);
      const connected = await stream.waitFor((e) => e.type === 'connected');
      expect(JSON.parse(connected.data).topics).to.have.length(16);
    });

    it('answers 406 not_acceptable when the client accepts only application/json', async () => {
      const res = await getEvents(t.url, q('users/alice/**'), alice, { accept: 'application/json' });
      expectRefused(res, 406, 'not_acceptable');
    });

    it('answers 400 invalid_request when lastEventId is given twice', async () => {
      const res = await getEvents(t.url, `${q('users/alice/**')}&lastEventId=a&lastEventId=b`, alice);
      expectRefused(res, 400, 'invalid_request');
      expect(res.body.field).to.equal('lastEventId');
    });

    it('answers 401 with a Bearer challenge when no token is sent', async () => {
      const res = await getEvents(t.url, q('public/**'), undefined);
      expectRefused(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).to.match(/^Bearer realm="notify"/);
    });

    it('answers 401 invalid_token when the token is not a valid JWT', async () => {
      const res = await getEvents(t.url, q('public/**'), `${alice.slice(0, -4)}AAAA`);
      expectRefused(res, 401, 'invalid_token');
      expect(res.headers['www-authenticate']).to.contain('error="invalid_token"');
    });

    it('answers 400 when the token is passed in the query string instead of a header', async () => {
      const res = await getEvents(t.url, `${q('public/**')}&access_token=${alice}`, undefined);
      expectRefused(res, 400, 'invalid_request');
    });
  });

  describe('delivery', () => {
    it('never delivers an event on a topic the selectors do not cover', async () => {
      const aliceStream = open(q('users/alice/**'), alice);
      const bobStream = open(q('users/bob/**'), bob);
      await aliceStream.waitFor((e) => e.type === 'connected');
      await bobStream.waitFor((e) => e.type === 'connected');
      await publish(t.url, newsroom, { topics: ['users/bob/inbox'], data: 'for bob' });
      await publish(t.url, newsroom, { topics: ['users/alice/inbox'], data: 'for alice' });
      await publish(t.url, newsroom, { topics: ['public/news'], data: 'public' });
      await publish(t.url, newsroom, { topics: ['users/alice-not/inbox'], data: 'a look-alike inbox' });
      await publish(t.url, newsroom, { topics: ['users/bob/alice/inbox'], data: 'alice under bob' });
      await publish(t.url, newsroom, { topics: ['users/bob/inbox'], data: 'end' });
      await bobStream.waitFor((e) => e.data === '"end"');
      await publish(t.url, newsroom, { topics: ['users/alice/inbox'], data: 'end' });
      await aliceStream.waitFor((e) => e.data === '"end"');
      expect(publishedEvents(aliceStream).map((e) => JSON.parse(e.data))).to.deep.equal(['for alice', 'end']);
      expect(publishedEvents(bobStream).map((e) => JSON.parse(e.data))).to.deep.equal(['for bob', 'alice under bob', 'end']);
    });

    it('delivers an event published to two topics that both match one subscriber exactly once', async () => {
      const stream = open(q('users/alice/**', 'public/**'), alice);
      await stream.waitFor((e) => e.type === 'connected');
      const id = await publish(t.url, newsroom, { topics: ['users/alice/inbox', 'public/news'], data: 'both' });
      await publish(t.url, newsroom, { topics: ['public/news'], data: 'after' });
      await stream.waitFor((e) => e.data === '"after"');
      const both = publishedEvents(stream).filter((e) => e.data === '"both"');
      expect(both).to.have.length(1);
      expect(both[0]!.id).to.equal(id);
    });

    it('names the topic of every delivered event, and of an event on two topics only the first the stream subscribes to', async () => {
      const both = open(q('public/**', 'users/alice/**'), alice);
      const inboxOnly = open(q('users/alice/**'), alice);
      await Promise.all([both, inboxOnly].map((stream) => stream.waitFor((e) => e.type === 'connected')));
      const one = await publish(t.url, newsroom, { topics: ['public/news'], data: 'one' });
      const two = await publish(t.url, newsroom, { topics: ['users/alice/inbox', 'public/news'], data: 'two' });
      const bobs = await publish(t.url, newsroom, { topics: ['users/bob/inbox', 'users/alice/inbox'], data: 'shared' });
      await Promise.all([both, inboxOnly].map((stream) => stream.waitFor((e) => e.id === bobs)));
      const seen = (stream: StreamClient) => publishedEvents(stream).map((e) => [e.id, e.topic, e.data]);
      expect(seen(both)).to.deep.equal([
        [one, 'public/news', '"one"'],
        // First in publish order, whatever the order of the stream's selectors.
        [two, 'users/alice/inbox', '"two"'],
        [bobs, 'users/alice/inbox', '"shared"'],
      ]);
      // Never a topic the stream does not subscribe to (bob's inbox beside alice's).
      expect(seen(inboxOnly)).to.deep.equal([
        [two, 'users/alice/inbox', '"two"'],
        [bobs, 'users/alice/inbox', '"shared"'],
      ]);
      // Replayed events name their topic the same way.
      const resumed = open(q('public/**', 'users/alice/**'), alice, { headers: { 'Last-Event-ID': one } });
      await resumed.waitFor((e) => e.id === bobs);
      expect(seen(resumed)).to.deep.equal(seen(both).slice(1));
    });

    it('delivers an event once when overlapping selectors of one stream both match its topic', async () => {
      const stream = open(q('users/alice/**', 'users/alice/inbox', 'users/alice/*'), alice);
      await stream.waitFor((e) => e.type === 'connected');
      await publish(t.url, newsroom, { topics: ['users/alice/inbox'], data: 'overlap' });
      await publish(t.url, newsroom, { topics: ['users/alice/x/y'], data: 'after' });
      await stream.waitFor((e) => e.data === '"after"');
      expect(publishedEvents(stream).map((e) => e.data)).to.deep.equal(['"overlap"', '"after"']);
    });

    it('sends a stream with the event-stream headers that keep proxies from caching or buffering it', async () => {
      const raw = await openRawStream(`${t.url}/events${q('users/alice/**')}`, alice);
      try {
        expect(raw.response.status).to.equal(200);
        expect(raw.response.headers.get('content-type')).to.match(/^text\/event-stream/);
        expect(raw.response.headers.get('cache-control')).to.contain('no-cache');
        expect(raw.response.headers.get('cache-control')).to.contain('no-transform');
        expect(raw.response.headers.get('x-accel-buffering')).to.equal('no');
        expect(raw.response.headers.get('content-length')).to.equal(null);
      } finally {
        raw.close();
      }
    });

    it('starts the stream with retry: and then the connected event, on the wire', async () => {
      const raw = await openRawStream(`${t.url}/events${q('users/alice/**')}`, alice);
      try {
        const text = await raw.waitForText((s) => s.includes('\n\n'));
        const first = text.slice(0, text.indexOf('\n\n'));
        const lines = first.split('\n');
        expect(lines[0]).to.equal(`retry: ${t.config.streams.retryMs}`);
        expect(lines[1]).to.equal('event: connected');
        expect(lines[2]).to.match(/^data: \{/);
        expect(lines).to.have.length(3);
      } finally {
        raw.close();
      }
    });
  });

  describe('limits', () => {
    let limited: TestServer;
    let carol: string;
    let publisher: string;
    before(async () => {
      limited = await startServer({ MAX_STREAMS_PER_USER: '2' });
      await limited.addAccount('carol', ['user']);
      await limited.addAccount('dave', ['user']);
      await limited.addAccount('newsroom', ['publisher']);
      carol = (await limited.login('carol')).access_token;
      publisher = (await limited.login('newsroom')).access_token;
    });
    after(() => limited.close());

    it('answers 429 too_many_streams to the third stream of one user while the first two keep receiving events', async () => {
      const first = openStream(`${limited.url}/events${q('users/carol/**')}`, carol);
      const second = openStream(`${limited.url}/events${q('public/**', 'users/carol/inbox')}`, carol);
      streams.push(first, second);
      await first.waitFor((e) => e.type === 'connected');
      await second.waitFor((e) => e.type === 'connected');

      const third = await getEvents(limited.url, q('public/**'), carol);
      expect(third.status).to.equal(429);
      expect(third.body.error).to.equal('too_many_streams');
      expect(Number(third.headers['retry-after'])).to.be.greaterThan(0);
      expectResponseMatchesSpec(third, 'get', '/events');

      // Another account is not affected by carol's limit.
      const dave = (await limited.login('dave')).access_token;
      const daveStream = openStream(`${limited.url}/events${q('users/dave/**')}`, dave);
      streams.push(daveStream);
      await daveStream.waitFor((e) => e.type === 'connected');

      const id = await publish(limited.url, publisher, { topics: ['users/carol/inbox'], data: 'still here' });
      const a = await first.waitFor((e) => e.data === '"still here"');
      const b = await second.waitFor((e) => e.data === '"still here"');
      expect(a.id).to.equal(id);
      expect(b.id).to.equal(id);
      expect(limited.server.registry.countFor('carol')).to.equal(2);
    });

    it('admits a new stream once one of the user’s streams has closed', async () => {
      const first = openStream(`${limited.url}/events${q('users/carol/**')}`, carol);
      const second = openStream(`${limited.url}/events${q('users/carol/**')}`, carol);
      streams.push(first, second);
      await first.waitFor((e) => e.type === 'connected');
      await second.waitFor((e) => e.type === 'connected');
      first.close();
      await waitUntil(() => limited.server.registry.countFor('carol') === 1, 1000, 'the closed stream to be released');
      const third = openStream(`${limited.url}/events${q('users/carol/**')}`, carol);
      streams.push(third);
      await third.waitFor((e) => e.type === 'connected');
    });
  });

  describe('heartbeat', () => {
    let beating: TestServer;
    let token: string;
    before(async () => {
      beating = await startServer({ HEARTBEAT_INTERVAL: '1' });
      await beating.addAccount('alice', ['user']);
      token = (await beating.login('alice')).access_token;
    });
    after(() => beating.close());

    it('sends a `:` comment line within 2.5 s after retry: and the connected event', async () => {
      const raw = await openRawStream(`${beating.url}/events${q('users/alice/**')}`, token);
      const started = Date.now();
      try {
        const text = await raw.waitForText((s) => /(^|\n):[^\n]*\n/.test(s), 2500);
        expect(Date.now() - started).to.be.lessThan(2500);
        expect(text.startsWith('retry: ')).to.equal(true);
        const [retryLine, eventLine, dataLine] = text.split('\n');
        expect(retryLine).to.match(/^retry: \d+$/);
        expect(eventLine).to.equal('event: connected');
        const connected = JSON.parse(dataLine!.slice('data: '.length));
        expectSseEventMatchesSpec('connected', connected);
        expect(connected.heartbeatMs).to.equal(1000);
        // The heartbeat comes after the connected event, as one comment line with no blank line
        // after it (a blank line would dispatch an empty event in some clients).
        expect(text.indexOf('\n:')).to.be.greaterThan(text.indexOf('event: connected'));
        expect(text).to.match(/\n\n:\n$/);
        expect(text).not.to.match(/(^|\n):[^\n]*\n\n/);
      } finally {
        raw.close();
      }
    });

    it('announces heartbeatMs 0 on a server whose heartbeat is off', async () => {
      const quiet = await startServer({ HEARTBEAT_INTERVAL: '0' });
      try {
        await quiet.addAccount('alice', ['user']);
        const quietToken = (await quiet.login('alice')).access_token;
        const stream = openStream(`${quiet.url}/events${q('users/alice/**')}`, quietToken);
        streams.push(stream);
        const connected = await stream.waitFor((e) => e.type === 'connected');
        expect(JSON.parse(connected.data).heartbeatMs).to.equal(0);
        stream.close();
      } finally {
        await quiet.close();
      }
    });
  });

  describe('resources', () => {
    let own: TestServer;
    let token: string;
    let publisher: string;
    const fanout = () => (own.server.bus as any).fanout as { subscriptionCount: number; empty: boolean };
    before(async () => {
      own = await startServer({ STREAM_BUFFER_BYTES: '65536' });
      await own.addAccount('alice', ['user']);
      await own.addAccount('newsroom', ['publisher']);
      token = (await own.login('alice')).access_token;
      publisher = (await own.login('newsroom')).access_token;
    });
    after(() => own.close());

    it('releases the session and the bus subscription within 1 s after the client closes', async () => {
      const stream = openStream(`${own.url}/events${q('users/alice/**', 'public/news', 'public/*')}`, token);
      streams.push(stream);
      await stream.waitFor((e) => e.type === 'connected');
      expect(own.server.registry.size).to.equal(1);
      expect(fanout().subscriptionCount).to.equal(1);
      stream.close();
      await waitUntil(() => own.server.registry.size === 0, 1000, 'registry.size to return to 0');
      await waitUntil(() => fanout().subscriptionCount === 0, 1000, 'the fan-out subscription to go');
      expect(own.server.registry.countFor('alice')).to.equal(0);
      expect(fanout().empty).to.equal(true);
    });

    it('releases the session when a raw connection is dropped without a clean close', async () => {
      const tcp = await openTcpStream(own.url, `/events${q('users/alice/**')}`, token);
      await tcp.readUntil('event: connected');
      expect(own.server.registry.size).to.equal(1);
      tcp.socket.destroy();
      await waitUntil(() => own.server.registry.size === 0, 1000, 'registry.size to return to 0');
      expect(fanout().subscriptionCount).to.equal(0);
    });

    it('cuts a subscriber that stops reading while a normal subscriber receives all 400 events in order', async function () {
      this.timeout(30_000);
      const topic = 'public/firehose';
      const normal = openStream(`${own.url}/events${q(topic)}`, token, { types: ['bulk'] });
      streams.push(normal);
      await normal.waitFor((e) => e.type === 'connected');

      const slow = await openTcpStream(own.url, `/events${q(topic)}`, token);
      const head = await slow.readUntil('event: connected');
      expect(head.startsWith('HTTP/1.1 200')).to.equal(true);
      const slowId = /"connectionId":"([^"]+)"/.exec(head)?.[1];
      expect(slowId).to.be.a('string');
      slow.socket.pause();
      expect(own.server.registry.size).to.equal(2);

      // ~400 events of 8 KB, as asked; the loopback socket buffers of the kernel (up to 4 MB of
      // send buffer here) come on top of STREAM_BUFFER_BYTES, so keep going until the server cuts
      // the stalled stream, within a bound.
      const filler = 'x'.repeat(8 * 1024);
      const atLeast = 400;
      const atMost = 1500;
      let count = 0;
      while (count < atLeast || (own.server.registry.get(slowId!) !== undefined && count < atMost)) {
        const res = await postJson(`${own.url}/events`, { topics: [topic], type: 'bulk', data: { i: count, filler } }, publisher);
        expect(res.status).to.equal(201);
        await res.arrayBuffer();
        count++;
      }
      // The server cut the stalled stream: its session is gone, the normal one stays.
      await waitUntil(() => own.server.registry.get(slowId!) === undefined, 2000, 'the slow session to be cut');
      expect(own.server.registry.size).to.equal(1);
      expect(fanout().subscriptionCount).to.equal(1);

      await normal.waitFor((e) => e.type === 'bulk' && JSON.parse(e.data).i === count - 1, 10_000);
      const seen = normal.events.filter((e) => e.type === 'bulk').map((e) => JSON.parse(e.data).i as number);
      expect(seen).to.deep.equal(Array.from({ length: count }, (_, i) => i));
      expect(normal.events.filter((e) => e.type === 'connected')).to.have.length(1);

      // Once the stalled client reads again, it finds the connection closed by the server.
      slow.socket.on('data', () => undefined);
      slow.socket.resume();
      await Promise.race([
        slow.closed,
        delay(3000).then(() => {
          throw new Error('the server did not close the slow connection');
        }),
      ]);
    });
  });

  describe('graceful shutdown', () => {
    it('sends closed with reason shutdown to an open stream, ends it, and close() resolves', async () => {
      const own = await startServer({ SHUTDOWN_GRACE: '5' });
      try {
        await own.addAccount('alice', ['user']);
        const token = (await own.login('alice')).access_token;
        const stream = openStream(`${own.url}/events${q('users/alice/**')}`, token);
        streams.push(stream);
        await stream.waitFor((e) => e.type === 'connected');

        const started = Date.now();
        const closing = own.server.close();
        const closed = await stream.waitFor((e) => e.type === 'closed', 2000);
        const data = JSON.parse(closed.data);
        expectSseEventMatchesSpec('closed', data);
        expect(data).to.deep.equal({ reason: 'shutdown' });
        await stream.waitForError(2000);
        stream.close();
        await closing;
        // The only stream ended at once, so shutdown does not wait out the grace period.
        expect(Date.now() - started).to.be.lessThan(4000);
        expect(own.server.registry.size).to.equal(0);
        expect(stream.events.at(-1)!.type).to.equal('closed');
      } finally {
        await own.close();
      }
    });
  });
});
