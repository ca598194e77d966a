import type { TicketGrant, TicketStore } from '../../auth/ticket-store.js';
import type { RedisClient } from './connect.js';
import { orUnavailable } from './redis-unavailable-error.js';

/**
 * Browser tickets shared by every instance: a ticket handed out on one is redeemed on any, once.
 * `SET NX PX` stores it with its lifetime; `GETDEL` (Redis >= 6.2) takes it atomically, so of two
 * redemptions on different instances exactly one gets it. Keys are `<prefix>ticket:{<id>}` (the id
 * is a hash of the ticket, never the ticket), one key per ticket, so it works on Redis Cluster too.
 */
export class RedisTicketStore implements TicketStore {
  constructor(
    private readonly client: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  async put(id: string, grant: TicketGrant, ttlMs: number): Promise<void> {
    await orUnavailable(() => this.client.set(this.key(id), JSON.stringify(grant), 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'));
  }

  async take(id: string): Promise<TicketGrant | undefined> {
    const value = await orUnavailable(() => this.client.getdel(this.key(id)));
    return value === null ? undefined : (JSON.parse(value) as TicketGrant);
  }

  /** The shared command connection is the backend's to close. */
  async close(): Promise<void> {}

  private key(id: string): string {
    return `${this.keyPrefix}ticket:{${id}}`;
  }
}
