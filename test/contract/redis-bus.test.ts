import { RedisBus } from '../../src/bus/redis-bus.js';
import { deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { eventBusContract } from './event-bus.contract.js';

// The same contract as the memory bus, unchanged, against a real redis-server (TEST_REDIS_URL).
// The global stream is trimmed to `historySize` events: on Redis, history is bounded over all
// topics, not per topic (docs/architecture.md), which the contract's single-topic case cannot tell apart.
eventBusContract('redis', async ({ clock, historySize }) => {
  const keyPrefix = uniquePrefix('contract');
  const bus = await RedisBus.connect({
    url: TEST_REDIS_URL,
    keyPrefix,
    maxLen: historySize,
    historyTtlMs: 3_600_000,
    idempotencyTtlMs: 86_400_000,
    clock,
  });
  return {
    bus,
    close: async () => {
      await bus.close();
      await deleteKeys(TEST_REDIS_URL, keyPrefix);
    },
  };
});
