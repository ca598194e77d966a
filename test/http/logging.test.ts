import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger } from '../../src/logger.js';
import { delay, openStream, PASSWORD, postJson, startServer, type TestServer } from '../helpers/server.js';

describe('request logs', () => {
  let t: TestServer;
  const lines: string[] = [];
  before(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(
          ...String(chunk)
            .split('\n')
            .filter((line) => line !== ''),
        );
        done();
      },
    });
    // The server's own logger configuration, written to a sink the test can read.
    t = await startServer({}, undefined, { logger: createLogger('debug', sink) });
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  after(() => t.close());

  it('holds one JSON line per request and never a token, password, cookie or secret', async () => {
    const cookieLogin = await fetch(`${t.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: PASSWORD, cookie: true }),
    });
    const alice = (await cookieLogin.json()) as { access_token: string; refresh_token: string };
    const cookie = cookieLogin.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const newsroom = await t.login('newsroom');
    await postJson(`${t.url}/auth/login`, { username: 'alice', password: 'wrong-password-value' });
    await fetch(`${t.url}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: alice.refresh_token }),
    });
    await fetch(`${t.url}/events?topic=public/news&access_token=${alice.access_token}`);
    const stream = openStream(`${t.url}/events?topic=users/alice/**`, undefined, { headers: { cookie } });
    await stream.waitFor((e) => e.type === 'connected');
    await postJson(`${t.url}/events`, { topics: ['users/alice/inbox'], data: { secret: 'payload-marker' } }, newsroom.access_token);
    await postJson(`${t.url}/events`, { topics: ['users/alice/inbox'], data: 1 }, 'not-a-real-token');
    await stream.waitFor((e) => e.data.includes('payload-marker'));
    stream.close();
    await delay(100);

    expect(lines.length).to.be.at.least(8);
    const log = lines.join('\n');
    for (const secret of [
      alice.access_token,
      alice.refresh_token,
      newsroom.access_token,
      PASSWORD,
      'wrong-password-value',
      'payload-marker',
      'not-a-real-token',
    ]) {
      expect(log).to.not.include(secret);
    }
    for (const line of lines) expect(() => JSON.parse(line)).to.not.throw();
    const requests = lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request');
    expect(requests.map((entry) => entry.path)).to.include.members(['/auth/login', '/auth/token', '/events']);
    expect(requests.find((entry) => entry.status === 401 && entry.path === '/events')?.authFailure).to.equal('ERR_JWS_INVALID');
  });

  it('logs a stream once, when it opens (200, its subject and request id), and a refused one with the subject it was refused to', async () => {
    const alice = (await t.login('alice')).access_token;
    const from = lines.length;
    const stream = openStream(`${t.url}/events?topic=users/alice/**`, alice);
    await stream.waitFor((e) => e.type === 'connected');
    const refused = await fetch(`${t.url}/events?topic=users/bob/**`, { headers: { authorization: `Bearer ${alice}` } });
    expect(refused.status).to.equal(403);
    const refusedId = refused.headers.get('x-request-id');
    await refused.arrayBuffer();
    stream.close();
    const requests = () =>
      lines
        .slice(from)
        .map((line) => JSON.parse(line))
        .filter((entry) => entry.msg === 'request' && entry.path === '/events');
    const deadline = Date.now() + 2000;
    while (requests().length < 2 && Date.now() < deadline) await delay(10);
    const [opened, denied] = requests();
    expect(opened).to.include({ method: 'GET', status: 200, sub: 'alice', ip: '127.0.0.1' });
    expect(opened.req).to.match(/^[0-9a-f-]{36}$/);
    expect(denied).to.include({ method: 'GET', status: 403, sub: 'alice', req: refusedId });
    expect(requests()).to.have.length(2);
  });
});
