/** Something with a deadline: called once the deadline it was scheduled for has passed. */
export interface DeadlineTarget {
  onDeadline(): void;
}

export interface DeadlineWheelOptions {
  /**
   * Deadlines are rounded up to a multiple of this (never down: nothing fires early). One second
   * by default: token expiry is checked with a clock tolerance of seconds anyway.
   */
  readonly resolutionMs?: number;
  readonly clock: () => number;
}

/**
 * Deadlines of many streams on one timer (issue 5). A `setTimeout` per stream costs a Timeout, a
 * closure and, because every token expires at its own millisecond, a timer list of its own: some
 * 500 bytes per idle stream. Here a stream costs one entry in the set of its time slot, and the
 * one timer is armed for the earliest slot.
 */
export class DeadlineWheel {
  private readonly resolutionMs: number;
  private readonly clock: () => number;
  private readonly slots = new Map<number, Set<DeadlineTarget>>();
  private timer: NodeJS.Timeout | undefined;
  private timerSlot = Infinity;

  constructor(options: DeadlineWheelOptions) {
    this.resolutionMs = options.resolutionMs ?? 1000;
    if (!(this.resolutionMs > 0)) throw new RangeError('DeadlineWheel: resolutionMs must be positive');
    this.clock = options.clock;
  }

  /** Calls `target.onDeadline()` once, at `atMs` (epoch ms) or up to one resolution later; returns the slot, for `cancel`. */
  schedule(target: DeadlineTarget, atMs: number): number {
    const slot = Math.ceil(atMs / this.resolutionMs);
    let set = this.slots.get(slot);
    if (set === undefined) this.slots.set(slot, (set = new Set()));
    set.add(target);
    if (slot < this.timerSlot) this.arm(slot);
    return slot;
  }

  cancel(target: DeadlineTarget, slot: number): void {
    const set = this.slots.get(slot);
    if (set !== undefined && set.delete(target) && set.size === 0) this.slots.delete(slot);
  }

  /** Forgets every deadline and stops the timer. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerSlot = Infinity;
    this.slots.clear();
  }

  /** Deadlines waiting (for tests). */
  get size(): number {
    let size = 0;
    for (const set of this.slots.values()) size += set.size;
    return size;
  }

  private arm(slot: number): void {
    clearTimeout(this.timer);
    this.timerSlot = slot;
    this.timer = setTimeout(this.fire, Math.max(0, slot * this.resolutionMs - this.clock()));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerSlot = Infinity;
    const now = this.clock();
    const due = [...this.slots.keys()].filter((slot) => slot * this.resolutionMs <= now).sort((a, b) => a - b);
    for (const slot of due) {
      const targets = this.slots.get(slot)!;
      this.slots.delete(slot);
      for (const target of targets) target.onDeadline();
    }
    let next = Infinity;
    for (const slot of this.slots.keys()) if (slot < next) next = slot;
    if (next < this.timerSlot) this.arm(next);
  };
}
