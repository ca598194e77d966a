import { randomBytes } from 'node:crypto';
import type { RedisClient } from './connect.js';
import { TooManyRequestsError } from '../../errors.js';
import type { StreamSlots } from '../backend.js';
import { orUnavailable } from './redis-unavailable-error.js';

export interface RedisStreamSlotsOptions {
  /** A `commands` connection, shared; not closed here. */
  readonly client: RedisClient;
  readonly keyPrefix: string;
  /** MAX_STREAMS_PER_USER, over all instances. */
  readonly maxPerSubject: number;
  /**
   * How long a slot lives without renewal. Each instance renews its slots every third of it, so
   * an instance that dies frees its users' slots within this time.
   */
  readonly leaseMs?: number;
  readonly clock?: () => number;
  readonly onError: (error: Error) => void;
}

/**
 * Takes a slot if fewer than the limit are held (expired leases do not count).
 * KEYS[1] the subject's slots (zset member -> lease expiry). ARGV: now, max, member, expiry.
 */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
`;

/**
 * `MAX_STREAMS_PER_USER` across every instance (issue 4): each open stream holds a leased slot
 * in `<prefix>slots:<subject>`; the slot is released when the stream ends and renewed while it
 * lives, so a crashed instance's slots lapse by themselves after one lease.
 */
export class RedisStreamSlots implements StreamSlots {
  private readonly instance = randomBytes(6).toString('base64url');
  /** This instance's slots: member -> subject. */
  private readonly held = new Map<string, string>();
  private readonly leaseMs: number;
  private readonly clock: () => number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: RedisStreamSlotsOptions) {
    this.leaseMs = options.leaseMs ?? 60_000;
    this.clock = options.clock ?? Date.now;
    options.client.defineCommand('notifySlotAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    this.timer = setInterval(() => void this.renew(), this.leaseMs / 3);
    this.timer.unref();
  }

  /**
   * Takes a slot for one stream of `subject`.
   * @throws TooManyRequestsError (`too_many_streams`) at the limit; 503 when Redis is unreachable.
   */
  async acquire(subject: string, streamId: string): Promise<void> {
    const member = `${this.instance}:${streamId}`;
    const now = this.clock();
    const ok = await orUnavailable(() =>
      (this.options.client as RedisClient & { notifySlotAcquire(...args: unknown[]): Promise<number> }).notifySlotAcquire(
        this.key(subject),
        now,
        this.options.maxPerSubject,
        member,
        now + this.leaseMs,
      ),
    );
    if (ok !== 1) throw new TooManyRequestsError('This account has too many open streams.', 5, 'too_many_streams');
    this.held.set(member, subject);
  }

  release(subject: string, streamId: string): void {
    const member = `${this.instance}:${streamId}`;
    if (!this.held.delete(member)) return;
    // If this fails (Redis down), the lease lapses by itself.
    this.options.client.zrem(this.key(subject), member).catch((error: Error) => this.options.onError(error));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    const expiry = this.clock() + this.leaseMs;
    // One call per subject rather than one pipeline: on Redis Cluster each subject's key has its own slot.
    const bySubject = new Map<string, string[]>();
    for (const [member, subject] of this.held) bySubject.set(subject, [...(bySubject.get(subject) ?? []), member]);
    await Promise.all(
      [...bySubject].map(([subject, members]) =>
        this.options.client
          .multi()
          .zadd(this.key(subject), ...members.flatMap((member) => [expiry, member]))
          .pexpireat(this.key(subject), expiry)
          .exec()
          .catch((error: Error) => this.options.onError(error)),
      ),
    );
  }

  private key(subject: string): string {
    return `${this.options.keyPrefix}slots:${subject}`;
  }
}
