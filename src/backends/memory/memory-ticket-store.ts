import { ServiceUnavailableError } from '../../errors.js';
import type { TicketGrant, TicketStore } from '../../auth/ticket-store.js';

/**
 * Tickets of one process. Bounded: a ticket lives seconds, so 100,000 outstanding tickets is a
 * flood of sign-ins no single process serves (~300 bytes each, ~30 MB); past the bound expired
 * tickets are swept, and if none were, new tickets are refused with 503 instead of growing memory.
 */
export class MemoryTicketStore implements TicketStore {
  readonly #tickets = new Map<string, { grant: TicketGrant; expiresAt: number }>();
  readonly #clock: () => number;
  readonly #maxTickets: number;

  constructor(options: { clock?: () => number; maxTickets?: number } = {}) {
    this.#clock = options.clock ?? Date.now;
    this.#maxTickets = options.maxTickets ?? 100_000;
  }

  async put(id: string, grant: TicketGrant, ttlMs: number): Promise<void> {
    if (this.#tickets.size >= this.#maxTickets) this.#sweep();
    if (this.#tickets.size >= this.#maxTickets) {
      throw new ServiceUnavailableError('server_busy', 'Too many outstanding tickets; try again shortly.', 1);
    }
    this.#tickets.set(id, { grant, expiresAt: this.#clock() + ttlMs });
  }

  async take(id: string): Promise<TicketGrant | undefined> {
    const entry = this.#tickets.get(id);
    if (entry === undefined) return undefined;
    this.#tickets.delete(id);
    return entry.expiresAt > this.#clock() ? entry.grant : undefined;
  }

  get size(): number {
    return this.#tickets.size;
  }

  async close(): Promise<void> {
    this.#tickets.clear();
  }

  #sweep(): void {
    const now = this.#clock();
    for (const [id, entry] of this.#tickets) if (entry.expiresAt <= now) this.#tickets.delete(id);
  }
}
