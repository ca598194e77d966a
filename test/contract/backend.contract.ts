import { expect } from 'chai';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { RevocationList } from '../../src/auth/revocations.js';
import type { AccessClaims } from '../../src/auth/token-service.js';
import type { Backend, BackendDeps, LocalStreams } from '../../src/backends/backend.js';
import type { BusEvent } from '../../src/bus/event-bus.js';
import { compareEventIds, parseEventId } from '../../src/bus/event-id.js';
import type { PresenceChange, PresenceStore } from '../../src/presence/presence-store.js';
import { parseSelector } from '../../src/topics/selector.js';
import { backendDeps } from '../helpers/backend-deps.js';
import { rejection } from '../helpers/errors.js';

/** What a backend's test file hands the contract. */
export interface ContractBackends {
  /**
   * Opens one instance of the deployment under test (`maxStreamsPerUser` 2). A backend shared by
   * many processes may be asked several times per test, and those instances share their state.
   */
  open(deps: BackendDeps): Promise<Backend>;
  /** Deletes what the tests left behind (after every instance was closed). */
  cleanUp(): Promise<void>;
}

export const CONTRACT_MAX_STREAMS_PER_USER = 2;
/** PRESENCE_LEASE of the contract's backends (the shortest allowed), with PRESENCE_LEAVE_DELAY 0. */
export const CONTRACT_PRESENCE_LEASE_MS = 3000;

const claims = (subject: string): AccessClaims => ({
  subject,
  tokenId: 'jti',
  clientId: 'web',
  sessionId: undefined,
  issuedAt: Math.floor(Date.now() / 1000),
  expiresAt: Math.floor(Date.now() / 1000) + 300,
  grants: { publish: [], subscribe: ['**'] },
  publish: [],
  subscribe: [parseSelector('**')],
  presence: [],
});

/** Every presence change a store tells, in order. */
function recordChanges(store: PresenceStore): PresenceChange[] {
  const seen: PresenceChange[] = [];
  store.onChange((change) => seen.push(change));
  return seen;
}

const describeChange = (change: PresenceChange) =>
  change.kind === 'disconnected'
    ? `disconnected ${change.subject}`
    : 'subject' in change
      ? `${change.kind} ${change.topic} ${change.subject}`
      : `${change.kind} ${change.topic}`;
const newer = (a: string, b: string) => compareEventIds(parseEventId(a)!, parseEventId(b)!) > 0;

async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The behaviour every `Backend` shares, on top of the bus and refresh-token contracts: the pieces
 * are wired to one another and to the deps they were given, stream slots and login counters
 * enforce their limits, a renewal for a stream nobody holds is 404, and close releases
 * everything. For a backend shared by many processes, also what crosses between instances.
 */
/**
 * @param many whether the backend is shared by several processes; only then are the
 *   across-instances cases defined (a single-process backend has no other instance to reach).
 */
