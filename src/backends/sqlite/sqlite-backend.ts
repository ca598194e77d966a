import { ConfigError, type Config } from '../../config.js';
import { Lifecycle } from '../../lifecycle.js';
import type { Backend, BackendDeps } from '../backend.js';
import { noOtherInstance, singleProcessAttemptCounters, SingleProcessStreamSlots } from '../single-process.js';
import { SingleProcessPresence } from '../single-process-presence.js';
import { persistRevocations, restoreRevocations } from './revocation-log.js';
import { SqliteBus } from './sqlite-bus.js';
import { SqliteRefreshTokenStore } from './sqlite-refresh-token-store.js';
import { SqliteTicketStore } from './sqlite-ticket-store.js';
import { openStoreFile } from './store-file.js';
import { WriterConnection } from './writer-connection.js';

/** The settings the SQLite backend reads. */
export type SqliteBackendSettings = Pick<Config, 'history' | 'refreshToken'> & {
  readonly streams: Pick<Config['streams'], 'maxStreamsPerUser'>;
  readonly store: Extract<Config['backend'], { kind: 'sqlite' }> & {
    /** SQLite's `max_page_count`: a hard cap on the file, in 4 KiB pages (tests of a full store). */
    readonly maxPageCount?: number;
  };
};

/** Outstanding browser tickets, as on the memory store (a ticket lives seconds). */
const MAX_TICKETS = 100_000;
/** Longest wait for the writer to finish what it was given and close. */
const CLOSE_TIMEOUT_MS = 5000;

/** The writer of the store file; a file the writer thread cannot open stops the server at start, naming it (exit 78). */
async function openWriter(...args: Parameters<typeof WriterConnection.open>): Promise<WriterConnection> {
  try {
    return await WriterConnection.open(...args);
  } catch (error) {
    throw new ConfigError('DATA_DIR', `${args[0]} cannot be opened for writing (${(error as Error).message})`);
  }
}

/**
 * The persistent default (`STORE=sqlite`): one process, with what a restart must not forget in
 * the store file `$DATA_DIR/notify.db`: per-topic history, refresh-token families, revocations,
 * idempotency keys and browser tickets. Live fan-out, open streams, their per-account slots,
 * presence (who holds a stream now) and the sign-in throttle's counters stay in memory (a restart ends every stream; a throttle window
 * is minutes, and counting in the file would add a write per sign-in attempt for nothing a
 * restart can be used to gain).
 *
 * Writes go to one writer thread, which commits whatever arrived together as one transaction
 * (group commit) and, with `STORE_FSYNC=always`, fsyncs it before anything in it is answered.
 * Reads (replay, what is loaded at start) use a read-only connection in this thread.
 * @throws ConfigError (`DATA_DIR`) naming the file when it is damaged, not a store, from a newer
 *   release or in use by another process: the server stops at start (exit 78), never starts empty.
 */
export async function openSqliteBackend(settings: SqliteBackendSettings, deps: BackendDeps): Promise<Backend> {
  const lifecycle = new Lifecycle({ closerTimeoutMs: CLOSE_TIMEOUT_MS, onCloseError: (_name, error) => deps.onError(error as Error) });
  return lifecycle.build(async () => {
    const { history } = settings;
    const store = await lifecycle.open(
      'store file',
      () => openStoreFile(settings.store.file, deps.clock()),
      (opened) => opened.close(),
    );
    const writer = await lifecycle.open(
      'store writer',
      () =>
        openWriter(
          store.file,
          {
            fsync: settings.store.fsync,
            maxPageCount: settings.store.maxPageCount,
            limits: {
              historySize: history.size,
              maxTopics: history.maxTopics,
              maxBytes: history.maxBytes,
              idempotencyMaxKeys: history.idempotencyMaxKeys,
              maxTickets: MAX_TICKETS,
            },
          },
          deps.onError,
        ),
      (opened) => opened.close(),
    );
    restoreRevocations(store.reader, deps.revocations, deps.clock());
    lifecycle.onClose('revocation log', persistRevocations(writer, deps.revocations, deps.clock));
    const bus = await lifecycle.open(
      'sqlite bus',
      () =>
        new SqliteBus({
          reader: store.reader,
          writer,
          historyTtlMs: history.ttlMs,
          idempotencyTtlMs: history.idempotencyTtlMs,
          clock: deps.clock,
          onDispatch: deps.onDispatch,
        }),
      (opened) => opened.close(),
    );
    const refreshTokens = new SqliteRefreshTokenStore({
      writer,
      idleTtlMs: settings.refreshToken.idleTtlMs,
      absoluteTtlMs: settings.refreshToken.absoluteTtlMs,
      clock: deps.clock,
    });
    return {
      bus,
      refreshTokens,
      tickets: new SqliteTicketStore(writer, deps.clock),
      attemptCounters: singleProcessAttemptCounters,
      streamSlots: new SingleProcessStreamSlots(settings.streams.maxStreamsPerUser),
      renewals: noOtherInstance,
      presence: new SingleProcessPresence({ clock: deps.clock, instance: deps.instance }),
      unavailableReason: () => (writer.failure === undefined ? undefined : `store cannot write (${writer.failure.code})`),
      async sweep() {
        await bus.sweep();
        await refreshTokens.sweep();
        await writer.call('sweepRevocations', { now: deps.clock() });
      },
      close: () => lifecycle.close(),
    };
  });
}
