import { expect } from 'chai';
import { DeadlineWheel, type DeadlineTarget } from '../../../src/streams/deadline-wheel.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function target(log: Array<{ name: string; at: number }>, name: string): DeadlineTarget {
  return { onDeadline: () => log.push({ name, at: Date.now() }) };
}

describe('DeadlineWheel', () => {
  it('calls each target once, never before its deadline, in deadline order', async () => {
    const wheel = new DeadlineWheel({ resolutionMs: 20, clock: Date.now });
    const log: Array<{ name: string; at: number }> = [];
    const start = Date.now();
    wheel.schedule(target(log, 'late'), start + 90);
    wheel.schedule(target(log, 'early'), start + 25);
    wheel.schedule(target(log, 'middle'), start + 50);
    await delay(200);
    expect(log.map((entry) => entry.name)).to.deep.equal(['early', 'middle', 'late']);
    expect(log[0]!.at).to.be.at.least(start + 25);
    expect(log[2]!.at).to.be.at.least(start + 90);
    expect(wheel.size).to.equal(0);
    wheel.stop();
  });

  it('does not call a target whose deadline was cancelled', async () => {
    const wheel = new DeadlineWheel({ resolutionMs: 10, clock: Date.now });
    const log: Array<{ name: string; at: number }> = [];
    const kept = target(log, 'kept');
    const cancelled = target(log, 'cancelled');
    wheel.schedule(kept, Date.now() + 30);
    wheel.cancel(cancelled, wheel.schedule(cancelled, Date.now() + 20));
    await delay(100);
    expect(log.map((entry) => entry.name)).to.deep.equal(['kept']);
    wheel.stop();
  });

  it('lets a target schedule itself again from onDeadline', async () => {
    const wheel = new DeadlineWheel({ resolutionMs: 10, clock: Date.now });
    let calls = 0;
    const repeating: DeadlineTarget = {
      onDeadline() {
        if (++calls < 3) wheel.schedule(repeating, Date.now() + 15);
      },
    };
    wheel.schedule(repeating, Date.now() + 15);
    await delay(200);
    expect(calls).to.equal(3);
    wheel.stop();
  });

  it('refuses a resolution that is not positive', () => {
    expect(() => new DeadlineWheel({ resolutionMs: 0, clock: Date.now })).to.throw(RangeError);
  });
});
