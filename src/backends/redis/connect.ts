import { Redis, type RedisOptions } from 'ioredis';

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
 *   queue and no retry of a command whose connection dropped: while Redis is down such a call
 *   fails at once (503) instead of hanging, and a command that may or may not have run is never
 *   silently sent twice.
 * - `blocking` / `subscriber`: a dedicated connection for `XREAD BLOCK` (it would hold up every
 *   other command on a shared connection). Commands wait for the reconnect instead of failing.
 *
 * @throws Error naming the URL (without credentials) when Redis cannot be reached in time.
 */
export async function connectRedis(url: string, role: RedisRole, onError: (error: Error) => void): Promise<Redis> {
  const options: RedisOptions =
    role === 'commands'
      ? { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, retryStrategy }
      : { lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null, retryStrategy };
  const client = new Redis(url, { ...options, connectionName: `notify-${role}`, connectTimeout: START_TIMEOUT_MS });
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
        client.on('error', failFast);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    throw new Error(`cannot reach Redis at ${redactUrl(url)} (${(error as Error).message})`, { cause: error });
  } finally {
    clearTimeout(timer);
    if (failFast !== undefined) client.off('error', failFast);
  }
  return client;
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
