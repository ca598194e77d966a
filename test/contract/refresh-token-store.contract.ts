import { expect } from 'chai';
import type { RefreshGrant, RefreshTokenStore, RotateResult } from '../../src/auth/refresh-token-store.js';

/** What an implementation's test file hands the contract. */
export interface ContractStores {
  /** A store with the given bounds, reading `clock`. */
  open(options: {
    idleTtlMs: number;
    absoluteTtlMs: number;
    maxFamiliesPerSubject?: number;
    clock: () => number;
  }): Promise<RefreshTokenStore>;
  /**
   * A second store over the same state as the last one opened, through its own connection where
   * the implementation has connections (another instance); the same store where it has not.
   */
  sibling(): Promise<RefreshTokenStore>;
  /** Every string the last store opened holds (keys and values), to check that no token is kept in plain. */
  storedStrings(): Promise<string[]>;
  /** The clock a test may start from (a Redis store needs real time: its keys expire in Redis). */
  readonly startTime: () => number;
  close(): Promise<void>;
}

const IDLE = 60_000;
const ABSOLUTE = 600_000;

function granted(result: RotateResult): RefreshGrant {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.grant;
}

/**
 * The rules every `RefreshTokenStore` shares (RFC 9700 §4.14.2: rotation, reuse detection that
 * revokes the family, idle and absolute lifetimes, revocation by token, family and subject).
 */
