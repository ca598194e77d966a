import { expect } from 'chai';
import { Redis } from 'ioredis';
import { openRedisBackend, type RedisBackendSettings } from '../../../../src/backends/redis/redis-backend.js';
import { loadConfig } from '../../../../src/config.js';
import { backendDeps } from '../../../helpers/backend-deps.js';
import { rejection } from '../../../helpers/errors.js';
import { deleteKeys, OwnRedis, TEST_REDIS_URL, uniquePrefix } from '../../../helpers/redis.js';

const deps = () => backendDeps();

function settings(url: string, keyPrefix: string): RedisBackendSettings {
  const config = loadConfig({ REDIS_URL: url, REDIS_KEY_PREFIX: keyPrefix });
  if (config.backend.kind !== 'redis') throw new Error('expected the Redis backend');
  return { ...config, redis: config.backend };
}

/** Connections this test process holds to the Redis at `admin` under the backend's connection names. */
async function ourConnections(admin: Redis): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((line) => / name=notify-/.test(line)).length;
}

describe('openRedisBackend', () => {
  let admin: Redis;
  let keyPrefix: string;

  before(() => {
    admin = new Redis(TEST_REDIS_URL);
  });
  beforeEach(() => {
    keyPrefix = uniquePrefix('backend-life');
  });
  afterEach(() => deleteKeys(TEST_REDIS_URL, keyPrefix));
  after(() => admin.disconnect());

  it('opens six connections and closes every one of them', async () => {
    const before = await ourConnections(admin);
    const backend = await openRedisBackend(settings(TEST_REDIS_URL, keyPrefix), deps());
    expect(await ourConnections(admin)).to.equal(before + 6);
    await backend.close();
    // Disconnects reach the server a moment later.
    const deadline = Date.now() + 5000;
    while ((await ourConnections(admin)) !== before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await ourConnections(admin)).to.equal(before);
  });

  it('closes what it had connected when a later step of the start fails', async () => {
    // The revocation relay reads its stream at start; a key of the wrong type makes that read fail
    // after the bus and the command connection are up.
    await admin.set(`${keyPrefix}revocations`, 'not a stream');
    const before = await ourConnections(admin);
    const error = await rejection(openRedisBackend(settings(TEST_REDIS_URL, keyPrefix), deps()));
    expect(String(error)).to.match(/WRONGTYPE/);
    const deadline = Date.now() + 5000;
    while ((await ourConnections(admin)) !== before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await ourConnections(admin)).to.equal(before);
  });

  it('closes within a bounded time when Redis no longer answers', async function () {
    this.timeout(20_000);
    const own = await OwnRedis.start();
    try {
      const backend = await openRedisBackend(settings(own.url, keyPrefix), deps());
      await own.stop();
      // Let every connection notice the loss and start reconnecting.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = performance.now();
      await backend.close();
      expect(performance.now() - started).to.be.below(10_000);
    } finally {
      await own.destroy();
    }
  });
});
