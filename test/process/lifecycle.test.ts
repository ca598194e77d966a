import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Deployment } from '../helpers/instances.js';
import { OwnRedis, TEST_REDIS_URL, uniquePrefix, deleteKeys } from '../helpers/redis.js';
import { openStream } from '../helpers/server.js';
import { login } from '../helpers/instances.js';

// Issue 9: start and stop as one lifecycle. A start that fails halfway leaves nothing open, and a
// stop finishes in bounded time even when the backend no longer answers.
describe('the server lifecycle (start rollback, bounded stop)', function () {
  this.timeout(60_000);

  it('releases everything when listening fails after the Redis backend connected: the process exits by itself', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-rollback-'));
    const keyPrefix = uniquePrefix('rollback');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/start-then-fail-to-listen.ts'], {
        env: {
          PATH: process.env.PATH,
          DATA_DIR: dataDir,
          PORT: String(port),
          SCRYPT_LOG_N: '10',
          REDIS_URL: TEST_REDIS_URL,
          REDIS_KEY_PREFIX: keyPrefix,
          METRICS: 'listen',
          METRICS_LISTEN: '127.0.0.1:0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`the process did not exit by itself within 20 s (something was left open): ${output}`));
        }, 20_000);
        child.once('exit', (exitCode) => {
          clearTimeout(timer);
          resolve(exitCode);
        });
      });
      expect(output).to.include('built').and.include('listen failed: EADDRINUSE');
      expect(code).to.equal(3);
    } finally {
      busy.close();
      rmSync(dataDir, { recursive: true, force: true });
      await deleteKeys(TEST_REDIS_URL, keyPrefix);
    }
  });

  it('exits 0 within the grace period and a few seconds on SIGTERM while Redis is down, after ending its streams', async () => {
    const redis = await OwnRedis.start();
    const deployment = new Deployment(redis.url);
    try {
      await deployment.addAccounts({ alice: ['user'] });
      const instance = await deployment.start('A', { SHUTDOWN_GRACE: '1' });
      const token = (await login(instance.url, 'alice')).access_token;
      const stream = openStream(`${instance.url}/events?topic=public/news`, token);
      await stream.waitFor((event) => event.type === 'connected');
      await redis.stop();
      // Wait until the instance itself reports that Redis is gone.
      const deadline = Date.now() + 10_000;
      while ((await fetch(`${instance.url}/readyz`)).status !== 503) {
        if (Date.now() > deadline) throw new Error('the instance never noticed that Redis stopped');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const started = Date.now();
      const exited = new Promise<number | null>((resolve) => instance.child.once('exit', (code) => resolve(code)));
      instance.child.kill('SIGTERM');
      const closed = await stream.waitFor((event) => event.type === 'closed');
      expect(JSON.parse(closed.data)).to.deep.equal({ reason: 'shutdown' });
      stream.close();
      expect(await exited).to.equal(0);
      // One second of grace plus at most a few bounded closers; before the lifecycle it never exited.
      expect(Date.now() - started).to.be.below(12_000);
    } finally {
      await deployment.destroy();
      await redis.destroy();
    }
  });
});
