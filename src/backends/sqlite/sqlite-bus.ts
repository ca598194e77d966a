import { createHash } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';
import { ConflictError, ServiceUnavailableError } from '../../errors.js';
import { anyMatches, type Selector } from '../../topics/selector.js';
import { createBusEvent } from '../../bus/bus-event.js';
import {
  type BusEvent,
  type EventBus,
  type EventSink,
  type PublishRequest,
  type PublishResult,
  type ReplayResult,
  type Subscription,
} from '../../bus/event-bus.js';
import { compareEventIds, type EventIdParts } from '../../bus/event-id.js';
import { publishFingerprint } from '../../bus/idempotency-cache.js';
import { LocalFanout } from '../../bus/local-fanout.js';
import { replayOrigin } from '../../bus/replay-origin.js';
import type { WriterConnection } from './writer-connection.js';

export interface SqliteBusOptions {
  /** The store's read-only connection (this thread). */
  readonly reader: Database;
  /** The store's writer (the writer thread). */
  readonly writer: WriterConnection;
  /** How long an event stays replayable; older ones are swept, and a replay across one not yet swept resets. */
  readonly historyTtlMs: number;
  readonly idempotencyTtlMs: number;
  readonly clock?: () => number;
  /** Told once per new event after its fan-out (metrics); never per subscriber. */
  readonly onDispatch?: (delivered: number, elapsedMs: number) => void;
}

interface StoredRow {
  readonly n: number;
  readonly ms: number;
  readonly seq: number;
  readonly published_at: number;
  readonly type: string;
  readonly data: string;
  readonly topics: string;
}

interface TopicRow {
  readonly id: number;
  readonly name: string;
}

interface Watermark {
  readonly trimmed_ms: number | null;
  readonly trimmed_seq: number | null;
}

/** Past this many matching topics a replay reads the events in order and filters them, rather than each topic's list. */
const BROAD_REPLAY_TOPICS = 64;
/** Events read per step of a replay; the event loop gets a turn between steps. */
const REPLAY_STEP = 500;
/** Events dropped by age per sweep transaction, so a sweep never holds the writer for long. */
const SWEEP_STEP = 500;

/**
 * The bus of the persistent default (`STORE=sqlite`): live fan-out in this process, exactly as
 * the memory bus (`LocalFanout`: one frame per event, no database work per subscriber), and
 * history in the store file, so a restart forgets nothing a reconnecting client needs.
 *
 * A publish is answered once its commit is on disk (`fsync: always`) and only then fanned out, so
 * no subscriber ever sees an event a crash could take back. Ids are issued by the writer (the one
 * writer of the file) from the last id stored: they keep growing across restarts and across a
 * clock that steps back. Replay reads the file in this thread through its own read-only connection
 * (WAL readers never wait for the writer), in steps, and reads the trim watermarks after the
 * events, since trimming only moves them forward: a replay that would cross a gap is a `reset`,
 * never a silent hole.
 */
export class SqliteBus implements EventBus {
  private readonly fanout = new LocalFanout();
  private readonly clock: () => number;
  /** Ids at or before this were issued before the store existed: it cannot replay them. */
  private readonly start: EventIdParts;
  private head: EventIdParts | undefined;
  /** A write failed: the writer may have committed events whose answers never came (see `dispatchStored`). */
  private mayHoldUndispatched = false;
  private closed = false;
  private readonly q: ReturnType<typeof prepare>;

  constructor(private readonly options: SqliteBusOptions) {
    this.clock = options.clock ?? Date.now;
    this.q = prepare(options.reader);
    const state = this.q.state.get() as { created_ms: number; last_ms: number; last_seq: number };
    this.start = { ms: state.created_ms, seq: 0 };
    const last = { ms: state.last_ms, seq: state.last_seq };
    this.head = compareEventIds(last, this.start) > 0 ? last : undefined;
  }

