import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { verifyWebhook } from '../../src/webhooks/webhook-signature.js';
import { Deployment, login, type Instance } from '../helpers/instances.js';
import { deleteKeys, TEST_REDIS_URL } from '../helpers/redis.js';
import { delay, openStream, type StreamClient } from '../helpers/server.js';
import { TestReceiver } from '../webhooks/test-receiver.js';

// Issue 15: presence across two server processes on one real Redis, told to a real webhook
// receiver (which verifies every signature) and to EventSource clients. Members are accounts,
// not connections; a crashed instance's members leave once, within the lease.

const LEASE_S = 3;
const LEAVE_DELAY_S = 2;
/** The bound the configuration promises (1.1 × PRESENCE_LEASE), plus the webhook's linger and a shared machine's slack. */
const LAPSE_BOUND_MS = 1.1 * LEASE_S * 1000 + 2500;
const TOPIC = 'public/docs/1';

interface Told {
  readonly id: string;
  readonly kind: string;
  readonly topic?: string;
  readonly subject?: string;
  readonly reason?: string;
  readonly connectionId?: string;
  readonly instance: string;
  readonly receivedAt: number;
}

describe('presence across instances on Redis (issue 15)', function () {
  this.timeout(90_000);
  const deployment = new Deployment(TEST_REDIS_URL);
  const secret = randomBytes(32).toString('base64');
  let receiver: TestReceiver;
  let a: Instance;
  let b: Instance;
  const told: Told[] = [];
  const streams: StreamClient[] = [];

  /** Each event once (a retried delivery repeats event ids). */
  const events = (predicate: (event: Told) => boolean = () => true) => {
    const seen = new Set<string>();
    return told.filter((event) => !seen.has(event.id) && (seen.add(event.id), true) && predicate(event));
  };
  const about = (subject: string, kind: string) =>
    events((event) => event.subject === subject && event.kind === kind && (event.topic === undefined || event.topic === TOPIC));
  const tab = async (instance: Instance, subject: string, presence = false) => {
    const token = (await login(instance.url, subject)).access_token;
    const stream = openStream(`${instance.url}/events?topic=${encodeURIComponent(TOPIC)}${presence ? '&presence=true' : ''}`, token, {
      types: ['presence-snapshot', 'presence-join', 'presence-leave'],
    });
    streams.push(stream);
    await stream.waitFor((event) => event.type === (presence ? 'presence-snapshot' : 'connected'), 10_000);
    return stream;
  };
  const membersOn = async (instance: Instance, subject = 'watcher') => {
    const token = (await login(instance.url, subject)).access_token;
    const res = await fetch(`${instance.url}/presence?topic=${encodeURIComponent(TOPIC)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).to.equal(200);
    return ((await res.json()) as { members: Array<{ subject: string }> }).members.map((member) => member.subject);
  };

  before(async () => {
    receiver = await TestReceiver.start();
    receiver.handler = (request, response) => {
      verifyWebhook({ secret, headers: request.headers, body: request.rawBody });
      const receivedAt = Date.now();
      for (const event of (JSON.parse(request.rawBody) as { events: Told[] }).events) told.push({ ...event, receivedAt });
      response.writeHead(204).end();
    };
    const presenceFile = path.join(deployment.dataDir, 'presence.yaml');
    writeFileSync(presenceFile, 'topics:\n  - selector: public/docs/*\n');
    const webhooksFile = path.join(deployment.dataDir, 'webhooks.json');
    writeFileSync(
      webhooksFile,
      JSON.stringify({
        targets: [
          {
            url: receiver.url,
            events: ['member-added', 'member-removed', 'disconnected'],
            secret,
            allowPrivateNetwork: true,
            lingerMs: 10,
          },
        ],
      }),
    );
    await deployment.addAccounts(
      Object.fromEntries(['alice', 'bob', 'carol', 'dave', 'erin', 'gina', 'watcher'].map((name) => [name, ['user']])),
    );
    const env = {
      PRESENCE_FILE: presenceFile,
      WEBHOOKS_FILE: webhooksFile,
      PRESENCE_LEASE: String(LEASE_S),
      PRESENCE_LEAVE_DELAY: String(LEAVE_DELAY_S),
    };
    [a, b] = await Promise.all([deployment.start('A', env), deployment.start('B', env)]);
  });

  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });

  after(async () => {
    await deployment.destroy();
    await receiver.close();
    await deleteKeys(TEST_REDIS_URL, deployment.keyPrefix);
  });

  it('makes five tabs of one user on two instances one member; closing four keeps her; the fifth makes her leave once', async () => {
    const tabs = [
      ...(await Promise.all([tab(a, 'alice'), tab(a, 'alice'), tab(a, 'alice')])),
      ...(await Promise.all([tab(b, 'alice'), tab(b, 'alice')])),
    ];
    await receiver.waitFor(() => about('alice', 'member-added').length === 1, 'her arrival');
    expect(await membersOn(a)).to.deep.equal(['alice']);
    expect(await membersOn(b)).to.deep.equal(['alice']);
    for (const closing of tabs.slice(0, 4)) closing.close();
    await delay(LEAVE_DELAY_S * 1000 + 500);
    await tab(a, 'bob'); // a positive signal: anything the four closes caused comes before bob's arrival
    await receiver.waitFor(() => about('bob', 'member-added').length === 1, "bob's arrival");
    expect(about('alice', 'member-removed'), 'still present with one tab').to.deep.equal([]);
    expect((await membersOn(b)).sort()).to.deep.equal(['alice', 'bob']);
    tabs[4]!.close();
    await receiver.waitFor(() => about('alice', 'member-removed').length === 1, 'her departure', LEAVE_DELAY_S * 1000 + 8000);
    expect(about('alice', 'member-removed')[0]).to.include({ reason: 'left' });
    expect(about('alice', 'member-added')).to.have.length(1);
    expect(await membersOn(a)).to.deep.equal(['bob']);
  });

  it('tells nothing when a user drops and reconnects within the leave delay, even to the other instance', async () => {
    const watching = await tab(b, 'watcher', true);
    const first = await tab(a, 'carol');
    await receiver.waitFor(() => about('carol', 'member-added').length === 1, 'her arrival');
    first.close();
    await delay(500);
    await tab(b, 'carol');
    await delay(LEAVE_DELAY_S * 1000 + 1000);
    await tab(a, 'dave'); // positive signal
    await receiver.waitFor(() => about('dave', 'member-added').length === 1, "dave's arrival");
    await watching.waitFor((event) => event.type === 'presence-join' && event.data.includes('"dave"'));
    expect(about('carol', 'member-added')).to.have.length(1);
    expect(about('carol', 'member-removed')).to.deep.equal([]);
    // (bob, whose tab the previous test left, may leave meanwhile: only carol and dave are this test's.)
    const seen = watching.events
      .filter((event) => event.type.startsWith('presence-'))
      .map((event) => `${event.type} ${(JSON.parse(event.data) as { subject?: string }).subject ?? ''}`.trim())
      .filter((line) => !line.endsWith(' bob'));
    expect(seen).to.deep.equal(['presence-snapshot', 'presence-join carol', 'presence-join dave']);
  });

  it("tells the leaves of a kill -9'd instance's members within the lease time, once, and keeps those also on another instance", async () => {
    const watching = await tab(b, 'watcher', true);
    const erinTab = await tab(a, 'erin');
    await tab(a, 'gina');
    await tab(b, 'gina');
    await receiver.waitFor(() => about('erin', 'member-added').length === 1 && about('gina', 'member-added').length === 1, 'arrivals');
    const erinConnection = (JSON.parse(erinTab.events.find((event) => event.type === 'connected')!.data) as { connectionId: string })
      .connectionId;
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    await receiver.waitFor(() => about('erin', 'member-removed').length === 1, "erin's lapsed membership", LAPSE_BOUND_MS + 5000);
    const removed = about('erin', 'member-removed')[0]!;
    expect(removed).to.include({ reason: 'lease_expired' });
    expect(removed.receivedAt - killedAt, 'within 1.1 × PRESENCE_LEASE (and the webhook linger)').to.be.below(LAPSE_BOUND_MS);
    await receiver.waitFor(() => events((e) => e.kind === 'disconnected' && e.connectionId === erinConnection).length === 1, 'her stream');
    expect(events((e) => e.kind === 'disconnected' && e.connectionId === erinConnection)[0]).to.include({ reason: 'lease_expired' });
    await watching.waitFor((event) => event.type === 'presence-leave' && event.data.includes('"erin"'));
    // Once: nothing more is told of erin however long the other instance keeps reaping.
    await delay(LEASE_S * 1000);
    await tab(b, 'bob'); // positive signal
    await receiver.waitFor(() => about('bob', 'member-added').length === 2, "bob's second arrival");
    expect(about('erin', 'member-removed')).to.have.length(1);
    expect(watching.events.filter((event) => event.type === 'presence-leave' && event.data.includes('"erin"'))).to.have.length(1);
    expect(about('gina', 'member-removed'), 'gina is still present on B').to.deep.equal([]);
    expect((await membersOn(b)).sort()).to.deep.equal(['bob', 'gina', 'watcher']);
  });
});
