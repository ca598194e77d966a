import { expect } from 'chai';
import { backoffDelay } from '../../../src/client/backoff.js';
import { compareEventIds } from '../../../src/client/event-id.js';

describe('backoffDelay', () => {
  it('spreads delays between 0 and a ceiling that doubles per attempt up to the maximum', () => {
    const options = { initialMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, () => 0, options)).to.equal(0);
    expect(backoffDelay(0, () => 0.999999, options)).to.equal(99);
    expect(backoffDelay(3, () => 0.5, options)).to.equal(400);
    expect(backoffDelay(50, () => 0.999999, options)).to.equal(999);
  });
});

describe('compareEventIds', () => {
  it('orders <ms>-<seq> ids numerically, not as text', () => {
    expect(compareEventIds('1700000000000-9', '1700000000000-10')).to.be.below(0);
    expect(compareEventIds('1700000000001-0', '1700000000000-99')).to.be.above(0);
    expect(compareEventIds('1700000000000-3', '1700000000000-3')).to.equal(0);
  });

  it('puts ids of another shape before every id of ours', () => {
    expect(compareEventIds('nonsense', '1-0')).to.be.below(0);
    expect(compareEventIds('1-0', 'nonsense')).to.be.above(0);
    expect(compareEventIds('x', 'y')).to.equal(0);
  });
});
