import { createHash } from 'node:crypto';
import { ConflictError, ServiceUnavailableError } from '../../errors.js';
import { anyMatches, matches, type Selector } from '../../topics/selector.js';
import { createBusEvent } from '../../bus/bus-event.js';
import {
  EARLIEST,
  type BusEvent,
  type EventBus,
  type EventSink,
  type PublishRequest,
  type PublishResult,
  type ReplayResult,
  type Subscription,
} from '../../bus/event-bus.js';
import { compareEventIds, formatEventId, parseEventId, type EventIdParts } from '../../bus/event-id.js';
import { publishFingerprint } from '../../bus/idempotency-cache.js';
import { LocalFanout } from '../../bus/local-fanout.js';
import { BusKeys } from './bus-keys.js';
import { EVICT, EXPIRE, PUBLISH } from './bus-scripts.js';
import type { RedisTarget } from '../../redis-target.js';
import { connectRedis, type RedisClient } from './connect.js';
import { field, PartitionPuller, type LogGap, type LogRecord } from './partition-puller.js';
import { orUnavailable, RedisUnavailableError } from './redis-unavailable-error.js';
import type { StreamEntry } from './stream-tailer.js';

export interface RedisBusOptions {
  /** `REDIS_URL` (single, `redis+sentinel://` or `redis+cluster://`) or a parsed target. */
  readonly url: RedisTarget | string;
  /** Prefix of every key this bus uses; lets several deployments (or tests) share one Redis. */
  readonly keyPrefix: string;
  /** Events kept per topic (HISTORY_SIZE), as on the memory bus. */
  readonly historySize: number;
  /** Topics with history (HISTORY_MAX_TOPICS); past it the least recently published is forgotten. */
  readonly maxTopics: number;
  /** How long an event stays replayable (HISTORY_TTL). */
  readonly historyTtlMs: number;
  readonly idempotencyTtlMs: number;
  /** Partition logs topics are hashed to (REDIS_PARTITIONS); fixed for the life of a deployment's data. */
  readonly partitions?: number;
  /**
   * Entries kept in each partition log (REDIS_STREAM_MAXLEN): how far an instance may fall behind
   * before it must repair from per-topic history instead of reading the log.
   */
  readonly logMaxLen?: number;
  /** Replicas that must hold an event before its publish is acknowledged (`WAIT`); 0: the primary's answer. */
  readonly waitReplicas?: number;
  readonly clock?: () => number;
  readonly onError?: (error: Error) => void;
  /** Told after each event's local fan-out: subscribers reached and time taken (metrics). */
  readonly onDispatch?: (delivered: number, elapsedMs: number) => void;
}

/** How long `publish` waits to see its own event come back through this instance's puller. */
const OWN_EVENT_WAIT_MS = 1000;
/** Entries per XRANGE page (replay and repair). */
const PAGE = 1000;
/** How long `WAIT` may take before the publish is refused (the event stays stored; a retry with the same key finds it). */
const WAIT_TIMEOUT_MS = 1000;
/** Topics handled per eviction or expiry script. */
const SCRIPT_BATCH = 100;

type Scripted = RedisClient & {
  notifyBusPublish(...args: unknown[]): Promise<[number, string, number?]>;
  notifyBusEvict(...args: unknown[]): Promise<number>;
  notifyBusExpire(...args: unknown[]): Promise<number>;
};

/** A local subscription, as the bus tracks it for interest and for telling it about a gap. */
interface Interest {
  readonly selectors: readonly Selector[];
  readonly sink: EventSink;
  /** The partitions its selectors can touch; `undefined`: all of them (a wildcard). */
  readonly partitions: readonly number[] | undefined;
}

const ZERO: EventIdParts = { ms: 0, seq: 0 };

/**
 * The event bus on Redis, for any number of instances (issue 13; docs/architecture.md):
 *
 * - **History per topic**, with the embedded default's meaning: each topic's own stream holds its
 *   last HISTORY_SIZE events younger than HISTORY_TTL; at most HISTORY_MAX_TOPICS topics keep
 *   history, so Redis memory is bounded. What is trimmed leaves a watermark, so a replay across it
 *   answers `reset`.
 * - **Delivery by partition**: topics hash to a fixed number of partition logs; each instance
 *   follows only the partitions its local streams can match (`PartitionPuller`), and builds an
 *   event (parse, SSE frame) only when one of its topics matches a local stream.
 * - **One order**: ids are issued in one hash slot, so they are totally ordered over all topics and
 *   `Last-Event-ID` resumes exactly on any instance, for any set of topics.
 * - **No silent gap**: an instance that finds entries trimmed from a log before it read them
 *   repairs from per-topic history; where that is gone too, the streams that may have lost events
 *   (and only those) are told (`EventSink.lost`, a `reset` on the wire).
 */
