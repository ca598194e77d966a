import { expect } from 'chai';
import { resolveGrants } from '../../src/auth/grants.js';
import { expectResponseMatchesSpec, expectSseEventMatchesSpec } from '../helpers/openapi.js';
import { delay, openStream, postJson, startServer, type ReceivedEvent, type StreamClient, type TestServer } from '../helpers/server.js';
import { getEvents, publish, publishedEvents, readJson, waitUntil } from '../helpers/streams.js';

const q = (...topics: string[]) => `?${topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')}`;

/** The claims of a JWT, unverified (the test only reads its own server's tokens). */
function claimsOf(token: string): { iat: number; exp: number; sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

/** Waits until the wall clock reaches `epochMs`. */
async function until(epochMs: number): Promise<void> {
  const wait = epochMs - Date.now();
  if (wait > 0) await delay(wait);
}

async function renew(baseUrl: string, renewUrl: string, token: string | undefined) {
  const res = await fetch(`${baseUrl}${renewUrl}`, {
    method: 'POST',
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return readJson(res);
}

const data = (event: ReceivedEvent) => JSON.parse(event.data);
const ticks = (stream: StreamClient) => stream.events.filter((e) => e.type === 'tick').map((e) => data(e).n as number | string);

describe('stream lifetime: expiry, in-band renewal and revocation', () => {
  let t: TestServer;
  let newsroom: string;
  const streams: StreamClient[] = [];
  const open = (query: string, token: string | (() => string), options?: Parameters<typeof openStream>[2]) => {
    const stream = openStream(`${t.url}/events${query}`, token, options);
    streams.push(stream);
    return stream;
  };

  before(async () => {
    t = await startServer({}, (c) => ({
      ...c,
      jwt: { ...c.jwt, accessTokenTtlMs: 3000, clockToleranceMs: 0 },
      streams: { ...c.streams, expiryWarningMs: 2000 },
      roles: { ...c.roles, narrow: { publish: [], subscribe: ['public/**'], presence: [] } },
    }));
    await t.addAccount('alice', ['user']);
    await t.addAccount('bob', ['user']);
    await t.addAccount('carol', ['user']);
    await t.addAccount('erin', ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  beforeEach(async () => {
    // Publisher tokens live 3 s too: take a fresh one for every test.
    newsroom = (await t.login('newsroom')).access_token;
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  after(() => t.close());

  it('sends token-expiring, then closed with reason token_expired at expiry, then ends the stream, when the token is not renewed', async () => {
    const alice = (await t.login('alice')).access_token;
    const exp = claimsOf(alice).exp;
    const stream = open(q('users/alice/**'), alice);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));
    expect(connected.expiresAt).to.equal(new Date(exp * 1000).toISOString());

    const expiring = await stream.waitFor((e) => e.type === 'token-expiring', 4000);
    expect(Date.now()).to.be.lessThan(exp * 1000);
    expectSseEventMatchesSpec('token-expiring', data(expiring));
    expect(data(expiring)).to.deep.equal({ expiresAt: connected.expiresAt, renewUrl: connected.renewUrl });
    expect(expiring.id).to.equal('');

    const closed = await stream.waitFor((e) => e.type === 'closed', 4000);
    expect(Date.now()).to.be.at.least(exp * 1000 - 50);
    expectSseEventMatchesSpec('closed', data(closed));
    expect(data(closed)).to.deep.equal({ reason: 'token_expired' });
    await stream.waitForError(1000);
    expect(t.server.registry.countFor('alice')).to.equal(0);

    const lateId = await publish(t.url, (await t.login('newsroom')).access_token, { topics: ['users/alice/inbox'], data: 'too late' });
    await delay(300);
    expect(stream.events.map((e) => e.type)).to.deep.equal(['connected', 'token-expiring', 'closed']);
    expect(stream.events.some((e) => e.id === lateId)).to.equal(false);
  });

  it('renews in-band: token-renewed, and the same stream keeps delivering past the first token’s expiry without reconnecting', async () => {
    const first = (await t.login('alice')).access_token;
    const firstExp = claimsOf(first).exp;
    const stream = open(q('users/alice/**'), first);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));
    const expiring = data(await stream.waitFor((e) => e.type === 'token-expiring', 4000));
    expect(expiring.renewUrl).to.equal(`/events/connections/${connected.connectionId}/token`);

    // Sign in again late in the first token's life, so the new one outlives it by about 2 s.
    await until(firstExp * 1000 - 700);
    const second = (await t.login('alice')).access_token;
    expect(claimsOf(second).exp).to.be.greaterThan(firstExp);
    const res = await renew(t.url, expiring.renewUrl, second);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expectResponseMatchesSpec(res, 'post', '/events/connections/{connectionId}/token');
    expect(res.headers['cache-control']).to.equal('no-store');
    expect(res.body).to.deep.equal({
      connectionId: connected.connectionId,
      expiresAt: new Date(claimsOf(second).exp * 1000).toISOString(),
    });
    expect(Date.parse(res.body.expiresAt)).to.be.greaterThan(Date.parse(connected.expiresAt));

    const renewed = await stream.waitFor((e) => e.type === 'token-renewed', 1000);
    expectSseEventMatchesSpec('token-renewed', data(renewed));
    expect(data(renewed)).to.deep.equal({ expiresAt: res.body.expiresAt });

    await until(firstExp * 1000 + 300);
    const id = await publish(t.url, (await t.login('newsroom')).access_token, {
      topics: ['users/alice/inbox'],
      data: 'after the first expiry',
    });
    const received = await stream.waitFor((e) => e.id === id, 1000);
    expect(data(received)).to.equal('after the first expiry');
    expect(stream.events.filter((e) => e.type === 'connected')).to.have.length(1);
    expect(stream.events.filter((e) => e.type === 'closed')).to.have.length(0);
    expect(stream.source.readyState).to.equal(stream.source.OPEN);
    expect(t.server.registry.get(connected.connectionId)?.closed).to.equal(false);
  });

  it('renews in-band with an access token obtained from the refresh token', async () => {
    const tokens = await t.login('alice');
    const stream = open(q('users/alice/**'), tokens.access_token);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));
    await until((claimsOf(tokens.access_token).iat + 1) * 1000);
    const refreshed = await fetch(`${t.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
    });
    expect(refreshed.status).to.equal(200);
    const next = ((await refreshed.json()) as { access_token: string }).access_token;
    const res = await renew(t.url, connected.renewUrl, next);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.connectionId).to.equal(connected.connectionId);
    expect(Date.parse(res.body.expiresAt)).to.be.greaterThan(Date.parse(connected.expiresAt));
    await stream.waitFor((e) => e.type === 'token-renewed', 1000);
  });

  it('renews in-band with the notify_at cookie when the Origin is ours, and refuses the cookie from another Origin (csrf_rejected)', async () => {
    const alice = (await t.login('alice')).access_token;
    const stream = open(q('users/alice/**'), alice);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));
    await until((claimsOf(alice).iat + 1) * 1000);
    const fresh = (await t.login('alice')).access_token;
    const withCookie = (origin: string) =>
      fetch(`${t.url}${connected.renewUrl}`, { method: 'POST', headers: { cookie: `notify_at=${fresh}`, origin } }).then(readJson);

    const foreign = await withCookie('https://evil.example');
    expect(foreign.status).to.equal(403);
    expect(foreign.body.error).to.equal('csrf_rejected');
    expectResponseMatchesSpec(foreign, 'post', '/events/connections/{connectionId}/token');

    const ours = await withCookie(t.url);
    expect(ours.status, JSON.stringify(ours.body)).to.equal(200);
    expectResponseMatchesSpec(ours, 'post', '/events/connections/{connectionId}/token');
    expect(Date.parse(ours.body.expiresAt)).to.be.greaterThan(Date.parse(connected.expiresAt));
    await stream.waitFor((e) => e.type === 'token-renewed', 1000);
  });

  it("answers 404 connection_not_found, and leaves the stream alone, when another user's token renews the stream", async () => {
    const alice = (await t.login('alice')).access_token;
    const bob = (await t.login('bob')).access_token;
    const stream = open(q('users/alice/**'), alice);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));

    const res = await renew(t.url, connected.renewUrl, bob);
    expect(res.status).to.equal(404);
    expect(res.body.error).to.equal('connection_not_found');
    expectResponseMatchesSpec(res, 'post', '/events/connections/{connectionId}/token');

    // An unknown id answers exactly the same.
    const unknown = await renew(t.url, '/events/connections/AAAAAAAAAAAAAAAAAAAAAA/token', alice);
    expect(unknown.status).to.equal(404);
    expect(unknown.body).to.deep.equal(res.body);
    const malformed = await renew(t.url, `/events/connections/${'x'.repeat(65)}/token`, alice);
    expect(malformed.status).to.equal(404);
    expect(malformed.body.error).to.equal('connection_not_found');

    const id = await publish(t.url, newsroom, { topics: ['users/alice/inbox'], data: 'still open' });
    await stream.waitFor((e) => e.id === id, 1000);
    expect(stream.events.map((e) => e.type)).to.not.include.members(['closed', 'token-renewed']);
  });

  it('answers 401 to a renewal without a token', async () => {
    const alice = (await t.login('alice')).access_token;
    const stream = open(q('users/alice/**'), alice);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));
    const res = await renew(t.url, connected.renewUrl, undefined);
    expect(res.status).to.equal(401);
    expect(res.body.error).to.equal('unauthorized');
    expect(res.headers['www-authenticate']).to.match(/^Bearer realm="notify"/);
    expectResponseMatchesSpec(res, 'post', '/events/connections/{connectionId}/token');
  });

  it('answers 403 insufficient_scope and closes the stream with reason insufficient_scope when the renewing token no longer covers its topics', async () => {
    const alice = (await t.login('alice')).access_token;
    const stream = open(q('users/alice/**', 'public/news'), alice);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));
    // A token of the same subject whose grants come from the `narrow` role (subscribe public/** only).
    const narrow = await t.server.tokens.issueAccessToken({
      subject: 'alice',
      clientId: 'notify-web',
      grants: resolveGrants(t.config.roles, ['narrow'], 'alice'),
    });
    const res = await renew(t.url, connected.renewUrl, narrow.token);
    expect(res.status).to.equal(403);
    expect(res.body.error).to.equal('insufficient_scope');
    expect(res.headers['www-authenticate']).to.contain('error="insufficient_scope"');
    expectResponseMatchesSpec(res, 'post', '/events/connections/{connectionId}/token');

    const closed = await stream.waitFor((e) => e.type === 'closed', 1000);
    expectSseEventMatchesSpec('closed', data(closed));
    expect(data(closed)).to.deep.equal({ reason: 'insufficient_scope' });
    await stream.waitForError(1000);
    expect(t.server.registry.get(connected.connectionId)).to.equal(undefined);
  });

  it('closes the open stream with reason revoked when the account’s roles change, and a later renewal finds no stream', async () => {
    const before = (await t.login('carol')).access_token;
    const stream = open(q('users/carol/**'), before);
    const connected = data(await stream.waitFor((e) => e.type === 'connected'));
    await t.server.users.setRoles('carol', ['narrow']);
    const closed = await stream.waitFor((e) => e.type === 'closed', 1000);
    expect(data(closed)).to.deep.equal({ reason: 'revoked' });

    const after = (await t.login('carol')).access_token;
    // A token issued right after a revocation is stamped with the next second: wait for it.
    await until(claimsOf(after).iat * 1000 + 10);
    const res = await renew(t.url, connected.renewUrl, after);
    expect(res.status).to.equal(404);
    expect(res.body.error).to.equal('connection_not_found');
    const refused = await getEvents(t.url, q('users/carol/**'), after);
    expect(refused.status).to.equal(403);
    expect(refused.body.error).to.equal('insufficient_scope');
  });

  it('accepts a token issued right after a role change at once (CLOCK_TOLERANCE 0)', async () => {
    // Start early in a second, so the role change and the sign-in fall into the same second.
    await until(Math.ceil(Date.now() / 1000) * 1000 + 20);
    await t.server.users.setRoles('erin', ['user', 'narrow']);
    const fresh = (await t.login('erin')).access_token;
    expect(claimsOf(fresh).iat * 1000, 'the sign-in and the role change share a second').to.be.greaterThan(Date.now());
    const res = await getEvents(t.url, q('users/erin/**'), fresh);
    expect(res.status, `a token just issued by /auth/login was refused: ${JSON.stringify(res.body)}`).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/event-stream/);
  });

  it('answers 401 invalid_token, and opens no stream, when the token has expired', async () => {
    const alice = (await t.login('alice')).access_token;
    await until(claimsOf(alice).exp * 1000 + 50);
    const res = await getEvents(t.url, q('users/alice/**'), alice);
    expect(res.status).to.equal(401);
    expect(res.body.error).to.equal('invalid_token');
    expect(res.headers['content-type']).to.match(/^application\/json/);
    expect(res.headers['www-authenticate']).to.contain('error="invalid_token"');
    expectResponseMatchesSpec(res, 'get', '/events');
    expect(t.server.registry.countFor('alice')).to.equal(0);
  });
});

describe('a token past exp but within CLOCK_TOLERANCE (issue 11, stream details)', function () {
  this.timeout(15_000);
  let t: TestServer;

  before(async () => {
    // Tolerance (5 s) longer than the token's whole life (3 s): every token below is past `exp`
    // and still verifies.
    t = await startServer({}, (c) => ({ ...c, jwt: { ...c.jwt, accessTokenTtlMs: 3000, clockToleranceMs: 5000 } }));
    await t.addAccount('alice', ['user']);
  });
  after(() => t.close());

  it('is refused with 401 invalid_token before any stream byte, and its renewal of an open stream with 401 too', async () => {
    const stale = (await t.login('alice')).access_token;
    // A stream opened with a token issued two seconds later outlives the stale one by as much.
    await until(claimsOf(stale).iat * 1000 + 2000);
    const open = openStream(`${t.url}/events${q('users/alice/**')}`, (await t.login('alice')).access_token);
    try {
      const connected = data(await open.waitFor((e) => e.type === 'connected'));
      await until(claimsOf(stale).exp * 1000 + 50);
      const res = await getEvents(t.url, q('users/alice/**'), stale);
      expect(res.status, JSON.stringify(res.body)).to.equal(401);
      expect(res.body.error).to.equal('invalid_token');
      expect(res.headers['content-type']).to.match(/^application\/json/);
      expectResponseMatchesSpec(res, 'get', '/events');
      const renewal = await renew(t.url, connected.renewUrl, stale);
      expect(renewal.status, JSON.stringify(renewal.body)).to.equal(401);
      expect(renewal.body.error).to.equal('invalid_token');
      expect(open.events.map((e) => e.type)).to.not.include('token-renewed');
      expect(t.server.registry.countFor('alice')).to.equal(1);
    } finally {
      open.close();
    }
  });
});

describe('Last-Event-ID replay', () => {
  let t: TestServer;
  let alice: string;
  let bob: string;
  let newsroom: string;
  const streams: StreamClient[] = [];
  const open = (query: string, token: string | (() => string), options?: Parameters<typeof openStream>[2]) => {
    const stream = openStream(`${t.url}/events${query}`, token, { types: ['tick'], ...options });
    streams.push(stream);
    return stream;
  };
  const tick = (topic: string, n: number | string) => publish(t.url, newsroom, { topics: [topic], type: 'tick', data: { n } });

  before(async () => {
    t = await startServer({ RETRY_MS: '200' });
    await t.addAccount('alice', ['user']);
    await t.addAccount('bob', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    await t.addAccount('wire', ['publisher']);
    alice = (await t.login('alice')).access_token;
    bob = (await t.login('bob')).access_token;
    newsroom = (await t.login('newsroom')).access_token;
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  after(() => t.close());

  /** Events 1..3 seen live on a first stream, which then closes; 4..6 published while away. */
  async function firstVisit(topic: string): Promise<string[]> {
    const ids: string[] = [];
    const stream = open(q(topic), alice);
    await stream.waitFor((e) => e.type === 'connected');
    for (let n = 1; n <= 3; n++) ids.push(await tick(topic, n));
    await stream.waitFor((e) => e.type === 'tick' && data(e).n === 3);
    expect(ticks(stream)).to.deep.equal([1, 2, 3]);
    expect(stream.events.filter((e) => e.type === 'tick').map((e) => e.id)).to.deep.equal(ids);
    stream.close();
    await waitUntil(() => t.server.registry.countFor('alice') === 0, 1000, 'the first stream to close');
    for (let n = 4; n <= 6; n++) ids.push(await tick(topic, n));
    return ids;
  }

  async function expectResumed(stream: StreamClient, topic: string, ids: string[]): Promise<void> {
    await stream.waitFor((e) => e.type === 'tick' && data(e).n === 6);
    ids.push(await tick(topic, 7));
    await stream.waitFor((e) => e.type === 'tick' && data(e).n === 7);
    await tick('users/alice/elsewhere', 99);
    await delay(100);
    expect(ticks(stream)).to.deep.equal([4, 5, 6, 7]);
    expect(stream.events.filter((e) => e.type === 'tick').map((e) => e.id)).to.deep.equal(ids.slice(3));
    expect(stream.events.map((e) => e.type)).to.deep.equal(['connected', 'tick', 'tick', 'tick', 'tick']);
  }

  it('replays exactly the missed events, in order, then goes live, when reconnecting with the Last-Event-ID header', async () => {
    const topic = 'users/alice/replay-header';
    const ids = await firstVisit(topic);
    const stream = open(q(topic), alice, { headers: { 'Last-Event-ID': ids[2]! } });
    await expectResumed(stream, topic, ids);
  });

  it('replays exactly the missed events, in order, then goes live, when reconnecting with ?lastEventId=', async () => {
    const topic = 'users/alice/replay-query';
    const ids = await firstVisit(topic);
    const stream = open(`${q(topic)}&lastEventId=${encodeURIComponent(ids[2]!)}`, alice);
    await expectResumed(stream, topic, ids);
  });

  it('lets the Last-Event-ID header win over ?lastEventId=', async () => {
    const topic = 'users/alice/replay-both';
    const ids = await firstVisit(topic);
    const stream = open(`${q(topic)}&lastEventId=${encodeURIComponent(ids[4]!)}`, alice, { headers: { 'Last-Event-ID': ids[2]! } });
    await expectResumed(stream, topic, ids);
  });

  it('replays nothing and sends no reset when Last-Event-ID is the newest event', async () => {
    const topic = 'users/alice/replay-head';
    const head = await tick(topic, 1);
    const stream = open(q(topic), alice, { headers: { 'Last-Event-ID': head } });
    await stream.waitFor((e) => e.type === 'connected');
    await tick(topic, 2);
    await stream.waitFor((e) => e.type === 'tick');
    expect(stream.events.map((e) => e.type)).to.deep.equal(['connected', 'tick']);
    expect(ticks(stream)).to.deep.equal([2]);
  });

  it('resumes by itself after the server drops the connection: the data seen is exactly 1..N, no gap, no duplicate', async function () {
    this.timeout(15_000);
    const topic = 'users/alice/auto';
    const stream = open(q(topic), () => alice);
    await stream.waitFor((e) => e.type === 'connected');
    const total = 40;
    const dropAfter = [10, 25];
    for (let n = 1; n <= total; n++) {
      // The drop also closes the publisher's pooled connection: retry with the same idempotency key.
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await postJson(
            `${t.url}/events`,
            { topics: [topic], type: 'tick', data: { n }, idempotencyKey: `auto-${n}` },
            newsroom,
          );
          expect([200, 201]).to.include(res.status);
          await res.arrayBuffer();
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
        }
      }
      if (dropAfter.includes(n)) {
        await stream.waitFor((e) => e.type === 'tick' && data(e).n === n);
        t.server.http.closeAllConnections();
      }
      await delay(15);
    }
    await stream.waitFor((e) => e.type === 'tick' && data(e).n === total, 8000);
    await delay(100);
    expect(ticks(stream)).to.deep.equal(Array.from({ length: total }, (_, i) => i + 1));
    expect(stream.events.filter((e) => e.type === 'connected')).to.have.length(dropAfter.length + 1);
    expect(stream.events.filter((e) => e.type === 'reset')).to.have.length(0);
  });

  it('never replays events the stream’s token does not cover', async () => {
    const marker = await tick('users/alice/marker', 0);
    await publish(t.url, newsroom, { topics: ['users/bob/inbox'], type: 'tick', data: { n: 'bob-1' } });
    await publish(t.url, newsroom, { topics: ['users/alice/inbox'], type: 'tick', data: { n: 'alice-1' } });
    await publish(t.url, newsroom, { topics: ['users/bob/inbox', 'users/alice/inbox'], type: 'tick', data: { n: 'both' } });
    await publish(t.url, newsroom, { topics: ['users/bob/secret'], type: 'tick', data: { n: 'bob-2' } });
    await publish(t.url, newsroom, { topics: ['public/news'], type: 'tick', data: { n: 'public' } });

    const aliceStream = open(q('users/alice/**'), alice, { headers: { 'Last-Event-ID': marker } });
    const bobStream = open(q('users/bob/**'), bob, { headers: { 'Last-Event-ID': marker } });
    await tick('users/alice/inbox', 'alice-live');
    await tick('users/bob/inbox', 'bob-live');
    await aliceStream.waitFor((e) => e.type === 'tick' && data(e).n === 'alice-live');
    await bobStream.waitFor((e) => e.type === 'tick' && data(e).n === 'bob-live');
    expect(ticks(aliceStream)).to.deep.equal(['alice-1', 'both', 'alice-live']);
    expect(ticks(bobStream)).to.deep.equal(['bob-1', 'both', 'bob-2', 'bob-live']);
  });

  describe('idempotent publish', () => {
    it('answers a repeat with the same key and body with 200, the same id and duplicate: true, and delivers the event once', async () => {
      const stream = open(q('users/alice/idem'), alice, { types: ['note'] });
      await stream.waitFor((e) => e.type === 'connected');
      const body = { topics: ['users/alice/idem'], type: 'note', data: { text: 'once' }, idempotencyKey: 'idem-1' };
      const first = await readJson(await postJson(`${t.url}/events`, body, newsroom));
      expect(first.status).to.equal(201);
      expectResponseMatchesSpec(first, 'post', '/events');
      expect(first.body.duplicate).to.equal(undefined);
      const again = await readJson(await postJson(`${t.url}/events`, body, newsroom));
      expect(again.status).to.equal(200);
      expectResponseMatchesSpec(again, 'post', '/events');
      expect(again.body).to.deep.equal({ id: first.body.id, topics: ['users/alice/idem'], type: 'note', duplicate: true });

      const sentinel = await publish(t.url, newsroom, { topics: ['users/alice/idem'], type: 'note', data: 'sentinel' });
      await stream.waitFor((e) => e.id === sentinel);
      expect(publishedEvents(stream).map((e) => e.id)).to.deep.equal([first.body.id, sentinel]);
    });

    it('answers 409 idempotency_key_reused when the same key comes with a different payload, and publishes nothing', async () => {
      const stream = open(q('users/alice/idem2'), alice, { types: ['note'] });
      await stream.waitFor((e) => e.type === 'connected');
      const body = { topics: ['users/alice/idem2'], type: 'note', data: { v: 1 }, idempotencyKey: 'idem-2' };
      expect((await postJson(`${t.url}/events`, body, newsroom)).status).to.equal(201);
      for (const changed of [
        { ...body, data: { v: 2 } },
        { ...body, type: 'other' },
        { ...body, topics: ['users/alice/idem2', 'public/news'] },
      ]) {
        const res = await readJson(await postJson(`${t.url}/events`, changed, newsroom));
        expect(res.status).to.equal(409);
        expect(res.body.error).to.equal('idempotency_key_reused');
        expectResponseMatchesSpec(res, 'post', '/events');
      }
      const sentinel = await publish(t.url, newsroom, { topics: ['users/alice/idem2'], type: 'note', data: 'sentinel' });
      await stream.waitFor((e) => e.id === sentinel);
      expect(publishedEvents(stream).map((e) => e.data)).to.deep.equal(['{"v":1}', '"sentinel"']);
    });

    it('scopes idempotency keys to the publishing account', async () => {
      const wire = (await t.login('wire')).access_token;
      const body = { topics: ['public/idem3'], data: 'same', idempotencyKey: 'idem-3' };
      const a = await readJson(await postJson(`${t.url}/events`, body, newsroom));
      const b = await readJson(await postJson(`${t.url}/events`, body, wire));
      expect(a.status).to.equal(201);
      expect(b.status).to.equal(201);
      expect(b.body.id).to.not.equal(a.body.id);
    });
  });
});

describe('reset instead of replay', () => {
  let t: TestServer;
  let alice: string;
  let newsroom: string;
  const streams: StreamClient[] = [];
  const topic = 'users/alice/reset';
  let ids: string[] = [];

  before(async () => {
    t = await startServer({ HISTORY_SIZE: '3' });
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    alice = (await t.login('alice')).access_token;
    newsroom = (await t.login('newsroom')).access_token;
    ids = [];
    for (let n = 1; n <= 10; n++) ids.push(await publish(t.url, newsroom, { topics: [topic], type: 'tick', data: { n } }));
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  after(() => t.close());

  async function resetFor(lastEventId: string, reason: string) {
    const stream = openStream(`${t.url}/events${q(topic)}`, alice, { types: ['tick'], headers: { 'Last-Event-ID': lastEventId } });
    streams.push(stream);
    const reset = await stream.waitFor((e) => e.type === 'reset');
    const head = ids.at(-1)!;
    expectSseEventMatchesSpec('reset', data(reset), reset.id);
    expect(data(reset)).to.deep.equal({ reason, lastEventId });
    expect(reset.id).to.equal(head);
    // Nothing replayed; the next live event follows.
    const live = await publish(t.url, newsroom, { topics: [topic], type: 'tick', data: { n: 'live' } });
    ids.push(live);
    await stream.waitFor((e) => e.id === live);
    expect(stream.events.map((e) => e.type)).to.deep.equal(['connected', 'reset', 'tick']);
  }

  it('sends reset history_exhausted, with the newest id and no replayed events, when the Last-Event-ID is older than the retained history', async () => {
    await resetFor(ids[0]!, 'history_exhausted');
  });

  it('sends reset history_exhausted for an id from before the server started', async () => {
    await resetFor('1-0', 'history_exhausted');
  });

  it('sends reset unknown_event_id for an id newer than any event', async () => {
    await resetFor('999999999999999-0', 'unknown_event_id');
  });

  it('sends reset unknown_event_id for a Last-Event-ID that is not an event id', async () => {
    await resetFor('garbage', 'unknown_event_id');
  });

  for (const via of ['the Last-Event-ID header', '?lastEventId='] as const) {
    it(`replays every retained event, with no reset, then goes live, for earliest in ${via}`, async () => {
      const retained = ids.slice(-3);
      const query = via === '?lastEventId=' ? `${q(topic)}&lastEventId=earliest` : q(topic);
      const headers: Record<string, string> = via === '?lastEventId=' ? {} : { 'Last-Event-ID': 'earliest' };
      const stream = openStream(`${t.url}/events${query}`, alice, { types: ['tick'], headers });
      streams.push(stream);
      await stream.waitFor((e) => e.id === retained.at(-1));
      const live = await publish(t.url, newsroom, { topics: [topic], type: 'tick', data: { n: 'live' } });
      ids.push(live);
      await stream.waitFor((e) => e.id === live);
      expect(stream.events.filter((e) => e.type === 'tick').map((e) => e.id)).to.deep.equal([...retained, live]);
      expect(stream.events.map((e) => e.type)).to.deep.equal(['connected', 'tick', 'tick', 'tick', 'tick']);
    });
  }

  it('replays the retained events when the Last-Event-ID is within the history', async () => {
    const retained = ids.slice(-3);
    const stream = openStream(`${t.url}/events${q(topic)}`, alice, { types: ['tick'], headers: { 'Last-Event-ID': ids.at(-4)! } });
    streams.push(stream);
    await stream.waitFor((e) => e.id === retained.at(-1));
    await delay(50);
    expect(stream.events.filter((e) => e.type === 'tick').map((e) => e.id)).to.deep.equal(retained);
    expect(stream.events.filter((e) => e.type === 'reset')).to.have.length(0);
  });
});
