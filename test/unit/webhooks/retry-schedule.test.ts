import { expect } from 'chai';
import { backoffMs, retryAfterMs } from '../../../src/webhooks/retry-schedule.js';

describe('backoffMs', () => {
  it('doubles from the initial delay, half fixed and half random, up to the cap', () => {
    expect([1, 2, 3, 4].map((attempt) => backoffMs(attempt, 1000, 60_000, () => 0))).to.deep.equal([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map((attempt) => backoffMs(attempt, 1000, 60_000, () => 0.999999))).to.deep.equal([1000, 2000, 4000, 8000]);
    expect(backoffMs(30, 1000, 60_000, () => 0.5)).to.equal(45_000);
    expect(backoffMs(5000, 1000, 60_000, () => 0)).to.equal(30_000);
  });
});

describe('retryAfterMs', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);

  it('reads delay-seconds and HTTP-dates (RFC 9110 §10.2.3)', () => {
    expect(retryAfterMs('120', now)).to.equal(120_000);
    expect(retryAfterMs(' 0 ', now)).to.equal(0);
    expect(retryAfterMs('Thu, 01 Jan 2026 12:01:30 GMT', now)).to.equal(90_000);
    expect(retryAfterMs('Thu, 01 Jan 2026 11:00:00 GMT', now)).to.equal(0);
  });

  it('ignores what it cannot read', () => {
    for (const value of [undefined, '', '-5', '1.5', 'soon', '99999999999'])
      expect(retryAfterMs(value, now), String(value)).to.equal(undefined);
  });
});