export class RedisBus implements EventBus {
  private readonly fanout = new LocalFanout();
  private readonly keys: BusKeys;
  private readonly clock: () => number;
  private readonly interests = new Set<Interest>();
  /** Subscriptions per partition (wildcards count in `wildcards` instead). */
  private readonly perPartition = new Map<number, number>();
  private wildcards = 0;
  /** Exact topics and wildcard selectors of local streams, with counts: the per-event interest check. */
  private readonly exactTopics = new Map<string, number>();
  private readonly wildcardSelectors = new Map<string, { selector: Selector; count: number }>();
  /** The newest id handed to local streams. */
  private lastDispatched: EventIdParts = ZERO;
  /** The newest id this instance has seen (delivered or published): where a newly followed partition starts. */
  private known: EventIdParts = ZERO;
  private readonly waiters = new Set<{ id: EventIdParts; partitions: number[]; resolve: () => void }>();
  private closed = false;
  private held = 0;
  private readonly puller: PartitionPuller;

  private constructor(
    private readonly options: RedisBusOptions,
    private readonly commands: Scripted,
    blocking: RedisClient,
    keys: BusKeys,
  ) {
    this.keys = keys;
    this.clock = options.clock ?? Date.now;
    this.puller = new PartitionPuller(
      blocking,
      commands,
      keys,
      (records, gaps) => this.handle(records, gaps),
      options.onError ?? (() => {}),
      () => this.resolveWaiters(),
      (to) => {
        const parts = parseEventId(to) ?? ZERO;
        if (compareEventIds(parts, this.lastDispatched) < 0) this.lastDispatched = parts;
      },
    );
  }

  /**
   * Connects (two connections: commands and the blocking read), checks that the deployment's data
   * was laid out with the same number of partitions, and starts following what local streams need.
   * @throws Error naming the URL when Redis cannot be reached, or REDIS_PARTITIONS when it disagrees with the stored layout.
   */
  static async connect(options: RedisBusOptions): Promise<RedisBus> {
    const onError = options.onError ?? (() => undefined);
    const partitions = options.partitions ?? 16;
    const keys = new BusKeys(options.keyPrefix, partitions);
    const commands = (await connectRedis(options.url, 'commands', onError)) as Scripted;
    let blocking: RedisClient;
    try {
      blocking = await connectRedis(options.url, 'blocking', onError);
    } catch (error) {
      commands.disconnect();
      throw error;
    }
    try {
      commands.defineCommand('notifyBusPublish', { lua: PUBLISH });
      commands.defineCommand('notifyBusEvict', { lua: EVICT });
      commands.defineCommand('notifyBusExpire', { lua: EXPIRE });
      await commands.hsetnx(keys.meta, 'partitions', partitions);
      const [stored, last, held] = await commands.hmget(keys.meta, 'partitions', 'last', 'held');
      if (Number(stored) !== partitions) {
        throw new Error(`REDIS_PARTITIONS is ${partitions}, but the events under ${options.keyPrefix} were laid out with ${stored}`);
      }
      const bus = new RedisBus(options, commands, blocking, keys);
      bus.known = parseEventId(last ?? '0-0') ?? ZERO;
      bus.held = Number(held ?? 0);
      bus.puller.start();
      return bus;
    } catch (error) {
      commands.disconnect();
      blocking.disconnect();
      throw error;
    }
  }

  /** `undefined` while the command connection is usable, else why not (for `/readyz`). */
  get unavailableReason(): string | undefined {
    return this.commands.status === 'ready' ? undefined : `redis ${this.commands.status}`;
  }

  /** Events held in per-topic history (an event on two topics counts twice), as of the last publish or sweep seen here. */
  get historySize(): number {
    return this.held;
  }

