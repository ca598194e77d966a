import { openMemoryBackend } from '../../src/backends/memory/memory-backend.js';
import { openRedisBackend } from '../../src/backends/redis/redis-backend.js';
import { openSqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { loadConfig } from '../../src/config.js';
import { deleteKeys, REDIS_TARGETS, uniquePrefix } from '../helpers/redis.js';
import { sqliteSettings, storeDir } from '../helpers/sqlite.js';
import { backendContract, CONTRACT_MAX_STREAMS_PER_USER, CONTRACT_PRESENCE_LEASE_MS } from './backend.contract.js';

// Every backend reads the shipped defaults, as the server would, with a small stream-slot limit.
const contractEnv = (env: Record<string, string> = {}) => ({
  MAX_STREAMS_PER_USER: String(CONTRACT_MAX_STREAMS_PER_USER),
  PRESENCE_LEASE: String(CONTRACT_PRESENCE_LEASE_MS / 1000),
  PRESENCE_LEAVE_DELAY: '0',
  ...env,
});
const settings = (env: Record<string, string> = {}) => loadConfig(contractEnv(env));

backendContract('sqlite', false, () => {
  // One store file per test; one process owns it, so there is no "other instance" to share it with.
  const { dir, remove } = storeDir('backend-contract');
  return {
    open: (deps) => openSqliteBackend(sqliteSettings(dir, contractEnv()), deps),
    cleanUp: async () => remove(),
  };
});

backendContract('memory', false, () => ({
  open: async (deps) => openMemoryBackend(settings({ STORE: 'memory' }), deps),
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
