import { expect } from 'chai';
import {
  EARLIEST,
  type BusEvent,
  type EventBus,
  type EventSink,
  type PublishRequest,
  type ReplayResult,
  type Subscription,
} from '../../src/bus/event-bus.js';
import { compareEventIds, formatEventId, parseEventId } from '../../src/bus/event-id.js';
import { ConflictError } from '../../src/errors.js';
import { parseSelector, type Selector } from '../../src/topics/selector.js';
import { rejection } from '../helpers/errors.js';

/** What a bus implementation's test file hands the contract. */
interface ContractBus {
  readonly bus: EventBus;
  /** Runs the implementation's periodic clean-up, if it has one. */
  readonly sweep?: () => Promise<void>;
  readonly close: () => Promise<void>;
}

export type ContractBusFactory = (options: { clock: () => number; historySize: number }) => Promise<ContractBus>;

const selectors = (...sources: string[]): Selector[] => sources.map((source) => parseSelector(source));

function request(topics: string[], data: unknown = {}, extra: Partial<PublishRequest> = {}): PublishRequest {
  return { topics, type: 'message', data: JSON.stringify(data), publisher: 'publisher-a', ...extra };
}

function recorder(): EventSink & { events: BusEvent[] } {
  const events: BusEvent[] = [];
  return { events, deliver: (event) => events.push(event) };
}

/**
 * Waits until `condition` holds. Live delivery may be asynchronous (a Redis bus delivers what it
 * reads back from Redis), so the contract waits for it instead of assuming it is synchronous.
 */
