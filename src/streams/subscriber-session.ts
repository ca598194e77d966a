import type { AccessClaims } from '../auth/token-service.js';
import { EARLIEST, type BusEvent, type EventBus, type EventSink, type ReplayResult, type Subscription } from '../bus/event-bus.js';
import { frameFor } from '../bus/bus-event.js';
import { compareEventIds, formatEventId, parseEventId, type EventIdParts } from '../bus/event-id.js';
import type { SseStream, StreamEndListener, StreamEndReason } from '../sse/sse-stream.js';
import type { Selector } from '../topics/selector.js';
import { closedEvent, connectedEvent, expiringEvent, renewedEvent, resetEvent, type CloseReason } from './control-events.js';
import type { DeadlineTarget, DeadlineWheel } from './deadline-wheel.js';

export type SessionEndReason = CloseReason | StreamEndReason;

export interface SessionSettings {
  readonly retryMs: number;
  readonly heartbeatMs: number;
  /** How long before expiry `token-expiring` is sent. */
  readonly expiryWarningMs: number;
  /**
   * Live events that may wait, in frame bytes, while a resumed stream is still writing its
   * backlog. Past it they are dropped from the buffer and read back from history instead, so a
   * long catch-up never holds an unbounded queue.
   */
  readonly maxPendingBytes: number;
  readonly clock: () => number;
  /** The shared timer for token-expiry warnings and expiry (one per server, not one per stream). */
  readonly deadlines: DeadlineWheel;
  /** Where the stream's slot (`MAX_STREAMS_PER_USER`, taken by the events route) goes back when it ends. */
  readonly slots: { release(subject: string, streamId: string): void };
  /** Told once the head and `connected` are written: where a stream that asked for presence events starts getting them. */
  readonly onOpen?: (session: SubscriberSession) => void;
}

/** Told once when a session ends (the registry, which also counts the reason for metrics). */
export interface SessionEndObserver {
  sessionEnded(session: SubscriberSession, reason: SessionEndReason): void;
}

/** What a session keeps of its token: enough to check revocation and expiry, never the token itself. */
export type SessionToken = Pick<AccessClaims, 'subject' | 'sessionId' | 'issuedAt' | 'expiresAt'>;

/**
 * One subscriber's stream from open to close. It ties together the transport (`SseStream`), the
 * bus subscription and the token's lifetime. Every exit releases the subscription, the deadline
 * and the stream slot and is reported once to the registry (which drops the stream and counts the
 * reason). The exits, all of them:
 *
 * | reason               | what happened                                                          | the client sees          |
 * |----------------------|------------------------------------------------------------------------|--------------------------|
 * | `client_gone`        | the client closed the connection                                       | (it left)                |
 * | `slow_consumer`      | more than `STREAM_BUFFER_BYTES` waited for a reader that does not read | the connection cut       |
 * | `token_expired`      | the token expired without an in-band renewal                           | `closed` event           |
 * | `revoked`            | its refresh family or its subject was revoked                          | `closed` event           |
 * | `insufficient_scope` | a renewal's token no longer covers every topic or the presence read    | `closed` event           |
 * | `replay_unavailable` | history could not be read to resume from `Last-Event-ID`               | `closed` event           |
 * | `shutdown`           | the server is stopping                                                 | `closed` event           |
 *
 * Before a session exists, the events route drops a client that leaves while it is being
 * authenticated or waits for a stream slot (`http/routes/events.ts`): such a client never gets a
 * session, a subscription or a slot.
 *
 * A session is a few small fields (issue 12): four claims of its token (not the token, its grants
 * or its compiled selectors), its selectors, and no closures; the settings are shared by all.
 */
