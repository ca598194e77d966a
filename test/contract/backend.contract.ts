import { expect } from 'chai';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { RevocationList } from '../../src/auth/revocations.js';
import type { AccessClaims } from '../../src/auth/token-service.js';
import type { Backend, BackendDeps, LocalStreams } from '../../src/backends/backend.js';
import type { BusEvent } from '../../src/bus/event-bus.js';
import { parseSelector } from '../../src/topics/selector.js';
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

    const deps = (overrides: Partial<BackendDeps> = {}): BackendDeps => ({
      clock: Date.now,
      revocations: new RevocationList({ retentionMs: 60_000 }),
      localStreams: { renewIfHeld: () => undefined },
      onDispatch: () => undefined,
      onError: () => undefined,
      ...overrides,
    });
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

    it('sweeps without error and closes more than once', async () => {
      const backend = await open();
      await backend.sweep();
      await backend.close();
      await backend.close();
    });

    if (many)
      describe('across instances', () => {
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