  async publish(request: PublishRequest): Promise<PublishResult> {
    if (this.closed) throw new ServiceUnavailableError('shutting_down', 'The server is shutting down.');
    const started = performance.now();
    const now = this.clock();
    let result;
    try {
      result = await this.options.writer.call('publish', {
        now,
        topics: request.topics,
        type: request.type,
        data: request.data,
        idempotency:
          request.idempotencyKey === undefined
            ? undefined
            : {
                key: createHash('sha256').update(`${request.publisher}\u0000${request.idempotencyKey}`).digest('base64url'),
                fingerprint: publishFingerprint(request),
                expiresAt: now + this.options.idempotencyTtlMs,
              },
      });
    } catch (error) {
      // A writer thread that died after a commit and before its answer leaves events stored that
      // no subscriber was given: the next answer hands them out first.
      this.mayHoldUndispatched = true;
      throw error;
    }
    if (result.kind === 'conflict') {
      throw new ConflictError('idempotency_key_reused', 'This idempotency key was already used for a different event.');
    }
    if (result.kind === 'duplicate') {
      const idParts = { ms: result.ms, seq: result.seq };
      // The retry of a publish whose answer was lost with the writer: its event may never have gone out.
      if (this.mayHoldUndispatched) this.dispatchStored(idParts, true);
      // The fingerprint matched, so the original's topics, type and data are this request's: the
      // store keeps only the key's id, and a publisher sending a fresh key each time fills no disk.
      const { topics, type, data } = request;
      return { event: createBusEvent({ idParts, topics, type, data, publishedAt: result.publishedAt }), duplicate: true };
    }
    const idParts = { ms: result.ms, seq: result.seq };
    if (this.mayHoldUndispatched) this.mayHoldUndispatched = !this.dispatchStored(idParts, false);
    const event = createBusEvent({ idParts, topics: request.topics, type: request.type, data: request.data, publishedAt: now });
    if (this.head === undefined || compareEventIds(idParts, this.head) > 0) this.head = idParts;
    const delivered = this.fanout.dispatch(event);
    this.options.onDispatch?.(delivered, performance.now() - started);
    return { event, duplicate: false };
  }

  subscribe(selectors: readonly Selector[], sink: EventSink): Subscription {
    return this.fanout.subscribe(selectors, sink);
  }

