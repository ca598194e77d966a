import { expect } from 'chai';
import { EventSource } from 'eventsource';
import {
  NotifyClient,
  type NotifyEvent,
  type EventSourceConstructor,
  NotifyClientError,
  SignedOutError,
  StreamStoppedError,
} from '../../src/client/index.js';
import { delay, startServer, type TestServer } from '../helpers/server.js';
import { publish, waitUntil } from '../helpers/streams.js';

const ES = EventSource as unknown as EventSourceConstructor;

/** A fetch that counts requests by path. */
function countingFetch() {
  const counts = new Map<string, number>();
  const fn: typeof fetch = (input, init) => {
    const path = new URL(String(input instanceof Request ? input.url : input)).pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    return fetch(input, init);
  };
  return { fn, count: (path: string) => counts.get(path) ?? 0 };
}

describe('NotifyClient (Node, bearer mode, real server)', () => {
  let t: TestServer;
  let newsroom: NotifyClient;
  const clients: NotifyClient[] = [];
  const client = (options: ConstructorParameters<typeof NotifyClient>[0] = {}) => {
    const c = new NotifyClient({ baseUrl: t.url, mode: 'bearer', EventSource: ES, backoff: { initialMs: 50, maxMs: 200 }, ...options });
    clients.push(c);
    return c;
  };

  before(async () => {
    t = await startServer({}, (c) => ({
      ...c,
      jwt: { ...c.jwt, accessTokenTtlMs: 4000, clockToleranceMs: 0 },
      streams: { ...c.streams, expiryWarningMs: 2000 },
      history: { ...c.history, size: 5 },
    }));
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    await t.addAccount('svc', ['publisher'], { kind: 'service', password: 'service-secret' });
  });
  beforeEach(async () => {
    newsroom = client();
    await newsroom.login('newsroom', 'correct horse battery staple');
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(() => t.close());

  it('shares one refresh between concurrent callers (single-flight)', async () => {
    const counter = countingFetch();
    const alice = client({ fetch: counter.fn });
    await alice.login('alice', 'correct horse battery staple');
    const sessions = await Promise.all(Array.from({ length: 10 }, () => alice.refresh()));
    expect(counter.count('/auth/token')).to.equal(1);
    expect(new Set(sessions).size).to.equal(1);
    expect(sessions[0]!.subject).to.equal('alice');
    // The refreshed sign-in still works: the refresh token was rotated, not reused.
    await alice.refresh();
    expect(counter.count('/auth/token')).to.equal(2);
  });

  it('signs out with a SignedOutError when the refresh is refused, instead of looping', async () => {
    const alice = client();
    await alice.login('alice', 'correct horse battery staple');
    const states: boolean[] = [];
    alice.onAuthChange((state) => states.push(state.signedIn));
    await t.server.users.setPasswordHash('alice', (await t.server.users.get('alice'))!.passwordHash); // revokes the sign-in
    await delay(50);
    const error = await alice.refresh().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(SignedOutError);
    expect((error as SignedOutError).code).to.equal('signed_out');
    expect(alice.session).to.equal(undefined);
    expect(states).to.deep.equal([false]);
  });

  it('publishes with an idempotency key: a retry is answered with the original event', async () => {
    const first = await newsroom.publish(['public/news'], { n: 1 }, { idempotencyKey: 'same-key-1' });
    const again = await newsroom.publish(['public/news'], { n: 1 }, { idempotencyKey: 'same-key-1' });
    expect(first.duplicate).to.equal(false);
    expect(again).to.deep.equal({ ...first, duplicate: true });
    const refused = await newsroom.publish(['users/alice/private', 'nope/x'], 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(NotifyClientError);
    expect((refused as NotifyClientError).code).to.equal('insufficient_scope');
  });

  it('gets service tokens with client credentials and re-authenticates when they expire', async () => {
    const svc = client({ clientCredentials: { id: 'svc', secret: 'service-secret' } });
    const session = await svc.restore();
    expect(session?.subject).to.equal('svc');
    await delay(4200); // past the 4 s lifetime: the client has fetched a new token by itself
    expect(svc.session!.expiresAt).to.be.greaterThan(Date.now());
    expect((await svc.publish(['public/news'], { from: 'svc' })).duplicate).to.equal(false);
  });

  it('resumes after a killed connection and across token expiry, renewing in-band, with no loss or duplicate', async function () {
    this.timeout(20_000);
    const alice = client();
    await alice.login('alice', 'correct horse battery staple');
    const received: number[] = [];
    let renewed = 0;
    let connects = 0;
    alice.subscribe<{ n: number }>(['public/**'], {
      event: (event: NotifyEvent<{ n: number }>) => received.push(event.data.n),
      renewed: () => renewed++,
      connected: () => connects++,
    });
    await waitUntil(() => connects === 1, 3000, 'connected');
    let n = 0;
    const send = async (count: number) => {
      for (let i = 0; i < count; i++) await newsroom.publish(['public/tick'], { n: ++n });
    };
    await send(3);
    await waitUntil(() => received.length === 3, 3000, 'first events');
    // Kill every connection; publish while the client is away: it resumes with lastEventId.
    t.server.http.closeAllConnections();
    await send(3);
    await waitUntil(() => connects === 2, 5000, 'reconnect');
    await waitUntil(() => received.length === 6, 3000, 'replayed events');
    // Outlive two token lifetimes: renewals happen in-band, on the same connection.
    const until = Date.now() + 7000;
    while (Date.now() < until) {
      await send(1);
      await delay(250);
    }
    await waitUntil(() => received.length === n, 3000, 'all events');
    expect(received).to.deep.equal(Array.from({ length: n }, (_, i) => i + 1));
    expect(renewed).to.be.at.least(1);
    expect(connects).to.equal(2);
  });

  it('reconnects with a fresh token when renewal is off, with no loss or duplicate', async function () {
    this.timeout(15_000);
    const alice = client();
    await alice.login('alice', 'correct horse battery staple');
    const received: number[] = [];
    let connects = 0;
    alice.subscribe<{ n: number }>(['public/**'], { event: (e) => received.push(e.data.n), connected: () => connects++ }, { renew: false });
    await waitUntil(() => connects === 1, 3000, 'connected');
    let n = 0;
    const until = Date.now() + 6000;
    while (Date.now() < until) {
      await newsroom.publish(['public/tick'], { n: ++n });
      await delay(200);
    }
    await waitUntil(() => received.length === n, 3000, 'all events');
    expect(received).to.deep.equal(Array.from({ length: n }, (_, i) => i + 1));
    expect(connects).to.be.at.least(2);
  });

  it('calls reset when history cannot cover the gap, then goes on live', async () => {
    const alice = client();
    await alice.login('alice', 'correct horse battery staple');
    const old = await publish(t.url, (await t.login('newsroom')).access_token, { topics: ['public/a'], data: 0 });
    for (let i = 0; i < 7; i++) await newsroom.publish(['public/a'], i); // history holds 5 per topic
    const resets: string[] = [];
    const received: unknown[] = [];
    let connects = 0;
    alice.subscribe(
      ['public/a'],
      { reset: (info) => resets.push(info.reason), event: (e) => received.push(e.data), connected: () => connects++ },
      { lastEventId: old },
    );
    await waitUntil(() => resets.length === 1, 3000, 'reset');
    expect(resets).to.deep.equal(['history_exhausted']);
    await waitUntil(() => connects === 1, 3000, 'connected');
    await newsroom.publish(['public/a'], 'live');
    await waitUntil(() => received.length === 1, 3000, 'live event');
    expect(received).to.deep.equal(['live']);
  });

  it('stops with a typed error on 403, and on 401 once a refresh cannot help', async () => {
    const alice = client();
    await alice.login('alice', 'correct horse battery staple');
    const stopped: NotifyClientError[] = [];
    alice.subscribe(['users/bob/**'], { stop: (error) => stopped.push(error) });
    await waitUntil(() => stopped.length === 1, 3000, 'stop');
    expect(stopped[0]).to.be.instanceOf(StreamStoppedError);
    expect(stopped[0]!.code).to.equal('forbidden');
    expect(stopped[0]!.status).to.equal(403);

    const fixed = client({ accessToken: 'not.a.token' });
    fixed.subscribe(['public/**'], { stop: (error) => stopped.push(error) });
    await waitUntil(() => stopped.length === 2, 3000, 'stop');
    expect(stopped[1]!.code).to.equal('unauthorized');
    expect(stopped[1]!.status).to.equal(401);
  });
});
