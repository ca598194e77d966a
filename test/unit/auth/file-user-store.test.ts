import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileUserStore } from '../../../src/auth/file-user-store.js';
import type { AccountChange } from '../../../src/auth/user-store.js';
import { rejection } from '../../helpers/errors.js';

const HASH = '$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U';
const OTHER_HASH = '$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Q';

/** Polls `check` until it passes or `timeoutMs` runs out (then rethrows its last failure). */
async function eventually(check: () => void, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe('FileUserStore', () => {
  let dir: string;
  let file: string;
  const stores: FileUserStore[] = [];
  let now: number;
  const clock = () => now;

  function open(options: { pollIntervalMs?: number; onError?: (error: unknown) => void } = {}): FileUserStore {
    const store = new FileUserStore({ file, clock, pollIntervalMs: 50, ...options });
    stores.push(store);
    return store;
  }

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'notify-users-'));
    file = path.join(dir, 'data', 'users.json');
    now = 1_700_000_000_000;
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await rm(dir, { recursive: true, force: true });
  });

  describe('reading', () => {
    it('is empty and creates nothing when the file does not exist', async () => {
      const store = open();
      expect(await store.list()).to.deep.equal([]);
      expect(await store.get('alice')).to.equal(undefined);
      expect(await readdir(dir)).to.deep.equal([]);
    });

    it('reads accounts written by another instance', async () => {
      await open().add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: HASH });
      const account = await open().get('alice');
      expect(account).to.deep.equal({
        name: 'alice',
        kind: 'user',
        roles: ['user'],
        passwordHash: HASH,
        credentialsChangedAt: now,
        createdAt: now,
      });
    });

    it('fails with user_store_corrupt naming the file when the file is not JSON', async () => {
      await open().add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: HASH });
      await writeFile(file, '{"version": 1, "accounts": [');
      const error = await rejection(open().list());
      expect(error).to.have.property('code', 'user_store_corrupt');
      expect((error as Error).message).to.include(file);
    });

    it('fails with user_store_corrupt when an account does not match the schema', async () => {
      const bad = [
        { version: 2, accounts: [] },
        { version: 1 },
        { version: 1, accounts: [{ name: 'Alice', kind: 'user', roles: [], passwordHash: HASH, credentialsChangedAt: 1, createdAt: 1 }] },
        { version: 1, accounts: [{ name: 'alice', kind: 'robot', roles: [], passwordHash: HASH, credentialsChangedAt: 1, createdAt: 1 }] },
        {
          version: 1,
          accounts: [{ name: 'alice', kind: 'user', roles: ['Admin'], passwordHash: HASH, credentialsChangedAt: 1, createdAt: 1 }],
        },
        { version: 1, accounts: [{ name: 'alice', kind: 'user', roles: [], credentialsChangedAt: 1, createdAt: 1 }] },
      ];
      await open().add({ name: 'bob', kind: 'user', roles: [], passwordHash: HASH });
      for (const content of bad) {
        await writeFile(file, JSON.stringify(content));
        const error = await rejection(open().get('alice'));
        expect(error, JSON.stringify(content)).to.have.property('code', 'user_store_corrupt');
        expect((error as Error).message).to.include(file);
      }
    });

    it('fails with user_store_corrupt when one name is listed twice', async () => {
      const account = { name: 'alice', kind: 'user', roles: [], passwordHash: HASH, credentialsChangedAt: 1, createdAt: 1 };
      await open().add({ name: 'bob', kind: 'user', roles: [], passwordHash: HASH });
      await writeFile(file, JSON.stringify({ version: 1, accounts: [account, account] }));
      expect(await rejection(open().list())).to.have.property('code', 'user_store_corrupt');
    });
  });

  describe('writing', () => {
    it('creates the directory with mode 0700 and the file with mode 0600, leaving no temp files', async () => {
      const store = open();
      await store.add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: HASH });
      await store.setRoles('alice', ['admin']);
      expect((await stat(path.dirname(file))).mode & 0o777).to.equal(0o700);
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      expect(await readdir(path.dirname(file))).to.deep.equal(['users.json']);
      const content = JSON.parse(await readFile(file, 'utf8'));
      expect(content.version).to.equal(1);
      expect(content.accounts.map((account: { name: string }) => account.name)).to.deep.equal(['alice']);
    });

    it('replaces the file by rename (a new inode) rather than rewriting it in place', async () => {
      const store = open();
      await store.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      const before = (await stat(file)).ino;
      await store.add({ name: 'bob', kind: 'user', roles: [], passwordHash: HASH });
      expect((await stat(file)).ino).not.to.equal(before);
    });

    it('keeps every account when many adds run concurrently', async () => {
      const store = open();
      const names = Array.from({ length: 20 }, (_, index) => `user${index}`);
      await Promise.all(names.map((name) => store.add({ name, kind: 'user', roles: ['user'], passwordHash: HASH })));
      const reread = await open().list();
      expect(reread.map((account) => account.name).sort()).to.deep.equal([...names].sort());
    });

    it('starts a write from what another instance wrote since this one last read', async () => {
      const a = open();
      const b = open();
      await a.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      await b.add({ name: 'bob', kind: 'user', roles: [], passwordHash: HASH });
      await a.add({ name: 'carol', kind: 'user', roles: [], passwordHash: HASH });
      expect((await open().list()).map((account) => account.name)).to.deep.equal(['alice', 'bob', 'carol']);
    });

    it('rejects a taken name with account_exists', async () => {
      const store = open();
      await store.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      const error = await rejection(store.add({ name: 'alice', kind: 'service', roles: [], passwordHash: HASH }));
      expect(error).to.have.property('code', 'account_exists');
      expect(error).to.have.property('status', 409);
    });

    it('rejects a name that does not match ACCOUNT_NAME with invalid_account_name', async () => {
      const store = open();
      for (const name of ['', 'Alice', '-alice', 'a/b', 'a'.repeat(65), 'alice\n']) {
        const error = await rejection(store.add({ name, kind: 'user', roles: [], passwordHash: HASH }));
        expect(error, JSON.stringify(name)).to.have.property('code', 'invalid_account_name');
      }
      expect(await store.list()).to.deep.equal([]);
    });

    it('rejects a bad role name with invalid_role', async () => {
      const store = open();
      for (const role of ['', 'Admin', '1st', 'a'.repeat(33), 'a b']) {
        const error = await rejection(store.add({ name: 'alice', kind: 'user', roles: [role], passwordHash: HASH }));
        expect(error, JSON.stringify(role)).to.have.property('code', 'invalid_role');
      }
      await store.add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: HASH });
      expect(await rejection(store.setRoles('alice', ['NOPE']))).to.have.property('code', 'invalid_role');
    });

    it('removes an account and returns false when there was none', async () => {
      const store = open();
      await store.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      expect(await store.remove('alice')).to.equal(true);
      expect(await store.remove('alice')).to.equal(false);
      expect(await open().get('alice')).to.equal(undefined);
    });

    it('throws account_not_found when changing an account that does not exist', async () => {
      const store = open();
      expect(await rejection(store.setRoles('ghost', ['user']))).to.have.property('code', 'account_not_found');
      expect(await rejection(store.setPasswordHash('ghost', HASH))).to.have.property('code', 'account_not_found');
    });

    it('bumps credentialsChangedAt on a new password hash even when the clock has not moved', async () => {
      const store = open();
      const created = await store.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      const same = await store.setPasswordHash('alice', OTHER_HASH);
      expect(same.credentialsChangedAt).to.equal(created.credentialsChangedAt + 1);
      now += 60_000;
      const later = await store.setPasswordHash('alice', HASH);
      expect(later.credentialsChangedAt).to.equal(now);
      expect(later.createdAt).to.equal(created.createdAt);
      expect((await open().get('alice'))?.credentialsChangedAt).to.equal(now);
    });

    it('rejects every call after close', async () => {
      const store = open();
      await store.close();
      expect(await rejection(store.list())).to.be.instanceOf(Error);
    });
  });

  describe('watch', () => {
    it('reports removed, credentials_changed and roles_changed for changes made through the same instance', async () => {
      const store = open();
      await store.add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: HASH });
      await store.add({ name: 'bob', kind: 'user', roles: ['user'], passwordHash: HASH });
      const changes: AccountChange[] = [];
      store.watch((change) => changes.push(change));
      await store.add({ name: 'carol', kind: 'user', roles: ['user'], passwordHash: HASH });
      await store.setPasswordHash('alice', OTHER_HASH);
      await store.setRoles('bob', ['user', 'admin']);
      await store.setRoles('bob', ['admin', 'user']); // same set: no change
      await store.remove('carol');
      expect(changes).to.deep.equal([
        { name: 'alice', reason: 'credentials_changed' },
        { name: 'bob', reason: 'roles_changed' },
        { name: 'carol', reason: 'removed' },
      ]);
    });

    it('reports changes written by a separate instance on the same file', async () => {
      const writer = open();
      await writer.add({ name: 'alice', kind: 'user', roles: ['user'], passwordHash: HASH });
      await writer.add({ name: 'bob', kind: 'user', roles: ['user'], passwordHash: HASH });
      await writer.add({ name: 'carol', kind: 'user', roles: ['user'], passwordHash: HASH });

      const server = open({ pollIntervalMs: 50 });
      const changes: AccountChange[] = [];
      server.watch((change) => changes.push(change));
      await server.list(); // the baseline is loaded

      await writer.remove('alice');
      await eventually(() => expect(changes).to.deep.include({ name: 'alice', reason: 'removed' }));
      await writer.setPasswordHash('bob', OTHER_HASH);
      await eventually(() => expect(changes).to.deep.include({ name: 'bob', reason: 'credentials_changed' }));
      await writer.setRoles('carol', ['admin']);
      await eventually(() => expect(changes).to.deep.include({ name: 'carol', reason: 'roles_changed' }));
      expect(changes).to.have.length(3);
      expect((await server.get('carol'))?.roles).to.deep.equal(['admin']);
    });

    it('reports the removal when another process deletes the whole file', async () => {
      const writer = open();
      await writer.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      const server = open({ pollIntervalMs: 50 });
      const changes: AccountChange[] = [];
      server.watch((change) => changes.push(change));
      await server.list();
      await rm(file);
      await eventually(() => expect(changes).to.deep.equal([{ name: 'alice', reason: 'removed' }]));
    });

    it('stops reporting after unsubscribe and after close', async () => {
      const writer = open();
      await writer.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      await writer.add({ name: 'bob', kind: 'user', roles: [], passwordHash: HASH });
      const unsubscribed = open({ pollIntervalMs: 20 });
      const closed = open({ pollIntervalMs: 20 });
      const seen: string[] = [];
      const stop = unsubscribed.watch((change) => seen.push(`unsubscribed:${change.name}`));
      closed.watch((change) => seen.push(`closed:${change.name}`));
      const control = open({ pollIntervalMs: 20 });
      control.watch((change) => seen.push(`control:${change.name}`));
      await Promise.all([unsubscribed.list(), closed.list(), control.list()]);
      stop();
      await closed.close();
      await writer.remove('alice');
      await eventually(() => expect(seen).to.include('control:alice'));
      await new Promise((resolve) => setTimeout(resolve, 100)); // a few more poll intervals
      expect(seen).to.deep.equal(['control:alice']);
    });

    it('keeps the last good accounts and reports the error when the file becomes corrupt', async () => {
      const writer = open();
      await writer.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      const errors: unknown[] = [];
      const server = open({ pollIntervalMs: 50, onError: (error) => errors.push(error) });
      const changes: AccountChange[] = [];
      server.watch((change) => changes.push(change));
      await server.list();
      await writeFile(file, 'garbage');
      await eventually(() => expect(errors).to.have.length.greaterThan(0));
      expect(errors[0]).to.have.property('code', 'user_store_corrupt');
      expect(changes).to.deep.equal([]);
    });

    it('keeps notifying other listeners when one listener throws', async () => {
      const errors: unknown[] = [];
      const store = open({ onError: (error) => errors.push(error) });
      await store.add({ name: 'alice', kind: 'user', roles: [], passwordHash: HASH });
      const changes: AccountChange[] = [];
      store.watch(() => {
        throw new Error('listener failed');
      });
      store.watch((change) => changes.push(change));
      await store.remove('alice');
      expect(changes).to.deep.equal([{ name: 'alice', reason: 'removed' }]);
      expect(errors).to.have.length(1);
    });
  });
});
