import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { es256Signer, jws, payloadOf, subscribeWith } from '../attacks/attack-kit.js';
import { basicAuth, cookieNamed, form } from '../helpers/auth.js';
import { DELEGATION_ROLES, startServerWithIssuers } from '../helpers/issuers.js';
import { expectResponseMatchesSpec } from '../helpers/openapi.js';
import { NOTIFY_AUDIENCE, startProvider, type TestProvider } from '../helpers/oidc-provider.js';
import { hashPassword } from '../../src/auth/password.js';
import { openStream, postJson, TEST_LOG_N, type TestServer } from '../helpers/server.js';
import { readJson } from '../helpers/streams.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const SUBJECT_NAME = 'urn:notify:params:oauth:token-type:subject-name';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const TICKET = 'urn:notify:params:oauth:token-type:ticket';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/** The backend's own signing key, configured in ISSUERS_FILE as a static JWKS for subject tokens. */
const shopKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/**
 * Issue 10 §2: a backend exchanges its client credentials for a short-lived token for one of its
 * users (RFC 8693), bounded by its role's `delegate`, or for a one-time browser ticket.
 */
describe('token exchange (RFC 8693) and browser tickets', function () {
  this.timeout(20_000);
  let t: TestServer;
  let idp: TestProvider;
  let keyDir: string;
  let secret: string;

  before(async () => {
    idp = await startProvider();
    keyDir = mkdtempSync(path.join(os.tmpdir(), 'notify-shop-key-'));
    const jwksFile = path.join(keyDir, 'shop.jwks');
    writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...shopKey.publicKey.export({ format: 'jwk' }), kid: 'shop-1', alg: 'ES256' }] }));
    t = await startServerWithIssuers(
      [
        {
          alias: 'shop',
          issuer: 'https://shop.example',
          audience: 'notify',
          algorithms: ['ES256'],
          keys: { jwksFile },
          acceptAs: ['subject_token'],
          type: 'JWT',
        },
        {
          alias: 'idp',
          issuer: idp.issuer,
          audience: NOTIFY_AUDIENCE,
          algorithms: ['ES256'],
          keys: { discovery: true },
          grants: { fixed: { subscribe: ['public/**'] } },
        },
      ],
      {},
      (c) => ({ ...c, roles: DELEGATION_ROLES }),
    );
    secret = 'app-secret-app-secret-app-secret';
    await t.addAccount('app', ['app'], { kind: 'service', password: secret });
    await t.addAccount('newsroom', ['publisher'], { kind: 'service', password: secret });
  });
  after(async () => {
    await t?.close();
    await idp?.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const exchange = async (fields: Record<string, string>, client = 'app', headers: Record<string, string> = {}) =>
    readJson(
      await fetch(`${t.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(client, secret), ...headers },
        body: form({ grant_type: EXCHANGE, ...fields }),
      }),
    );
  const shopToken = (claims: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return jws(
      { alg: 'ES256', typ: 'JWT', kid: 'shop-1' },
      { iss: 'https://shop.example', aud: 'notify', sub: 'u42', iat: now, exp: now + 60, ...claims },
      es256Signer(shopKey.privateKey),
    );
  };

  it('mints an access token for a subject the backend names, in its own namespace, with the whole delegation by default', async () => {
    const res = await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expectResponseMatchesSpec(res, 'post', '/auth/token');
    expect(res.body).to.include({ token_type: 'Bearer', issued_token_type: ACCESS_TOKEN });
    expect(res.body).to.not.have.property('refresh_token');
    expect(res.headers['cache-control']).to.equal('no-store');
    const claims = payloadOf(res.body.access_token);
    expect(claims).to.include({ sub: 'app~alice', client_id: 'app' });
    expect(claims.topics).to.deep.equal({ publish: [], subscribe: ['users/app~alice/**', 'public/**'] });
    expect(res.body.scope).to.equal('subscribe:users/app~alice/** subscribe:public/**');
    expect((await subscribeWith(t.url, res.body.access_token, 'users/app~alice/inbox')).status).to.equal(200);
    expect((await subscribeWith(t.url, res.body.access_token, 'users/app~bob/inbox')).status).to.equal(403);
    expect((await postJson(`${t.url}/events`, { topics: ['public/x'], data: 1 }, res.body.access_token)).status).to.equal(403);
  });

  it('narrows the grants to the requested scope, {sub} standing for the subject', async () => {
    const res = await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME, scope: 'subscribe:users/{sub}/inbox' });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(payloadOf(res.body.access_token).topics).to.deep.equal({ publish: [], subscribe: ['users/app~alice/inbox'] });
  });

  for (const scope of [
    'subscribe:users/app~bob/**',
    'subscribe:**',
    'publish:public/news',
    'subscribe:users/*/**',
    'admin',
    'subscribe:a//b',
  ]) {
    it(`refuses a scope beyond the client's delegation: ${scope}`, async () => {
      const res = await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME, scope });
      expect(res.status).to.equal(400);
      expect(res.body.error).to.equal('invalid_scope');
      expectResponseMatchesSpec(res, 'post', '/auth/token');
    });
  }

  it('refuses a client whose role does not delegate (unauthorized_client) and a wrong secret (invalid_client)', async () => {
    const refused = await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME }, 'newsroom');
    expect(refused.status).to.equal(400);
    expect(refused.body.error).to.equal('unauthorized_client');
    const wrong = await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME }, 'app', {
      authorization: basicAuth('app', 'wrong'),
    });
    expect(wrong.status).to.equal(401);
    expect(wrong.body.error).to.equal('invalid_client');
    expectResponseMatchesSpec(wrong, 'post', '/auth/token');
  });

  it('refuses the old secret at once after a rotation, although it verified moments before (the verified-secret cache is bound to the stored hash)', async () => {
    await t.addAccount('rotating', ['app'], { kind: 'service', password: secret });
    const first = await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME }, 'rotating');
    expect(first.status).to.equal(200);
    expect((await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME }, 'rotating')).status).to.equal(200);
    await t.server.users.setPasswordHash('rotating', await hashPassword('a-new-secret-a-new-secret', { logN: TEST_LOG_N }));
    const old = await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME }, 'rotating');
    expect(old.status).to.equal(401);
    expect(old.body.error).to.equal('invalid_client');
  });

  for (const [what, fields, code] of [
    ['a subject name with a slash', { subject_token: 'a/b', subject_token_type: SUBJECT_NAME }, 'invalid_request'],
    ['a subject name with the separator', { subject_token: 'x~y', subject_token_type: SUBJECT_NAME }, 'invalid_request'],
    ['a subject name too long once namespaced', { subject_token: 'x'.repeat(62), subject_token_type: SUBJECT_NAME }, 'invalid_request'],
    ['an unknown subject_token_type', { subject_token: 'alice', subject_token_type: 'urn:x' }, 'invalid_request'],
    [
      'an actor_token',
      { subject_token: 'alice', subject_token_type: SUBJECT_NAME, actor_token: 'x', actor_token_type: JWT },
      'invalid_request',
    ],
    [
      'another audience',
      { subject_token: 'alice', subject_token_type: SUBJECT_NAME, audience: 'https://elsewhere.example' },
      'invalid_target',
    ],
  ] as const) {
    it(`refuses ${what} (${code})`, async () => {
      const res = await exchange(fields);
      expect(res.status).to.equal(400);
      expect(res.body.error).to.equal(code);
    });
  }

  it('takes the subject from a JWT the backend signed with its configured key', async () => {
    const res = await exchange({ subject_token: shopToken(), subject_token_type: JWT });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(payloadOf(res.body.access_token).sub).to.equal('shop~u42');
  });

  it('takes the subject from a user token of a trusted identity provider', async () => {
    const { accessToken } = await idp.userTokens('carol');
    const res = await exchange({ subject_token: accessToken, subject_token_type: ACCESS_TOKEN });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(payloadOf(res.body.access_token).sub).to.equal('idp~carol');
  });

  it('refuses a subject token that is forged, expired, for another audience, or of an unknown issuer (invalid_grant)', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = jws({ alg: 'ES256', typ: 'JWT', kid: 'shop-1' }, payloadOf(shopToken()), es256Signer(other.privateKey));
    const now = Math.floor(Date.now() / 1000);
    for (const token of [
      forged,
      shopToken({ iat: now - 600, exp: now - 300 }),
      shopToken({ aud: 'someone-else' }),
      shopToken({ iss: 'https://unknown.example' }),
      'not-a-jwt',
    ]) {
      const res = await exchange({ subject_token: token, subject_token_type: JWT });
      expect(res.status, token).to.equal(400);
      expect(res.body.error).to.equal('invalid_grant');
    }
  });

  it('never accepts a subject-token-only issuer as a bearer token', async () => {
    const res = await subscribeWith(t.url, shopToken({ topics: { subscribe: ['**'] } }), 'public/news');
    expect(res.status).to.equal(401);
  });

  describe('browser tickets', () => {
    const ticket = async (subject = 'alice') => {
      const res = await exchange({ subject_token: subject, subject_token_type: SUBJECT_NAME, requested_token_type: TICKET });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/auth/token');
      expect(res.body).to.include({ issued_token_type: TICKET, token_type: 'N_A' });
      return res.body.access_token as string;
    };
    const redeem = async (value: string, origin = t.url) =>
      fetch(`${t.url}/auth/ticket`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ ticket: value }),
      });

    it('redeems a ticket once for the HttpOnly access-token cookie, with no token in the body; a replay is invalid_grant', async () => {
      const value = await ticket();
      const res = await redeem(value);
      const answer = await readJson(res);
      expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
      expectResponseMatchesSpec(answer, 'post', '/auth/ticket');
      expect(Object.keys(answer.body).sort()).to.deep.equal(['expires_in', 'subject']);
      const cookie = cookieNamed({ 'set-cookie': res.headers.getSetCookie() }, 'notify_at');
      expect(cookie.attributes).to.include({ httponly: true, samesite: 'strict', path: '/' });
      expect(payloadOf(cookie.value)).to.include({ sub: 'app~alice', client_id: 'app' });
      const stream = openStream(`${t.url}/events?topic=${encodeURIComponent('users/app~alice/**')}`, undefined, {
        headers: { cookie: `notify_at=${cookie.value}` },
      });
      try {
        await stream.waitFor((event) => event.type === 'connected');
      } finally {
        stream.close();
      }
      const replay = await readJson(await redeem(value));
      expect(replay.status).to.equal(400);
      expect(replay.body.error).to.equal('invalid_grant');
      expectResponseMatchesSpec(replay, 'post', '/auth/ticket');
    });

    it('renews a ticket-cookie stream in-band with the cookie of a second ticket', async () => {
      const cookieOf = async (value: string) => {
        const res = await redeem(value);
        expect(res.status).to.equal(200);
        return cookieNamed({ 'set-cookie': res.headers.getSetCookie() }, 'notify_at').value;
      };
      const first = await cookieOf(await ticket());
      const stream = openStream(`${t.url}/events?topic=${encodeURIComponent('users/app~alice/**')}`, undefined, {
        headers: { cookie: `notify_at=${first}` },
      });
      try {
        const connected = JSON.parse((await stream.waitFor((event) => event.type === 'connected')).data) as { renewUrl: string };
        const second = await cookieOf(await ticket());
        const renewed = await fetch(`${t.url}${connected.renewUrl}`, {
          method: 'POST',
          headers: { cookie: `notify_at=${second}`, origin: t.url },
        });
        expect(renewed.status, await renewed.clone().text()).to.equal(200);
        await stream.waitFor((event) => event.type === 'token-renewed');
      } finally {
        stream.close();
      }
    });

    it('refuses a ticket redeemed from a foreign origin (login CSRF), and an unknown ticket', async () => {
      const value = await ticket();
      const foreign = await readJson(await redeem(value, 'https://evil.example'));
      expect(foreign.status).to.equal(403);
      expect(foreign.body.error).to.equal('csrf_rejected');
      const unknown = await readJson(await redeem(randomBytes(32).toString('base64url')));
      expect(unknown.body.error).to.equal('invalid_grant');
    });

    it('refuses a ticket whose subject was revoked after it was issued', async () => {
      const value = await ticket('dora');
      t.server.revocations.revokeSubject('app~dora', 'test');
      const res = await readJson(await redeem(value));
      expect(res.status).to.equal(400);
      expect(res.body.error).to.equal('invalid_grant');
    });
  });
});
