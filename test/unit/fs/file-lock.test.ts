import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { FileUserStore } from '../../../src/auth/file-user-store.js';
import { FileLockTimeoutError, withFileLock } from '../../../src/fs/file-lock.js';

describe('withFileLock', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-lock-'));
    file = path.join(dir, 'users.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A process id that belonged to a process that has exited. */
  function deadPid(): number {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    return Number(child.stdout);
  }
  const holder = (pid: number, host = os.hostname()) => `${JSON.stringify({ pid, host, nonce: 'theirs' })}\n`;

  it('runs one task at a time, and removes the lock file afterwards', async () => {
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        withFileLock(file, async () => {
          most = Math.max(most, ++inside);
          await new Promise((resolve) => setTimeout(resolve, 5));
          inside--;
        }),
      ),
    );
    expect(most).to.equal(1);
    expect(existsSync(`${file}.lock`)).to.equal(false);
  });

  it('releases the lock when the task throws', async () => {
    const failing = withFileLock(file, async () => {
      throw new Error('task failed');
    });
    expect(
      await failing.then(
        () => 'resolved',
        (error: Error) => error.message,
      ),
    ).to.equal('task failed');
    expect(existsSync(`${file}.lock`)).to.equal(false);
    expect(await withFileLock(file, async () => 'next')).to.equal('next');
  });

  it('breaks a lock whose process on this host has exited, at once', async () => {
    writeFileSync(`${file}.lock`, holder(deadPid()));
    expect(await withFileLock(file, async () => 'ran', { timeoutMs: 2000 })).to.equal('ran');
    expect(existsSync(`${file}.lock`)).to.equal(false);
  });

  it('breaks a lock older than staleMs whose holder cannot be checked (another host)', async () => {
    writeFileSync(`${file}.lock`, holder(process.pid, 'another-host.example'));
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${file}.lock`, old, old);
    expect(await withFileLock(file, async () => 'ran', { timeoutMs: 2000, staleMs: 30_000 })).to.equal('ran');
  });

  it('gives up with lock_timeout, without running the task, while a live holder keeps the lock', async () => {
    writeFileSync(`${file}.lock`, holder(process.pid, 'another-host.example'));
    let ran = false;
    const error = await withFileLock(
      file,
      async () => {
        ran = true;
      },
      { timeoutMs: 200 },
    ).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).to.be.instanceOf(FileLockTimeoutError);
    expect((error as FileLockTimeoutError).code).to.equal('lock_timeout');
    expect((error as Error).message).to.include('another-host.example');
    expect(ran).to.equal(false);
    expect(existsSync(`${file}.lock`)).to.equal(true); // not ours to remove
  });

  it('lets separate stores of one file (as separate processes would) change it at the same moment without losing a change', async () => {
    const stores = Array.from({ length: 20 }, () => new FileUserStore({ file }));
    try {
      await Promise.all(stores.map((store, i) => store.add({ name: `user${i}`, kind: 'user', roles: ['user'], passwordHash: 'x' })));
      const names = (await new FileUserStore({ file }).list()).map((account) => account.name);
      expect(names).to.have.length(20);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });
});