export function refreshTokenStoreContract(name: string, stores: () => ContractStores): void {
  describe(`RefreshTokenStore contract: ${name}`, () => {
    let now: number;
    let t0: number;
    let impl: ContractStores;
    let store: RefreshTokenStore;
    const open = (maxFamiliesPerSubject?: number) =>
      impl.open({ idleTtlMs: IDLE, absoluteTtlMs: ABSOLUTE, maxFamiliesPerSubject, clock: () => now });

    beforeEach(async () => {
      impl = stores();
      t0 = now = impl.startTime();
      store = await open();
    });

    afterEach(() => impl.close());

    describe('issue and rotate', () => {
      it('issues a token bound to subject and client, in a new family each time', async () => {
        const a = await store.issue('alice', 'web');
        const b = await store.issue('alice', 'web');
        expect(a).to.include({ subject: 'alice', clientId: 'web' });
        expect(a.token).to.match(/^[A-Za-z0-9_-]{43,}$/);
        expect(a.familyId).to.not.equal(b.familyId);
        expect(a.token).to.not.equal(b.token);
      });

      it('returns a new token in the same family when a current token is rotated', async () => {
        const first = await store.issue('alice', 'web');
        const second = granted(await store.rotate(first.token));
        expect(second.token).to.not.equal(first.token);
        expect(second).to.include({ familyId: first.familyId, subject: 'alice', clientId: 'web' });
        expect(granted(await store.rotate(second.token)).familyId).to.equal(first.familyId);
      });

      it('answers unknown when the token was never issued', async () => {
        expect(await store.rotate('never-issued')).to.deep.equal({ ok: false, reason: 'unknown' });
        expect(await store.rotate('')).to.deep.equal({ ok: false, reason: 'unknown' });
      });
    });

    describe('reuse detection', () => {
      it('revokes the family when a rotated token is presented again: reused, then revoked for the successor', async () => {
        const first = await store.issue('alice', 'web');
        const second = granted(await store.rotate(first.token));
        expect(await store.rotate(first.token)).to.deep.equal({ ok: false, reason: 'reused', familyId: first.familyId });
        expect(await store.rotate(second.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: first.familyId });
        expect(await store.rotate(first.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: first.familyId });
      });

      it('leaves other families of the subject alone when one family is revoked for reuse', async () => {
        const stolen = await store.issue('alice', 'web');
        const other = await store.issue('alice', 'web');
        await store.rotate(stolen.token);
        await store.rotate(stolen.token);
        expect((await store.rotate(other.token)).ok).to.equal(true);
      });

      it('lets exactly one of two concurrent rotations with one token succeed, also from two instances', async () => {
        const elsewhere = await impl.sibling();
        const first = await store.issue('alice', 'web');
        const results = await Promise.all([store.rotate(first.token), elsewhere.rotate(first.token)]);
        expect(results.filter((result) => result.ok)).to.have.length(1);
        expect(results.find((result) => !result.ok)).to.deep.equal({ ok: false, reason: 'reused', familyId: first.familyId });
      });
    });

    describe('expiry', () => {
      it('answers expired when the family has been idle for the idle ttl', async () => {
        const first = await store.issue('alice', 'web');
        now = t0 + IDLE;
        expect(await store.rotate(first.token)).to.deep.equal({ ok: false, reason: 'expired', familyId: first.familyId });
      });

      it('restarts the idle ttl when the family is used', async () => {
        const first = await store.issue('alice', 'web');
        now = t0 + IDLE - 1;
        const second = granted(await store.rotate(first.token));
        now = t0 + 2 * IDLE - 2;
        const third = granted(await store.rotate(second.token));
        now += IDLE;
        expect(await store.rotate(third.token)).to.include({ ok: false, reason: 'expired' });
      });

      it('answers expired at the absolute ttl even when the family is used often', async () => {
        let grant = await store.issue('alice', 'web');
        while (now + IDLE / 2 < t0 + ABSOLUTE) {
          now += IDLE / 2;
          grant = granted(await store.rotate(grant.token));
        }
        now = t0 + ABSOLUTE;
        expect(await store.rotate(grant.token)).to.deep.equal({ ok: false, reason: 'expired', familyId: grant.familyId });
      });
    });

    describe('revocation', () => {
      it('revokes the family of a token and names it', async () => {
        const first = await store.issue('alice', 'web');
        const second = granted(await store.rotate(first.token));
        expect(await store.revoke(first.token)).to.deep.equal({ familyId: first.familyId, subject: 'alice' });
        expect(await store.rotate(second.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: first.familyId });
      });

      it('answers undefined when revoking an unknown token', async () => {
        expect(await store.revoke('never-issued')).to.equal(undefined);
      });

      it('revokes a family by id, and ignores an unknown id', async () => {
        const grant = await store.issue('alice', 'web');
        await store.revokeFamily(grant.familyId);
        await store.revokeFamily('no-such-family');
        expect(await store.rotate(grant.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: grant.familyId });
      });

      it('revokes every family of a subject and no other', async () => {
        const a1 = await store.issue('alice', 'web');
        const a2 = await store.issue('alice', 'cli');
        const b = await store.issue('bob', 'web');
        const ids = await store.revokeSubject('alice');
        expect([...ids].sort()).to.deep.equal([a1.familyId, a2.familyId].sort());
        expect(await store.rotate(a1.token)).to.include({ ok: false, reason: 'revoked' });
        expect(await store.rotate(a2.token)).to.include({ ok: false, reason: 'revoked' });
        expect((await store.rotate(b.token)).ok).to.equal(true);
        expect(await store.revokeSubject('nobody')).to.deep.equal([]);
      });
    });

    describe('bounds and storage', () => {
      it('keeps at most maxFamiliesPerSubject families, revoking the oldest', async () => {
        store = await open(3);
        const grants: RefreshGrant[] = [];
        for (let i = 0; i < 5; i++) {
          grants.push(await store.issue('alice', 'web'));
          now += 1;
        }
        const bob = await store.issue('bob', 'web');
        expect((await store.rotate(grants[0]!.token)).ok).to.equal(false);
        expect((await store.rotate(grants[1]!.token)).ok).to.equal(false);
        for (const grant of grants.slice(2)) expect((await store.rotate(grant.token)).ok).to.equal(true);
        expect((await store.rotate(bob.token)).ok).to.equal(true);
      });

      it('stores no plaintext token, only digests', async () => {
        const first = await store.issue('alice', 'web');
        const second = granted(await store.rotate(first.token));
        const third = await store.issue('bob', 'web');
        await store.revoke(second.token);
        const stored = await impl.storedStrings();
        expect(stored.length).to.be.greaterThan(0);
        for (const token of [first.token, second.token, third.token]) {
          expect(stored.filter((value) => value.includes(token))).to.deep.equal([]);
        }
      });
    });
  });
}