  async replay(selectors: readonly Selector[], since: string): Promise<ReplayResult> {
    const origin = replayOrigin(since, this.head, this.start);
    if (origin.kind === 'reset') return origin.result;
    const { from, earliest, exhausted } = origin;

    const cutoff = this.clock() - this.options.historyTtlMs;
    const topics = this.matchingTopics(selectors);
    const topicIds = JSON.stringify(topics.map((topic) => topic.id));
    // A replay that already crosses a watermark is answered before a long history is read for nothing.
    const trimmedBefore = this.newestTrimmed(topicIds);
    if (!earliest && trimmedBefore !== undefined && compareEventIds(from, trimmedBefore) < 0) return exhausted;

    const broad = topics.length > BROAD_REPLAY_TOPICS;
    // What was stored when the replay began; what follows reaches the stream live.
    const through = (this.q.lastN.get() as { last_n: number }).last_n;
    const after = (this.q.lastAtOrBefore.get(from.ms, from.seq) as { n: number } | undefined)?.n ?? 0;
    // A broad replay walks the events in pages by n; a narrow one lists its topics' events at once
    // (at most BROAD_REPLAY_TOPICS x HISTORY_SIZE numbers: an index range per topic, then one sort).
    const listed = broad || topics.length === 0 ? [] : (this.q.topicEventsAfter.pluck().all(topicIds, after, through) as number[]);
    let cursor = after;
    const events: BusEvent[] = [];
    for (let step = 0; ; step++) {
      if (step > 0) await new Promise((resolve) => setImmediate(resolve));
      const ns = broad
        ? (this.q.eventsAfter.pluck().all(cursor, through, REPLAY_STEP) as number[])
        : listed.slice(step * REPLAY_STEP, (step + 1) * REPLAY_STEP);
      if (ns.length === 0) break;
      cursor = ns.at(-1)!;
      for (const row of this.q.eventsByN.all(JSON.stringify(ns)) as StoredRow[]) {
        const eventTopics = JSON.parse(row.topics) as string[];
        if (broad && !eventTopics.some((topic) => anyMatches(selectors, topic))) continue;
        // Past its TTL, not yet swept: as good as trimmed (and for `earliest`, no longer retained).
        if (row.published_at <= cutoff) {
          if (earliest) continue;
          return exhausted;
        }
        events.push(
          createBusEvent({
            idParts: { ms: row.ms, seq: row.seq },
            topics: eventTopics,
            type: row.type,
            data: row.data,
            publishedAt: row.published_at,
          }),
        );
      }
    }

    // The writer trims in its own thread while this replay reads in steps. Watermarks only move
    // forward, so reading them again after the events tells whether an event not yet read went.
    const trimmedAfter = this.newestTrimmed(topicIds);
    if (trimmedAfter === undefined) return { kind: 'events', events };
    if (!earliest) return compareEventIds(from, trimmedAfter) < 0 ? exhausted : { kind: 'events', events };
    // `earliest` never resets: if trimming ran meanwhile, keep only what follows the newest event
    // it may have removed, so what was read before a removed event is no hole's other side.
    if (trimmedBefore !== undefined && compareEventIds(trimmedAfter, trimmedBefore) === 0) return { kind: 'events', events };
    return { kind: 'events', events: events.filter((event) => compareEventIds(event.idParts, trimmedAfter) > 0) };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Events held in history over all topics (an event on two topics counts twice); read at metrics scrape time. */
  get historySize(): number {
    return this.options.writer.stats.historyRows;
  }

  /** Drops events past the history TTL (and expired idempotency keys and tickets), a step per transaction; the server calls it on a timer. */
  async sweep(): Promise<void> {
    for (;;) {
      const now = this.clock();
      const { more } = await this.options.writer.call('sweepHistory', { now, cutoff: now - this.options.historyTtlMs, limit: SWEEP_STEP });
      if (!more) return;
    }
  }

  /** The newest id trimmed from any of these topics, or of any topic evicted whole. */
  private newestTrimmed(topicIds: string): EventIdParts | undefined {
    let newest: EventIdParts | undefined;
    const consider = (ms: number | null, seq: number | null) => {
      if (ms === null || seq === null) return;
      if (newest === undefined || compareEventIds({ ms, seq }, newest) > 0) newest = { ms, seq };
    };
    const evicted = this.q.evicted.get() as { evicted_ms: number | null; evicted_seq: number | null };
    consider(evicted.evicted_ms, evicted.evicted_seq);
    for (const mark of this.q.watermarks.all(topicIds) as Watermark[]) consider(mark.trimmed_ms, mark.trimmed_seq);
    return newest;
  }

  /**
   * Fans out, in order, the events stored after the newest one this bus handed out and before
   * `limit` (or up to it, `inclusive`): those a writer thread committed before it died and never
   * answered. Read from the file, which holds every commit.
   * @returns false when the file could not be read (it is tried again with the next answer).
   */
  private dispatchStored(limit: EventIdParts, inclusive: boolean): boolean {
    const after = this.head ?? this.start;
    let rows: StoredRow[];
    try {
      rows = this.q.storedBetween.all(after.ms, after.seq, limit.ms, limit.seq) as StoredRow[];
    } catch {
      return false;
    }
    for (const row of rows) {
      const idParts = { ms: row.ms, seq: row.seq };
      if (!inclusive && compareEventIds(idParts, limit) === 0) continue;
      const event = createBusEvent({
        idParts,
        topics: JSON.parse(row.topics) as string[],
        type: row.type,
        data: row.data,
        publishedAt: row.published_at,
      });
      this.head = idParts;
      this.fanout.dispatch(event);
    }
    return true;
  }

  /** The topics with history that any selector matches: exact names by the index, wildcards by their literal prefix. */
  private matchingTopics(selectors: readonly Selector[]): TopicRow[] {
    const found = new Map<number, TopicRow>();
    for (const selector of selectors) {
      let rows: TopicRow[];
      if (selector.exact) {
        rows = this.q.topicByName.all(selector.source) as TopicRow[];
      } else {
        const literal: string[] = [];
        for (const segment of selector.segments) {
          if (segment === '*' || segment === '**') break;
          literal.push(segment);
        }
        // '0' is the character after '/': the names from `prefix/` up to `prefix0` are those under `prefix/`.
        rows =
          literal.length === 0
            ? (this.q.allTopics.all() as TopicRow[])
            : (this.q.topicsInRange.all(`${literal.join('/')}/`, `${literal.join('/')}0`) as TopicRow[]);
        rows = rows.filter((row) => anyMatches([selector], row.name));
      }
      for (const row of rows) found.set(row.id, row);
    }
    return [...found.values()];
  }
}

function prepare(db: Database) {
  const s = (sql: string): Statement => db.prepare(sql);
  return {
    state: s('SELECT created_ms, last_ms, last_seq FROM state'),
    evicted: s('SELECT evicted_ms, evicted_seq FROM state'),
    topicByName: s('SELECT id, name FROM topics WHERE name = ?'),
    topicsInRange: s('SELECT id, name FROM topics WHERE name >= ? AND name < ?'),
    allTopics: s('SELECT id, name FROM topics'),
    watermarks: s('SELECT trimmed_ms, trimmed_seq FROM topics WHERE id IN (SELECT value FROM json_each(?))'),
    lastAtOrBefore: s('SELECT n FROM events WHERE (ms, seq) <= (?, ?) ORDER BY ms DESC, seq DESC LIMIT 1'),
    lastN: s('SELECT last_n FROM state'),
    eventsAfter: s('SELECT n FROM events WHERE n > ? AND n <= ? ORDER BY n LIMIT ?'),
    topicEventsAfter: s(
      'SELECT DISTINCT n FROM topic_events WHERE topic_id IN (SELECT value FROM json_each(?)) AND n > ? AND n <= ? ORDER BY n',
    ),
    storedBetween: s(
      'SELECT n, ms, seq, published_at, type, data, topics FROM events WHERE (ms, seq) > (?, ?) AND (ms, seq) <= (?, ?) ORDER BY ms, seq',
    ),
    eventsByN: s('SELECT n, ms, seq, published_at, type, data, topics FROM events WHERE n IN (SELECT value FROM json_each(?)) ORDER BY n'),
  };
}
