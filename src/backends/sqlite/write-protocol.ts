/**
 * What the server thread asks of the writer thread, and what it gets back (structured-cloned over
 * a MessagePort). Every write of the store is one of these operations; the writer runs all the
 * operations that arrive together in one transaction with one commit (group commit) and answers
 * them in order. Times are passed in (`now`), so the server's injected clock rules the writer too.
 */

interface StoreLimits {
  /** Events kept per topic (`HISTORY_SIZE`). */
  readonly historySize: number;
  /** Topics with history (`HISTORY_MAX_TOPICS`); the least recently published go first. */
  readonly maxTopics: number;
  /** Bytes of event payload kept over all topics (`HISTORY_MAX_BYTES`); the oldest events go first. */
  readonly maxBytes: number;
  /** Remembered idempotency keys (`IDEMPOTENCY_MAX_KEYS`); the oldest go first. */
  readonly idempotencyMaxKeys: number;
  /** Outstanding browser tickets; past it, expired ones are dropped, and then new ones refused. */
  readonly maxTickets: number;
}

export interface WriterOptions {
  /** `always`: fsync every commit before it is answered; `everysec`: at least once a second. */
  readonly fsync: 'always' | 'everysec';
  readonly limits: StoreLimits;
  /** SQLite's `max_page_count`, a hard cap on the file (tests of a full store). */
  readonly maxPageCount?: number;
}

/** Every operation: its arguments and its answer. */
export interface WriteOps {
  publish: {
    args: {
      readonly now: number;
      readonly topics: readonly string[];
      readonly type: string;
      readonly data: string;
      readonly idempotency?: { readonly key: string; readonly fingerprint: string; readonly expiresAt: number };
    };
    result:
      | { readonly kind: 'stored'; readonly ms: number; readonly seq: number }
      /** The key was used for the same request: its event's id and time (the rest is the request's, as the fingerprint says). */
      | { readonly kind: 'duplicate'; readonly ms: number; readonly seq: number; readonly publishedAt: number }
      | { readonly kind: 'conflict' };
  };
  /** Drops events published at or before `cutoff`, and expired idempotency keys; at most `limit` rows of each. */
  sweepHistory: { args: { readonly now: number; readonly cutoff: number; readonly limit: number }; result: { readonly more: boolean } };
  issueFamily: {
    args: {
      readonly id: string;
      readonly subject: string;
      readonly clientId: string;
      readonly hash: string;
      readonly now: number;
      readonly absoluteTtlMs: number;
      readonly maxFamiliesPerSubject: number;
    };
    result: null;
  };
  rotateToken: {
    args: { readonly hash: string; readonly next: string; readonly now: number; readonly idleTtlMs: number; readonly keep: number };
    result:
      | { readonly ok: true; readonly familyId: string; readonly subject: string; readonly clientId: string }
      | { readonly ok: false; readonly reason: 'unknown' | 'reused' | 'revoked' | 'expired'; readonly familyId?: string };
  };
  revokeToken: {
    args: { readonly hash: string; readonly now: number };
    result: { readonly familyId: string; readonly subject: string } | null;
  };
  revokeFamily: { args: { readonly id: string; readonly now: number }; result: null };
  revokeSubject: { args: { readonly subject: string; readonly now: number }; result: readonly string[] };
  sweepFamilies: { args: { readonly now: number; readonly idleTtlMs: number; readonly limit: number }; result: { readonly more: boolean } };
  recordRevocation: {
    args: {
      readonly kind: 'session' | 'subject';
      readonly value: string;
      readonly reason: string;
      readonly at: number;
      readonly forgetAt: number;
    };
    result: null;
  };
  sweepRevocations: { args: { readonly now: number }; result: null };
  putTicket: {
    args: { readonly id: string; readonly grant: string; readonly expiresAt: number; readonly now: number };
    result: { readonly stored: boolean };
  };
  takeTicket: { args: { readonly id: string; readonly now: number }; result: string | null };
}

export type OpName = keyof WriteOps;

export interface OpRequest<K extends OpName = OpName> {
  readonly call: number;
  readonly op: K;
  readonly args: WriteOps[K]['args'];
}

/** Why a whole batch failed: SQLite's error code (`SQLITE_FULL`, `SQLITE_IOERR_WRITE`, ...) and message. */
export interface WriteFailure {
  readonly code: string;
  readonly message: string;
}

export type OpResult = { readonly call: number; readonly value: unknown } | { readonly call: number; readonly failure: WriteFailure };

/** Figures the server reads at metrics scrape time, sent with every answer. */
export interface StoreStats {
  /** Events held over all topics (an event on two topics counts twice). */
  readonly historyRows: number;
  /** Bytes of event payload held. */
  readonly historyBytes: number;
}

export type ToWriter =
  | { readonly type: 'open'; readonly store: number; readonly file: string; readonly options: WriterOptions }
  | { readonly type: 'ops'; readonly store: number; readonly ops: readonly OpRequest[] }
  | { readonly type: 'close'; readonly store: number };

export type FromWriter =
  | { readonly type: 'opened'; readonly store: number; readonly failure?: WriteFailure; readonly stats?: StoreStats }
  | { readonly type: 'results'; readonly store: number; readonly results: readonly OpResult[]; readonly stats: StoreStats }
  | { readonly type: 'closed'; readonly store: number };
