import { expect } from 'chai';
import type { BusEvent } from '../../src/bus/event-bus.js';
import { formatEventId } from '../../src/bus/event-id.js';
import { MemoryBus, type MemoryBusOptions } from '../../src/backends/memory/memory-bus.js';
import { parseSelector } from '../../src/topics/selector.js';
import { eventBusContract } from './event-bus.contract.js';

eventBusContract('memory', async ({ clock, historySize }) => {
  const bus = new MemoryBus({
    historySize,
    historyTtlMs: 3_600_000,
    maxTopics: 10_000,
    idempotencyTtlMs: 86_400_000,
    idempotencyMaxKeys: 1000,
    clock,
  });
  return { bus, sweep: () => bus.sweep(), close: () => bus.close() };
});

describe('MemoryBus', () => {
  const T0 = 1_700_000_000_000;
  let now: number;
  const all = [parseSelector('**')];

  function memoryBus(options: Partial<MemoryBusOptions> = {}): MemoryBus {
    return new MemoryBus({
      historySize: 100,
      historyTtlMs: 60_000,
      maxTopics: 100,
      idempotencyTtlMs: 60_000,
      idempotencyMaxKeys: 100,
      clock: () => now,
      ...options,
    });
  }

  async function publish(bus: MemoryBus, topic: string): Promise<BusEvent> {
    return (await bus.publish({ topics: [topic], type: 'message', data: '{}', publisher: 'p' })).event;
  }

  beforeEach(() => {
    now = T0;
  });

  it('answers history_exhausted after sweep when events older than the TTL were dropped', async () => {
    const bus = memoryBus({ historyTtlMs: 1000 });
    now = T0 + 1;
    const old = await publish(bus, 'a');
    now = T0 + 500;
    const kept = await publish(bus, 'a');
    now = T0 + 1001; // `old` is 1000 ms old: past the TTL; `kept` is not
    await bus.sweep();
    const before = formatEventId({ ms: T0, seq: 0 });
    expect(await bus.replay(all, before)).to.deep.equal({ kind: 'reset', reason: 'history_exhausted', headId: kept.id });
    const after = await bus.replay(all, old.id);
    expect(after.kind).to.equal('events');
    expect(after.kind === 'events' && after.events.map((e) => e.id)).to.deep.equal([kept.id]);
  });

  it('answers history_exhausted when events expired even though sweep has not run', async () => {
    const bus = memoryBus({ historyTtlMs: 1000 });
    now = T0 + 1;
    const old = await publish(bus, 'a');
    now = T0 + 5000;
    const result = await bus.replay(all, formatEventId({ ms: T0, seq: 0 }));
    expect(result).to.deep.equal({ kind: 'reset', reason: 'history_exhausted', headId: old.id });
  });

  it('replays events younger than the TTL when the clock has not passed it', async () => {
    const bus = memoryBus({ historyTtlMs: 1000 });
    now = T0 + 1;
    const event = await publish(bus, 'a');
    now = T0 + 1000;
    await bus.sweep();
    const result = await bus.replay(all, formatEventId({ ms: T0, seq: 0 }));
    expect(result.kind === 'events' && result.events.map((e) => e.id)).to.deep.equal([event.id]);
  });

  it('answers history_exhausted for an id older than an evicted topic when maxTopics is exceeded', async () => {
    const bus = memoryBus({ maxTopics: 2 });
    now = T0 + 1;
    const evicted = await publish(bus, 'first');
    now = T0 + 2;
    const second = await publish(bus, 'second');
    now = T0 + 3;
    const third = await publish(bus, 'third'); // evicts `first`, the least recently published topic
    const beforeEvicted = formatEventId({ ms: T0, seq: 0 });
    expect(await bus.replay(all, beforeEvicted)).to.deep.equal({ kind: 'reset', reason: 'history_exhausted', headId: third.id });
    // Even a selector that never matched the evicted topic cannot prove nothing was lost.
    expect((await bus.replay([parseSelector('second')], beforeEvicted)).kind).to.equal('reset');
    const fromEvicted = await bus.replay(all, evicted.id);
    expect(fromEvicted.kind === 'events' && fromEvicted.events.map((e) => e.id)).to.deep.equal([second.id, third.id]);
  });

  it('keeps a topic that was published to recently when another topic is evicted', async () => {
    const bus = memoryBus({ maxTopics: 2 });
    now = T0 + 1;
    await publish(bus, 'a');
    now = T0 + 2;
    const b = await publish(bus, 'b');
    now = T0 + 3;
    const a2 = await publish(bus, 'a'); // `a` is now the most recent; `b` is the one to go
    now = T0 + 4;
    const c = await publish(bus, 'c');
    const result = await bus.replay(all, b.id);
    expect(result.kind === 'events' && result.events.map((e) => e.id)).to.deep.equal([a2.id, c.id]);
    expect((await bus.replay(all, formatEventId({ ms: T0 + 1, seq: 0 }))).kind).to.equal('reset');
  });

  it('answers history_exhausted when the id is from before the bus started', async () => {
    const bus = memoryBus();
    now = T0 + 10;
    const event = await publish(bus, 'a');
    const earlier = formatEventId({ ms: T0 - 1, seq: 5 });
    expect(await bus.replay(all, earlier)).to.deep.equal({ kind: 'reset', reason: 'history_exhausted', headId: event.id });
  });

  it('answers history_exhausted with no head when nothing was published and the id is from before the start', async () => {
    const bus = memoryBus();
    expect(await bus.replay(all, formatEventId({ ms: T0 - 1000, seq: 0 }))).to.deep.equal({
      kind: 'reset',
      reason: 'history_exhausted',
      headId: undefined,
    });
    const fromStart = await bus.replay(all, formatEventId({ ms: T0, seq: 0 }));
    expect(fromStart).to.deep.equal({ kind: 'events', events: [] });
  });

  it('replays everything since the start when the id is the start id', async () => {
    const bus = memoryBus();
    const e1 = await publish(bus, 'a'); // the clock has not moved: same millisecond as the start
    now = T0 + 1;
    const e2 = await publish(bus, 'b');
    const result = await bus.replay(all, formatEventId({ ms: T0, seq: 0 }));
    expect(result.kind === 'events' && result.events.map((e) => e.id)).to.deep.equal([e1.id, e2.id]);
  });

  it('answers history_exhausted when historySize is 0 and an event was published', async () => {
    const bus = memoryBus({ historySize: 0 });
    now = T0 + 1;
    const event = await publish(bus, 'a');
    expect((await bus.replay(all, formatEventId({ ms: T0, seq: 0 }))).kind).to.equal('reset');
    expect(await bus.replay(all, event.id)).to.deep.equal({ kind: 'events', events: [] });
  });
});
