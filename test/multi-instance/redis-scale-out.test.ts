import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { deleteKeys, freePort, OwnRedis, TEST_REDIS_URL } from '../helpers/redis.js';
import { Deployment, login, refresh, type Instance } from '../helpers/instances.js';
import { delay, openStream, postJson, type StreamClient } from '../helpers/server.js';
import { publishedEvents, waitUntil } from '../helpers/streams.js';

// Issue 4: several server processes sharing one real redis-server behave as one server.
// Each instance is a separate `node --import tsx src/main.ts` process on its own port.

const TOPIC = 'users/alice/**';
const q = (selector: string) => `?topic=${encodeURIComponent(selector)}`;

async function publishOn(instance: Instance, token: string, n: number, label: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await postJson(`${instance.url}/events`, { topics: ['users/alice/inbox'], type: 'tick', data: { label, i } }, token);
    const body = (await res.json()) as { id: string };
    expect(res.status, JSON.stringify(body)).to.equal(201);
    ids.push(body.id);
  }
  return ids;
}

const ticks = (stream: StreamClient) => publishedEvents(stream).map((event) => event.id);

describe('scale-out on Redis: several instances, one event stream (issue 4)', function () {
  this.timeout(60_000);
  const deployment = new Deployment(TEST_REDIS_URL);
  let a: Instance;
  let b: Instance;
  let c: Instance;
  let publisher: string;
  const streams: StreamClient[] = [];
  const open = (instance: Instance, token: string, headers: Record<string, string> = {}) => {
    const stream = openStream(`${instance.url}/events${q(TOPIC)}`, token, { types: ['tick'], headers });
    streams.push(stream);
    return stream;
  };

  before(async () => {
    await deployment.addAccounts({ alice: ['user'], newsroom: ['publisher'] });
    [a, b, c] = await Promise.all([deployment.start('A'), deployment.start('B'), deployment.start('C')]);
    publisher = (await login(a.url, 'newsroom')).access_token;
  });

  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });

  after(async () => {
    await deployment.destroy();
    await deleteKeys(TEST_REDIS_URL, deployment.keyPrefix);
  });

  it('delivers an event published on A to subscribers on B and C once each, in publish order', async () => {
    const alice = (await login(b.url, 'alice')).access_token;
    const onB = open(b, alice);
    const onC = open(c, alice);
    await Promise.all([onB.waitFor((e) => e.type === 'connected'), onC.waitFor((e) => e.type === 'connected')]);
    const ids = await publishOn(a, publisher, 20, 'fan-out');
    await Promise.all([onB.waitFor((e) => e.id === ids.at(-1)), onC.waitFor((e) => e.id === ids.at(-1))]);
    await delay(100); // any duplicate would have arrived by now
    expect(ticks(onB)).to.deep.equal(ids);
    expect(ticks(onC)).to.deep.equal(ids);
  });

  it('replays every missed event without duplicates when a subscriber leaves A and resumes on B with Last-Event-ID', async () => {
    const alice = (await login(a.url, 'alice')).access_token;
    const onA = open(a, alice);
    await onA.waitFor((e) => e.type === 'connected');
    const before = await publishOn(c, publisher, 3, 'before');
    await onA.waitFor((e) => e.id === before.at(-1));
    onA.close();
    const missed = await publishOn(a, publisher, 5, 'missed');
    const onB = open(b, alice, { 'Last-Event-ID': before.at(-1)! });
    await onB.waitFor((e) => e.id === missed.at(-1));
    const live = await publishOn(a, publisher, 2, 'live');
    await onB.waitFor((e) => e.id === live.at(-1));
    await delay(100);
    expect(ticks(onB)).to.deep.equal([...missed, ...live]);
    expect(onB.events.filter((e) => e.type === 'reset')).to.have.length(0);
  });

  it('detects a refresh token rotated on A and reused on B, and revokes the family everywhere', async () => {
    const first = await login(a.url, 'alice');
    const rotated = await refresh(a.url, first.refresh_token);
    expect(rotated.status).to.equal(200);
    const reused = await refresh(b.url, first.refresh_token);
    expect(reused.status).to.equal(400);
    expect(reused.body.error).to.equal('invalid_grant');
    // The whole family is revoked: the successor fails too, on a third instance.
    const successor = await refresh(c.url, rotated.body.refresh_token);
    expect(successor.status).to.equal(400);
  });

  it('lets exactly one of two parallel refreshes with one token succeed when they land on different instances', async () => {
    const { refresh_token } = await login(a.url, 'alice');
    const results = await Promise.all([refresh(a.url, refresh_token), refresh(b.url, refresh_token)]);
    expect(results.map((r) => r.status).sort()).to.deep.equal([200, 400]);
  });

  it('closes the stream on A within 5 s when the user logs out on B, and refuses the token on C', async () => {
    const session = await login(a.url, 'alice');
    const onA = open(a, session.access_token);
    await onA.waitFor((e) => e.type === 'connected');
    const started = Date.now();
    const res = await fetch(`${b.url}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${session.access_token}` } });
    expect(res.status).to.equal(204);
    const closed = await onA.waitFor((e) => e.type === 'closed', 5000);
    expect(JSON.parse(closed.data)).to.deep.equal({ reason: 'revoked' });
    expect(Date.now() - started).to.be.lessThan(5000);
    // C learns of the revocation through its own tail of the revocation stream, in its own time:
    // the token must be refused there too, within the same 5 s.
    for (;;) {
      const controller = new AbortController();
      const res = await fetch(`${c.url}/events${q(TOPIC)}`, {
        headers: { authorization: `Bearer ${session.access_token}`, accept: 'text/event-stream' },
        signal: controller.signal,
      });
      controller.abort();
      if (res.status === 401) break;
      expect(Date.now() - started, `C still accepts the token (${res.status})`).to.be.lessThan(5000);
      await delay(20);
    }
  });

  it('renews a stream held by A when the renewal lands on B, and answers 404 for a stream nobody holds or another user holds', async () => {
    const alice = await login(a.url, 'alice');
    const onA = open(a, alice.access_token);
    const connected = JSON.parse((await onA.waitFor((e) => e.type === 'connected')).data) as { renewUrl: string; connectionId: string };
    const fresh = (await login(b.url, 'alice')).access_token;
    const renew = (url: string, token: string, renewUrl = connected.renewUrl) =>
      fetch(`${url}${renewUrl}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const res = await renew(b.url, fresh);
    const body = (await res.json()) as { connectionId: string; expiresAt: string };
    expect(res.status, JSON.stringify(body)).to.equal(200);
    expect(body.connectionId).to.equal(connected.connectionId);
    await onA.waitFor((e) => e.type === 'token-renewed');
    const missing = await renew(c.url, fresh, '/events/connections/nobody-holds-this/token');
    expect(missing.status).to.equal(404);
    expect(((await missing.json()) as { error: string }).error).to.equal('connection_not_found');
    const stranger = await renew(c.url, publisher);
    expect(stranger.status).to.equal(404);
  });

  it('shares login counters: attempts spread over instances are limited together', async () => {
    const [limited, other] = await Promise.all([
      deployment.start('limited', { LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: '3' }),
      deployment.start('limited-2', { LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: '3' }),
    ]);
    const attempt = (instance: Instance) =>
      fetch(`${instance.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'nobody', password: 'wrong' }),
      });
    const statuses = [];
    for (const instance of [limited, other, limited, other]) statuses.push((await attempt(instance)).status);
    expect(statuses).to.deep.equal([401, 401, 401, 429]);
    await Promise.all([limited.kill(), other.kill()]);
  });

  it('counts MAX_STREAMS_PER_USER over all instances, and frees a slot when a stream ends', async () => {
    const [x, y] = await Promise.all([
      deployment.start('slots-x', { MAX_STREAMS_PER_USER: '2' }),
      deployment.start('slots-y', { MAX_STREAMS_PER_USER: '2' }),
    ]);
    const token = (await login(x.url, 'newsroom')).access_token;
    const news = (instance: Instance) => {
      const stream = openStream(`${instance.url}/events${q('public/**')}`, token);
      streams.push(stream);
      return stream;
    };
    const first = news(x);
    const second = news(y);
    await Promise.all([first.waitFor((e) => e.type === 'connected'), second.waitFor((e) => e.type === 'connected')]);
    const third = news(x);
    expect((await third.waitForError()).code).to.equal(429);
    third.close();
    second.close();
    // The server notices the closed connection, ends the stream and releases its slot.
    const deadline = Date.now() + 5000;
    for (;;) {
      const retry = news(x);
      const outcome = await Promise.race([
        retry.waitFor((e) => e.type === 'connected').then(() => 'connected'),
        retry.waitForError().then(() => 'refused'),
      ]);
      if (outcome === 'connected') break;
      retry.close();
      if (Date.now() > deadline) throw new Error('the slot was never released');
      await delay(100);
    }
    for (const stream of streams.splice(0)) stream.close();
    await Promise.all([x.kill(), y.kill()]);
  });

  it('loses no event for a subscriber whose instance is killed and who resumes on another', async () => {
    const doomed = await deployment.start('doomed');
    const alice = (await login(doomed.url, 'alice')).access_token;
    const onDoomed = open(doomed, alice);
    await onDoomed.waitFor((e) => e.type === 'connected');
    const seen = await publishOn(a, publisher, 3, 'seen');
    await onDoomed.waitFor((e) => e.id === seen.at(-1));
    // Publishing goes on while the instance dies.
    const publishing = publishOn(b, publisher, 10, 'during');
    await delay(5);
    await doomed.kill('SIGKILL');
    onDoomed.close();
    const during = await publishing;
    const lastSeen = ticks(onDoomed).at(-1)!;
    const resumed = open(c, alice, { 'Last-Event-ID': lastSeen });
    await resumed.waitFor((e) => e.id === during.at(-1));
    await delay(100);
    const all = [...seen, ...during];
    expect([...ticks(onDoomed), ...ticks(resumed)]).to.deep.equal(all);
  });

  it('serves one port from several worker processes with WORKERS=2', async () => {
    const port = await freePort();
    const workers = await deployment.start('workers', { WORKERS: '2', PORT: String(port) });
    const alice = (await login(workers.url, 'alice')).access_token;
    // Connections are handed out round-robin: four streams land on both workers.
    const four = [0, 1, 2, 3].map(() => open(workers, alice));
    await Promise.all(four.map((stream) => stream.waitFor((e) => e.type === 'connected')));
    const ids = await publishOn(a, publisher, 3, 'workers');
    await Promise.all(four.map((stream) => stream.waitFor((e) => e.id === ids.at(-1))));
    for (const stream of four) expect(ticks(stream)).to.deep.equal(ids);
    for (const stream of four) stream.close();
    await workers.kill('SIGTERM');
    expect(workers.child.exitCode).to.equal(0);
  });
});

