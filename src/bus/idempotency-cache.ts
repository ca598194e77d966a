import { createHash } from 'node:crypto';
import { ConflictError } from '../errors.js';
import type { PublishRequest } from './event-bus.js';

/** The fingerprint of what a publish asks for, to tell a retry from a different request reusing a key. */
export function publishFingerprint(request: PublishRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([request.topics, request.type, request.data]))
    .digest('base64url');
}

interface Remembered<T> {
  readonly value: T;
  readonly fingerprint: string;
  readonly expiresAt: number;
}

/**
 * Remembers the result of each idempotent publish for `ttlMs`, per publisher. Bounded by
 * `maxKeys` so a publisher that sends a fresh key with every request cannot grow memory without
 * limit; past the bound the oldest keys go first (all keys share one TTL, so insertion order is
 * expiry order), which only shortens how long a retry is recognised.
 */
export class IdempotencyCache<T> {
  private readonly entries = new Map<string, Remembered<T>>();

  constructor(private readonly options: { ttlMs: number; maxKeys: number; clock: () => number }) {}

  /**
   * The remembered value for this publisher's key, or undefined.
   * @throws ConflictError when the key was used with a different request.
   */
  lookup(publisher: string, key: string, fingerprint: string): T | undefined {
    this.sweep();
    const entry = this.entries.get(this.keyOf(publisher, key));
    if (entry === undefined) return undefined;
    if (entry.fingerprint !== fingerprint) {
      throw new ConflictError('idempotency_key_reused', 'This idempotency key was already used for a different event.');
    }
    return entry.value;
  }

  remember(publisher: string, key: string, fingerprint: string, value: T): void {
    if (this.options.maxKeys === 0) return;
    this.entries.set(this.keyOf(publisher, key), {
      value,
      fingerprint,
      expiresAt: this.options.clock() + this.options.ttlMs,
    });
    while (this.entries.size > this.options.maxKeys) {
      this.entries.delete(this.entries.keys().next().value!);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const now = this.options.clock();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }

  private keyOf(publisher: string, key: string): string {
    return `${publisher}\u0000${key}`;
  }
}
