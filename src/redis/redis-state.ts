import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RedisRefreshTokenStore } from '../auth/redis-refresh-token-store.js';
import { RevocationRelay } from '../auth/revocation-relay.js';
import type { RevocationList } from '../auth/revocations.js';
import { RedisBus } from '../bus/redis-bus.js';
import type { Config } from '../config.js';
import { RenewalRelay } from '../streams/renewal-relay.js';
import { RedisStreamSlots } from '../streams/redis-stream-slots.js';
import type { SessionRegistry } from '../streams/session-registry.js';
import { connectRedis } from './connect.js';

/** Everything an instance keeps in Redis when REDIS_URL is set. */
export interface RedisState {
  readonly bus: RedisBus;
  readonly refreshTokens: RedisRefreshTokenStore;
  /** For the login throttle's counters. */
  readonly commands: Redis;
  readonly keyPrefix: string;
  /** MAX_STREAMS_PER_USER over every instance. */
  readonly streamSlots: RedisStreamSlots;
  /** `undefined` while Redis is usable, else why not (for `/readyz`). */
  unavailableReason(): string | undefined;
  /** Starts serving and forwarding in-band renewals for streams of `registry` (built after this state). */
  startRenewals(registry: SessionRegistry): Promise<RenewalRelay>;
  close(): Promise<void>;
}

/**
 * Connects the shared state: the event bus (its own command and tail connections), refresh-token
 * families, login counters (one command connection) and the revocation relay (its own tail).
 * @throws Error naming the URL when Redis cannot be reached: the server refuses to start.
 */
export async function connectRedisState(
  config: Config,
  deps: { logger: Logger; revocations: RevocationList; clock: () => number; onDispatch?: (delivered: number, elapsedMs: number) => void },
): Promise<RedisState> {
  const settings = config.redis!;
  // Each failed reconnect emits an error; log a connection's errors at most once per 5 s.
  const onError = (() => {
    let lastLogged = 0;
    return (error: Error) => {
      const now = Date.now();
      if (now - lastLogged < 5000) return;
      lastLogged = now;
      deps.logger.warn({ err: { message: error.message, code: (error as NodeJS.ErrnoException).code } }, 'redis');
    };
  })();
  const opened: Array<{ close(): Promise<void> | void }> = [];
  try {
    const bus = await RedisBus.connect({
      url: settings.url,
      keyPrefix: settings.keyPrefix,
      maxLen: settings.streamMaxLen,
      historyTtlMs: config.history.ttl * 1000,
      idempotencyTtlMs: config.history.idempotencyTtl * 1000,
      clock: deps.clock,
      onError,
      onDispatch: deps.onDispatch,
    });
    opened.push(bus);
    const commands = await connectRedis(settings.url, 'commands', onError);
    opened.push({ close: () => commands.disconnect() });
    const blocking = await connectRedis(settings.url, 'blocking', onError);
    opened.push({ close: () => blocking.disconnect() });
    const refreshTokens = new RedisRefreshTokenStore({
      client: commands,
      keyPrefix: settings.keyPrefix,
      idleTtlMs: config.refreshToken.idleTtl * 1000,
      absoluteTtlMs: config.refreshToken.absoluteTtl * 1000,
      clock: deps.clock,
    });
    const relay = new RevocationRelay({
      revocations: deps.revocations,
      commands,
      blocking,
      keyPrefix: settings.keyPrefix,
      retentionMs: (config.jwt.accessTokenTtl + config.jwt.clockTolerance) * 1000,
      clock: deps.clock,
      onError,
    });
    await relay.start();
    const streamSlots = new RedisStreamSlots({
      client: commands,
      keyPrefix: settings.keyPrefix,
      maxPerSubject: config.streams.maxStreamsPerUser,
      onError,
    });
    opened.push({ close: () => streamSlots.stop() });
    let renewals: RenewalRelay | undefined;
    return {
      bus,
      refreshTokens,
      commands,
      keyPrefix: settings.keyPrefix,
      streamSlots,
      unavailableReason: () => bus.unavailableReason ?? (commands.status === 'ready' ? undefined : `redis ${commands.status}`),
      async startRenewals(registry) {
        const subscriber = await connectRedis(settings.url, 'subscriber', onError);
        renewals = new RenewalRelay({ registry, commands, subscriber, keyPrefix: settings.keyPrefix, onError });
        await renewals.start();
        return renewals;
      },
      async close() {
        await renewals?.stop();
        streamSlots.stop();
        await relay.stop();
        await bus.close();
        commands.disconnect();
      },
    };
  } catch (error) {
    for (const resource of opened.reverse()) await resource.close();
    throw error;
  }
}
