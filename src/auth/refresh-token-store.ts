/**
 * Refresh tokens are opaque random strings; only their SHA-256 is stored. Each sign-in starts a
 * family; each use rotates the token within its family (RFC 9700 §4.14.2). Presenting a token
 * that was already rotated means two parties hold it, so the whole family is revoked.
 */
export interface RefreshGrant {
  readonly token: string;
  readonly familyId: string;
  readonly subject: string;
  readonly clientId: string;
}

export type RotateResult =
  | { readonly ok: true; readonly grant: RefreshGrant }
  | {
      readonly ok: false;
      readonly reason: 'unknown' | 'reused' | 'revoked' | 'expired';
      /** Present when the token belonged to a known family (for revoking its streams). */
      readonly familyId?: string;
    };

export interface RefreshTokenStore {
  /** Starts a new family for `subject` and returns its first token. */
  issue(subject: string, clientId: string): Promise<RefreshGrant>;
  /** Exchanges a token for its successor, detecting reuse. At most one of two concurrent calls with one token succeeds. */
  rotate(token: string): Promise<RotateResult>;
  /** Revokes the family `token` belongs to; returns its id, or undefined for an unknown token. */
  revoke(token: string): Promise<{ familyId: string; subject: string } | undefined>;
  revokeFamily(familyId: string): Promise<void>;
  /** Revokes every family of `subject`; returns their ids. */
  revokeSubject(subject: string): Promise<string[]>;
  /**
   * Forgets families past their absolute or idle lifetime (a revoked family is kept until then, so a
   * replayed token is still recognised as reuse). The server calls it on a timer.
   */
  sweep(): Promise<void>;
  close(): Promise<void>;
}
