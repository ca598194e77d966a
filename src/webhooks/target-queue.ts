import { backoffMs, retryAfterMs } from './retry-schedule.js';
import { AddressRefusedError } from './address-policy.js';
import type { WebhookTarget } from './webhook-config.js';
import { signatureHeaders } from './webhook-signature.js';
import type { WebhookTimers } from './webhook-timers.js';
import type { WebhookAnswer, WebhookTransport } from './webhook-transport.js';

/** How one HTTP attempt ended. */
export const ATTEMPT_OUTCOMES = [
  'success',
  'http_3xx',
  'http_4xx',
  'http_429',
  'http_5xx',
  'timeout',
  'network_error',
  'address_refused',
  'aborted',
] as const;
type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/**
 * What became of events handed to a target: delivered (a 2xx), given up (attempts or age used up,
 * or the receiver answered 410 Gone), dropped because the queue was full (the oldest waiting
 * events go), or dropped at shutdown (still waiting, or enqueued after `close`).
 */
export const EVENT_OUTCOMES = ['delivered', 'given_up', 'dropped_overflow', 'dropped_shutdown'] as const;
type EventOutcome = (typeof EVENT_OUTCOMES)[number];

/** A snapshot of one target, read at scrape time (nothing on the enqueue path does more than add 1). */
export interface WebhookTargetStats {
  readonly name: string;
  /** Events waiting to be put into a batch. */
  readonly queuedEvents: number;
  /** Events in batches being sent or waiting for a retry. */
  readonly pendingEvents: number;
  readonly inFlightRequests: number;
  /** Attempts by outcome since start. */
  readonly attempts: Readonly<Record<AttemptOutcome, number>>;
  /** Events by outcome since start. */
  readonly events: Readonly<Record<EventOutcome, number>>;
}

/** pino's Logger fits. */
export interface WebhookLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface TargetQueueDeps {
  readonly transport: WebhookTransport;
  readonly clock: () => number;
  readonly timers: WebhookTimers;
  readonly random: () => number;
  readonly randomId: () => string;
  readonly logger: WebhookLogger | undefined;
}

interface Batch {
  /** `webhook-id`: the same on every attempt, the receiver's idempotency key. */
  readonly id: string;
  readonly body: Buffer;
  readonly events: number;
  /** The `missed` count this batch carries; returned to the target if the batch is lost too. */
  readonly missed: number;
  attempts: number;
  firstAttemptAt: number;
  retryTimer: unknown;
  controller: AbortController | undefined;
}

/** Abort reasons, told apart by identity. */
const TIMED_OUT = new Error('webhook request timed out');
const SHUT_DOWN = new Error('webhook dispatcher closed');

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

/**
 * The delivery state of one target. Events wait in a bounded queue; a batch is formed when
 * `maxBatchEvents` are waiting, when the first waiting event has lingered `lingerMs`, or as soon
 * as a request slot frees up (events that waited for a slot have lingered already). A batch keeps
 * its id and body through every retry and holds its request slot until it is delivered or given
 * up: so at most `maxConcurrentRequests` batches exist, memory is bounded by
 * `maxQueuedEvents + maxConcurrentRequests * maxBatchEvents` events, and with one slot (the
 * default) batches arrive in order. Overflow drops the oldest waiting event, because presence
 * events describe a state and the newest matter most; every drop is counted and the next batch
 * tells the receiver how many it missed, so it knows to reconcile.
 *
 * Nothing here runs on the caller's stack except `accept`, which only queues and arms a timer:
 * signing, sending and retrying happen in timer callbacks and promise continuations.
 */
export class TargetQueue {
  private readonly waiting: string[] = [];
  private head = 0;
  private missed = 0;
  private readonly open = new Set<Batch>();
  private timer: unknown;
  private timerDue = Infinity;
  private inFlight = 0;
  private failing = false;
  private closing = false;
  private closeDeadline = Infinity;
  private closeTimer: unknown;
  private drainedListener: (() => void) | undefined;
  private closed: Promise<void> | undefined;
  private readonly attemptCounts = zeros(ATTEMPT_OUTCOMES);
  private readonly eventCounts = zeros(EVENT_OUTCOMES);