export function backendContract(name: string, many: boolean, backends: () => ContractBackends): void {
  describe(`Backend contract: ${name}`, () => {
    let impl: ContractBackends;
    let opened: Backend[];

    const deps = backendDeps;
    const open = async (overrides: Partial<BackendDeps> = {}) => {
      const backend = await impl.open(deps(overrides));
      opened.push(backend);
      return backend;
    };

    beforeEach(() => {
      impl = backends();
      opened = [];
    });

    afterEach(async () => {
      for (const backend of opened) await backend.close();
      await impl.cleanUp();
    });

    it('is ready once open', async () => {
      const backend = await open();
      expect(backend.unavailableReason()).to.equal(undefined);
    });

    it('delivers a published event through its bus and reports the fan-out to onDispatch', async () => {
      const dispatched: number[] = [];
      const backend = await open({ onDispatch: (delivered) => dispatched.push(delivered) });
      const received: BusEvent[] = [];
      const subscription = backend.bus.subscribe([parseSelector('news/**')], { deliver: (event) => received.push(event) });
      const { event } = await backend.bus.publish({ topics: ['news/today'], type: 'message', data: '1', publisher: 'p' });
      await eventually(() => received.length === 1, 'the live event');
      expect(received[0]!.id).to.equal(event.id);
      await eventually(() => dispatched.includes(1), 'the dispatch report');
      subscription.unsubscribe();
    });

    it('holds at most maxStreamsPerUser stream slots per subject, and frees one on release', async () => {
      const backend = await open();
      for (let i = 0; i < CONTRACT_MAX_STREAMS_PER_USER; i++) await backend.streamSlots.acquire('alice', `s${i}`);
      const refused = await rejection(backend.streamSlots.acquire('alice', 'one-too-many'));
      expect(refused).to.include({ status: 429, code: 'too_many_streams' });
      await backend.streamSlots.acquire('bob', 'b0');
      backend.streamSlots.release('alice', 's0');
      backend.streamSlots.release('alice', 'never-held');
      await retryUntilAcquired(backend, 'alice', 'again');
    });

    it('counts login attempts up to the limit, then refuses with the time to wait, and forgets a deleted key', async () => {
      const backend = await open();
      const counter = backend.attemptCounters(`contract-${Math.random().toString(36).slice(2)}`, 2, 60_000);
      await counter.consume('alice');
      await counter.consume('alice');
      const over = await rejection(counter.consume('alice'));
      expect(over).to.be.instanceOf(RateLimiterRes);
      expect((over as RateLimiterRes).msBeforeNext)
        .to.be.greaterThan(0)
        .and.at.most(60_000);
      expect((await counter.get('alice'))?.consumedPoints).to.be.at.least(2);
      expect(await counter.get('bob')).to.equal(null);
      await counter.delete('alice');
      await counter.consume('alice');
    });

    it('answers 404 connection_not_found when no instance holds the stream to renew', async () => {
      const backend = await open();
      const refused = await rejection(backend.renewals.forward('no-such-stream', claims('alice')));
      expect(refused).to.include({ status: 404, code: 'connection_not_found' });
    });

    it('issues and rotates refresh tokens through its store', async () => {
      const backend = await open();
      const grant = await backend.refreshTokens.issue('alice', 'web');
      expect((await backend.refreshTokens.rotate(grant.token)).ok).to.equal(true);
    });

    it('hands a browser ticket out once, and never after its lifetime', async () => {
      const backend = await open();
      const grant = { subject: 'shop~alice', clientId: 'shop', grants: { publish: [], subscribe: ['users/shop~alice/**'] }, issuedAt: 1 };
      await backend.tickets.put('ticket-1', grant, 60_000);
      expect(await backend.tickets.take('ticket-1')).to.deep.equal(grant);
      expect(await backend.tickets.take('ticket-1')).to.equal(undefined);
      expect(await backend.tickets.take('never-issued')).to.equal(undefined);
    });

    it('sweeps without error and closes more than once', async () => {
      const backend = await open();
      await backend.sweep();
      await backend.close();
      await backend.close();
    });

    describe('presence', () => {
      it('tells a first member as member-added and her departure as member-removed (left), once each', async () => {
        const { presence } = await open();
        const seen = recordChanges(presence);
        presence.addMember('documents/1', 'alice');
        presence.addMember('documents/1', 'alice');
        await eventually(() => seen.length === 1, 'member-added');
        expect(seen[0]).to.include({ kind: 'member-added', topic: 'documents/1', subject: 'alice', local: true });
        expect(seen[0]!.at).to.be.closeTo(Date.now(), 5000);
        presence.removeMember('documents/1', 'alice');
        presence.removeMember('documents/1', 'alice');
        presence.addMember('documents/1', 'bob');
        await eventually(() => seen.length === 3, 'member-removed and the next member-added');
        expect(seen.map(describeChange)).to.deep.equal([
          'member-added documents/1 alice',
          'member-removed documents/1 alice',
          'member-added documents/1 bob',
        ]);
        expect(seen[1]).to.include({ reason: 'left' });
        expect(newer(seen[1]!.version, seen[0]!.version) && newer(seen[2]!.version, seen[1]!.version), 'versions increase').to.equal(true);
      });

      it('pages members in byte order with their count, the time they came, and the key of the next page', async () => {
        const { presence } = await open();
        const seen = recordChanges(presence);
        const before = Date.now();
        for (const subject of ['carol', 'alice', 'dave', 'bob', 'b.x']) presence.addMember('rooms/1', subject);
        await eventually(() => seen.length === 5, 'five members');
        const first = await presence.members('rooms/1', { limit: 2 });
        expect(first.members.map((m) => m.subject)).to.deep.equal(['alice', 'b.x']);
        expect(first.count).to.equal(5);
        expect(first.next).to.equal('b.x');
        expect(first.members[0]!.since).to.be.within(before - 1000, Date.now() + 1000);
        const second = await presence.members('rooms/1', { limit: 2, after: first.next });
        expect(second.members.map((m) => m.subject)).to.deep.equal(['bob', 'carol']);
        const last = await presence.members('rooms/1', { limit: 2, after: second.next });
        expect(last.members.map((m) => m.subject)).to.deep.equal(['dave']);
        expect(last.next).to.equal(undefined);
        const empty = await presence.members('rooms/none', { limit: 10 });
        expect(empty).to.include({ count: 0, next: undefined });
        expect(empty.members).to.deep.equal([]);
      });

      it('gives each page the version of the newest change it reflects', async () => {
        const { presence } = await open();
        const seen = recordChanges(presence);
        presence.addMember('rooms/v', 'alice');
        await eventually(() => seen.length === 1, 'member-added');
        const page = await presence.members('rooms/v', { limit: 10 });
        expect(compareEventIds(parseEventId(page.version)!, parseEventId(seen[0]!.version)!)).to.be.at.least(0);
        presence.addMember('rooms/v', 'bob');
        await eventually(() => seen.length === 2, 'the second member-added');
        expect(newer(seen[1]!.version, page.version), 'a later change is newer than the page').to.equal(true);
      });

      it('lists the topics that have members, with their counts, and forgets a topic when its last member leaves', async () => {
        const { presence } = await open();
        const seen = recordChanges(presence);
        presence.addMember('t/b', 'alice');
        presence.addMember('t/a', 'alice');
        presence.addMember('t/a', 'bob');
        presence.addMember('t/c', 'carol');
        await eventually(() => seen.length === 4, 'four member-added');
        const page = await presence.topics({ limit: 2 });
        expect(page.topics).to.deep.equal([
          { topic: 't/a', count: 2 },
          { topic: 't/b', count: 1 },
        ]);
        expect((await presence.topics({ limit: 2, after: page.next })).topics).to.deep.equal([{ topic: 't/c', count: 1 }]);
        presence.removeMember('t/c', 'carol');
        await eventually(() => seen.length === 5, 'member-removed');
        expect((await presence.topics({ limit: 10 })).topics.map((t) => t.topic)).to.deep.equal(['t/a', 't/b']);
        expect(await presence.memberCount()).to.equal(3);
      });

      it('tells topic-occupied for the first holder of a selector and topic-vacated when it lets go', async () => {
        const { presence } = await open();
        const seen = recordChanges(presence);
        presence.occupy('news/*');
        presence.occupy('news/*');
        presence.vacate('news/*');
        presence.vacate('news/*');
        await eventually(() => seen.length === 2, 'occupied and vacated');
        expect(seen.map(describeChange)).to.deep.equal(['topic-occupied news/*', 'topic-vacated news/*']);
        expect(seen.every((change) => change.local)).to.equal(true);
      });

      it('lists open connections by subject, each with its topics, the time it opened and its instance', async () => {
        const { presence } = await open();
        const openedAt = Date.now();
        presence.openConnection({ connectionId: 'c2', subject: 'alice', topics: ['documents/1'], openedAt });
        presence.openConnection({ connectionId: 'c1', subject: 'alice', topics: ['users/alice/**', 'public/*'], openedAt });
        presence.openConnection({ connectionId: 'c3', subject: 'bob', topics: ['public/*'], openedAt });
        presence.openConnection({ connectionId: 'c4', subject: 'carol', topics: ['public/*'], openedAt });
        presence.closeConnection('carol', 'c4');
        presence.closeConnection('carol', 'never-opened');
        let mine: Awaited<ReturnType<PresenceStore['connections']>> | undefined;
        await eventuallyAsync(async () => {
          mine = await presence.connections({ limit: 10 }, 'alice');
          return mine.subjects[0]!.connections.length === 2;
        }, 'both of her connections');
        expect(mine!.subjects[0]!.connections).to.deep.equal([
          { connectionId: 'c1', subject: 'alice', topics: ['users/alice/**', 'public/*'], openedAt, instance: 'test-instance' },
          { connectionId: 'c2', subject: 'alice', topics: ['documents/1'], openedAt, instance: 'test-instance' },
        ]);
        const page = await presence.connections({ limit: 1 });
        expect(page.subjects.map((s) => s.subject)).to.deep.equal(['alice']);
        const rest = await presence.connections({ limit: 10, after: page.next });
        expect(rest.subjects.map((s) => s.subject)).to.deep.equal(['bob']);
        expect(rest.next).to.equal(undefined);
        expect((await presence.connections({ limit: 10 }, 'carol')).subjects).to.deep.equal([{ subject: 'carol', connections: [] }]);
      });

      it('stops telling a listener once it unsubscribes', async () => {
        const { presence } = await open();
        const kept = recordChanges(presence);
        const dropped: PresenceChange[] = [];
        presence.onChange((change) => dropped.push(change))();
        presence.addMember('rooms/u', 'alice');
        await eventually(() => kept.length === 1, 'the kept listener');
        expect(dropped).to.deep.equal([]);
      });
    });

    if (many)
      describe('across instances', () => {
        it('tells every instance of a member once, when her first instance holds her and when her last lets go', async () => {
          const a = await open({ instance: 'a' });
          const b = await open({ instance: 'b' });
          const onA = recordChanges(a.presence);
          const onB = recordChanges(b.presence);
          a.presence.addMember('documents/x', 'alice');
          await eventually(() => onA.length === 1 && onB.length === 1, 'member-added on both');
          b.presence.addMember('documents/x', 'alice');
          a.presence.removeMember('documents/x', 'alice');
          a.presence.addMember('documents/x', 'bob'); // a positive signal: alice's changes would come before it
          await eventually(() => onA.length === 2 && onB.length === 2, "bob's member-added on both");
          expect(onB.map(describeChange)).to.deep.equal(['member-added documents/x alice', 'member-added documents/x bob']);
          expect([onA[0]!.local, onB[0]!.local]).to.deep.equal([true, false]);
          expect((await b.presence.members('documents/x', { limit: 10 })).members.map((m) => m.subject)).to.deep.equal(['alice', 'bob']);
          b.presence.removeMember('documents/x', 'alice');
          await eventually(() => onA.length === 3 && onB.length === 3, 'member-removed on both');
          expect(onA[2]).to.include({ kind: 'member-removed', subject: 'alice', reason: 'left', local: false });
          expect(onB[2]).to.include({ kind: 'member-removed', subject: 'alice', reason: 'left', local: true });
        });

        it("removes a stopped instance's members, occupancy and connections once, as lease_expired, unless another instance holds them", async () => {
          const leaving = await open({ instance: 'leaving' });
          const staying = await open({ instance: 'staying' });
          const seen = recordChanges(staying.presence);
          leaving.presence.addMember('rooms/lease', 'alice');
          leaving.presence.addMember('rooms/lease', 'bob');
          leaving.presence.occupy('rooms/*');
          leaving.presence.openConnection({ connectionId: 'gone-1', subject: 'bob', topics: ['rooms/lease'], openedAt: Date.now() });
          staying.presence.addMember('rooms/lease', 'alice'); // alice came back on the other instance
          await eventually(() => seen.length === 3, 'two members and the occupancy');
          const stoppedAt = Date.now();
          await leaving.close(); // the lease is cut to the leave delay (0 here), as after a crash it would lapse
          await eventually(() => seen.length >= 6, 'the lapsed lease reaped', CONTRACT_PRESENCE_LEASE_MS * 1.1 + 5000);
          const told = seen.slice(3);
          expect(told.map(describeChange)).to.have.members(['member-removed rooms/lease bob', 'topic-vacated rooms/*', 'disconnected bob']);
          expect(told.every((change) => change.local)).to.equal(true);
          expect(told.find((change) => change.kind === 'member-removed')).to.include({ reason: 'lease_expired' });
          expect(told.find((change) => change.kind === 'disconnected')).to.deep.include({
            connectionId: 'gone-1',
            topics: ['rooms/lease'],
          });
          expect(Date.now() - stoppedAt).to.be.below(CONTRACT_PRESENCE_LEASE_MS * 1.1 + 5000);
          const members = await staying.presence.members('rooms/lease', { limit: 10 });
          expect(members.members.map((m) => m.subject)).to.deep.equal(['alice']);
          expect((await staying.presence.connections({ limit: 10 }, 'bob')).subjects[0]!.connections).to.deep.equal([]);
          // Nothing more: a second reaper finds nothing left to tell.
          staying.presence.addMember('rooms/lease', 'zed');
          await eventually(() => seen.some((change) => 'subject' in change && change.subject === 'zed'), 'a later change');
          expect(seen.length).to.equal(7);
        });

        it('counts stream slots over every instance', async () => {
          const a = await open();
          const b = await open();
          await a.streamSlots.acquire('carol', 'a0');
          await b.streamSlots.acquire('carol', 'b0');
          expect(await rejection(a.streamSlots.acquire('carol', 'a1'))).to.include({ code: 'too_many_streams' });
          expect(await rejection(b.streamSlots.acquire('carol', 'b1'))).to.include({ code: 'too_many_streams' });
        });

        it('forwards a renewal to the instance that holds the stream, with its answer', async () => {
          const held: LocalStreams = {
            renewIfHeld: (id, renewing) =>
              id === 'held-here' ? { connectionId: id, expiresAt: new Date(renewing.expiresAt * 1000).toISOString() } : undefined,
          };
          await open({ localStreams: held });
          const asking = await open();
          const answer = await asking.renewals.forward('held-here', claims('alice'));
          expect(answer.connectionId).to.equal('held-here');
        });

        it('carries a revocation made on one instance to the others', async () => {
          const here = new RevocationList({ retentionMs: 60_000 });
          const there = new RevocationList({ retentionMs: 60_000 });
          await open({ revocations: here });
          await open({ revocations: there });
          const heard: string[] = [];
          there.onRevoke((revocation, origin) => heard.push(`${revocation.kind}:${origin}`));
          here.revokeSession('family-1');
          await eventually(() => heard.includes('session:remote'), 'the revocation on the other instance');
          expect(there.isRevoked({ subject: 'x', sessionId: 'family-1', issuedAt: 0 })).to.equal(true);
        });

        it('redeems a ticket put on one instance exactly once over all of them', async () => {
          const a = await open();
          const b = await open();
          const grant = { subject: 'shop~bob', clientId: 'shop', grants: { publish: [], subscribe: [] }, issuedAt: 1 };
          await a.tickets.put('shared-ticket', grant, 60_000);
          const taken = await Promise.all([a.tickets.take('shared-ticket'), b.tickets.take('shared-ticket')]);
          expect(taken.filter((value) => value !== undefined)).to.deep.equal([grant]);
        });

        it('shares login counters between instances', async () => {
          const name = `contract-${Math.random().toString(36).slice(2)}`;
          const a = (await open()).attemptCounters(name, 1, 60_000);
          const b = (await open()).attemptCounters(name, 1, 60_000);
          await a.consume('dave');
          expect(await rejection(b.consume('dave'))).to.be.instanceOf(RateLimiterRes);
        });
      });
  });
}

async function eventuallyAsync(condition: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A release may reach a shared store a moment later; the freed slot must be taken within the wait. */
async function retryUntilAcquired(backend: Backend, subject: string, id: string): Promise<void> {
  const deadline = performance.now() + 5000;
  for (;;) {
    try {
      await backend.streamSlots.acquire(subject, id);
      return;
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
