import { ServiceUnavailableError } from '../../errors.js';
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
import { compareEventIds, EventIdGenerator, type EventIdParts } from '../../bus/event-id.js';
import { IdempotencyCache, publishFingerprint } from '../../bus/idempotency-cache.js';
import { LocalFanout } from '../../bus/local-fanout.js';
import { replayOrigin } from '../../bus/replay-origin.js';

export interface MemoryBusOptions {
  /** Events kept per topic for Last-Event-ID replay. 0 keeps none. */
  readonly historySize: number;
  /** How long an event stays replayable. */
  readonly historyTtlMs: number;
  /** Topics with history; past it the least recently published topic is forgotten. */
  readonly maxTopics: number;
  readonly idempotencyTtlMs: number;
  readonly idempotencyMaxKeys: number;
  readonly clock?: () => number;
  /**
   * Told once per new event after its fan-out: how many local subscribers got it and how long
   * publish-to-write took (metrics). Never called per subscriber.
   */
  readonly onDispatch?: (delivered: number, elapsedMs: number) => void;
}

interface TopicHistory {
  readonly events: BusEvent[];
  /** The newest id dropped from this topic's history: a replay from before it may miss events. */
  trimmedThrough: EventIdParts | undefined;
}

/**
 * The in-memory bus (`STORE=memory`): history and fan-out in this process, gone at a restart. History is bounded three ways,
 * each configurable: events per topic, event age, and topics (least recently published go first).
 * Whatever is dropped is remembered as a watermark, so a replay that would cross a gap answers
 * `reset` instead of silently skipping events.
 */
export class MemoryBus implements EventBus {
  private readonly fanout = new LocalFanout();
  private readonly topics = new Map<string, TopicHistory>();
  private readonly ids: EventIdGenerator;
  /** Each key's event id and time only: a publisher sending a fresh key each time keeps no copies of events alive. */
  private readonly idempotency: IdempotencyCache<{ readonly idParts: EventIdParts; readonly publishedAt: number }>;
  private readonly clock: () => number;
  /** Ids at or before this were issued by an earlier process (or none): this bus cannot replay them. */
  private readonly start: EventIdParts;
  private head: EventIdParts | undefined;
  /** The newest id of any event dropped along with a whole topic. */
  private evictedThrough: EventIdParts | undefined;
  private closed = false;

  constructor(private readonly options: MemoryBusOptions) {
    this.clock = options.clock ?? Date.now;
    this.start = { ms: Math.floor(this.clock()), seq: 0 };
    this.ids = new EventIdGenerator(this.clock, this.start);
    this.idempotency = new IdempotencyCache({
      ttlMs: options.idempotencyTtlMs,
      maxKeys: options.idempotencyMaxKeys,
      clock: this.clock,
    });
  }

  async publish(request: PublishRequest): Promise<PublishResult> {
    if (this.closed) throw new ServiceUnavailableError('shutting_down', 'The server is shutting down.');
    const started = performance.now();
    const fingerprint = request.idempotencyKey === undefined ? undefined : publishFingerprint(request);
    if (fingerprint !== undefined) {
      const original = this.idempotency.lookup(request.publisher, request.idempotencyKey!, fingerprint);
      if (original !== undefined) {
        // The fingerprint matched: the original's topics, type and data are this request's.
        const { topics, type, data } = request;
        return { event: createBusEvent({ ...original, topics, type, data }), duplicate: true };
      }
    }
    const now = this.clock();
    const idParts = this.ids.next();
    const event = createBusEvent({ idParts, topics: request.topics, type: request.type, data: request.data, publishedAt: now });
    this.head = idParts;
    for (const topic of event.topics) this.record(topic, event, now);
    if (fingerprint !== undefined)
      this.idempotency.remember(request.publisher, request.idempotencyKey!, fingerprint, { idParts, publishedAt: now });
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
    if (!earliest && this.evictedThrough !== undefined && compareEventIds(from, this.evictedThrough) < 0) return exhausted;

    const now = this.clock();
    const found: BusEvent[] = [];
    for (const [topic, history] of this.topics) {
      if (!anyMatches(selectors, topic)) continue;
      this.trimByAge(history, now);
      if (!earliest && history.trimmedThrough !== undefined && compareEventIds(from, history.trimmedThrough) < 0) return exhausted;
      // History is in id order: walk back from the newest until reaching `from`.
      let i = history.events.length;
      while (i > 0 && compareEventIds(history.events[i - 1]!.idParts, from) > 0) i--;
      for (let j = i; j < history.events.length; j++) found.push(history.events[j]!);
    }
    found.sort((a, b) => compareEventIds(a.idParts, b.idParts));
    // An event on two matching topics sits in both histories: keep it once.
    const events = found.filter((event, index) => index === 0 || found[index - 1] !== event);
    return { kind: 'events', events };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Events held in history over all topics (an event on two topics counts twice); read at metrics scrape time. */
  get historySize(): number {
    let total = 0;
    for (const history of this.topics.values()) total += history.events.length;
    return total;
  }

  /**
   * Drops expired events from every topic; the server calls it on a timer. A topic left empty
   * keeps its watermark (a few bytes) rather than folding it into the global one, which would
   * make every subscriber reset, not just this topic's.
   */
  async sweep(): Promise<void> {
    const now = this.clock();
    for (const history of this.topics.values()) this.trimByAge(history, now);
  }

  private record(topic: string, event: BusEvent, now: number): void {
    let history = this.topics.get(topic);
    if (history === undefined) {
      history = { events: [], trimmedThrough: undefined };
    } else {
      this.topics.delete(topic); // re-inserted below: Map order is least recently published first
    }
    this.topics.set(topic, history);
    history.events.push(event);
    const excess = history.events.length - this.options.historySize;
    if (excess > 0) history.trimmedThrough = history.events.splice(0, excess).at(-1)!.idParts;
    this.trimByAge(history, now);
    while (this.topics.size > this.options.maxTopics) {
      const [oldest, oldestHistory] = this.topics.entries().next().value!;
      this.evict(oldest, oldestHistory);
    }
  }

  private trimByAge(history: TopicHistory, now: number): void {
    const cutoff = now - this.options.historyTtlMs;
    let drop = 0;
    while (drop < history.events.length && history.events[drop]!.publishedAt <= cutoff) drop++;
    if (drop > 0) history.trimmedThrough = history.events.splice(0, drop).at(-1)!.idParts;
  }

  private evict(topic: string, history: TopicHistory): void {
    this.topics.delete(topic);
    const newest = history.events.at(-1)?.idParts ?? history.trimmedThrough;
    if (newest !== undefined && (this.evictedThrough === undefined || compareEventIds(newest, this.evictedThrough) > 0)) {
      this.evictedThrough = newest;
    }
  }
}
