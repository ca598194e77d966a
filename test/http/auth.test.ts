import { expect } from 'chai';
import request from 'supertest';
import { hashPassword } from '../../src/auth/password.js';
import { basicAuth, cookieNamed, decodeJwt, form, isExpired, setCookies } from '../helpers/auth.js';
import { expectResponseMatchesSpec, expectSseEventMatchesSpec } from '../helpers/openapi.js';
import {
  openStream,
  PASSWORD,
  startServer,
  TEST_LOG_N,
  type StreamClient,
  type TestServer,
  type TokenResponse,
} from '../helpers/server.js';

/** Any response supertest gives. */
type Res = request.Response;

const SVC_SECRET = 'a-long-random-secret-value-1234';
const EVIL = 'https://evil.example';

/** Asserts status, `error` code and the spec in one go; never looks at the message. */
function expectError(res: Res, status: number, code: string, method: string, path: string): void {
  expect(res.status, JSON.stringify(res.body)).to.equal(status);
  expect(res.body.error).to.equal(code);
  expectResponseMatchesSpec(res, method, path);
}

/** Asserts the stream gets `closed` with `reason` (within 5 s) and that the event matches the spec. */
async function expectClosed(stream: StreamClient, reason: string): Promise<void> {
  const closed = await stream.waitFor((e) => e.type === 'closed', 5000);
  const data = JSON.parse(closed.data) as { reason: string };
  expectSseEventMatchesSpec('closed', data);
  expect(data.reason).to.equal(reason);
}

