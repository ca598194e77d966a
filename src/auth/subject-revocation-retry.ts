import type { RefreshTokenStore, RotateResult } from './refresh-token-store.js';

/** A refresh-token store that does not forget a subject revocation it could not carry out. */
export interface RetryingRefreshTokenStore extends RefreshTokenStore {
  /** Subjects whose refresh-token families are still to be revoked, because every attempt so far failed. */
  readonly pendingSubjects: ReadonlySet<string>;
  /**
   * Tries every pending subject's revocation once more (the server's maintenance timer calls it).
   * Never rejects: a failure stays pending and is reported to `onFailure`. A call while a retry is
   * running joins it.
   */
  retryPending(): Promise<void>;
}

export interface SubjectRevocationRetryOptions {
  /** Each failed attempt, the first and every retry (the server logs one warning line naming the subject). */
  onFailure(subject: string, error: unknown): void;
  /** A revocation that had failed went through. */
  onRevoked?(subject: string): void;
}

/**
 * Wraps `store` so that a failed `revokeSubject` (a full disk, a dead writer thread, a Redis
 * outage) is remembered and retried until it succeeds. A subject revocation is what ends the
 * refresh tokens of an old password: the in-process `RevocationList` only refuses access tokens,
 * and the refresh path asks the store alone, so a revocation the store never carried out would
 * let a stolen refresh token of the old password rotate until its family's absolute expiry.
 *
 * While a subject is pending, every successful rotation of one of its families is turned into a
 * refusal (`revoked`, with the family id so the route ends the family's streams) and the family
 * is revoked, best effort: if that fails too, the successor was never handed out and the presented
 * token is now retired, so presenting it again is reuse, which revokes the family. Sign-ins made
 * meanwhile are refused on refresh too, and the retry revokes them with the rest (the store can
 * revoke only all of a subject's families): their users sign in again.
 *
 * The rest passes through, and the error of a failed `revokeSubject` is still thrown to its
 * caller (the admin API answers it). Pending entries live in this process: one per subject, and
 * only subjects whose revocation failed (accounts changed in the user file, or subjects an
 * authorised service client revoked) while the store was failing, so they are bounded by those.
 */
export function withSubjectRevocationRetry(store: RefreshTokenStore, options: SubjectRevocationRetryOptions): RetryingRefreshTokenStore {
  /**
   * subject -> the number of the last attempt that failed. A success clears the entry only if it
   * started after that attempt: an older revocation that happens to finish later may have run
   * before a family the failed one was meant to catch was created.
   */
  const pending = new Map<string, number>();
  let attempts = 0;
  let retrying: Promise<void> | undefined;

  async function revokeSubject(subject: string): Promise<string[]> {
    const attempt = ++attempts;
    try {
      const revoked = await store.revokeSubject(subject);
      const failed = pending.get(subject);
      if (failed !== undefined && failed < attempt) {
        pending.delete(subject);
        options.onRevoked?.(subject);
      }
      return revoked;
    } catch (error) {
      pending.set(subject, Math.max(attempt, pending.get(subject) ?? 0));
      options.onFailure(subject, error);
      throw error;
    }
  }

  async function retry(): Promise<void> {
    await Promise.all([...pending.keys()].map((subject) => revokeSubject(subject).catch(() => undefined)));
  }

  return {
    get pendingSubjects(): ReadonlySet<string> {
      return new Set(pending.keys());
    },
    retryPending() {
      retrying ??= retry().finally(() => (retrying = undefined));
      return retrying;
    },
    revokeSubject,
    async rotate(token): Promise<RotateResult> {
      const result = await store.rotate(token);
      if (!result.ok || !pending.has(result.grant.subject)) return result;
      const { familyId } = result.grant;
      await store.revokeFamily(familyId).catch(() => undefined);
      return { ok: false, reason: 'revoked', familyId };
    },
    issue: (subject, clientId) => store.issue(subject, clientId),
    revoke: (token) => store.revoke(token),
    revokeFamily: (familyId) => store.revokeFamily(familyId),
    sweep: () => store.sweep(),
    close: () => store.close(),
  };
}
