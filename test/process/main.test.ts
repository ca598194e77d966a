import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { hashPassword } from '../../src/auth/password.js';
import { FileUserStore } from '../../src/auth/file-user-store.js';
import { openStream, PASSWORD, TEST_LOG_N } from '../helpers/server.js';

/** Starts `src/main.ts` as a real process and collects its output. */
function startMain(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForListening(output: () => string, timeoutMs = 15000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = /"address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(output());
    if (match) return Number(match[1]);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`server did not start: ${output()}`);
}

describe('the server process (src/main.ts)', function () {
  this.timeout(30000);
  let dataDir: string;
  beforeEach(() => {
    dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'notify-main-')), 'data');
  });
  afterEach(() => rmSync(path.dirname(dataDir), { recursive: true, force: true }));

  it('refuses to start with exit code 78 and a message naming the key when a setting is bad', async () => {
    const run = startMain({ DATA_DIR: dataDir, PORT: 'abc' });
    expect(await run.exited).to.equal(78);
    expect(run.output()).to.match(/configuration error: PORT:/);
  });

  it('refuses to start with exit code 78 naming ROLES_FILE, the role and the selector when a role selector is bad', async () => {
    const rolesFile = path.join(path.dirname(dataDir), 'roles.json');
    writeFileSync(rolesFile, JSON.stringify({ reader: { subscribe: ['public/**', 'users/{user}/**'] } }));
    const run = startMain({ DATA_DIR: dataDir, ROLES_FILE: rolesFile });
    expect(await run.exited).to.equal(78);
    expect(run.output()).to.match(/configuration error: ROLES_FILE: .*roles\.json: reader\.subscribe\.1: .*placeholder other than \{sub\}/);
  });

  it('refuses to start with exit code 78 naming ISSUERS_FILE, the entry and the field when an issuer is bad (issue 10)', async () => {
    mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'issuers.json');
    const entry = { alias: 'kc', issuer: 'https://sso.example', audience: 'notify', keys: { discovery: true }, grants: { fixed: {} } };
    writeFileSync(file, JSON.stringify({ issuers: [{ ...entry, algorithms: ['HS256'] }] }));
    const run = startMain({ DATA_DIR: dataDir, ISSUERS_FILE: file });
    expect(await run.exited).to.equal(78);
    expect(run.output()).to.match(/configuration error: ISSUERS_FILE: issuers\[0\] \(kc\): algorithms\[0\]/);
  });

  it('refuses to start when JWT_ALG=HS256 has a secret shorter than 32 bytes', async () => {
    const run = startMain({ DATA_DIR: dataDir, JWT_ALG: 'HS256', JWT_SECRET: 'c2hvcnQtc2VjcmV0' });
    expect(await run.exited).to.equal(78);
    expect(run.output()).to.match(/JWT_SECRET/);
  });

  describe('refuses to start with exit code 78 naming the file and the entry (issue 15)', () => {
    const file = (name: string, content: string) => {
      const where = path.join(path.dirname(dataDir), name);
      writeFileSync(where, content);
      return where;
    };
    const target = (url: string) =>
      `targets:\n  - url: ${url}\n    events: [connected]\n    secret: ${randomBytes(32).toString('base64')}\n`;

    for (const [when, url] of [
      ['a webhook URL is not http(s)', 'ftp://hooks.example.com/notify'],
      ['a webhook URL points at a private address without allowPrivateNetwork', 'http://10.1.2.3/notify'],
    ] as const) {
      it(`when ${when}`, async () => {
        const webhooks = file('webhooks.yaml', target(url));
        const run = startMain({ DATA_DIR: dataDir, WEBHOOKS_FILE: webhooks });
        expect(await run.exited).to.equal(78);
        expect(run.output()).to.include(`configuration error: WEBHOOKS_FILE: ${webhooks}: targets[0].url`);
      });
    }

    it('when a presence rule is bad', async () => {
      const presence = file('presence.json', JSON.stringify({ topics: [{ selector: 'documents/*' }, { selector: 'a/**/b' }] }));
      const run = startMain({ DATA_DIR: dataDir, PRESENCE_FILE: presence });
      expect(await run.exited).to.equal(78);
      expect(run.output()).to.include(`configuration error: PRESENCE_FILE: ${presence}: topics[1].selector`);
    });
  });

  it('creates its data directory and key on first start, and on SIGTERM ends streams with a closed event and exits 0', async () => {
    const store = new FileUserStore({ file: path.join(dataDir, 'users.json') });
    await store.add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: await hashPassword(PASSWORD, { logN: TEST_LOG_N }) });
    await store.close();
    const run = startMain({ DATA_DIR: dataDir, PORT: '0' });
    try {
      const port = await waitForListening(run.output);
      expect(statSync(path.join(dataDir, 'signing-key-ed25519.pem')).mode & 0o777).to.equal(0o600);
      const login = await fetch(`http://127.0.0.1:${port}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: PASSWORD }),
      });
      const { access_token: token } = (await login.json()) as { access_token: string };
      const stream = openStream(`http://127.0.0.1:${port}/events?topic=public/news`, token);
      await stream.waitFor((e) => e.type === 'connected');
      run.child.kill('SIGTERM');
      const closed = await stream.waitFor((e) => e.type === 'closed');
      expect(JSON.parse(closed.data)).to.deep.equal({ reason: 'shutdown' });
      stream.close();
      expect(await run.exited).to.equal(0);
      expect(run.output()).to.include('shutting down');
      expect(run.output()).to.not.include(token);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  describe('stops at start with exit code 78 and a message naming the setting and the file', () => {
    let dir: string;
    let cert: string;
    let key: string;
    let rsaKey: string;
    before(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'notify-main-files-'));
      cert = path.join(dir, 'cert.pem');
      key = path.join(dir, 'key.pem');
      rsaKey = path.join(dir, 'rsa-key.pem');
      // An EC (P-256) certificate and its key, and an unrelated RSA key.
      const subject = ['-subj', '/CN=127.0.0.1', '-days', '1', '-nodes'];
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', key, '-out', cert, ...subject],
        {
          stdio: 'ignore',
        },
      );
      execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsaKey], { stdio: 'ignore' });
      writeFileSync(path.join(dir, 'garbage.pem'), 'this is not PEM\n');
      mkdirSync(path.join(dir, 'a-directory'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    async function refused(env: Record<string, string>, expected: RegExp): Promise<void> {
      const run = startMain({ DATA_DIR: dataDir, PORT: '0', ...env });
      try {
        expect(await run.exited, run.output()).to.equal(78);
        expect(run.output()).to.match(expected);
        expect(run.output()).not.to.include('listening');
      } finally {
        run.child.kill('SIGKILL');
      }
    }
    const quote = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

    it('a TLS certificate that is not PEM', async () => {
      const garbage = path.join(dir, 'garbage.pem');
      await refused({ TLS_CERT_FILE: garbage, TLS_KEY_FILE: key }, new RegExp(`TLS_CERT_FILE: ${quote(garbage)} is not a PEM certificate`));
    });

    it('a TLS key that is not PEM', async () => {
      const garbage = path.join(dir, 'garbage.pem');
      await refused({ TLS_CERT_FILE: cert, TLS_KEY_FILE: garbage }, new RegExp(`TLS_KEY_FILE: ${quote(garbage)} is not a PEM private key`));
    });

    it('a TLS certificate path that is a directory', async () => {
      const folder = path.join(dir, 'a-directory');
      await refused({ TLS_CERT_FILE: folder, TLS_KEY_FILE: key }, new RegExp(`TLS_CERT_FILE: ${quote(folder)} is a directory`));
    });

    it('a TLS key file that does not exist', async () => {
      const missing = path.join(dir, 'missing.pem');
      await refused({ TLS_CERT_FILE: cert, TLS_KEY_FILE: missing }, new RegExp(`TLS_KEY_FILE: ${quote(missing)} does not exist`));
    });

    it('an EC certificate with an RSA key (a pair that does not match)', async () => {
      await refused(
        { TLS_CERT_FILE: cert, TLS_KEY_FILE: rsaKey },
        new RegExp(
          `TLS_KEY_FILE: ${quote(rsaKey)} is not the private key of the certificate in TLS_CERT_FILE ${quote(cert)} \\(the key is rsa, the certificate's key is ec\\)`,
        ),
      );
    });

    it('a DATA_DIR that cannot be created (/proc/x), without hanging', async () => {
      await refused({ DATA_DIR: '/proc/x' }, /configuration error: DATA_DIR: \/proc\/x cannot be created/);
    });

    it('a signing key that is not PEM, or is a directory', async () => {
      const file = path.join(dataDir, 'signing-key-ed25519.pem');
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n');
      await refused({}, new RegExp(`DATA_DIR: the signing key ${quote(file)} is not a PEM private key`));
      expect(readFileSync(file, 'utf8')).to.include('garbage'); // never replaced on our own
      rmSync(file);
      mkdirSync(file);
      await refused({}, new RegExp(`DATA_DIR: the signing key ${quote(file)} is a directory`));
    });

    it('a store file (notify.db) that is empty or not a database: never replaced, never started empty (issue 14)', async () => {
      const file = path.join(dataDir, 'notify.db');
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, '');
      await refused({}, new RegExp(`configuration error: DATA_DIR: ${quote(file)} holds no notify store`));
      writeFileSync(file, 'not a database '.repeat(500));
      await refused({}, new RegExp(`configuration error: DATA_DIR: ${quote(file)} is not a SQLite database`));
      expect(readFileSync(file, 'utf8')).to.match(/^not a database/);
    });

    it('a user file that is truncated, or of the wrong shape', async () => {
      const file = path.join(dataDir, 'users.json');
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, '{"version":1,"accounts":[{"name":"alice","kind":"us');
      await refused({}, new RegExp(`USERS_FILE: The user store ${quote(file)} is not valid JSON`));
      writeFileSync(file, JSON.stringify({ version: 1, accounts: { alice: {} } }));
      await refused({}, new RegExp(`USERS_FILE: The user store ${quote(file)} is not a valid user store at accounts`));
    });
  });
});
