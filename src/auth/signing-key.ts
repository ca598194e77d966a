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
  const file = signingKeyFile(dataDir, alg);
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
  const privateKey = parseSigningKey(file, pem, alg);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/**
 * The checks of `loadOrCreateSigningKey` without writing anything (`notify config check` and the
 * start-up checks): the key file, if there is one, must be a readable PEM private key of the type
 * JWT_ALG needs.
 * @returns the file, and whether it exists (a missing one is generated at start).
 * @throws ConfigError naming DATA_DIR or JWT_ALG and the file.
 */
export async function checkSigningKey(dataDir: string, alg: 'EdDSA' | 'ES256'): Promise<{ file: string; exists: boolean }> {
  const file = signingKeyFile(dataDir, alg);
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { file, exists: false };
    throw unreadableKey(file, code);
  }
  parseSigningKey(file, pem, alg);
  return { file, exists: true };
}

/** Where the key for `alg` lives in the data directory. */
function signingKeyFile(dataDir: string, alg: 'EdDSA' | 'ES256'): string {
  return path.join(dataDir, alg === 'EdDSA' ? 'signing-key-ed25519.pem' : 'signing-key-p256.pem');
}

function parseSigningKey(file: string, pem: string, alg: 'EdDSA' | 'ES256'): KeyObject {
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
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (privateKey.asymmetricKeyType !== expected || (alg === 'ES256' && curve !== 'prime256v1')) {
    const held = privateKey.asymmetricKeyType === 'ec' ? `ec (${curve})` : privateKey.asymmetricKeyType;
    throw new ConfigError(
      'JWT_ALG',
      `the signing key ${file} holds a ${held} key, but JWT_ALG=${alg} needs ${alg === 'EdDSA' ? 'ed25519' : 'ec (prime256v1, P-256)'}`,
    );
  }
  return privateKey;
}

function unreadableKey(file: string, code: string | undefined): ConfigError {
  const why = code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code})`;
  return new ConfigError('DATA_DIR', `the signing key ${file} ${why}`);
}
