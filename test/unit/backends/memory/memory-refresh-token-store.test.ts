import { expect } from 'chai';
import { MemoryRefreshTokenStore } from '../../../../src/backends/memory/memory-refresh-token-store.js';
import type { RefreshGrant, RotateResult } from '../../../../src/auth/refresh-token-store.js';

const T0 = 1_700_000_000_000;
const IDLE = 60_000;
const ABSOLUTE = 600_000;

function granted(result: RotateResult): RefreshGrant {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.grant;
}

/** Every string reachable from `value` (map keys and values, object fields, array items, set members). */
function strings(value: unknown, seen = new Set<unknown>()): string[] {
  if (typeof value === 'string') return [value];
  if (value === null || typeof value !== 'object' || seen.has(value)) return [];
  seen.add(value);
  if (value instanceof Map) return [...value].flatMap(([k, v]) => [...strings(k, seen), ...strings(v, seen)]);
  if (value instanceof Set || Array.isArray(value)) return [...value].flatMap((v) => strings(v, seen));
  return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v, seen)]);
}

describe('MemoryRefreshTokenStore', () => {
  let now: number;
  let store: MemoryRefreshTokenStore;

  beforeEach(() => {
    now = T0;
    store = new MemoryRefreshTokenStore({ idleTtlMs: IDLE, absoluteTtlMs: ABSOLUTE, clock: () => now });
  });

  describe('issue and rotate', () => {
    it('issues a token bound to subject and client, in a new family each time', async () => {
      const a = await store.issue('alice', 'web');
      const b = await store.issue('alice', 'web');
      expect(a).to.include({ subject: 'alice', clientId: 'web' });
      expect(a.token).to.match(/^[A-Za-z0-9_-]{43,}$/);
      expect(a.familyId).to.not.equal(b.familyId);
      expect(a.token).to.not.equal(b.token);
      expect(store.familyCount).to.equal(2);
    });

    it('returns a new token in the same family when a current token is rotated', async () => {
      const first = await store.issue('alice', 'web');
      const second = granted(await store.rotate(first.token));
      expect(second.token).to.not.equal(first.token);
      expect(second).to.include({ familyId: first.familyId, subject: 'alice', clientId: 'web' });
      const third = granted(await store.rotate(second.token));
      expect(third.familyId).to.equal(first.familyId);
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

    it('lets exactly one of two concurrent rotations with one token succeed', async () => {
      const first = await store.issue('alice', 'web');
      const results = await Promise.all([store.rotate(first.token), store.rotate(first.token)]);
      expect(results.filter((r) => r.ok)).to.have.length(1);
      const failed = results.find((r) => !r.ok);
      expect(failed).to.have.property('ok', false);
    });
  });

  describe('expiry', () => {
    it('answers expired when the family has been idle for the idle ttl', async () => {
      const first = await store.issue('alice', 'web');
      now = T0 + IDLE;
      expect(await store.rotate(first.token)).to.deep.equal({ ok: false, reason: 'expired', familyId: first.familyId });
    });

    it('restarts the idle ttl when the family is used', async () => {
      const first = await store.issue('alice', 'web');
      now = T0 + IDLE - 1;
      const second = granted(await store.rotate(first.token));
      now = T0 + 2 * IDLE - 2;
      const third = granted(await store.rotate(second.token));
      now += IDLE;
      expect(await store.rotate(third.token)).to.include({ ok: false, reason: 'expired' });
    });

    it('answers expired at the absolute ttl even when the family is used often', async () => {
      let grant = await store.issue('alice', 'web');
      while (now + IDLE / 2 < T0 + ABSOLUTE) {
        now += IDLE / 2;
        grant = granted(await store.rotate(grant.token));
      }
      now = T0 + ABSOLUTE;
      expect(await store.rotate(grant.token)).to.deep.equal({ ok: false, reason: 'expired', familyId: grant.familyId });
    });

    it('forgets expired families when swept', async () => {
      await store.issue('alice', 'web');
      now = T0 + IDLE / 2;
      const fresh = await store.issue('bob', 'web');
      now = T0 + IDLE;
      store.sweep();
      expect(store.familyCount).to.equal(1);
      expect((await store.rotate(fresh.token)).ok).to.equal(true);
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

    it('revokes a family by id', async () => {
      const grant = await store.issue('alice', 'web');
      await store.revokeFamily(grant.familyId);
      await store.revokeFamily('no-such-family');
      expect(await store.rotate(grant.token)).to.include({ ok: false, reason: 'revoked' });
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
    it('keeps at most maxFamiliesPerSubject families, dropping the oldest', async () => {
      store = new MemoryRefreshTokenStore({ idleTtlMs: IDLE, absoluteTtlMs: ABSOLUTE, maxFamiliesPerSubject: 3, clock: () => now });
      const grants: RefreshGrant[] = [];
      for (let i = 0; i < 5; i++) grants.push(await store.issue('alice', 'web'));
      const bob = await store.issue('bob', 'web');
      expect(store.familyCount).to.equal(4);
      expect((await store.rotate(grants[0]!.token)).ok).to.equal(false);
      expect((await store.rotate(grants[1]!.token)).ok).to.equal(false);
      for (const grant of grants.slice(2)) expect((await store.rotate(grant.token)).ok).to.equal(true);
      expect((await store.rotate(bob.token)).ok).to.equal(true);
    });

    it('stores no plaintext token, only digests', async () => {
      const tokens: string[] = [];
      const first = await store.issue('alice', 'web');
      tokens.push(first.token);
      const second = granted(await store.rotate(first.token));
      tokens.push(second.token);
      tokens.push((await store.issue('bob', 'web')).token);
      await store.revoke(second.token);
      const internals = store as any;
      const stored = strings([internals.families, internals.byHash, internals.bySubject]);
      expect(stored.length).to.be.greaterThan(0);
      for (const token of tokens) {
        expect(stored.filter((s) => s.includes(token))).to.deep.equal([]);
      }
    });
  });
});
