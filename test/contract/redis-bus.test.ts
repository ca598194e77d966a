import { expect } from 'chai';
import type { PublishRequest } from '../../src/bus/event-bus.js';
import { formatEventId } from '../../src/bus/event-id.js';
import { RedisBus } from '../../src/backends/redis/redis-bus.js';
import { parseSelector } from '../../src/topics/selector.js';
import { deleteKeys, REDIS_TARGETS, TEST_REDIS_CLUSTER, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { eventBusContract } from './event-bus.contract.js';

// The same contract as the memory bus, unchanged, against a real redis-server (TEST_REDIS_URL) and a
// real 3-primary Redis Cluster, with the same meaning of `historySize`: events kept per topic.
for (const [name, url] of REDIS_TARGETS) {
  eventBusContract(name, async ({ clock, historySize }) => {
    const keyPrefix = uniquePrefix('contract');
    const bus = await RedisBus.connect({
      url,
      keyPrefix,
      historySize,
      maxTopics: 10_000,
      historyTtlMs: 3_600_000,
      idempotencyTtlMs: 86_400_000,
      clock,
    });
    return {
      bus,
      close: async () => {
        await bus.close();
        await deleteKeys(url, keyPrefix);
      },
    };
  });
}

describe('RedisBus', () => {
  let keyPrefix: string;
  const buses: RedisBus[] = [];
  const all = [parseSelector('**')];

  async function bus(url = TEST_REDIS_URL): Promise<RedisBus> {
    const created = await RedisBus.connect({
      url,
      keyPrefix,
      historySize: 1000,
      maxTopics: 10_000,
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
    for (const [, url] of REDIS_TARGETS) await deleteKeys(url, keyPrefix);
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

  it('gives two instances on Redis Cluster one order over topics in different partitions, with an exact resume', async () => {
    const a = await bus(TEST_REDIS_CLUSTER);
    const b = await bus(TEST_REDIS_CLUSTER);
    const selectors = ['c/1', 'c/2', 'c/3'].map((source) => parseSelector(source));
    const seen: string[] = [];
    b.subscribe(selectors, { deliver: (event) => seen.push(event.id) });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await publish(i % 2 === 0 ? a : b, `c/${(i % 3) + 1}`)).event.id);
    const deadline = Date.now() + 2000;
    while (seen.length < ids.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen).to.deep.equal(ids);
    const resumed = await a.replay(selectors, ids[4]!);
    expect(resumed.kind === 'events' && resumed.events.map((event) => event.id)).to.deep.equal(ids.slice(5));
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
      historySize: 1000,
      maxTopics: 10_000,
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
    now = kept.idParts.ms + 999; // `first` and `old` are past the TTL (as old as it or older), `kept` 1 ms short of it
    await a.sweep();
    expect(await a.replay(all, first.id)).to.deep.equal({ kind: 'reset', reason: 'history_exhausted', headId: kept.id });
    const fromOld = await a.replay(all, old.id);
    expect(fromOld.kind === 'events' && fromOld.events.map((event) => event.id)).to.deep.equal([kept.id]);
  });

  it('keeps each topic its own HISTORY_SIZE: a busy topic does not push a quiet one out', async () => {
    const a = await RedisBus.connect({
      url: TEST_REDIS_URL,
      keyPrefix,
      historySize: 5,
      maxTopics: 100,
      historyTtlMs: 3_600_000,
      idempotencyTtlMs: 60_000,
    });
    buses.push(a);
    const start = (await publish(a, 'start')).event;
    const quiet = (await publish(a, 'quiet')).event;
    for (let i = 0; i < 20; i++) await publish(a, 'busy');
    const fromStart = await a.replay([parseSelector('quiet')], start.id);
    expect(fromStart.kind === 'events' && fromStart.events.map((event) => event.id)).to.deep.equal([quiet.id]);
    expect((await a.replay([parseSelector('busy')], start.id)).kind).to.equal('reset');
  });

  it('forgets the least recently published topic past maxTopics, and answers history_exhausted across it', async () => {
    const a = await RedisBus.connect({
      url: TEST_REDIS_URL,
      keyPrefix,
      historySize: 10,
      maxTopics: 2,
      historyTtlMs: 3_600_000,
      idempotencyTtlMs: 60_000,
    });
    buses.push(a);
    const a1 = (await publish(a, 'a')).event;
    const first = (await publish(a, 'first')).event;
    const a2 = (await publish(a, 'a')).event; // `first` is now the least recently published
    const third = (await publish(a, 'third')).event; // one topic too many: `first` goes
    const deadline = Date.now() + 2000;
    // Eviction follows the publish that passed the bound; wait for it to show. Even a selector that
    // never matched the evicted topic cannot prove nothing was lost (the memory bus's rule).
    for (;;) {
      if ((await a.replay([parseSelector('a')], a1.id)).kind === 'reset') break;
      if (Date.now() > deadline) throw new Error('first was never evicted');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const fromFirst = await a.replay(all, first.id);
    expect(fromFirst.kind === 'events' && fromFirst.events.map((event) => event.id)).to.deep.equal([a2.id, third.id]);
  });

  it('follows only the partition logs its subscriptions can match: one for an exact topic, all for a wildcard, none when they end', async () => {
    const a = await bus();
    expect(a.followedPartitions.size).to.equal(0);
    const exact = a.subscribe([parseSelector('users/alice/inbox')], { deliver: () => undefined });
    expect(a.followedPartitions.size).to.equal(1);
    const wildcard = a.subscribe([parseSelector('users/*/inbox')], { deliver: () => undefined });
    expect(a.followedPartitions.size).to.equal(16);
    wildcard.unsubscribe();
    expect(a.followedPartitions.size).to.equal(1);
    exact.unsubscribe();
    expect(a.followedPartitions.size).to.equal(0);
  });
});