async function eventually(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function expectEvents(result: ReplayResult): BusEvent[] {
  if (result.kind !== 'events') throw new Error(`expected events, got a reset (${result.reason})`);
  return [...result.events];
}

const ids = (events: readonly BusEvent[]) => events.map((event) => event.id);

/** An id no bus can have issued yet: the largest the id format allows. */
const FAR_FUTURE_ID = formatEventId({ ms: 999_999_999_999_999, seq: 0 });

/**
 * The behaviour every `EventBus` implementation must share. Each implementation's test file calls
 * this with a factory; nothing here may depend on how an implementation stores history.
 */
export function eventBusContract(name: string, create: ContractBusFactory): void {
  describe(`EventBus contract: ${name}`, () => {
    let now: number;
    let current: ContractBus | undefined;
    const subscriptions: Subscription[] = [];
    const clock = () => now;
    const tick = (ms = 1) => {
      now += ms;
    };

    async function open(historySize = 100): Promise<EventBus> {
      current = await create({ clock, historySize });
      return current.bus;
    }

    function subscribe(bus: EventBus, sources: string[], sink: EventSink): Subscription {
      const subscription = bus.subscribe(selectors(...sources), sink);
      subscriptions.push(subscription);
      return subscription;
    }

    beforeEach(() => {
      now = 1_700_000_000_000;
    });

    afterEach(async () => {
      for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
      await current?.close();
      current = undefined;
    });

    describe('publish', () => {
      it('returns strictly increasing ids when events are published one after another', async () => {
        const bus = await open();
        const published: BusEvent[] = [];
        for (let i = 0; i < 20; i++) {
          // Sometimes the clock stands still, sometimes it moves, once it steps back.
          if (i % 3 === 0) tick(1);
          if (i === 10) tick(-5);
          published.push((await bus.publish(request([`t/${i % 4}`], { i }))).event);
        }
        for (let i = 1; i < published.length; i++) {
          const previous = parseEventId(published[i - 1]!.id);
          const next = parseEventId(published[i]!.id);
          expect(previous, published[i - 1]!.id).to.not.equal(undefined);
          expect(next, published[i]!.id).to.not.equal(undefined);
          expect(compareEventIds(next!, previous!), `${published[i - 1]!.id} then ${published[i]!.id}`).to.be.greaterThan(0);
        }
      });

      it('returns the event as published with duplicate false when there is no idempotency key', async () => {
        const bus = await open();
        const result = await bus.publish(request(['a/b', 'c'], { hello: 'world' }, { type: 'greeting' }));
        expect(result.duplicate).to.equal(false);
        expect(result.event.topics).to.deep.equal(['a/b', 'c']);
        expect(result.event.type).to.equal('greeting');
        expect(result.event.data).to.equal('{"hello":"world"}');
        // One frame per topic, each naming its own topic around the published data.
        expect(result.event.frames.map((frame) => frame.toString('utf8'))).to.deep.equal([
          `id: ${result.event.id}\nevent: greeting\ndata: {"topic":"a/b","data":{"hello":"world"}}\n\n`,
          `id: ${result.event.id}\nevent: greeting\ndata: {"topic":"c","data":{"hello":"world"}}\n\n`,
        ]);
      });

      it('rejects with shutting_down when the bus is closed', async () => {
        const bus = await open();
        await bus.close();
        const error = await rejection(bus.publish(request(['a'])));
        expect(error).to.have.property('code', 'shutting_down');
        expect(error).to.have.property('status', 503);
      });
    });

    describe('subscribe', () => {
      it('delivers matching live events once each, in publish order, and nothing else', async () => {
        const bus = await open();
        const sink = recorder();
        // Overlapping selectors: news/sport matches three of them.
        subscribe(bus, ['news/**', 'news/sport', 'news/*', 'alerts'], sink);
        const expected: string[] = [];
        const publish = async (topics: string[], matching: boolean) => {
          const { event } = await bus.publish(request(topics, { topics }));
          if (matching) expected.push(event.id);
        };
        await publish(['news/sport'], true);
        await publish(['weather/today'], false);
        await publish(['news/sport', 'news/local', 'alerts'], true); // three matching topics, one event
        await publish(['news'], false); // news/** needs at least one more segment
        await publish(['alertsx', 'weather/x'], false);
        await publish(['news/a/b/c'], true);
        await publish(['alerts'], true);
        // A barrier: once this arrives, everything published before it has been delivered.
        await publish(['alerts'], true);
        await eventually(() => sink.events.length >= expected.length, 'live events');
        expect(ids(sink.events)).to.deep.equal(expected);
      });

      it('delivers to every subscriber whose selectors match', async () => {
        const bus = await open();
        const a = recorder();
        const b = recorder();
        const c = recorder();
        subscribe(bus, ['x/*'], a);
        subscribe(bus, ['x/y'], b);
        subscribe(bus, ['z'], c);
        const { event } = await bus.publish(request(['x/y']));
        const { event: barrier } = await bus.publish(request(['z']));
        await eventually(() => a.events.length >= 1 && b.events.length >= 1 && c.events.length >= 1, 'deliveries');
        expect(ids(a.events)).to.deep.equal([event.id]);
        expect(ids(b.events)).to.deep.equal([event.id]);
        expect(ids(c.events)).to.deep.equal([barrier.id]);
      });

      it('does not deliver events published before the subscription', async () => {
        const bus = await open();
        await bus.publish(request(['a']));
        const sink = recorder();
        subscribe(bus, ['a'], sink);
        const { event } = await bus.publish(request(['a']));
        await eventually(() => sink.events.length >= 1, 'the later event');
        expect(ids(sink.events)).to.deep.equal([event.id]);
      });

      it('stops delivery when the subscription is unsubscribed', async () => {
        const bus = await open();
        const gone = recorder();
        const stays = recorder();
        const subscription = subscribe(bus, ['a'], gone);
        subscribe(bus, ['a'], stays);
        await bus.publish(request(['a']));
        await eventually(() => gone.events.length >= 1 && stays.events.length >= 1, 'the first event');
        subscription.unsubscribe();
        await bus.publish(request(['a']));
        await eventually(() => stays.events.length >= 2, 'the barrier');
        expect(gone.events).to.have.length(1);
      });
    });

    describe('replay', () => {
      it('returns exactly the later matching events in order, once each, when events span several topics', async () => {
        const bus = await open();
        const first = (await bus.publish(request(['a/1']))).event;
        tick();
        const e1 = (await bus.publish(request(['a/2']))).event;
        const e2 = (await bus.publish(request(['b/1', 'a/1']))).event; // on two matching topics
        tick();
        await bus.publish(request(['c/1']));
        const e3 = (await bus.publish(request(['a/1', 'a/2', 'a/3']))).event; // on three matching topics
        tick();
        const e4 = (await bus.publish(request(['b/1']))).event;
        const events = expectEvents(await bus.replay(selectors('a/*', 'b/1', 'a/1'), first.id));
        expect(ids(events)).to.deep.equal([e1.id, e2.id, e3.id, e4.id]);
      });

      it('returns the events after an id in the middle of history', async () => {
        const bus = await open();
        const published: BusEvent[] = [];
        for (let i = 0; i < 10; i++) {
          if (i % 2 === 0) tick();
          published.push((await bus.publish(request([`t/${i % 3}`], { i }))).event);
        }
        const events = expectEvents(await bus.replay(selectors('t/**'), published[4]!.id));
        expect(ids(events)).to.deep.equal(ids(published.slice(5)));
      });

      it('returns nothing when the id is the newest one', async () => {
        const bus = await open();
        await bus.publish(request(['a']));
        const newest = (await bus.publish(request(['a', 'b']))).event;
        expect(expectEvents(await bus.replay(selectors('**'), newest.id))).to.deep.equal([]);
      });

      it('never returns events on topics the selectors do not match', async () => {
        const bus = await open();
        const first = (await bus.publish(request(['start']))).event;
        await bus.publish(request(['users/bob/inbox']));
        const mine = (await bus.publish(request(['users/alice/inbox']))).event;
        await bus.publish(request(['users/alice']));
        await bus.publish(request(['users/alicex/inbox', 'public']));
        const shared = (await bus.publish(request(['users/bob/inbox', 'users/alice/inbox']))).event;
        const events = expectEvents(await bus.replay(selectors('users/alice/**'), first.id));
        expect(ids(events)).to.deep.equal([mine.id, shared.id]);
        for (const event of events) {
          expect(event.topics.some((topic) => topic.startsWith('users/alice/'))).to.equal(true);
        }
        expect(expectEvents(await bus.replay(selectors('nothing/here'), first.id))).to.deep.equal([]);
      });

      for (const garbage of ['garbage', '', '1-2-3', '-1-0', '12', 'undefined']) {
        it(`answers a reset with unknown_event_id and the head id when the id is ${JSON.stringify(garbage)}`, async () => {
          const bus = await open();
          await bus.publish(request(['a']));
          const head = (await bus.publish(request(['b']))).event;
          const result = await bus.replay(selectors('**'), garbage);
          expect(result).to.deep.equal({ kind: 'reset', reason: 'unknown_event_id', headId: head.id });
        });
      }

      it('answers a reset with unknown_event_id and the head id when the id is in the future', async () => {
        const bus = await open();
        const head = (await bus.publish(request(['a']))).event;
        const result = await bus.replay(selectors('**'), FAR_FUTURE_ID);
        expect(result).to.deep.equal({ kind: 'reset', reason: 'unknown_event_id', headId: head.id });
        // Just after the head is also the future.
        const parts = parseEventId(head.id)!;
        const next = formatEventId({ ms: parts.ms, seq: parts.seq + 1 });
        expect(await bus.replay(selectors('**'), next)).to.deep.equal({ kind: 'reset', reason: 'unknown_event_id', headId: head.id });
      });

      it('answers a reset with history_exhausted when the id is older than the kept history', async () => {
        const bus = await open(3);
        const published: BusEvent[] = [];
        for (let i = 0; i < 10; i++) {
          tick();
          published.push((await bus.publish(request(['busy'], { i }))).event);
        }
        const head = published.at(-1)!;
        await current!.sweep?.();
        expect(await bus.replay(selectors('busy'), published[0]!.id)).to.deep.equal({
          kind: 'reset',
          reason: 'history_exhausted',
          headId: head.id,
        });
        // From the newest trimmed event on, the kept events prove nothing was lost.
        expect(ids(expectEvents(await bus.replay(selectors('busy'), published[6]!.id)))).to.deep.equal(ids(published.slice(7)));
      });

      it('returns every retained matching event, oldest first and once each, for earliest', async () => {
        const bus = await open();
        const e1 = (await bus.publish(request(['a/1']))).event;
        tick();
        await bus.publish(request(['c/1']));
        const e2 = (await bus.publish(request(['b/1', 'a/1']))).event; // on two matching topics
        tick();
        const e3 = (await bus.publish(request(['a/2']))).event;
        const events = expectEvents(await bus.replay(selectors('a/*', 'b/1'), EARLIEST));
        expect(ids(events)).to.deep.equal([e1.id, e2.id, e3.id]);
        expect(expectEvents(await bus.replay(selectors('nothing/here'), EARLIEST))).to.deep.equal([]);
      });

      it('returns no events, not a reset, for earliest on a bus that has none', async () => {
        const bus = await open();
        expect(await bus.replay(selectors('**'), EARLIEST)).to.deep.equal({ kind: 'events', events: [] });
      });

      it('returns what history still holds, not a reset, for earliest once older events were trimmed', async () => {
        const bus = await open(3);
        const published: BusEvent[] = [];
        for (let i = 0; i < 10; i++) {
          tick();
          published.push((await bus.publish(request(['busy'], { i }))).event);
        }
        await current!.sweep?.();
        expect(ids(expectEvents(await bus.replay(selectors('busy'), EARLIEST)))).to.deep.equal(ids(published.slice(7)));
      });
    });

    describe('idempotency', () => {
      it('returns the original event with duplicate true and delivers once when the key and payload repeat', async () => {
        const bus = await open();
        const sink = recorder();
        subscribe(bus, ['orders/*'], sink);
        const start = (await bus.publish(request(['elsewhere']))).event;
        const first = await bus.publish(request(['orders/1'], { total: 5 }, { idempotencyKey: 'key-1' }));
        tick(10);
        const again = await bus.publish(request(['orders/1'], { total: 5 }, { idempotencyKey: 'key-1' }));
        expect(first.duplicate).to.equal(false);
        expect(again.duplicate).to.equal(true);
        expect(again.event.id).to.equal(first.event.id);
        expect(again.event.data).to.equal(first.event.data);
        const barrier = (await bus.publish(request(['orders/2']))).event;
        await eventually(() => sink.events.some((event) => event.id === barrier.id), 'the barrier');
        expect(ids(sink.events)).to.deep.equal([first.event.id, barrier.id]);
        // History holds it once too.
        expect(ids(expectEvents(await bus.replay(selectors('orders/1'), start.id)))).to.deep.equal([first.event.id]);
      });

      it('throws idempotency_key_reused when the key repeats with another payload', async () => {
        const bus = await open();
        await bus.publish(request(['orders/1'], { total: 5 }, { idempotencyKey: 'key-1' }));
        for (const changed of [
          request(['orders/1'], { total: 6 }, { idempotencyKey: 'key-1' }),
          request(['orders/2'], { total: 5 }, { idempotencyKey: 'key-1' }),
          request(['orders/1'], { total: 5 }, { idempotencyKey: 'key-1', type: 'other' }),
        ]) {
          const error = await rejection(bus.publish(changed));
          expect(error).to.be.instanceOf(ConflictError);
          expect(error).to.have.property('code', 'idempotency_key_reused');
          expect(error).to.have.property('status', 409);
        }
      });

      it('keeps keys per publisher when two publishers use the same key', async () => {
        const bus = await open();
        const a = await bus.publish(request(['t'], { from: 'a' }, { idempotencyKey: 'shared', publisher: 'publisher-a' }));
        // Another publisher, same key, other payload: not a conflict.
        const b = await bus.publish(request(['t'], { from: 'b' }, { idempotencyKey: 'shared', publisher: 'publisher-b' }));
        expect(b.duplicate).to.equal(false);
        expect(b.event.id).to.not.equal(a.event.id);
        // Another publisher, same key, same payload: a new event, not the first publisher's.
        const c = await bus.publish(request(['t'], { from: 'a' }, { idempotencyKey: 'shared', publisher: 'publisher-c' }));
        expect(c.duplicate).to.equal(false);
        expect(c.event.id).to.not.equal(a.event.id);
        // Each publisher's own retry is still recognised.
        const bAgain = await bus.publish(request(['t'], { from: 'b' }, { idempotencyKey: 'shared', publisher: 'publisher-b' }));
        expect(bAgain.duplicate).to.equal(true);
        expect(bAgain.event.id).to.equal(b.event.id);
      });

      it('publishes separate events when there is no key, even for the same payload', async () => {
        const bus = await open();
        const a = await bus.publish(request(['t'], { same: true }));
        const b = await bus.publish(request(['t'], { same: true }));
        expect(b.duplicate).to.equal(false);
        expect(b.event.id).to.not.equal(a.event.id);
      });
    });
  });
}
