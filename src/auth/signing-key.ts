import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../fs/atomic-file.js';

export interface SigningKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Loads the server's signing key from `dataDir`, generating it on first start. The private key is
 * written with mode 0600 and replaced atomically. Keys are handled as `KeyObject`s, never as raw
 * bytes, so a public key can never be mistaken for an HMAC secret (the RFC 8725 §2.1 key-confusion
 * attack).
 */
export async function loadOrCreateSigningKey(dataDir: string, alg: 'EdDSA' | 'ES256'): Promise<SigningKeyPair> {
  const file = path.join(dataDir, alg === 'EdDSA' ? 'signing-key-ed25519.pem' : 'signing-key-p256.pem');
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const generated = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    pem = generated.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeFileAtomic(file, pem, 0o600);
  }
  const privateKey = createPrivateKey(pem);
  const expected = alg === 'EdDSA' ? 'ed25519' : 'ec';
  if (privateKey.asymmetricKeyType !== expected) {
    throw new Error(`${file} holds a ${privateKey.asymmetricKeyType} key, but JWT_ALG=${alg} needs ${expected}`);
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}
