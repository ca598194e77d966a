import { expect } from 'chai';
import { Redis } from 'ioredis';
import { connectRedis, type RedisClient } from '../../../../src/backends/redis/connect.js';
import { RedisRefreshTokenStore } from '../../../../src/backends/redis/redis-refresh-token-store.js';
import { refreshTokenStoreContract } from '../../../contract/refresh-token-store.contract.js';
import { deleteKeys, listKeys, REDIS_TARGETS, TEST_REDIS_URL, uniquePrefix } from '../../../helpers/redis.js';

const IDLE = 60_000;
const ABSOLUTE = 600_000;

// The same rules as the memory store, on a real Redis. The clock starts at the real time: keys
// expire in Redis at the family's absolute expiry, computed from this clock.
for (const [name, url] of REDIS_TARGETS) {
  refreshTokenStoreContract(name, () => {
    const prefix = uniquePrefix('rt-contract');
    const clients: RedisClient[] = [];
    let options: ConstructorParameters<typeof RedisRefreshTokenStore>[0] | undefined;
    const client = async () => {
      const opened = await connectRedis(url, 'commands', () => undefined);
      clients.push(opened);
      return opened;
    };
    return {
      startTime: () => Date.now(),
      async open(settings) {
        options = { ...settings, client: await client(), keyPrefix: prefix };
        return new RedisRefreshTokenStore(options);
      },
      // Another instance: its own connection to the same keys.
      sibling: async () => new RedisRefreshTokenStore({ ...options!, client: await client() }),
      async storedStrings() {
        const redis = clients[0]!;
        const found: string[] = [];
        for (const key of await listKeys(url, prefix)) {
          found.push(key);
          const type = await redis.type(key);
          if (type === 'hash') found.push(...Object.entries(await redis.hgetall(key)).flat());
          else if (type === 'zset') found.push(...(await redis.zrange(key, '0', '-1')));
          else found.push(String(await redis.get(key)));
        }
        return found;
      },
      async close() {
        for (const opened of clients.splice(0)) opened.disconnect();
        await deleteKeys(url, prefix);
      },
    };
  });
}

describe('RedisRefreshTokenStore', () => {
  let client: RedisClient;
  let prefix: string;
  let store: RedisRefreshTokenStore;

  before(async () => {
    client = await connectRedis(TEST_REDIS_URL, 'commands', () => undefined);
  });

  beforeEach(() => {
    prefix = uniquePrefix('rt');
    store = new RedisRefreshTokenStore({ client, keyPrefix: prefix, idleTtlMs: IDLE, absoluteTtlMs: ABSOLUTE });
  });

  afterEach(async () => {
    await deleteKeys(TEST_REDIS_URL, prefix);
  });

  after(() => client.disconnect());

  it('stores only token hashes, never a token, and gives every key an expiry', async () => {
    const first = await store.issue('alice', 'web');
    const rotated = await store.rotate(first.token);
    if (!rotated.ok) throw new Error(rotated.reason);
    const second = rotated.grant;
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
      retryStrategy: () => null,
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
