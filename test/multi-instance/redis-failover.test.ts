import { expect } from 'chai';
import { Deployment, login, type Instance } from '../helpers/instances.js';
import { delay, openStream, postJson, type StreamClient } from '../helpers/server.js';
import { SentinelDeployment } from '../helpers/sentinel.js';

// Issue 13: a Sentinel failover during a burst of publishes. Publishes are acknowledged (201) only
// once a replica holds them (REDIS_WAIT_REPLICAS=1); while there is no primary they answer 503,
// and the publisher retries with its idempotency key. Nothing acknowledged may be lost.

describe('failover with Redis Sentinel during a burst (issue 13)', function () {
  this.timeout(120_000);
  let sentinel: SentinelDeployment;
  let deployment: Deployment;
  let a: Instance;
  let b: Instance;
  const streams: StreamClient[] = [];

  before(async () => {
    sentinel = await SentinelDeployment.start();
    deployment = new Deployment(sentinel.url);
    await deployment.addAccounts({ root: ['admin'] });
    [a, b] = await Promise.all([deployment.start('A', { REDIS_WAIT_REPLICAS: '1' }), deployment.start('B', { REDIS_WAIT_REPLICAS: '1' })]);
  });

  after(async () => {
    for (const stream of streams) stream.close();
    await deployment?.destroy();
    await sentinel?.destroy();
  });

  it('answers 503 while there is no primary, follows the new one by itself and loses no acknowledged event', async () => {
    const token = (await login(a.url, 'root')).access_token;
    const live = openStream(`${b.url}/events?topic=failover%2F**`, token, { types: ['tick'] });
    streams.push(live);
    await live.waitFor((event) => event.type === 'connected');

    const acknowledged: string[] = [];
    const statuses = new Map<number, number>();
    let failedOver = false;
    const publishOne = async (i: number) => {
      for (;;) {
        const res = await postJson(
          `${a.url}/events`,
          { topics: [`failover/${i % 3}`], type: 'tick', data: { i }, idempotencyKey: `burst-${i}` },
          token,
        );
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const body = (await res.json()) as { id?: string; error?: string };
        // 201, or 200 for a retry whose first attempt was stored (its answer was a 503): the event, once.
        if (res.status === 201 || res.status === 200) return acknowledged.push(body.id!);
        expect(res.status, JSON.stringify(body)).to.equal(503);
        expect(body.error).to.equal('redis_unavailable');
        // The old primary is back as a replica once the failover is done: WAIT 1 can succeed again.
        if (!failedOver) {
          failedOver = true;
          void sentinel
            .waitForPrimary(sentinel.replicaPort)
            .then(() => sentinel.restartOldPrimary())
            .catch(() => undefined);
        }
        await delay(100);
      }
    };
    for (let i = 0; i < 20; i++) await publishOne(i);
    sentinel.killPrimary();
    for (let i = 20; i < 60; i++) await publishOne(i);

    expect(statuses.get(503) ?? 0, 'some publishes were refused while there was no primary').to.be.greaterThan(0);
    await sentinel.waitForPrimary(sentinel.replicaPort);
    // Every acknowledged event reaches the stream on B, in id order; B followed the new primary by itself.
    await live.waitFor((event) => event.id === acknowledged.at(-1), 30_000);
    const got = live.events.filter((event) => event.type === 'tick').map((event) => event.id);
    for (const id of acknowledged) expect(got, `acknowledged ${id}`).to.include(id);
    const sorted = [...got].sort((x, y) => {
      const [xm, xs] = x.split('-').map(Number) as [number, number];
      const [ym, ys] = y.split('-').map(Number) as [number, number];
      return xm === ym ? xs - ys : xm - ym;
    });
    expect(got, 'ids only grow').to.deep.equal(sorted);
    expect(live.events.filter((event) => event.type === 'reset')).to.have.length(0);
    for (const instance of [a, b]) expect((await fetch(`${instance.url}/readyz`)).status, instance.name).to.equal(200);
    // Each refusal is one short warning line, not an error with a stack.
    const lines = a
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"request refused"') || line.includes('"request failed"'));
    expect(lines.length).to.be.greaterThan(0);
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: number; msg: string; err?: unknown; code?: string };
      expect(entry).to.include({ level: 40, msg: 'request refused', code: 'redis_unavailable' });
      expect(entry.err).to.equal(undefined);
      expect(line.length).to.be.lessThan(400);
    }
  });
});
