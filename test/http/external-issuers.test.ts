import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { expect } from 'chai';
import { es256Signer, expectInvalidToken, hmacSigner, jws, payloadOf, subscribeWith } from '../attacks/attack-kit.js';
import { startHostileKeyServer, type HostileKeyServer } from '../helpers/hostile-key-server.js';
import { startServerWithIssuers } from '../helpers/issuers.js';
import { expectResponseMatchesSpec } from '../helpers/openapi.js';
import { newSigningKey, NOTIFY_AUDIENCE, startProvider, type SigningKey, type TestProvider } from '../helpers/oidc-provider.js';
import { openStream, postJson, type TestServer } from '../helpers/server.js';
import { getEvents, readJson, waitUntil } from '../helpers/streams.js';

/**
 * Issue 10 §1: tokens of real OpenID Providers (`oidc-provider`, on loopback), verified by notify
 * with the keys of the issuer their `iss` names, mapped to grants through the role table, and
 * held to everything our own tokens are held to. Every refusal is a 401 `invalid_token` (never a
 * 500, never a hang).
 */
describe('external issuers (a real OpenID Provider)', function () {
  this.timeout(30_000);
  let a: TestProvider;
  let b: TestProvider;
  let short: TestProvider;
  let hostile: HostileKeyServer;
  let t: TestServer & { issuersFile: string };

  const issuerEntries = () => [
    {
      alias: 'a',
      issuer: a.issuer,
      audience: NOTIFY_AUDIENCE,
      algorithms: ['ES256'],
      keys: { discovery: true },
      grants: { roles: { claim: 'realm_access.roles', map: { 'notify-user': 'user', 'notify-publisher': 'publisher' } } },
      fetch: { cooldownMs: 300, timeoutMs: 1000 },
    },
    {
      alias: 'b',
      issuer: b.issuer,
      audience: [NOTIFY_AUDIENCE, 'other'],
      algorithms: ['ES256'],
      keys: { jwksUri: `${b.issuer}/jwks` },
      grants: { roles: { claim: 'scope', map: { notify: 'user' } }, fixed: { subscribe: ['public/b/**'] } },
    },
    {
      alias: 'short',
      issuer: short.issuer,
      audience: NOTIFY_AUDIENCE,
      algorithms: ['ES256'],
      keys: { jwksUri: `${short.issuer}/jwks` },
      grants: { fixed: { subscribe: ['users/{sub}/**'] } },
    },
    {
      alias: 'big',
      issuer: 'https://big.example',
      audience: NOTIFY_AUDIENCE,
      algorithms: ['ES256'],
      keys: { jwksUri: `${hostile.url}/big` },
      grants: { fixed: { subscribe: ['public/**'] } },
      fetch: { timeoutMs: 5000 },
    },
    {
      alias: 'hang',
      issuer: 'https://hang.example',
      audience: NOTIFY_AUDIENCE,
      algorithms: ['ES256'],
      keys: { jwksUri: `${hostile.url}/hang` },
      grants: { fixed: { subscribe: ['public/**'] } },
      fetch: { timeoutMs: 500, cooldownMs: 30_000 },
    },
  ];

  before(async () => {
    a = await startProvider({
      extraClaims: {
        alice: { realm_access: { roles: ['notify-user', 'unmapped-role'] } },
        bob: { realm_access: { roles: ['notify-user'] } },
        backend: { realm_access: { roles: ['notify-publisher'] } },
      },
    });
    b = await startProvider();
    short = await startProvider({ accessTokenTtl: 4 });
    hostile = await startHostileKeyServer();
    t = await startServerWithIssuers(issuerEntries(), { EXPIRY_WARNING: '2' });
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher'], { kind: 'service' });
  });
  after(async () => {
    await t?.close();
    await Promise.all([a?.stop(), b?.stop(), short?.stop(), hostile?.close()]);
  });

  /** A token as provider `p` would sign it, with its current key, with claims the test chooses. */
  const signedBy = (key: SigningKey, header: Record<string, unknown>, claims: Record<string, unknown>) =>
    jws({ alg: 'ES256', typ: 'at+jwt', kid: key.kid, ...header }, claims, es256Signer(key.privateKey));
  const now = () => Math.floor(Date.now() / 1000);
  const claimsFor = (p: TestProvider, extra: Record<string, unknown> = {}) => ({
    iss: p.issuer,
    sub: 'mallory',
    aud: NOTIFY_AUDIENCE,
    iat: now(),
    exp: now() + 120,
    jti: randomBytes(8).toString('hex'),
    realm_access: { roles: ['notify-user'] },
    ...extra,
  });

  describe('a token of the provider', () => {
    it('opens a stream on the grants its roles map to and receives what a publisher token of the same provider publishes', async () => {
      const { accessToken } = await a.userTokens('alice');
      const stream = openStream(`${t.url}/events?topic=${encodeURIComponent('users/a~alice/**')}`, accessToken);
      try {
        const connected = await stream.waitFor((event) => event.type === 'connected');
        expect(JSON.parse(connected.data).expiresAt).to.equal(new Date((payloadOf(accessToken).exp as number) * 1000).toISOString());
        const publisher = await a.clientCredentialsToken();
        const res = await postJson(`${t.url}/events`, { topics: ['users/a~alice/inbox'], data: { hello: 'alice' } }, publisher);
        expect(res.status, await res.clone().text()).to.equal(201);
        const event = await stream.waitFor((e) => e.type === 'message');
        expect(JSON.parse(event.data)).to.deep.equal({ hello: 'alice' });
      } finally {
        stream.close();
      }
    });

    it("keeps an external subject in its issuer's namespace: a~alice is neither the local alice nor b~alice", async () => {
      const { accessToken } = await a.userTokens('alice');
      for (const topic of ['users/alice/**', 'users/b~alice/**', 'users/a~bob/**']) {
        const res = await getEvents(t.url, `?topic=${encodeURIComponent(topic)}`, accessToken);
        expect(res.status, topic).to.equal(403);
        expect(res.body.error).to.equal('insufficient_scope');
      }
      const local = (await t.login('alice')).access_token;
      expect((await getEvents(t.url, `?topic=${encodeURIComponent('users/a~alice/**')}`, local)).status).to.equal(403);
      const fromB = await b.userTokens('alice');
      expect((await getEvents(t.url, `?topic=${encodeURIComponent('users/a~alice/**')}`, fromB.accessToken)).status).to.equal(403);
      const own = await subscribeWith(t.url, fromB.accessToken, 'users/b~alice/inbox');
      expect(own.status, JSON.stringify(own.body)).to.equal(200);
    });

    it('maps a space-separated scope claim and adds the fixed grant (provider B)', async () => {
      const { accessToken } = await b.userTokens('carol');
      expect(payloadOf(accessToken).scope).to.equal('notify');
      expect((await subscribeWith(t.url, accessToken, 'public/b/news')).status).to.equal(200);
      expect((await subscribeWith(t.url, accessToken, 'users/b~carol/inbox')).status).to.equal(200);
      const publish = await postJson(`${t.url}/events`, { topics: ['public/b/news'], data: 1 }, accessToken);
      expect(publish.status).to.equal(403);
    });

    it('grants nothing for roles the map does not name, and refuses a publish the mapped role does not allow', async () => {
      const { accessToken } = await a.userTokens('alice');
      const res = await postJson(`${t.url}/events`, { topics: ['users/a~alice/inbox'], data: 1 }, accessToken);
      const answer = await readJson(res);
      expect(answer.status).to.equal(403);
      expect(answer.body.error).to.equal('insufficient_scope');
    });
  });

  describe('refusals, each a 401 invalid_token', () => {
    it('refuses a token that names provider A as issuer but is signed with the key of provider B (issuer confusion), without asking B', async () => {
      const before = b.requests.length;
      const token = signedBy(b.keys[0]!, {}, claimsFor(a));
      expectInvalidToken(await subscribeWith(t.url, token, 'users/a~mallory/inbox'));
      expect(b.requests.slice(before)).to.deep.equal([]);
    });

    it("refuses a token of provider B presented as A even with a kid A also has (the signature is checked with A's key)", async () => {
      const token = signedBy(b.keys[0]!, { kid: a.keys[0]!.kid }, claimsFor(a));
      expectInvalidToken(await subscribeWith(t.url, token, 'users/a~mallory/inbox'));
    });

    it("accepts a token the test signs with provider A's key (control: the crafted tokens are otherwise valid)", async () => {
      const res = await subscribeWith(t.url, signedBy(a.keys[0]!, {}, claimsFor(a)), 'users/a~mallory/inbox');
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
    });

    it('refuses alg outside the allowlist: RS256 with a key of its own, none, HS256 with the public key as the secret', async () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const rs256 = jws({ alg: 'RS256', typ: 'at+jwt', kid: a.keys[0]!.kid }, claimsFor(a), (input) =>
        sign('sha256', Buffer.from(input), privateKey),
      );
      expectInvalidToken(await subscribeWith(t.url, rs256, 'users/a~mallory/inbox'));
      expectInvalidToken(await subscribeWith(t.url, jws({ alg: 'none', typ: 'at+jwt' }, claimsFor(a)), 'users/a~mallory/inbox'));
      const publicJwk = JSON.stringify({ ...a.keys[0]!.jwk, d: undefined });
      const hs256 = jws({ alg: 'HS256', typ: 'at+jwt', kid: a.keys[0]!.kid }, claimsFor(a), hmacSigner('sha256', publicJwk));
      expectInvalidToken(await subscribeWith(t.url, hs256, 'users/a~mallory/inbox'));
    });

    it('refuses the ID token of the same sign-in (typ JWT, aud the client)', async () => {
      const { idToken } = await a.userTokens('alice');
      expectInvalidToken(await subscribeWith(t.url, idToken, 'users/a~alice/inbox'));
    });

    it('refuses a wrong typ, a wrong aud, a missing exp, a missing iat, a lifetime beyond the bound', async () => {
      const key = a.keys[0]!;
      const cases = [
        signedBy(key, { typ: 'JWT' }, claimsFor(a)),
        signedBy(key, {}, claimsFor(a, { aud: 'someone-else' })),
        signedBy(key, {}, claimsFor(a, { exp: undefined })),
        signedBy(key, {}, claimsFor(a, { iat: undefined })),
        signedBy(key, {}, claimsFor(a, { exp: now() + 2 * 3600 })),
        signedBy(key, {}, claimsFor(a, { iat: now() + 600, exp: now() + 900 })),
      ];
      for (const token of cases) expectInvalidToken(await subscribeWith(t.url, token, 'users/a~mallory/inbox'));
    });

    it('refuses subjects and claims that cannot be mapped: a sub with / or {, a missing sub, a sub of the wrong type', async () => {
      const key = a.keys[0]!;
      for (const sub of ['a/b', '{sub}', undefined, 42, 'x'.repeat(300)]) {
        expectInvalidToken(await subscribeWith(t.url, signedBy(key, {}, claimsFor(a, { sub })), 'public/x'));
      }
    });

    it('refuses an unknown kid at once, and refetches the key set at most once per cooldown', async () => {
      const before = b.requests.filter((path) => path === '/jwks').length;
      for (let i = 0; i < 5; i++) {
        const token = signedBy(newSigningKey(), {}, claimsFor(b, { scope: 'notify' }));
        expectInvalidToken(await subscribeWith(t.url, token, 'public/b/news'));
      }
      expect(b.requests.filter((path) => path === '/jwks').length - before).to.be.at.most(1);
    });

    it('refuses a token whose issuer serves a 10 MB key set, reading only up to the bound, and says so on /readyz', async () => {
      const token = signedBy(newSigningKey(), {}, { ...claimsFor(a), iss: 'https://big.example' });
      const started = Date.now();
      expectInvalidToken(await subscribeWith(t.url, token));
      expect(Date.now() - started).to.be.below(5000);
      expect(hostile.requests).to.include('/big');
      await waitUntil(() => hostile.bigBytesWritten.length > 0, 5000, 'the big key set to be requested');
      // The reader stops once past the 256 KiB bound; what the socket buffers is well under the 10 MB.
      expect(hostile.bigBytesWritten[0]).to.be.below(5 * 1024 * 1024);
      const ready = await readJson(await fetch(`${t.url}/readyz`));
      expect(ready.status).to.equal(200);
      expect(ready.body.degradedIssuers).to.deep.include({ alias: 'big', issuer: 'https://big.example', reason: 'keys_too_large' });
      expectResponseMatchesSpec(ready, 'get', '/readyz');
    });

    it('refuses a token whose key set endpoint never answers within its timeout, and the next one at once without asking again', async () => {
      const token = signedBy(newSigningKey(), {}, { ...claimsFor(a), iss: 'https://hang.example' });
      let started = Date.now();
      expectInvalidToken(await subscribeWith(t.url, token));
      const first = Date.now() - started;
      expect(first).to.be.below(4000);
      const asked = hostile.requests.filter((path) => path === '/hang').length;
      expect(asked).to.be.at.least(1);
      started = Date.now();
      expectInvalidToken(await subscribeWith(t.url, token));
      expect(hostile.requests.filter((path) => path === '/hang').length).to.equal(asked);
      expect(Date.now() - started).to.be.below(2000);
    });
  });

  describe('keys over time', () => {
    it('picks up a key rotation at the provider (new kid) without a restart; tokens of the old key still verify', async () => {
      const old = await a.clientCredentialsToken();
      expect((await subscribeWith(t.url, old, 'public/news')).status).to.equal(200);
      const oldKey = a.keys[0]!;
      const fresh = newSigningKey();
      await a.rotate([fresh, oldKey]);
      const rotated = await a.clientCredentialsToken();
      expect(JSON.parse(Buffer.from(rotated.split('.')[0]!, 'base64url').toString()).kid).to.equal(fresh.kid);
      // The first try may fall inside the 300 ms cooldown since the last fetch; it succeeds once the cooldown is over.
      let status = 0;
      for (const deadline = Date.now() + 10_000; status !== 200 && Date.now() < deadline;) {
        status = (await subscribeWith(t.url, rotated, 'public/news')).status;
      }
      expect(status).to.equal(200);
      expect((await subscribeWith(t.url, old, 'public/news')).status).to.equal(200);
    });

    it('keeps verifying with cached keys while the provider is down; an unknown kid gets 401 quickly; /readyz names the issuer', async () => {
      const token = await a.clientCredentialsToken();
      expect((await subscribeWith(t.url, token, 'public/news')).status).to.equal(200);
      await a.stop();
      try {
        expect((await subscribeWith(t.url, token, 'public/news')).status).to.equal(200);
        // Unknown kids until one falls outside the 300 ms cooldown and makes notify try the provider:
        // each is refused at once, and then /readyz names the issuer.
        let degraded: string[] = [];
        for (const deadline = Date.now() + 10_000; !degraded.includes('a') && Date.now() < deadline;) {
          const started = Date.now();
          expectInvalidToken(await subscribeWith(t.url, signedBy(newSigningKey(), {}, claimsFor(a)), 'public/news'));
          expect(Date.now() - started).to.be.below(2000);
          const ready = await readJson(await fetch(`${t.url}/readyz`));
          expect(ready.status).to.equal(200);
          degraded = (ready.body.degradedIssuers ?? []).map((issuer: { alias: string }) => issuer.alias);
        }
        expect(degraded).to.include('a');
        expect((await subscribeWith(t.url, token, 'public/news')).status).to.equal(200);
      } finally {
        await a.start();
      }
    });
  });

  describe('the life of a stream opened with an external token', () => {
    it('warns before exp, renews in-band with a new token of the same issuer and subject, refuses another subject, closes at exp', async () => {
      const first = await short.clientCredentialsToken();
      const stream = openStream(`${t.url}/events?topic=${encodeURIComponent('users/short~backend/**')}`, first);
      try {
        const connected = JSON.parse((await stream.waitFor((event) => event.type === 'connected')).data) as { renewUrl: string };
        await stream.waitFor((event) => event.type === 'token-expiring', 10_000);
        const other = (await b.userTokens('backend')).accessToken;
        const refused = await readJson(await postJson(`${t.url}${connected.renewUrl}`, {}, other));
        expect(refused.status).to.equal(404);
        expect(refused.body.error).to.equal('connection_not_found');
        const renewed = await postJson(`${t.url}${connected.renewUrl}`, {}, await short.clientCredentialsToken());
        expect(renewed.status, await renewed.clone().text()).to.equal(200);
        await stream.waitFor((event) => event.type === 'token-renewed', 5000);
        const closed = await stream.waitFor((event) => event.type === 'closed', 15_000);
        expect(JSON.parse(closed.data).reason).to.equal('token_expired');
      } finally {
        stream.close();
      }
    });

    it('closes the streams of a revoked subject with closed (revoked); its earlier tokens stop working for publish and subscribe', async () => {
      const { accessToken } = await a.userTokens('bob');
      const publisher = await a.clientCredentialsToken();
      const stream = openStream(`${t.url}/events?topic=${encodeURIComponent('users/a~bob/**')}`, accessToken);
      try {
        await stream.waitFor((event) => event.type === 'connected');
        t.server.revocations.revokeSubject('a~bob', 'test');
        const closed = await stream.waitFor((event) => event.type === 'closed');
        expect(JSON.parse(closed.data).reason).to.equal('revoked');
        expectInvalidToken(await subscribeWith(t.url, accessToken, 'users/a~bob/inbox'));
        t.server.revocations.revokeSubject('a~backend', 'test');
        const res = await readJson(await postJson(`${t.url}/events`, { topics: ['public/news'], data: 1 }, publisher));
        expect(res.status).to.equal(401);
        expect(res.body.error).to.equal('invalid_token');
      } finally {
        stream.close();
      }
    });
  });
});
