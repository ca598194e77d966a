import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { createExternalTokenVerifier } from '../../../src/auth/external-token-verifier.js';
import { parseIssuers } from '../../../src/auth/issuer-config.js';
import { createBoundedFetch, KeyFetchError } from '../../../src/auth/key-fetch.js';
import { DEFAULT_ROLES } from '../../../src/auth/role-table.js';
import { BearerError } from '../../../src/errors.js';
import { es256Signer, jws } from '../../attacks/attack-kit.js';
import { delay } from '../../helpers/server.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = { keys: [{ ...key.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] };

/** A JWKS endpoint that can be stopped and started on the same port; counts requests. */
async function keyServer() {
  let requests = 0;
  let server: http.Server | undefined;
  let port = 0;
  const start = async () => {
    server = http.createServer((req, res) => {
      requests++;
      if (req.url === '/redirect') return void res.writeHead(302, { location: '/jwks' }).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  await start();
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    start,
    stop: async () => {
      server!.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}

const token = (claims: Record<string, unknown> = {}) => {
  const now = Math.floor(Date.now() / 1000);
  return jws(
    { alg: 'ES256', typ: 'at+jwt', kid: 'k1' },
    { iss: 'https://idp.example', sub: 'u1', aud: 'notify', iat: now, exp: now + 60, jti: randomBytes(6).toString('hex'), ...claims },
    es256Signer(key.privateKey),
  );
};

async function rejection(promise: Promise<unknown>): Promise<BearerError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(BearerError);
    return error as BearerError;
  }
  throw new Error('expected a rejection');
}

describe('createExternalTokenVerifier', () => {
  it('keeps verifying with the last good key set once the cache is stale and the provider is gone, and reports the issuer degraded', async () => {
    const keys = await keyServer();
    const [config] = parseIssuers(
      {
        issuers: [
          {
            alias: 'idp',
            issuer: 'https://idp.example',
            audience: 'notify',
            algorithms: ['ES256'],
            keys: { jwksUri: `${keys.url}/jwks` },
            grants: { fixed: { subscribe: ['users/{sub}/**'] } },
            fetch: { cacheMaxAgeMs: 1000, cooldownMs: 200 },
          },
        ],
      },
      { readFile: () => '', knownRoles: [], ownIssuer: 'https://notify.example', baseDir: '/' },
    );
    const statuses: Array<string | undefined> = [];
    const verifier = await createExternalTokenVerifier({
      issuers: [config!],
      roles: DEFAULT_ROLES,
      warm: false,
      onIssuerStatus: (issuer, reason) => {
        expect(issuer).to.deep.equal({ alias: 'idp', issuer: 'https://idp.example' });
        statuses.push(reason);
      },
    });
    try {
      expect(verifier.degraded()).to.deep.equal([{ alias: 'idp', issuer: 'https://idp.example', reason: 'keys_not_loaded' }]);
      const claims = await verifier.verify(token(), 'bearer');
      expect(claims.subject).to.equal('idp~u1');
      expect(claims.grants.subscribe).to.deep.equal(['users/idp~u1/**']);
      expect(verifier.degraded()).to.deep.equal([]);
      await keys.stop();
      await delay(1100); // past cacheMaxAgeMs: jose would now refetch, and fail
      expect((await verifier.verify(token(), 'bearer')).subject).to.equal('idp~u1');
      expect(verifier.degraded()).to.deep.equal([{ alias: 'idp', issuer: 'https://idp.example', reason: 'keys_network' }]);
      // Within the failure cooldown no new fetch is tried; the cached key still answers.
      expect((await verifier.verify(token(), 'bearer')).subject).to.equal('idp~u1');
      await keys.start();
      await delay(250);
      expect((await verifier.verify(token(), 'bearer')).subject).to.equal('idp~u1');
      expect(verifier.degraded()).to.deep.equal([]);
      expect(statuses).to.deep.equal([undefined, 'keys_network', undefined]);
    } finally {
      await keys.stop().catch(() => undefined);
    }
  });

  it('refuses tokens for a use the issuer does not accept, and tokens of issuers it does not know', async () => {
    const [config] = parseIssuers(
      {
        issuers: [
          {
            alias: 'shop',
            issuer: 'https://idp.example',
            audience: 'notify',
            algorithms: ['ES256'],
            keys: { jwksFile: 'k.jwks' },
            grants: { fixed: { subscribe: [] } },
            acceptAs: ['subject_token'],
          },
        ],
      },
      { readFile: () => JSON.stringify(jwks), knownRoles: [], ownIssuer: 'https://notify.example', baseDir: '/' },
    );
    const verifier = await createExternalTokenVerifier({ issuers: [config!], roles: DEFAULT_ROLES });
    expect(verifier.accepts(token(), 'bearer')).to.equal(false);
    expect(verifier.accepts(token(), 'subject_token')).to.equal(true);
    expect((await verifier.verify(token(), 'subject_token')).subject).to.equal('shop~u1');
    expect((await rejection(verifier.verify(token(), 'bearer'))).reason).to.equal('issuer');
    expect((await rejection(verifier.verify(token({ iss: 'https://other.example' }), 'subject_token'))).reason).to.equal('issuer');
    expect((await rejection(verifier.verify(`${token()}=`, 'subject_token'))).reason).to.equal('malformed');
  });
});

describe('createBoundedFetch', () => {
  it('fetches only the allowed URL and never follows a redirect', async () => {
    const keys = await keyServer();
    try {
      const allowed = `${keys.url}/redirect`;
      const bounded = createBoundedFetch({ maxBytes: 1024, allowed: (url) => url === allowed });
      const refused = await bounded(`${keys.url}/jwks`).catch((error: unknown) => error);
      expect((refused as KeyFetchError).reason).to.equal('url_not_allowed');
      expect(keys.requests()).to.equal(0);
      const redirected = await bounded(allowed).catch((error: unknown) => error);
      expect((redirected as KeyFetchError).reason).to.equal('redirect');
      expect(keys.requests()).to.equal(1);
    } finally {
      await keys.stop();
    }
  });

  it('refuses a body over the bound, declared or not', async () => {
    const keys = await keyServer();
    try {
      const bounded = createBoundedFetch({ maxBytes: 10, allowed: () => true });
      const error = await bounded(`${keys.url}/jwks`).catch((caught: unknown) => caught);
      expect((error as KeyFetchError).reason).to.equal('too_large');
      const ok = createBoundedFetch({ maxBytes: 4096, allowed: () => true });
      expect(await (await ok(`${keys.url}/jwks`)).json()).to.deep.equal(jwks);
    } finally {
      await keys.stop();
    }
  });
});