  constructor(
    readonly target: WebhookTarget,
    private readonly deps: TargetQueueDeps,
  ) {}

  private get queued(): number {
    return this.waiting.length - this.head;
  }

  /** Queues one serialised event. Never throws, never waits. */
  accept(json: string): void {
    if (this.closing) {
      this.eventCounts.dropped_shutdown++;
      return;
    }
    this.waiting.push(json);
    if (this.queued > this.target.maxQueuedEvents) {
      this.takeOldest();
      this.missed++;
      this.eventCounts.dropped_overflow++;
    }
    if (this.open.size >= this.target.maxConcurrentRequests) return; // a settling batch will pick these up
    this.arm(this.queued >= this.target.maxBatchEvents ? 0 : this.target.lingerMs);
  }

  stats(): WebhookTargetStats {
    let pending = 0;
    for (const batch of this.open) pending += batch.events;
    return {
      name: this.target.name,
      queuedEvents: this.queued,
      pendingEvents: pending,
      inFlightRequests: this.inFlight,
      attempts: { ...this.attemptCounts },
      events: { ...this.eventCounts },
    };
  }

  /**
   * Stops accepting, sends what is waiting for up to `graceMs`, then aborts what is still in
   * flight; resolves once no request is left. Events not delivered by then count as
   * `dropped_shutdown`.
   */
  close(graceMs: number): Promise<void> {
    this.closed ??= new Promise((resolve) => {
      this.drainedListener = () => {
        this.deps.timers.clearTimeout(this.closeTimer);
        this.closeTimer = undefined;
        resolve();
      };
      this.closing = true;
      this.closeDeadline = this.deps.clock() + graceMs;
      this.disarm();
      if (graceMs > 0) {
        this.closeTimer = this.deps.timers.setTimeout(() => this.abandon(), graceMs);
        this.pump();
      } else {
        this.abandon();
      }
    });
    return this.closed;
  }

  private drained(): boolean {
    return this.inFlight === 0 && this.open.size === 0 && this.queued === 0;
  }

  private checkDrained(): void {
    if (this.closing && this.drained() && this.drainedListener !== undefined) {
      const listener = this.drainedListener;
      this.drainedListener = undefined;
      listener();
    }
  }

  /** The grace period is over: drop what waits, abort what is in flight. */
  private abandon(): void {
    this.closeDeadline = -Infinity;
    this.eventCounts.dropped_shutdown += this.queued;
    this.waiting.length = 0;
    this.head = 0;
    for (const batch of [...this.open]) {
      if (batch.controller !== undefined) {
        batch.controller.abort(SHUT_DOWN); // its settle() drops it
      } else {
        this.deps.timers.clearTimeout(batch.retryTimer);
        this.drop(batch);
      }
    }
    this.checkDrained();
  }

  private takeOldest(): string {
    const json = this.waiting[this.head]!;
    this.waiting[this.head++] = '';
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
    return json;
  }

