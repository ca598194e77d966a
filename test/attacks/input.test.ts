import { expect } from 'chai';
import { PASSWORD, postJson, startServer, type TestServer } from '../helpers/server.js';
import { readJson } from '../helpers/streams.js';
import { expectError, httpRequest, rawExchange } from './attack-kit.js';

/**
 * Hostile request bodies and headers (OWASP ASVS V5.1.x input validation, V13.1.x API, V12.1.1
 * upload size; RFC 9110 §15.5.14 413, §15.5.16 415; RFC 6585 §5 431; RFC 8259 §8.1 UTF-8; RFC
 * 6749 §3.2 parameters not repeated). Every answer is a 4xx with a JSON `error` code, and the
 * server still answers a normal request right after.
 */
describe('attacks: hostile input', () => {
  let t: TestServer;
  let newsroom: string;
  let host: string;

  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    newsroom = (await t.login('newsroom')).access_token;
    host = new URL(t.url).host;
  });
  afterEach(async () => {
    // Whatever the attack did, the server still serves others.
    const health = await fetch(`${t.url}/healthz`).catch(() => undefined);
    expect(health?.status ?? 0, 'the server stopped answering').to.be.oneOf([200, 404]);
  });
  after(() => t.close());

  const login = (body: string | Buffer, contentType = 'application/json') =>
    rawExchange(t.url, [
      httpRequest('POST', '/auth/login', host, { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)) }),
      body,
    ]);

  it('answers 413 to a 50 MB Content-Length at once, having read almost none of it', async () => {
    const started = Date.now();
    const res = await rawExchange(
      t.url,
      [
        httpRequest('POST', '/auth/login', host, { 'Content-Type': 'application/json', 'Content-Length': String(50 * 1024 * 1024) }),
        '{"username":"',
      ],
      { timeoutMs: 3000 },
    );
    expect(res.status).to.equal(413);
    expect(res.json.error).to.equal('payload_too_large');
    expect(Date.now() - started).to.be.below(2000);
  });

  it('answers 413 to a chunked body with no Content-Length once it passes the limit, while the client is still sending', async () => {
    const chunk = `${(16 * 1024).toString(16)}\r\n${'a'.repeat(16 * 1024)}\r\n`;
    const res = await rawExchange(
      t.url,
      [
        httpRequest('POST', '/events', host, {
          'Content-Type': 'application/json',
          'Transfer-Encoding': 'chunked',
          Authorization: `Bearer ${newsroom}`,
        }),
        ...Array(400).fill(chunk),
      ],
      { gapMs: 2, timeoutMs: 8000 },
    );
    expect(res.status).to.equal(413);
    expect(res.json.error).to.equal('payload_too_large');
    expect(res.sentBytes).to.be.below(2 * 1024 * 1024); // far from the 6.4 MB the client had ready
  });

  it('answers 400 to JSON nested 20,000 levels deep as event data, and 400 to a deep login body', async () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const publish = await readJson(
      await fetch(`${t.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${newsroom}` },
        body: `{"topics":["public/news"],"data":${deep}}`,
      }),
    );
    expectError(publish, 400, 'invalid_request');
    const res = await login(`{"username":"alice","password":${deep}}`);
    expect(res.status).to.equal(400);
    expect(res.json.error).to.equal('invalid_request');
  });

  it('answers 415 unsupported_media_type to a JSON body sent as text/plain, and to a body with no Content-Type', async () => {
    const body = JSON.stringify({ username: 'alice', password: PASSWORD });
    for (const type of ['text/plain', 'application/json-patch+json', 'multipart/form-data; boundary=x']) {
      const res = await login(body, type);
      expect(res.status, type).to.equal(415);
      expect(res.json.error).to.equal('unsupported_media_type');
    }
    const none = await rawExchange(t.url, [httpRequest('POST', '/auth/login', host, { 'Content-Length': String(body.length) }, body)]);
    expect(none.status).to.equal(415);
    expect(none.json.error).to.equal('unsupported_media_type');
  });

  it('answers 415 to a charset other than UTF-8 and to a compressed body', async () => {
    const res = await login(JSON.stringify({ username: 'alice', password: PASSWORD }), 'application/json; charset=utf-16');
    expect(res.status).to.equal(415);
    expect(res.json.error).to.equal('unsupported_media_type');
    const gz = await rawExchange(t.url, [
      httpRequest(
        'POST',
        '/auth/login',
        host,
        { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': '4' },
        'abcd',
      ),
    ]);
    expect(gz.status).to.equal(415);
    expect(gz.json.error).to.equal('unsupported_media_type');
  });

  for (const [what, bytes] of Object.entries({
    'a lone continuation byte': Buffer.from([0x80]),
    'an overlong encoding of /': Buffer.from([0xc0, 0xaf]),
    'a CESU-8 surrogate (ED A0 80)': Buffer.from([0xed, 0xa0, 0x80]),
    'a truncated 4-byte sequence': Buffer.from([0xf0, 0x9f, 0x98]),
  })) {
    it(`answers 400 invalid_encoding to invalid UTF-8 (${what}) instead of turning it into U+FFFD`, async () => {
      const body = Buffer.concat([Buffer.from('{"username":"alice","password":"pass'), bytes, Buffer.from('word-123"}')]);
      const res = await login(body);
      expect(res.status, res.body).to.equal(400);
      expect(res.json.error).to.equal('invalid_encoding');
    });
  }

  it('answers 400 invalid_encoding to a lone surrogate escape in a JSON string (\\ud800)', async () => {
    const res = await readJson(
      await fetch(`${t.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${newsroom}` },
        body: '{"topics":["public/news"],"data":"x\\ud800y"}',
      }),
    );
    expectError(res, 400, 'invalid_encoding');
  });

  it('answers 400 to __proto__ and constructor.prototype keys, in JSON and in form bodies, and pollutes nothing', async () => {
    const json = await readJson(
      await fetch(`${t.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${newsroom}` },
        body: '{"topics":["public/news"],"data":{"a":{"__proto__":{"polluted":1}}}}',
      }),
    );
    expectError(json, 400, 'invalid_request');
    const formRes = await readJson(
      await fetch(`${t.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=refresh_token&__proto__[admin]=1&refresh_token=x',
      }),
    );
    expect(formRes.status).to.equal(400);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(({} as Record<string, unknown>).admin).to.equal(undefined);
  });

  it('answers 400 invalid_request to unknown fields on sign-in and publish', async () => {
    expectError(
      await readJson(await postJson(`${t.url}/auth/login`, { username: 'alice', password: PASSWORD, role: 'admin' })),
      400,
      'invalid_request',
    );
    expectError(
      await readJson(await postJson(`${t.url}/events`, { topics: ['public/news'], data: 1, topic: 'users/x' }, newsroom)),
      400,
      'invalid_request',
    );
  });

  it('answers 400 invalid_request when grant_type is repeated, in either order', async () => {
    for (const body of [
      'grant_type=client_credentials&grant_type=refresh_token',
      'grant_type=refresh_token&grant_type=refresh_token&refresh_token=x',
    ]) {
      const res = await readJson(
        await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }),
      );
      expectError(res, 400, 'invalid_request');
    }
  });

  it('answers 413 to a 1 MB password without hashing it', async () => {
    const started = Date.now();
    const res = await readJson(await postJson(`${t.url}/auth/login`, { username: 'alice', password: 'p'.repeat(1024 * 1024) }));
    expectError(res, 413, 'payload_too_large');
    expect(Date.now() - started).to.be.below(2000);
  });

  it('keeps answering others quickly while 20 clients trickle oversized and invalid bodies at it', async function () {
    this.timeout(10_000);
    // 8 KiB chunks of 0xFF bytes (never valid UTF-8), 320 KiB per client: over the limit and not text.
    const chunk = Buffer.concat([Buffer.from(`${(8 * 1024).toString(16)}\r\n`), Buffer.alloc(8 * 1024, 0xff), Buffer.from('\r\n')]);
    const attackers = Array.from({ length: 20 }, () =>
      rawExchange(
        t.url,
        [
          httpRequest('POST', '/auth/login', host, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }),
          ...Array(40).fill(chunk),
        ],
        { gapMs: 5, timeoutMs: 8000 },
      ).catch(() => undefined),
    );
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      expect((await fetch(`${t.url}/healthz`)).status).to.equal(200);
      latencies.push(performance.now() - started);
    }
    await Promise.all(attackers);
    expect(Math.max(...latencies), JSON.stringify(latencies)).to.be.below(250);
  });

  it('answers 431 header_too_large (JSON) to 20 KB of headers', async () => {
    const res = await rawExchange(t.url, [httpRequest('GET', '/healthz', host, { 'X-Filler': 'f'.repeat(20 * 1024) })]);
    expect(res.status).to.equal(431);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    expect(res.json.error).to.equal('header_too_large');
  });

  it('answers 400 bad_request (JSON) to a request line that is not HTTP', async () => {
    const res = await rawExchange(t.url, ['GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(res.status).to.equal(400);
    expect(res.json.error).to.equal('bad_request');
  });

  it('answers 400 to a request smuggling attempt with both Content-Length and Transfer-Encoding', async () => {
    const res = await rawExchange(t.url, [
      httpRequest(
        'POST',
        '/auth/login',
        host,
        { 'Content-Type': 'application/json', 'Content-Length': '4', 'Transfer-Encoding': 'chunked' },
        '0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n',
      ),
    ]);
    expect(res.status).to.equal(400);
    expect(res.json.error).to.equal('bad_request');
  });

  it('answers 405 method_not_allowed (JSON, with Allow) to PUT, DELETE and PATCH on routes that exist', async () => {
    for (const [method, route, allow] of [
      ['PUT', '/events', /POST/],
      ['DELETE', '/auth/login', /^POST$/],
      ['PATCH', '/healthz', /GET/],
    ] as const) {
      const res = await rawExchange(t.url, [httpRequest(method, route, host, { 'Content-Length': '0' })]);
      expect(res.status, `${method} ${route}`).to.equal(405);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      expect(res.headers.allow).to.match(allow);
      expect(res.json.error).to.equal('method_not_allowed');
    }
  });

  it('answers 501 not_implemented (JSON) to TRACE, PROPFIND, LINK and SEARCH, on routes that exist and ones that do not', async () => {
    for (const [method, route] of [
      ['TRACE', '/healthz'],
      ['PROPFIND', '/'],
      ['LINK', '/events'],
      ['SEARCH', '/nowhere'],
    ] as const) {
      const res = await rawExchange(t.url, [httpRequest(method, route, host, {})]);
      expect(res.status, `${method} ${route}`).to.equal(501);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      expect(res.json.error).to.equal('not_implemented');
    }
  });

  it('answers CONNECT with 501 not_implemented (JSON) instead of closing the socket: this is not a proxy', async () => {
    const res = await rawExchange(t.url, [`CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n`]);
    expect(res.status).to.equal(501);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    expect(res.json.error).to.equal('not_implemented');
  });
});
