import { RateLimiterRes } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../errors.js';

/**
 * One fixed-window counter, the part of rate-limiter-flexible's limiters the throttle uses. A
 * backend supplies them (`backends/*`): in memory, or shared by every instance. A counter
 * rejects with `RateLimiterRes` when a `consume` goes over the limit, and with an `AppError`
 * (503) when its store is unreachable, so sign-in is refused rather than left unthrottled.
 */
export interface AttemptCounter {
  get(key: string): Promise<RateLimiterRes | null>;
  consume(key: string): Promise<RateLimiterRes>;
  delete(key: string): Promise<boolean>;
}

/** Makes the counter `name` allowing `points` per window of `windowMs`. */
export type AttemptCounterFactory = (name: string, points: number, windowMs: number) => AttemptCounter;

export interface LoginThrottleOptions {
  /** Attempts per (account, address) pair per window: stops guessing one password from one place. */
  readonly maxPerAccountAndAddress: number;
  /** Attempts per address per window, over all accounts: stops one address spraying many accounts. */
  readonly maxPerAddress: number;
  /** Failed attempts per account per window, from anywhere: stops a distributed guess at one account. */
  readonly maxPerAccount: number;
  readonly windowMs: number;
  /** Where the counters live (the backend's `attemptCounters`). */
  readonly counters: AttemptCounterFactory;
  /** How long an address stays trusted for an account after a successful sign-in from it; default 30 days. */
  readonly trustTtlMs?: number;
  /** Bound on remembered (account, address) successes; default 100,000. */
  readonly maxTrusted?: number;
  readonly clock?: () => number;
}

/**
 * Throttles sign-in attempts before any password hashing, so a flood of logins costs a map look-up
 * each, not a second of scrypt. Counters are fixed windows that expire by themselves; nothing is
 * locked permanently. The counters come from the backend: rate-limiter-flexible's memory limiter on
 * one process, its Redis limiter across instances.
 *
 * The per-account limit stops a distributed guess at one password, but a plain per-account limit
 * is also a weapon: anyone can fail 50 times and lock the real owner out for the window (OWASP
 * Authentication Cheat Sheet, "account lockout"; ASVS V2.2.1). So once an account's failures reach
 * the limit, only addresses that have not signed in to that account successfully within
 * `trustTtlMs` are refused; the owner's usual addresses still get through, each held to its own
 * per-(account, address) limit, which still bounds guessing from any one of them.
 */
export class LoginThrottle {
  private readonly pair: AttemptCounter;
  private readonly address: AttemptCounter;
  private readonly account: AttemptCounter;
  /**
   * (account, address) -> trusted until (ms). Bounded by `maxTrusted` (about 100 bytes an entry:
   * 10 MB at the default); past the bound the oldest entry is dropped first, which at worst sends
   * that address back to the per-account limit, never lets anyone in. Kept per process, also on
   * Redis: an address trusted on one instance is not yet trusted on another.
   */
  private readonly trusted = new Map<string, number>();
  private readonly trustTtlMs: number;
  private readonly maxTrusted: number;
  private readonly clock: () => number;

  constructor(private readonly options: LoginThrottleOptions) {
    this.pair = options.counters('login-pair', options.maxPerAccountAndAddress, options.windowMs);
    this.address = options.counters('login-addr', options.maxPerAddress, options.windowMs);
    this.account = options.counters('login-acct', options.maxPerAccount, options.windowMs);
    this.trustTtlMs = options.trustTtlMs ?? 30 * 86_400_000;
    this.maxTrusted = options.maxTrusted ?? 100_000;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Counts an attempt; call before verifying the password.
   * @throws TooManyRequestsError with `Retry-After` when any limit is reached.
   */
  async attempt(account: string, address: string): Promise<void> {
    const failures = await this.account.get(account);
    if (failures !== null && failures.consumedPoints >= this.options.maxPerAccount && !this.isTrusted(account, address)) {
      throw this.limited(failures.msBeforeNext);
    }
    try {
      await this.address.consume(address);
      await this.pair.consume(pairKey(account, address));
    } catch (error) {
      if (error instanceof RateLimiterRes) throw this.limited(error.msBeforeNext);
      throw error;
    }
  }

  /** Records a failed attempt against the account. */
  async failed(account: string): Promise<void> {
    try {
      await this.account.consume(account);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
    }
  }

  /**
   * A success clears the pair's counter, so a user who mistyped a few times is not held back, and
   * trusts the address for this account (see the class comment).
   */
  async succeeded(account: string, address: string): Promise<void> {
    await this.pair.delete(pairKey(account, address));
    const key = pairKey(account, address);
    this.trusted.delete(key);
    this.trusted.set(key, this.clock() + this.trustTtlMs);
    if (this.trusted.size > this.maxTrusted) this.trusted.delete(this.trusted.keys().next().value!);
  }

  private isTrusted(account: string, address: string): boolean {
    const key = pairKey(account, address);
    const until = this.trusted.get(key);
    if (until === undefined) return false;
    if (until > this.clock()) return true;
    this.trusted.delete(key);
    return false;
  }

  private limited(msBeforeNext: number): TooManyRequestsError {
    return new TooManyRequestsError('Too many sign-in attempts; try again later.', msBeforeNext / 1000);
  }
}

const pairKey = (account: string, address: string) => `${account}\u0000${address}`;
