import { createHash, randomBytes } from 'node:crypto';
import type { RefreshGrant, RefreshTokenStore, RotateResult } from '../../auth/refresh-token-store.js';

interface Family {
  readonly id: string;
  readonly subject: string;
  readonly clientId: string;
  readonly expiresAt: number;
  lastUsedAt: number;
  revoked: boolean;
  /** Hashes of every token this family has issued, the current one last. */
  readonly hashes: string[];
}

export interface MemoryRefreshTokenStoreOptions {
  readonly idleTtlMs: number;
  readonly absoluteTtlMs: number;
  /**
   * Families per subject. Sign-ins are throttled, but a user who never signs out still adds a
   * family per sign-in; past this bound the oldest is revoked (that device signs in again).
   */
  readonly maxFamiliesPerSubject?: number;
  readonly clock?: () => number;
}

/**
 * Rotated tokens remembered per family for reuse detection. A family rotates once per access-token
 * lifetime while in use; 200 covers most of a day of continuous use at the default 5 minutes. A
 * token older than that is answered as unknown (still `invalid_grant`), just without revoking
 * the family.
 */
const RETIRED_TOKENS_KEPT = 200;

const hash = (token: string) => createHash('sha256').update(token).digest('base64url');

/** `STORE=memory`: families in memory, lost on restart (users sign in again). */
export class MemoryRefreshTokenStore implements RefreshTokenStore {
  private readonly families = new Map<string, Family>();
  private readonly byHash = new Map<string, Family>();
  private readonly bySubject = new Map<string, Set<Family>>();
  private readonly clock: () => number;
  private readonly maxFamilies: number;

  constructor(private readonly options: MemoryRefreshTokenStoreOptions) {
    this.clock = options.clock ?? Date.now;
    this.maxFamilies = options.maxFamiliesPerSubject ?? 100;
  }

  async issue(subject: string, clientId: string): Promise<RefreshGrant> {
    const now = this.clock();
    const family: Family = {
      id: randomBytes(12).toString('base64url'),
      subject,
      clientId,
      expiresAt: now + this.options.absoluteTtlMs,
      lastUsedAt: now,
      revoked: false,
      hashes: [],
    };
    this.families.set(family.id, family);
    let mine = this.bySubject.get(subject);
    if (mine === undefined) this.bySubject.set(subject, (mine = new Set()));
    mine.add(family);
    if (mine.size > this.maxFamilies) this.forget(mine.values().next().value!);
    return this.next(family);
  }

  async rotate(token: string): Promise<RotateResult> {
    const family = this.byHash.get(hash(token));
    if (family === undefined) return { ok: false, reason: 'unknown' };
    if (family.revoked) return { ok: false, reason: 'revoked', familyId: family.id };
    const now = this.clock();
    if (now >= family.expiresAt || now >= family.lastUsedAt + this.options.idleTtlMs) {
      family.revoked = true;
      return { ok: false, reason: 'expired', familyId: family.id };
    }
    if (family.hashes.at(-1) !== hash(token)) {
      family.revoked = true;
      return { ok: false, reason: 'reused', familyId: family.id };
    }
    family.lastUsedAt = now;
    return { ok: true, grant: this.next(family) };
  }

  async revoke(token: string): Promise<{ familyId: string; subject: string } | undefined> {
    const family = this.byHash.get(hash(token));
    if (family === undefined) return undefined;
    family.revoked = true;
    return { familyId: family.id, subject: family.subject };
  }

  async revokeFamily(familyId: string): Promise<void> {
    const family = this.families.get(familyId);
    if (family !== undefined) family.revoked = true;
  }

  async revokeSubject(subject: string): Promise<string[]> {
    const mine = this.bySubject.get(subject);
    if (mine === undefined) return [];
    const ids = [...mine].map((family) => family.id);
    for (const family of mine) family.revoked = true;
    return ids;
  }

  async close(): Promise<void> {}

  get familyCount(): number {
    return this.families.size;
  }

  /** Adds a fresh token to the family; the token is computed synchronously, so rotation is atomic. */
  private next(family: Family): RefreshGrant {
    const token = randomBytes(32).toString('base64url');
    const digest = hash(token);
    family.hashes.push(digest);
    this.byHash.set(digest, family);
    if (family.hashes.length > RETIRED_TOKENS_KEPT) this.byHash.delete(family.hashes.shift()!);
    return { token, familyId: family.id, subject: family.subject, clientId: family.clientId };
  }

  /**
   * Forgets families past their absolute or idle lifetime. A revoked family is kept until then so
   * that a replayed token is still recognised as reuse rather than as unknown. The server calls it
   * on a timer.
   */
  async sweep(): Promise<void> {
    const now = this.clock();
    for (const family of this.families.values()) {
      if (now >= family.expiresAt || now >= family.lastUsedAt + this.options.idleTtlMs) this.forget(family);
    }
  }

  private forget(family: Family): void {
    family.revoked = true;
    this.families.delete(family.id);
    for (const digest of family.hashes) this.byHash.delete(digest);
    const mine = this.bySubject.get(family.subject);
    mine?.delete(family);
    if (mine?.size === 0) this.bySubject.delete(family.subject);
  }
}
