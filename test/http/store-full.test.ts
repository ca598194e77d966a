import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { hashPassword } from '../../src/auth/password.js';
import type { Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { openStream, postJson, startServer, TEST_LOG_N, type TestServer } from '../helpers/server.js';

/** Mounts a tmpfs of `size` at `dir`; false where mounting is not permitted (not root, or in a container without it). */
function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Issue 14: a full disk answers publishes with 503 `storage_unavailable`, never a crash and never
 * a 201 for an event that was not stored. Where the test may mount (root), the data directory is
 * a real 3 MiB tmpfs, grown to 32 MiB afterwards to show the server writing again by itself;
 * elsewhere SQLite's `max_page_count` caps the store file instead (and the growing is left out).
 */
describe('the default store on a full disk (issue 14)', function () {
  this.timeout(60_000);
  let dir: string;
  let mounted: boolean;
  let t: TestServer | undefined;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-full-'));
    mounted = mountTmpfs(dir, '3m');
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    if (mounted) execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 storage_unavailable with Retry-After, is not ready but alive, loses nothing acknowledged, and publishes again once there is room', async () => {
    // 768 pages of 4 KiB: the same 3 MiB as the tmpfs, when there is no tmpfs.
    const capped = (config: Config): Config => {
      if (mounted) return config;
      const backend = { ...config.backend, maxPageCount: 768 }; // read by the SQLite backend (SqliteBackendSettings)
      return { ...config, backend };
    };
    t = await startServer({ DATA_DIR: path.join(dir, 'data'), MAX_DATA_BYTES: '16384' }, capped);
    await t.addAccount('newsroom', ['publisher']);
    const { access_token: token } = await t.login('newsroom');
    const data = 'x'.repeat(8000);
    const acknowledged: string[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 2000 && refused === undefined; i++) {
      const res = await postJson(`${t.url}/events`, { topics: [`public/t${i % 50}`], data }, token);
      if (res.status === 201) acknowledged.push(((await res.json()) as { id: string }).id);
      else refused = res;
    }
    expect(refused, 'the disk never filled').to.not.equal(undefined);
    expect(refused!.status).to.equal(503);
    expect(refused!.headers.get('retry-after')).to.equal('1');
    expect(((await refused!.json()) as { error: string }).error).to.equal('storage_unavailable');
    expect(acknowledged.length).to.be.greaterThan(50);

    // Alive and honest about it: liveness yes, readiness no, and a stream still opens.
    expect((await fetch(`${t.url}/healthz`)).status).to.equal(200);
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).to.equal(503);
    expect(await ready.json()).to.deep.equal({ status: 'unavailable', reason: 'store cannot write (SQLITE_FULL)' });
    const stream = openStream(`${t.url}/events?topic=public/**`, token, { headers: { 'last-event-id': acknowledged[0]! } });
    try {
      // Every acknowledged event is there to replay.
      await stream.waitFor((event) => event.id === acknowledged.at(-1), 10_000);
      expect(stream.events.filter((event) => event.id !== '').map((event) => event.id)).to.deep.equal(acknowledged.slice(1));
    } finally {
      stream.close();
    }

    if (!mounted) return;
    execFileSync('mount', ['-o', 'remount,size=32m', dir]);
    const again = await postJson(`${t.url}/events`, { topics: ['public/after'], data }, token);
    expect(again.status).to.equal(201);
    expect((await fetch(`${t.url}/readyz`)).status).to.equal(200);
  });
});

/**
 * A password change while the store cannot write: the revocation of the old password's refresh
 * tokens fails, and must not be forgotten. SQLite's `max_page_count` fills the store; a publish
 * that does not fit, made in the same turn as the revocation, shares its commit, so the revocation
 * fails with it exactly as it would on a full disk.
 */
describe('a subject revocation the full store refused (issue 14)', function () {
  this.timeout(60_000);
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('refuses the old refresh token while the revocation is pending, retries it on the maintenance tick, and then refreshes new sign-ins again', async () => {
    const lines: Array<{ msg: string; sub?: string; err?: { code?: string } }> = [];
    const woken = new Set<() => void>();
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line) as (typeof lines)[number]);
        for (const wake of woken) wake();
        done();
      },
    });
    /** Resolves with the first log line (from the start) with message `msg`, naming `sub`. */
    const logged = (msg: string, sub: string) =>
      new Promise<(typeof lines)[number]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log line "${msg}" for ${sub}: ${JSON.stringify(lines)}`)), 10_000);
        const wake = () => {
          const line = lines.find((entry) => entry.msg === msg && entry.sub === sub);
          if (line === undefined) return;
          clearTimeout(timer);
          woken.delete(wake);
          resolve(line);
        };
        woken.add(wake);
        wake();
      });
    const capped = (config: Config): Config => {
      const backend = { ...config.backend, maxPageCount: 128 }; // 512 KiB, read by the SQLite backend (SqliteBackendSettings)
      return { ...config, backend };
    };
    t = await startServer({ STORE: 'sqlite', MAX_DATA_BYTES: '16384' }, capped, { logger: createLogger('info', sink) });
    const server = t.server;
    const refresh = (token: string) =>
      fetch(`${t!.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }),
      });
    await t.addAccount('alice', ['user']);
    const stolen = await t.login('alice');

    const big = { topics: ['public/filler'], type: 'message', data: JSON.stringify('x'.repeat(8000)), publisher: 'test' };
    const fill = async () => {
      for (let i = 0; i < 1000; i++) {
        const refusal = await server.bus.publish({ ...big, topics: [`public/t${i}`] }).then(
          () => undefined,
          (error: unknown) => error,
        );
        if (refusal !== undefined) return refusal;
      }
      return undefined;
    };
    expect(await fill(), 'the store never filled').to.include({ code: 'storage_unavailable' });

    // The account watch revokes in the same turn as this listener, which is told after it.
    let failedPublish: Promise<unknown> | undefined;
    const unwatch = server.users.watch((change) => {
      if (change.name === 'alice') failedPublish ??= server.bus.publish(big).catch((error: unknown) => error);
    });
    await server.users.setPasswordHash('alice', await hashPassword('a brand new passphrase', { logN: TEST_LOG_N }));
    unwatch();
    expect(await failedPublish).to.include({ code: 'storage_unavailable' });
    const warning = await logged('refresh-token revocation failed: refusing its refreshes, retrying', 'alice');
    expect(warning.err?.code).to.equal('storage_unavailable');

    // The store would rotate the token (a rotation fits in the pages it has): the pending revocation refuses it.
    const refused = await refresh(stolen.refresh_token);
    expect(refused.status).to.equal(400);
    expect(((await refused.json()) as { error: string }).error).to.equal('invalid_grant');

    await server.maintain();
    await logged('refresh-token revocation retried: done', 'alice');
    const again = await t.login('alice', 'a brand new passphrase');
    const renewed = await refresh(again.refresh_token);
    expect(renewed.status).to.equal(200);
    expect(lines.filter((entry) => entry.msg.startsWith('refresh-token revocation failed'))).to.have.length(1);
    // No log line carries a refresh token.
    expect(JSON.stringify(lines)).to.not.include(stolen.refresh_token);
  });
});
