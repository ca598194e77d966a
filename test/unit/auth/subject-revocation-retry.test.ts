import { expect } from 'chai';
import type { RefreshGrant, RefreshTokenStore, RotateResult } from '../../../src/auth/refresh-token-store.js';
import { withSubjectRevocationRetry } from '../../../src/auth/subject-revocation-retry.js';
import { MemoryRefreshTokenStore } from '../../../src/backends/memory/memory-refresh-token-store.js';
import { StorageUnavailableError } from '../../../src/backends/sqlite/storage-unavailable-error.js';
import { rejection } from '../../helpers/errors.js';

function granted(result: RotateResult): RefreshGrant {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.grant;
}

describe('withSubjectRevocationRetry', () => {
  let real: MemoryRefreshTokenStore;
  /** `revokeSubject` attempts that fail before one succeeds, as a full disk or a Redis outage would. */
  let failuresLeft: number;
  let revokeSubjectCalls: string[];
  /** A real store whose `revokeSubject` fails on demand: the one thing a unit test cannot get from a real store. */
  let inner: RefreshTokenStore;
  let failures: string[];
  let revoked: string[];

  beforeEach(() => {
    real = new MemoryRefreshTokenStore({ idleTtlMs: 60_000, absoluteTtlMs: 600_000 });
    failuresLeft = 0;
    revokeSubjectCalls = [];
    failures = [];
    revoked = [];
    inner = {
      issue: (subject, clientId) => real.issue(subject, clientId),
      rotate: (token) => real.rotate(token),
      revoke: (token) => real.revoke(token),
      revokeFamily: (familyId) => real.revokeFamily(familyId),
      async revokeSubject(subject) {
        revokeSubjectCalls.push(subject);
        if (failuresLeft > 0) {
          failuresLeft--;
          throw new StorageUnavailableError({ code: 'SQLITE_FULL', message: 'database or disk is full' });
        }
        return real.revokeSubject(subject);
      },
      sweep: () => real.sweep(),
      close: () => real.close(),
    };
  });

  const wrap = () =>
    withSubjectRevocationRetry(inner, {
      onFailure: (subject, error) => failures.push(`${subject}: ${(error as StorageUnavailableError).code}`),
      onRevoked: (subject) => revoked.push(subject),
    });

  it('refuses the subject’s refreshes while its failed revocation is pending, and retries it until it succeeds', async () => {
    const store = wrap();
    const stolen = await store.issue('alice', 'notify-web');
    const bob = await store.issue('bob', 'notify-web');
    failuresLeft = 2;

    // The password change: the store fails, and the caller still gets the error.
    expect(await rejection(store.revokeSubject('alice'))).to.include({ status: 503, code: 'storage_unavailable' });
    expect([...store.pendingSubjects]).to.deep.equal(['alice']);
    expect(failures).to.deep.equal(['alice: storage_unavailable']);

    // The old password's refresh token is refused, naming its family (whose streams the route ends), and the family is revoked.
    expect(await store.rotate(stolen.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: stolen.familyId });
    expect(await real.rotate(stolen.token)).to.include({ ok: false, familyId: stolen.familyId });
    // Another subject refreshes as usual.
    const bobNext = granted(await store.rotate(bob.token));
    expect(bobNext.subject).to.equal('bob');

    // A maintenance tick while the store still fails: still pending, one more failure reported.
    await store.retryPending();
    expect(failures).to.deep.equal(['alice: storage_unavailable', 'alice: storage_unavailable']);
    expect([...store.pendingSubjects]).to.deep.equal(['alice']);
    expect(revoked).to.deep.equal([]);

    // The next tick goes through: every family of alice is revoked in the store, nothing is pending.
    const signedInMeanwhile = await store.issue('alice', 'notify-web');
    await store.retryPending();
    expect(revoked).to.deep.equal(['alice']);
    expect([...store.pendingSubjects]).to.deep.equal([]);
    expect(await real.rotate(signedInMeanwhile.token)).to.deep.equal({
      ok: false,
      reason: 'revoked',
      familyId: signedInMeanwhile.familyId,
    });
    expect(revokeSubjectCalls).to.deep.equal(['alice', 'alice', 'alice']);

    // Afterwards a new sign-in of alice refreshes, and a tick has nothing to retry.
    const fresh = await store.issue('alice', 'notify-web');
    expect(granted(await store.rotate(fresh.token)).familyId).to.equal(fresh.familyId);
    await store.retryPending();
    expect(revokeSubjectCalls).to.have.length(3);
    expect(failures).to.have.length(2);
  });

  it('still refuses the refresh when revoking the family fails too', async () => {
    const store = withSubjectRevocationRetry(
      { ...inner, revokeFamily: () => Promise.reject(new StorageUnavailableError({ code: 'SQLITE_FULL', message: 'full' })) },
      { onFailure: () => undefined },
    );
    const stolen = await store.issue('alice', 'notify-web');
    failuresLeft = 1;
    await rejection(store.revokeSubject('alice'));
    expect(await store.rotate(stolen.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: stolen.familyId });
    // The presented token was rotated away and its successor never handed out: presented again, it is reuse.
    expect(await real.rotate(stolen.token)).to.deep.equal({ ok: false, reason: 'reused', familyId: stolen.familyId });
  });

  it('keeps a subject pending when a revocation that started before its failure finishes after it', async () => {
    let releaseEarlier!: () => void;
    const earlierHeld = new Promise<void>((resolve) => (releaseEarlier = resolve));
    const held = { ...inner, revokeSubject: inner.revokeSubject };
    let calls = 0;
    held.revokeSubject = async (subject) => {
      calls++;
      if (calls === 1) {
        await earlierHeld;
        return real.revokeSubject(subject);
      }
      return inner.revokeSubject(subject);
    };
    const store = withSubjectRevocationRetry(held, { onFailure: (subject) => failures.push(subject) });
    const earlier = store.revokeSubject('alice');
    failuresLeft = 1;
    await rejection(store.revokeSubject('alice'));
    releaseEarlier();
    await earlier;
    expect([...store.pendingSubjects]).to.deep.equal(['alice']);
    await store.retryPending();
    expect([...store.pendingSubjects]).to.deep.equal([]);
  });

  it('joins a retry that is still running instead of starting a second one', async () => {
    let release!: () => void;
    const store = wrap();
    failuresLeft = 1;
    await rejection(store.revokeSubject('alice'));
    const slow = new Promise<void>((resolve) => (release = resolve));
    const revokeNow = inner.revokeSubject;
    inner.revokeSubject = async (subject) => {
      await slow;
      return revokeNow(subject);
    };
    const first = store.retryPending();
    const second = store.retryPending();
    expect(second).to.equal(first);
    release();
    await first;
    expect(revokeSubjectCalls).to.deep.equal(['alice', 'alice']);
    expect([...store.pendingSubjects]).to.deep.equal([]);
  });
});
