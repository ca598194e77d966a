import type { TopicGrants } from './token-service.js';

/** What a browser ticket stands for: the access token to mint when it is redeemed. */
export interface TicketGrant {
  readonly subject: string;
  /** The service client that asked for the ticket (the minted token's `client_id`). */
  readonly clientId: string;
  readonly grants: TopicGrants;
  /** Epoch seconds: a subject revocation after this refuses the ticket, as it refuses older tokens. */
  readonly issuedAt: number;
}

/**
 * One-time, short-lived browser tickets (issue 10 §2): a backend gets one by token exchange, the
 * browser redeems it at `POST /auth/ticket` for the HttpOnly cookie. Tickets are keyed by a hash of
 * the ticket string, so the store never holds a usable credential.
 *
 * Every instance must see the same tickets, and `take` must hand a ticket to at most one caller
 * across all of them: the memory implementation serves one process; the Redis one (the backend
 * seam, issue 9) is `SET <prefix>ticket:<id> <json> PX <ttlMs> NX` for `put` and `GETDEL` for
 * `take` (atomic in Redis >= 6.2), so a replay on another instance finds nothing.
 */
export interface TicketStore {
  /**
   * Stores a new ticket under `id` for `ttlMs`.
   * @throws ServiceUnavailableError (`server_busy`) when the store is full.
   */
  put(id: string, grant: TicketGrant, ttlMs: number): Promise<void>;
  /** Removes and returns the ticket; `undefined` when unknown, expired or already taken. */
  take(id: string): Promise<TicketGrant | undefined>;
  close(): Promise<void>;
}