  /** Subscribers on this instance (for tests and metrics). */
  get subscriptionCount(): number {
    return this.fanout.subscriptionCount;
  }

  /** The partition logs this instance follows now (for tests: interest-based delivery). */
  get followedPartitions(): ReadonlySet<number> {
    return this.puller.followed;
  }

  async publish(request: PublishRequest): Promise<PublishResult> {
    if (this.closed) throw new ServiceUnavailableError('shutting_down', 'The server is shutting down.');
    const topics = request.topics.join(' ');
    const partitions = [...new Set(request.topics.map((topic) => this.keys.partitionOf(topic)))];
    const keys = [this.keys.meta, this.keys.topics, this.keys.trimmed, ...request.topics.map((topic) => this.keys.topic(topic))];
    keys.push(...partitions.map((partition) => this.keys.log(partition)));
    const fingerprint = request.idempotencyKey === undefined ? '' : publishFingerprint(request);
    if (request.idempotencyKey !== undefined) keys.push(this.keys.idempotency(digest(request.publisher, request.idempotencyKey)));
    const args = [
      keys.length,
      ...keys,
      request.topics.length,
      partitions.length,
      this.options.historySize,
      this.options.logMaxLen ?? 10_000,
      this.cutoffId(),
      request.type,
      request.data,
      topics,
      fingerprint,
      this.options.idempotencyTtlMs,
      ...request.topics,
      ...partitions,
    ];
    const [fresh, value, topicCount] = await this.store(args);
    if (fresh === 0) {
      // `fingerprint\nid` (keys written before also carry the event after them: ignored).
      const [seenFingerprint, id] = value.split('\n') as [string, string];
      if (seenFingerprint !== fingerprint) {
        throw new ConflictError('idempotency_key_reused', 'This idempotency key was already used for a different event.');
      }
      // The fingerprint matched: the original's topics, type and data are this request's.
      return { event: toEvent(id, topics, request.type, request.data), duplicate: true };
    }
    const event = toEvent(value, topics, request.type, request.data);
    if (compareEventIds(event.idParts, this.known) > 0) this.known = event.idParts;
    if ((topicCount ?? 0) > this.options.maxTopics) void this.evict().catch((error: Error) => this.options.onError?.(error));
    await this.dispatched(event.idParts, partitions);
    return { event, duplicate: false };
  }

  /**
   * Runs the publish script; with `waitReplicas`, in one pipeline with `WAIT` on the same
   * connection, so the answer is a 201 only once that many replicas hold the event.
   */
  private async store(args: unknown[]): Promise<[number, string, number?]> {
    const replicas = this.options.waitReplicas ?? 0;
    if (replicas === 0) return orUnavailable(() => this.commands.notifyBusPublish(...args));
    const pipeline = this.commands.pipeline() as ReturnType<RedisClient['pipeline']> & {
      notifyBusPublish(...args: unknown[]): unknown;
    };
    pipeline.notifyBusPublish(...args);
    pipeline.call('WAIT', replicas, WAIT_TIMEOUT_MS);
    const results = await orUnavailable(() => pipeline.exec());
    const [stored, waited] = results ?? [];
    if (stored?.[0] != null) throw new RedisUnavailableError(stored[0]);
    if (waited?.[0] != null) throw new RedisUnavailableError(waited[0]);
    const result = stored![1] as [number, string, number?];
    if (result[0] === 1 && Number(waited![1]) < replicas) {
      // Stored on the primary only: not acknowledged. A retry with the same idempotency key gets this event.
      throw new RedisUnavailableError(new Error(`WAIT ${replicas}: only ${String(waited![1])} replicas acknowledged`));
    }
    return result;
  }

  subscribe(selectors: readonly Selector[], sink: EventSink): Subscription {
    const interest: Interest = { selectors, sink, partitions: this.partitionsOf(selectors) };
    this.interests.add(interest);
    this.addInterest(interest, 1);
    const subscription = this.fanout.subscribe(selectors, sink);
    let active = true;
    return {
      unsubscribe: () => {
        if (!active) return;
        active = false;
        subscription.unsubscribe();
        this.interests.delete(interest);
        this.addInterest(interest, -1);
      },
    };
  }

