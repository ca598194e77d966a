import { expect } from 'chai';
import { AddressRefusedError, addressProblem, checkedLookup, hostProblem, type Resolver } from '../../../src/webhooks/address-policy.js';

const lookupResult = (resolver: Resolver, allow: boolean, options: { all?: boolean; family?: number } = {}) =>
  new Promise<{ error: unknown; address: unknown; family: unknown }>((resolve) => {
    checkedLookup(resolver, allow)('hooks.example.com', options, (error, address, family) => resolve({ error, address, family }));
  });

describe('addressProblem', () => {
  const cases: Array<[string, string | undefined, string | undefined]> = [
    // address, without allowPrivateNetwork, with it
    ['93.184.215.14', undefined, undefined],
    ['2606:4700::1111', undefined, undefined],
    ['127.0.0.1', 'private_address', undefined],
    ['127.255.255.254', 'private_address', undefined],
    ['10.0.0.1', 'private_address', undefined],
    ['172.31.255.255', 'private_address', undefined],
    ['172.32.0.1', undefined, undefined],
    ['192.168.0.1', 'private_address', undefined],
    ['169.254.169.254', 'private_address', undefined],
    ['100.127.0.1', 'private_address', undefined],
    ['198.18.0.1', 'private_address', undefined],
    ['::1', 'private_address', undefined],
    ['fe80::1', 'private_address', undefined],
    ['fd12:3456::1', 'private_address', undefined],
    ['::ffff:10.0.0.1', 'private_address', undefined],
    ['::ffff:93.184.215.14', undefined, undefined],
    ['64:ff9b::a00:1', 'private_address', undefined],
    ['64:ff9b::5db8:d70e', undefined, undefined],
    ['2002:7f00:1::', 'private_address', undefined],
    ['2001:db8::1', 'private_address', undefined],
    ['0.0.0.0', 'reserved_address', 'reserved_address'],
    ['::', 'reserved_address', 'reserved_address'],
    ['224.0.0.251', 'reserved_address', 'reserved_address'],
    ['255.255.255.255', 'reserved_address', 'reserved_address'],
    ['ff02::1', 'reserved_address', 'reserved_address'],
    ['::ffff:0.0.0.0', 'reserved_address', 'reserved_address'],
    ['not-an-ip', 'reserved_address', 'reserved_address'],
  ];
  for (const [address, without, withFlag] of cases) {
    it(`says ${without ?? 'nothing'} / ${withFlag ?? 'nothing'} for ${address}`, () => {
      expect(addressProblem(address, false)).to.equal(without);
      expect(addressProblem(address, true)).to.equal(withFlag);
    });
  }

  it('treats localhost names as loopback and leaves other names to delivery time', () => {
    expect(hostProblem('localhost', false)).to.equal('private_address');
    expect(hostProblem('LOCALHOST.', false)).to.equal('private_address');
    expect(hostProblem('app.localhost', false)).to.equal('private_address');
    expect(hostProblem('localhost', true)).to.equal(undefined);
    expect(hostProblem('[::1]', false)).to.equal('private_address');
    expect(hostProblem('hooks.example.com', false)).to.equal(undefined);
  });
});

describe('checkedLookup', () => {
  const resolver: (addresses: string[]) => Resolver = (addresses) => async () =>
    addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

  it('hands over the checked address, or all of them when asked', async () => {
    expect(await lookupResult(resolver(['93.184.215.14']), false)).to.deep.equal({ error: null, address: '93.184.215.14', family: 4 });
    const all = await lookupResult(resolver(['93.184.215.14', '2606:4700::1111']), false, { all: true });
    expect(all.error).to.equal(null);
    expect(all.address).to.deep.equal([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700::1111', family: 6 },
    ]);
    expect((await lookupResult(resolver(['93.184.215.14', '2606:4700::1111']), false, { family: 6 })).address).to.equal('2606:4700::1111');
  });

  it('refuses the name when any address is private (a rebinding answer), unless allowed', async () => {
    const refused = await lookupResult(resolver(['93.184.215.14', '127.0.0.1']), false, { all: true });
    expect(refused.error).to.be.instanceOf(AddressRefusedError);
    expect(refused.error).to.include({ code: 'ERR_WEBHOOK_ADDRESS_REFUSED', address: '127.0.0.1', reason: 'private_address' });
    expect((await lookupResult(resolver(['127.0.0.1']), true)).address).to.equal('127.0.0.1');
    expect((await lookupResult(resolver(['0.0.0.0']), true)).error).to.include({ reason: 'reserved_address' });
  });

  it('passes resolver failures and empty answers on as errors', async () => {
    const failing: Resolver = async () => {
      throw Object.assign(new Error('no such host'), { code: 'ENOTFOUND' });
    };
    expect((await lookupResult(failing, false)).error).to.include({ code: 'ENOTFOUND' });
    expect((await lookupResult(resolver([]), false)).error).to.include({ code: 'ENOTFOUND' });
  });
});
