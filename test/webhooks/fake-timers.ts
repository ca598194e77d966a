import type { WebhookTimers } from '../../src/webhooks/webhook-timers.js';

interface Pending {
  readonly due: number;
  readonly order: number;
  readonly callback: () => void;
}

/** Lets promise continuations (a transport's answer, a settle) run before time moves on. */
export async function flushPromises(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A manual clock and timers for the dispatcher's injected `clock` and `timers`: time moves only
 * in `advance`, which fires due callbacks in time order and lets promises settle after each.
 */
export class FakeTimers implements WebhookTimers {
  now = 1_750_000_000_000;
  private readonly pending = new Map<number, Pending>();
  private nextHandle = 1;

  readonly clock = (): number => this.now;

  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.pending.set(handle, { due: this.now + Math.max(0, ms), order: handle, callback });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Timers waiting (a leak check: a closed dispatcher leaves none). */
  get size(): number {
    return this.pending.size;
  }

  /** Delays of the waiting timers from now, soonest first. */
  delays(): number[] {
    return [...this.pending.values()].map((entry) => entry.due - this.now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    await flushPromises();
    for (;;) {
      let next: [number, Pending] | undefined;
      for (const entry of this.pending) {
        if (
          entry[1].due <= end &&
          (next === undefined || entry[1].due < next[1].due || (entry[1].due === next[1].due && entry[1].order < next[1].order))
        ) {
          next = entry;
        }
      }
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.now = Math.max(this.now, next[1].due);
      next[1].callback();
      await flushPromises();
    }
    this.now = end;
  }
}
