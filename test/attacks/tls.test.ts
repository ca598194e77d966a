import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { setCookies } from '../helpers/auth.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';
import { parseAnswer } from './attack-kit.js';

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** One request on an HTTP/2 session. */
function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let answer: http2.IncomingHttpHeaders = {};
    let text = '';
    stream.on('response', (h) => (answer = h));
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => (text += chunk));
    stream.on('end', () => resolve({ status: Number(answer[':status']), headers: answer, body: text }));
    stream.on('error', reject);
    stream.end(body);
  });
}

/**
 * The secure channel (seed step 5; OWASP ASVS V9.1.1 TLS for all connections, V9.1.2 TLS 1.2+;
 * RFC 9113 HTTP/2, RFC 7301 ALPN; RFC 6797 HSTS; RFC 6265bis §4.1.3 cookie prefixes): HTTPS with
 * HTTP/2 and HTTP/1.1 on one port, SSE over both, and what an attacker on the wire cannot do.
 */
describe('attacks: secure channel (HTTPS, HTTP/2)', () => {
  let t: TestServer;
  let dir: string;
  let ca: Buffer;
  let origin: string;
  let port: number;
  const sessions: http2.ClientHttp2Session[] = [];
  const connect = () => {
    const session = http2.connect(origin, { ca });
    session.on('error', () => undefined);
    sessions.push(session);
    return session;
  };

  before(async function () {
    this.timeout(20_000);
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-tls-'));
    const { certFile: cert, keyFile: key } = selfSignedCertificate(dir, 'IP:127.0.0.1,DNS:localhost');
    ca = readFileSync(cert);
    t = await startServer({
      TLS_CERT_FILE: cert,
      TLS_KEY_FILE: key,
      STREAM_BUFFER_BYTES: '65536',
      HISTORY_SIZE: '0',
      MAX_BODY_BYTES: '1048576',
      MAX_DATA_BYTES: '65536',
    });
    port = Number(new URL(t.url).port);
    origin = `https://127.0.0.1:${port}`;
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  afterEach(() => {
    for (const session of sessions.splice(0)) session.destroy();
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const login = async (session: http2.ClientHttp2Session, username: string, cookie = false) =>
    h2request(
      session,
      { ':method': 'POST', ':path': '/auth/login', 'content-type': 'application/json' },
      JSON.stringify({ username, password: PASSWORD, cookie }),
    );

  it('speaks HTTP/2 (ALPN h2) and sends HSTS, nosniff and no-referrer on every answer', async () => {
    const session = connect();
    const res = await h2request(session, { ':path': '/healthz' });
    expect(res.status).to.equal(200);
    expect((session.socket as tls.TLSSocket).alpnProtocol).to.equal('h2');
    expect(res.headers['strict-transport-security']).to.equal('max-age=31536000');
    expect(res.headers['x-content-type-options']).to.equal('nosniff');
    expect(res.headers['referrer-policy']).to.equal('no-referrer');
  });

  it('falls back to HTTP/1.1 on the same port for a client that offers only http/1.1', async () => {
    const res = await new Promise<{ status: number; alpn: string | false | null }>((resolve, reject) => {
      const req = https.get(`${origin}/healthz`, { ca, ALPNProtocols: ['http/1.1'] } as https.RequestOptions, (answer) => {
        answer.resume();
        resolve({ status: answer.statusCode ?? 0, alpn: (answer.socket as tls.TLSSocket).alpnProtocol });
      });
      req.on('error', reject);
    });
    expect(res).to.deep.equal({ status: 200, alpn: 'http/1.1' });
  });

  it('refuses TLS 1.1 and below', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => resolve('connected'));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(outcome).to.not.equal('connected');
  });

  it('answers no cleartext HTTP on the TLS port: a plain request gets no HTTP answer', async () => {
    const text = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('close', () => resolve(received));
      socket.on('error', () => undefined);
      setTimeout(() => socket.destroy(), 3000);
    });
    expect(text).to.not.match(/^HTTP\/1\.1 200/);
  });

  it('marks the session cookies Secure with the __Host-/__Secure- prefixes, HttpOnly and SameSite=Strict', async () => {
    const res = await login(connect(), 'alice', true);
    expect(res.status).to.equal(200);
    expect(res.headers['cache-control']).to.equal('no-store');
    const cookies = setCookies({ 'set-cookie': res.headers['set-cookie'] });
    const access = cookies.find((c) => c.name === '__Host-notify_at')!;
    const refresh = cookies.find((c) => c.name === '__Secure-notify_rt')!;
    for (const cookie of [access, refresh]) {
      expect(cookie.attributes.secure, cookie.name).to.equal(true);
      expect(cookie.attributes.httponly, cookie.name).to.equal(true);
      expect(cookie.attributes.samesite, cookie.name).to.equal('strict');
    }
    expect(access.attributes.path).to.equal('/');
    expect(access.attributes).to.not.have.property('domain');
  });

  it('streams SSE over HTTP/2 and delivers an event published on the same connection (multiplexed)', async () => {
    const session = connect();
    const alice = JSON.parse((await login(session, 'alice')).body).access_token as string;
    const newsroom = JSON.parse((await login(session, 'newsroom')).body).access_token as string;
    const stream = session.request({ ':path': '/events?topic=public/news', accept: 'text/event-stream', authorization: `Bearer ${alice}` });
    let head: http2.IncomingHttpHeaders = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (head = h));
    stream.on('data', (chunk) => (text += chunk));
    const waitFor = (marker: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${marker} in ${JSON.stringify(text)}`)), 5000);
        const check = () => {
          if (!text.includes(marker)) return;
          clearTimeout(timer);
          stream.off('data', check);
          resolve();
        };
        stream.on('data', check);
        check();
      });
    await waitFor('event: connected');
    expect(head[':status']).to.equal(200);
    expect(head['content-type']).to.equal('text/event-stream; charset=utf-8');
    expect(head['strict-transport-security']).to.equal('max-age=31536000');
    expect(head['x-content-type-options']).to.equal('nosniff');
    expect(head).to.not.have.property('connection');
    const published = await h2request(
      session,
      { ':method': 'POST', ':path': '/events', 'content-type': 'application/json', authorization: `Bearer ${newsroom}` },
      JSON.stringify({ topics: ['public/news'], type: 'h2', data: { over: 'http/2' } }),
    );
    expect(published.status).to.equal(201);
    await waitFor('event: h2');
    expect(text).to.contain(`id: ${JSON.parse(published.body).id}\nevent: h2\ndata: {"topic":"public/news","data":{"over":"http/2"}}\n\n`);
    stream.close();
  });

  it('streams SSE over HTTPS/1.1 to a raw node:https client', async () => {
    const session = connect();
    const alice = JSON.parse((await login(session, 'alice')).body).access_token as string;
    const text = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        `${origin}/events?topic=public/news`,
        { ca, headers: { accept: 'text/event-stream', authorization: `Bearer ${alice}` } },
        (res) => {
          let received = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => {
            received += chunk;
            if (received.includes('event: connected')) {
              req.destroy();
              resolve(`${res.statusCode} ${res.headers['content-type']} ${res.headers['strict-transport-security']}\n${received}`);
            }
          });
        },
      );
      req.on('error', (error) =>
        error.message.includes('aborted') || (error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error),
      );
    });
    expect(text).to.match(/^200 text\/event-stream; charset=utf-8 max-age=31536000\nretry: \d+\n/);
  });

  it('cuts an HTTP/2 stream whose reader stopped (flow-control window exhausted) at its buffer bound, and the session stays usable', async function () {
    this.timeout(30_000);
    const publisher = connect();
    const newsroom = JSON.parse((await login(publisher, 'newsroom')).body).access_token as string;
    const stalledSession = connect();
    const alice = JSON.parse((await login(stalledSession, 'alice')).body).access_token as string;
    const stalled = stalledSession.request({
      ':path': '/events?topic=public/h2burst',
      accept: 'text/event-stream',
      authorization: `Bearer ${alice}`,
    });
    let got = '';
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        got += chunk.toString();
        if (got.includes('event: connected')) {
          stalled.off('data', onData);
          stalled.pause();
          resolve();
        }
      };
      stalled.on('data', onData);
    });
    let closed = false;
    stalled.on('close', () => (closed = true));
    const payload = 'x'.repeat(16 * 1024);
    for (let n = 0; n < 400 && !closed; n += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          h2request(
            publisher,
            { ':method': 'POST', ':path': '/events', 'content-type': 'application/json', authorization: `Bearer ${newsroom}` },
            JSON.stringify({ topics: ['public/h2burst'], type: 'tick', data: { n: n + i, payload } }),
          ),
        ),
      );
    }
    stalled.resume();
    const deadline = Date.now() + 5000;
    while (!closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(closed, 'the stalled HTTP/2 stream was not cut').to.equal(true);
    expect(t.server.registry.countFor('alice')).to.equal(0);
    // The connection it rode on still serves other requests.
    expect((await h2request(stalledSession, { ':path': '/healthz' })).status).to.equal(200);
  });

  describe('HTTP/2 slowloris (timeouts lowered to 1 s / 2 s)', () => {
    let saved: [number, number];
    beforeEach(() => {
      saved = [t.server.http.headersTimeout, t.server.http.requestTimeout];
      t.server.http.headersTimeout = 1000;
      t.server.http.requestTimeout = 2000;
    });
    afterEach(() => {
      [t.server.http.headersTimeout, t.server.http.requestTimeout] = saved;
    });

    it('closes an HTTP/2 connection that is opened and left without a stream (GOAWAY)', async function () {
      this.timeout(8000);
      const session = connect();
      const started = Date.now();
      const closed = await new Promise<boolean>((resolve) => {
        session.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 5000);
      });
      expect(closed, 'the idle HTTP/2 connection is still open').to.equal(true);
      expect(Date.now() - started).to.be.below(4000);
    });

    it('answers 408 request_timeout to an HTTP/2 request body sent one byte every 200 ms', async function () {
      this.timeout(8000);
      const session = connect();
      const stream = session.request({ ':method': 'POST', ':path': '/auth/login', 'content-type': 'application/json' });
      let head: http2.IncomingHttpHeaders = {};
      let text = '';
      stream.on('response', (h) => (head = h));
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => (text += chunk));
      stream.on('error', () => undefined);
      const started = Date.now();
      const done = new Promise<void>((resolve) => stream.once('close', () => resolve()));
      for (const byte of '{"username":"alice","password":"' + 'a'.repeat(40)) {
        if (head[':status'] !== undefined || stream.destroyed) break;
        stream.write(byte);
        await new Promise((r) => setTimeout(r, 200));
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
      expect(head[':status']).to.equal(408);
      expect(JSON.parse(text).error).to.equal('request_timeout');
      expect(Date.now() - started).to.be.below(5000);
    });

    it('still closes the HTTP/2 connection once its event stream has ended and it sits idle', async function () {
      this.timeout(8000);
      const session = connect();
      const alice = JSON.parse((await login(session, 'alice')).body).access_token as string;
      const stream = session.request({
        ':path': '/events?topic=public/news',
        accept: 'text/event-stream',
        authorization: `Bearer ${alice}`,
      });
      stream.on('error', () => undefined);
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.close();
      const closed = await new Promise<boolean>((resolve) => {
        session.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 4000);
      });
      expect(closed, 'an ended event stream left its connection without an idle timeout').to.equal(true);
    });

    it('keeps an HTTP/2 event stream (and its connection) open past the idle timeout, and delivers on it', async function () {
      this.timeout(8000);
      const session = connect();
      const alice = JSON.parse((await login(session, 'alice')).body).access_token as string;
      const stream = session.request({
        ':path': '/events?topic=public/idle',
        accept: 'text/event-stream',
        authorization: `Bearer ${alice}`,
      });
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => (text += chunk));
      await new Promise((r) => setTimeout(r, 2500));
      expect(session.closed || session.destroyed).to.equal(false);
      const publisher = connect();
      const newsroom = JSON.parse((await login(publisher, 'newsroom')).body).access_token as string;
      await h2request(
        publisher,
        { ':method': 'POST', ':path': '/events', 'content-type': 'application/json', authorization: `Bearer ${newsroom}` },
        JSON.stringify({ topics: ['public/idle'], type: 'late', data: 1 }),
      );
      const deadline = Date.now() + 3000;
      while (!text.includes('event: late') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(text).to.contain('event: late');
      stream.close();
    });
  });

  it('closes a slowloris HTTP/1.1-over-TLS connection with a JSON 408', async function () {
    this.timeout(8000);
    const saved = [t.server.http.headersTimeout, t.server.http.requestTimeout];
    t.server.http.headersTimeout = 1000;
    t.server.http.requestTimeout = 2000;
    try {
      const text = await new Promise<string>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'] }, async () => {
          for (const byte of 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') {
            if (socket.destroyed || received !== '') break;
            socket.write(byte);
            await new Promise((r) => setTimeout(r, 200));
          }
        });
        let received = '';
        socket.on('data', (chunk) => (received += chunk.toString('latin1')));
        socket.on('close', () => resolve(received));
        socket.on('error', () => undefined);
        setTimeout(() => socket.destroy(), 6000);
      });
      const answer = parseAnswer(text, 0);
      expect(answer.status).to.equal(408);
      expect(answer.json?.error).to.equal('request_timeout');
    } finally {
      [t.server.http.headersTimeout, t.server.http.requestTimeout] = saved as [number, number];
    }
  });
});