export class SubscriberSession implements EventSink, DeadlineTarget, StreamEndListener, SessionToken {
  subject: string;
  sessionId: string | undefined;
  issuedAt: number;
  expiresAt: number;
  private observer: SessionEndObserver | undefined;
  private subscription: Subscription | undefined;
  /** While replaying history, live events wait here; `undefined` once live (or when there is nothing to replay). */
  private pending: BusEvent[] | undefined;
  /** Frame bytes in `pending`, or -1 once they passed `maxPendingBytes` and were dropped. */
  private pendingBytes = 0;
  /**
   * The newest id this stream has handed the client (by replay or `reset`): a live event at or
   * below it is a duplicate and is dropped. Cleared by the first live event above it, since live
   * events arrive in id order.
   */
  private floor: EventIdParts | undefined;
  /** The id of the last event written (or the resume point): what a live `reset` says the client had. */
  private lastSent: string | undefined;
  /** The deadline slot this session waits in (the expiry warning first, then the expiry). */
  private deadlineSlot: number | undefined;
  private warned = false;
  private ended = false;

  constructor(
    readonly id: string,
    private readonly stream: SseStream,
    token: SessionToken,
    readonly selectors: readonly Selector[],
    private readonly settings: SessionSettings,
    /** The presence topics whose events this stream gets (`?presence=true`); empty for most streams. */
    readonly presenceTopics: readonly string[] = [],
  ) {
    this.subject = token.subject;
    this.sessionId = token.sessionId;
    this.issuedAt = token.issuedAt;
    this.expiresAt = token.expiresAt;
    stream.onEnd(this);
  }

