import { expect } from 'chai';
import { DebouncedHoldings } from '../../../src/presence/debounced-holdings.js';
import { FakeTimers } from '../../webhooks/fake-timers.js';

describe('DebouncedHoldings (fake timers)', () => {
  let timers: FakeTimers;
  let told: string[];
  let holdings: DebouncedHoldings;

  beforeEach(() => {
    timers = new FakeTimers();
    told = [];
    holdings = new DebouncedHoldings({
      delayMs: 5000,
      timers,
      hold: (key) => told.push(`hold ${key}`),
      release: (key) => told.push(`release ${key}`),
    });
  });

  it('holds a key once for any number of users and releases it the delay after the last one left', async () => {
    for (let i = 0; i < 5; i++) holdings.acquire('alice');
    for (let i = 0; i < 4; i++) holdings.release('alice');
    await timers.advance(60_000);
    expect(told).to.deep.equal(['hold alice']);
    holdings.release('alice');
    await timers.advance(4999);
    expect(told).to.deep.equal(['hold alice']);
    await timers.advance(1);
    expect(told).to.deep.equal(['hold alice', 'release alice']);
    expect(timers.size).to.equal(0);
  });

  it('makes no release and no hold when a user comes back within the delay', async () => {
    holdings.acquire('alice');
    holdings.release('alice');
    await timers.advance(4999);
    holdings.acquire('alice');
    await timers.advance(60_000);
    expect(told).to.deep.equal(['hold alice']);
    expect(timers.size).to.equal(0);
    holdings.release('alice');
    await timers.advance(5000);
    expect(told).to.deep.equal(['hold alice', 'release alice']);
  });

  it('holds again when a user comes after the release', async () => {
    holdings.acquire('alice');
    holdings.release('alice');
    await timers.advance(5000);
    holdings.acquire('alice');
    expect(told).to.deep.equal(['hold alice', 'release alice', 'hold alice']);
  });

  it('keeps keys apart and ignores a release of a key nobody holds', async () => {
    holdings.acquire('alice');
    holdings.acquire('bob');
    holdings.release('carol');
    holdings.release('bob');
    await timers.advance(5000);
    expect(told).to.deep.equal(['hold alice', 'hold bob', 'release bob']);
    expect(holdings.size).to.equal(1);
  });

  it('releases at once with no delay', () => {
    const now = new DebouncedHoldings({
      delayMs: 0,
      timers,
      hold: (key) => told.push(`hold ${key}`),
      release: (key) => told.push(`release ${key}`),
    });
    now.acquire('x');
    now.release('x');
    expect(told).to.deep.equal(['hold x', 'release x']);
  });

  it('on close, releases what waits when told to flush, and otherwise leaves it held', async () => {
    holdings.acquire('alice');
    holdings.acquire('bob');
    holdings.release('alice');
    holdings.close(false);
    await timers.advance(60_000);
    expect(told).to.deep.equal(['hold alice', 'hold bob']);
    expect(timers.size).to.equal(0);

    const flushing = new DebouncedHoldings({ delayMs: 5000, timers, hold: () => undefined, release: (key) => told.push(`flushed ${key}`) });
    flushing.acquire('carol');
    flushing.release('carol');
    flushing.close(true);
    expect(told.at(-1)).to.equal('flushed carol');
    expect(timers.size).to.equal(0);
  });
});
