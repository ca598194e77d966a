import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AttemptCounterFactory } from '../../auth/login-throttle.js';
import type { Config } from '../../config.js';
import { Lifecycle } from '../../lifecycle.js';
import type { Backend, BackendDeps } from '../backend.js';
import { connectRedis, type RedisClient } from './connect.js';
import { RedisBus } from './redis-bus.js';
import { openRedisPresence } from './redis-presence.js';
import { RedisRefreshTokenStore } from './redis-refresh-token-store.js';
import { RedisStreamSlots } from './redis-stream-slots.js';
import { RedisTicketStore } from './redis-ticket-store.js';
import { orUnavailable, RedisUnavailableError } from './redis-unavailable-error.js';
import { RenewalRelay } from './renewal-relay.js';
import { RevocationRelay } from './revocation-relay.js';

/** The settings the Redis backend reads. */
export type RedisBackendSettings = Pick<Config, 'history' | 'refreshToken' | 'presence'> & {
  readonly streams: Pick<Config['streams'], 'maxStreamsPerUser'>;
  readonly redis: Extract<Config['backend'], { kind: 'redis' }>;
};

/** How long one connection may take to close before it is abandoned (a Redis that no longer answers). */
const CLOSE_TIMEOUT_MS = 2000;

/**
 * Every piece of shared state in Redis, for any number of instances (docs/architecture.md): the
 * event bus (a command and a tail connection), refresh-token families, login counters and stream
 * slots (one shared command connection), the revocation relay (its own tail), renewal
 * forwarding (a pub/sub connection) and presence (the shared command connection and its own
 * tail). Six connections in all.
 * @throws Error naming the URL when Redis cannot be reached: the server refuses to start. What
 *   was already connected is closed again.
 */
export async function openRedisBackend(settings: RedisBackendSettings, deps: BackendDeps): Promise<Backend> {
  const { keyPrefix } = settings.redis;
  const target = settings.redis.target;
  const lifecycle = new Lifecycle({ closerTimeoutMs: CLOSE_TIMEOUT_MS, onCloseError: (_name, error) => deps.onError(error as Error) });
  return lifecycle.build(async () => {
    const bus = await lifecycle.open(
      'redis bus',
      () =>
        RedisBus.connect({
          url: target,
          keyPrefix,
          historySize: settings.history.size,
          maxTopics: settings.history.maxTopics,
          partitions: settings.redis.partitions,
          logMaxLen: settings.redis.streamMaxLen,
          waitReplicas: settings.redis.waitReplicas,
          historyTtlMs: settings.history.ttlMs,
          idempotencyTtlMs: settings.history.idempotencyTtlMs,
          clock: deps.clock,
          onError: deps.onError,
          onDispatch: deps.onDispatch,
        }),
      (opened) => opened.close(),
    );
    const commands = await lifecycle.open(
      'redis commands',
      () => connectRedis(target, 'commands', deps.onError),
      (client) => client.disconnect(),
    );
    const refreshTokens = new RedisRefreshTokenStore({
      client: commands,
      keyPrefix,
      idleTtlMs: settings.refreshToken.idleTtlMs,
      absoluteTtlMs: settings.refreshToken.absoluteTtlMs,
      clock: deps.clock,
    });
    const blocking = await connectRedis(target, 'blocking', deps.onError);
    const revocationRelay = new RevocationRelay({
      revocations: deps.revocations,
      commands,
      blocking,
      keyPrefix,
      clock: deps.clock,
      onError: deps.onError,
    });
    // The relay owns its tail connection from here on; stopping it disconnects it.
    await lifecycle.open(
      'revocation relay',
      async () => {
        try {
          await revocationRelay.start();
        } catch (error) {
          blocking.disconnect();
          throw error;
        }
      },
      () => revocationRelay.stop(),
    );
    const streamSlots = await lifecycle.open(
      'stream slots',
      () => new RedisStreamSlots({ client: commands, keyPrefix, maxPerSubject: settings.streams.maxStreamsPerUser, onError: deps.onError }),
      (slots) => slots.stop(),
    );
    const subscriber = await connectRedis(target, 'subscriber', deps.onError);
    const renewals = await lifecycle.open(
      'renewal relay',
      async () => {
        const relay = new RenewalRelay({ localStreams: deps.localStreams, commands, subscriber, keyPrefix, onError: deps.onError });
        try {
          await relay.start();
        } catch (error) {
          subscriber.disconnect();
          throw error;
        }
        return relay;
      },
      (relay) => relay.stop(),
    );
    const presence = await lifecycle.open(
      'presence',
      () => openRedisPresence({ target, commands, keyPrefix, ...settings.presence, instance: deps.instance, onError: deps.onError }),
      (opened) => opened.stop(),
    );
    return {
      bus,
      refreshTokens,
      attemptCounters: redisAttemptCounters(commands, keyPrefix),
      tickets: new RedisTicketStore(commands, keyPrefix),
      streamSlots,
      renewals,
      presence,
      unavailableReason: () => bus.unavailableReason ?? (commands.status === 'ready' ? undefined : `redis ${commands.status}`),
      async sweep() {
        await bus.sweep();
        await refreshTokens.sweep();
      },
      close: () => lifecycle.close(),
    };
  });
}

/**
 * rate-limiter-flexible's Redis limiter, so every instance counts the same attempts. While Redis
 * is unreachable a count fails with 503 `redis_unavailable`: sign-in is refused, never unthrottled.
 */
function redisAttemptCounters(client: RedisClient, keyPrefix: string): AttemptCounterFactory {
  return (name, points, windowMs) => {
    const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: `${keyPrefix}${name}`, points, duration: windowMs / 1000 });
    return {
      get: (key) => orUnavailable(() => limiter.get(key)),
      // An over-limit `consume` rejects with a RateLimiterRes, which must reach the throttle as it is.
      consume: (key) =>
        limiter.consume(key).catch((error: unknown) => {
          // eslint-disable-next-line @typescript-eslint/only-throw-error -- rate-limiter-flexible's over-limit answer is a RateLimiterRes, which the throttle reads
          throw error instanceof RateLimiterRes ? error : new RedisUnavailableError(error);
        }),
      delete: (key) => orUnavailable(() => limiter.delete(key)),
    };
  };
}
