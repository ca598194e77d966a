import { expect } from 'chai';
import { LoginThrottle } from '../../../src/auth/login-throttle.js';
import { singleProcessAttemptCounters } from '../../../src/backends/single-process.js';
import { TooManyRequestsError } from '../../../src/errors.js';

describe('LoginThrottle', () => {
  const options = {
    maxPerAccountAndAddress: 100,
    maxPerAddress: 1000,
    maxPerAccount: 3,
    windowMs: 900_000,
    counters: singleProcessAttemptCounters,
  };
  const refused = async (promise: Promise<unknown>) => {
    try {
      await promise;
    } catch (error) {
      expect(error).to.be.instanceOf(TooManyRequestsError);
      return true;
    }
    return false;
  };
  async function tripAccount(throttle: LoginThrottle, account: string) {
    for (let i = 0; i < 3; i++) {
      await throttle.attempt(account, `10.0.0.${i}`);
      await throttle.failed(account);
    }
  }

  it('refuses an unknown address once the account has maxPerAccount failures', async () => {
    const throttle = new LoginThrottle(options);
    await tripAccount(throttle, 'alice');
    expect(await refused(throttle.attempt('alice', '10.9.9.9'))).to.equal(true);
  });

  it('lets an address that signed in to the account before through the per-account limit', async () => {
    const throttle = new LoginThrottle(options);
    await throttle.attempt('alice', '192.0.2.1');
    await throttle.succeeded('alice', '192.0.2.1');
    await tripAccount(throttle, 'alice');
    expect(await refused(throttle.attempt('alice', '192.0.2.1'))).to.equal(false);
    // Trust is per account: the same address is a stranger to another account.
    await tripAccount(throttle, 'bob');
    expect(await refused(throttle.attempt('bob', '192.0.2.1'))).to.equal(true);
  });

  it('still holds a trusted address to its own per-(account, address) limit', async () => {
    const throttle = new LoginThrottle({ ...options, maxPerAccountAndAddress: 2 });
    await throttle.attempt('alice', '192.0.2.1');
    await throttle.succeeded('alice', '192.0.2.1');
    await throttle.attempt('alice', '192.0.2.1');
    await throttle.attempt('alice', '192.0.2.1');
    expect(await refused(throttle.attempt('alice', '192.0.2.1'))).to.equal(true);
  });

  it('forgets the trust after trustTtlMs', async () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle({ ...options, trustTtlMs: 60_000, clock: () => now });
    await throttle.attempt('alice', '192.0.2.1');
    await throttle.succeeded('alice', '192.0.2.1');
    await tripAccount(throttle, 'alice');
    now += 61_000;
    expect(await refused(throttle.attempt('alice', '192.0.2.1'))).to.equal(true);
  });

  it('keeps at most maxTrusted pairs, dropping the oldest first', async () => {
    const throttle = new LoginThrottle({ ...options, maxTrusted: 2 });
    for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      await throttle.attempt('alice', address);
      await throttle.succeeded('alice', address);
    }
    await tripAccount(throttle, 'alice');
    expect(await refused(throttle.attempt('alice', '192.0.2.1'))).to.equal(true);
    expect(await refused(throttle.attempt('alice', '192.0.2.3'))).to.equal(false);
  });
});
