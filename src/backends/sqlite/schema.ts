/**
 * The store's file format: one SQLite database (`$DATA_DIR/notify.db`, with its `-wal` and `-shm`
 * files beside it, and `notify.db.lock`). `application_id` marks the file as ours and `user_version` is the schema
 * version, so a file that is empty, someone else's or from a newer release is refused at start
 * instead of being used (or silently recreated).
 *
 * Events are stored once (`events`, the payload and the topics it was published to) and listed per
 * topic (`topic_events`), so an event on three topics costs one payload and three small rows.
 * `n` is the store's own insertion counter: it grows with the event id and is never reused, so
 * "after this id" is "after this n" and a replay reading in pages can never mistake a new event
 * for a deleted one. Each topic keeps the newest id trimmed from it (`trimmed_*`), the watermark
 * that tells a replay it would cross a gap (`reset`), as the memory bus does.
 */

/** `PRAGMA application_id`: "ntfy". */
export const APPLICATION_ID = 0x6e746679;
/** `PRAGMA user_version` of the schema below. */
export const SCHEMA_VERSION = 1;

/**
 * Run once on a new, empty file, in one transaction (after `auto_vacuum`, which must precede the
 * first table). Every statement is idempotent in effect because it only ever runs on an empty file.
 */
export const SCHEMA_SQL = `
CREATE TABLE state (
  only INTEGER PRIMARY KEY CHECK (only = 1),
  created_ms INTEGER NOT NULL,
  last_ms INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  last_n INTEGER NOT NULL,
  evicted_ms INTEGER,
  evicted_seq INTEGER
);
CREATE TABLE events (
  n INTEGER PRIMARY KEY,
  ms INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  published_at INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  topics TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  refs INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_by_id ON events (ms, seq);
CREATE TABLE topics (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  count INTEGER NOT NULL,
  last_n INTEGER NOT NULL,
  trimmed_ms INTEGER,
  trimmed_seq INTEGER
);
CREATE INDEX topics_by_use ON topics (last_n);
CREATE TABLE topic_events (
  topic_id INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (topic_id, n)
) WITHOUT ROWID;
CREATE TABLE idempotency (
  key TEXT NOT NULL UNIQUE,
  fingerprint TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  ms INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  published_at INTEGER NOT NULL
);
CREATE TABLE families (
  id TEXT NOT NULL UNIQUE,
  subject TEXT NOT NULL,
  client_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  revoked_at INTEGER,
  current_hash TEXT NOT NULL,
  issued INTEGER NOT NULL
);
CREATE INDEX families_by_subject ON families (subject);
CREATE INDEX families_by_expiry ON families (expires_at);
CREATE INDEX families_by_use ON families (last_used_at);
CREATE TABLE family_tokens (
  hash TEXT PRIMARY KEY,
  family INTEGER NOT NULL,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX family_tokens_by_family ON family_tokens (family, seq);
CREATE TABLE revocations (
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL,
  forget_at INTEGER NOT NULL,
  PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX revocations_by_expiry ON revocations (forget_at);
CREATE TABLE tickets (
  id TEXT PRIMARY KEY,
  grant TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tickets_by_expiry ON tickets (expires_at);
`;
