import { createHash, randomBytes } from 'node:crypto';
import type { RefreshGrant, RefreshTokenStore, RotateResult } from '../../auth/refresh-token-store.js';
import type { WriterConnection } from './writer-connection.js';

export interface SqliteRefreshTokenStoreOptions {
  readonly writer: WriterConnection;
  readonly idleTtlMs: number;
  readonly absoluteTtlMs: number;
  /** Families per subject; past it the oldest is forgotten (that device signs in again). Default 100, as the memory store. */
  readonly maxFamiliesPerSubject?: number;
  readonly clock?: () => number;
}

/**
 * Rotated tokens remembered per family for reuse detection, as on the memory store: about a day
 * of continuous use at the default 5-minute access tokens. An older token is answered as unknown.
 */
const TOKENS_KEPT = 200;
/** Families forgotten per sweep transaction. */
const SWEEP_STEP = 500;

const hash = (token: string) => createHash('sha256').update(token).digest('base64url');

/**
 * Refresh-token families in the store file, so a restart signs nobody out. Only SHA-256 digests
 * of tokens are stored; a token is made here and never leaves this thread. Every operation is one
 * transaction of the store's one writer, so of two concurrent rotations with one token exactly one
 * succeeds and the other is reuse, which revokes the family (RFC 9700 §4.14.2). A revoked family
 * is kept until its expiry, so a replayed token is recognised as reuse after a restart too.
 */
export class SqliteRefreshTokenStore implements RefreshTokenStore {
  private readonly clock: () => number;

  constructor(private readonly options: SqliteRefreshTokenStoreOptions) {
    this.clock = options.clock ?? Date.now;
  }

  async issue(subject: string, clientId: string): Promise<RefreshGrant> {
    const familyId = randomBytes(12).toString('base64url');
    const token = randomBytes(32).toString('base64url');
    await this.options.writer.call('issueFamily', {
      id: familyId,
      subject,
      clientId,
      hash: hash(token),
      now: this.clock(),
      absoluteTtlMs: this.options.absoluteTtlMs,
      maxFamiliesPerSubject: this.options.maxFamiliesPerSubject ?? 100,
    });
    return { token, familyId, subject, clientId };
  }

  async rotate(token: string): Promise<RotateResult> {
    const next = randomBytes(32).toString('base64url');
    const result = await this.options.writer.call('rotateToken', {
      hash: hash(token),
      next: hash(next),
      now: this.clock(),
      idleTtlMs: this.options.idleTtlMs,
      keep: TOKENS_KEPT,
    });
    if (!result.ok)
      return result.familyId === undefined
        ? { ok: false, reason: result.reason }
        : { ok: false, reason: result.reason, familyId: result.familyId };
    return { ok: true, grant: { token: next, familyId: result.familyId, subject: result.subject, clientId: result.clientId } };
  }

  async revoke(token: string): Promise<{ familyId: string; subject: string } | undefined> {
    return (await this.options.writer.call('revokeToken', { hash: hash(token), now: this.clock() })) ?? undefined;
  }

  async revokeFamily(familyId: string): Promise<void> {
    await this.options.writer.call('revokeFamily', { id: familyId, now: this.clock() });
  }

  async revokeSubject(subject: string): Promise<string[]> {
    return [...(await this.options.writer.call('revokeSubject', { subject, now: this.clock() }))];
  }

  async sweep(): Promise<void> {
    for (;;) {
      const { more } = await this.options.writer.call('sweepFamilies', {
        now: this.clock(),
        idleTtlMs: this.options.idleTtlMs,
        limit: SWEEP_STEP,
      });
      if (!more) return;
    }
  }

  /** The writer belongs to the backend, which closes it. */
  async close(): Promise<void> {}
}
