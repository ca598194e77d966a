import { expect } from 'chai';
import { VerifiedSecretCache } from '../../../src/auth/verified-secrets.js';

describe('VerifiedSecretCache', () => {
  it('remembers a verified secret for its stored hash until the TTL', () => {
    let now = 0;
    const cache = new VerifiedSecretCache({ ttlMs: 1000, clock: () => now });
    expect(cache.has('shop', 's3cret', 'hash-1')).to.equal(false);
    cache.remember('shop', 's3cret', 'hash-1');
    expect(cache.has('shop', 's3cret', 'hash-1')).to.equal(true);
    expect(cache.has('shop', 'other', 'hash-1')).to.equal(false);
    expect(cache.has('shop2', 's3cret', 'hash-1')).to.equal(false);
    now = 1000;
    expect(cache.has('shop', 's3cret', 'hash-1')).to.equal(false);
  });

  it('forgets a secret once the stored hash changed (rotation, removal and re-creation)', () => {
    const cache = new VerifiedSecretCache();
    cache.remember('shop', 's3cret', 'hash-1');
    expect(cache.has('shop', 's3cret', 'hash-2')).to.equal(false);
    expect(cache.has('shop', 's3cret', 'hash-1')).to.equal(false);
  });

  it('keeps id and secret apart (no "a:b" + "c" == "a" + "b:c")', () => {
    const cache = new VerifiedSecretCache();
    cache.remember('a', 'b\0c', 'h');
    expect(cache.has('a\0b', 'c', 'h')).to.equal(false);
  });

  it('starts over past its bound', () => {
    const cache = new VerifiedSecretCache({ maxEntries: 2 });
    cache.remember('a', 's', 'h');
    cache.remember('b', 's', 'h');
    cache.remember('c', 's', 'h');
    expect(cache.has('a', 's', 'h')).to.equal(false);
    expect(cache.has('c', 's', 'h')).to.equal(true);
  });
});
