import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { checkConfiguration, maskSecrets, maskSetting, preflight } from '../../src/config-checks.js';
import { FileUserStore } from '../../src/auth/file-user-store.js';
import { hashPassword } from '../../src/auth/password.js';
import { loadConfig } from '../../src/config.js';
import { PASSWORD, TEST_LOG_N } from '../helpers/server.js';

const readFile = (file: string) => readFileSync(file, 'utf8');

describe('the start-up checks (config-checks.ts)', function () {
  this.timeout(20000);
  let dir: string;
  let cert: string;
  let key: string;
  let rsaKey: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-checks-'));
    cert = path.join(dir, 'cert.pem');
    key = path.join(dir, 'key.pem');
    rsaKey = path.join(dir, 'rsa-key.pem');
    const subject = ['-subj', '/CN=notify.test', '-addext', 'subjectAltName=DNS:notify.test', '-days', '30', '-nodes'];
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', key, '-out', cert, ...subject],
      {
        stdio: 'ignore',
      },
    );
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsaKey], { stdio: 'ignore' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(dir, 'data-'));
  });

  const keys = (findings: ReadonlyArray<{ level: string; key: string }>) => findings.map((finding) => `${finding.level} ${finding.key}`);

  it('finds nothing wrong with a fresh data directory, and says what it found', async () => {
    const state = await checkConfiguration(loadConfig({ DATA_DIR: dataDir }));
    expect(state.findings).to.deep.equal([]);
    expect(state.dataDir).to.equal('exists');
    expect(state.accounts).to.deep.equal({ users: 0, clients: 0 });
    expect(state.signingKey).to.deep.equal({ file: path.join(dataDir, 'signing-key-ed25519.pem'), exists: false });
    expect(readdirSync(dataDir)).to.deep.equal([]); // nothing created, not even the key
  });

  it('checks a data directory that does not exist yet without creating it', async () => {
    const missing = path.join(dataDir, 'a', 'b');
    const state = await checkConfiguration(loadConfig({ DATA_DIR: missing }));
    expect(state.findings).to.deep.equal([]);
    expect(state.dataDir).to.equal('missing');
    expect(readdirSync(dataDir)).to.deep.equal([]);
  });

  it('reports every problem at once, each naming its setting: data directory, user file, signing key, TLS pair', async () => {
    const notADirectory = path.join(dataDir, 'file');
    writeFileSync(notADirectory, 'x');
    const usersFile = path.join(dataDir, 'users.json');
    writeFileSync(usersFile, '{"version":1,"accounts":[{"name":"alice","kind":"us');
    const keyDir = path.join(dataDir, 'keys');
    mkdirSync(keyDir);
    // An Ed25519 key where JWT_ALG=ES256 wants P-256.
    writeFileSync(
      path.join(keyDir, 'signing-key-p256.pem'),
      generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    const config = loadConfig({ DATA_DIR: keyDir, USERS_FILE: usersFile, JWT_ALG: 'ES256', TLS_CERT_FILE: cert, TLS_KEY_FILE: rsaKey });
    const withBadDir = { ...config, dataDir: notADirectory };
    const state = await checkConfiguration(withBadDir);
    expect(keys(state.findings)).to.have.members(['error DATA_DIR', 'error USERS_FILE', 'error TLS_KEY_FILE']);
    const keyType = await checkConfiguration(config);
    expect(keys(keyType.findings)).to.have.members(['error JWT_ALG', 'error USERS_FILE', 'error TLS_KEY_FILE']);
    expect(keyType.findings.find((finding) => finding.key === 'JWT_ALG')?.message).to.include(path.join(keyDir, 'signing-key-p256.pem'));
  });

  it('counts the accounts of the user file', async () => {
    const store = new FileUserStore({ file: path.join(dataDir, 'users.json') });
    const passwordHash = await hashPassword(PASSWORD, { logN: TEST_LOG_N });
    await store.add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash });
    await store.add({ name: 'bob', kind: 'user', roles: ['user'], passwordHash });
    await store.add({ name: 'svc', kind: 'service', roles: ['publisher'], passwordHash });
    await store.close();
    expect((await checkConfiguration(loadConfig({ DATA_DIR: dataDir }))).accounts).to.deep.equal({ users: 2, clients: 1 });
  });

  it('refuses a TLS certificate out of its validity and warns of one that ends within 14 days (injected clock)', async () => {
    const config = loadConfig({ DATA_DIR: dataDir, TLS_CERT_FILE: cert, TLS_KEY_FILE: key, PUBLIC_ORIGIN: 'https://notify.test' });
    const validTo = Date.parse(new X509Certificate(readFileSync(cert)).validTo);
    expect((await checkConfiguration(config)).findings).to.deep.equal([]);
    expect(keys((await checkConfiguration(config, { clock: () => validTo + 1000 })).findings)).to.deep.equal(['error TLS_CERT_FILE']);
    expect(keys((await checkConfiguration(config, { clock: () => validTo - 86_400_000 })).findings)).to.deep.equal([
      'warning TLS_CERT_FILE',
    ]);
    expect(keys((await checkConfiguration(config, { clock: () => 0 })).findings)).to.deep.equal(['error TLS_CERT_FILE']);
  });

  it('warns when PUBLIC_ORIGIN names a host the certificate is not for', async () => {
    const config = loadConfig({ DATA_DIR: dataDir, TLS_CERT_FILE: cert, TLS_KEY_FILE: key, PUBLIC_ORIGIN: 'https://other.test' });
    expect(keys((await checkConfiguration(config)).findings)).to.deep.equal(['warning TLS_CERT_FILE']);
  });

  it('warns when the configuration file holds a secret and other users can read it', async () => {
    const file = path.join(dataDir, 'notify.yaml');
    writeFileSync(file, `DATA_DIR: ${dataDir}\nJWT_ALG: HS256\nJWT_SECRET: ${randomBytes(32).toString('base64url')}\n`);
    chmodSync(file, 0o644);
    const checked = await preflight({ env: {}, file, readFile });
    expect(keys(checked.findings)).to.deep.equal(['warning JWT_SECRET']);
    chmodSync(file, 0o600);
    expect((await preflight({ env: {}, file, readFile })).findings).to.deep.equal([]);
  });

  it('reports the settings first and checks the files once the settings parse', async () => {
    const checked = await preflight({ env: { DATA_DIR: dataDir, PORT: 'x', TLS_CERT_FILE: cert, TLS_KEY_FILE: rsaKey }, readFile });
    expect(keys(checked.findings)).to.deep.equal(['error PORT']);
    expect(checked.state).to.equal(undefined);
  });
});

