import type { Database, Statement } from 'better-sqlite3';
import { EventIdGenerator, compareEventIds, type EventIdParts } from '../../bus/event-id.js';
import type { OpRequest, OpResult, StoreStats, WriteFailure, WriteOps, WriterOptions } from './write-protocol.js';

interface EventRow {
  readonly n: number;
  readonly ms: number;
  readonly seq: number;
  readonly published_at: number;
  readonly topics: string;
  readonly bytes: number;
}

interface FamilyRow {
  readonly rowid: number;
  readonly id: string;
  readonly subject: string;
  readonly client_id: string;
  readonly expires_at: number;
  readonly last_used_at: number;
  readonly revoked_at: number | null;
  readonly current_hash: string;
  readonly issued: number;
}

/** Free pages past which a sweep gives space back to the file system, a few hundred pages at a time. */
const FREE_PAGES_TO_VACUUM = 1024;
const VACUUM_STEP_PAGES = 256;

/**
 * The one writer of a store file; it runs in the writer thread (`writer-thread.ts`), never in the
 * server's thread, so a commit's fsync and a trim's deletes never stall the event loop.
 *
 * `execute` runs a batch of operations (all that arrived together) in one immediate transaction:
 * one commit, and with `fsync: always` one fsync, for the lot (group commit). Either the whole
 * batch is stored or none of it is: a failure (`SQLITE_FULL`, an I/O error) rolls it back and every
 * operation of the batch is answered with it, so nothing is ever answered as stored that is not.
 *
 * It owns the event ids (as Redis does for the Redis bus): the only writer of the file issues
 * them, from the last id stored, so they keep growing across restarts and a clock that steps back.
 * History is bounded here, inside the same transaction as the publish that crosses a bound: per
 * topic by count, over all topics by topics (least recently published first) and by bytes
 * (oldest first); by age in `sweepHistory` chunks. Whatever is dropped moves a watermark
 * (the topic's `trimmed_*`, or the store's `evicted_*` for a whole topic), which replay reads.
 */
export class StoreWriter {
  private readonly q: ReturnType<typeof prepare>;
  private readonly ids: EventIdGenerator;
  /** The `now` of the publish being stored: the id generator's clock. */
  private now = 0;
  private lastN: number;
  private topicCount = 0;
  private historyRows = 0;
  private historyBytes = 0;
  private idempotencyCount = 0;
  private ticketCount = 0;
  private published: { ms: number; seq: number } | undefined;
  /** Commits since the last checkpoint (`fsync: everysec`). */
  private dirty = false;
  private readonly checkpointTimer: NodeJS.Timeout | undefined;
  private readonly runBatch: (ops: readonly OpRequest[]) => unknown[];

  constructor(
    private readonly db: Database,
    private readonly options: WriterOptions,
  ) {
    this.q = prepare(db);
    const state = this.q.state.get() as { last_ms: number; last_seq: number; last_n: number };
    this.lastN = state.last_n;
    this.ids = new EventIdGenerator(() => this.now, { ms: state.last_ms, seq: state.last_seq });
    this.loadCounters();
    const batch = db.transaction((ops: readonly OpRequest[]) => {
      this.published = undefined;
      const values = ops.map((request) => this.run(request));
      this.saveLastId();
      return values;
    });
    this.runBatch = (ops) => batch.immediate(ops);
    if (options.fsync === 'everysec') {
      // WAL with synchronous=NORMAL syncs at checkpoints: a checkpoint every second bounds what an
      // OS crash or power loss can take to the last second of commits.
      this.checkpointTimer = setInterval(() => this.checkpoint(), 1000);
      this.checkpointTimer.unref();
    }
  }

  /** Runs `ops` in one transaction; on failure every one of them is answered with it. */
  execute(ops: readonly OpRequest[]): { results: OpResult[]; stats: StoreStats } {
    let results: OpResult[];
    try {
      const values = this.runBatch(ops);
      results = ops.map((request, i) => ({ call: request.call, value: values[i] }));
      this.dirty = true;
    } catch (error) {
      const failure = describeFailure(error);
      results = ops.map((request) => ({ call: request.call, failure }));
      // The counters moved with statements that were rolled back: read them again.
      this.loadCounters();
    }
    return { results, stats: this.stats() };
  }

