import { openMemoryBackend } from '../../src/backends/memory/memory-backend.js';
import { openRedisBackend } from '../../src/backends/redis/redis-backend.js';
import { openSqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { loadConfig } from '../../src/config.js';
import { deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { sqliteSettings, storeDir } from '../helpers/sqlite.js';
import { backendContract, CONTRACT_MAX_STREAMS_PER_USER } from './backend.contract.js';

// Every backend reads the shipped defaults, as the server would, with a small stream-slot limit.
const settings = (env: Record<string, string> = {}) => loadConfig({ MAX_STREAMS_PER_USER: String(CONTRACT_MAX_STREAMS_PER_USER), ...env });

backendContract('sqlite', false, () => {
  // One store file per test; one process owns it, so there is no "other instance" to share it with.
  const { dir, remove } = storeDir('backend-contract');
  return {
    open: (deps) => openSqliteBackend(sqliteSettings(dir, { MAX_STREAMS_PER_USER: String(CONTRACT_MAX_STREAMS_PER_USER) }), deps),
    cleanUp: async () => remove(),
  };
});

backendContract('memory', false, () => ({
  open: async (deps) => openMemoryBackend(settings({ STORE: 'memory' }), deps),
  cleanUp: async () => undefined,
}));

backendContract('redis', true, () => {
  const keyPrefix = uniquePrefix('backend');
  const config = settings({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: keyPrefix });
  if (config.backend.kind !== 'redis') throw new Error('expected the Redis backend');
  const redis = config.backend;
  return {
    open: (deps) => openRedisBackend({ ...config, redis }, deps),
    cleanUp: () => deleteKeys(TEST_REDIS_URL, keyPrefix),
  };
});
