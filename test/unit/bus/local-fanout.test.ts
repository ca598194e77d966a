import { expect } from 'chai';
import { createBusEvent, frameFor } from '../../../src/bus/bus-event.js';
import type { BusEvent, EventSink } from '../../../src/bus/event-bus.js';
import { LocalFanout } from '../../../src/bus/local-fanout.js';
import { frameEvent } from '../../../src/sse/frame.js';
import { parseSelector } from '../../../src/topics/selector.js';

let seq = 0;
function event(topics: string[], data = '{"n":1}', type = 'message'): BusEvent {
  return createBusEvent({ idParts: { ms: 1_700_000_000_000, seq: seq++ }, topics, type, data, publishedAt: 1_700_000_000_000 });
}

function recorder(): EventSink & { events: BusEvent[]; frames: Buffer[] } {
  const events: BusEvent[] = [];
  const frames: Buffer[] = [];
  return {
    events,
    frames,
    deliver: (e, frame) => {
      events.push(e);
      frames.push(frame);
    },
  };
}

const selectors = (...sources: string[]) => sources.map((source) => parseSelector(source));

describe('LocalFanout', () => {
  it('delivers an event once when several selectors of one subscriber match it', () => {
    const fanout = new LocalFanout();
    const sink = recorder();
    fanout.subscribe(selectors('a/b', 'a/*', 'a/**', '**', '*/b'), sink);
    const e = event(['a/b']);
    expect(fanout.dispatch(e)).to.equal(1);
    expect(sink.events).to.deep.equal([e]);
  });

  it('delivers an event once when it is on several topics the subscriber matches', () => {
    const fanout = new LocalFanout();
    const sink = recorder();
    fanout.subscribe(selectors('a/**', 'b/c', 'x/*'), sink);
    const e = event(['a/1', 'a/2/3', 'b/c', 'x/y', 'unrelated']);
    expect(fanout.dispatch(e)).to.equal(1);
    expect(sink.events).to.have.length(1);
  });

  it('delivers to each matching subscriber once and skips the others', () => {
    const fanout = new LocalFanout();
    const a = recorder();
    const b = recorder();
    const c = recorder();
    fanout.subscribe(selectors('news/**'), a);
    fanout.subscribe(selectors('news/sport', 'news/*'), b);
    fanout.subscribe(selectors('weather/*'), c);
    const e1 = event(['news/sport', 'news/local']);
    const e2 = event(['weather/today']);
    expect(fanout.dispatch(e1)).to.equal(2);
    expect(fanout.dispatch(e2)).to.equal(1);
    expect(a.events).to.deep.equal([e1]);
    expect(b.events).to.deep.equal([e1]);
    expect(c.events).to.deep.equal([e2]);
  });

  it('delivers again on the next event when the previous one was delivered', () => {
    const fanout = new LocalFanout();
    const sink = recorder();
    fanout.subscribe(selectors('a', 'a/**'), sink);
    const events = [event(['a']), event(['a/b', 'a']), event(['a/b/c'])];
    for (const e of events) fanout.dispatch(e);
    expect(sink.events).to.deep.equal(events);
  });

  it('treats the same sink subscribed twice as two subscriptions', () => {
    const fanout = new LocalFanout();
    const sink = recorder();
    fanout.subscribe(selectors('a'), sink);
    fanout.subscribe(selectors('a'), sink);
    expect(fanout.dispatch(event(['a']))).to.equal(2);
    expect(sink.events).to.have.length(2);
  });

  it('stops delivery and leaves the index empty when every subscription is unsubscribed', () => {
    const fanout = new LocalFanout();
    const a = recorder();
    const b = recorder();
    const subA = fanout.subscribe(selectors('a/**', 'a/b', '*/b'), a);
    const subB = fanout.subscribe(selectors('a/*'), b);
    expect(fanout.subscriptionCount).to.equal(2);
    subA.unsubscribe();
    expect(fanout.dispatch(event(['a/b']))).to.equal(1);
    expect(a.events).to.have.length(0);
    expect(b.events).to.have.length(1);
    subB.unsubscribe();
    expect(fanout.dispatch(event(['a/b']))).to.equal(0);
    expect(fanout.subscriptionCount).to.equal(0);
    expect(fanout.empty).to.equal(true);
  });

  it('ignores a second unsubscribe of the same subscription', () => {
    const fanout = new LocalFanout();
    const sub = fanout.subscribe(selectors('a'), recorder());
    const other = recorder();
    fanout.subscribe(selectors('a'), other);
    sub.unsubscribe();
    sub.unsubscribe();
    expect(fanout.subscriptionCount).to.equal(1);
    expect(fanout.dispatch(event(['a']))).to.equal(1);
  });

  it('keeps delivering to the others when a sink unsubscribes itself during delivery', () => {
    const fanout = new LocalFanout();
    const first = recorder();
    const last = recorder();
    const selfish: EventSink = { deliver: () => subscription.unsubscribe() };
    fanout.subscribe(selectors('a/*'), first);
    const subscription = fanout.subscribe(selectors('a/*', 'a/b'), selfish);
    fanout.subscribe(selectors('a/*'), last);
    fanout.dispatch(event(['a/b']));
    expect(first.events).to.have.length(1);
    expect(last.events).to.have.length(1);
    expect(fanout.subscriptionCount).to.equal(2);
  });

  it('delivers every event once to every subscriber when a sink dispatches another event re-entrantly', () => {
    // A sink is called synchronously from dispatch; if it publishes (a bridge, a sink that
    // announces something), the inner dispatch must not make the outer one skip subscribers.
    const fanout = new LocalFanout();
    const inner = event(['b']);
    let relayed = false;
    const relay: EventSink & { events: BusEvent[] } = {
      events: [],
      deliver(e) {
        this.events.push(e);
        if (!relayed) {
          relayed = true;
          fanout.dispatch(inner);
        }
      },
    };
    const others = [recorder(), recorder()];
    fanout.subscribe(selectors('a', 'b'), relay);
    for (const sink of others) fanout.subscribe(selectors('a', 'b'), sink);
    const outer = event(['a']);
    fanout.dispatch(outer);
    for (const sink of [relay, ...others]) {
      expect(sink.events).to.have.length(2);
      expect(sink.events).to.include(outer);
      expect(sink.events).to.include(inner);
    }
  });

  it('delivers the same frame Buffer to every subscriber, equal to the framed event with its topic', () => {
    const fanout = new LocalFanout();
    const a = recorder();
    const b = recorder();
    fanout.subscribe(selectors('t/*'), a);
    fanout.subscribe(selectors('t/**'), b);
    const e = event(['t/1'], '{"text":"héllo"}', 'greeting');
    fanout.dispatch(e);
    expect(a.frames[0]).to.equal(e.frames[0]);
    expect(b.frames[0]).to.equal(e.frames[0]);
    expect(Buffer.isBuffer(e.frames[0])).to.equal(true);
    const expected = Buffer.from(frameEvent({ id: e.id, event: 'greeting', data: '{"topic":"t/1","data":{"text":"héllo"}}' }));
    expect(e.frames[0]!.equals(expected)).to.equal(true);
  });

  it('gives each subscriber of a several-topic event the frame of the first topic it matches, shared with the others that match it first', () => {
    const fanout = new LocalFanout();
    const alice = recorder();
    const bob = recorder();
    const both = recorder();
    const everything = recorder();
    fanout.subscribe(selectors('users/alice/**'), alice);
    fanout.subscribe(selectors('users/bob/**'), bob);
    fanout.subscribe(selectors('users/bob/**', 'users/alice/**'), both);
    fanout.subscribe(selectors('**'), everything);
    const e = event(['users/alice/inbox', 'users/bob/inbox']);
    expect(fanout.dispatch(e)).to.equal(4);
    const topicOf = (frame: Buffer) => (JSON.parse(/^data: (.*)$/m.exec(frame.toString('utf8'))![1]!) as { topic: string }).topic;
    expect(topicOf(alice.frames[0]!)).to.equal('users/alice/inbox');
    expect(topicOf(bob.frames[0]!)).to.equal('users/bob/inbox');
    // Matching both: the first in publish order, whatever the order of the selectors.
    expect(both.frames).to.have.length(1);
    expect(both.frames[0]).to.equal(e.frames[0]);
    expect(everything.frames[0]).to.equal(e.frames[0]);
    expect(alice.frames[0]).to.equal(e.frames[0]);
    expect(bob.frames[0]).to.equal(e.frames[1]);
    // Replay picks the same frame as live delivery.
    expect(frameFor(e, selectors('users/bob/**', 'users/alice/**'))).to.equal(e.frames[0]);
    expect(frameFor(e, selectors('users/bob/**'))).to.equal(e.frames[1]);
    expect(frameFor(e, selectors('users/carol/**'))).to.equal(undefined);
  });
});
