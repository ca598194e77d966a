import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { basicAuth, form } from '../helpers/auth.js';
import { startHostileKeyServer, type HostileKeyServer } from '../helpers/hostile-key-server.js';
import { DELEGATION_ROLES, startServerWithIssuers } from '../helpers/issuers.js';
import { newSigningKey, NOTIFY_AUDIENCE, startProvider, type SigningKey, type TestProvider } from '../helpers/oidc-provider.js';
import { type TestServer } from '../helpers/server.js';
import { readJson } from '../helpers/streams.js';
import { b64url, es256Signer, expectError, expectInvalidToken, hmacSigner, jws, payloadOf, subscribeWith } from './attack-kit.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const SUBJECT_NAME = 'urn:notify:params:oauth:token-type:subject-name';
const TICKET = 'urn:notify:params:oauth:token-type:ticket';
const SECRET = 'attack-suite-secret-attack-suite';

/** A stand-in for anything an attacker wants the server to fetch: every request to it is recorded. */
async function recordingServer(answer: (path: string) => { status: number; body: unknown }) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    const { status, body } = answer(path);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * Attacks on bring-your-own-identity (issue 10): issuer confusion, key confusion, SSRF through key
 * URLs, delegation beyond the client's role, ticket replay and subject-namespace collision. Real
 * OpenID Provider (`oidc-provider`), real server, real requests.
 */