  get renewUrl(): string {
    return `/events/connections/${this.id}/token`;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Tells `observer` once when the session ends. */
  onEnd(observer: SessionEndObserver): void {
    this.observer = observer;
  }

  /** The transport ended (client gone, slow consumer, or our own `end`). */
  streamEnded(reason: StreamEndReason): void {
    this.finish(reason);
  }

  /**
   * Opens the stream: subscribes first (buffering live events), replays history after
   * `lastEventId` at the pace the client reads it, then hands over to live delivery without a gap
   * or a duplicate.
   */
  async start(bus: EventBus, lastEventId: string | undefined, headers: readonly string[]): Promise<void> {
    if (lastEventId !== undefined) this.pending = [];
    this.subscription = bus.subscribe(this.selectors, this);
    // The head and `connected` leave in one write.
    this.stream.open(
      headers,
      connectedEvent(this.settings.retryMs, {
        connectionId: this.id,
        topics: this.selectors.map((selector) => selector.source),
        expiresAt: this.expiresAt,
        renewUrl: this.renewUrl,
        heartbeatMs: this.settings.heartbeatMs,
      }),
    );
    this.armTimers();
    this.settings.onOpen?.(this);
    this.lastSent = lastEventId;
    if (lastEventId === undefined || !(await this.catchUp(bus, lastEventId))) return;
    const waiting = this.pending ?? [];
    this.pending = undefined;
    for (const event of waiting) this.deliver(event, frameFor(event, this.selectors)!);
  }

  /**
   * Writes what the client missed since `since`, waiting for the socket to drain whenever it is
   * full. Live events that arrive meanwhile wait in `pending`; if they outgrow their bound, they
   * are dropped and this reads history again from the last id written.
   * @returns false when the stream ended meanwhile.
   */
  private async catchUp(bus: EventBus, since: string): Promise<boolean> {
    for (;;) {
      let replay: ReplayResult;
      try {
        replay = await bus.replay(this.selectors, since);
      } catch {
        // The client keeps its Last-Event-ID and resumes on its next connect.
        this.close('replay_unavailable');
        return false;
      }
      if (this.ended) return false;
      if (replay.kind === 'reset') {
        this.stream.write(resetEvent(replay.reason, since, replay.headId));
        this.lastSent = replay.headId;
        this.floor = replay.headId === undefined ? undefined : parseEventId(replay.headId);
      } else {
        for (const event of replay.events) {
          this.lastSent = event.id;
          if (!this.stream.write(frameFor(event, this.selectors)!)) return false;
          if (this.stream.congested) await this.stream.drained();
          if (this.ended) return false;
        }
        this.floor = replay.events.at(-1)?.idParts ?? (since === EARLIEST ? undefined : parseEventId(since));
      }
      if (this.pendingBytes >= 0) return true;
      // Live events came faster than the backlog went out: fetch them from history instead, from
      // the last id written (or, when `earliest` wrote nothing yet, from the earliest again).
      if (this.floor !== undefined) since = formatEventId(this.floor);
      else if (since !== EARLIEST) {
        this.close('replay_unavailable');
        return false;
      }
      this.pending = [];
      this.pendingBytes = 0;
    }
  }

  /** The bus calls this for each live event: one shared frame, written straight to the socket. */
  deliver(event: BusEvent, frame: Buffer): void {
    if (this.pending !== undefined) {
      if (this.pendingBytes < 0) return;
      this.pending.push(event);
      this.pendingBytes += frame.length;
      if (this.pendingBytes > this.settings.maxPendingBytes) {
        this.pending = [];
        this.pendingBytes = -1;
      }
      return;
    }
    if (this.floor !== undefined) {
      if (compareEventIds(event.idParts, this.floor) <= 0) return;
      this.floor = undefined;
    }
    this.lastSent = event.id;
    this.stream.write(frame);
  }

  /** Writes a control frame that is not the session's own (presence events, serialised once for every watcher). */
  sendControl(frame: string): void {
    this.stream.write(frame);
  }

  /**
   * The bus lost events this stream may match, up to `throughId` (`EventSink.lost`): the client
   * gets `reset` and the stream goes on after `throughId`; what still arrives at or below it is
   * dropped like a replayed duplicate. During catch-up, history is read again from the last id
   * written instead, which answers `reset` itself if it no longer holds the gap.
   */
  lost(throughId: string): void {
    const through = parseEventId(throughId);
    if (this.ended || through === undefined) return;
    if (this.pending !== undefined) {
      this.pending = [];
      this.pendingBytes = -1;
      return;
    }
    if (this.floor !== undefined && compareEventIds(through, this.floor) <= 0) return;
    this.stream.write(resetEvent('history_exhausted', this.lastSent ?? '', throughId));
    this.floor = through;
  }

  /** Writes a shared heartbeat frame. */
  heartbeat(frame: Buffer): void {
    this.stream.write(frame);
  }

  /**
   * Swaps in a fresh token for the same subject. The caller has checked the subject and that the
   * new grants cover every selector of this stream.
   */
  renew(token: SessionToken): void {
    if (this.ended) return;
    this.sessionId = token.sessionId;
    this.issuedAt = token.issuedAt;
    this.expiresAt = token.expiresAt;
    this.armTimers();
    this.stream.write(renewedEvent(token.expiresAt));
  }

  /** Sends a final `closed` event saying why, then ends the stream. */
  close(reason: CloseReason): void {
    if (this.ended) return;
    this.finish(reason);
    this.stream.end(closedEvent(reason));
  }

  /** The deadline wheel calls this once the warning or the expiry is due. */
  onDeadline(): void {
    this.deadlineSlot = undefined;
    if (!this.ended) this.checkDeadlines();
  }

  private armTimers(): void {
    this.clearTimers();
    this.warned = false;
    this.checkDeadlines();
  }

  /** Closes the stream if the token has expired, else warns if that is due, then waits for the next deadline. */
  private checkDeadlines(): void {
    const expiresAtMs = this.expiresAt * 1000;
    const now = this.settings.clock();
    if (now >= expiresAtMs) {
      this.close('token_expired');
      return;
    }
    const warnAtMs = expiresAtMs - this.settings.expiryWarningMs;
    if (!this.warned && now >= warnAtMs) {
      this.warned = true;
      this.stream.write(expiringEvent(this.expiresAt, this.renewUrl));
    }
    this.deadlineSlot = this.settings.deadlines.schedule(this, this.warned ? expiresAtMs : warnAtMs);
  }

  private clearTimers(): void {
    if (this.deadlineSlot !== undefined) this.settings.deadlines.cancel(this, this.deadlineSlot);
    this.deadlineSlot = undefined;
  }

  private finish(reason: SessionEndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimers();
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.pending = undefined;
    this.settings.slots.release(this.subject, this.id);
    const observer = this.observer;
    this.observer = undefined;
    observer?.sessionEnded(this, reason);
  }
}