  async replay(selectors: readonly Selector[], since: string): Promise<ReplayResult> {
    // `earliest`: everything still retained on the selectors' topics, whatever was trimmed before it.
    const earliest = since === EARLIEST;
    const from = earliest ? ZERO : parseEventId(since);
    const [meta, candidates] = await orUnavailable(async () => {
      const results = await this.commands
        .multi()
        .hmget(this.keys.meta, 'last', 'start', 'evicted')
        .zrangebyscore(this.keys.topics, from === undefined ? '+inf' : earliest ? '-inf' : BusKeys.score(from.ms), '+inf')
        .exec();
      for (const [error] of results ?? []) if (error != null) throw error;
      return [results![0]![1] as (string | null)[], results![1]![1] as string[]];
    });
    const [last, start, evicted] = meta.map((value) => (value === null ? undefined : parseEventId(value)));
    const headId = last === undefined ? undefined : formatEventId(last);
    if (earliest) {
      if (last === undefined) return { kind: 'events', events: [] };
      const retained = await this.readTopics(
        candidates.filter((topic) => anyMatches(selectors, topic)),
        formatEventId(ZERO),
        headId!,
      );
      return { kind: 'events', events: retained.events };
    }
    if (from === undefined || last === undefined || compareEventIds(from, last) > 0)
      return { kind: 'reset', reason: 'unknown_event_id', headId };
    const exhausted: ReplayResult = { kind: 'reset', reason: 'history_exhausted', headId };
    // Before the first event ever: an id from an earlier history (Redis lost its data).
    if (start !== undefined && compareEventIds(from, start) < 0) return exhausted;
    if (evicted !== undefined && compareEventIds(from, evicted) < 0) return exhausted;
    const topics = candidates.filter((topic) => anyMatches(selectors, topic));
    // Only events up to the head read above: anything newer reaches the subscription live, so
    // nothing can fall between replay and live (the session drops live events at or below the last replayed id).
    const read = await this.readTopics(topics, since, headId!);
    if (read.exhausted) return exhausted;
    return { kind: 'events', events: read.events };
  }

  /**
   * The events of `topics` in `(after, through]`, oldest first, once each (an event on two of
   * them is in both histories); 'exhausted' if a topic's history no longer reaches back to `after`
   * (trimmed by size or age).
   */
  private async readTopics(
    topics: string[],
    after: string,
    through: string,
  ): Promise<{ readonly events: BusEvent[]; readonly exhausted: boolean }> {
    if (topics.length === 0) return { events: [], exhausted: false };
    const afterParts = parseEventId(after)!;
    const cutoff = this.cutoffMs();
    const found = new Map<string, BusEvent>();
    let exhausted = false;
    const pending = topics.map((topic) => ({ topic, cursor: after }));
    while (pending.length > 0) {
      const batch = pending.splice(0, 50);
      const pages = (await orUnavailable(async () => {
        const pipeline = this.commands.pipeline();
        for (const { topic, cursor } of batch) pipeline.xrange(this.keys.topic(topic), `(${cursor}`, through, 'COUNT', PAGE);
        return unwrap(await pipeline.exec());
      })) as StreamEntry[][];
      batch.forEach((item, i) => {
        const page = pages[i]!;
        for (const [id, fields] of page) {
          const event = found.get(id) ?? fromEntry(id, fields);
          // Past the TTL but not swept yet: as good as trimmed.
          if (event.idParts.ms < cutoff) {
            if (compareEventIds(event.idParts, afterParts) > 0) exhausted = true;
            continue;
          }
          found.set(id, event);
        }
        if (page.length === PAGE) pending.push({ topic: item.topic, cursor: page.at(-1)![0] });
      });
    }
    // Trimming only moves forward, so reading the watermarks after the pages is enough: if nothing
    // after `after` had been trimmed by now, nothing had been when the pages were read.
    const trimmed = await orUnavailable(() => this.commands.hmget(this.keys.trimmed, ...topics));
    for (const value of trimmed) {
      if (value !== null && compareEventIds(afterParts, parseEventId(value) ?? ZERO) < 0) exhausted = true;
    }
    return { events: [...found.values()].sort((a, b) => compareEventIds(a.idParts, b.idParts)), exhausted };
  }

