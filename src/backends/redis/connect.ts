import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisTarget, type RedisTarget } from '../../redis-target.js';

/** A connection to a single Redis (optionally found through Sentinel) or to a Redis Cluster: the commands this backend uses work on both. */
export type RedisClient = Redis | Cluster;

/** Reconnect delays: quick at first, then every second, forever (a Redis restart must heal by itself). */
const retryStrategy = (attempt: number) => Math.min(50 * attempt, 1000);

/**
 * How long a start waits for Redis before refusing to start. Short: a server that cannot reach its
 * shared state must say so at once rather than look alive.
 */
const START_TIMEOUT_MS = 3000;

export type RedisRole = 'commands' | 'blocking' | 'subscriber';

/**
 * Opens a Redis connection for one role and waits until it is ready.
 *
 * - `commands`: requests that answer an HTTP request (publish, refresh rotation). No offline
 *   queue and no retry of a command whose connection dropped: while Redis is down (or has no
 *   primary, during a failover) such a call fails at once (503) instead of hanging, and a command
 *   that may or may not have run is never silently sent twice.
 * - `blocking` / `subscriber`: a dedicated connection for `XREAD BLOCK` (it would hold up every
 *   other command on a shared connection). Commands wait for the reconnect instead of failing.
 *
 * @param where a target, or a `REDIS_URL` to parse
 * @throws Error naming the URL (without credentials) when Redis cannot be reached in time.
 */
export async function connectRedis(where: RedisTarget | string, role: RedisRole, onError: (error: Error) => void): Promise<RedisClient> {
  const target = typeof where === 'string' ? parseRedisTarget(where) : where;
  const failing = role === 'commands';
  const perConnection: RedisOptions = failing
    ? { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false }
    : { maxRetriesPerRequest: null };
  const common: RedisOptions = { ...perConnection, connectionName: `notify-${role}`, connectTimeout: START_TIMEOUT_MS };
  let client: RedisClient;
  if (target.kind === 'cluster') {
    const options: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: !failing,
      clusterRetryStrategy: retryStrategy,
      // A primary that is down answers nothing: do not queue behind it while the cluster reconfigures.
      retryDelayOnClusterDown: 100,
      // SSUBSCRIBE on a connection of its own per shard, not on a pooled command connection.
      ...(role === 'subscriber' ? { shardedSubscribers: true } : {}),
      redisOptions: { ...common, ...target.auth, ...(target.tls ? { tls: {} } : {}) },
    };
    client = new Cluster(
      target.nodes.map((node) => ({ ...node })),
      options,
    );
  } else {
    const options: RedisOptions = { ...common, lazyConnect: true, enableOfflineQueue: !failing, retryStrategy };
    client =
      target.kind === 'single'
        ? new Redis(target.url, options)
        : new Redis({
            ...options,
            ...target.auth,
            sentinels: target.sentinels.map((node) => ({ ...node })),
            name: target.name,
            sentinelRetryStrategy: retryStrategy,
            // After a failover the old primary may come back as a replica: never write to it.
            role: 'master',
            ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
          });
  }
  // ioredis emits `error` on every failed reconnect; without a listener Node would crash the process.
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  let failFast: ((error: Error) => void) | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), START_TIMEOUT_MS);
        // Refused or unresolvable: no point waiting out the timeout.
        failFast = (error: Error) => {
          if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes((error as NodeJS.ErrnoException).code ?? '')) reject(error);
        };
        if (target.kind === 'single') client.on('error', failFast);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    throw new Error(`cannot reach Redis at ${describeTarget(target)} (${(error as Error).message})`, { cause: error });
  } finally {
    clearTimeout(timer);
    if (failFast !== undefined) client.off('error', failFast);
  }
  return client;
}

/** The target without its password, for messages and logs. */
function describeTarget(target: RedisTarget): string {
  if (target.kind === 'single') return redactUrl(target.url);
  const hosts = (target.kind === 'cluster' ? target.nodes : target.sentinels).map((node) => `${node.host}:${node.port}`).join(',');
  const scheme = `${target.tls ? 'rediss' : 'redis'}+${target.kind}`;
  return target.kind === 'cluster' ? `${scheme}://${hosts}` : `${scheme}://${hosts}/${target.name}`;
}

/** The URL without its password, for messages and logs. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable REDIS_URL>';
  }
}