  private arm(ms: number): void {
    const due = this.deps.clock() + ms;
    if (this.timer !== undefined && this.timerDue <= due) return;
    this.disarm();
    this.timerDue = due;
    this.timer = this.deps.timers.setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.pump();
    }, ms);
  }

  private disarm(): void {
    if (this.timer !== undefined) this.deps.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** Forms and starts batches while request slots are free. */
  private pump(): void {
    while (this.open.size < this.target.maxConcurrentRequests && this.queued > 0 && this.closeDeadline !== -Infinity) {
      const count = Math.min(this.queued, this.target.maxBatchEvents);
      const events: string[] = [];
      for (let i = 0; i < count; i++) events.push(this.takeOldest());
      if (this.queued === 0) {
        this.waiting.length = 0;
        this.head = 0;
      }
      const batch: Batch = {
        id: `msg_${this.deps.randomId()}`,
        body: Buffer.from(`{"missed":${this.missed},"events":[${events.join(',')}]}`),
        events: count,
        missed: this.missed,
        attempts: 0,
        firstAttemptAt: this.deps.clock(),
        retryTimer: undefined,
        controller: undefined,
      };
      this.missed = 0;
      this.open.add(batch);
      this.attempt(batch);
    }
    this.checkDrained();
  }

  private attempt(batch: Batch): void {
    batch.retryTimer = undefined;
    batch.attempts++;
    const controller = new AbortController();
    batch.controller = controller;
    const timeout = this.deps.timers.setTimeout(() => controller.abort(TIMED_OUT), this.target.timeoutMs);
    this.inFlight++;
    let sent: Promise<WebhookAnswer>;
    try {
      const headers = signatureHeaders(this.target.signingKeys, batch.id, Math.floor(this.deps.clock() / 1000), batch.body);
      sent = this.deps.transport.send(this.target, { headers, body: batch.body, signal: controller.signal });
    } catch (error) {
      sent = Promise.resolve({ error });
    }
    sent
      .catch((error: unknown): WebhookAnswer => ({ error }))
      .then((answer) => {
        this.deps.timers.clearTimeout(timeout);
        this.inFlight--;
        batch.controller = undefined;
        this.settle(batch, answer, controller.signal);
      })
      .catch((error: unknown) => this.deps.logger?.error({ err: error, target: this.target.name }, 'webhook dispatcher failed'));
  }

  private settle(batch: Batch, answer: WebhookAnswer, signal: AbortSignal): void {
    const outcome = classify(answer, signal);
    this.attemptCounts[outcome]++;
    if (outcome === 'success') {
      this.open.delete(batch);
      this.eventCounts.delivered += batch.events;
      if (this.failing) {
        this.failing = false;
        this.deps.logger?.info({ target: this.target.name }, 'webhook target recovered');
      }
      this.pump();
      return;
    }
    if (outcome === 'aborted' || this.closeDeadline === -Infinity) {
      this.drop(batch);
      this.checkDrained();
      return;
    }
    if (!this.failing) {
      this.failing = true;
      this.deps.logger?.warn(
        { target: this.target.name, origin: this.target.url.origin, outcome, status: 'status' in answer ? answer.status : undefined },
        'webhook target failing; retrying with back-off',
      );
    }
    const status = 'status' in answer ? answer.status : 0;
    const now = this.deps.clock();
    const backoff = backoffMs(batch.attempts, this.target.retryInitialDelayMs, this.target.retryMaxDelayMs, this.deps.random);
    // RFC 9110 §10.2.3 / RFC 6585 §4: wait at least as long as the receiver asked.
    const asked = status === 429 || status === 503 ? retryAfterMs((answer as { retryAfter?: string }).retryAfter, now) : undefined;
    const delay = Math.max(backoff, asked ?? 0);
    if (status === 410 || batch.attempts >= this.target.maxAttempts || now + delay - batch.firstAttemptAt > this.target.maxAgeMs) {
      this.giveUp(batch, status === 410 ? 'gone' : 'exhausted');
      return;
    }
    if (now + delay > this.closeDeadline) {
      this.drop(batch);
      this.checkDrained();
      return;
    }
    batch.retryTimer = this.deps.timers.setTimeout(() => this.attempt(batch), delay);
  }

  private giveUp(batch: Batch, why: 'gone' | 'exhausted'): void {
    this.open.delete(batch);
    this.eventCounts.given_up += batch.events;
    this.missed += batch.events + batch.missed;
    this.deps.logger?.warn(
      {
        target: this.target.name,
        origin: this.target.url.origin,
        webhookId: batch.id,
        attempts: batch.attempts,
        events: batch.events,
        why,
      },
      'webhook batch given up',
    );
    this.pump();
  }

  /** Shutdown: the batch's events are lost with the process. */
  private drop(batch: Batch): void {
    if (this.open.delete(batch)) this.eventCounts.dropped_shutdown += batch.events;
  }
}

function classify(answer: WebhookAnswer, signal: AbortSignal): AttemptOutcome {
  if ('status' in answer) {
    const { status } = answer;
    if (status >= 200 && status < 300) return 'success';
    if (status === 429) return 'http_429';
    if (status >= 300 && status < 400) return 'http_3xx';
    if (status >= 400 && status < 500) return 'http_4xx';
    return 'http_5xx';
  }
  if (signal.aborted) return signal.reason === TIMED_OUT ? 'timeout' : 'aborted';
  if (answer.error instanceof AddressRefusedError) return 'address_refused';
  return 'network_error';
}
