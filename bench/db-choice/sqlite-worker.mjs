// Worker thread that owns the SQLite write connection for stores.mjs's `sqlite` worker-* modes:
// publishes that arrive in one turn of this thread's event loop share one transaction (group
// commit), so the fsync happens here and never on the server's JavaScript thread. Trims run here
// too. The main thread keeps its own read connection for replay (WAL readers do not block).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const Database = createRequire(join(workerData.modulesDir, 'package.json'))('better-sqlite3');
const db = new Database(workerData.path);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${workerData.synchronous}`);
db.exec(workerData.schema);
const insertEvent = db.prepare('INSERT INTO events (topic, id, payload) VALUES (?, ?, ?)');
const findIdem = db.prepare('SELECT id FROM idem WHERE key = ?').pluck();
const insertIdem = db.prepare('INSERT INTO idem (key, id) VALUES (?, ?)');
const nthNewest = db.prepare('SELECT id FROM events WHERE topic = ? ORDER BY id DESC LIMIT 1 OFFSET ?').pluck();
const deleteUpTo = db.prepare('DELETE FROM events WHERE topic = ? AND id <= ?');
const writeAll = db.transaction((items) => {
  for (const { topic, id, payload, idemKey } of items) {
    if (idemKey !== undefined && findIdem.get(idemKey) !== undefined) continue;
    insertEvent.run(topic, id, payload);
    if (idemKey !== undefined) insertIdem.run(idemKey, id);
  }
});
const trim = db.transaction((work) => {
  let deleted = 0;
  for (const { topic, keep, minId } of work) {
    const cutoff = Math.max(minId - 1, nthNewest.get(topic, keep) ?? -1);
    if (cutoff >= 0) deleted += deleteUpTo.run(topic, cutoff).changes;
  }
  return deleted;
});
let queue = [];
const flush = () => {
  const items = queue;
  queue = [];
  try {
    writeAll(items);
    parentPort.postMessage({ op: 'published', seqs: items.map((i) => i.seq) });
  } catch (error) {
    parentPort.postMessage({ op: 'published', seqs: items.map((i) => i.seq), error: { code: error.code, message: error.message } });
  }
};
parentPort.on('message', (msg) => {
  if (msg.op === 'publish') {
    if (queue.length === 0) setImmediate(flush);
    queue.push(msg);
  } else if (msg.op === 'trim') {
    try {
      parentPort.postMessage({ op: 'trimmed', seq: msg.seq, deleted: trim(msg.work) });
    } catch (error) {
      parentPort.postMessage({ op: 'trimmed', seq: msg.seq, error: { code: error.code, message: error.message } });
    }
  } else if (msg.op === 'close') {
    if (queue.length) flush();
    db.close();
    parentPort.postMessage({ op: 'closed', seq: msg.seq });
  }
});
