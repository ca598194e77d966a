import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { loadOrCreateSigningKey } from '../../src/auth/signing-key.js';
import { startServer, type TestServer } from '../helpers/server.js';
import {
  b64url,
  ed25519Signer,
  es256Signer,
  expectInvalidToken,
  headerOf,
  hmacSigner,
  httpRequest,
  jws,
  payloadOf,
  rawExchange,
  subscribeWith,
} from './attack-kit.js';

/**
 * Forgery and algorithm attacks on the access token (RFC 8725 §2, §3.1; OWASP ASVS V3.5.3,
 * V13.2.x). Every case is a real `GET /events` against a real server; the only right answer is
 * 401 with the RFC 6750 `invalid_token` challenge, the same for every reason.
 */
describe('attacks: token forgery and algorithms', () => {
  let t: TestServer;
  let valid: string;
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  let serverKey: { privateKey: KeyObject; publicKey: KeyObject };
  /** A listener standing in for the attacker's key server: every request to it is recorded. */
  let attackerHost: http.Server;
  let attackerUrl: string;
  const fetchedByServer: string[] = [];

  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
    valid = (await t.login('alice')).access_token;
    header = headerOf(valid);
    claims = payloadOf(valid);
    serverKey = await loadOrCreateSigningKey(t.dataDir, 'EdDSA');
    attackerHost = http.createServer((req, res) => {
      fetchedByServer.push(req.url ?? '');
      res.end('{}');
    });
    await new Promise<void>((resolve) => attackerHost.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attackerHost.address() as AddressInfo).port}`;
  });
  after(async () => {
    attackerHost.close();
    await t.close();
  });

  const fresh = () => ({ ...claims, jti: randomBytes(8).toString('hex') });
  /** Signed with the server's own key: the harness can build a token the server accepts. */
  const serverSigned = (h: object, p: object) => jws(h, p, ed25519Signer(serverKey.privateKey));

  it('accepts a token the test signs itself with the server key (control: the harness builds real tokens)', async () => {
    const res = await subscribeWith(t.url, serverSigned(header, fresh()));
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/event-stream/);
  });

  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    it(`refuses alg "${alg}" with an empty signature`, async () => {
      expectInvalidToken(await subscribeWith(t.url, jws({ ...header, alg }, claims)));
    });
  }

  it('refuses alg "none" that keeps the original signature', async () => {
    const signature = valid.split('.')[2]!;
    expectInvalidToken(
      await subscribeWith(
        t.url,
        jws({ ...header, alg: 'none' }, claims, () => signature),
      ),
    );
  });

  it('refuses a token whose signature is stripped (header.payload.)', async () => {
    const [h, p] = valid.split('.');
    expectInvalidToken(await subscribeWith(t.url, `${h}.${p}.`));
  });

  it('refuses a random 64-byte signature', async () => {
    const [h, p] = valid.split('.');
    expectInvalidToken(await subscribeWith(t.url, `${h}.${p}.${b64url(randomBytes(64))}`));
  });

  it('refuses the genuine signature re-encoded as padded base64 (not the one base64url spelling)', async () => {
    const [h, p, s] = valid.split('.');
    const padded = Buffer.from(s!, 'base64url').toString('base64');
    expect(padded).to.match(/=$/);
    expectInvalidToken(await subscribeWith(t.url, `${h}.${p}.${padded}`));
  });

  it('refuses the genuine signature with its spare low bits flipped (a second spelling of the same bytes)', async () => {
    const [h, p, s] = valid.split('.');
    // 64 bytes -> 86 characters: the last character carries 4 unused bits.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(s!.at(-1)!);
    const twin = `${s!.slice(0, -1)}${alphabet[last ^ 1]}`;
    expect(Buffer.from(twin, 'base64url').equals(Buffer.from(s!, 'base64url'))).to.equal(true);
    expectInvalidToken(await subscribeWith(t.url, `${h}.${p}.${twin}`));
  });

  it('refuses a payload edited after signing (sub changed to bob)', async () => {
    const [h, , s] = valid.split('.');
    expectInvalidToken(await subscribeWith(t.url, `${h}.${b64url({ ...claims, sub: 'bob' })}.${s}`, 'users/bob/inbox'));
  });

  it('refuses a payload edited after signing (subscribe grant widened to **)', async () => {
    const [h, , s] = valid.split('.');
    const widened = { ...claims, topics: { publish: ['**'], subscribe: ['**'] } };
    expectInvalidToken(await subscribeWith(t.url, `${h}.${b64url(widened)}.${s}`, 'users/bob/inbox'));
  });

  describe('key confusion: HMAC signed with the public key (RFC 8725 §2.1)', () => {
    const publicForms = async (): Promise<Record<string, Buffer | string>> => {
      const jwks = (await (await fetch(`${t.url}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, string>> };
      const jwk = jwks.keys[0]!;
      const pem = createPublicKey({ key: jwk as never, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString();
      return { 'the JWK JSON': JSON.stringify(jwk), 'the SPKI PEM': pem, 'the raw x bytes': Buffer.from(jwk.x!, 'base64url') };
    };

    it('refuses HS256 signed with the JWK JSON, the SPKI PEM and the raw key bytes of the published key', async () => {
      for (const [what, key] of Object.entries(await publicForms())) {
        const res = await subscribeWith(t.url, jws({ ...header, alg: 'HS256' }, fresh(), hmacSigner('sha256', key)));
        expect(res.status, what).to.equal(401);
        expectInvalidToken(res);
      }
    });

    it('refuses HS512 signed with the SPKI PEM of the published key', async () => {
      const { 'the SPKI PEM': pem } = await publicForms();
      expectInvalidToken(await subscribeWith(t.url, jws({ ...header, alg: 'HS512' }, fresh(), hmacSigner('sha512', pem!))));
    });
  });

  it('refuses PS256 signed with an attacker RSA key', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { sign, constants } = await import('node:crypto');
    const token = jws({ ...header, alg: 'PS256' }, fresh(), (input) =>
      sign('sha256', Buffer.from(input), { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
    );
    expectInvalidToken(await subscribeWith(t.url, token));
  });

  it('refuses EdDSA signed by an attacker key that reuses the server kid', async () => {
    const attacker = generateKeyPairSync('ed25519');
    expectInvalidToken(await subscribeWith(t.url, jws(header, fresh(), ed25519Signer(attacker.privateKey))));
  });

  describe('keys named in the token header (RFC 8725 §3.10; RFC 7515 §4.1.2-4.1.5)', () => {
    const attacker = generateKeyPairSync('ed25519');
    const attackerJwk = attacker.publicKey.export({ format: 'jwk' });
    const cases: Record<string, () => Record<string, unknown>> = {
      'an embedded jwk': () => ({ ...header, kid: undefined, jwk: attackerJwk }),
      'a jku URL': () => ({ ...header, kid: 'k1', jku: `${attackerUrl}/jwks.json` }),
      'an x5u URL': () => ({ ...header, x5u: `${attackerUrl}/cert.pem` }),
      'an x5c chain': () => ({ ...header, x5c: [randomBytes(300).toString('base64')] }),
    };
    for (const [what, make] of Object.entries(cases)) {
      it(`refuses a token carrying ${what} of an attacker key, and fetches nothing`, async () => {
        const before = fetchedByServer.length;
        expectInvalidToken(await subscribeWith(t.url, jws(make(), fresh(), ed25519Signer(attacker.privateKey))));
        expect(fetchedByServer.length).to.equal(before);
      });
    }
  });

  describe('hostile kid values', () => {
    const kids: Record<string, unknown> = {
      'a path traversal': '../../../../../../dev/null',
      'an SQL injection': "x' UNION SELECT 'secret' --",
      'a URL': 'http://127.0.0.1:1/key',
      'CR LF and NUL': 'a\r\nX-Injected: 1\u0000',
      'a 4 KB string': 'k'.repeat(4096),
      'an object': { $ne: null },
    };
    for (const [what, kid] of Object.entries(kids)) {
      it(`refuses a token signed by an attacker whose kid is ${what}`, async () => {
        const attacker = generateKeyPairSync('ed25519');
        expectInvalidToken(await subscribeWith(t.url, jws({ ...header, kid }, fresh(), ed25519Signer(attacker.privateKey))));
      });
    }
  });

  it('refuses a correctly signed token with an unknown critical header parameter (RFC 7515 §4.1.11)', async () => {
    const token = serverSigned({ ...header, crit: ['x-must-understand'], 'x-must-understand': true }, fresh());
    expectInvalidToken(await subscribeWith(t.url, token));
  });

  it('refuses a correctly signed token that marks a registered parameter critical (crit: ["alg"])', async () => {
    expectInvalidToken(await subscribeWith(t.url, serverSigned({ ...header, crit: ['alg'] }, fresh())));
  });

  it('refuses 2-segment and 5-segment (JWE-shaped) tokens', async () => {
    const [h, p, s] = valid.split('.');
    expectInvalidToken(await subscribeWith(t.url, `${h}.${p}`));
    expectInvalidToken(await subscribeWith(t.url, `${h}.${p}.${s}.${s}.${s}`));
    expectInvalidToken(await subscribeWith(t.url, `${h}.${p}.${s}.`));
  });

  it('refuses a token just over the 8 KiB token limit with 401, before parsing it', async () => {
    const padded = serverSigned(header, { ...fresh(), pad: 'x'.repeat(9000) });
    expectInvalidToken(await subscribeWith(t.url, padded));
  });

  it('answers a 100 KB bearer token with 431 header_too_large, never 500', async () => {
    const { host } = new URL(t.url);
    const res = await rawExchange(t.url, [
      httpRequest('GET', '/events?topic=public/news', host, {
        Accept: 'text/event-stream',
        Authorization: `Bearer ${'A'.repeat(100 * 1024)}`,
      }),
    ]);
    expect(res.status).to.equal(431);
    expect(res.json?.error).to.equal('header_too_large');
  });

  describe('ES256 with r = s = 0 (CVE-2022-21449, "psychic signatures")', () => {
    let es: TestServer;
    before(async () => {
      es = await startServer({ JWT_ALG: 'ES256' });
      await es.addAccount('alice', ['user']);
    });
    after(() => es.close());

    it('refuses r = s = 0, r = s = n (the curve order) and an all-zero DER signature', async () => {
      const token = (await es.login('alice')).access_token;
      const [h, p] = token.split('.');
      const n = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex');
      for (const signature of [Buffer.alloc(64), Buffer.concat([n, n]), Buffer.from('3006020100020100', 'hex')]) {
        expectInvalidToken(await subscribeWith(es.url, `${h}.${p}.${b64url(signature)}`));
      }
    });

    it('refuses an ES256 token signed by an attacker P-256 key with the server kid', async () => {
      const token = (await es.login('alice')).access_token;
      const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forged = jws(headerOf(token), { ...payloadOf(token), jti: 'x' }, es256Signer(attacker.privateKey));
      expectInvalidToken(await subscribeWith(es.url, forged));
    });
  });

  describe('weak HMAC secrets refuse to start (RFC 7518 §3.2)', () => {
    const start = (secret: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        env: { PATH: process.env.PATH, JWT_ALG: 'HS256', JWT_SECRET: secret, PORT: '0', DATA_DIR: t.dataDir, LOG_LEVEL: 'silent' },
        encoding: 'utf8',
        timeout: 20_000,
      });
    for (const [what, secret] of Object.entries({
      'a word': 'secret',
      'a 31-byte hex secret': 'ab'.repeat(31),
      'a 64-character repeated hex secret (32 bytes, one value)': 'aa'.repeat(32),
      // Issue 11: both passed the old check (32+ bytes, 16+ distinct values) and sat in a cracking word list.
      'a passphrase (issue 11)': 'my notify server jwt secret key for production 2024!',
      'a long lowercase phrase that decodes as base64url (issue 11)': 'correcthorsebatterystaplenotifyproductionsecretkey',
      'CamelCase words (issue 11)': 'MyNotifyServerJwtSecretKeyForProduction2024',
    })) {
      it(`exits 78 naming JWT_SECRET when the secret is ${what}`, function () {
        this.timeout(25_000);
        const run = start(secret);
        expect(run.status, run.stderr).to.equal(78);
        expect(run.stderr).to.contain('JWT_SECRET');
        expect(run.stderr).to.not.contain(secret.slice(0, 12));
      });
    }
  });
});
