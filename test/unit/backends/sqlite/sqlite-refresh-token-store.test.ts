import { expect } from 'chai';
import Database from 'better-sqlite3';
import path from 'node:path';
import type { Backend } from '../../../../src/backends/backend.js';
import { openSqliteBackend } from '../../../../src/backends/sqlite/sqlite-backend.js';
import { SqliteRefreshTokenStore } from '../../../../src/backends/sqlite/sqlite-refresh-token-store.js';
import { WriterConnection } from '../../../../src/backends/sqlite/writer-connection.js';
import { openStoreFile, type StoreFile } from '../../../../src/backends/sqlite/store-file.js';
import { refreshTokenStoreContract } from '../../../contract/refresh-token-store.contract.js';
import { backendDeps } from '../../../helpers/backend-deps.js';
import { sqliteSettings, storeDir } from '../../../helpers/sqlite.js';

const LIMITS = { historySize: 100, maxTopics: 100, maxBytes: 1 << 20, idempotencyMaxKeys: 100, maxTickets: 100 };

/** Every text value in the tables that hold refresh tokens. */
function storedStrings(file: string): string[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const found: string[] = [];
    for (const table of ['families', 'family_tokens', 'revocations']) {
      for (const row of db.prepare(`SELECT * FROM ${table}`).all() as Array<Record<string, unknown>>) {
        for (const value of Object.values(row)) if (typeof value === 'string') found.push(value);
      }
    }
    return found;
  } finally {
    db.close();
  }
}

// The same rules as the memory and Redis stores, on a store file. One process owns the file, so
// the "other instance" is the same store.
refreshTokenStoreContract('sqlite', () => {
  const opened: Array<{ store: StoreFile; writer: WriterConnection; remove(): void }> = [];
  let last: SqliteRefreshTokenStore | undefined;
  return {
    startTime: () => 1_700_000_000_000,
    async open(options) {
      const { dir, remove } = storeDir('rt-contract');
      const store = openStoreFile(path.join(dir, 'notify.db'), options.clock());
      const writer = await WriterConnection.open(store.file, { fsync: 'always', limits: LIMITS }, () => undefined);
      opened.push({ store, writer, remove });
      return (last = new SqliteRefreshTokenStore({ writer, ...options }));
    },
    sibling: async () => last!,
    storedStrings: async () => storedStrings(opened.at(-1)!.store.file),
    async close() {
      for (const { store, writer, remove } of opened.splice(0)) {
        await writer.close();
        store.close();
        remove();
      }
    },
  };
});

describe('SqliteRefreshTokenStore across a restart', () => {
  let place: ReturnType<typeof storeDir>;
  let backend: Backend | undefined;
  beforeEach(() => (place = storeDir('rt-restart')));
  afterEach(async () => {
    await backend?.close();
    place.remove();
  });

  const open = async () => (backend = await openSqliteBackend(sqliteSettings(place.dir), backendDeps()));

  it('rotates a token issued before the restart, and still answers reuse of a token rotated before it', async () => {
    const first = await (await open()).refreshTokens.issue('alice', 'web');
    const rotated = await backend!.refreshTokens.rotate(first.token);
    if (!rotated.ok) throw new Error(rotated.reason);
    const stolen = await backend!.refreshTokens.issue('bob', 'web');
    const bobNext = await backend!.refreshTokens.rotate(stolen.token);
    if (!bobNext.ok) throw new Error(bobNext.reason);
    await backend!.close();

    await open();
    const again = await backend!.refreshTokens.rotate(rotated.grant.token);
    expect(again.ok).to.equal(true);
    expect(again.ok && again.grant).to.include({ familyId: first.familyId, subject: 'alice', clientId: 'web' });
    expect(await backend!.refreshTokens.rotate(stolen.token)).to.deep.equal({ ok: false, reason: 'reused', familyId: stolen.familyId });
    expect(await backend!.refreshTokens.rotate(bobNext.grant.token)).to.deep.equal({
      ok: false,
      reason: 'revoked',
      familyId: stolen.familyId,
    });
  });

  it('forgets families past their idle lifetime when swept, and keeps the others', async () => {
    let now = 1_700_000_000_000;
    const settings = sqliteSettings(place.dir, { REFRESH_TOKEN_IDLE_TTL: '60' });
    backend = await openSqliteBackend(settings, backendDeps({ clock: () => now }));
    const old = await backend.refreshTokens.issue('alice', 'web');
    now += 30_000;
    const fresh = await backend.refreshTokens.issue('bob', 'web');
    now += 30_000;
    await backend.sweep();
    const stored = storedStrings(settings.store.file);
    expect(stored).to.include(fresh.familyId);
    expect(stored).to.not.include(old.familyId);
    expect(await backend.refreshTokens.rotate(old.token)).to.deep.equal({ ok: false, reason: 'unknown' });
    expect((await backend.refreshTokens.rotate(fresh.token)).ok).to.equal(true);
  });
});
