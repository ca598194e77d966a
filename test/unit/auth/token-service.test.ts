import { expect } from 'chai';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import { createTokenService, MAX_TOKEN_LENGTH, type TokenService, type TokenServiceOptions } from '../../../src/auth/token-service.js';
import { BearerError } from '../../../src/errors.js';
import { rejection } from '../../helpers/errors.js';

const ISSUER = 'https://notify.test';
const AUDIENCE = 'notify';
const TTL = 300;
const TOLERANCE = 5;
const T0 = 1_700_000_000_000; // a whole second
const NOW_S = T0 / 1000;

const keys = generateKeyPairSync('ed25519');
const otherKeys = generateKeyPairSync('ed25519');
const GRANTS = { publish: ['public/**'], subscribe: ['users/alice/**', 'public/*'] };

async function expectInvalidToken(service: TokenService, token: string, reason?: string): Promise<BearerError> {
  const error = await rejection(service.verifyAccessToken(token));
  expect(error).to.be.instanceOf(BearerError);
  expect(error).to.have.property('status', 401);
  expect(error).to.have.property('challenge', 'invalid_token');
  expect(error).to.have.property('code', 'invalid_token');
  if (reason !== undefined) expect(error).to.have.property('reason', reason);
  return error as BearerError;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('createTokenService', () => {
  let now: number;
  let ids: number;
  let service: TokenService;

  const options = (overrides: Partial<TokenServiceOptions> = {}): TokenServiceOptions => ({
    signing: { alg: 'EdDSA', privateKey: keys.privateKey, publicKey: keys.publicKey },
    issuer: ISSUER,
    audience: AUDIENCE,
    ttlMs: TTL * 1000,
    clockToleranceMs: TOLERANCE * 1000,
    clock: () => now,
    randomId: () => `jti-${++ids}`,
    ...overrides,
  });

  /** The claims our service would issue, to be altered one at a time. */
  const validClaims = (): JWTPayload => ({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'alice',
    jti: 'crafted-1',
    client_id: 'web',
    iat: NOW_S,
    exp: NOW_S + TTL,
    topics: { publish: [], subscribe: ['users/alice/**'] },
  });

  async function craft(
    claims: JWTPayload,
    header: Record<string, unknown> = {},
    key: KeyObject | Uint8Array = keys.privateKey,
  ): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...header }).sign(key);
  }

  beforeEach(async () => {
    now = T0;
    ids = 0;
    service = await createTokenService(options());
  });

  describe('round trip', () => {
    it('verifies a token it issued and returns its claims and compiled selectors', async () => {
      const issued = await service.issueAccessToken({ subject: 'alice', clientId: 'web', sessionId: 'fam-1', grants: GRANTS });
      expect(issued.tokenId).to.equal('jti-1');
      expect(issued.expiresAt).to.equal(NOW_S + TTL);
      expect(issued.expiresIn).to.equal(TTL);
      expect(decodeProtectedHeader(issued.token)).to.include({ alg: 'EdDSA', typ: 'at+jwt' });
      const claims = await service.verifyAccessToken(issued.token);
      expect(claims).to.include({
        subject: 'alice',
        tokenId: 'jti-1',
        clientId: 'web',
        sessionId: 'fam-1',
        issuedAt: NOW_S,
        expiresAt: NOW_S + TTL,
      });
      expect(claims.grants).to.deep.equal(GRANTS);
      expect(claims.publish.map((s) => s.source)).to.deep.equal(GRANTS.publish);
      expect(claims.subscribe.map((s) => s.source)).to.deep.equal(GRANTS.subscribe);
    });

    it('carries a presence grant when there is one, and leaves the claim out when there is none', async () => {
      const withPresence = await service.issueAccessToken({
        subject: 'svc',
        clientId: 'svc',
        grants: { ...GRANTS, presence: ['documents/**'] },
      });
      const claims = await service.verifyAccessToken(withPresence.token);
      expect(claims.grants.presence).to.deep.equal(['documents/**']);
      expect(claims.presence.map((s) => s.source)).to.deep.equal(['documents/**']);
      const without = await service.issueAccessToken({ subject: 'alice', clientId: 'web', grants: { ...GRANTS, presence: [] } });
      const payload = JSON.parse(Buffer.from(without.token.split('.')[1]!, 'base64url').toString()) as { topics: object };
      expect(payload.topics).to.deep.equal(GRANTS);
      expect((await service.verifyAccessToken(without.token)).presence).to.deep.equal([]);
    });

    it('leaves sessionId undefined when the token has no session', async () => {
      const issued = await service.issueAccessToken({ subject: 'svc', clientId: 'svc', grants: GRANTS });
      expect((await service.verifyAccessToken(issued.token)).sessionId).to.equal(undefined);
    });

    it('stamps iat at notBefore when notBefore is later than now', async () => {
      const issued = await service.issueAccessToken({ subject: 'alice', clientId: 'web', grants: GRANTS, notBefore: NOW_S + 1 });
      expect(issued.expiresAt).to.equal(NOW_S + 1 + TTL);
      expect(issued.expiresIn).to.equal(TTL + 1);
      expect((await service.verifyAccessToken(issued.token)).issuedAt).to.equal(NOW_S + 1);
    });
  });

  describe('time checks', () => {
    it('accepts a token past exp when within the clock tolerance', async () => {
      const { token } = await service.issueAccessToken({ subject: 'alice', clientId: 'web', grants: GRANTS });
      now = T0 + (TTL + TOLERANCE - 1) * 1000;
      expect((await service.verifyAccessToken(token)).subject).to.equal('alice');
    });

    it('rejects with reason expired when exp is past the clock tolerance', async () => {
      const { token } = await service.issueAccessToken({ subject: 'alice', clientId: 'web', grants: GRANTS });
      now = T0 + (TTL + TOLERANCE + 1) * 1000;
      await expectInvalidToken(service, token, 'expired');
    });

    it('accepts iat in the future when within the clock tolerance', async () => {
      const token = await craft({ ...validClaims(), iat: NOW_S + TOLERANCE, exp: NOW_S + TOLERANCE + TTL });
      expect((await service.verifyAccessToken(token)).issuedAt).to.equal(NOW_S + TOLERANCE);
    });

    it('rejects iat in the future when beyond the clock tolerance', async () => {
      const token = await craft({ ...validClaims(), iat: NOW_S + TOLERANCE + 10, exp: NOW_S + TOLERANCE + 10 + TTL });
      await expectInvalidToken(service, token);
    });

    it('rejects a token whose lifetime exp - iat is longer than the ttl', async () => {
      await expectInvalidToken(service, await craft({ ...validClaims(), exp: NOW_S + TTL + 1 }));
      await expectInvalidToken(service, await craft({ ...validClaims(), exp: NOW_S + 10 * 365 * 86400 }));
    });

    it('rejects a token without exp or iat', async () => {
      const { exp: _exp, ...noExp } = validClaims();
      const { iat: _iat, ...noIat } = validClaims();
      await expectInvalidToken(service, await craft(noExp));
      await expectInvalidToken(service, await craft(noIat));
    });
  });

  describe('signature and header', () => {
    it('accepts a crafted token when every claim is as the service issues them', async () => {
      // The baseline for the rejections below: only the one altered field makes them fail.
      expect((await service.verifyAccessToken(await craft(validClaims()))).tokenId).to.equal('crafted-1');
    });

    it('rejects a token signed by another key', async () => {
      await expectInvalidToken(service, await craft(validClaims(), {}, otherKeys.privateKey));
    });

    it('rejects an HS256 token keyed with the public key PEM or DER bytes (key confusion)', async () => {
      const pem = keys.publicKey.export({ type: 'spki', format: 'pem' });
      const der = keys.publicKey.export({ type: 'spki', format: 'der' });
      for (const bytes of [Buffer.from(pem), der]) {
        await expectInvalidToken(service, await craft(validClaims(), { alg: 'HS256' }, new Uint8Array(bytes)));
      }
    });

    it('rejects a token signed by our key when alg is Ed25519 rather than the pinned EdDSA', async () => {
      // jose accepts the fully-specified `Ed25519` name (RFC 9864) for the same key: only the
      // algorithm allow-list refuses it.
      await expectInvalidToken(service, await craft(validClaims(), { alg: 'Ed25519' }), 'algorithm');
    });

    it('rejects an unsecured token when alg is none', async () => {
      const unsigned = `${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(validClaims())}.`;
      await expectInvalidToken(service, unsigned);
      const withSignature = `${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(validClaims())}.AAAA`;
      await expectInvalidToken(service, withSignature);
    });

    it('rejects a token when typ is JWT or missing', async () => {
      await expectInvalidToken(service, await craft(validClaims(), { typ: 'JWT' }));
      await expectInvalidToken(service, await craft(validClaims(), { typ: undefined }));
    });

    it('rejects garbage, an empty string and a token longer than 8192 characters', async () => {
      await expectInvalidToken(service, 'not.a.jwt');
      await expectInvalidToken(service, '');
      expect(MAX_TOKEN_LENGTH).to.equal(8192);
      // Validly signed, and accepted when short: only its length is wrong.
      const padded = (pad: number) => craft({ ...validClaims(), pad: 'x'.repeat(pad) });
      const short = await padded(100);
      expect((await service.verifyAccessToken(short)).subject).to.equal('alice');
      const long = await padded(6500);
      expect(long.length).to.be.greaterThan(MAX_TOKEN_LENGTH);
      await expectInvalidToken(service, long, 'malformed');
    });
  });

  describe('claims', () => {
    it('rejects a token when iss or aud is not ours', async () => {
      await expectInvalidToken(service, await craft({ ...validClaims(), iss: 'https://evil.test' }));
      await expectInvalidToken(service, await craft({ ...validClaims(), aud: 'other' }));
      const { iss: _iss, ...noIss } = validClaims();
      const { aud: _aud, ...noAud } = validClaims();
      await expectInvalidToken(service, await craft(noIss));
      await expectInvalidToken(service, await craft(noAud));
    });

    for (const claim of ['jti', 'sub', 'client_id', 'topics'] as const) {
      it(`rejects a token when ${claim} is missing`, async () => {
        const claims = validClaims();
        delete claims[claim];
        await expectInvalidToken(service, await craft(claims));
      });
    }

    // Minted tokens (token exchange, issue 10) carry namespaced subjects such as `kc~F8c3`, so the
    // claim is a subject name (a whole topic segment), not only an account name.
    it('rejects a token when sub is not a subject name', async () => {
      for (const sub of ['', '../x', 'a/b', 'x'.repeat(65), 'a b', 'a:b', '..', '{sub}']) {
        await expectInvalidToken(service, await craft({ ...validClaims(), sub }));
      }
    });

    it('rejects a token when the topics claim is malformed', async () => {
      for (const topics of [
        'users/alice/**',
        ['users/alice/**'],
        { subscribe: ['a'] },
        { publish: [], subscribe: 'a' },
        { publish: [], subscribe: [1] },
        { publish: [], subscribe: [], admin: true },
        { publish: [], subscribe: [], presence: 'documents/**' },
        { publish: [], subscribe: [], presence: Array.from({ length: 65 }, (_, i) => `t${i}`) },
        { publish: [], subscribe: Array.from({ length: 65 }, (_, i) => `t${i}`) },
        null,
      ]) {
        await expectInvalidToken(service, await craft({ ...validClaims(), topics }));
      }
    });

    it('rejects a token when the topics claim holds an invalid selector', async () => {
      for (const selector of ['a/**/b', 'a*', '', 'a//b', '..', 'x'.repeat(257)]) {
        await expectInvalidToken(service, await craft({ ...validClaims(), topics: { publish: [selector], subscribe: [] } }));
        await expectInvalidToken(service, await craft({ ...validClaims(), topics: { publish: [], subscribe: [selector] } }));
        await expectInvalidToken(service, await craft({ ...validClaims(), topics: { publish: [], subscribe: [], presence: [selector] } }));
      }
    });
  });

  describe('jwks', () => {
    it('publishes one public key whose kid is its RFC 7638 thumbprint', async () => {
      const { keys: published } = service.jwks();
      expect(published).to.have.length(1);
      const jwk = published[0]!;
      expect(jwk).to.not.have.property('d');
      expect(jwk).to.include({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      // RFC 7638 §3.2: the required members in lexicographic order, no whitespace, SHA-256, base64url.
      const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
      const thumbprint = createHash('sha256').update(canonical).digest('base64url');
      expect(jwk.kid).to.equal(thumbprint);
      const expectedX = (keys.publicKey.export({ format: 'jwk' }) as { x: string }).x;
      expect(jwk.x).to.equal(expectedX);
      const { token } = await service.issueAccessToken({ subject: 'alice', clientId: 'web', grants: GRANTS });
      expect(decodeProtectedHeader(token).kid).to.equal(thumbprint);
    });
  });

  describe('HS256', () => {
    const secret = (length: number, fill = 7) => new Uint8Array(length).fill(fill);
    const hs = (bytes: Uint8Array) => createTokenService(options({ signing: { alg: 'HS256', secret: bytes } }));

    it('refuses to build when the secret is 31 bytes', async () => {
      const error = await rejection(hs(secret(31)));
      expect(error).to.be.instanceOf(Error);
    });

    it('builds and round-trips a token when the secret is 32 bytes, with no public keys', async () => {
      const hsService = await hs(secret(32));
      const { token } = await hsService.issueAccessToken({ subject: 'alice', clientId: 'web', grants: GRANTS });
      expect(decodeProtectedHeader(token)).to.include({ alg: 'HS256', typ: 'at+jwt' });
      expect((await hsService.verifyAccessToken(token)).subject).to.equal('alice');
      expect(hsService.jwks()).to.deep.equal({ keys: [] });
    });

    it('rejects a token signed with a different secret', async () => {
      const mine = await hs(secret(32, 1));
      const theirs = await hs(secret(32, 2));
      const { token } = await theirs.issueAccessToken({ subject: 'alice', clientId: 'web', grants: GRANTS });
      await expectInvalidToken(mine, token);
    });

    it('rejects an EdDSA token when the service is HS256', async () => {
      const hsService = await hs(secret(32));
      await expectInvalidToken(hsService, await craft(validClaims()));
    });
  });

  describe('options', () => {
    it('refuses to build without issuer, audience, a positive ttl or a key pair', async () => {
      expect(await rejection(createTokenService(options({ issuer: '' })))).to.be.instanceOf(Error);
      expect(await rejection(createTokenService(options({ audience: '' })))).to.be.instanceOf(Error);
      expect(await rejection(createTokenService(options({ ttlMs: 0 })))).to.be.instanceOf(Error);
      const swapped = { alg: 'EdDSA' as const, privateKey: keys.publicKey, publicKey: keys.publicKey };
      expect(await rejection(createTokenService(options({ signing: swapped })))).to.be.instanceOf(Error);
    });
  });
});
