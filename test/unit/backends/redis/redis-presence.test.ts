import { expect } from 'chai';
import type { RedisClient } from '../../../../src/backends/redis/connect.js';
import { connectRedis } from '../../../../src/backends/redis/connect.js';
import { RedisPresence } from '../../../../src/backends/redis/redis-presence.js';
import type { PresenceChange } from '../../../../src/presence/presence-store.js';
import { deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../../../helpers/redis.js';
import { FakeTimers } from '../../../webhooks/fake-timers.js';

const LEASE_MS = 20_000;

async function eventually(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const brief = (change: PresenceChange) =>
  `${change.kind} ${'subject' in change ? change.subject : ''} ${'reason' in change ? change.reason : ''}`.trim();

/**
 * The lease logic of the Redis presence store, on a real Redis with a fake clock and fake timers:
 * time moves only when the test says, so "not before the lease ends, and within a tenth of it
 * after" is tested without sleeping for twenty seconds.
 */
describe('RedisPresence leases (fake clock, real Redis)', () => {
  let keyPrefix: string;
  let clients: RedisClient[];
  let stores: RedisPresence[];
  let now: number;

  async function instance(name: string, options: { leaveDelayMs?: number } = {}) {
    const onError = () => undefined;
    const commands = await connectRedis(TEST_REDIS_URL, 'commands', onError);
    const blocking = await connectRedis(TEST_REDIS_URL, 'blocking', onError);
    clients.push(commands, blocking);
    const timers = new FakeTimers();
    const store = new RedisPresence({
      commands,
      blocking,
      keyPrefix,
      instance: name,
      leaseMs: LEASE_MS,
      leaveDelayMs: options.leaveDelayMs ?? 0,
      clock: () => now,
      timers,
      onError,
    });
    await store.start();
    stores.push(store);
    const seen: PresenceChange[] = [];
    store.onChange((change) => seen.push(change));
    return { store, timers, seen, commands };
  }

  beforeEach(() => {
    keyPrefix = uniquePrefix('presence-lease');
    clients = [];
    stores = [];
    now = Date.now();
  });

  afterEach(async () => {
    for (const store of stores) await store.stop();
    for (const client of clients) client.disconnect();
    await deleteKeys(TEST_REDIS_URL, keyPrefix);
  });

  it('schedules a renewal every quarter of the lease and a reaping every tenth', async () => {
    const { timers } = await instance('a');
    expect(timers.delays()).to.deep.equal([0, LEASE_MS / 4]);
    await timers.advance(0);
    await eventually(() => timers.delays().includes(LEASE_MS / 10), 'the next reaping scheduled');
    expect(timers.delays()).to.deep.equal([LEASE_MS / 10, LEASE_MS / 4]);
  });

  it('keeps the members of an instance that renews, however long it runs', async () => {
    const a = await instance('a');
    const b = await instance('b');
    a.store.addMember('rooms/1', 'alice');
    await eventually(() => b.seen.length === 1, 'member-added');
    for (let step = 0; step < 12; step++) {
      now += LEASE_MS / 4;
      await a.store.renew();
      await b.store.reap();
    }
    a.store.removeMember('rooms/1', 'alice');
    await eventually(() => b.seen.length === 2, 'her departure');
    expect(b.seen.map(brief)).to.deep.equal(['member-added alice', 'member-removed alice left']);
  });

  it("reaps a silent instance's members, occupancy and connections once its lease ends, not before, once however many reap", async () => {
    const silent = await instance('silent');
    const b = await instance('b');
    const c = await instance('c');
    const started = now;
    silent.store.addMember('rooms/1', 'alice');
    silent.store.addMember('rooms/1', 'bob');
    silent.store.occupy('rooms/*');
    silent.store.openConnection({ connectionId: 'k1', subject: 'alice', topics: ['rooms/1'], openedAt: now });
    await eventually(() => b.seen.length === 3 && c.seen.length === 3, 'the changes on both');

    now = started + LEASE_MS - 1;
    await Promise.all([b.store.renew(), c.store.renew()]); // the reapers stay alive; the silent one does not renew
    await Promise.all([b.store.reap(), c.store.reap()]);
    expect((await b.store.members('rooms/1', { limit: 10 })).count, 'still present one millisecond before the lease ends').to.equal(2);

    now = started + LEASE_MS + LEASE_MS / 10;
    await Promise.all([b.store.reap(), c.store.reap(), b.store.reap()]);
    expect((await b.store.members('rooms/1', { limit: 10 })).count).to.equal(0);
    b.store.addMember('rooms/2', 'zed'); // comes after anything the reaping told
    await eventually(() => b.seen.some((change) => 'subject' in change && change.subject === 'zed'), 'a later change');
    const reaped = b.seen.slice(3, -1);
    expect(reaped.map(brief)).to.have.members([
      'member-removed alice lease_expired',
      'member-removed bob lease_expired',
      'topic-vacated',
      'disconnected alice lease_expired',
    ]);
    // Told once in all: on exactly one of the reapers it is local (that one sends the webhooks).
    await eventually(() => c.seen.length === b.seen.length, 'the same changes on c');
    const localCount = reaped.filter((change, i) => change.local || c.seen[3 + i]!.local).length;
    expect(localCount).to.equal(reaped.length);
    expect(reaped.filter((change, i) => change.local && c.seen[3 + i]!.local)).to.deep.equal([]);
    expect((await b.store.connections({ limit: 10 }, 'alice')).subjects[0]!.connections).to.deep.equal([]);
  });

  it('registers again at its next renewal after its lease lapsed, and holds what it holds again', async () => {
    const late = await instance('late');
    const b = await instance('b');
    late.store.addMember('rooms/1', 'alice');
    late.store.openConnection({ connectionId: 'k1', subject: 'alice', topics: ['rooms/1'], openedAt: now });
    await eventually(() => b.seen.length === 1, 'member-added');
    now += LEASE_MS / 2;
    await b.store.renew();
    now += LEASE_MS / 2 + 1;
    await b.store.reap();
    await eventually(() => b.seen.length === 3, 'the lapsed member and connection reaped');
    expect(b.seen.slice(1).map(brief)).to.have.members(['member-removed alice lease_expired', 'disconnected alice lease_expired']);
    await late.store.renew();
    await eventually(() => b.seen.length === 4, 'her return');
    expect(brief(b.seen[3]!)).to.equal('member-added alice');
    expect(b.seen[3]!.local).to.equal(false);
    await eventually(() => late.seen.length === 4, 'her return told to the late instance');
    expect(late.seen[3]!.local).to.equal(true);
    const connections = await b.store.connections({ limit: 10 }, 'alice');
    expect(connections.subjects[0]!.connections.map((connection) => connection.connectionId)).to.deep.equal(['k1']);
    // Renewed from here on: no further reaping.
    now += LEASE_MS / 2;
    await Promise.all([late.store.renew(), b.store.renew()]);
    now += LEASE_MS / 2;
    await b.store.reap();
    expect((await b.store.members('rooms/1', { limit: 10 })).count).to.equal(1);
  });

  it('cuts its lease to the leave delay when it stops, so members who come back elsewhere in time stay', async () => {
    const stopping = await instance('stopping', { leaveDelayMs: 5000 });
    const b = await instance('b');
    stopping.store.addMember('rooms/1', 'alice');
    stopping.store.addMember('rooms/1', 'bob');
    await eventually(() => b.seen.length === 2, 'both members');
    const stoppedAt = now;
    await b.store.renew();
    await stopping.store.stop();
    b.store.addMember('rooms/1', 'alice'); // alice reconnected to b within the delay
    await eventually(() => b.seen.length === 2 && b.commands.status === 'ready', 'settled');
    now = stoppedAt + 4999;
    await b.store.reap();
    expect((await b.store.members('rooms/1', { limit: 10 })).count).to.equal(2);
    now = stoppedAt + 5001;
    await b.store.reap();
    await eventually(() => b.seen.length === 3, "bob's departure");
    expect(b.seen.map(brief)).to.deep.equal(['member-added alice', 'member-added bob', 'member-removed bob lease_expired']);
    expect((await b.store.members('rooms/1', { limit: 10 })).members.map((m) => m.subject)).to.deep.equal(['alice']);
  });
});