describe('auth over HTTP', function () {
  let t: TestServer;
  const streams: StreamClient[] = [];

  /** Opens a stream that is closed after the test whatever happens. */
  function stream(path: string, token: string | undefined, headers?: Record<string, string>): StreamClient {
    const client = openStream(`${t.url}${path}`, token, headers === undefined ? {} : { headers });
    streams.push(client);
    return client;
  }

  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
    await t.addAccount('carol', ['user']);
    await t.addAccount('bob', ['user']);
    await t.addAccount('erin', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    await t.addAccount('svc', ['publisher'], { kind: 'service', password: SVC_SECRET });
  });
  after(() => t.close());
  afterEach(() => {
    for (const client of streams.splice(0)) client.close();
  });

  const api = () => request(t.url);
  const publish = (token: string, topic = 'public/news') =>
    api()
      .post('/events')
      .set('authorization', `Bearer ${token}`)
      .send({ topics: [topic], data: 'hello' });
  const refresh = (refreshToken: string) =>
    api()
      .post('/auth/token')
      .type('form')
      .send(form({ grant_type: 'refresh_token', refresh_token: refreshToken }));
  /** Signs in with `cookie: true`; returns the body and the two cookie values. */
  async function cookieLogin(name: string): Promise<{ body: TokenResponse; at: string; rt: string }> {
    const res = await api().post('/auth/login').send({ username: name, password: PASSWORD, cookie: true });
    expect(res.status).to.equal(200);
    return {
      body: res.body as TokenResponse,
      at: cookieNamed(res.headers, 'notify_at').value,
      rt: cookieNamed(res.headers, 'notify_rt').value,
    };
  }

  describe('POST /auth/login', () => {
    function expectTokenResponse(res: Res): void {
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/login');
      expect(res.headers['cache-control']).to.equal('no-store');
      expect(res.body.token_type).to.equal('Bearer');
      expect(res.body.access_token)
        .to.be.a('string')
        .and.match(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(res.body.refresh_token).to.be.a('string').and.not.equal('');
      expect(res.body.expires_in).to.equal(t.config.jwt.accessTokenTtlMs / 1000);
      expect(res.headers['set-cookie']).to.equal(undefined);
    }

    it('answers an RFC 6749 §5.1 token response with no-store when a JSON body is right', async () => {
      expectTokenResponse(await api().post('/auth/login').send({ username: 'alice', password: PASSWORD }));
    });

    it('answers an RFC 6749 §5.1 token response with no-store when a form body is right', async () => {
      expectTokenResponse(
        await api()
          .post('/auth/login')
          .type('form')
          .send(form({ username: 'alice', password: PASSWORD })),
      );
    });

    it('gives the same 401 invalid_credentials answer when the password is wrong or the user unknown', async () => {
      const wrong = await api().post('/auth/login').send({ username: 'alice', password: 'not the password' });
      const unknown = await api().post('/auth/login').send({ username: 'nobody', password: 'not the password' });
      expectError(wrong, 401, 'invalid_credentials', 'post', '/auth/login');
      expectError(unknown, 401, 'invalid_credentials', 'post', '/auth/login');
      expect(unknown.body).to.deep.equal(wrong.body);
      expect(unknown.headers['www-authenticate']).to.equal(wrong.headers['www-authenticate']);
      expect(unknown.headers['set-cookie']).to.equal(undefined);
    });

    it('refuses a service account with invalid_credentials when it signs in at /auth/login with its right secret', async () => {
      const res = await api().post('/auth/login').send({ username: 'svc', password: SVC_SECRET });
      expectError(res, 401, 'invalid_credentials', 'post', '/auth/login');
      expect(res.body.access_token).to.equal(undefined);
    });

    it('answers 400 invalid_request when a field is missing', async () => {
      expectError(await api().post('/auth/login').send({ username: 'alice' }), 400, 'invalid_request', 'post', '/auth/login');
      expectError(await api().post('/auth/login').send({ password: PASSWORD }), 400, 'invalid_request', 'post', '/auth/login');
      expectError(await api().post('/auth/login').send({}), 400, 'invalid_request', 'post', '/auth/login');
    });

    it('answers 400 invalid_request when the body has an unknown field', async () => {
      const res = await api().post('/auth/login').send({ username: 'alice', password: PASSWORD, admin: true });
      expectError(res, 400, 'invalid_request', 'post', '/auth/login');
    });

    it('answers 400 invalid_request when the JSON body has a __proto__ field', async () => {
      const res = await api()
        .post('/auth/login')
        .set('content-type', 'application/json')
        .send(`{"username":"alice","password":${JSON.stringify(PASSWORD)},"__proto__":{"kind":"service"}}`);
      expectError(res, 400, 'invalid_request', 'post', '/auth/login');
      // The server runs in this process: nothing leaked onto Object.prototype.
      expect(({} as Record<string, unknown>).kind).to.equal(undefined);
    });

    it('answers 400 invalid_request when the password is 2 KB long', async () => {
      const res = await api()
        .post('/auth/login')
        .send({ username: 'alice', password: 'p'.repeat(2048) });
      expectError(res, 400, 'invalid_request', 'post', '/auth/login');
    });

    it('answers 415 unsupported_media_type when the body is text/plain', async () => {
      const res = await api().post('/auth/login').set('content-type', 'text/plain').send(`username=alice&password=${PASSWORD}`);
      expectError(res, 415, 'unsupported_media_type', 'post', '/auth/login');
    });

    it('answers 400 invalid_json when the JSON body does not parse', async () => {
      const res = await api().post('/auth/login').set('content-type', 'application/json').send('{"username": "alice", "password": ');
      expectError(res, 400, 'invalid_json', 'post', '/auth/login');
    });

    it('answers 413 payload_too_large when the body is over MAX_BODY_BYTES', async () => {
      const res = await api()
        .post('/auth/login')
        .send({ username: 'alice', password: 'p'.repeat(t.config.limits.maxBodyBytes + 1) });
      expectError(res, 413, 'payload_too_large', 'post', '/auth/login');
    });
  });

  describe('login throttling', () => {
    let limited: TestServer;
    before(async () => {
      limited = await startServer({ LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: '3' });
      await limited.addAccount('alice', ['user']);
    });
    after(() => limited.close());

    it('answers 429 rate_limited with Retry-After when the 4th attempt for one account and address comes', async () => {
      const attempt = (password: string) => request(limited.url).post('/auth/login').send({ username: 'alice', password });
      for (let i = 0; i < 3; i++) expectError(await attempt('wrong password'), 401, 'invalid_credentials', 'post', '/auth/login');
      const fourth = await attempt('wrong password');
      expectError(fourth, 429, 'rate_limited', 'post', '/auth/login');
      expect(fourth.headers['retry-after']).to.match(/^\d+$/);
      expect(Number(fourth.headers['retry-after'])).to.be.at.least(1);
      // Refused before the password is looked at: the right one is refused the same way.
      const right = await attempt(PASSWORD);
      expectError(right, 429, 'rate_limited', 'post', '/auth/login');
      expect(right.body.access_token).to.equal(undefined);
    });
  });

  describe('the access token', () => {
    it('is an at+jwt signed with EdDSA by a key of the JWKS, with every RFC 9068 claim and the {sub} grant when alice signs in', async () => {
      const tokens = await t.login('alice');
      const { header, payload } = decodeJwt(tokens.access_token);
      expect(header.typ).to.equal('at+jwt');
      expect(header.alg).to.equal('EdDSA');
      expect(header.kid).to.be.a('string');

      const jwks = await api().get('/.well-known/jwks.json');
      expect(jwks.status).to.equal(200);
      expectResponseMatchesSpec(jwks, 'get', '/.well-known/jwks.json');
      expect((jwks.body.keys as Array<{ kid?: string }>).map((key) => key.kid)).to.include(header.kid);

      expect(payload.iss).to.equal(t.config.jwt.issuer);
      expect(payload.aud).to.satisfy(
        (aud: unknown) => aud === t.config.jwt.audience || (Array.isArray(aud) && aud.includes(t.config.jwt.audience)),
      );
      expect(payload.sub).to.equal('alice');
      for (const claim of ['exp', 'iat']) expect(payload[claim], claim).to.be.a('number');
      for (const claim of ['jti', 'client_id', 'sid']) expect(payload[claim], claim).to.be.a('string').and.not.equal('');
      expect((payload.exp as number) - (payload.iat as number)).to.equal(t.config.jwt.accessTokenTtlMs / 1000);
      expect((payload.topics as { subscribe: string[] }).subscribe).to.include('users/alice/**');
    });
  });

  describe('refresh (POST /auth/token, grant_type=refresh_token)', () => {
    function expectRotated(res: Res, old: TokenResponse): TokenResponse {
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/token');
      expect(res.headers['cache-control']).to.equal('no-store');
      const next = res.body as TokenResponse;
      expect(next.token_type).to.equal('Bearer');
      expect(next.refresh_token).to.be.a('string').and.not.equal(old.refresh_token);
      expect(next.access_token).to.be.a('string').and.not.equal(old.access_token);
      expect(decodeJwt(next.access_token).payload.sid).to.equal(decodeJwt(old.access_token).payload.sid);
      return next;
    }

    it('rotates to a new pair and then refuses the old refresh token with invalid_grant when a form body is used', async () => {
      const first = await t.login('alice');
      expectRotated(await refresh(first.refresh_token), first);
      expectError(await refresh(first.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
    });

    it('rotates to a new pair and then refuses the old refresh token with invalid_grant when a JSON body is used', async () => {
      const first = await t.login('alice');
      const body = { grant_type: 'refresh_token', refresh_token: first.refresh_token };
      expectRotated(await api().post('/auth/token').send(body), first);
      expectError(await api().post('/auth/token').send(body), 400, 'invalid_grant', 'post', '/auth/token');
    });

    it('revokes the whole family when a rotated refresh token is presented again', async () => {
      const first = await t.login('newsroom');
      expect((await publish(first.access_token)).status).to.equal(201);
      const second = expectRotated(await refresh(first.refresh_token), first);
      expect((await publish(second.access_token)).status).to.equal(201);

      expectError(await refresh(first.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
      expectError(await refresh(second.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
      for (const token of [first.access_token, second.access_token]) {
        const res = await publish(token);
        expectError(res, 401, 'invalid_token', 'post', '/events');
        expect(res.headers['www-authenticate']).to.contain('error="invalid_token"');
      }
    });

    it('closes an open stream of the family with closed/revoked when a rotated refresh token is presented again', async () => {
      const first = await t.login('newsroom');
      const client = stream('/events?topic=public/news', first.access_token);
      await client.waitFor((e) => e.type === 'connected');
      expectRotated(await refresh(first.refresh_token), first);
      expect(client.events.some((e) => e.type === 'closed')).to.equal(false);
      expectError(await refresh(first.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
      await expectClosed(client, 'revoked');
    });

    it('gives exactly one 200 when two refreshes with one token run in parallel', async () => {
      const first = await t.login('alice');
      const answers = await Promise.all([refresh(first.refresh_token), refresh(first.refresh_token)]);
      const statuses = answers.map((res) => res.status).sort();
      expect(statuses).to.deep.equal([200, 400]);
      const loser = answers.find((res) => res.status === 400)!;
      expectError(loser, 400, 'invalid_grant', 'post', '/auth/token');
    });

    it('answers invalid_grant when an access token is presented as the refresh token', async () => {
      const first = await t.login('alice');
      expectError(await refresh(first.access_token), 400, 'invalid_grant', 'post', '/auth/token');
    });

    it('answers 401 invalid_token when a refresh token is used as the bearer token', async () => {
      const first = await t.login('newsroom');
      const res = await publish(first.refresh_token);
      expectError(res, 401, 'invalid_token', 'post', '/events');
      expect(res.headers['www-authenticate']).to.contain('error="invalid_token"');
    });

    it('answers invalid_request when grant_type is missing', async () => {
      const first = await t.login('alice');
      const res = await api()
        .post('/auth/token')
        .type('form')
        .send(form({ refresh_token: first.refresh_token }));
      expectError(res, 400, 'invalid_request', 'post', '/auth/token');
    });

    it('answers invalid_request when a form body repeats grant_type', async () => {
      const first = await t.login('alice');
      const body = form({ grant_type: ['refresh_token', 'refresh_token'], refresh_token: first.refresh_token });
      expectError(await api().post('/auth/token').type('form').send(body), 400, 'invalid_request', 'post', '/auth/token');
      // The token was not spent by the refused request.
      expect((await refresh(first.refresh_token)).status).to.equal(200);
    });

    it('answers unsupported_grant_type when the grant type is unknown', async () => {
      const res = await api()
        .post('/auth/token')
        .type('form')
        .send(form({ grant_type: 'password', username: 'alice', password: PASSWORD }));
      expectError(res, 400, 'unsupported_grant_type', 'post', '/auth/token');
    });
  });

  describe('client_credentials', () => {
    const grant = () => api().post('/auth/token').type('form');

    function expectClientToken(res: Res): string {
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/token');
      expect(res.headers['cache-control']).to.equal('no-store');
      expect(res.body.token_type).to.equal('Bearer');
      expect(res.body).to.not.have.property('refresh_token');
      const { payload } = decodeJwt(res.body.access_token as string);
      expect(payload.client_id).to.equal('svc');
      expect(payload.sub).to.equal('svc');
      expect(payload).to.not.have.property('sid');
      return res.body.access_token as string;
    }

    it('issues an access token without a refresh token when the client authenticates with Basic', async () => {
      expectClientToken(
        await grant()
          .set('authorization', basicAuth('svc', SVC_SECRET))
          .send(form({ grant_type: 'client_credentials' })),
      );
    });

    it('issues an access token without a refresh token when the client authenticates in the body', async () => {
      expectClientToken(await grant().send(form({ grant_type: 'client_credentials', client_id: 'svc', client_secret: SVC_SECRET })));
    });

    it('answers 401 invalid_client with a Basic challenge when the Basic secret is wrong', async () => {
      const res = await grant()
        .set('authorization', basicAuth('svc', 'wrong-secret-value'))
        .send(form({ grant_type: 'client_credentials' }));
      expectError(res, 401, 'invalid_client', 'post', '/auth/token');
      expect(res.headers['www-authenticate']).to.match(/^Basic\b/);
      expect(res.headers['www-authenticate']).to.contain('realm="notify"');
    });

    it('answers 401 invalid_client when the body secret is wrong', async () => {
      const res = await grant().send(form({ grant_type: 'client_credentials', client_id: 'svc', client_secret: 'wrong-secret-value' }));
      expectError(res, 401, 'invalid_client', 'post', '/auth/token');
      expect(res.body).to.not.have.property('access_token');
    });

    it('answers 400 invalid_request when Basic and body credentials are both sent', async () => {
      const res = await grant()
        .set('authorization', basicAuth('svc', SVC_SECRET))
        .send(form({ grant_type: 'client_credentials', client_id: 'svc', client_secret: SVC_SECRET }));
      expectError(res, 400, 'invalid_request', 'post', '/auth/token');
    });

    it('answers 401 invalid_client when a user account uses client_credentials with its right password', async () => {
      const basic = await grant()
        .set('authorization', basicAuth('alice', PASSWORD))
        .send(form({ grant_type: 'client_credentials' }));
      expectError(basic, 401, 'invalid_client', 'post', '/auth/token');
      const body = await grant().send(form({ grant_type: 'client_credentials', client_id: 'alice', client_secret: PASSWORD }));
      expectError(body, 401, 'invalid_client', 'post', '/auth/token');
    });

    it('publishes to public/news (201) when the client-credentials token is used', async () => {
      const token = expectClientToken(
        await grant()
          .set('authorization', basicAuth('svc', SVC_SECRET))
          .send(form({ grant_type: 'client_credentials' })),
      );
      const res = await publish(token);
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expectResponseMatchesSpec(res, 'post', '/events');
    });
  });

  describe('POST /auth/revoke (RFC 7009)', () => {
    it('answers 200, then refuses the refresh token and closes its stream when a refresh token is revoked', async () => {
      const first = await t.login('newsroom');
      const client = stream('/events?topic=public/news', first.access_token);
      await client.waitFor((e) => e.type === 'connected');
      const res = await api()
        .post('/auth/revoke')
        .type('form')
        .send(form({ token: first.refresh_token, token_type_hint: 'refresh_token' }));
      expect(res.status).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/revoke');
      await expectClosed(client, 'revoked');
      expectError(await refresh(first.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
      expectError(await publish(first.access_token), 401, 'invalid_token', 'post', '/events');
    });

    it('answers 200 when the token is garbage', async () => {
      const res = await api()
        .post('/auth/revoke')
        .type('form')
        .send(form({ token: 'not-a-token-at-all' }));
      expect(res.status).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/revoke');
    });

    it('answers 400 invalid_request when the token is missing', async () => {
      expectError(
        await api()
          .post('/auth/revoke')
          .type('form')
          .send(form({ token_type_hint: 'refresh_token' })),
        400,
        'invalid_request',
        'post',
        '/auth/revoke',
      );
      expectError(await api().post('/auth/revoke').send({}), 400, 'invalid_request', 'post', '/auth/revoke');
    });
  });

  describe('POST /auth/logout', () => {
    it('answers 204 and ends the family when a bearer token signs out', async () => {
      const first = await t.login('newsroom');
      const res = await api().post('/auth/logout').set('authorization', `Bearer ${first.access_token}`);
      expect(res.status).to.equal(204);
      expectResponseMatchesSpec(res, 'post', '/auth/logout');
      expectError(await refresh(first.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
      const after = await publish(first.access_token);
      expectError(after, 401, 'invalid_token', 'post', '/events');
      expect(after.headers['www-authenticate']).to.contain('error="invalid_token"');
    });

    it('answers 403 csrf_rejected when the cookie authenticates and there is no Origin', async () => {
      const { at, rt } = await cookieLogin('alice');
      const res = await api().post('/auth/logout').set('cookie', `notify_at=${at}`);
      expectError(res, 403, 'csrf_rejected', 'post', '/auth/logout');
      // Nothing was signed out.
      expect((await refresh(rt)).status).to.equal(200);
    });

    it('answers 204 and clears both cookies when the cookie authenticates from our own Origin', async () => {
      const { at, rt } = await cookieLogin('alice');
      const res = await api().post('/auth/logout').set('cookie', `notify_at=${at}; notify_rt=${rt}`).set('origin', t.url);
      expect(res.status, JSON.stringify(res.body)).to.equal(204);
      expectResponseMatchesSpec(res, 'post', '/auth/logout');
      const access = cookieNamed(res.headers, 'notify_at');
      const refreshCookie = cookieNamed(res.headers, 'notify_rt');
      expect(access.value).to.equal('');
      expect(refreshCookie.value).to.equal('');
      expect(isExpired(access), JSON.stringify(access)).to.equal(true);
      expect(isExpired(refreshCookie), JSON.stringify(refreshCookie)).to.equal(true);
      expect(access.attributes.path).to.equal('/');
      expect(refreshCookie.attributes.path).to.equal('/auth');
      expectError(await refresh(rt), 400, 'invalid_grant', 'post', '/auth/token');
    });
  });

  describe('cookies', () => {
    it('sets HttpOnly SameSite=Strict notify_at (Path=/) and notify_rt (Path=/auth) without Secure over plain HTTP when cookie is true', async () => {
      const res = await api().post('/auth/login').send({ username: 'alice', password: PASSWORD, cookie: true });
      expect(res.status).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/login');
      const access = cookieNamed(res.headers, 'notify_at');
      const refreshCookie = cookieNamed(res.headers, 'notify_rt');
      expect(access.value).to.equal(res.body.access_token);
      expect(refreshCookie.value).to.match(/^[\w-]{43}$/);
      expect(res.body.refresh_token, 'no refresh token in a cookie-mode body').to.equal(undefined);
      for (const [cookie, path] of [
        [access, '/'],
        [refreshCookie, '/auth'],
      ] as const) {
        expect(cookie.attributes.httponly, cookie.name).to.equal(true);
        expect(String(cookie.attributes.samesite).toLowerCase(), cookie.name).to.equal('strict');
        expect(cookie.attributes.path, cookie.name).to.equal(path);
        expect(cookie.attributes, cookie.name).to.not.have.property('secure');
        expect(cookie.attributes, cookie.name).to.not.have.property('domain');
      }
      expect(setCookies(res.headers).map((c) => c.name)).to.not.include.members(['__Host-notify_at', '__Secure-notify_rt']);
    });

    describe('with COOKIE_SECURE=true', () => {
      let secure: TestServer;
      before(async () => {
        secure = await startServer({ COOKIE_SECURE: 'true' });
        await secure.addAccount('alice', ['user']);
      });
      after(() => secure.close());

      it('names the cookies __Host-notify_at and __Secure-notify_rt and marks them Secure', async () => {
        const res = await request(secure.url).post('/auth/login').send({ username: 'alice', password: PASSWORD, cookie: true });
        expect(res.status).to.equal(200);
        expectResponseMatchesSpec(res, 'post', '/auth/login');
        const access = cookieNamed(res.headers, '__Host-notify_at');
        const refreshCookie = cookieNamed(res.headers, '__Secure-notify_rt');
        for (const [cookie, path] of [
          [access, '/'],
          [refreshCookie, '/auth'],
        ] as const) {
          expect(cookie.attributes.secure, cookie.name).to.equal(true);
          expect(cookie.attributes.httponly, cookie.name).to.equal(true);
          expect(String(cookie.attributes.samesite).toLowerCase(), cookie.name).to.equal('strict');
          expect(cookie.attributes.path, cookie.name).to.equal(path);
        }
        expect(access.attributes).to.not.have.property('domain');
        expect(setCookies(res.headers).map((c) => c.name)).to.not.include.members(['notify_at', 'notify_rt']);
      });
    });

    it('authenticates an EventSource stream when only the notify_at cookie is sent', async () => {
      const { at } = await cookieLogin('alice');
      const client = stream('/events?topic=users/alice/**', undefined, { cookie: `notify_at=${at}` });
      const connected = await client.waitFor((e) => e.type === 'connected');
      expect(JSON.parse(connected.data).topics).to.deep.equal(['users/alice/**']);
    });

    it('answers 403 csrf_rejected and publishes nothing when POST /events is cookie-authenticated from a foreign Origin', async () => {
      const publisher = await t.login('newsroom');
      const { at } = await cookieLogin('newsroom');
      const client = stream('/events?topic=public/news', publisher.access_token);
      await client.waitFor((e) => e.type === 'connected');
      const res = await api()
        .post('/events')
        .set('cookie', `notify_at=${at}`)
        .set('origin', EVIL)
        .send({ topics: ['public/news'], data: 'forged' });
      expectError(res, 403, 'csrf_rejected', 'post', '/events');
      const marker = await publish(publisher.access_token);
      expect(marker.status).to.equal(201);
      await client.waitFor((e) => e.id === marker.body.id);
      expect(client.events.map((e) => e.data)).to.not.include('"forged"');
    });

    it('uses the Authorization header and ignores the cookie of another user when both are sent', async () => {
      const alice = await t.login('alice');
      const { at: carolCookie } = await cookieLogin('carol');
      const client = stream('/events?topic=users/alice/**', alice.access_token, { cookie: `notify_at=${carolCookie}` });
      await client.waitFor((e) => e.type === 'connected');
      const res = await api()
        .get('/events')
        .query({ topic: 'users/carol/**' })
        .set('authorization', `Bearer ${alice.access_token}`)
        .set('cookie', `notify_at=${carolCookie}`);
      expectError(res, 403, 'insufficient_scope', 'get', '/events');
    });

    it('refreshes and sets new cookies when only the notify_rt cookie is sent from our own Origin', async () => {
      const { rt, at } = await cookieLogin('alice');
      const res = await api()
        .post('/auth/token')
        .type('form')
        .set('cookie', `notify_rt=${rt}`)
        .set('origin', t.url)
        .send(form({ grant_type: 'refresh_token' }));
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/token');
      const access = cookieNamed(res.headers, 'notify_at');
      const refreshCookie = cookieNamed(res.headers, 'notify_rt');
      expect(access.value).to.equal(res.body.access_token).and.not.equal(at);
      expect(refreshCookie.value).to.be.a('string').and.not.equal(rt);
      // Cookie mode: the refresh token lives only in its HttpOnly cookie, never in a script-readable body.
      expect(res.body.refresh_token).to.equal(undefined);
      expect(refreshCookie.attributes.path).to.equal('/auth');
      expect(refreshCookie.attributes.httponly).to.equal(true);
    });

    it('answers 403 csrf_rejected and does not rotate when a refresh is authenticated by the notify_rt cookie from a foreign or no Origin', async () => {
      const { rt } = await cookieLogin('alice');
      const cookieRefresh = () => api().post('/auth/token').type('form').set('cookie', `notify_rt=${rt}`);
      for (const res of [
        await cookieRefresh().send(form({ grant_type: 'refresh_token' })),
        await cookieRefresh()
          .set('origin', EVIL)
          .send(form({ grant_type: 'refresh_token' })),
      ]) {
        expectError(res, 403, 'csrf_rejected', 'post', '/auth/token');
        expect(res.headers['set-cookie']).to.equal(undefined);
      }
      // Not spent by the refused requests.
      expect((await refresh(rt)).status).to.equal(200);
    });
  });

  describe('bearer errors', () => {
    const body = { topics: ['public/news'], data: 'x' };

    it('answers 401 with a bare Bearer realm="notify" challenge when no token is sent', async () => {
      const res = await api().post('/events').send(body);
      expectError(res, 401, 'unauthorized', 'post', '/events');
      expect(res.headers['www-authenticate']).to.match(/^Bearer realm="notify"/);
      expect(res.headers['www-authenticate']).to.not.contain('error=');
    });

    it('answers 401 with error="invalid_token" when the token is garbage', async () => {
      const res = await api().post('/events').set('authorization', 'Bearer garbage.token.here').send(body);
      expectError(res, 401, 'invalid_token', 'post', '/events');
      expect(res.headers['www-authenticate']).to.match(/^Bearer realm="notify"/);
      expect(res.headers['www-authenticate']).to.contain('error="invalid_token"');
    });

    it('answers 400 invalid_request when the Authorization header is malformed (Bearer a b)', async () => {
      const res = await api().post('/events').set('authorization', 'Bearer a b').send(body);
      expectError(res, 400, 'invalid_request', 'post', '/events');
    });

    it('answers 400 and does not accept the token when it is given as ?access_token= in the query', async () => {
      const publisher = await t.login('newsroom');
      const res = await api().post('/events').query({ access_token: publisher.access_token }).send(body);
      expectError(res, 400, 'invalid_request', 'post', '/events');
      const sub = await api().get('/events').query({ topic: 'public/news', access_token: publisher.access_token });
      expectError(sub, 400, 'invalid_request', 'get', '/events');
      // Even alongside a valid header the query token is refused, not ignored.
      const both = await api()
        .post('/events')
        .query({ access_token: publisher.access_token })
        .set('authorization', `Bearer ${publisher.access_token}`)
        .send(body);
      expectError(both, 400, 'invalid_request', 'post', '/events');
    });
  });

  describe('account changes', () => {
    it('ends the open stream with closed/revoked and refuses the token when the account is removed', async () => {
      const bob = await t.login('bob');
      const client = stream('/events?topic=users/bob/**', bob.access_token);
      await client.waitFor((e) => e.type === 'connected');
      expect(await t.server.users.remove('bob')).to.equal(true);
      await expectClosed(client, 'revoked');
      const res = await api().get('/events').query({ topic: 'users/bob/**' }).set('authorization', `Bearer ${bob.access_token}`);
      expectError(res, 401, 'invalid_token', 'get', '/events');
      expectError(await refresh(bob.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
    });

    it('ends the open stream, refuses the token and the old refresh token when the password changes', async () => {
      const erin = await t.login('erin');
      const client = stream('/events?topic=users/erin/**', erin.access_token);
      await client.waitFor((e) => e.type === 'connected');
      await t.server.users.setPasswordHash('erin', await hashPassword('a brand new passphrase', { logN: TEST_LOG_N }));
      await expectClosed(client, 'revoked');
      const res = await api().get('/events').query({ topic: 'users/erin/**' }).set('authorization', `Bearer ${erin.access_token}`);
      expectError(res, 401, 'invalid_token', 'get', '/events');
      expectError(await refresh(erin.refresh_token), 400, 'invalid_grant', 'post', '/auth/token');
      // The new password works and gives a usable token.
      const again = await t.login('erin', 'a brand new passphrase');
      const fresh = stream('/events?topic=users/erin/**', again.access_token);
      await fresh.waitFor((e) => e.type === 'connected');
    });
  });

  describe('CORS', () => {
    it('sends no Access-Control-Allow-Origin when the Origin is foreign or null', async () => {
      for (const origin of [EVIL, 'null']) {
        const res = await api().get('/.well-known/jwks.json').set('origin', origin);
        expect(res.status).to.equal(200);
        expect(res.headers, origin).to.not.have.property('access-control-allow-origin');
        expect(res.headers, origin).to.not.have.property('access-control-allow-credentials');
        const preflight = await api()
          .options('/auth/login')
          .set('origin', origin)
          .set('access-control-request-method', 'POST')
          .set('access-control-request-headers', 'content-type');
        expect(preflight.headers, origin).to.not.have.property('access-control-allow-origin');
      }
    });

    describe('with CORS_ORIGINS=https://app.example', () => {
      let cors: TestServer;
      before(async () => {
        cors = await startServer({ CORS_ORIGINS: 'https://app.example' });
      });
      after(() => cors.close());

      it('reflects the allowed origin with credentials and still refuses others', async () => {
        const res = await request(cors.url).get('/.well-known/jwks.json').set('origin', 'https://app.example');
        expect(res.status).to.equal(200);
        expect(res.headers['access-control-allow-origin']).to.equal('https://app.example');
        expect(res.headers['access-control-allow-credentials']).to.equal('true');
        const preflight = await request(cors.url)
          .options('/auth/login')
          .set('origin', 'https://app.example')
          .set('access-control-request-method', 'POST')
          .set('access-control-request-headers', 'content-type');
        expect(preflight.headers['access-control-allow-origin']).to.equal('https://app.example');
        expect(preflight.headers['access-control-allow-credentials']).to.equal('true');
        const other = await request(cors.url).get('/.well-known/jwks.json').set('origin', EVIL);
        expect(other.headers).to.not.have.property('access-control-allow-origin');
      });
    });
  });
});
