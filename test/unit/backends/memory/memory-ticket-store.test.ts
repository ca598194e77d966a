import { expect } from 'chai';
import { MemoryTicketStore } from '../../../../src/backends/memory/memory-ticket-store.js';
import { ServiceUnavailableError } from '../../../../src/errors.js';

const grant = { subject: 'shop~alice', clientId: 'shop', grants: { publish: [], subscribe: ['users/shop~alice/**'] }, issuedAt: 1 };

describe('MemoryTicketStore', () => {
  it('hands a ticket out once', async () => {
    const store = new MemoryTicketStore();
    await store.put('t1', grant, 60_000);
    expect(await store.take('t1')).to.deep.equal(grant);
    expect(await store.take('t1')).to.equal(undefined);
    expect(await store.take('unknown')).to.equal(undefined);
  });

  it('gives nothing for an expired ticket, and forgets it', async () => {
    let now = 1_000_000;
    const store = new MemoryTicketStore({ clock: () => now });
    await store.put('t1', grant, 60_000);
    now += 60_000;
    expect(await store.take('t1')).to.equal(undefined);
    expect(store.size).to.equal(0);
  });

  it('sweeps expired tickets when full, and refuses new ones with 503 server_busy when none expired', async () => {
    let now = 0;
    const store = new MemoryTicketStore({ clock: () => now, maxTickets: 2 });
    await store.put('a', grant, 1000);
    await store.put('b', grant, 5000);
    now = 2000;
    await store.put('c', grant, 5000); // `a` expired and is swept
    expect(store.size).to.equal(2);
    const refused = await store.put('d', grant, 5000).catch((error: unknown) => error);
    expect(refused).to.be.instanceOf(ServiceUnavailableError);
    expect((refused as ServiceUnavailableError).code).to.equal('server_busy');
  });
});
