import type { AccessClaims } from '../auth/token-service.js';
import type { BusEvent, EventBus, EventSink, Subscription } from '../bus/event-bus.js';
import { compareEventIds, type EventIdParts } from '../bus/event-id.js';
import type { SseStream, StreamEndReason } from '../sse/sse-stream.js';
import type { Selector } from '../topics/selector.js';
import { closedEvent, connectedEvent, expiringEvent, renewedEvent, resetEvent, type CloseReason } from './control-events.js';
import type { DeadlineTarget, DeadlineWheel } from './deadline-wheel.js';

export type SessionEndReason = CloseReason | StreamEndReason;

export interface SessionSettings {
  readonly retryMs: number;
  readonly heartbeatMs: number;
  /** Seconds before expiry at which `token-expiring` is sent. */
  readonly expiryWarning: number;
  readonly clock: () => number;
  /** The shared timer for token-expiry warnings and expiry (one per server, not one per stream). */
  readonly deadlines: DeadlineWheel;
}

/**
 * One subscriber's stream from open to close. It ties together the transport (`SseStream`), the
 * bus subscription and the token's lifetime, and has explicit exits: the client goes away, the
 * client is too slow, the token expires without renewal, the token is revoked, a renewal no
 * longer covers the topics, or the server shuts down. Every exit releases the subscription and
 * the timers.
 */
export class SubscriberSession implements EventSink, DeadlineTarget {
  private claims: AccessClaims;
  private subscription: Subscription | undefined;
  /** While replaying history, live events wait here; `undefined` once live. */
  private pending: BusEvent[] | undefined = [];
  /** The deadline slot this session waits in (the expiry warning first, then the expiry). */
  private deadlineSlot: number | undefined;
  private warned = false;
  private ended = false;
  private readonly endListeners: Array<(reason: SessionEndReason) => void> = [];

  constructor(
    readonly id: string,
    private readonly stream: SseStream,
    claims: AccessClaims,
    readonly selectors: readonly Selector[],
    private readonly settings: SessionSettings,
  ) {
    this.claims = claims;
    stream.onEnd((reason) => this.finish(reason));
  }

  get subject(): string {
    return this.claims.subject;
  }

  get tokenClaims(): AccessClaims {
    return this.claims;
  }

  get renewUrl(): string {
    return `/events/connections/${this.id}/token`;
  }

  get closed(): boolean {
    return this.ended;
  }

  /**
   * Opens the stream: subscribes first (buffering live events), replays history after
   * `lastEventId`, then hands over to live delivery without a gap or a duplicate.
   */
  async start(bus: EventBus, lastEventId: string | undefined): Promise<void> {
    this.subscription = bus.subscribe(this.selectors, this);
    this.stream.open();
    this.stream.write(
      connectedEvent(this.settings.retryMs, {
        connectionId: this.id,
        topics: this.selectors.map((selector) => selector.source),
        expiresAt: this.claims.expiresAt,
        renewUrl: this.renewUrl,
        heartbeatMs: this.settings.heartbeatMs,
      }),
    );
    this.armTimers();

    let last: EventIdParts | undefined;
    if (lastEventId !== undefined) {
      const replay = await bus.replay(this.selectors, lastEventId);
      if (this.ended) return;
      if (replay.kind === 'reset') {
        this.stream.write(resetEvent(replay.reason, lastEventId, replay.headId));
      } else {
        for (const event of replay.events) this.stream.write(event.frame);
        last = replay.events.at(-1)?.idParts;
      }
    }
    const waiting = this.pending ?? [];
    this.pending = undefined;
    for (const event of waiting) {
      if (last === undefined || compareEventIds(event.idParts, last) > 0) this.stream.write(event.frame);
    }
  }

  /** The bus calls this for each live event: one shared frame, written straight to the socket. */
  deliver(event: BusEvent): void {
    if (this.pending !== undefined) this.pending.push(event);
    else this.stream.write(event.frame);
  }

  /** Writes a shared heartbeat frame. */
  heartbeat(frame: Buffer): void {
    this.stream.write(frame);
  }

  /**
   * Swaps in a fresh token for the same subject. The caller has checked the subject and that the
   * new grants cover every selector of this stream.
   */
  renew(claims: AccessClaims): void {
    if (this.ended) return;
    this.claims = claims;
    this.armTimers();
    this.stream.write(renewedEvent(claims.expiresAt));
  }

  /** Sends a final `closed` event saying why, then ends the stream. */
  close(reason: CloseReason): void {
    if (this.ended) return;
    this.finish(reason);
    this.stream.end(closedEvent(reason));
  }

  onEnd(listener: (reason: SessionEndReason) => void): void {
    this.endListeners.push(listener);
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
    const expiresAtMs = this.claims.expiresAt * 1000;
    const now = this.settings.clock();
    if (now >= expiresAtMs) {
      this.close('token_expired');
      return;
    }
    const warnAtMs = expiresAtMs - this.settings.expiryWarning * 1000;
    if (!this.warned && now >= warnAtMs) {
      this.warned = true;
      this.stream.write(expiringEvent(this.claims.expiresAt, this.renewUrl));
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
    for (const listener of this.endListeners) listener(reason);
  }
}
