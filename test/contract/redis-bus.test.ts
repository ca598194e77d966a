import { expect } from 'chai';
import type { PublishRequest } from '../../src/bus/event-bus.js';
import { formatEventId } from '../../src/bus/event-id.js';
import { RedisBus } from '../../src/backends/redis/redis-bus.js';
import { parseSelector } from '../../src/topics/selector.js';
import { deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { eventBusContract } from './event-bus.contract.js';

// The same contract as the memory bus, unchanged, against a real redis-server (TEST_REDIS_URL).
// The global stream is trimmed to `historySize` events: on Redis, history is bounded over all
// topics, not per topic (docs/architecture.md), which the contract's single-topic case cannot tell apart.
eventBusContract('redis', async ({ clock, historySize }) => {
  const keyPrefix = uniquePrefix('contract');
  const bus = await RedisBus.connect({
    url: TEST_REDIS_URL,
    keyPrefix,
    maxLen: historySize,
    historyTtlMs: 3_600_000,
    idempotencyTtlMs: 86_400_000,
    clock,
  });
  return {
    bus,
    close: async () => {
      await bus.close();
      await deleteKeys(TEST_REDIS_URL, keyPrefix);
    },
  };
});

describe('RedisBus', () => {
  let keyPrefix: string;
  const buses: RedisBus[] = [];
  const all = [parseSelector('**')];

  async function bus(): Promise<RedisBus> {
    const created = await RedisBus.connect({
      url: TEST_REDIS_URL,
      keyPrefix,
      maxLen: 1000,
      historyTtlMs: 3_600_000,
      idempotencyTtlMs: 60_000,
    });
    buses.push(created);
    return created;
  }

  const publish = (on: RedisBus, topic: string, extra: Partial<PublishRequest> = {}) =>
    on.publish({ topics: [topic], type: 'message', data: '{}', publisher: 'p', ...extra });

  beforeEach(() => {
    keyPrefix = uniquePrefix('redis-bus');
  });

  afterEach(async () => {
    for (const created of buses.splice(0)) await created.close();
    await deleteKeys(TEST_REDIS_URL, keyPrefix);
  });

  it('delivers what one instance publishes to subscribers of another, in one order', async () => {
    const a = await bus();
    const b = await bus();
    const seen: string[] = [];
    b.subscribe(all, { deliver: (event) => seen.push(event.id) });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await publish(i % 2 === 0 ? a : b, `t/${i}`)).event.id);
    const deadline = Date.now() + 2000;
    while (seen.length < ids.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen).to.deep.equal(ids);
  });

  it('recognises an idempotency key used on another instance', async () => {
    const a = await bus();
    const b = await bus();
    const first = await publish(a, 'orders/1', { idempotencyKey: 'k-1' });
    const again = await publish(b, 'orders/1', { idempotencyKey: 'k-1' });
    expect(again.duplicate).to.equal(true);
    expect(again.event.id).to.equal(first.event.id);
    expect(again.event.frames[0]!.equals(first.event.frames[0]!)).to.equal(true);
  });

  it('answers history_exhausted for an id from before Redis lost its data, and unknown_event_id before any event', async () => {
    const a = await bus();
    expect(await a.replay(all, formatEventId({ ms: Date.now() - 1000, seq: 0 }))).to.deep.equal({
      kind: 'reset',
      reason: 'unknown_event_id',
      headId: undefined,
    });
    const old = (await publish(a, 'a')).event;
    await deleteKeys(TEST_REDIS_URL, keyPrefix); // what a restart without persistence does
    await new Promise((resolve) => setTimeout(resolve, 2));
    const fresh = (await publish(a, 'a')).event;
    expect(await a.replay(all, old.id)).to.deep.equal({ kind: 'reset', reason: 'history_exhausted', headId: fresh.id });
    expect(await a.replay(all, fresh.id)).to.deep.equal({ kind: 'events', events: [] });
  });

  it('answers history_exhausted once the sweep has trimmed events older than the TTL', async () => {
    let now = Date.now();
    const a = await RedisBus.connect({
      url: TEST_REDIS_URL,
      keyPrefix,
      maxLen: 1000,
      historyTtlMs: 1000,
      idempotencyTtlMs: 60_000,
      clock: () => now,
    });
    buses.push(a);
    const first = (await publish(a, 'a')).event;
    const old = (await publish(a, 'a')).event;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const kept = (await publish(a, 'a')).event;
    expect((await a.replay(all, first.id)).kind).to.equal('events');
    now = kept.idParts.ms + 1000; // `first` and `old` are past the TTL, `kept` exactly at it
    await a.sweep();
    expect(await a.replay(all, first.id)).to.deep.equal({ kind: 'reset', reason: 'history_exhausted', headId: kept.id });
    const fromOld = await a.replay(all, old.id);
    expect(fromOld.kind === 'events' && fromOld.events.map((event) => event.id)).to.deep.equal([kept.id]);
  });
});
