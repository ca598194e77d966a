/**
 * Mints access tokens exactly as the server's token service does (`src/auth/token-service.ts`),
 * from the signing key the server generated into its data directory, so that the load client, not
 * the server under test, pays for signing. Every call signs a fresh token (new `jti`).
 */
import { createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';

export interface SigningSetup {
  readonly keyFile: string;
  readonly issuer: string;
  readonly audience: string;
  readonly ttl: number;
}

/** The grants of the built-in roles (`DEFAULT_ROLES` in src/config.ts) for `subject`. */
export function grantsFor(subject: string): { publish: string[]; subscribe: string[] } {
  return subject === 'bench-publisher'
    ? { publish: ['public/**', 'users/*/**'], subscribe: ['public/**'] }
    : { publish: [], subscribe: [`users/${subject}/**`, 'public/**'] };
}

const keys = new Map<string, Promise<{ key: KeyObject; kid: string }>>();

function loadKey(file: string): Promise<{ key: KeyObject; kid: string }> {
  let loaded = keys.get(file);
  if (loaded === undefined) {
    loaded = (async () => {
      const key = createPrivateKey(readFileSync(file, 'utf8'));
      const kid = await calculateJwkThumbprint(await exportJWK(createPublicKey(key)));
      return { key, kid };
    })();
    keys.set(file, loaded);
  }
  return loaded;
}

export async function signToken(setup: SigningSetup, subject: string): Promise<string> {
  const { key, kid } = await loadKey(setup.keyFile);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ client_id: 'bench', topics: grantsFor(subject) })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid })
    .setIssuer(setup.issuer)
    .setAudience(setup.audience)
    .setSubject(subject)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + setup.ttl)
    .sign(key);
}
