import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StoreWriter } from './store-writer.js';
import type { FromWriter, OpRequest, ToWriter, WriterOptions } from './write-protocol.js';

/**
 * The writer thread (a `worker_thread`): it holds the write connection of every store this
 * process opened (one, outside tests) and runs their batches. Operations that arrive while a commit
 * is running wait in the port and are run together as the next batch, so the number of commits
 * (and fsyncs) follows the disk's speed, not the publish rate. Its event loop is the only one that
 * waits for the disk.
 */
interface OpenStore {
  readonly writer: StoreWriter;
  readonly queue: OpRequest[];
  scheduled: boolean;
}

const port = parentPort!;
const stores = new Map<number, OpenStore>();
const send = (message: FromWriter) => port.postMessage(message);

/** The connection's settings; `synchronous` decides whether every commit is fsynced. */
function openConnection(file: string, options: WriterOptions): Database.Database {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.fsync === 'always' ? 'FULL' : 'NORMAL'}`);
    // The WAL is checkpointed into the file every 1,000 pages and cut back to this size afterwards.
    db.pragma(`journal_size_limit = ${16 * 1024 * 1024}`);
    db.pragma('busy_timeout = 5000');
    if (options.maxPageCount !== undefined) db.pragma(`max_page_count = ${options.maxPageCount}`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function flush(id: number, store: OpenStore): void {
  store.scheduled = false;
  const ops = store.queue.splice(0);
  if (ops.length === 0) return;
  const { results, stats } = store.writer.execute(ops);
  send({ type: 'results', store: id, results, stats });
}

port.on('message', (message: ToWriter) => {
  switch (message.type) {
    case 'open': {
      try {
        const writer = new StoreWriter(openConnection(message.file, message.options), message.options);
        stores.set(message.store, { writer, queue: [], scheduled: false });
        send({ type: 'opened', store: message.store, stats: writer.stats() });
      } catch (error) {
        const { code, message: text } = error as { code?: string; message?: string };
        send({ type: 'opened', store: message.store, failure: { code: code ?? 'WRITER_ERROR', message: text ?? String(error) } });
      }
      return;
    }
    case 'ops': {
      const store = stores.get(message.store);
      if (store === undefined) {
        const failure = { code: 'STORE_NOT_OPEN', message: 'the store is not open in the writer thread' };
        send({
          type: 'results',
          store: message.store,
          results: message.ops.map((op) => ({ call: op.call, failure })),
          stats: { historyRows: 0, historyBytes: 0 },
        });
        return;
      }
      store.queue.push(...message.ops);
      if (!store.scheduled) {
        store.scheduled = true;
        // After the poll phase: every batch that arrived meanwhile joins this commit.
        setImmediate(() => flush(message.store, store));
      }
      return;
    }
    case 'close': {
      const store = stores.get(message.store);
      if (store !== undefined) {
        flush(message.store, store);
        stores.delete(message.store);
        store.writer.close();
      }
      send({ type: 'closed', store: message.store });
      return;
    }
  }
});
