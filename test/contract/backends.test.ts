import { openMemoryBackend } from '../../src/backends/memory/memory-backend.js';
import { openRedisBackend } from '../../src/backends/redis/redis-backend.js';
import { loadConfig } from '../../src/config.js';
import { deleteKeys, REDIS_TARGETS, uniquePrefix } from '../helpers/redis.js';
import { backendContract, CONTRACT_MAX_STREAMS_PER_USER, CONTRACT_PRESENCE_LEASE_MS } from './backend.contract.js';

// Both backends read the shipped defaults, as the server would, with a small stream-slot limit.
const settings = (env: Record<string, string> = {}) =>
  loadConfig({
    MAX_STREAMS_PER_USER: String(CONTRACT_MAX_STREAMS_PER_USER),
    PRESENCE_LEASE: String(CONTRACT_PRESENCE_LEASE_MS / 1000),
    PRESENCE_LEAVE_DELAY: '0',
    ...env,
  });

backendContract('memory', false, () => ({
  open: async (deps) => openMemoryBackend(settings(), deps),
  cleanUp: async () => undefined,
}));

for (const [name, url] of REDIS_TARGETS) {
  backendContract(name, true, () => {
    const keyPrefix = uniquePrefix('backend');
    const config = settings({ REDIS_URL: url, REDIS_KEY_PREFIX: keyPrefix });
    if (config.backend.kind !== 'redis') throw new Error('expected the Redis backend');
    const redis = config.backend;
    return {
      open: (deps) => openRedisBackend({ ...config, redis }, deps),
      cleanUp: () => deleteKeys(url, keyPrefix),
    };
  });
}