describe('attacks: external issuers, token exchange and tickets', function () {
  this.timeout(30_000);
  let idp: TestProvider;
  let other: TestProvider;
  let hostile: HostileKeyServer;
  let attacker: Awaited<ReturnType<typeof recordingServer>>;
  let lyingDiscovery: Awaited<ReturnType<typeof recordingServer>>;
  let t: TestServer;

  before(async () => {
    idp = await startProvider({ extraClaims: { alice: { realm_access: { roles: ['notify-user'] } } } });
    other = await startProvider();
    hostile = await startHostileKeyServer();
    attacker = await recordingServer(() => ({ status: 200, body: { keys: [] } }));
    // A discovery document that names an issuer other than its own, and one that points jwks_uri into a private network.
    lyingDiscovery = await recordingServer((path) =>
      path === '/mismatch/.well-known/openid-configuration'
        ? { status: 200, body: { issuer: 'https://someone-else.example', jwks_uri: `${attacker.url}/jwks` } }
        : path === '/internal/.well-known/openid-configuration'
          ? { status: 200, body: { issuer: `${lyingDiscovery.url}/internal`, jwks_uri: 'http://10.255.255.1/jwks' } }
          : { status: 404, body: {} },
    );
    const common = { audience: NOTIFY_AUDIENCE, algorithms: ['ES256'], grants: { fixed: { subscribe: ['public/**'] } } };
    t = await startServerWithIssuers(
      [
        {
          alias: 'kc',
          issuer: idp.issuer,
          audience: NOTIFY_AUDIENCE,
          algorithms: ['ES256'],
          keys: { discovery: true },
          grants: { roles: { claim: 'realm_access.roles', map: { 'notify-user': 'user' } } },
          fetch: { cooldownMs: 0 },
        },
        { ...common, alias: 'other', issuer: other.issuer, keys: { jwksUri: `${other.issuer}/jwks` } },
        { ...common, alias: 'mismatch', issuer: `${lyingDiscovery.url}/mismatch`, keys: { discovery: true } },
        { ...common, alias: 'internal', issuer: `${lyingDiscovery.url}/internal`, keys: { discovery: true } },
        { ...common, alias: 'redirect', issuer: 'https://redirect.example', keys: { jwksUri: `${hostile.url}/redirect` } },
      ],
      {},
      (c) => ({ ...c, roles: DELEGATION_ROLES }),
    );
    await t.addAccount('alice', ['user']);
    await t.addAccount('app', ['app'], { kind: 'service', password: SECRET });
    await t.addAccount('newsroom', ['publisher', 'admin'], { kind: 'service', password: SECRET });
    await t.addAccount('ops', ['ops'], { kind: 'service', password: SECRET });
  });
  after(async () => {
    await t?.close();
    await Promise.all([idp?.stop(), other?.stop(), hostile?.close(), attacker?.close(), lyingDiscovery?.close()]);
  });

  const now = () => Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: idp.issuer,
    sub: 'mallory',
    aud: NOTIFY_AUDIENCE,
    iat: now(),
    exp: now() + 120,
    jti: randomBytes(6).toString('hex'),
    realm_access: { roles: ['notify-user'] },
    ...extra,
  });
  const signed = (key: SigningKey, header: Record<string, unknown>, payload: Record<string, unknown>) =>
    jws({ alg: 'ES256', typ: 'at+jwt', kid: key.kid, ...header }, payload, es256Signer(key.privateKey));
  const exchange = async (fields: Record<string, string>, client = 'app') =>
    readJson(
      await fetch(`${t.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(client, SECRET) },
        body: form({ grant_type: EXCHANGE, ...fields }),
      }),
    );

  it('accepts a token the harness signs with the provider key (control)', async () => {
    expect((await subscribeWith(t.url, signed(idp.keys[0]!, {}, claims()), 'users/kc~mallory/inbox')).status).to.equal(200);
  });

  describe('issuer confusion (RFC 8725 §3.8)', () => {
    it("refuses a token signed by provider B that names provider A as iss: 401, B's keys never consulted", async () => {
      const before = other.requests.length;
      expectInvalidToken(await subscribeWith(t.url, signed(other.keys[0]!, {}, claims()), 'users/kc~mallory/inbox'));
      expect(other.requests.length).to.equal(before);
    });

    it("refuses a provider-signed token that claims notify's own iss: 401 (our issuer is never an external one)", async () => {
      expectInvalidToken(await subscribeWith(t.url, signed(idp.keys[0]!, {}, claims({ iss: 'http://notify.test' }))));
    });

    it('refuses an iss that differs only in a trailing slash or case: 401 (exact string match)', async () => {
      for (const iss of [`${idp.issuer}/`, idp.issuer.toUpperCase(), ` ${idp.issuer}`]) {
        expectInvalidToken(await subscribeWith(t.url, signed(idp.keys[0]!, {}, claims({ iss }))));
      }
    });

    it('refuses every token of an issuer whose discovery document names another issuer: 401, its jwks_uri never fetched (OIDC Discovery §4.3)', async () => {
      const token = signed(newSigningKey(), {}, claims({ iss: `${lyingDiscovery.url}/mismatch` }));
      expectInvalidToken(await subscribeWith(t.url, token));
      expect(lyingDiscovery.requests).to.include('/mismatch/.well-known/openid-configuration');
      expect(attacker.requests).to.deep.equal([]);
    });
  });

  describe('key confusion (RFC 8725 §2.1, §3.1)', () => {
    it("refuses HS256 signed with the provider's public key (JWK or PEM bytes) as the secret: 401", async () => {
      const { d: _private, ...publicJwk } = idp.keys[0]!.jwk;
      const pem = idp.keys[0]!.privateKey.export({ type: 'pkcs8', format: 'pem' });
      for (const secret of [JSON.stringify(publicJwk), String(pem), String(publicJwk.x)]) {
        const token = jws({ alg: 'HS256', typ: 'at+jwt', kid: idp.keys[0]!.kid }, claims(), hmacSigner('sha256', secret));
        expectInvalidToken(await subscribeWith(t.url, token, 'users/kc~mallory/inbox'));
      }
    });

    it("refuses a token that carries the attacker's own key in a jwk header, or points jku/x5u at the attacker: 401, nothing fetched (RFC 8725 §3.10)", async () => {
      const mine = newSigningKey();
      const { d: _private, ...publicJwk } = mine.jwk;
      const headers = [
        { jwk: publicJwk },
        { jku: `${attacker.url}/jwks` },
        { x5u: `${attacker.url}/cert.pem` },
        { jwk: publicJwk, kid: undefined },
      ];
      for (const header of headers) {
        expectInvalidToken(await subscribeWith(t.url, signed(mine, header, claims()), 'users/kc~mallory/inbox'));
      }
      expect(attacker.requests).to.deep.equal([]);
    });

    it('refuses an RSA-signed token with alg RS256 against an ES256-only issuer, and alg none: 401', async () => {
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const { createSign } = await import('node:crypto');
      const rs256 = jws({ alg: 'RS256', typ: 'at+jwt' }, claims(), (input) => createSign('sha256').update(input).sign(rsa.privateKey));
      expectInvalidToken(await subscribeWith(t.url, rs256, 'users/kc~mallory/inbox'));
      expectInvalidToken(await subscribeWith(t.url, `${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(claims())}.`));
    });

    it('refuses a token with a kid that tries injection or traversal: 401', async () => {
      for (const kid of ["' OR 1=1 --", '../../etc/passwd', 'x'.repeat(5000)]) {
        expectInvalidToken(await subscribeWith(t.url, signed(newSigningKey(), { kid }, claims()), 'users/kc~mallory/inbox'));
      }
    });
  });

  describe('SSRF through key URLs (RFC 8725 §2.9, §3.10)', () => {
    it('never fetches a discovered jwks_uri that points into a private network over plain http: 401, and /readyz says why', async () => {
      expectInvalidToken(await subscribeWith(t.url, signed(newSigningKey(), {}, claims({ iss: `${lyingDiscovery.url}/internal` }))));
      // The discovery ran while that request waited, so /readyz already knows.
      const degraded = (await readJson(await fetch(`${t.url}/readyz`))).body.degradedIssuers;
      expect(degraded).to.deep.include({ alias: 'internal', issuer: `${lyingDiscovery.url}/internal`, reason: 'discovery_bad_jwks_uri' });
    });

    it('does not follow a redirect from a key URL to another address: 401, the target never requested', async () => {
      expectInvalidToken(await subscribeWith(t.url, signed(newSigningKey(), {}, claims({ iss: 'https://redirect.example' }))));
      expect(hostile.requests).to.include('/redirect');
      expect(hostile.requests).to.not.include('/internal');
    });
  });

  describe('delegation beyond the client role', () => {
    for (const scope of [
      'subscribe:**',
      'subscribe:users/*/**',
      'subscribe:users/app~bob/**',
      'publish:users/{sub}/inbox',
      'subscribe:users/alice/**',
    ]) {
      it(`refuses a backend minting ${scope} for its user: 400 invalid_scope (RFC 8693 §2.2.2)`, async () => {
        expectError(await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME, scope }), 400, 'invalid_scope');
      });
    }

    it('refuses token exchange to a publisher client, even one with the admin role: 400 unauthorized_client', async () => {
      expectError(await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME }, 'newsroom'), 400, 'unauthorized_client');
    });

    it('refuses a minted subject that escapes the client namespace (another client, a local account, ~, /): 400 invalid_request', async () => {
      for (const name of ['ops', '../ops', 'x~y', 'a/b', '{sub}']) {
        const res = await exchange({ subject_token: name, subject_token_type: SUBJECT_NAME });
        if (name === 'ops') {
          expect(payloadOf(res.body.access_token).sub).to.equal('app~ops');
          continue;
        }
        expectError(res, 400, 'invalid_request');
      }
    });

    it('gives a minted token of subject app~ops none of the powers of the service client ops: 403 on the admin API', async () => {
      const minted = (await exchange({ subject_token: 'ops', subject_token_type: SUBJECT_NAME })).body.access_token as string;
      const res = await readJson(await fetch(`${t.url}/admin/accounts`, { headers: { authorization: `Bearer ${minted}` } }));
      expectError(res, 403, 'insufficient_scope');
    });
  });

  describe('ticket replay', () => {
    const ticket = async () =>
      (await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME, requested_token_type: TICKET })).body
        .access_token as string;
    const redeem = async (value: string, origin = t.url) =>
      readJson(
        await fetch(`${t.url}/auth/ticket`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin },
          body: JSON.stringify({ ticket: value }),
        }),
      );

    it('refuses a ticket redeemed twice, also concurrently: exactly one 200, the rest 400 invalid_grant', async () => {
      const value = await ticket();
      const answers = await Promise.all(Array.from({ length: 10 }, () => redeem(value)));
      expect(answers.filter((answer) => answer.status === 200)).to.have.length(1);
      for (const answer of answers.filter((a) => a.status !== 200)) expectError(answer, 400, 'invalid_grant');
    });

    it('refuses a ticket used as a bearer token, and a minted token used as a ticket: 401 / 400 invalid_request', async () => {
      expectInvalidToken(await subscribeWith(t.url, await ticket()));
      const minted = (await exchange({ subject_token: 'alice', subject_token_type: SUBJECT_NAME })).body.access_token as string;
      expectError(await redeem(minted), 400, 'invalid_request');
    });

    it('refuses a ticket redeemed from a foreign origin without spending it: 403 csrf_rejected (login CSRF)', async () => {
      const value = await ticket();
      expectError(await redeem(value, 'https://evil.example'), 403, 'csrf_rejected');
      expect((await redeem(value)).status).to.equal(200);
    });
  });

  describe('subject-namespace collision', () => {
    it("keeps an IdP user named alice out of the local alice's inbox, and the local alice out of kc~alice's: 403", async () => {
      const { accessToken } = await idp.userTokens('alice');
      expect(payloadOf(accessToken).sub).to.equal('alice');
      expectError(await subscribeWith(t.url, accessToken, 'users/alice/inbox'), 403, 'insufficient_scope');
      expect((await subscribeWith(t.url, accessToken, 'users/kc~alice/inbox')).status).to.equal(200);
      const local = (await t.login('alice')).access_token;
      expectError(await subscribeWith(t.url, local, 'users/kc~alice/inbox'), 403, 'insufficient_scope');
    });

    it('keeps an IdP sub that spells another namespace inside its own: sub "app~alice" is kc~app~alice', async () => {
      const token = signed(idp.keys[0]!, {}, claims({ sub: 'app~alice' }));
      expectError(await subscribeWith(t.url, token, 'users/app~alice/inbox'), 403, 'insufficient_scope');
      expect((await subscribeWith(t.url, token, 'users/kc~app~alice/inbox')).status).to.equal(200);
    });

    it('refuses an IdP sub that would break out of its topic segment (/, *, **, {sub}, %, space): 401', async () => {
      for (const sub of ['alice/../bob', '*', '**', '{sub}', '%2F', 'a b']) {
        expectInvalidToken(await subscribeWith(t.url, signed(idp.keys[0]!, {}, claims({ sub })), 'public/x'));
      }
    });

    it('refuses a local account name in a namespace: 400 invalid_account_name', async () => {
      const ops = await readJson(
        await fetch(`${t.url}/auth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('ops', SECRET) },
          body: form({ grant_type: 'client_credentials' }),
        }),
      );
      const res = await readJson(
        await fetch(`${t.url}/admin/accounts`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ops.body.access_token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'kc~alice', kind: 'user', roles: ['user'], password: 'correct horse battery staple' }),
        }),
      );
      expectError(res, 400, 'invalid_account_name');
    });
  });
});
