import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { createTokenService, type TokenService } from '../../../src/auth/token-service.js';
import { withVerifiedTokenCache } from '../../../src/auth/verified-token-cache.js';
import { BearerError } from '../../../src/errors.js';
import { rejection } from '../../helpers/errors.js';

describe('withVerifiedTokenCache', () => {
  const T0 = 1_700_000_000_000;
  let now: number;
  let inner: TokenService;
  let verifications: number;

  beforeEach(async () => {
    now = T0;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const real = await createTokenService({
      signing: { alg: 'EdDSA', privateKey, publicKey },
      issuer: 'http://notify.test',
      audience: 'notify',
      ttlMs: 300_000,
      clockToleranceMs: 5000,
      clock: () => now,
    });
    verifications = 0;
    inner = {
      ...real,
      verifyAccessToken: (token) => {
        verifications++;
        return real.verifyAccessToken(token);
      },
    };
  });

  const cached = (maxEntries?: number) =>
    withVerifiedTokenCache(inner, { ttlMs: 300_000, clockToleranceMs: 5000, clock: () => now, maxEntries });
  const issue = async (subject = 'alice') =>
    (await inner.issueAccessToken({ subject, clientId: 'c', grants: { publish: ['public/**'], subscribe: [] } })).token;

  it('verifies a token once and answers its repeats with the same claims', async () => {
    const tokens = cached();
    const token = await issue();
    const first = await tokens.verifyAccessToken(token);
    now += 60_000;
    expect(await tokens.verifyAccessToken(token)).to.equal(first);
    expect(await tokens.verifyAccessToken(token)).to.equal(first);
    expect(verifications).to.equal(1);
    expect(first.subject).to.equal('alice');
  });

  it('refuses a cached token once it has expired beyond the tolerance, as the real verification does', async () => {
    const tokens = cached();
    const token = await issue();
    await tokens.verifyAccessToken(token);
    now = T0 + 300_000 + 4000; // past exp, within the 5 s tolerance
    await tokens.verifyAccessToken(token);
    expect(verifications).to.equal(1);
    now = T0 + 300_000 + 5000;
    const error = await rejection(tokens.verifyAccessToken(token));
    expect(error).to.be.instanceOf(BearerError);
    expect(error).to.have.property('code', 'invalid_token');
    expect(verifications).to.equal(2);
  });

  it('never caches a failure: a token that failed is verified again every time', async () => {
    const tokens = cached();
    const forged = `${(await issue()).slice(0, -4)}AAAA`;
    for (let i = 0; i < 3; i++) expect(await rejection(tokens.verifyAccessToken(forged))).to.be.instanceOf(BearerError);
    expect(verifications).to.equal(3);
  });

  it('keeps at most maxEntries tokens, dropping the oldest', async () => {
    const tokens = cached(2);
    const [a, b, c] = [await issue('a'), await issue('b'), await issue('c')];
    for (const token of [a, b, c]) await tokens.verifyAccessToken(token);
    expect(verifications).to.equal(3);
    await tokens.verifyAccessToken(c);
    await tokens.verifyAccessToken(b);
    expect(verifications).to.equal(3);
    await tokens.verifyAccessToken(a); // dropped: verified again
    expect(verifications).to.equal(4);
  });
});