describe('masking secrets for display', () => {
  it('shows a secret setting by its length only and masks the credentials of any URL', () => {
    const secret = randomBytes(32).toString('base64');
    expect(maskSetting('JWT_SECRET', secret)).to.not.include(secret.slice(0, 8));
    expect(maskSetting('METRICS_TOKEN', 'x'.repeat(40))).to.not.include('xxxx');
    expect(maskSetting('REDIS_URL', 'redis://:hunter2@127.0.0.1:6379/0')).to.equal('redis://:****@127.0.0.1:6379/0');
    expect(maskSetting('REDIS_URL', 'rediss://default:hunter2@redis.test:6380')).to.equal('rediss://default:****@redis.test:6380');
    expect(maskSetting('REDIS_URL', 'redis://tok3n@redis.test')).to.equal('redis://****@redis.test');
    expect(maskSetting('PUBLIC_ORIGIN', 'https://notify.test/?token=abc&x=1')).to.equal('https://notify.test/?token=****&x=1');
    expect(maskSetting('HOST', '0.0.0.0')).to.equal('0.0.0.0');
    expect(maskSetting('REDIS_KEY_PREFIX', 'notify:')).to.equal('notify:');
  });

  it('masks secret fields anywhere in parsed file contents (a webhook secret, a client secret)', () => {
    const masked = maskSecrets({
      webhooks: [{ url: 'https://u:p@hook.test/x', secret: 'abc', signing: { clientSecret: 'def' } }],
      name: 'ok',
    });
    expect(JSON.stringify(masked)).to.not.match(/abc|def|u:p@/);
    expect(masked).to.have.property('name', 'ok');
  });
});
