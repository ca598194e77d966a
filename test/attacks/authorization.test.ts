import { expect } from 'chai';
import { openStream, postJson, startServer, type StreamClient, type TestServer } from '../helpers/server.js';
import { getEvents, publish, publishedEvents, readJson } from '../helpers/streams.js';
import { expectError } from './attack-kit.js';

/**
 * Authorisation from the token's claims only (OWASP ASVS V4.1.2, V4.2.1; RFC 6750 §3.1
 * insufficient_scope): other spellings of a topic, wildcards, identity headers and replay never
 * reach what the token does not grant. Topic names have one spelling (RFC 3986 §2.3 unreserved
 * characters), so every trick below is either the same topic (403) or no topic at all (400).
 */
describe('attacks: metrics token', () => {
  let m: TestServer;
  const token = 'm'.repeat(16) + 'e'.repeat(16) + 't'.repeat(8);
  before(async () => {
    m = await startServer({ METRICS: 'token', METRICS_TOKEN: token });
    await m.addAccount('root', ['admin']);
  });
  after(() => m.close());

  it('answers 401 invalid_token to an admin access token, a prefix of the metrics token and the token with one character changed', async () => {
    const admin = (await m.login('root')).access_token;
    for (const wrong of [admin, token.slice(0, -1), `${token.slice(0, -1)}x`, `${token}x`]) {
      const res = await readJson(await fetch(`${m.url}/metrics`, { headers: { authorization: `Bearer ${wrong}` } }));
      expectError(res, 401, 'invalid_token');
    }
    expect((await fetch(`${m.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).to.equal(200);
  });
});

describe('attacks: authorisation', () => {
  let t: TestServer;
  let alice: string;
  let newsroom: string;
  const streams: StreamClient[] = [];

  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
    await t.addAccount('bob', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    alice = (await t.login('alice')).access_token;
    newsroom = (await t.login('newsroom')).access_token;
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  after(() => t.close());

  /** The raw query string is sent as is: the test, not fetch, decides the encoding. */
  const subscribeRaw = (rawQuery: string, token = alice, headers: Record<string, string> = {}) =>
    getEvents(t.url, `?${rawQuery}`, token, headers);

  it('answers 403 insufficient_scope when a subscribe-only user publishes, and publishes nothing', async () => {
    const watcher = openStream(`${t.url}/events?topic=public/news`, newsroom);
    streams.push(watcher);
    await watcher.waitFor((e) => e.type === 'connected');
    const res = await readJson(await postJson(`${t.url}/events`, { topics: ['public/news'], data: 'x' }, alice));
    expectError(res, 403, 'insufficient_scope');
    expect(res.headers['www-authenticate']).to.match(/^Bearer realm="notify", error="insufficient_scope"/);
    await new Promise((r) => setTimeout(r, 200));
    expect(publishedEvents(watcher)).to.deep.equal([]);
  });

  const spellings: Record<string, [string, number, string]> = {
    'dot-dot segments': ['topic=users/alice/../bob/inbox', 400, 'invalid_selector'],
    '%2F for the slashes': ['topic=users%2Fbob%2Finbox', 403, 'insufficient_scope'],
    'double-encoded %252F': ['topic=users%252Fbob%252Finbox', 400, 'invalid_selector'],
    backslashes: ['topic=users%5Cbob%5Cinbox', 400, 'invalid_selector'],
    'a Cyrillic look-alike of alice': ['topic=users/%D0%B0lice/inbox', 400, 'invalid_selector'],
    'an NFD spelling (e + combining acute)': ['topic=users/alice/cafe%CC%81', 400, 'invalid_selector'],
    'a zero-width space': ['topic=users/ali%E2%80%8Bce/inbox', 400, 'invalid_selector'],
    'a NUL byte': ['topic=users/alice%00/../bob/inbox', 400, 'invalid_selector'],
    'CR LF': ['topic=users/alice%0D%0A/inbox', 400, 'invalid_selector'],
    'a fullwidth solidus': ['topic=users%EF%BC%8Fbob%EF%BC%8Finbox', 400, 'invalid_selector'],
    'upper case BOB (another account, not a spelling of bob)': ['topic=users/BOB/inbox', 403, 'insufficient_scope'],
    'a trailing slash': ['topic=users/bob/inbox/', 400, 'invalid_selector'],
  };
  for (const [what, [query, status, code]] of Object.entries(spellings)) {
    it(`never opens bob's inbox to alice when it is spelt with ${what} (${status} ${code})`, async () => {
      expectError(await subscribeRaw(query), status, code);
    });
  }

  for (const selector of ['users/*/inbox', 'users/**', '**', '*/bob/inbox']) {
    it(`answers 403 to the wildcard ${selector}: a wildcard grants nothing the token does not`, async () => {
      expectError(await subscribeRaw(`topic=${encodeURIComponent(selector)}`), 403, 'insufficient_scope');
    });
  }

  it('refuses a mixed request whole when one of its selectors is forbidden', async () => {
    expectError(await subscribeRaw('topic=public/news&topic=users/alice/inbox&topic=users/bob/inbox'), 403, 'insufficient_scope');
    expect(t.server.registry.countFor('alice')).to.equal(0);
  });

  it('ignores identity headers (X-User, X-Forwarded-User, X-Remote-User) that name someone else', async () => {
    const headers = { 'x-user': 'bob', 'x-forwarded-user': 'bob', 'x-remote-user': 'admin', 'x-subject': 'bob' };
    expectError(await subscribeRaw('topic=users/bob/inbox', alice, headers), 403, 'insufficient_scope');
  });

  it('refuses a publish whose body claims another publisher or subject (unknown fields), and publishes nothing', async () => {
    const res = await readJson(
      await postJson(`${t.url}/events`, { topics: ['public/news'], data: 1, publisher: 'admin', sub: 'admin' }, newsroom),
    );
    expectError(res, 400, 'invalid_request');
  });

  it('refuses GET /metrics while metrics are off (403 metrics_disabled), even to an admin token', async () => {
    await t.addAccount('root', ['admin']);
    const admin = (await t.login('root')).access_token;
    const res = await readJson(await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } }));
    expectError(res, 403, 'metrics_disabled');
  });

  it("never replays bob's events to alice through Last-Event-ID or ?lastEventId=", async () => {
    const first = await publish(t.url, newsroom, { topics: ['public/news'], type: 'tick', data: { n: 0 } });
    await publish(t.url, newsroom, { topics: ['users/bob/inbox'], type: 'tick', data: { secret: true } });
    await publish(t.url, newsroom, { topics: ['users/bob/inbox', 'public/other'], type: 'tick', data: { secret: 'both' } });
    for (const options of [{ headers: { 'last-event-id': first } }, {}]) {
      const query = options.headers === undefined ? `&lastEventId=${first}` : '';
      const stream = openStream(`${t.url}/events?topic=users/alice/**${query}`, alice, { types: ['tick'], ...options });
      streams.push(stream);
      await stream.waitFor((e) => e.type === 'connected');
      await new Promise((r) => setTimeout(r, 200));
      expect(publishedEvents(stream)).to.deep.equal([]);
    }
  });
});