  stats(): StoreStats {
    return { historyRows: this.historyRows, historyBytes: this.historyBytes };
  }

  close(): void {
    if (this.checkpointTimer !== undefined) clearInterval(this.checkpointTimer);
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // A full disk may refuse the checkpoint; the WAL is replayed at the next open.
    }
    this.db.close();
  }

  /** The last id issued, stored with the batch: the next start issues ids after it, whatever the clock says. */
  private saveLastId(): void {
    if (this.published !== undefined) this.q.saveState.run(this.published.ms, this.published.seq, this.lastN);
  }

  private checkpoint(): void {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      this.dirty = true;
    }
  }

  private run(request: OpRequest): unknown {
    const handler = this.handlers[request.op] as (args: unknown) => unknown;
    return handler(request.args);
  }

  private readonly handlers: { [K in keyof WriteOps]: (args: WriteOps[K]['args']) => WriteOps[K]['result'] } = {
    publish: (a) => this.publish(a),
    sweepHistory: (a) => this.sweepHistory(a),
    issueFamily: (a) => {
      const family = this.q.insertFamily.get(a.id, a.subject, a.clientId, a.now + a.absoluteTtlMs, a.now, a.hash) as { rowid: number };
      this.q.insertFamilyToken.run(a.hash, family.rowid, 1);
      const { count } = this.q.countFamilies.get(a.subject) as { count: number };
      if (count > a.maxFamiliesPerSubject) {
        // A user who never signs out adds a family per sign-in: the oldest device signs in again.
        const oldest = this.q.oldestFamily.get(a.subject) as { rowid: number };
        this.forgetFamily(oldest.rowid);
      }
      return null;
    },
    rotateToken: (a) => {
      const family = this.q.familyByHash.get(a.hash) as FamilyRow | undefined;
      if (family === undefined) return { ok: false, reason: 'unknown' };
      if (family.revoked_at !== null) return { ok: false, reason: 'revoked', familyId: family.id };
      if (a.now >= family.expires_at || a.now >= family.last_used_at + a.idleTtlMs) {
        this.q.revokeFamily.run(a.now, family.id);
        return { ok: false, reason: 'expired', familyId: family.id };
      }
      if (family.current_hash !== a.hash) {
        // A rotated token presented again: two parties hold the family (RFC 9700 §4.14.2).
        this.q.revokeFamily.run(a.now, family.id);
        return { ok: false, reason: 'reused', familyId: family.id };
      }
      const issued = family.issued + 1;
      this.q.insertFamilyToken.run(a.next, family.rowid, issued);
      this.q.advanceFamily.run(a.next, a.now, issued, family.rowid);
      this.q.dropRetiredTokens.run(family.rowid, issued - a.keep);
      return { ok: true, familyId: family.id, subject: family.subject, clientId: family.client_id };
    },
    revokeToken: (a) => {
      const family = this.q.familyByHash.get(a.hash) as FamilyRow | undefined;
      if (family === undefined) return null;
      this.q.revokeFamily.run(a.now, family.id);
      return { familyId: family.id, subject: family.subject };
    },
    revokeFamily: (a) => {
      this.q.revokeFamily.run(a.now, a.id);
      return null;
    },
    revokeSubject: (a) => (this.q.revokeSubject.all(a.now, a.subject) as Array<{ id: string }>).map((row) => row.id),
    sweepFamilies: (a) => {
      const expired = this.q.expiredFamilies.all(a.now, a.now - a.idleTtlMs, a.limit) as Array<{ rowid: number }>;
      for (const { rowid } of expired) this.forgetFamily(rowid);
      return { more: expired.length === a.limit };
    },
    recordRevocation: (a) => {
      this.q.recordRevocation.run(a.kind, a.value, a.reason, a.at, a.forgetAt);
      return null;
    },
    sweepRevocations: (a) => {
      this.q.sweepRevocations.run(a.now);
      return null;
    },
    putTicket: (a) => {
      if (this.ticketCount >= this.options.limits.maxTickets) this.ticketCount -= this.q.sweepTickets.run(a.now).changes;
      if (this.ticketCount >= this.options.limits.maxTickets) return { stored: false };
      this.ticketCount += this.q.insertTicket.run(a.id, a.grant, a.expiresAt).changes;
      return { stored: true };
    },
    takeTicket: (a) => {
      const row = this.q.takeTicket.get(a.id) as { grant: string; expires_at: number } | undefined;
      if (row === undefined) return null;
      this.ticketCount--;
      return row.expires_at > a.now ? row.grant : null;
    },
  };

  private publish(a: WriteOps['publish']['args']): WriteOps['publish']['result'] {
    const limits = this.options.limits;
    let replacing = false;
    if (a.idempotency !== undefined) {
      const seen = this.q.idempotencyByKey.get(a.idempotency.key) as
        | {
            fingerprint: string;
            expires_at: number;
            ms: number;
            seq: number;
            published_at: number;
          }
        | undefined;
      if (seen !== undefined && seen.expires_at > a.now) {
        if (seen.fingerprint !== a.idempotency.fingerprint) return { kind: 'conflict' };
        return { kind: 'duplicate', ms: seen.ms, seq: seen.seq, publishedAt: seen.published_at };
      }
      replacing = seen !== undefined;
    }
    this.now = a.now;
    const id = this.ids.next();
    const n = ++this.lastN;
    const topics = JSON.stringify(a.topics);
    const bytes = Buffer.byteLength(a.data) + Buffer.byteLength(a.type) + topics.length;
    this.q.insertEvent.run(n, id.ms, id.seq, a.now, a.type, a.data, topics, bytes, a.topics.length);
    this.historyBytes += bytes;
    for (const name of a.topics) {
      const used = this.q.useTopic.get(n, name) as { id: number; count: number } | undefined;
      let topicId: number;
      let count = 1;
      if (used === undefined) {
        topicId = (this.q.insertTopic.get(name, n) as { id: number }).id;
        this.topicCount++;
      } else {
        topicId = used.id;
        count = used.count;
      }
      this.q.insertTopicEvent.run(topicId, n);
      this.historyRows++;
      if (count > limits.historySize) this.trimTopic(topicId, count - limits.historySize);
    }
    while (this.topicCount > limits.maxTopics) this.evictLeastRecentTopic();
    while (this.historyBytes > limits.maxBytes) {
      const oldest = this.q.oldestEvents.all(1) as EventRow[];
      if (oldest.length === 0) break;
      this.removeEvent(oldest[0]!);
    }
    if (a.idempotency !== undefined && limits.idempotencyMaxKeys > 0) {
      const k = a.idempotency;
      this.q.rememberKey.run(k.key, k.fingerprint, k.expiresAt, id.ms, id.seq, a.now);
      if (!replacing) this.idempotencyCount++;
      while (this.idempotencyCount > limits.idempotencyMaxKeys) {
        this.q.forgetOldestKey.run();
        this.idempotencyCount--;
      }
    }
    this.published = id;
    return { kind: 'stored', ms: id.ms, seq: id.seq };
  }

  /** Drops the `excess` oldest events of one topic, moving its watermark to the newest of them. */
  private trimTopic(topicId: number, excess: number): void {
    const rows = this.q.oldestOfTopic.all(topicId, excess) as Array<{ n: number }>;
    let newest: EventIdParts | undefined;
    for (const { n } of rows) {
      this.q.deleteTopicEvent.run(topicId, n);
      newest = this.release(n);
    }
    this.historyRows -= rows.length;
    if (newest !== undefined) this.q.trimmedTopic.run(rows.length, newest.ms, newest.seq, topicId);
  }

  /** Forgets the least recently published topic and its events; replays from before them reset. */
  private evictLeastRecentTopic(): void {
    const topic = this.q.leastRecentTopic.get() as { id: number; count: number; trimmed_ms: number | null; trimmed_seq: number | null };
    let newest: EventIdParts | undefined = topic.trimmed_ms === null ? undefined : { ms: topic.trimmed_ms, seq: topic.trimmed_seq! };
    for (const { n } of this.q.eventsOfTopic.all(topic.id) as Array<{ n: number }>) {
      const id = this.release(n);
      if (newest === undefined || compareEventIds(id, newest) > 0) newest = id;
    }
    this.q.deleteTopicEvents.run(topic.id);
    this.q.deleteTopic.run(topic.id);
    this.historyRows -= topic.count;
    this.topicCount--;
    if (newest !== undefined) this.q.evicted.run(newest.ms, newest.seq, newest.ms, newest.ms, newest.seq);
  }

  /** Removes an event from every topic that still lists it (bytes or age), moving their watermarks. */
  private removeEvent(row: EventRow): void {
    for (const name of JSON.parse(row.topics) as string[]) {
      const topic = this.q.topicByName.get(name) as { id: number } | undefined;
      if (topic === undefined) continue;
      if (this.q.deleteTopicEvent.run(topic.id, row.n).changes === 0) continue;
      this.historyRows--;
      this.q.trimmedTopic.run(1, row.ms, row.seq, topic.id);
    }
    this.q.deleteEvent.run(row.n);
    this.historyBytes -= row.bytes;
  }

  /** One topic no longer lists event `n`: drops the event when no topic does. Returns its id. */
  private release(n: number): EventIdParts {
    const event = this.q.releaseEvent.get(n) as { refs: number; bytes: number; ms: number; seq: number };
    if (event.refs <= 0) {
      this.q.deleteEvent.run(n);
      this.historyBytes -= event.bytes;
    }
    return { ms: event.ms, seq: event.seq };
  }

  private sweepHistory(a: WriteOps['sweepHistory']['args']): WriteOps['sweepHistory']['result'] {
    const rows = this.q.oldestEvents.all(a.limit) as EventRow[];
    let expired = 0;
    for (const row of rows) {
      // In publish order, as the memory bus: the first event still young ends the sweep.
      if (row.published_at > a.cutoff) break;
      this.removeEvent(row);
      expired++;
    }
    const keys = this.q.oldestKeys.all(a.limit) as Array<{ rowid: number; expires_at: number }>;
    let forgotten = 0;
    for (const key of keys) {
      if (key.expires_at > a.now) break;
      this.q.forgetKey.run(key.rowid);
      forgotten++;
    }
    this.idempotencyCount -= forgotten;
    this.ticketCount -= this.q.sweepTickets.run(a.now).changes;
    const more = expired === a.limit || forgotten === a.limit;
    if (!more) {
      // After a burst (a flood of topics, a raised bound lowered again) the file gives the space back.
      const free = this.db.pragma('freelist_count', { simple: true }) as number;
      if (free > FREE_PAGES_TO_VACUUM) this.db.pragma(`incremental_vacuum(${VACUUM_STEP_PAGES})`);
    }
    return { more };
  }

  private forgetFamily(rowid: number): void {
    this.q.deleteFamilyTokens.run(rowid);
    this.q.deleteFamily.run(rowid);
  }

  private loadCounters(): void {
    const counts = this.q.counts.get() as { topics: number; rows: number; bytes: number; keys: number; tickets: number };
    this.topicCount = counts.topics;
    this.historyRows = counts.rows;
    this.historyBytes = counts.bytes;
    this.idempotencyCount = counts.keys;
    this.ticketCount = counts.tickets;
  }
}

