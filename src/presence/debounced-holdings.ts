import type { WebhookTimers } from '../webhooks/webhook-timers.js';

export interface DebouncedHoldingsOptions {
  /** How long a key stays held after its last user let go: a new user within it continues the holding. */
  readonly delayMs: number;
  /** The injectable timer shape the webhook dispatcher defined (one fake serves both in tests). */
  readonly timers: WebhookTimers;
  /** The key is now held: its first user came (and none was waiting to be let go). */
  readonly hold: (key: string) => void;
  /** The key is no longer held: its last user left `delayMs` ago and none came back. */
  readonly release: (key: string) => void;
}

/**
 * Counts the users of each key (the streams of one subject on one topic, or the streams on one
 * selector) and turns the counts into hold and release, with the release delayed: a user who comes
 * back within `delayMs` of the last one leaving (a reload, a dropped connection that EventSource
 * restores) makes neither a release nor a hold, so presence does not flicker. One timer per key
 * waiting to be released, none for keys in use.
 */
export class DebouncedHoldings {
  private readonly users = new Map<string, number>();
  /** Keys without users, waiting for their release: key -> timer. */
  private readonly leaving = new Map<string, unknown>();

  constructor(private readonly options: DebouncedHoldingsOptions) {}

  acquire(key: string): void {
    const count = this.users.get(key) ?? 0;
    this.users.set(key, count + 1);
    if (count > 0) return;
    const timer = this.leaving.get(key);
    if (timer !== undefined) {
      this.options.timers.clearTimeout(timer);
      this.leaving.delete(key);
      return;
    }
    this.options.hold(key);
  }

  release(key: string): void {
    const count = this.users.get(key);
    if (count === undefined) return;
    if (count > 1) {
      this.users.set(key, count - 1);
      return;
    }
    this.users.delete(key);
    if (this.options.delayMs === 0) {
      this.options.release(key);
      return;
    }
    this.leaving.set(
      key,
      this.options.timers.setTimeout(() => {
        this.leaving.delete(key);
        this.options.release(key);
      }, this.options.delayMs),
    );
  }

  /** Keys held: in use, or waiting for their release. */
  get size(): number {
    return this.users.size + this.leaving.size;
  }

  /**
   * Stops the waiting releases. `flush`: release them now (nobody else will); otherwise leave them
   * held (a shared store's lease takes over, so members who reconnect elsewhere stay).
   */
  close(flush: boolean): void {
    for (const [key, timer] of this.leaving) {
      this.options.timers.clearTimeout(timer);
      if (flush) this.options.release(key);
    }
    this.leaving.clear();
  }
}
