import { expect } from 'chai';
import type { RefreshGrant } from '../../../../src/auth/refresh-token-store.js';
import { MemoryRefreshTokenStore } from '../../../../src/backends/memory/memory-refresh-token-store.js';
import { refreshTokenStoreContract } from '../../../contract/refresh-token-store.contract.js';

const T0 = 1_700_000_000_000;
const IDLE = 60_000;
const ABSOLUTE = 600_000;

/** Every string reachable from `value` (map keys and values, object fields, array items, set members). */
function strings(value: unknown, seen = new Set<unknown>()): string[] {
  if (typeof value === 'string') return [value];
  if (value === null || typeof value !== 'object' || seen.has(value)) return [];
  seen.add(value);
  if (value instanceof Map) return [...value].flatMap(([k, v]) => [...strings(k, seen), ...strings(v, seen)]);
  if (value instanceof Set || Array.isArray(value)) return [...value].flatMap((v) => strings(v, seen));
  return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v, seen)]);
}

refreshTokenStoreContract('memory', () => {
  let last: MemoryRefreshTokenStore | undefined;
  return {
    startTime: () => T0,
    async open(options) {
      return (last = new MemoryRefreshTokenStore(options));
    },
    // One process: the other "instance" is the same store.
    sibling: async () => last!,
    async storedStrings() {
      const internals = last as unknown as Record<string, unknown>;
      return strings([internals.families, internals.byHash, internals.bySubject]);
    },
    close: async () => undefined,
  };
});

describe('MemoryRefreshTokenStore', () => {
  let now: number;
  let store: MemoryRefreshTokenStore;

  beforeEach(() => {
    now = T0;
    store = new MemoryRefreshTokenStore({ idleTtlMs: IDLE, absoluteTtlMs: ABSOLUTE, clock: () => now });
  });

  it('counts a family per sign-in', async () => {
    await store.issue('alice', 'web');
    await store.issue('alice', 'web');
    expect(store.familyCount).to.equal(2);
  });

  it('forgets expired families when swept', async () => {
    await store.issue('alice', 'web');
    now = T0 + IDLE / 2;
    const fresh = await store.issue('bob', 'web');
    now = T0 + IDLE;
    await store.sweep();
    expect(store.familyCount).to.equal(1);
    expect((await store.rotate(fresh.token)).ok).to.equal(true);
  });

  it('forgets the oldest family past maxFamiliesPerSubject', async () => {
    store = new MemoryRefreshTokenStore({ idleTtlMs: IDLE, absoluteTtlMs: ABSOLUTE, maxFamiliesPerSubject: 3, clock: () => now });
    const grants: RefreshGrant[] = [];
    for (let i = 0; i < 5; i++) grants.push(await store.issue('alice', 'web'));
    await store.issue('bob', 'web');
    expect(store.familyCount).to.equal(4);
  });
});
