import { createHash } from 'node:crypto';

/**
 * Client secrets that passed scrypt recently, so a backend that exchanges a token for every one of
 * its users' sign-ins (issue 10) pays for one scrypt run per few minutes, not one (about a second
 * of CPU at the default cost) per request. An entry is keyed by a SHA-256 of id and secret (the
 * secret itself is never kept) and is bound to the stored hash it was checked against, so a
 * rotated secret or a removed client stops matching at once. Bounded: 1,000 clients is more
 * service clients than any deployment has; past it the cache starts over (one scrypt run each).
 */
export class VerifiedSecretCache {
  readonly #entries = new Map<string, { readonly passwordHash: string; readonly until: number }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #clock: () => number;

  constructor(options: { ttlMs?: number; maxEntries?: number; clock?: () => number } = {}) {
    this.#ttlMs = options.ttlMs ?? 5 * 60_000;
    this.#maxEntries = options.maxEntries ?? 1000;
    this.#clock = options.clock ?? Date.now;
  }

  /** Did `secret` verify against exactly this `passwordHash` within the TTL? */
  has(id: string, secret: string, passwordHash: string): boolean {
    const key = keyOf(id, secret);
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    if (entry.passwordHash !== passwordHash || entry.until <= this.#clock()) {
      this.#entries.delete(key);
      return false;
    }
    return true;
  }

  remember(id: string, secret: string, passwordHash: string): void {
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(keyOf(id, secret), { passwordHash, until: this.#clock() + this.#ttlMs });
  }
}

function keyOf(id: string, secret: string): string {
  // Length-prefixed, so no other (id, secret) pair spells the same input.
  return createHash('sha256')
    .update(`${Buffer.byteLength(id)}:${id}`)
    .update(secret)
    .digest('base64url');
}
