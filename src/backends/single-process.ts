import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { AttemptCounterFactory } from '../auth/login-throttle.js';
import { NotFoundError, TooManyRequestsError } from '../errors.js';
import type { RenewalForwarder, StreamSlots } from './backend.js';

/**
 * The pieces every single-process backend (memory, SQLite) shares: what only this process holds.
 * Not a backend of its own; the backends that serve one process use them as they are.
 */

/** rate-limiter-flexible's in-process limiter: counters of one process, gone at a restart (a window is minutes). */
export const singleProcessAttemptCounters: AttemptCounterFactory = (name, points, windowMs) =>
  new RateLimiterMemory({ keyPrefix: name, points, duration: windowMs / 1000 });

/** There is no other instance: a renewal for a stream this process does not hold is 404. */
export const noOtherInstance: RenewalForwarder = {
  forward: async () => {
    throw new NotFoundError('No open stream with this id for this account.', 'connection_not_found');
  },
};

/**
 * `MAX_STREAMS_PER_USER` on one process: the streams each subject holds here. In memory even on a
 * persistent backend: a restart ends every stream, so there is nothing to remember.
 */
export class SingleProcessStreamSlots implements StreamSlots {
  private readonly held = new Map<string, Set<string>>();

  constructor(private readonly maxPerSubject: number) {}

  async acquire(subject: string, streamId: string): Promise<void> {
    let mine = this.held.get(subject);
    if ((mine?.size ?? 0) >= this.maxPerSubject) {
      throw new TooManyRequestsError('This account has too many open streams.', 5, 'too_many_streams');
    }
    if (mine === undefined) this.held.set(subject, (mine = new Set()));
    mine.add(streamId);
  }

  release(subject: string, streamId: string): void {
    const mine = this.held.get(subject);
    if (mine?.delete(streamId) && mine.size === 0) this.held.delete(subject);
  }
}
