// One small store per candidate (and two baselines), with the operations issue 14 needs: a durable
// publish (event + idempotency key in one atomic write), a replay range scan, and a per-topic trim.
// The candidates are not project dependencies: they are loaded from the scratch folder named by
// DBCHOICE_MODULES (a folder whose node_modules holds lmdb, classic-level and better-sqlite3).
import { closeSync, fdatasyncSync, mkdirSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

const modulesDir = process.env.DBCHOICE_MODULES;
if (!modulesDir) {
  console.error('DBCHOICE_MODULES must name the scratch folder that holds the candidates in node_modules');
  process.exit(78);
}
const requireCandidate = createRequire(join(modulesDir, 'package.json'));

/** Installed version of a candidate, read from its package.json. */
export function candidateVersion(name) {
  return requireCandidate(`${name}/package.json`).version;
}

// Event ids in the bench are one safe integer (ms * 1000 + seq) so every store can use it as a key
// component; the server's real ids are `<ms>-<seq>` and would use two key components.
const MAX_ID = Number.MAX_SAFE_INTEGER;

/** Bytes on disk of a store's files: apparent size and allocated blocks. */
export function diskUsage(path) {
  let apparent = 0;
  let allocated = 0;
  const visit = (p) => {
    const s = statSync(p);
    if (s.isDirectory()) for (const f of readdirSync(p)) visit(join(p, f));
    else {
      apparent += s.size;
      allocated += s.blocks * 512;
    }
  };
  visit(path);
  return { apparent, allocated };
}

function levelKey(topic, id) {
  const t = Buffer.from(topic, 'utf8');
  const k = Buffer.allocUnsafe(t.length + 9);
  t.copy(k, 0);
  k[t.length] = 0;
  k.writeBigUInt64BE(BigInt(id), t.length + 1);
  return k;
}

/**
 * Opens a store. kind: lmdb | level | sqlite | fsfile | memory; mode depends on kind (see MODES).
 * Every store answers: publish(topic, id, payload, idemKey) -> Promise resolved when the write is
 * as safe as the mode promises; replay(topic, afterId, limit) -> [{ id, payload }];
 * trimTopics([{ topic, keep, minId }]) -> Promise<number deleted>; close(); path (what to measure).
 */
export async function openStore(kind, mode, dir) {
  mkdirSync(dir, { recursive: true });
  switch (kind) {
    case 'lmdb':
      return openLmdb(mode, dir);
    case 'level':
      return openLevel(mode, dir);
    case 'sqlite':
      return openSqlite(mode, dir);
    case 'fsfile':
      return openFsFile(mode, dir);
    case 'memory':
      return openMemory();
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

export const MODES = {
  // flushed: put resolves on commit, then await db.flushed (fsync done) - durable.
  // synccommit: overlappingSync off, put resolves after the synced commit - durable.
  // committed: put resolves on commit (visible, in the OS page cache; kill -9 safe, power loss not).
  // nosync: noSync, no flush at all.
  lmdb: ['flushed', 'synccommit', 'committed', 'nosync'],
  // sync: batch({ sync: true }) - durable. nosync: sync false (write(2) to the log, no fsync).
  level: ['sync', 'nosync'],
  // full: WAL + synchronous=FULL, one transaction per publish - durable.
  // full-batched: WAL + FULL, publishes arriving in one event-loop turn share one transaction.
  // normal: WAL + synchronous=NORMAL (no fsync per commit; kill -9 safe, power loss may lose the tail).
  // worker-full / worker-normal: the write connection lives in a worker thread (sqlite-worker.mjs),
  // grouping the publishes of one of its event-loop turns into one transaction.
  sqlite: ['full', 'full-batched', 'normal', 'normal-batched', 'worker-full', 'worker-normal'],
  // Baselines. fsync: append a record to a file + fdatasync per publish. fsync-batched: one
  // fdatasync per event-loop turn. memory: an in-memory Map of arrays (no persistence at all).
  fsfile: ['fsync', 'fsync-batched'],
  memory: ['memory'],
};

async function openLmdb(mode, dir) {
  const { open } = requireCandidate('lmdb');
  const options = { path: join(dir, 'lmdb'), maxDbs: 4 };
  if (mode === 'synccommit') options.overlappingSync = false;
  if (mode === 'nosync') options.noSync = true;
  const root = open(options);
  const events = root.openDB({ name: 'events', encoding: 'binary' });
  const idem = root.openDB({ name: 'idem' });
  return {
    path: join(dir, 'lmdb'),
    async publish(topic, id, payload, idemKey) {
      const written = root.transaction(() => {
        if (idemKey !== undefined && idem.get(idemKey) !== undefined) return false;
        events.putSync([topic, id], payload);
        if (idemKey !== undefined) idem.putSync(idemKey, id);
        return true;
      });
      try {
        await written;
        if (mode === 'flushed') await root.flushed;
      } catch (error) {
        // lmdb-js hangs a second rejected promise (commitError, the OS error) on a failed commit;
        // left unhandled it ends the process (seen on a full disk), so take it and surface its code.
        const cause = await error.commitError?.catch((e) => e);
        if (cause !== undefined) error.cause = cause;
        if (cause?.code !== undefined) error.code = `LMDB_COMMIT_FAILED_${cause.code}`;
        throw error;
      }
    },
    async replay(topic, afterId, limit) {
      const out = [];
      for (const { key, value } of events.getRange({ start: [topic, afterId + 1], end: [topic, MAX_ID], limit })) {
        out.push({ id: key[1], payload: value });
      }
      return out;
    },
    async trimTopics(work) {
      // Reads are synchronous and cheap (memory-mapped); the deletes go to lmdb-js's write thread
      // as one batch, so this thread only finds the keys. (Deleting inside a transaction() callback
      // ran on this thread and stalled the event loop for up to 180 ms in the sustained run.)
      const doomed = [];
      for (const { topic, keep, minId } of work) {
        let cutoff = minId - 1;
        for (const key of events.getKeys({ start: [topic, MAX_ID], end: [topic, 0], reverse: true, offset: keep, limit: 1 })) {
          cutoff = Math.max(cutoff, key[1]);
        }
        if (cutoff < 0) continue;
        for (const key of events.getKeys({ start: [topic, 0], end: [topic, cutoff + 1] })) doomed.push(key);
      }
      if (doomed.length === 0) return 0;
      await root.batch(() => {
        for (const key of doomed) events.remove(key);
      });
      return doomed.length;
    },
    async close() {
      await root.close();
    },
  };
}

async function openLevel(mode, dir) {
  const { ClassicLevel } = requireCandidate('classic-level');
  const db = new ClassicLevel(join(dir, 'level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const sync = mode === 'sync';
  return {
    path: join(dir, 'level'),
    async publish(topic, id, payload, idemKey) {
      const ops = [{ type: 'put', key: levelKey(topic, id), value: payload }];
      if (idemKey !== undefined) {
        const ik = Buffer.from('\u0001idem\u0000' + idemKey);
        if ((await db.get(ik)) !== undefined) return;
        ops.push({ type: 'put', key: ik, value: Buffer.from(String(id)) });
      }
      await db.batch(ops, { sync });
    },
    async replay(topic, afterId, limit) {
      const out = [];
      const start = levelKey(topic, afterId + 1);
      const end = levelKey(topic, MAX_ID);
      for await (const [key, value] of db.iterator({ gte: start, lte: end, limit })) {
        out.push({ id: Number(key.readBigUInt64BE(key.length - 8)), payload: value });
      }
      return out;
    },
    async trimTopics(work) {
      let deleted = 0;
      for (const { topic, keep, minId } of work) {
        let cutoff = minId - 1;
        const newest = await db.keys({ gte: levelKey(topic, 0), lte: levelKey(topic, MAX_ID), reverse: true, limit: keep + 1 }).all();
        if (newest.length === keep + 1) cutoff = Math.max(cutoff, Number(newest[keep].readBigUInt64BE(newest[keep].length - 8)));
        if (cutoff < 0) continue;
        const old = await db.keys({ gte: levelKey(topic, 0), lte: levelKey(topic, cutoff) }).all();
        if (old.length === 0) continue;
        await db.batch(old.map((key) => ({ type: 'del', key })));
        deleted += old.length;
      }
      return deleted;
    },
    async close() {
      await db.close();
    },
  };
}

const SQLITE_SCHEMA = `CREATE TABLE IF NOT EXISTS events (topic TEXT NOT NULL, id INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (topic, id)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS idem (key TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;`;

async function openSqlite(mode, dir) {
  if (mode.startsWith('worker-')) return openSqliteWorker(mode, dir);
  const Database = requireCandidate('better-sqlite3');
  const path = join(dir, 'events.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(mode.startsWith('full') ? 'synchronous = FULL' : 'synchronous = NORMAL');
  db.exec(SQLITE_SCHEMA);
  const insertEvent = db.prepare('INSERT INTO events (topic, id, payload) VALUES (?, ?, ?)');
  const findIdem = db.prepare('SELECT id FROM idem WHERE key = ?').pluck();
  const insertIdem = db.prepare('INSERT INTO idem (key, id) VALUES (?, ?)');
  const range = db.prepare('SELECT id, payload FROM events WHERE topic = ? AND id > ? ORDER BY id LIMIT ?');
  const nthNewest = db.prepare('SELECT id FROM events WHERE topic = ? ORDER BY id DESC LIMIT 1 OFFSET ?').pluck();
  const deleteUpTo = db.prepare('DELETE FROM events WHERE topic = ? AND id <= ?');
  const writeOne = (topic, id, payload, idemKey) => {
    if (idemKey !== undefined && findIdem.get(idemKey) !== undefined) return;
    insertEvent.run(topic, id, payload);
    if (idemKey !== undefined) insertIdem.run(idemKey, id);
  };
  const publishOne = db.transaction(writeOne);
  let queue = [];
  const flushQueue = db.transaction((items) => {
    for (const item of items) writeOne(item.topic, item.id, item.payload, item.idemKey);
  });
  const flush = () => {
    const items = queue;
    queue = [];
    try {
      flushQueue(items);
      for (const item of items) item.resolve();
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  };
  const batched = mode.endsWith('-batched');
  return {
    path,
    publish(topic, id, payload, idemKey) {
      if (!batched) {
        publishOne(topic, id, payload, idemKey);
        return Promise.resolve();
      }
      return new Promise((resolve, reject) => {
        if (queue.length === 0) setImmediate(flush);
        queue.push({ topic, id, payload, idemKey, resolve, reject });
      });
    },
    async replay(topic, afterId, limit) {
      return range.all(topic, afterId, limit);
    },
    trimTopics: async (work) =>
      db.transaction(() => {
        let deleted = 0;
        for (const { topic, keep, minId } of work) {
          const nth = nthNewest.get(topic, keep);
          const cutoff = Math.max(minId - 1, nth ?? -1);
          if (cutoff >= 0) deleted += deleteUpTo.run(topic, cutoff).changes;
        }
        return deleted;
      })(),
    async close() {
      db.close();
    },
  };
}

async function openSqliteWorker(mode, dir) {
  const Database = requireCandidate('better-sqlite3');
  const path = join(dir, 'events.db');
  const worker = new Worker(new URL('./sqlite-worker.mjs', import.meta.url), {
    workerData: { modulesDir, path, synchronous: mode === 'worker-full' ? 'FULL' : 'NORMAL', schema: SQLITE_SCHEMA },
  });
  const pending = new Map();
  let seq = 0;
  const fail = (error) => {
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`SQLite worker exited with code ${code}`)));
  const asError = (e) => Object.assign(new Error(e.message), { code: e.code });
  worker.on('message', (msg) => {
    const settle = (s, value) => {
      const p = pending.get(s);
      pending.delete(s);
      if (msg.error) p?.reject(asError(msg.error));
      else p?.resolve(value);
    };
    if (msg.op === 'published') for (const s of msg.seqs) settle(s);
    else settle(msg.seq, msg.deleted);
  });
  const call = (message) =>
    new Promise((resolve, reject) => {
      const s = seq++;
      pending.set(s, { resolve, reject });
      worker.postMessage({ ...message, seq: s });
    });
  await call({ op: 'trim', work: [] }); // the worker has created the schema once this answers
  const reader = new Database(path, { readonly: true });
  const range = reader.prepare('SELECT id, payload FROM events WHERE topic = ? AND id > ? ORDER BY id LIMIT ?');
  return {
    path,
    publish: (topic, id, payload, idemKey) => call({ op: 'publish', topic, id, payload, idemKey }),
    async replay(topic, afterId, limit) {
      return range.all(topic, afterId, limit);
    },
    trimTopics: async (work) => call({ op: 'trim', work }),
    async close() {
      reader.close();
      await call({ op: 'close' });
      await worker.terminate();
    },
  };
}

function openFsFile(mode, dir) {
  const path = join(dir, 'append.log');
  const fd = openSync(path, 'a');
  let queue = [];
  const flush = () => {
    const items = queue;
    queue = [];
    for (const item of items) writeSync(fd, item.record);
    fdatasyncSync(fd);
    for (const item of items) item.resolve();
  };
  const record = (topic, id, payload, idemKey) =>
    Buffer.concat([Buffer.from(`${topic}\t${id}\t${idemKey ?? ''}\t`), payload, Buffer.from('\n')]);
  return {
    path,
    publish(topic, id, payload, idemKey) {
      if (mode === 'fsync') {
        writeSync(fd, record(topic, id, payload, idemKey));
        fdatasyncSync(fd);
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        if (queue.length === 0) setImmediate(flush);
        queue.push({ record: record(topic, id, payload, idemKey), resolve });
      });
    },
    async replay() {
      throw new Error('the append-file baseline has no index');
    },
    async trimTopics() {
      return 0;
    },
    async close() {
      closeSync(fd);
    },
  };
}

function openMemory() {
  const topics = new Map();
  const idem = new Map();
  return {
    path: undefined,
    async publish(topic, id, payload, idemKey) {
      if (idemKey !== undefined) {
        if (idem.has(idemKey)) return;
        idem.set(idemKey, id);
      }
      let list = topics.get(topic);
      if (list === undefined) topics.set(topic, (list = []));
      list.push({ id, payload });
    },
    async replay(topic, afterId, limit) {
      const list = topics.get(topic) ?? [];
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid].id <= afterId) lo = mid + 1;
        else hi = mid;
      }
      return list.slice(lo, lo + limit);
    },
    async trimTopics(work) {
      let deleted = 0;
      for (const { topic, keep, minId } of work) {
        const list = topics.get(topic) ?? [];
        let drop = Math.max(0, list.length - keep);
        while (drop < list.length && list[drop].id < minId) drop++;
        list.splice(0, drop);
        deleted += drop;
      }
      return deleted;
    },
    async close() {},
  };
}
