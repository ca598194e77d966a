import type { AccessClaims } from './token-service.js';

export type Revocation =
  | { readonly kind: 'session'; readonly sessionId: string }
  | { readonly kind: 'subject'; readonly subject: string; readonly reason: string };

/** `local`: decided in this process (to be shared with other instances); `remote`: received from one. */
export type RevocationOrigin = 'local' | 'remote';

/**
 * Access tokens are verified statelessly, so revoking one needs a deny-list. It is keyed by the
 * refresh-token family (`sid`, for logout and reuse detection) and by subject (password change,
 * account removal): never by the token string, because several strings verify as the same token
 * (jose accepts a signature whose spare trailing bits differ). An entry only needs to live as
 * long as a token issued before it could still be valid (access TTL + clock tolerance), which
 * bounds the list by the revocations of one TTL.
 *
 * Listeners are told at once, so open streams end without waiting for their token to expire.
 */
export class RevocationList {
  /** sessionId -> epoch ms at which the entry may be forgotten. */
  private readonly sessions = new Map<string, number>();
  /** subject -> { tokens with `iat` at or before this second are revoked, entry expiry }. */
  private readonly subjects = new Map<string, { throughSecond: number; forgetAt: number }>();
  private readonly listeners = new Set<(revocation: Revocation, origin: RevocationOrigin) => void>();

  constructor(private readonly options: { retentionMs: number; clock?: () => number }) {}

  /** How long an entry matters: the access-token lifetime plus clock tolerance. */
  get retentionMs(): number {
    return this.options.retentionMs;
  }

  private get now(): number {
    return (this.options.clock ?? Date.now)();
  }

  revokeSession(sessionId: string): void {
    this.sweep();
    this.sessions.set(sessionId, this.now + this.options.retentionMs);
    this.emit({ kind: 'session', sessionId }, 'local');
  }

  /**
   * Revokes every token of `subject` issued up to now. Token `iat` has one-second resolution, so
   * the whole current second is revoked; `notBefore` tells the issuer to stamp new tokens after it.
   */
  revokeSubject(subject: string, reason: string): void {
    this.sweep();
    const now = this.now;
    this.subjects.set(subject, { throughSecond: Math.floor(now / 1000), forgetAt: now + this.options.retentionMs });
    this.emit({ kind: 'subject', subject, reason }, 'local');
  }

  /**
   * Records a revocation decided by another instance at `at` (epoch ms), and tells listeners
   * (which close this instance's affected streams). With several instances every revocation
   * reaches every instance this way (`auth/revocation-relay.ts`).
   */
  applyRemote(revocation: Revocation, at: number): void {
    this.sweep();
    const forgetAt = at + this.options.retentionMs;
    if (forgetAt <= this.now) return;
    if (revocation.kind === 'session') {
      this.sessions.set(revocation.sessionId, Math.max(forgetAt, this.sessions.get(revocation.sessionId) ?? 0));
    } else {
      const throughSecond = Math.floor(at / 1000);
      const known = this.subjects.get(revocation.subject);
      if (known === undefined || known.throughSecond < throughSecond) this.subjects.set(revocation.subject, { throughSecond, forgetAt });
    }
    this.emit(revocation, 'remote');
  }

  isRevoked(claims: Pick<AccessClaims, 'subject' | 'sessionId' | 'issuedAt'>): boolean {
    if (claims.sessionId !== undefined && this.sessions.has(claims.sessionId)) return true;
    const entry = this.subjects.get(claims.subject);
    return entry !== undefined && claims.issuedAt <= entry.throughSecond;
  }

  /** The earliest `iat` (epoch seconds) a new token for `subject` may carry and still be valid. */
  notBefore(subject: string): number | undefined {
    const entry = this.subjects.get(subject);
    return entry === undefined ? undefined : entry.throughSecond + 1;
  }

  onRevoke(listener: (revocation: Revocation, origin: RevocationOrigin) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.sessions.size + this.subjects.size;
  }

  private emit(revocation: Revocation, origin: RevocationOrigin): void {
    for (const listener of this.listeners) listener(revocation, origin);
  }

  private sweep(): void {
    const now = this.now;
    for (const [key, forgetAt] of this.sessions) if (forgetAt <= now) this.sessions.delete(key);
    for (const [key, entry] of this.subjects) if (entry.forgetAt <= now) this.subjects.delete(key);
  }
}
