import { randomBytes, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import { loadOrCreateSigningKey } from '../../src/auth/signing-key.js';
import { form } from '../helpers/auth.js';
import { postJson, startServer, type TestServer } from '../helpers/server.js';
import { readJson } from '../helpers/streams.js';
import { ed25519Signer, expectError, expectInvalidToken, headerOf, jws, payloadOf, subscribeWith } from './attack-kit.js';

/**
 * Tokens signed with the server's real key but carrying the wrong claims or the wrong type
 * (RFC 8725 §3.8-3.11, RFC 9068 §2.1 and §4, RFC 7519 §4.1). A valid signature proves only who
 * signed, not that the token is meant for us, now, as an access token.
 */
describe('attacks: claims and token types', () => {
  let t: TestServer;
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  let key: KeyObject;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    t = await startServer(); // CLOCK_TOLERANCE 5 s, ACCESS_TOKEN_TTL 300 s
    await t.addAccount('alice', ['user']);
    const token = (await t.login('alice')).access_token;
    header = headerOf(token);
    claims = payloadOf(token);
    key = (await loadOrCreateSigningKey(t.dataDir, 'EdDSA')).privateKey;
  });
  after(() => t.close());

  const signed = (edit: Record<string, unknown>, headerEdit: Record<string, unknown> = {}) => {
    const payload: Record<string, unknown> = { ...claims, iat: now(), exp: now() + 300, jti: randomBytes(8).toString('hex'), ...edit };
    for (const [name, value] of Object.entries(edit)) if (value === undefined) delete payload[name];
    const h: Record<string, unknown> = { ...header, ...headerEdit };
    for (const [name, value] of Object.entries(headerEdit)) if (value === undefined) delete h[name];
    return jws(h, payload, ed25519Signer(key));
  };

  it('accepts the same claims freshly signed (control)', async () => {
    expect((await subscribeWith(t.url, signed({}))).status).to.equal(200);
  });

  const refused: Record<string, () => string> = {
    'a wrong iss': () => signed({ iss: 'https://evil.example' }),
    'a wrong aud': () => signed({ aud: 'another-api' }),
    'an aud array without ours': () => signed({ aud: ['a', 'b'] }),
    'no exp': () => signed({ exp: undefined }),
    'an exp 10 years ahead': () => signed({ exp: now() + 10 * 365 * 86400 }),
    'an exp in the past beyond the tolerance': () => signed({ iat: now() - 100, exp: now() - 10 }),
    'an nbf 60 s in the future': () => signed({ nbf: now() + 60 }),
    'an iat 60 s in the future': () => signed({ iat: now() + 60, exp: now() + 360 }),
    'no iat': () => signed({ iat: undefined }),
    'no jti': () => signed({ jti: undefined }),
    'no sub': () => signed({ sub: undefined }),
    'a sub that is no account name (../admin)': () => signed({ sub: '../admin' }),
    'no client_id': () => signed({ client_id: undefined }),
    'grants of the wrong shape': () => signed({ topics: { subscribe: 'public/**' } }),
    'a grant that is not a selector': () => signed({ topics: { publish: [], subscribe: ['public/../users'] } }),
    'typ JWT (an ID token or other JWT, not at+jwt)': () => signed({}, { typ: 'JWT' }),
    'no typ': () => signed({}, { typ: undefined }),
    "a look-alike typ 'at+jwt ' (trailing space)": () => signed({}, { typ: 'at+jwt ' }),
    "typ 'jwt+at'": () => signed({}, { typ: 'jwt+at' }),
  };
  for (const [what, make] of Object.entries(refused)) {
    it(`refuses a token with ${what}, although the signature is ours`, async () => {
      expectInvalidToken(await subscribeWith(t.url, make()));
    });
  }

  it('refuses a refresh token used as the bearer token on POST /events', async () => {
    const { refresh_token: refresh } = await t.login('alice');
    const res = await readJson(await postJson(`${t.url}/events`, { topics: ['public/news'], data: 1 }, refresh));
    expectInvalidToken(res, 'post', '/events');
  });

  it('answers invalid_grant when an access token is sent as the refresh_token in a form body', async () => {
    const { access_token: access } = await t.login('alice');
    const res = await readJson(
      await fetch(`${t.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ grant_type: 'refresh_token', refresh_token: access }),
      }),
    );
    expectError(res, 400, 'invalid_grant');
  });
});
