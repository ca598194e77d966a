import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ConflictError, ServiceUnavailableError } from '../../errors.js';
import { connectRedis } from './connect.js';
import { orUnavailable } from './redis-unavailable-error.js';
import { StreamTailer, type StreamEntry } from './stream-tailer.js';
import { anyMatches, type Selector } from '../../topics/selector.js';
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
import { compareEventIds, parseEventId, type EventIdParts } from '../../bus/event-id.js';
import { publishFingerprint } from '../../bus/idempotency-cache.js';
import { LocalFanout } from '../../bus/local-fanout.js';

export interface RedisBusOptions {
  readonly url: string;
  /** Prefix of every key this bus uses; lets several deployments (or tests) share one Redis. */
  readonly keyPrefix: string;
  /**
   * Events kept in the one global stream, over all topics (exact `MAXLEN` trimming on every
   * publish). Must stay well above what the instances read per second, or a tailer that falls
   * that far behind would find live events already trimmed.
   */
  readonly maxLen: number;
  /** Events older than this are trimmed by `sweep` (`XTRIM MINID ~`). */
  readonly historyTtlMs: number;
  readonly idempotencyTtlMs: number;
  readonly clock?: () => number;
  readonly onError?: (error: Error) => void;
  /** Told after each event's local fan-out: subscribers reached and time taken (metrics). */
  readonly onDispatch?: (delivered: number, elapsedMs: number) => void;
}

/** How long `publish` waits to see its own event come back through this instance's tailer. */
const OWN_EVENT_WAIT_MS = 1000;
/** Entries per XRANGE page during replay. */
const REPLAY_PAGE = 1000;

/**
 * Stores the event and, when it carries an idempotency key, the key, in one atomic step: either
 * both exist or neither. Trims the stream to `maxlen` exactly and records the newest trimmed id
 * (Redis's own `max-deleted-entry-id` only follows XDEL, not trimming), so replay can tell
 * whether events after a given id were lost. The stream's first event also sets it: an id from
 * before it belongs to an earlier stream (Redis lost its data), whose events are gone. Answers `{0, remembered}` for a key seen before,
 * `{1, id}` for a new event.
 *   KEYS[1] stream, KEYS[2] trimmed-through id, KEYS[3] idempotency key (optional)
 *   ARGV: maxlen, topics, type, data, fingerprint, key ttl (ms)
 */
const PUBLISH_SCRIPT = `
if #KEYS == 3 then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen} end
end
local id = redis.call('XADD', KEYS[1], '*', 't', ARGV[2], 'y', ARGV[3], 'd', ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], id) end
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  local gone = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', ARGV[1])
  redis.call('SET', KEYS[2], gone[#gone][1])
end
if #KEYS == 3 then
  redis.call('SET', KEYS[3], ARGV[5] .. '\\n' .. id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4], 'PX', ARGV[6])
end
return {1, id}
`;

/**
 * Trims events older than a cutoff id and records the newest one trimmed.
 *   KEYS[1] stream, KEYS[2] trimmed-through id; ARGV[1] cutoff id
 */
const SWEEP_SCRIPT = `
local old = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1], '-', 'COUNT', 1)
if old[1] then
  redis.call('XTRIM', KEYS[1], 'MINID', '=', ARGV[1])
  redis.call('SET', KEYS[2], old[1][1])
end
return 0
`;

interface StreamState {
  /** The newest id Redis ever issued on the stream (survives trimming). */
  readonly lastGenerated: EventIdParts;
  /** The newest id trimmed away: a replay from before it may have lost events. */
  readonly trimmedThrough: EventIdParts;
}

/**
 * The event bus on Redis Streams, for running several instances (issue 4). One global stream
 * holds every event; its entry ids (`<ms>-<seq>`, issued by Redis) are the event ids, so ids are
 * cluster-wide and ordered. Each instance tails the stream with a blocking XREAD on a dedicated
 * connection and dispatches what it reads into its `LocalFanout`, the same fan-out the memory bus
 * uses; an instance's own publishes come back the same way, so every subscriber on every
 * instance sees one order. Replay is an XRANGE after the id, filtered by the selectors; Redis 7's
 * `max-deleted-entry-id` tells whether trimming removed anything after that id. See
 * docs/architecture.md.
 */
export class RedisBus implements EventBus {
  private readonly fanout = new LocalFanout();
  private readonly streamKey: string;
  private readonly trimmedKey: string;
  /** Publishes waiting to see their event dispatched here, so a publish never overtakes its own delivery. */
  private readonly waiters = new Set<{ id: EventIdParts; resolve: () => void }>();
  private closed = false;
  /** Events in the stream, for the history gauge: XLEN at start and on each sweep, counted up in between. */
  private length = 0;

