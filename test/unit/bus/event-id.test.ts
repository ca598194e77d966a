import { expect } from 'chai';
import { compareEventIds, EventIdGenerator, formatEventId, parseEventId, type EventIdParts } from '../../../src/bus/event-id.js';

describe('parseEventId', () => {
  it('returns milliseconds and sequence when the id is <ms>-<seq>', () => {
    expect(parseEventId('1700000000000-0')).to.deep.equal({ ms: 1700000000000, seq: 0 });
    expect(parseEventId('0-42')).to.deep.equal({ ms: 0, seq: 42 });
    expect(parseEventId('999999999999999-999999999999999')).to.deep.equal({ ms: 999999999999999, seq: 999999999999999 });
  });

  it('returns undefined when the value is not an event id', () => {
    for (const bad of [
      '',
      '1',
      '1-',
      '-1',
      '1--1',
      '1-2-3',
      'a-b',
      '1-a',
      ' 1-2',
      '1-2 ',
      '1-2\n',
      '\n1-2',
      '-1-2',
      '1.5-2',
      '1e3-0',
      '0x10-0',
      '١-٢',
      '1234567890123456-0',
      '0-1234567890123456',
    ]) {
      expect(parseEventId(bad), JSON.stringify(bad)).to.equal(undefined);
    }
  });
});

describe('formatEventId', () => {
  it('formats parts as <ms>-<seq> and parses back to the same parts', () => {
    expect(formatEventId({ ms: 1700000000000, seq: 7 })).to.equal('1700000000000-7');
    for (const parts of [
      { ms: 0, seq: 0 },
      { ms: 1, seq: 2 },
      { ms: 1700000000123, seq: 99 },
    ]) {
      expect(parseEventId(formatEventId(parts))).to.deep.equal(parts);
    }
  });
});

describe('compareEventIds', () => {
  it('orders by milliseconds first and sequence second', () => {
    const ordered: EventIdParts[] = [
      { ms: 0, seq: 0 },
      { ms: 0, seq: 1 },
      { ms: 0, seq: 10 },
      { ms: 1, seq: 0 },
      { ms: 9, seq: 5 },
      { ms: 10, seq: 0 },
      { ms: 1700000000000, seq: 0 },
    ];
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        expect(Math.sign(compareEventIds(ordered[i]!, ordered[j]!)), `${i} vs ${j}`).to.equal(Math.sign(i - j));
      }
    }
  });

  it('compares numerically rather than as text when the digit counts differ', () => {
    expect(compareEventIds(parseEventId('9-0')!, parseEventId('10-0')!)).to.be.lessThan(0);
    expect(compareEventIds(parseEventId('5-9')!, parseEventId('5-10')!)).to.be.lessThan(0);
  });
});

describe('EventIdGenerator', () => {
  it('starts a new sequence at 0 when the clock moves forward', () => {
    let now = 1000;
    const ids = new EventIdGenerator(() => now);
    expect(ids.next()).to.deep.equal({ ms: 1000, seq: 0 });
    now = 1001;
    expect(ids.next()).to.deep.equal({ ms: 1001, seq: 0 });
  });

  it('increments the sequence when the clock stands still', () => {
    const ids = new EventIdGenerator(() => 5000);
    expect([ids.next(), ids.next(), ids.next()]).to.deep.equal([
      { ms: 5000, seq: 0 },
      { ms: 5000, seq: 1 },
      { ms: 5000, seq: 2 },
    ]);
  });

  it('keeps the last milliseconds and increments the sequence when the clock steps back', () => {
    let now = 5000;
    const ids = new EventIdGenerator(() => now);
    ids.next();
    now = 4000;
    expect(ids.next()).to.deep.equal({ ms: 5000, seq: 1 });
    now = 5000;
    expect(ids.next()).to.deep.equal({ ms: 5000, seq: 2 });
    now = 5001;
    expect(ids.next()).to.deep.equal({ ms: 5001, seq: 0 });
  });

  it('issues ids after the start id when the clock is at or before it', () => {
    let now = 100;
    const ids = new EventIdGenerator(() => now, { ms: 100, seq: 0 });
    expect(ids.next()).to.deep.equal({ ms: 100, seq: 1 });
    now = 50;
    expect(ids.next()).to.deep.equal({ ms: 100, seq: 2 });
  });

  it('floors a fractional clock', () => {
    const ids = new EventIdGenerator(() => 1234.9);
    expect(ids.next()).to.deep.equal({ ms: 1234, seq: 0 });
  });

  it('issues strictly increasing ids when the clock wanders back and forth', () => {
    // A fixed, deliberately jumpy clock sequence: still, forward, back, far back, forward.
    const readings = [10, 10, 11, 9, 9, 12, 12, 3, 12, 13, 13, 13, 2, 20, 19, 21];
    let i = 0;
    const ids = new EventIdGenerator(() => readings[i++ % readings.length]!);
    let previous = ids.next();
    for (let n = 0; n < 200; n++) {
      const current = ids.next();
      expect(compareEventIds(current, previous), `${formatEventId(previous)} then ${formatEventId(current)}`).to.be.greaterThan(0);
      previous = current;
    }
  });
});
