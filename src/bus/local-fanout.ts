import type { Selector } from '../topics/selector.js';
import { SelectorIndex } from '../topics/selector-index.js';
import type { BusEvent, EventSink, Subscription } from './event-bus.js';

/** One subscriber in the index; it is also the subscriber's handle, so a subscription costs one object. */
class Entry implements Subscription {
  /** The dispatch round that last delivered to this entry: one delivery per event, however many selectors or topics match. */
  round = 0;
  private active = true;

  constructor(
    readonly sink: EventSink,
    private readonly selectors: readonly Selector[],
    private readonly fanout: LocalFanout,
  ) {}

  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.fanout.remove(this, this.selectors);
  }
}

/**
 * Delivers events to the subscribers of this process. Every bus implementation ends here: the
 * memory bus calls `dispatch` on publish, the Redis bus on each event read from Redis.
 * Per event it allocates nothing per subscriber: the frames are shared and duplicates are
 * suppressed with a round counter instead of a per-event set. Topics are visited in publish
 * order, so a subscriber matching several of an event's topics gets the frame of the first.
 */
export class LocalFanout {
  private readonly index = new SelectorIndex<Entry>();
  private round = 0;
  private current: BusEvent | undefined;
  /** The frame of the topic being visited: the first topic that reaches an entry decides its frame. */
  private currentFrame: Buffer | undefined;
  private readonly queued: BusEvent[] = [];
  private delivered = 0;
  private count = 0;

  subscribe(selectors: readonly Selector[], sink: EventSink): Subscription {
    const entry = new Entry(sink, selectors, this);
    for (const selector of selectors) this.index.add(selector, entry);
    this.count++;
    return entry;
  }

  /** Called by `Entry.unsubscribe`, once. */
  remove(entry: Entry, selectors: readonly Selector[]): void {
    this.count--;
    for (const selector of selectors) this.index.remove(selector, entry);
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
      const { topics, frames } = event;
      for (let i = 0; i < topics.length; i++) {
        this.currentFrame = frames[i];
        this.index.forEachMatch(topics[i]!, this.visit);
      }
    } finally {
      this.current = undefined;
      this.currentFrame = undefined;
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
    entry.sink.deliver(this.current!, this.currentFrame!);
  };
}