  /** Drops whole topics past the history TTL (keeping their watermarks) and trims idle partition logs; the server calls it on a timer. */
  async sweep(): Promise<void> {
    try {
      const cutoffMs = this.cutoffMs();
      const stale = await this.commands.zrangebyscore(this.keys.topics, '-inf', `(${BusKeys.score(cutoffMs)}`);
      for (let i = 0; i < stale.length; i += SCRIPT_BATCH) {
        const names = stale.slice(i, i + SCRIPT_BATCH);
        const keys = [this.keys.meta, this.keys.trimmed, ...names.map((topic) => this.keys.topic(topic))];
        await this.commands.notifyBusExpire(keys.length, ...keys, `${cutoffMs}-0`, ...names);
      }
      const pipeline = this.commands.pipeline();
      for (let partition = 0; partition < this.keys.partitions; partition++) {
        pipeline.xtrim(this.keys.log(partition), 'MINID', '~', `${cutoffMs}-0`);
      }
      unwrap(await pipeline.exec());
      this.held = Number((await this.commands.hget(this.keys.meta, 'held')) ?? 0);
    } catch (error) {
      this.options.onError?.(error as Error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
    await this.puller.stop();
    this.commands.disconnect();
  }

  /** Forgets the least recently published topics past HISTORY_MAX_TOPICS. */
  private async evict(): Promise<void> {
    for (;;) {
      const count = await this.commands.zcard(this.keys.topics);
      const excess = count - this.options.maxTopics;
      if (excess <= 0) return;
      const names = await this.commands.zrange(this.keys.topics, '0', String(Math.min(excess, SCRIPT_BATCH) - 1));
      const keys = [this.keys.meta, this.keys.topics, this.keys.trimmed, ...names.map((topic) => this.keys.topic(topic))];
      await this.commands.notifyBusEvict(keys.length, ...keys, this.options.maxTopics, ...names);
    }
  }

  /** The puller hands over each batch: repair gaps first, then deliver in id order. */
  private async handle(records: LogRecord[], gaps: LogGap[]): Promise<void> {
    const events: BusEvent[] = [];
    for (const gap of gaps) events.push(...(await this.repair(gap)));
    for (const record of records) {
      const topics = field(record.fields, 't') ?? '';
      if (!this.wanted(topics)) continue;
      events.push(
        createBusEvent({
          idParts: record.idParts,
          topics: topics.split(' '),
          type: field(record.fields, 'y') ?? 'message',
          data: field(record.fields, 'd') ?? 'null',
          publishedAt: record.idParts.ms,
        }),
      );
    }
    if (gaps.length > 0) events.sort((a, b) => compareEventIds(a.idParts, b.idParts));
    for (const event of events) {
      // An event on topics of several partitions is read once per partition (in one round or a
      // later one), and may also have been repaired: deliver it once. Batches come in id order,
      // so anything at or below the last dispatched id was dispatched already.
      if (compareEventIds(event.idParts, this.lastDispatched) <= 0) continue;
      this.lastDispatched = event.idParts;
      const started = performance.now();
      const delivered = this.fanout.dispatch(event);
      this.options.onDispatch?.(delivered, performance.now() - started);
    }
    const newest = records.at(-1)?.idParts ?? (gaps.length > 0 ? parseEventId(gaps.at(-1)!.through) : undefined);
    if (newest !== undefined && compareEventIds(newest, this.known) > 0) this.known = newest;
  }

  /**
   * This instance missed `gap` in a partition log (stopped, cut off or too slow). The events it
   * holds for local streams are read back from per-topic history; a stream whose selectors may
   * match a topic whose history no longer reaches back (or an evicted topic) is told it lost events.
   */
  private async repair(gap: LogGap): Promise<BusEvent[]> {
    const after = parseEventId(gap.after)!;
    const [[evicted], candidates] = await Promise.all([
      this.commands.hmget(this.keys.meta, 'evicted'),
      this.commands.zrangebyscore(this.keys.topics, BusKeys.score(after.ms), '+inf'),
    ]);
    const topics = candidates.filter((topic) => this.keys.partitionOf(topic) === gap.partition && this.wanted(topic));
    const lostTopics: string[] = [];
    const events: BusEvent[] = [];
    for (const topic of topics) {
      const read = await this.readTopics([topic], gap.after, gap.through);
      if (read.exhausted) lostTopics.push(topic);
      else events.push(...read.events);
    }
    const allLost = evicted != null && compareEventIds(after, parseEventId(evicted) ?? ZERO) < 0;
    for (const interest of this.interests) {
      const touches = interest.partitions === undefined || interest.partitions.includes(gap.partition);
      if (!touches) continue;
      if (allLost || lostTopics.some((topic) => anyMatches(interest.selectors, topic))) interest.sink.lost?.(gap.through);
    }
    return events;
  }

  /** Whether any topic of an event (space-separated) is matched by a local stream: only then is it built and dispatched. */
  private wanted(topics: string): boolean {
    for (const topic of topics.split(' ')) {
      if (this.exactTopics.has(topic)) return true;
      for (const { selector } of this.wildcardSelectors.values()) if (matches(selector, topic)) return true;
    }
    return false;
  }

  private partitionsOf(selectors: readonly Selector[]): number[] | undefined {
    if (selectors.some((selector) => !selector.exact)) return undefined;
    return [...new Set(selectors.map((selector) => this.keys.partitionOf(selector.source)))];
  }

  private addInterest(interest: Interest, delta: 1 | -1): void {
    for (const selector of interest.selectors) {
      if (selector.exact) bump(this.exactTopics, selector.source, delta);
      else {
        const entry = this.wildcardSelectors.get(selector.source) ?? { selector, count: 0 };
        entry.count += delta;
        if (entry.count > 0) this.wildcardSelectors.set(selector.source, entry);
        else this.wildcardSelectors.delete(selector.source);
      }
    }
    const from = formatEventId(this.known);
    if (interest.partitions === undefined) {
      this.wildcards += delta;
      if (delta > 0) for (let partition = 0; partition < this.keys.partitions; partition++) this.puller.follow(partition, from);
    } else {
      for (const partition of interest.partitions) {
        bump(this.perPartition, partition, delta);
        if (delta > 0) this.puller.follow(partition, from);
      }
    }
    if (delta < 0) {
      for (const partition of this.puller.followed) {
        if (this.wildcards === 0 && !this.perPartition.has(partition)) this.puller.unfollow(partition);
      }
    }
  }

  /**
   * Waits (briefly) until this instance has handed `id` to its local streams, if it follows any
   * of the event's partitions, so that when a publish answers, a subscription made after the answer
   * never receives it live. If the read lags (Redis just reconnected), the event is stored all the
   * same and will be delivered; the answer does not wait longer.
   */
  private dispatched(id: EventIdParts, partitions: number[]): Promise<void> {
    if (this.caughtUp(id, partitions)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        id,
        partitions,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve();
      }, OWN_EVENT_WAIT_MS);
      this.waiters.add(waiter);
    });
  }

  private caughtUp(id: EventIdParts, partitions: number[]): boolean {
    for (const partition of partitions) {
      const position = this.puller.position(partition);
      if (position !== undefined && compareEventIds(parseEventId(position)!, id) < 0) return false;
    }
    return true;
  }

  private resolveWaiters(): void {
    for (const waiter of this.waiters) {
      if (this.caughtUp(waiter.id, waiter.partitions)) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /** Events published before this are past the TTL (the memory bus's rule: an event as old as the TTL is gone). */
  private cutoffMs(): number {
    return Math.max(0, Math.floor(this.clock() - this.options.historyTtlMs) + 1);
  }

  private cutoffId(): string {
    return `${this.cutoffMs()}-0`;
  }
}

function bump<K>(counts: Map<K, number>, key: K, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next > 0) counts.set(key, next);
  else counts.delete(key);
}

function digest(publisher: string, key: string): string {
  return createHash('sha256').update(`${publisher}\u0000${key}`).digest('base64url');
}

/** A pipeline's results, or its first error. */
function unwrap(results: Array<[Error | null, unknown]> | null): unknown[] {
  return (results ?? []).map(([error, value]) => {
    if (error != null) throw error;
    return value;
  });
}

function fromEntry(id: string, fields: string[]): BusEvent {
  return toEvent(id, field(fields, 't') ?? '', field(fields, 'y') ?? 'message', field(fields, 'd') ?? 'null');
}

/** Topics are stored space-separated: the topic grammar has no spaces. */
function toEvent(id: string, topics: string, type: string, data: string): BusEvent {
  const idParts = parseEventId(id)!;
  return createBusEvent({ idParts, topics: topics.split(' '), type, data, publishedAt: idParts.ms });
}
