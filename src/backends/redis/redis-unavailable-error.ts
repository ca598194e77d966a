import { AppError, ServiceUnavailableError } from '../../errors.js';

/**
 * 503 `redis_unavailable`: a write that must be stored in Redis could not be, so the server
 * refuses it instead of answering as if it had been kept (issue 4: never a 202 for an event that
 * was not stored). Clients retry after `Retry-After`; a publish retried with its idempotency key
 * is not stored twice.
 */
export class RedisUnavailableError extends ServiceUnavailableError {
  constructor(cause: unknown) {
    super('redis_unavailable', 'The shared store is unavailable; try again shortly.', 1);
    this.cause = cause;
  }
}

/** Runs a Redis call and turns a connection failure into `RedisUnavailableError`; app errors pass through. */
export async function orUnavailable<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new RedisUnavailableError(error);
  }
}