  private constructor(
    private readonly options: RedisBusOptions,
    private readonly commands: Redis,
    private readonly tailer: StreamTailer,
  ) {
    this.streamKey = `${options.keyPrefix}events`;
    this.trimmedKey = `${options.keyPrefix}events:trimmed-through`;
  }

  /**
   * Connects (two connections: commands and the blocking tail) and starts following the stream
   * from its current end.
   * @throws Error naming the URL when Redis cannot be reached.
   */
  static async connect(options: RedisBusOptions): Promise<RedisBus> {
    const onError = options.onError ?? (() => undefined);
    const commands = await connectRedis(options.url, 'commands', onError);
    let blocking: Redis;
    try {
      blocking = await connectRedis(options.url, 'blocking', onError);
    } catch (error) {
      commands.disconnect();
      throw error;
    }
    commands.defineCommand('notifyPublish', { lua: PUBLISH_SCRIPT });
    commands.defineCommand('notifySweep', { numberOfKeys: 2, lua: SWEEP_SCRIPT });
    const state = await readStreamState(commands, `${options.keyPrefix}events`, `${options.keyPrefix}events:trimmed-through`);
    const start = state === undefined ? '0-0' : `${state.lastGenerated.ms}-${state.lastGenerated.seq}`;
    let bus: RedisBus | undefined = undefined;
    const tailer = new StreamTailer(blocking, `${options.keyPrefix}events`, start, (entries) => bus!.dispatch(entries), onError);
    bus = new RedisBus(options, commands, tailer);
    bus.length = state === undefined ? 0 : await commands.xlen(`${options.keyPrefix}events`);
    tailer.start();
    return bus;
  }

  /** `undefined` while the command connection is usable, else why not (for `/readyz`). */
  get unavailableReason(): string | undefined {
    return this.commands.status === 'ready' ? undefined : `redis ${this.commands.status}`;
  }

  /** Events held for replay (approximate between sweeps). */
  get historySize(): number {
    return this.length;
  }

  /** Subscribers on this instance (for tests and metrics). */
  get subscriptionCount(): number {
    return this.fanout.subscriptionCount;
  }

  async publish(request: PublishRequest): Promise<PublishResult> {
    if (this.closed) throw new ServiceUnavailableError('shutting_down', 'The server is shutting down.');
    const topics = request.topics.join(' ');
    const keys = [this.streamKey, this.trimmedKey];
    const fingerprint = request.idempotencyKey === undefined ? '' : publishFingerprint(request);
    if (request.idempotencyKey !== undefined) keys.push(this.idempotencyKey(request.publisher, request.idempotencyKey));
    const [fresh, value] = await orUnavailable(() =>
      (this.commands as Redis & { notifyPublish(...args: unknown[]): Promise<[number, string]> }).notifyPublish(
        keys.length,
        ...keys,
        this.options.maxLen,
        topics,
        request.type,
        request.data,
        fingerprint,
        this.options.idempotencyTtlMs,
      ),
    );
    if (fresh === 0) {
      const [seenFingerprint, id, seenTopics, type, data] = value.split('\n') as [string, string, string, string, string];
      if (seenFingerprint !== fingerprint) {
        throw new ConflictError('idempotency_key_reused', 'This idempotency key was already used for a different event.');
      }
      return { event: toEvent(id, seenTopics, type, data), duplicate: true };
    }
    const event = toEvent(value, topics, request.type, request.data);
    await this.dispatched(event.idParts);
    return { event, duplicate: false };
  }

  subscribe(selectors: readonly Selector[], sink: EventSink): Subscription {
    return this.fanout.subscribe(selectors, sink);
  }

