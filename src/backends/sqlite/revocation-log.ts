import type { Database } from 'better-sqlite3';
import type { Revocation, RevocationList } from '../../auth/revocations.js';
import type { WriterConnection } from './writer-connection.js';

/**
 * Revocations survive a restart: `RevocationList` stays the in-process deny-list checked on every
 * request, and this keeps it in the store. At start every entry still in force is applied again
 * (`applyRemote`, with the time it was made), and so is every refresh-token family revoked within
 * the retention: logout and reuse revoke the family in the store before they answer, so the
 * session's access tokens stay refused even when the process dies right after the answer. From
 * then on each local revocation is written with the next commit (milliseconds later); entries are
 * dropped once no token they cover can still be valid (the list's retention).
 */
export function restoreRevocations(reader: Database, revocations: RevocationList, now: number): void {
  const since = now - revocations.retentionMs;
  const rows = reader.prepare('SELECT kind, value, reason, at FROM revocations WHERE forget_at > ?').all(now) as Array<{
    kind: string;
    value: string;
    reason: string;
    at: number;
  }>;
  for (const row of rows) {
    const revocation: Revocation =
      row.kind === 'session' ? { kind: 'session', sessionId: row.value } : { kind: 'subject', subject: row.value, reason: row.reason };
    revocations.applyRemote(revocation, row.at);
  }
  const families = reader.prepare('SELECT id, revoked_at FROM families WHERE revoked_at > ?').all(since) as Array<{
    id: string;
    revoked_at: number;
  }>;
  for (const family of families) revocations.applyRemote({ kind: 'session', sessionId: family.id }, family.revoked_at);
}

/** Writes every local revocation to the store; returns the function that stops it. */
export function persistRevocations(writer: WriterConnection, revocations: RevocationList, clock: () => number): () => void {
  return revocations.onRevoke((revocation, origin) => {
    if (origin !== 'local') return;
    const at = clock();
    const [value, reason] = revocation.kind === 'session' ? [revocation.sessionId, ''] : [revocation.subject, revocation.reason];
    // A failed write is reported by the writer (onError); the revocation holds in this process regardless.
    writer
      .call('recordRevocation', { kind: revocation.kind, value, reason, at, forgetAt: at + revocations.retentionMs })
      .catch(() => undefined);
  });
}
