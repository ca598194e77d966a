import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../errors.js';
import { orUnavailable } from '../redis/redis-unavailable-error.js';

export interface LoginThrottleOptions {
  /** Attempts per (account, address) pair per window: stops guessing one password from one place. */
  readonly maxPerAccountAndAddress: number;
  /** Attempts per address per window, over all accounts: stops one address spraying many accounts. */
  readonly maxPerAddress: number;
  /** Failed attempts per account per window, from anywhere: stops a distributed guess at one account. */
  readonly maxPerAccount: number;
  /** Window length in seconds. */
  readonly window: number;
  /**
   * With several instances, the counters live in Redis (issue 4) so that spreading attempts over
   * instances gains nothing. While Redis is unreachable, sign-in answers 503 rather than going
   * unthrottled.
   */
  readonly redis?: { readonly client: Redis; readonly keyPrefix: string };
}

/**
 * Throttles sign-in attempts before any password hashing, so a flood of logins costs a map look-up
 * each, not a second of scrypt. Counters are fixed windows that expire by themselves; nothing is
 * locked permanently. Uses rate-limiter-flexible, whose Redis store takes the same counters across
 * instances.
 */
export class LoginThrottle {
  private readonly pair: RateLimiterAbstract;
  private readonly address: RateLimiterAbstract;
  private readonly account: RateLimiterAbstract;

  constructor(private readonly options: LoginThrottleOptions) {
    const redis = options.redis;
    const limiter = (keyPrefix: string, points: number): RateLimiterAbstract =>
      redis === undefined
        ? new RateLimiterMemory({ keyPrefix, points, duration: options.window })
        : new RateLimiterRedis({ storeClient: redis.client, keyPrefix: `${redis.keyPrefix}${keyPrefix}`, points, duration: options.window });
    this.pair = limiter('login-pair', options.maxPerAccountAndAddress);
    this.address = limiter('login-addr', options.maxPerAddress);
    this.account = limiter('login-acct', options.maxPerAccount);
  }

  /**
   * Counts an attempt; call before verifying the password.
   * @throws TooManyRequestsError with `Retry-After` when any limit is reached.
   */
  async attempt(account: string, address: string): Promise<void> {
    const failures = await orUnavailable(() => this.account.get(account));
    if (failures !== null && failures.consumedPoints >= this.options.maxPerAccount) {
      throw this.limited(failures.msBeforeNext);
    }
    try {
      await this.address.consume(address);
      await this.pair.consume(pairKey(account, address));
    } catch (error) {
      if (error instanceof RateLimiterRes) throw this.limited(error.msBeforeNext);
      return orUnavailable(() => Promise.reject(error));
    }
  }

  /** Records a failed attempt against the account. */
  async failed(account: string): Promise<void> {
    try {
      await this.account.consume(account);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) await orUnavailable(() => Promise.reject(error));
    }
  }

  /** A success clears the pair's counter, so a user who mistyped a few times is not held back. */
  async succeeded(account: string, address: string): Promise<void> {
    await orUnavailable(() => this.pair.delete(pairKey(account, address)));
  }

  private limited(msBeforeNext: number): TooManyRequestsError {
    return new TooManyRequestsError('Too many sign-in attempts; try again later.', msBeforeNext / 1000);
  }
}

const pairKey = (account: string, address: string) => `${account}\u0000${address}`;
