import { expect } from 'chai';
import { Lifecycle } from '../../src/lifecycle.js';
import { rejection } from '../helpers/errors.js';

describe('Lifecycle', () => {
  const failures: string[] = [];
  const lifecycle = (closerTimeoutMs = 1000) =>
    new Lifecycle({ closerTimeoutMs, onCloseError: (name, error) => failures.push(`${name}: ${(error as Error).message}`) });
  beforeEach(() => failures.splice(0));

  it('closes in the reverse order of opening', async () => {
    const order: string[] = [];
    const parts = lifecycle();
    parts.onClose('first', () => order.push('first'));
    await parts.open(
      'second',
      async () => 'opened',
      () => order.push('second'),
    );
    parts.onClose('third', async () => order.push('third'));
    await parts.close();
    expect(order).to.deep.equal(['third', 'second', 'first']);
  });

  it('closes once, however often close is called', async () => {
    let closed = 0;
    const parts = lifecycle();
    parts.onClose('part', () => closed++);
    await Promise.all([parts.close(), parts.close()]);
    await parts.close();
    expect(closed).to.equal(1);
  });

  it('rolls back what a failed build opened, newest first, and rethrows', async () => {
    const order: string[] = [];
    const parts = lifecycle();
    const error = await rejection(
      parts.build(async (self) => {
        self.onClose('a', () => order.push('a'));
        await self.open(
          'b',
          () => 'b',
          () => order.push('b'),
        );
        throw new Error('start failed');
      }),
    );
    expect(error).to.have.property('message', 'start failed');
    expect(order).to.deep.equal(['b', 'a']);
  });

  it('does not register a part whose open failed', async () => {
    const order: string[] = [];
    const parts = lifecycle();
    parts.onClose('a', () => order.push('a'));
    await rejection(
      parts.open(
        'broken',
        async () => {
          throw new Error('no');
        },
        () => order.push('broken'),
      ),
    );
    await parts.close();
    expect(order).to.deep.equal(['a']);
  });

  it('goes on with the next closer when one throws or hangs past its timeout, and reports both', async () => {
    const order: string[] = [];
    const parts = lifecycle(50);
    parts.onClose('first', () => order.push('first'));
    parts.onClose('hangs', () => new Promise(() => undefined));
    parts.onClose('throws', () => {
      throw new Error('boom');
    });
    await parts.close();
    expect(order).to.deep.equal(['first']);
    expect(failures).to.deep.equal(['throws: boom', 'hangs: did not close within 50 ms']);
  });

  it('gives a closer its own timeout when it waits on purpose', async () => {
    const parts = lifecycle(10);
    let done = false;
    parts.onClose('grace', () => new Promise<void>((resolve) => setTimeout(() => ((done = true), resolve()), 60)), 1000);
    await parts.close();
    expect(done).to.equal(true);
    expect(failures).to.deep.equal([]);
  });

  it('refuses a part opened while closing', async () => {
    const parts = lifecycle();
    parts.onClose('late', () => expect(() => parts.onClose('later', () => undefined)).to.throw(/while closing/));
    await parts.close();
    expect(failures).to.deep.equal([]);
  });
});
