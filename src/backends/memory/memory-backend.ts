import type { Config } from '../../config.js';
import type { Backend, BackendDeps } from '../backend.js';
import { noOtherInstance, singleProcessAttemptCounters, SingleProcessStreamSlots } from '../single-process.js';
import { MemoryBus } from './memory-bus.js';
import { SingleProcessPresence } from '../single-process-presence.js';
import { MemoryRefreshTokenStore } from './memory-refresh-token-store.js';
import { MemoryTicketStore } from './memory-ticket-store.js';

/** The settings the memory backend reads. */
export type MemoryBackendSettings = Pick<Config, 'history' | 'refreshToken'> & {
  readonly streams: Pick<Config['streams'], 'maxStreamsPerUser'>;
};

/**
 * `STORE=memory`: one process, everything in memory, gone at a restart (tests, or by choice). There is no other instance, so
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
    attemptCounters: singleProcessAttemptCounters,
    streamSlots: new SingleProcessStreamSlots(settings.streams.maxStreamsPerUser),
    renewals: noOtherInstance,
    presence: new SingleProcessPresence({ clock: deps.clock, instance: deps.instance }),
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
