import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadOrCreateSigningKey } from '../../../src/auth/signing-key.js';
import { ConfigError } from '../../../src/config.js';

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
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).key).to.equal('JWT_ALG');
  });
});

describe('loadOrCreateSigningKey: unusable key files stop the start (exit 78) naming the file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-key-bad-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function failure(): Promise<ConfigError> {
    try {
      await loadOrCreateSigningKey(dir, 'EdDSA');
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('the key was accepted');
  }

  it('refuses a key file that is not PEM, and leaves it in place', async () => {
    const file = path.join(dir, 'signing-key-ed25519.pem');
    writeFileSync(file, 'not a key\n');
    const error = await failure();
    expect(error.key).to.equal('DATA_DIR');
    expect(error.message).to.include(file);
    expect(readFileSync(file, 'utf8')).to.equal('not a key\n');
  });

  it('refuses a key path that is a directory', async () => {
    const file = path.join(dir, 'signing-key-ed25519.pem');
    mkdirSync(file);
    const error = await failure();
    expect(error.key).to.equal('DATA_DIR');
    expect(error.message).to.include(`${file} is a directory`);
  });
});

describe('loadOrCreateSigningKey: instances sharing one data directory', () => {
  it('agree on one key when they start at the same moment', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'notify-key-race-'));
    try {
      const pairs = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateSigningKey(dir, 'EdDSA')));
      const keys = new Set(pairs.map((pair) => JSON.stringify(pair.publicKey.export({ format: 'jwk' }))));
      expect(keys.size).to.equal(1);
      expect(readdirSync(dir)).to.deep.equal(['signing-key-ed25519.pem']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
