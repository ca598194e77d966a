import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
});