function describeFailure(error: unknown): WriteFailure {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return { code: typeof code === 'string' ? code : 'WRITER_ERROR', message: typeof message === 'string' ? message : String(error) };
}

function prepare(db: Database) {
  const s = (sql: string): Statement => db.prepare(sql);
  return {
    state: s('SELECT last_ms, last_seq, last_n FROM state'),
    saveState: s('UPDATE state SET last_ms = ?, last_seq = ?, last_n = ?'),
    evicted: s(
      `UPDATE state SET evicted_ms = ?, evicted_seq = ?
       WHERE evicted_ms IS NULL OR evicted_ms < ? OR (evicted_ms = ? AND evicted_seq < ?)`,
    ),
    counts: s(`SELECT (SELECT count(*) FROM topics) AS topics, (SELECT coalesce(sum(count), 0) FROM topics) AS rows,
                      (SELECT coalesce(sum(bytes), 0) FROM events) AS bytes, (SELECT count(*) FROM idempotency) AS keys,
                      (SELECT count(*) FROM tickets) AS tickets`),
    insertEvent: s('INSERT INTO events (n, ms, seq, published_at, type, data, topics, bytes, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    releaseEvent: s('UPDATE events SET refs = refs - 1 WHERE n = ? RETURNING refs, bytes, ms, seq'),
    deleteEvent: s('DELETE FROM events WHERE n = ?'),
    oldestEvents: s('SELECT n, ms, seq, published_at, topics, bytes FROM events ORDER BY n LIMIT ?'),
    topicByName: s('SELECT id FROM topics WHERE name = ?'),
    useTopic: s('UPDATE topics SET count = count + 1, last_n = ? WHERE name = ? RETURNING id, count'),
    insertTopic: s('INSERT INTO topics (name, count, last_n) VALUES (?, 1, ?) RETURNING id'),
    trimmedTopic: s('UPDATE topics SET count = count - ?, trimmed_ms = ?, trimmed_seq = ? WHERE id = ?'),
    leastRecentTopic: s('SELECT id, count, trimmed_ms, trimmed_seq FROM topics ORDER BY last_n LIMIT 1'),
    deleteTopic: s('DELETE FROM topics WHERE id = ?'),
    insertTopicEvent: s('INSERT INTO topic_events (topic_id, n) VALUES (?, ?)'),
    deleteTopicEvent: s('DELETE FROM topic_events WHERE topic_id = ? AND n = ?'),
    deleteTopicEvents: s('DELETE FROM topic_events WHERE topic_id = ?'),
    oldestOfTopic: s('SELECT n FROM topic_events WHERE topic_id = ? ORDER BY n LIMIT ?'),
    eventsOfTopic: s('SELECT n FROM topic_events WHERE topic_id = ?'),
    idempotencyByKey: s('SELECT fingerprint, expires_at, ms, seq, published_at FROM idempotency WHERE key = ?'),
    rememberKey: s('INSERT OR REPLACE INTO idempotency (key, fingerprint, expires_at, ms, seq, published_at) VALUES (?, ?, ?, ?, ?, ?)'),
    forgetOldestKey: s('DELETE FROM idempotency WHERE rowid = (SELECT min(rowid) FROM idempotency)'),
    oldestKeys: s('SELECT rowid, expires_at FROM idempotency ORDER BY rowid LIMIT ?'),
    forgetKey: s('DELETE FROM idempotency WHERE rowid = ?'),
    insertFamily: s(
      `INSERT INTO families (id, subject, client_id, expires_at, last_used_at, revoked_at, current_hash, issued)
       VALUES (?, ?, ?, ?, ?, NULL, ?, 1) RETURNING rowid`,
    ),
    insertFamilyToken: s('INSERT INTO family_tokens (hash, family, seq) VALUES (?, ?, ?)'),
    countFamilies: s('SELECT count(*) AS count FROM families WHERE subject = ?'),
    oldestFamily: s('SELECT rowid FROM families WHERE subject = ? ORDER BY rowid LIMIT 1'),
    familyByHash: s(
      `SELECT f.rowid, f.id, f.subject, f.client_id, f.expires_at, f.last_used_at, f.revoked_at, f.current_hash, f.issued
       FROM family_tokens t JOIN families f ON f.rowid = t.family WHERE t.hash = ?`,
    ),
    advanceFamily: s('UPDATE families SET current_hash = ?, last_used_at = ?, issued = ? WHERE rowid = ?'),
    dropRetiredTokens: s('DELETE FROM family_tokens WHERE family = ? AND seq <= ?'),
    revokeFamily: s('UPDATE families SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?'),
    revokeSubject: s('UPDATE families SET revoked_at = coalesce(revoked_at, ?) WHERE subject = ? RETURNING id'),
    expiredFamilies: s('SELECT rowid FROM families WHERE expires_at <= ? OR last_used_at <= ? LIMIT ?'),
    deleteFamilyTokens: s('DELETE FROM family_tokens WHERE family = ?'),
    deleteFamily: s('DELETE FROM families WHERE rowid = ?'),
    recordRevocation: s(
      `INSERT INTO revocations (kind, value, reason, at, forget_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason, at = max(at, excluded.at), forget_at = max(forget_at, excluded.forget_at)`,
    ),
    sweepRevocations: s('DELETE FROM revocations WHERE forget_at <= ?'),
    insertTicket: s('INSERT OR IGNORE INTO tickets (id, grant, expires_at) VALUES (?, ?, ?)'),
    takeTicket: s('DELETE FROM tickets WHERE id = ? RETURNING grant, expires_at'),
    sweepTickets: s('DELETE FROM tickets WHERE expires_at <= ?'),
  };
}
