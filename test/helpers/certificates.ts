import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface TestCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * A throw-away self-signed P-256 certificate, valid for a day, written to `dir` as `<name>.crt`
 * and `<name>.key`; made with the openssl CLI (node:crypto has no X.509 writer).
 * @param subjectAltName e.g. `IP:127.0.0.1,DNS:localhost`; its first entry is also the CN.
 */
export function selfSignedCertificate(dir: string, subjectAltName: string, name = 'cert'): TestCertificate {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  const commonName = subjectAltName.split(',')[0]!.replace(/^[A-Z]+:/, '');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
    ].concat(['-subj', `/CN=${commonName}`, '-addext', `subjectAltName=${subjectAltName}`]),
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}
