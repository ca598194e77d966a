import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Config } from '../../src/config.js';
import { openStream, postJson, startServer, type TestServer } from '../helpers/server.js';

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
