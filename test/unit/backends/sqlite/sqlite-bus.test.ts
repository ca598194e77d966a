import { expect } from 'chai';
import path from 'node:path';
import { openSqliteBackend } from '../../../../src/backends/sqlite/sqlite-backend.js';
import { SqliteBus } from '../../../../src/backends/sqlite/sqlite-bus.js';
import { StorageUnavailableError } from '../../../../src/backends/sqlite/storage-unavailable-error.js';
import { openStoreFile, type StoreFile } from '../../../../src/backends/sqlite/store-file.js';
import { WriterConnection } from '../../../../src/backends/sqlite/writer-connection.js';
import type { Backend } from '../../../../src/backends/backend.js';
import type { BusEvent } from '../../../../src/bus/event-bus.js';
import { EARLIEST } from '../../../../src/bus/event-bus.js';
import { parseSelector } from '../../../../src/topics/selector.js';
import { backendDeps } from '../../../helpers/backend-deps.js';
import { publishRequest as request, replayedIds as idsOf } from '../../../helpers/bus-requests.js';
import { rejection } from '../../../helpers/errors.js';
import { sqliteSettings, storeDir } from '../../../helpers/sqlite.js';

describe('SqliteBus: what the writer thread and the reader do at the same time', () => {
  let place: ReturnType<typeof storeDir>;
  beforeEach(() => (place = storeDir('sqlite-bus')));
  afterEach(() => place.remove());

  describe('an earliest replay while publishes trim the topics it reads', () => {
    let backend: Backend;
    afterEach(() => backend.close());

    it('returns no event from before one that trimming removed meanwhile: what it returns of a topic is that topic’s newest, without a hole', async () => {
      // More than 64 topics: the replay walks the events in pages, yielding between them, while
      // the writer thread commits (and trims) in parallel.
      backend = await openSqliteBackend(sqliteSettings(place.dir, { HISTORY_SIZE: '3', HISTORY_MAX_TOPICS: '100000' }), backendDeps());
      const { bus } = backend;
      const first = (await bus.publish(request(['t/b']))).event;
      const filler = [];
      for (let i = 0; i < 6000; i++) filler.push(bus.publish(request([`t/x/${i % 3000}`])));
      await Promise.all(filler);
      const second = (await bus.publish(request(['t/b']))).event;
      const third = (await bus.publish(request(['t/b']))).event;

      const replaying = bus.replay([parseSelector('t/**')], EARLIEST);
      // Two more on t/b trim `first` and `second` while the replay is still paging through the filler.
      await bus.publish(request(['t/b']));
      await bus.publish(request(['t/b']));
      const replayed = await replaying;
      if (replayed.kind !== 'events') throw new Error('earliest never resets');

      const ofB = replayed.events.filter((event) => event.topics[0] === 't/b').map((event) => event.id);
      const retainedAtStart = [first.id, second.id, third.id];
      // A suffix of what t/b held: never `first` without `second`.
      expect(retainedAtStart.slice(retainedAtStart.length - ofB.length)).to.deep.equal(ofB);
      expect(ofB).to.include(third.id);
    });
  });

  describe('an answer lost after its commit (the writer thread died between the two)', () => {
    let store: StoreFile;
    let writer: WriterConnection;
    let bus: SqliteBus;
    /** When set, the next publish is committed and then reported failed, as a dying writer thread does. */
    let loseNextAnswer: boolean;

    beforeEach(async () => {
      const file = path.join(place.dir, 'notify.db');
      store = openStoreFile(file, Date.now());
      writer = await WriterConnection.open(
        file,
        { fsync: 'always', limits: { historySize: 1000, maxTopics: 1000, maxBytes: 2 ** 30, idempotencyMaxKeys: 1000, maxTickets: 1000 } },
        () => undefined,
      );
      loseNextAnswer = false;
      // The only stand-in of this file: the real writer, whose answer is dropped once. A thread
      // cannot be made to die between its commit and its answer on demand.
      const lossy = {
        call: async (...args: Parameters<WriterConnection['call']>) => {
          const result = await writer.call(...args);
          if (loseNextAnswer && args[0] === 'publish') {
            loseNextAnswer = false;
            throw new StorageUnavailableError({ code: 'WRITER_EXITED', message: 'the writer thread exited' });
          }
          return result;
        },
        get stats() {
          return writer.stats;
        },
      } as unknown as WriterConnection;
      bus = new SqliteBus({ reader: store.reader, writer: lossy, historyTtlMs: 3_600_000, idempotencyTtlMs: 3_600_000 });
    });
    afterEach(async () => {
      await bus.close();
      await writer.close();
      store.close();
    });

    it('hands the stored event to live subscribers before the next one, once, in order', async () => {
      const delivered: BusEvent[] = [];
      bus.subscribe([parseSelector('t/1')], { deliver: (event) => delivered.push(event) });
      const a = (await bus.publish(request(['t/1']))).event;
      loseNextAnswer = true;
      expect(await rejection(bus.publish(request(['t/1'])))).to.include({ status: 503 });
      expect(delivered.map((event) => event.id)).to.deep.equal([a.id]);
      const c = (await bus.publish(request(['t/1']))).event;
      const stored = idsOf(await bus.replay([parseSelector('t/1')], EARLIEST));
      expect(stored).to.have.length(3);
      expect(delivered.map((event) => event.id)).to.deep.equal(stored);
      expect(stored.at(-1)).to.equal(c.id);
    });

    it('hands it out when the publisher retries with its idempotency key, and not again after', async () => {
      const delivered: BusEvent[] = [];
      bus.subscribe([parseSelector('t/1')], { deliver: (event) => delivered.push(event) });
      loseNextAnswer = true;
      expect(await rejection(bus.publish(request(['t/1'], { idempotencyKey: 'k' })))).to.include({ status: 503 });
      expect(delivered).to.deep.equal([]);
      const retried = await bus.publish(request(['t/1'], { idempotencyKey: 'k' }));
      expect(retried.duplicate).to.equal(true);
      expect(delivered.map((event) => event.id)).to.deep.equal([retried.event.id]);
      const next = (await bus.publish(request(['t/1']))).event;
      expect(delivered.map((event) => event.id)).to.deep.equal([retried.event.id, next.id]);
    });
  });
});
