import { expect } from 'chai';
import { form } from '../helpers/auth.js';
import { delay, openStream, startServer, type StreamClient, type TestServer } from '../helpers/server.js';
import { publish, publishedEvents, readJson, waitUntil } from '../helpers/streams.js';
import { expectError, expectInvalidToken, payloadOf, subscribeWith } from './attack-kit.js';

/**
 * Live streams never outlive their credentials: expiry (RFC 6750 §3.1, ASVS V3.3.1), refresh
 * rotation and reuse detection (RFC 9700 §4.14.2), revocation (RFC 7009 §2) and logout (ASVS
 * V3.3.1), each observed on a real EventSource connection.
 */
describe('attacks: stream lifetime, refresh and revocation', () => {
  let t: TestServer;
  let newsroom: string;
  const streams: StreamClient[] = [];
  const open = (topic: string, token: string | (() => string)) => {
    const stream = openStream(`${t.url}/events?topic=${encodeURIComponent(topic)}`, token, { types: ['tick'] });
    streams.push(stream);
    return stream;
  };
  const refresh = async (token: string) =>
    readJson(
      await fetch(`${t.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ grant_type: 'refresh_token', refresh_token: token }),
      }),
    );
  const closedReason = async (stream: StreamClient, timeoutMs = 5000) =>
    JSON.parse((await stream.waitFor((e) => e.type === 'closed', timeoutMs)).data).reason as string;

  before(async () => {
    // Access tokens live 2 s, no clock tolerance; refresh tokens idle out after 1 s.
    t = await startServer({ RETRY_MS: '100' }, (c) => ({
      ...c,
      jwt: { ...c.jwt, accessTokenTtlMs: 2000, clockToleranceMs: 0 },
      streams: { ...c.streams, expiryWarningMs: 1000 },
      refreshToken: { idleTtlMs: 1000, absoluteTtlMs: 3_600_000 },
    }));
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) await t.addAccount(name, ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  beforeEach(async () => {
    newsroom = (await t.login('newsroom')).access_token;
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  after(() => t.close());

  it('never delivers an event published after the token expired, and refuses the reconnect with 401 so EventSource stops', async function () {
    this.timeout(8000);
    const alice = (await t.login('alice')).access_token;
    const stream = open('public/alerts', () => alice);
    const codes: Array<number | undefined> = [];
    stream.source.addEventListener('error', (event) => codes.push((event as { code?: number }).code));
    await stream.waitFor((e) => e.type === 'connected');
    const exp = (payloadOf(alice).exp as number) * 1000;
    expect(await closedReason(stream, 4000)).to.equal('token_expired');
    await delay(Math.max(0, exp + 100 - Date.now()));
    newsroom = (await t.login('newsroom')).access_token;
    await publish(t.url, newsroom, { topics: ['public/alerts'], type: 'tick', data: { n: 1 } });
    await delay(400); // a reconnect (RETRY_MS 100) would have happened by now
    expect(publishedEvents(stream)).to.deep.equal([]);
    await waitUntil(() => stream.source.readyState === 2, 3000, 'EventSource to give up'); // CLOSED: no retry loop with a dead token
    expect(codes).to.include(401);
  });

  it('answers 401 before any stream byte when the token expired a moment ago', async () => {
    const alice = (await t.login('alice')).access_token;
    await delay((payloadOf(alice).exp as number) * 1000 + 20 - Date.now());
    const res = await subscribeWith(t.url, alice);
    expectInvalidToken(res);
    expect(res.headers['content-type']).to.match(/^application\/json/);
  });

  it('closes the streams of the whole family within 5 s when a refresh token two rotations old is replayed', async () => {
    const first = await t.login('bob');
    const second = (await refresh(first.refresh_token)).body;
    const third = (await refresh(second.refresh_token)).body;
    const stream = open('users/bob/inbox', third.access_token);
    await stream.waitFor((e) => e.type === 'connected');
    expectError(await refresh(first.refresh_token), 400, 'invalid_grant');
    expect(await closedReason(stream)).to.equal('revoked');
    // The newest refresh token of the family is dead too.
    expectError(await refresh(third.refresh_token), 400, 'invalid_grant');
  });

  it('gives at most one success when ten refreshes race with one token', async () => {
    const { refresh_token: token } = await t.login('carol');
    const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(token)));
    expect(answers.filter((a) => a.status === 200)).to.have.length.at.most(1);
    for (const answer of answers.filter((a) => a.status !== 200)) expectError(answer, 400, 'invalid_grant');
  });

  it('answers invalid_grant to a refresh token that sat idle past REFRESH_TOKEN_IDLE_TTL', async () => {
    const { refresh_token: token } = await t.login('dave');
    await delay(1200);
    expectError(await refresh(token), 400, 'invalid_grant');
  });

  it('answers 200 to revoking a forged JWT-shaped token and a 5-segment token, and revokes nothing', async () => {
    const { access_token: erin, refresh_token: erinRefresh } = await t.login('erin');
    const [h, p] = erin.split('.');
    for (const token of [`${h}.${p}.AAAA`, `${h}.${p}.x.y.z`, 'garbage']) {
      const res = await fetch(`${t.url}/auth/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ token }),
      });
      expect(res.status, token).to.equal(200);
      expect(await res.text()).to.equal('');
    }
    expect((await refresh(erinRefresh)).status).to.equal(200);
  });

  it('ends the open stream on logout within 5 s, and the token with flipped spare signature bits is dead too', async () => {
    const alice = (await t.login('alice')).access_token;
    const stream = open('users/alice/inbox', alice);
    await stream.waitFor((e) => e.type === 'connected');
    const logout = await fetch(`${t.url}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${alice}` } });
    expect(logout.status).to.equal(204);
    expect(await closedReason(stream)).to.equal('revoked');
    expectInvalidToken(await subscribeWith(t.url, alice, 'users/alice/inbox'));
    // Revocation is by session and jti, never by the token string: another spelling is refused as well.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = `${alice.slice(0, -1)}${alphabet[alphabet.indexOf(alice.at(-1)!) ^ 1]}`;
    expectInvalidToken(await subscribeWith(t.url, twin, 'users/alice/inbox'));
  });
});
