import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { RevocationList } from '../../../../src/auth/revocations.js';
import type { Backend, BackendDeps } from '../../../../src/backends/backend.js';
import { openSqliteBackend, type SqliteBackendSettings } from '../../../../src/backends/sqlite/sqlite-backend.js';
import { terminateWriterThread } from '../../../../src/backends/sqlite/writer-connection.js';
import type { BusEvent, PublishRequest } from '../../../../src/bus/event-bus.js';
import { formatEventId, parseEventId, compareEventIds } from '../../../../src/bus/event-id.js';
import { ConfigError } from '../../../../src/config.js';
import { parseSelector } from '../../../../src/topics/selector.js';
import { rejection } from '../../../helpers/errors.js';
import { backendDeps } from '../../../helpers/backend-deps.js';
import { publishRequest as request, replayedIds as idsOf } from '../../../helpers/bus-requests.js';
import { sqliteSettings, storeDir } from '../../../helpers/sqlite.js';

/** The same SSE frames, byte for byte, one per topic. */
const sameFrames = (a: BusEvent, b: BusEvent) =>
  a.frames.length === b.frames.length && a.frames.every((frame, i) => frame.equals(b.frames[i]!));

const T0 = 1_700_000_000_000;
const all = [parseSelector('**')];

describe('the SQLite backend (STORE=sqlite)', () => {
  let place: ReturnType<typeof storeDir>;
  let now: number;
  const opened: Backend[] = [];

  beforeEach(() => {
    place = storeDir('sqlite-backend');
    now = T0;
  });
  afterEach(async () => {
    for (const backend of opened.splice(0)) await backend.close();
    place.remove();
  });

  const settings = (env: Record<string, string> = {}) => sqliteSettings(place.dir, env);
  async function open(
    env: Record<string, string> = {},
    deps: Partial<BackendDeps> = {},
    tweak?: (s: SqliteBackendSettings) => SqliteBackendSettings,
  ) {
    const chosen = settings(env);
    const backend = await openSqliteBackend(tweak === undefined ? chosen : tweak(chosen), backendDeps({ clock: () => now, ...deps }));
    opened.push(backend);
    return backend;
  }
  async function restart(backend: Backend, env: Record<string, string> = {}, deps: Partial<BackendDeps> = {}) {
    await backend.close();
    opened.splice(opened.indexOf(backend), 1);
    return open(env, deps);
  }
  const publish = async (backend: Backend, topics: string[], extra: Partial<PublishRequest> = {}) =>
    (await backend.bus.publish(request(topics, extra))).event;

  describe('after a restart', () => {
    it('replays exactly the events after a Last-Event-ID, published before and after the restart, without a reset', async () => {
      let backend = await open();
      const before: BusEvent[] = [];
      for (let i = 0; i < 6; i++) {
        now += 1;
        before.push(await publish(backend, [`t/${i % 3}`]));
      }
      backend = await restart(backend);
      now += 1;
      const after = await publish(backend, ['t/1']);
      expect(idsOf(await backend.bus.replay([parseSelector('t/1')], before[0]!.id))).to.deep.equal([
        before[1]!.id,
        before[4]!.id,
        after.id,
      ]);
      expect(idsOf(await backend.bus.replay(all, before[2]!.id))).to.deep.equal([...before.slice(3).map((e) => e.id), after.id]);
      // The frames are rebuilt byte for byte.
      const replayed = await backend.bus.replay(all, before[4]!.id);
      expect(replayed.kind === 'events' && sameFrames(replayed.events[0]!, before[5]!)).to.equal(true);
    });

    it('issues ids after the last one stored even when the clock went back across the restart', async () => {
      let backend = await open();
      now += 10_000;
      const last = await publish(backend, ['a']);
      now -= 60_000; // an hour of NTP correction, or a restored VM snapshot
      backend = await restart(backend);
      const next = await publish(backend, ['a']);
      expect(compareEventIds(parseEventId(next.id)!, parseEventId(last.id)!)).to.be.greaterThan(0);
      expect(idsOf(await backend.bus.replay(all, last.id))).to.deep.equal([next.id]);
    });

    it('answers a retried publish with the original event, and a reused key with idempotency_key_reused', async () => {
      let backend = await open();
      const first = await backend.bus.publish(request(['orders/1'], { idempotencyKey: 'k-1' }));
      backend = await restart(backend);
      const again = await backend.bus.publish(request(['orders/1'], { idempotencyKey: 'k-1' }));
      expect(again.duplicate).to.equal(true);
      expect(again.event.id).to.equal(first.event.id);
      expect(sameFrames(again.event, first.event)).to.equal(true);
      const reused = await rejection(backend.bus.publish(request(['orders/2'], { idempotencyKey: 'k-1' })));
      expect(reused).to.include({ status: 409, code: 'idempotency_key_reused' });
    });

    it('still refuses what was revoked: sessions, subjects, and the sessions of revoked refresh-token families', async () => {
      const revocations = new RevocationList({ retentionMs: 60_000, clock: () => now });
      const backend = await open({}, { revocations });
      revocations.revokeSession('family-a');
      revocations.revokeSubject('mallory', 'account_removed');
      // Logout revokes the family in the store before it answers; the list's own write may not have landed.
      const family = await backend.refreshTokens.issue('carol', 'web');
      await backend.refreshTokens.revokeFamily(family.familyId);
      const issuedBefore = Math.floor(now / 1000);
      now += 1000;
      const fresh = new RevocationList({ retentionMs: 60_000, clock: () => now });
      await restart(backend, {}, { revocations: fresh });
      expect(fresh.isRevoked({ subject: 'x', sessionId: 'family-a', issuedAt: issuedBefore })).to.equal(true);
      expect(fresh.isRevoked({ subject: 'mallory', sessionId: undefined, issuedAt: issuedBefore })).to.equal(true);
      expect(fresh.isRevoked({ subject: 'mallory', sessionId: undefined, issuedAt: issuedBefore + 1 })).to.equal(false);
      expect(fresh.isRevoked({ subject: 'carol', sessionId: family.familyId, issuedAt: issuedBefore })).to.equal(true);
      expect(fresh.isRevoked({ subject: 'x', sessionId: 'never-revoked', issuedAt: issuedBefore })).to.equal(false);
    });

    it('forgets revocations once no token they cover can be valid', async () => {
      const revocations = new RevocationList({ retentionMs: 60_000, clock: () => now });
      const backend = await open({}, { revocations });
      revocations.revokeSession('family-a');
      await backend.sweep(); // a barrier: the revocation's write is committed once the sweep is
      now += 60_000;
      await backend.sweep();
      await restart(backend, {}, { revocations: new RevocationList({ retentionMs: 60_000, clock: () => now }) });
      const file = new Database(settings().store.file, { readonly: true });
      try {
        expect(file.prepare('SELECT count(*) AS n FROM revocations').get()).to.deep.equal({ n: 0 });
      } finally {
        file.close();
      }
    });

    it('redeems a browser ticket put before the restart, once', async () => {
      let backend = await open();
      const grant = { subject: 'shop~ann', clientId: 'shop', grants: { publish: [], subscribe: ['users/shop~ann/**'] }, issuedAt: 1 };
      await backend.tickets.put('ticket-id', grant, 30_000);
      backend = await restart(backend);
      expect(await backend.tickets.take('ticket-id')).to.deep.equal(grant);
      expect(await backend.tickets.take('ticket-id')).to.equal(undefined);
    });
  });

  it('creates the store and its lock with mode 0600, as every file in DATA_DIR', async () => {
    const backend = await open();
    await publish(backend, ['a']);
    for (const name of ['notify.db', 'notify.db-wal', 'notify.db.lock']) {
      expect(statSync(path.join(place.dir, name)).mode & 0o777, name).to.equal(0o600);
    }
  });

  describe('bounds', () => {
    it('keeps HISTORY_SIZE events per topic: a replay from before the trimmed ones resets, from the newest trimmed one it does not', async () => {
      const backend = await open({ HISTORY_SIZE: '3' });
      const busy: BusEvent[] = [];
      const quiet = await publish(backend, ['quiet']);
      for (let i = 0; i < 6; i++) {
        now += 1;
        busy.push(await publish(backend, ['busy']));
      }
      expect(await backend.bus.replay([parseSelector('busy')], busy[0]!.id)).to.include({ kind: 'reset', reason: 'history_exhausted' });
      expect(idsOf(await backend.bus.replay([parseSelector('busy')], busy[2]!.id))).to.deep.equal(busy.slice(3).map((e) => e.id));
      // The quiet topic lost nothing: its subscriber resumes from far back.
      expect(idsOf(await backend.bus.replay([parseSelector('quiet')], quiet.id))).to.deep.equal([]);
      expect(backend.bus.historySize).to.equal(4);
    });

    it('keeps an event published to two topics while one of them still holds it', async () => {
      const backend = await open({ HISTORY_SIZE: '1' });
      const both = await publish(backend, ['a', 'b']);
      now += 1;
      const onA = await publish(backend, ['a']); // trims `both` from a, not from b
      expect(idsOf(await backend.bus.replay([parseSelector('b')], formatEventId({ ms: T0, seq: 0 })))).to.deep.equal([both.id]);
      expect(await backend.bus.replay([parseSelector('a')], formatEventId({ ms: T0, seq: 0 }))).to.include({ reason: 'history_exhausted' });
      expect(idsOf(await backend.bus.replay([parseSelector('a')], both.id))).to.deep.equal([onA.id]);
    });

    it('forgets the least recently published topic past HISTORY_MAX_TOPICS: a replay from before its events resets', async () => {
      const backend = await open({ HISTORY_MAX_TOPICS: '2' });
      now += 1;
      const first = await publish(backend, ['first']);
      now += 1;
      const second = await publish(backend, ['second']);
      now += 1;
      await publish(backend, ['first']); // `second` is now the least recently published
      now += 1;
      const third = await publish(backend, ['third']);
      expect(await backend.bus.replay([parseSelector('first')], first.id)).to.include({ reason: 'history_exhausted' });
      expect(idsOf(await backend.bus.replay([parseSelector('third')], second.id))).to.deep.equal([third.id]);
    });

    it('keeps at most HISTORY_MAX_BYTES of event data over all topics, dropping the oldest first', async () => {
      const data = JSON.stringify('x'.repeat(100 * 1024));
      const backend = await open({
        HISTORY_MAX_BYTES: String(1024 * 1024),
        MAX_DATA_BYTES: String(200 * 1024),
        MAX_BODY_BYTES: String(256 * 1024),
      });
      const events: BusEvent[] = [];
      for (let i = 0; i < 15; i++) {
        now += 1;
        events.push(await publish(backend, [`t/${i}`], { data }));
      }
      // Ten fit in 1 MiB with their type and topic names; the five oldest are gone.
      expect(backend.bus.historySize).to.equal(10);
      expect(await backend.bus.replay([parseSelector('t/*')], events[3]!.id)).to.include({ reason: 'history_exhausted' });
      expect(idsOf(await backend.bus.replay([parseSelector('t/*')], events[4]!.id))).to.deep.equal(events.slice(5).map((e) => e.id));
      // A topic that lost its only event says so too.
      expect(await backend.bus.replay([parseSelector('t/2')], formatEventId({ ms: T0, seq: 0 }))).to.include({
        reason: 'history_exhausted',
      });
    });

    it('drops events past HISTORY_TTL when swept, and a replay across an expired event resets even before the sweep', async () => {
      const backend = await open({ HISTORY_TTL: '60' });
      now += 1;
      const old = await publish(backend, ['a']);
      now += 30_000;
      const kept = await publish(backend, ['a']);
      now = old.publishedAt + 60_000; // `old` is exactly at the TTL: expired
      expect(await backend.bus.replay(all, formatEventId({ ms: T0, seq: 0 }))).to.include({ reason: 'history_exhausted' });
      await backend.sweep();
      expect(backend.bus.historySize).to.equal(1);
      expect(idsOf(await backend.bus.replay(all, old.id))).to.deep.equal([kept.id]);
    });

    it('forgets idempotency keys past IDEMPOTENCY_MAX_KEYS, oldest first', async () => {
      const backend = await open({ IDEMPOTENCY_MAX_KEYS: '2' });
      const first = await backend.bus.publish(request(['a'], { idempotencyKey: 'k1' }));
      await backend.bus.publish(request(['a'], { idempotencyKey: 'k2' }));
      await backend.bus.publish(request(['a'], { idempotencyKey: 'k3' }));
      const again = await backend.bus.publish(request(['a'], { idempotencyKey: 'k1' }));
      expect(again.duplicate).to.equal(false);
      expect(again.event.id).to.not.equal(first.event.id);
      expect((await backend.bus.publish(request(['a'], { idempotencyKey: 'k3' }))).duplicate).to.equal(true);
    });

    it('keeps no copy of the event per idempotency key: fresh keys with large events stay within HISTORY_MAX_BYTES on disk', async () => {
      const backend = await open({ HISTORY_MAX_BYTES: String(2 ** 20) });
      const data = JSON.stringify('k'.repeat(16 * 1024));
      const published = [];
      for (let i = 0; i < 2000; i++) published.push(backend.bus.publish(request([`t/${i % 50}`], { idempotencyKey: `key-${i}`, data })));
      const events = await Promise.all(published);
      // 2,000 keys of 16 KiB events: 32 MiB if each key kept its event, 1 MiB of history if none does.
      const onDisk = ['', '-wal'].reduce((sum, suffix) => sum + statSync(`${settings().store.file}${suffix}`).size, 0);
      expect(onDisk).to.be.below(12 * 2 ** 20);
      // A retry of the first, long trimmed from history, is still known, with its id and its request's content.
      const retried = await backend.bus.publish(request(['t/0'], { idempotencyKey: 'key-0', data }));
      expect(retried.duplicate).to.equal(true);
      expect(retried.event.id).to.equal(events[0]!.event.id);
      expect(retried.event.data).to.equal(data);
    });
  });

  describe('replay', () => {
    it('reads a long history in steps, in order, for one topic among many and for a selector over all of them', async () => {
      const backend = await open();
      const mine: string[] = [];
      const everything: string[] = [];
      for (let i = 0; i < 1300; i++) {
        if (i % 7 === 0) now += 1;
        const event = await publish(backend, [i % 2 === 0 ? 'users/ann/inbox' : `news/${i % 100}`]);
        everything.push(event.id);
        if (i % 2 === 0) mine.push(event.id);
      }
      expect(idsOf(await backend.bus.replay([parseSelector('users/ann/**')], everything[0]!))).to.deep.equal(mine.slice(1));
      // 100 news topics: read in event order and filtered.
      expect(idsOf(await backend.bus.replay([parseSelector('news/*')], everything[0]!))).to.deep.equal(
        everything.filter((id) => !mine.includes(id)),
      );
      expect(idsOf(await backend.bus.replay([parseSelector('**')], everything[10]!))).to.deep.equal(everything.slice(11));
      expect(idsOf(await backend.bus.replay([parseSelector('users/*/inbox'), parseSelector('news/7')], everything[1000]!))).to.deep.equal(
        everything.slice(1001).filter((id, i) => mine.includes(id) || (1001 + i) % 100 === 7),
      );
    });

    it('matches wildcard selectors by their literal prefix, never a sibling that shares its letters', async () => {
      const backend = await open();
      const start = await publish(backend, ['start']);
      const inside = await publish(backend, ['users/ann/inbox']);
      await publish(backend, ['users/ann-b/inbox']);
      await publish(backend, ['users/ann.b/inbox']);
      await publish(backend, ['users/anna/inbox']);
      expect(idsOf(await backend.bus.replay([parseSelector('users/ann/**')], start.id))).to.deep.equal([inside.id]);
    });
  });

  describe('a store file that cannot be used stops the start, naming the file', () => {
    const refused = async (expected: RegExp) => {
      const error = await rejection(open());
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).key).to.equal('DATA_DIR');
      expect((error as Error).message)
        .to.include(settings().store.file)
        .and.to.match(expected);
    };
    const file = () => settings().store.file;

    it('an empty file (it existed, so it held a store once)', async () => {
      writeFileSync(file(), '');
      await refused(/holds no notify store/);
    });

    it('a file that is not a database', async () => {
      writeFileSync(file(), 'this is not a database, just text that is long enough to look like a header '.repeat(100));
      await refused(/is not a SQLite database \(SQLITE_NOTADB/);
    });

    it("someone else's SQLite database", async () => {
      const other = new Database(file());
      other.exec('CREATE TABLE mine (x)');
      other.close();
      await refused(/is not a notify store \(application_id 0\)/);
    });

    it('a store written by a newer release', async () => {
      const backend = await open();
      await publish(backend, ['a']);
      await backend.close();
      opened.length = 0;
      const db = new Database(file());
      db.pragma('user_version = 99');
      db.close();
      await refused(/newer release of notify \(schema 99/);
    });

    it('a store that was cut short, or scribbled over in the middle', async () => {
      const backend = await open();
      for (let i = 0; i < 400; i++) await publish(backend, [`t/${i % 40}`], { data: JSON.stringify('y'.repeat(500)) });
      await backend.close();
      opened.length = 0;
      const bytes = readFileSync(file());
      const scribbled = Buffer.from(bytes);
      for (let i = 0; i < 4096; i++) scribbled[8192 + i] = (i * 31 + 7) & 0xff;
      writeFileSync(file(), scribbled);
      await refused(/is damaged/);
      writeFileSync(file(), bytes);
      truncateSync(file(), Math.floor(bytes.length / 2));
      await refused(/is damaged/);
    });

    it('a store whose tables lack what this release reads (a column, an index)', async () => {
      await (await open()).close();
      opened.length = 0;
      const db = new Database(file());
      db.exec('ALTER TABLE events DROP COLUMN bytes; DROP INDEX tickets_by_expiry');
      db.close();
      await refused(/is damaged \(missing column events\.bytes; missing index tickets_by_expiry\)/);
    });

    it('a -wal left without its database (the database moved aside after a crash): refused, and an empty store once it is moved too', async () => {
      const backend = await open();
      for (let i = 0; i < 50; i++) await publish(backend, ['t/1']);
      // What kill -9 leaves: the WAL still holds the last commits (a clean close checkpoints it away).
      const wal = readFileSync(`${file()}-wal`);
      expect(wal.length).to.be.greaterThan(0);
      await backend.close();
      opened.length = 0;
      renameSync(file(), `${file()}.aside`);
      writeFileSync(`${file()}-wal`, wal);
      await refused(/is missing, but .*notify\.db-wal is there: it belongs to a store that was moved or deleted; put notify\.db back/);
      expect(existsSync(file())).to.equal(false);
      renameSync(`${file()}-wal`, `${file()}-wal.aside`);
      const fresh = await open();
      expect(idsOf(await fresh.bus.replay(all, 'earliest'))).to.deep.equal([]);
    });

    it('a directory where the new store is built', async () => {
      mkdirSync(`${file()}.new`);
      await refused(/cannot be created/);
    });

    it('a directory where the file should be', async () => {
      mkdirSync(file());
      await refused(/is not a regular file/);
    });

    it('a store another server of this machine holds, also after an earlier start and stop', async () => {
      await restart(await open());
      await refused(/is in use by another notify process/);
    });
  });

  describe('a full store', () => {
    // SQLite's max_page_count caps the file as a full disk would (test/process has the real tmpfs).
    const capped = (s: SqliteBackendSettings): SqliteBackendSettings => ({ ...s, store: { ...s.store, maxPageCount: 64 } });

    it('answers 503 storage_unavailable, is not ready, keeps every acknowledged event, and writes again once there is room', async () => {
      const errors: Error[] = [];
      const backend = await open({ HISTORY_TTL: '60' }, { onError: (error) => errors.push(error) }, capped);
      const acknowledged: string[] = [];
      let refusal: unknown;
      const data = JSON.stringify('z'.repeat(2000));
      for (let i = 0; i < 500 && refusal === undefined; i++) {
        try {
          acknowledged.push((await backend.bus.publish(request([`t/${i % 5}`], { data }))).event.id);
        } catch (error) {
          refusal = error;
        }
      }
      expect(refusal).to.include({ status: 503, code: 'storage_unavailable' });
      expect(acknowledged.length).to.be.greaterThan(10);
      expect(backend.unavailableReason()).to.equal('store cannot write (SQLITE_FULL)');
      expect(errors.map((error) => (error as { code?: string }).code)).to.include('SQLITE_FULL');
      expect(await rejection(backend.bus.publish(request(['t/0'], { data })))).to.include({ code: 'storage_unavailable' });
      // Everything acknowledged is there.
      expect(idsOf(await backend.bus.replay(all, formatEventId({ ms: T0, seq: 0 })))).to.deep.equal(acknowledged);
      // The history expires, the sweep frees its pages, and the store writes again by itself.
      now += 60_000;
      await backend.sweep();
      await publish(backend, ['after']);
      expect(backend.unavailableReason()).to.equal(undefined);
    });
  });

  it('fails the writes in flight with 503 storage_unavailable when the writer thread dies, and writes again with a new one', async () => {
    const errors: Error[] = [];
    const backend = await open({}, { onError: (error) => errors.push(error) });
    const before = await publish(backend, ['a']);
    const inFlight = backend.bus.publish(request(['a']));
    const dying = terminateWriterThread(); // before the publish reaches it
    expect(await rejection(inFlight)).to.include({ status: 503, code: 'storage_unavailable' });
    await dying;
    expect(errors.map((error) => (error as { code?: string }).code)).to.include('WRITER_EXITED');
    now += 1;
    const after = await publish(backend, ['a']);
    expect(idsOf(await backend.bus.replay(all, before.id))).to.deep.equal([after.id]);
    expect(backend.unavailableReason()).to.equal(undefined);
  });

  it('publishes and replays the same with STORE_FSYNC=everysec, and keeps what it acknowledged across a restart', async () => {
    let backend = await open({ STORE_FSYNC: 'everysec' });
    const event = await publish(backend, ['a']);
    now += 1;
    const second = await publish(backend, ['a']);
    backend = await restart(backend, { STORE_FSYNC: 'everysec' });
    expect(idsOf(await backend.bus.replay(all, event.id))).to.deep.equal([second.id]);
    expect(readFileSync(path.join(place.dir, 'notify.db')).subarray(0, 16).toString('latin1')).to.equal('SQLite format 3\u0000');
  });
});
