import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import { hashPassword } from '../../src/auth/password.js';
import { createNotifyServer, type NotifyServer } from '../../src/server.js';
import { form, setCookies } from '../helpers/auth.js';
import {
  openStream,
  PASSWORD,
  postJson,
  startServer,
  TEST_LOG_N,
  testConfig,
  type StreamClient,
  type TestServer,
} from '../helpers/server.js';
import { openRawStream, publish, readJson } from '../helpers/streams.js';
import { expectError, subscribeWith } from './attack-kit.js';

/**
 * What a hostile web page can try with a victim's browser: riding the cookie (OWASP CSRF
 * prevention cheat sheet; ASVS V3.4.x, V50.3 / V13.2.x), reading answers cross-origin (Fetch
 * standard CORS), and injecting SSE fields into the stream (WHATWG HTML §9.2 event-stream
 * interpretation).
 */
describe('attacks: cookies, CORS and CSRF', () => {
  let t: TestServer;
  let cookie: string;
  const EVIL = 'https://evil.example';

  before(async () => {
    t = await startServer({ CORS_ORIGINS: 'https://app.example' });
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    const res = await fetch(`${t.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'newsroom', password: PASSWORD, cookie: true }),
    });
    cookie = setCookies(Object.fromEntries([['set-cookie', res.headers.getSetCookie()]]))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  });
  after(() => t.close());

  const publishWithCookie = async (headers: Record<string, string>) =>
    readJson(
      await fetch(`${t.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie, ...headers },
        body: JSON.stringify({ topics: ['public/news'], data: 1 }),
      }),
    );

  const crossSite: Record<string, Record<string, string>> = {
    'Sec-Fetch-Site: cross-site and no Origin': { 'sec-fetch-site': 'cross-site' },
    'Origin: null (a sandboxed iframe)': { origin: 'null' },
    'an Origin that only starts with ours (suffix attack)': {},
    'an allowed origin as a prefix of an evil one': { origin: 'https://app.example.evil.example' },
    'our origin with another scheme': {},
  };
  for (const [what, headers] of Object.entries(crossSite)) {
    it(`answers 403 csrf_rejected to a cookie-authenticated publish with ${what}`, async () => {
      const ours = new URL(t.url);
      const extra: Record<string, string> = { ...headers };
      if (what.startsWith('an Origin that only starts')) extra.origin = `${t.url}.evil.example`;
      if (what.startsWith('our origin with another scheme')) extra.origin = `https://${ours.host}`;
      expectError(await publishWithCookie(extra), 403, 'csrf_rejected');
    });
  }

  it('accepts the cookie-authenticated publish from our own origin (control)', async () => {
    expect((await publishWithCookie({ origin: t.url })).status).to.equal(201);
  });

  it('reflects no CORS credentials to evil, null, or a look-alike of the allowed origin', async () => {
    for (const origin of [EVIL, 'null', 'https://app.example.evil.example', 'https://APP.example', 'http://app.example']) {
      const res = await fetch(`${t.url}/.well-known/jwks.json`, { headers: { origin } });
      expect(res.headers.get('access-control-allow-origin'), origin).to.equal(null);
      expect(res.headers.get('access-control-allow-credentials'), origin).to.equal(null);
    }
  });

  it('uses the Authorization header alone when header, cookie and query all carry tokens: the query one is refused, never merged', async () => {
    const alice = (await t.login('alice')).access_token;
    const res = await readJson(
      await fetch(`${t.url}/events?topic=public/news&access_token=${alice}`, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${alice}`, cookie },
      }),
    );
    expectError(res, 400, 'invalid_request');
    // Header + cookie of different users: the header decides (newsroom, the cookie's owner, may not read alice's inbox).
    const both = await subscribeWith(t.url, alice, 'users/alice/inbox', { cookie });
    expect(both.status).to.equal(200);
  });

  it('puts nosniff, no-referrer, frame-ancestors none and no-store on every kind of answer, errors included', async () => {
    const alice = (await t.login('alice')).access_token;
    const answers = [
      await fetch(`${t.url}/.well-known/jwks.json`),
      await fetch(`${t.url}/no/such/route`),
      await fetch(`${t.url}/events?topic=public/news`, { headers: { authorization: 'Bearer x.y.z' } }),
      await fetch(`${t.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
      await fetch(`${t.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: PASSWORD }),
      }),
      await fetch(`${t.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${alice}` },
        body: '{"topics":["public/news"],"data":1}',
      }),
    ];
    for (const res of answers) {
      const where = `${res.url} ${res.status}`;
      expect(res.headers.get('x-content-type-options'), where).to.equal('nosniff');
      expect(res.headers.get('referrer-policy'), where).to.equal('no-referrer');
      expect(res.headers.get('content-security-policy'), where).to.equal("default-src 'none'; frame-ancestors 'none'");
      // The public key set is meant to be cached; everything else, tokens above all, never is.
      expect(res.headers.get('cache-control'), where).to.equal(res.url.endsWith('/jwks.json') ? 'public, max-age=300' : 'no-store');
      await res.arrayBuffer();
    }
    expect(answers.map((res) => res.status)).to.deep.equal([200, 404, 401, 415, 200, 403]);
  });

  it('writes no token, password or cookie to the log, even when a token is sent in the query string', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    });
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-log-'));
    let server: NotifyServer | undefined;
    try {
      server = await createNotifyServer(testConfig(dataDir), { logger: pino({ level: 'trace' }, sink) });
      const { port } = await server.listen();
      const url = `http://127.0.0.1:${port}`;
      await server.users.add({
        name: 'alice',
        kind: 'user',
        roles: ['user'],
        passwordHash: await hashPassword(PASSWORD, { logN: TEST_LOG_N }),
      });
      const login = await fetch(`${url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: PASSWORD }),
      });
      const tokens = (await login.json()) as { access_token: string; refresh_token: string };
      await fetch(`${url}/events?topic=public/news&access_token=${tokens.access_token}`);
      await fetch(`${url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: `notify_at=${tokens.access_token}; notify_rt=${tokens.refresh_token}` },
        body: '{}',
      });
      await fetch(`${url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
      });
      await fetch(`${url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: 'wrong password 123' }),
      });
      const log = lines.join('');
      expect(log).to.contain('"path":"/events"');
      for (const secret of [
        tokens.access_token,
        tokens.access_token.split('.')[2]!,
        tokens.refresh_token,
        PASSWORD,
        'wrong password 123',
      ]) {
        expect(log).to.not.contain(secret);
      }
    } finally {
      server?.http.closeAllConnections?.();
      await server?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('attacks: SSE field injection', () => {
  let t: TestServer;
  let newsroom: string;
  const streams: StreamClient[] = [];
  before(async () => {
    t = await startServer();
    await t.addAccount('newsroom', ['publisher']);
    newsroom = (await t.login('newsroom')).access_token;
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  after(() => t.close());

  for (const [what, type] of Object.entries({
    CR: 'a\rb',
    LF: 'a\nid: 1',
    CRLF: 'a\r\nretry: 1',
    NUL: 'a\u0000b',
    'a colon-led comment': ':x\nevent: closed',
  })) {
    it(`answers 400 invalid_event_type when the event type holds ${what}`, async () => {
      expectError(
        await readJson(await postJson(`${t.url}/events`, { topics: ['public/news'], type, data: 1 }, newsroom)),
        400,
        'invalid_event_type',
      );
    });
  }

  it('answers 400 when the idempotency key (echoed as no SSE field, but stored) holds CR LF', async () => {
    expectError(
      await readJson(await postJson(`${t.url}/events`, { topics: ['public/news'], idempotencyKey: 'k\r\nid: 9', data: 1 }, newsroom)),
      400,
      'invalid_request',
    );
  });

  it('delivers data full of line breaks and forged fields as exactly one event with exactly that data', async () => {
    const hostile = 'line1\nline2\r\nline3\revent: closed\ndata: {"reason":"revoked"}\n\nid: 999\nretry: 1\n\u0000end';
    const stream = openStream(`${t.url}/events?topic=public/news`, newsroom);
    streams.push(stream);
    await stream.waitFor((e) => e.type === 'connected');
    const id = await publish(t.url, newsroom, { topics: ['public/news'], data: hostile });
    const got = await stream.waitFor((e) => e.type === 'message');
    await new Promise((r) => setTimeout(r, 200));
    expect(stream.events.filter((e) => e.type !== 'connected')).to.have.length(1);
    expect(got.id).to.equal(id);
    expect(JSON.parse(got.data)).to.equal(hostile);
  });

  it('does not let a hostile ?lastEventId= with encoded CR LF add fields to the stream', async () => {
    const raw = await openRawStream(
      `${t.url}/events?topic=public/news&lastEventId=${encodeURIComponent('1-1\r\nevent: closed\r\ndata: x')}`,
      newsroom,
    );
    await raw.waitForText((s) => s.includes('event: connected'));
    await new Promise((r) => setTimeout(r, 200));
    const text = raw.text();
    raw.close();
    expect(text).to.not.match(/^event: closed$/m);
    expect(text).to.not.contain('data: x\n');
  });
});
