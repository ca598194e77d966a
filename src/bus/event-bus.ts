import type { Selector } from '../topics/selector.js';
import type { EventIdParts } from './event-id.js';

/** One published event, as every subscriber sees it. Immutable once created. */
export interface BusEvent {
  readonly id: string;
  readonly idParts: EventIdParts;
  readonly topics: readonly string[];
  /** The SSE `event:` field: the publisher's type, or `message`. */
  readonly type: string;
  /** The published value as JSON text (one line: JSON.stringify never emits a raw line break). */
  readonly data: string;
  readonly publishedAt: number;
  /**
   * The SSE frames, one per topic (same order as `topics`), each serialised once and written
   * as-is to every subscriber it is for; each names its topic in the data (`bus-event.ts`).
   */
  readonly frames: readonly Buffer[];
}

export interface PublishRequest {
  /** Validated topic names (`topics/topic.ts`), deduplicated. */
  readonly topics: readonly string[];
  readonly type: string;
  /** JSON text of the data. */
  readonly data: string;
  /** The publishing account; scopes the idempotency key. */
  readonly publisher: string;
  readonly idempotencyKey?: string;
}

export interface PublishResult {
  readonly event: BusEvent;
  /** True when the idempotency key had been used already: `event` is the original. */
  readonly duplicate: boolean;
}

/** Receives live events. Called synchronously from the bus's dispatch loop: must not throw or block. */
export interface EventSink {
  /** `frame` is the event's frame for the first of its topics this sink's selectors match. */
  deliver(event: BusEvent, frame: Buffer): void;
  /**
   * Events this sink's selectors may match, up to and including `throughId`, were lost before
   * they could be delivered (a Redis instance fell behind what the shared log still held, and
   * per-topic history no longer holds them either). The sink must say so to its client (`reset`)
   * rather than go on as if nothing was missed. Events at or below `throughId` may still be
   * delivered after it (from another partition of the same batch); the sink drops them, since its
   * client reloads. A bus that never loses events never calls it.
   */
  lost?(throughId: string): void;
}

export interface Subscription {
  unsubscribe(): void;
}

export type ReplayResult =
  | { readonly kind: 'events'; readonly events: readonly BusEvent[] }
  | {
      readonly kind: 'reset';
      readonly reason: 'history_exhausted' | 'unknown_event_id';
      /** The newest event id the bus knows of, to move the client's Last-Event-ID forward. */
      readonly headId: string | undefined;
    };

/**
 * The `since` of `replay` that asks for every event still retained on the selectors' topics
 * rather than the events after an id (Mercure's `lastEventID=earliest`): bounded by history,
 * and never a reset, since nothing retained is skipped.
 */
export const EARLIEST = 'earliest';

/**
 * The event bus: the only thing publishers and subscribers share. Implementations (memory, Redis)
 * pass the same contract tests in `test/contract/`.
 */
export interface EventBus {
  /**
   * Stores the event in history and delivers it to live subscribers.
   * @throws ConflictError (`idempotency_key_reused`) when the key was used with another payload.
   * @throws ServiceUnavailableError when the event could not be stored.
   */
  publish(request: PublishRequest): Promise<PublishResult>;
  /** Delivers every later event on a topic matched by any of `selectors` to `sink`, once per event. */
  subscribe(selectors: readonly Selector[], sink: EventSink): Subscription;
  /**
   * The events after `since` on topics matched by `selectors`, oldest first, without duplicates;
   * or a reset when history cannot prove that nothing in between was lost. `since` is an event id,
   * or `EARLIEST` for every event still retained on those topics.
   */
  replay(selectors: readonly Selector[], since: string): Promise<ReplayResult>;
  /** Events held for replay, over all topics (an event on two topics may count twice); read at metrics scrape time. */
  readonly historySize: number;
  /** Drops events past the history TTL; the server calls it on a timer. */
  sweep(): Promise<void>;
  close(): Promise<void>;
}