describe('scale-out on Redis: Redis restarts and outages (issue 4)', function () {
  this.timeout(60_000);
  let redis: OwnRedis;
  let deployment: Deployment;
  let e: Instance;
  let f: Instance;
  const streams: StreamClient[] = [];

  before(async () => {
    redis = await OwnRedis.start();
    deployment = new Deployment(redis.url);
    await deployment.addAccounts({ alice: ['user'], newsroom: ['publisher'] });
    [e, f] = await Promise.all([deployment.start('E'), deployment.start('F')]);
  });

  after(async () => {
    for (const stream of streams) stream.close();
    await deployment.destroy();
    await redis.destroy();
  });

  it('reconnects by itself after a Redis restart, answers 503 to publishes while Redis is down, and loses no acknowledged event', async () => {
    const publisher = (await login(e.url, 'newsroom')).access_token;
    const alice = (await login(f.url, 'alice')).access_token;
    const live = openStream(`${f.url}/events${q(TOPIC)}`, alice, { types: ['tick'] });
    streams.push(live);
    await live.waitFor((event) => event.type === 'connected');
    const acknowledged = await publishOn(e, publisher, 3, 'before');
    await live.waitFor((event) => event.id === acknowledged.at(-1));

    await redis.stop();
    // While Redis is down: never a 201 for an event that was not stored.
    let refused = 0;
    for (let i = 0; i < 5; i++) {
      const res = await postJson(`${e.url}/events`, { topics: ['users/alice/inbox'], type: 'tick', data: { down: i } }, publisher);
      const body = (await res.json()) as { id?: string; error?: string };
      if (res.status === 201) acknowledged.push(body.id!);
      else {
        expect(res.status, JSON.stringify(body)).to.equal(503);
        expect(body.error).to.equal('redis_unavailable');
        expect(res.headers.get('retry-after')).to.equal('1');
        refused++;
      }
    }
    expect(refused).to.be.greaterThan(0);
    const ready = await fetch(`${e.url}/readyz`);
    expect(ready.status).to.equal(503);

    await redis.restart();
    await waitUntil(() => false, 0, 'nothing').catch(() => undefined);
    for (const instance of [e, f]) {
      const deadline = Date.now() + 10_000;
      while ((await fetch(`${instance.url}/readyz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error(`${instance.name} did not become ready again`);
        await delay(100);
      }
    }
    acknowledged.push(...(await publishOn(e, publisher, 3, 'after')));
    // The open stream on F resumes by itself: its instance's tail goes on from the last id it read.
    await live.waitFor((event) => event.id === acknowledged.at(-1), 10_000);
    await delay(100);
    expect(ticks(live)).to.deep.equal(acknowledged);
    // A subscriber that resumes with Last-Event-ID after the restart gets the persisted history.
    const resumed = openStream(`${e.url}/events${q(TOPIC)}`, alice, { types: ['tick'], headers: { 'Last-Event-ID': acknowledged[0]! } });
    streams.push(resumed);
    await resumed.waitFor((event) => event.id === acknowledged.at(-1));
    expect(ticks(resumed)).to.deep.equal(acknowledged.slice(1));
  });

  it('refuses to start, naming Redis, when Redis is unreachable', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: deployment.env({ REDIS_URL: `redis://127.0.0.1:${port}` }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).to.equal(1);
    expect(stderr).to.match(/cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/);
  });
});
