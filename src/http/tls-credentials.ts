import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';

/** The certificate chain and private key, read and checked. */
export interface TlsCredentials {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * Reads `TLS_CERT_FILE` and `TLS_KEY_FILE` and checks them before the server listens: each must
 * be a readable PEM file (a certificate, a private key), and the key must be the certificate's
 * (`X509Certificate#checkPrivateKey`). Without these checks OpenSSL's own errors (`PEM
 * routines::no start line`, `EISDIR`) named neither the setting nor the file, and a mismatched pair
 * (an EC certificate with an RSA key) started, logged `listening`, then failed every handshake
 * without a word.
 * @throws ConfigError naming TLS_CERT_FILE or TLS_KEY_FILE and the path (exit code 78 at start).
 */
export function loadTlsCredentials(files: { readonly certFile: string; readonly keyFile: string }): TlsCredentials {
  const cert = readPem('TLS_CERT_FILE', files.certFile);
  const key = readPem('TLS_KEY_FILE', files.keyFile);

  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError('TLS_CERT_FILE', `${files.certFile} is not a PEM certificate (${opensslReason(error)})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(key.toString('latin1'));
    throw new ConfigError(
      'TLS_KEY_FILE',
      encrypted
        ? `${files.keyFile} is an encrypted private key; give the key without a passphrase (file mode 0600)`
        : `${files.keyFile} is not a PEM private key (${opensslReason(error)})`,
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(
      'TLS_KEY_FILE',
      `${files.keyFile} is not the private key of the certificate in TLS_CERT_FILE ${files.certFile} ` +
        `(the key is ${privateKey.asymmetricKeyType}, the certificate's key is ${certificate.publicKey.asymmetricKeyType})`,
    );
  }
  return { cert, key };
}

function readPem(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory, not a PEM file'
          : code === 'EACCES'
            ? 'cannot be read (permission denied)'
            : `cannot be read (${code ?? (error as Error).message})`;
    throw new ConfigError(setting, `${file} ${why}`);
  }
}

/** OpenSSL's reason (`no start line`), without the library prefix (`error:0480006C:PEM routines::`). */
function opensslReason(error: unknown): string {
  const message = (error as Error).message;
  return /::(.+)$/.exec(message)?.[1] ?? message;
}
