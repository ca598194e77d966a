import { expect } from 'chai';
import { Deployment, login, refresh } from '../helpers/instances.js';
import { openStream, postJson, type ReceivedEvent } from '../helpers/server.js';

/**
 * Issue 14: the default store survives a restart of the one server, clean (SIGTERM) or not
 * (`kill -9` right after the last answer): a client resuming with Last-Event-ID gets exactly what
 * it missed and no reset, a refresh token still refreshes, a revoked token is still refused, and a
 * retried publish is still a duplicate. Real server processes on one data directory.
 */
describe('a restart of the server on the default store (issue 14)', function () {
  this.timeout(60_000);
  let deployment: Deployment;

  beforeEach(async () => {
    deployment = new Deployment();
    await deployment.addAccounts({ alice: ['user'], bob: ['user'], newsroom: ['publisher'] });
  });
  afterEach(() => deployment.destroy());

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`keeps events, sign-ins, revocations and idempotency keys across ${signal === 'SIGKILL' ? 'kill -9 right after the last answer' : 'SIGTERM'}`, async () => {
      // The deployment's own Ed25519 key in DATA_DIR, as a default install has.
      const defaults = { JWT_ALG: '', JWT_SECRET: '', JWT_ISSUER: '' };
      const first = await deployment.start('before', defaults);
      const alice = await login(first.url, 'alice');
      const bob = await login(first.url, 'bob');
      const newsroom = await login(first.url, 'newsroom');
      const publish = async (url: string, n: number, idempotencyKey?: string) => {
        const res = await postJson(`${url}/events`, { topics: ['public/news'], data: { n }, idempotencyKey }, newsroom.access_token);
        return { status: res.status, body: (await res.json()) as { id: string; duplicate?: boolean } };
      };

      const stream = openStream(`${first.url}/events?topic=public/news`, alice.access_token);
      const seen = await publishUntilSeen(stream, () => publish(first.url, 1));
      stream.close();
      // Bob signs out: his access token is revoked. Then two more events, the last with a key.
      expect((await postJson(`${first.url}/auth/logout`, {}, bob.access_token)).status).to.equal(204);
      expect((await postJson(`${first.url}/events`, { topics: ['public/news'], data: {} }, bob.access_token)).status).to.equal(401);
      const second = await publish(first.url, 2);
      const third = await publish(first.url, 3, 'order-3');
      expect([second.status, third.status]).to.deep.equal([201, 201]);
      await first.kill(signal);

      const after = await deployment.start('after', defaults);
      // Resume: exactly the two missed events, in order, no reset, then live.
      const resumed = openStream(`${after.url}/events?topic=public/news`, alice.access_token, { headers: { 'last-event-id': seen.id } });
      try {
        await resumed.waitFor((event) => event.id === third.body.id, 10_000);
        const fourth = await publish(after.url, 4);
        await resumed.waitFor((event) => event.id === fourth.body.id, 10_000);
        const received = resumed.events.filter((event) => event.type !== 'connected');
        expect(received.map((event) => event.id)).to.deep.equal([second.body.id, third.body.id, fourth.body.id]);
        expect(received.map((event) => JSON.parse(event.data))).to.deep.equal([{ n: 2 }, { n: 3 }, { n: 4 }]);
        expect(resumed.events.filter((event) => event.type === 'reset')).to.deep.equal([]);
      } finally {
        resumed.close();
      }
      // Alice is still signed in: her refresh token refreshes.
      const refreshed = await refresh(after.url, alice.refresh_token);
      expect(refreshed.status, JSON.stringify(refreshed.body)).to.equal(200);
      // Bob's revoked token is still refused, and his refresh token too.
      const refused = await postJson(`${after.url}/events`, { topics: ['public/news'], data: {} }, bob.access_token);
      expect(refused.status).to.equal(401);
      expect(((await refused.json()) as { error: string }).error).to.equal('invalid_token');
      expect((await refresh(after.url, bob.refresh_token)).body.error).to.equal('invalid_grant');
      // The retried publish is a duplicate of the original.
      const retried = await publish(after.url, 3, 'order-3');
      expect(retried).to.deep.include({ status: 200 });
      expect(retried.body).to.include({ id: third.body.id, duplicate: true });
      expect(after.stderr()).to.equal('');
    });
  }
});

/** Publishes until the stream shows the event (the subscription is live once `connected` came). */
async function publishUntilSeen(
  stream: ReturnType<typeof openStream>,
  publish: () => Promise<{ status: number; body: { id: string } }>,
): Promise<ReceivedEvent> {
  await stream.waitFor((event) => event.type === 'connected', 10_000);
  const { status, body } = await publish();
  expect(status).to.equal(201);
  return stream.waitFor((event) => event.id === body.id, 10_000);
}
