import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { AttemptCounterFactory } from '../../auth/login-throttle.js';
import type { Config } from '../../config.js';
import { NotFoundError } from '../../errors.js';
import type { Backend, BackendDeps } from '../backend.js';
import { MemoryBus } from './memory-bus.js';
import { MemoryPresence } from './memory-presence.js';
import { MemoryRefreshTokenStore } from './memory-refresh-token-store.js';
import { MemoryStreamSlots } from './memory-stream-slots.js';
import { MemoryTicketStore } from './memory-ticket-store.js';

/** The settings the memory backend reads. */
export type MemoryBackendSettings = Pick<Config, 'history' | 'refreshToken'> & {
  readonly streams: Pick<Config['streams'], 'maxStreamsPerUser'>;
};

/** rate-limiter-flexible's in-process limiter. */
export const memoryAttemptCounters: AttemptCounterFactory = (name, points, windowMs) =>
  new RateLimiterMemory({ keyPrefix: name, points, duration: windowMs / 1000 });

/**
 * The embedded default: one process, everything in memory. There is no other instance, so
 * revocations have nowhere to travel and a renewal for a stream this process does not hold can
 * only be answered 404.
 */
export function openMemoryBackend(settings: MemoryBackendSettings, deps: Pick<BackendDeps, 'clock' | 'instance' | 'onDispatch'>): Backend {
  const bus = new MemoryBus({
    historySize: settings.history.size,
    historyTtlMs: settings.history.ttlMs,
    maxTopics: settings.history.maxTopics,
    idempotencyTtlMs: settings.history.idempotencyTtlMs,
    idempotencyMaxKeys: settings.history.idempotencyMaxKeys,
    clock: deps.clock,
    onDispatch: deps.onDispatch,
  });
  const refreshTokens = new MemoryRefreshTokenStore({
    idleTtlMs: settings.refreshToken.idleTtlMs,
    absoluteTtlMs: settings.refreshToken.absoluteTtlMs,
    clock: deps.clock,
  });
  const tickets = new MemoryTicketStore({ clock: deps.clock });
  return {
    bus,
    refreshTokens,
    tickets,
    attemptCounters: memoryAttemptCounters,
    streamSlots: new MemoryStreamSlots(settings.streams.maxStreamsPerUser),
    renewals: {
      forward: async () => {
        throw new NotFoundError('No open stream with this id for this account.', 'connection_not_found');
      },
    },
    presence: new MemoryPresence({ clock: deps.clock, instance: deps.instance }),
    unavailableReason: () => undefined,
    async sweep() {
      await bus.sweep();
      await refreshTokens.sweep();
    },
    async close() {
      await bus.close();
      await refreshTokens.close();
      await tickets.close();
    },
  };
}
