import type { TicketGrant, TicketStore } from '../../auth/ticket-store.js';
import { ServiceUnavailableError } from '../../errors.js';
import type { WriterConnection } from './writer-connection.js';

/**
 * Browser tickets in the store file: one is redeemed at most once (the take is a `DELETE ...
 * RETURNING` of the store's one writer), also across a restart between exchange and redemption.
 * Keyed by the ticket's hash, as every ticket store. Bounded as the memory store is: past
 * `maxTickets` outstanding, expired tickets are dropped, and if none were, new ones are refused.
 */
export class SqliteTicketStore implements TicketStore {
  private readonly clock: () => number;

  constructor(
    private readonly writer: WriterConnection,
    clock?: () => number,
  ) {
    this.clock = clock ?? Date.now;
  }

  async put(id: string, grant: TicketGrant, ttlMs: number): Promise<void> {
    const now = this.clock();
    const { stored } = await this.writer.call('putTicket', { id, grant: JSON.stringify(grant), expiresAt: now + ttlMs, now });
    if (!stored) throw new ServiceUnavailableError('server_busy', 'Too many outstanding tickets; try again shortly.', 1);
  }

  async take(id: string): Promise<TicketGrant | undefined> {
    const grant = await this.writer.call('takeTicket', { id, now: this.clock() });
    return grant === null ? undefined : (JSON.parse(grant) as TicketGrant);
  }

  /** The writer belongs to the backend, which closes it. */
  async close(): Promise<void> {}
}
