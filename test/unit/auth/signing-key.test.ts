import { mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadOrCreateSigningKey } from '../../../src/auth/signing-key.js';

describe('loadOrCreateSigningKey', () => {
  let dir: string;
  beforeEach(() => {
    dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'notify-key-')), 'data');
  });
  afterEach(() => rmSync(path.dirname(dir), { recursive: true, force: true }));

  it('creates the data directory and an Ed25519 key file with mode 0600 on first start', async () => {
    const pair = await loadOrCreateSigningKey(dir, 'EdDSA');
    expect(pair.privateKey.asymmetricKeyType).to.equal('ed25519');
    expect(pair.publicKey.type).to.equal('public');
    const file = path.join(dir, 'signing-key-ed25519.pem');
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(statSync(dir).mode & 0o777).to.equal(0o700);
    expect(readdirSync(dir)).to.deep.equal(['signing-key-ed25519.pem']);
  });

  it('loads the same key on the next start', async () => {
    const first = await loadOrCreateSigningKey(dir, 'ES256');
    const second = await loadOrCreateSigningKey(dir, 'ES256');
    expect(second.publicKey.export({ format: 'jwk' })).to.deep.equal(first.publicKey.export({ format: 'jwk' }));
    expect(first.privateKey.asymmetricKeyType).to.equal('ec');
  });

  it('refuses a key file of the wrong type for the configured algorithm', async () => {
    await loadOrCreateSigningKey(dir, 'EdDSA');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(path.join(dir, 'signing-key-p256.pem'), rsa);
    let error: unknown;
    try {
      await loadOrCreateSigningKey(dir, 'ES256');
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(Error);
  });
});
