import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../config.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { withFileLock } from '../fs/file-lock.js';

export interface SigningKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Loads the server's signing key from `dataDir`, generating it on first start (under a lock, so
 * instances sharing the directory agree on one key). The private key is written with mode 0600
 * and replaced atomically. Keys are handled as `KeyObject`s, never as raw
 * bytes, so a public key can never be mistaken for an HMAC secret (the RFC 8725 §2.1 key-confusion
 * attack).
 */
export async function loadOrCreateSigningKey(dataDir: string, alg: 'EdDSA' | 'ES256'): Promise<SigningKeyPair> {
  const file = path.join(dataDir, alg === 'EdDSA' ? 'signing-key-ed25519.pem' : 'signing-key-p256.pem');
  // Under the file lock: instances started together on one shared DATA_DIR must not each write a
  // key of their own (the last rename would win, and the others would sign with a key nobody has).
  const pem = await withFileLock(file, async () => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw unreadableKey(file, code);
      const generated = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const created = generated.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      await writeFileAtomic(file, created, 0o600);
      return created;
    }
  });
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    // Never replaced by a new key on our own: every token signed with it would stop verifying.
    throw new ConfigError(
      'DATA_DIR',
      `the signing key ${file} is not a PEM private key: restore it, or remove it to have a new one generated (tokens signed with the old key then stop working)`,
    );
  }
  const expected = alg === 'EdDSA' ? 'ed25519' : 'ec';
  if (privateKey.asymmetricKeyType !== expected) {
    throw new ConfigError(
      'JWT_ALG',
      `the signing key ${file} holds a ${privateKey.asymmetricKeyType} key, but JWT_ALG=${alg} needs ${expected}`,
    );
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

function unreadableKey(file: string, code: string | undefined): ConfigError {
  const why = code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code})`;
  return new ConfigError('DATA_DIR', `the signing key ${file} ${why}`);
}
