import { EventSource, type EventListenerOrEventListenerObject, type EventSourceEventMap } from 'eventsource';

type Options = boolean | AddEventListenerOptions;
type MessageListener = (this: EventSource, event: MessageEvent) => unknown;
type Listener = EventListenerOrEventListenerObject | MessageListener;

/**
 * An `EventSource` that also reports event types nobody asked for. The EventSource API delivers a
 * named event (`event: greeting`) only to listeners added for that name, so a client that cannot
 * know the names in advance (`notify tail` prints whatever is published) would see `message`
 * events alone. Here a `MessageEvent` whose type has no listener of its own also goes to the
 * `message` listeners, with its own `type`; types that have listeners (the stream's control
 * events: `connected`, `closed`, ...) are delivered only to those, as usual.
 */
export class AllEventsSource extends EventSource {
  readonly #listeners = new Map<string, Set<Listener>>();

  override addEventListener<K extends keyof EventSourceEventMap>(
    type: K,
    listener: (this: EventSource, event: EventSourceEventMap[K]) => unknown,
    options?: Options,
  ): void;
  override addEventListener(type: string, listener: MessageListener, options?: Options): void;
  override addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: Options): void;
  override addEventListener(type: string, listener: Listener, options?: Options): void {
    const listeners = this.#listeners.get(type) ?? new Set();
    listeners.add(listener);
    this.#listeners.set(type, listeners);
    super.addEventListener(type, listener as EventListenerOrEventListenerObject, options);
  }

  override removeEventListener<K extends keyof EventSourceEventMap>(
    type: K,
    listener: (this: EventSource, event: EventSourceEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(type: string, listener: MessageListener, options?: boolean | EventListenerOptions): void;
  override removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
  override removeEventListener(type: string, listener: Listener, options?: boolean | EventListenerOptions): void {
    const listeners = this.#listeners.get(type);
    listeners?.delete(listener);
    if (listeners?.size === 0) this.#listeners.delete(type);
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject, options);
  }

  override dispatchEvent(event: Event): boolean {
    if (event instanceof MessageEvent && event.type !== 'message' && !this.#listeners.has(event.type)) {
      // An event object dispatches once and its type is fixed, so the `message` listeners are
      // called with it directly rather than by redispatching it.
      for (const listener of this.#listeners.get('message') ?? []) {
        if (typeof listener === 'function') (listener as MessageListener).call(this, event);
        else listener.handleEvent(event);
      }
    }
    return super.dispatchEvent(event);
  }
}
