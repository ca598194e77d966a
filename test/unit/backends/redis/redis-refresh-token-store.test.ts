import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisRefreshTokenStore } from '../../../../src/backends/redis/redis-refresh-token-store.js';
import type { RefreshGrant, RotateResult } from '../../../../src/auth/refresh-token-store.js';
import { connectRedis } from '../../../../src/backends/redis/connect.js';
import { deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../../../helpers/redis.js';

const IDLE = 60_000;
const ABSOLUTE = 600_000;

function granted(result: RotateResult): RefreshGrant {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.grant;
}

// The same rules as the memory store, on a real Redis. The clock starts at the real time: keys
// expire in Redis at the family's absolute expiry, computed from this clock.
describe('RedisRefreshTokenStore', () => {
  let now: number;
  let client: Redis;
  let prefix: string;
  let store: RedisRefreshTokenStore;

  const open = (maxFamiliesPerSubject?: number) =>
    new RedisRefreshTokenStore({
      client,
      keyPrefix: prefix,
      idleTtlMs: IDLE,
      absoluteTtlMs: ABSOLUTE,
      maxFamiliesPerSubject,
      clock: () => now,
    });

  before(async () => {
    client = await connectRedis(TEST_REDIS_URL, 'commands', () => undefined);
  });

  beforeEach(() => {
    now = Date.now();
    prefix = uniquePrefix('rt');
    store = open();
  });

  afterEach(async () => {
    await deleteKeys(TEST_REDIS_URL, prefix);
  });

  after(() => client.disconnect());

  it('rotates within one family and answers unknown for a token never issued', async () => {
    const first = await store.issue('alice', 'web');
    const second = granted(await store.rotate(first.token));
    expect(second).to.include({ familyId: first.familyId, subject: 'alice', clientId: 'web' });
    expect(second.token).to.not.equal(first.token);
    expect(granted(await store.rotate(second.token)).familyId).to.equal(first.familyId);
    expect(await store.rotate('never-issued')).to.deep.equal({ ok: false, reason: 'unknown' });
  });

  it('answers reused and revokes the family when a rotated token is presented again', async () => {
    const first = await store.issue('alice', 'web');
    const second = granted(await store.rotate(first.token));
    expect(await store.rotate(first.token)).to.deep.equal({ ok: false, reason: 'reused', familyId: first.familyId });
    expect(await store.rotate(second.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: first.familyId });
  });

  it('lets exactly one of two concurrent rotations with one token succeed, over two connections', async () => {
    const other = await connectRedis(TEST_REDIS_URL, 'commands', () => undefined);
    try {
      const elsewhere = new RedisRefreshTokenStore({
        client: other,
        keyPrefix: prefix,
        idleTtlMs: IDLE,
        absoluteTtlMs: ABSOLUTE,
        clock: () => now,
      });
      const first = await store.issue('alice', 'web');
      const results = await Promise.all([store.rotate(first.token), elsewhere.rotate(first.token)]);
      expect(results.filter((result) => result.ok)).to.have.length(1);
      expect(results.find((result) => !result.ok)).to.deep.equal({ ok: false, reason: 'reused', familyId: first.familyId });
    } finally {
      other.disconnect();
    }
  });

  it('answers expired when the family was idle too long', async () => {
    const first = await store.issue('alice', 'web');
    now += IDLE;
    expect(await store.rotate(first.token)).to.deep.equal({ ok: false, reason: 'expired', familyId: first.familyId });
  });

  it('revokes by token, by family and by subject', async () => {
    const a = await store.issue('alice', 'web');
    const b = await store.issue('alice', 'web');
    const c = await store.issue('bob', 'web');
    expect(await store.revoke(a.token)).to.deep.equal({ familyId: a.familyId, subject: 'alice' });
    expect(await store.revoke('never-issued')).to.equal(undefined);
    expect((await store.rotate(a.token)).ok).to.equal(false);
    expect((await store.revokeSubject('alice')).sort()).to.deep.equal([a.familyId, b.familyId].sort());
    expect(await store.rotate(b.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: b.familyId });
    await store.revokeFamily(c.familyId);
    expect(await store.rotate(c.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: c.familyId });
  });

  it('revokes the oldest family past maxFamiliesPerSubject', async () => {
    store = open(2);
    const oldest = await store.issue('alice', 'web');
    now += 1;
    const middle = await store.issue('alice', 'web');
    now += 1;
    const newest = await store.issue('alice', 'web');
    expect(await store.rotate(oldest.token)).to.deep.equal({ ok: false, reason: 'revoked', familyId: oldest.familyId });
    expect((await store.rotate(middle.token)).ok).to.equal(true);
    expect((await store.rotate(newest.token)).ok).to.equal(true);
  });

  it('stores only token hashes, never a token, and gives every key an expiry', async () => {
    const first = await store.issue('alice', 'web');
    const second = granted(await store.rotate(first.token));
    const keys = await client.keys(`${prefix}*`);
    expect(keys.length).to.be.greaterThan(0);
    for (const key of keys) {
      expect(key).to.not.include(first.token).and.not.include(second.token);
      const type = await client.type(key);
      const dump =
        type === 'hash'
          ? JSON.stringify(await client.hgetall(key))
          : type === 'zset'
            ? JSON.stringify(await client.zrange(key, '0', '-1'))
            : String(await client.get(key));
      expect(dump).to.not.include(first.token).and.not.include(second.token);
      expect(await client.pttl(key), key).to.be.greaterThan(0);
    }
  });

  it('answers 503 redis_unavailable when Redis cannot be reached', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null as unknown as number,
    });
    dead.on('error', () => undefined);
    const offline = new RedisRefreshTokenStore({ client: dead, keyPrefix: prefix, idleTtlMs: IDLE, absoluteTtlMs: ABSOLUTE });
    let caught: unknown;
    try {
      await offline.issue('alice', 'web');
    } catch (error) {
      caught = error;
    }
    expect(caught).to.have.property('status', 503);
    expect(caught).to.have.property('code', 'redis_unavailable');
    dead.disconnect();
  });
});