  async replay(selectors: readonly Selector[], since: string): Promise<ReplayResult> {
    // `earliest`: everything the stream still holds (Redis never issues 0-0, so `(0-0` is all of it).
    const earliest = since === EARLIEST;
    const from = earliest ? { ms: 0, seq: 0 } : parseEventId(since);
    const found: BusEvent[] = [];
    let cursor = earliest ? '0-0' : since;
    let state: StreamState | undefined;
    let first: StreamState | undefined;
    for (;;) {
      // The stream's state is read after each page, so it covers at least what the page saw.
      const page =
        from === undefined ? [] : await orUnavailable(() => this.commands.xrange(this.streamKey, `(${cursor}`, '+', 'COUNT', REPLAY_PAGE));
      state = await orUnavailable(() => readStreamState(this.commands, this.streamKey, this.trimmedKey));
      first ??= state;
      for (const [id, fields] of page as StreamEntry[]) {
        const event = fromEntry(id, fields);
        if (event.topics.some((topic) => anyMatches(selectors, topic))) found.push(event);
      }
      if (page.length < REPLAY_PAGE) break;
      cursor = page.at(-1)![0];
    }
    const headId = first === undefined ? undefined : `${first.lastGenerated.ms}-${first.lastGenerated.seq}`;
    if (earliest) return { kind: 'events', events: found };
    if (from === undefined || first === undefined || compareEventIds(from, first.lastGenerated) > 0) {
      return { kind: 'reset', reason: 'unknown_event_id', headId };
    }
    // Trimming only moves forward, so checking after reading is enough: if nothing after `from`
    // had been trimmed by now, nothing had been when the pages were read.
    if (state !== undefined && compareEventIds(from, state.trimmedThrough) < 0) {
      return { kind: 'reset', reason: 'history_exhausted', headId };
    }
    return { kind: 'events', events: found };
  }

  /** Trims events older than the history TTL; the server calls it on a timer. */
  async sweep(): Promise<void> {
    const cutoff = Math.max(0, Math.floor((this.options.clock ?? Date.now)() - this.options.historyTtlMs));
    await (this.commands as Redis & { notifySweep(...args: unknown[]): Promise<number> })
      .notifySweep(this.streamKey, this.trimmedKey, `${cutoff}-0`)
      .then(async () => {
        this.length = await this.commands.xlen(this.streamKey);
      })
      .catch((error: Error) => this.options.onError?.(error));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
    await this.tailer.stop();
    this.commands.disconnect();
  }

  private dispatch(entries: StreamEntry[]): void {
    for (const [id, fields] of entries) {
      const started = performance.now();
      const delivered = this.fanout.dispatch(fromEntry(id, fields));
      this.options.onDispatch?.(delivered, performance.now() - started);
    }
    this.length = Math.min(this.options.maxLen, this.length + entries.length);
    if (this.waiters.size === 0) return;
    const position = parseEventId(this.tailer.position)!;
    for (const waiter of this.waiters) {
      if (compareEventIds(waiter.id, position) <= 0) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /**
   * Waits (briefly) until this instance's tailer has dispatched `id`, so that when a publish
   * answers, every subscriber of this instance has been handed the event: a subscription made
   * after the answer never receives it live. If the tail lags (Redis just reconnected), the
   * event is stored all the same and will be delivered; the answer does not wait longer.
   */
  private dispatched(id: EventIdParts): Promise<void> {
    if (compareEventIds(id, parseEventId(this.tailer.position)!) <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        id,
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

  private idempotencyKey(publisher: string, key: string): string {
    return `${this.options.keyPrefix}idem:${createHash('sha256').update(`${publisher}\u0000${key}`).digest('base64url')}`;
  }
}

/** The stream's newest issued id and newest trimmed id; `undefined` when the stream does not exist yet. */
async function readStreamState(client: Redis, streamKey: string, trimmedKey: string): Promise<StreamState | undefined> {
  const [info, trimmed] = (await client.multi().xinfo('STREAM', streamKey).get(trimmedKey).exec()) ?? [];
  if (info?.[0] != null) {
    if (/no such key/i.test(info[0].message)) return undefined;
    throw info[0];
  }
  if (trimmed?.[0] != null) throw trimmed[0];
  const reply = info![1] as unknown[];
  let lastGenerated = '0-0';
  for (let i = 0; i + 1 < reply.length; i += 2) if (reply[i] === 'last-generated-id') lastGenerated = String(reply[i + 1]);
  const zero = { ms: 0, seq: 0 };
  return {
    lastGenerated: parseEventId(lastGenerated) ?? zero,
    trimmedThrough: parseEventId(typeof trimmed?.[1] === 'string' ? trimmed[1] : '0-0') ?? zero,
  };
}

function fromEntry(id: string, fields: string[]): BusEvent {
  let topics = '';
  let type = 'message';
  let data = 'null';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]!;
    if (fields[i] === 't') topics = value;
    else if (fields[i] === 'y') type = value;
    else if (fields[i] === 'd') data = value;
  }
  return toEvent(id, topics, type, data);
}

/** Topics are stored space-separated: the topic grammar has no spaces. */
function toEvent(id: string, topics: string, type: string, data: string): BusEvent {
  const idParts = parseEventId(id)!;
  return createBusEvent({ idParts, topics: topics.split(' '), type, data, publishedAt: idParts.ms });
}
