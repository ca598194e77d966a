import type { Selector } from '../topics/selector.js';
import { SelectorIndex } from '../topics/selector-index.js';
import type { BusEvent, EventSink, Subscription } from './event-bus.js';

interface Entry {
  readonly sink: EventSink;
  /** The dispatch round that last delivered to this entry: one delivery per event, however many selectors or topics match. */
  round: number;
}

/**
 * Delivers events to the subscribers of this process. Every bus implementation ends here: the
 * memory bus calls `dispatch` on publish, the Redis bus on each event read from Redis.
 * Per event it allocates nothing per subscriber: the frame is shared and duplicates are
 * suppressed with a round counter instead of a per-event set.
 */
export class LocalFanout {
  private readonly index = new SelectorIndex<Entry>();
  private round = 0;
  private current: BusEvent | undefined;
  private readonly queued: BusEvent[] = [];
  private delivered = 0;
  private count = 0;

  subscribe(selectors: readonly Selector[], sink: EventSink): Subscription {
    const entry: Entry = { sink, round: 0 };
    for (const selector of selectors) this.index.add(selector, entry);
    this.count++;
    let active = true;
    return {
      unsubscribe: () => {
        if (!active) return;
        active = false;
        this.count--;
        for (const selector of selectors) this.index.remove(selector, entry);
      },
    };
  }

  /**
   * Delivers `event` to every matching subscriber once; returns how many received it. An event
   * dispatched from inside a sink (re-entrantly) is queued and delivered right after the current
   * one, so every subscriber still sees every event once and in dispatch order; its count is
   * then reported as 0.
   */
  dispatch(event: BusEvent): number {
    if (this.current !== undefined) {
      this.queued.push(event);
      return 0;
    }
    const delivered = this.deliverOne(event);
    while (this.queued.length > 0) this.deliverOne(this.queued.shift()!);
    return delivered;
  }

  private deliverOne(event: BusEvent): number {
    this.round++;
    this.current = event;
    this.delivered = 0;
    try {
      for (const topic of event.topics) this.index.forEachMatch(topic, this.visit);
    } finally {
      this.current = undefined;
    }
    return this.delivered;
  }

  get subscriptionCount(): number {
    return this.count;
  }

  get empty(): boolean {
    return this.index.empty;
  }

  private readonly visit = (entry: Entry): void => {
    if (entry.round === this.round) return;
    entry.round = this.round;
    this.delivered++;
    entry.sink.deliver(this.current!);
  };
}
