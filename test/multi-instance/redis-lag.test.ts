import { expect } from 'chai';
import { BusKeys } from '../../src/backends/redis/bus-keys.js';
import { compareEventIds, parseEventId } from '../../src/bus/event-id.js';
import { deleteKeys, TEST_REDIS_URL } from '../helpers/redis.js';
import { Deployment, login, type Instance } from '../helpers/instances.js';
import { PausableProxy } from '../helpers/tcp-proxy.js';
import { delay, openStream, postJson, type ReceivedEvent, type StreamClient } from '../helpers/server.js';

// Issue 13: an instance that falls behind what Redis still holds must never lose events
// silently. Each of its subscribers either receives every event of its topics, once and in
// order, or gets a `reset` (and from then on every later event).

const HISTORY_SIZE = 200;
const LOG_LENGTH = 1000;
const QUIET_TOPICS = Array.from({ length: 10 }, (_, i) => `lag/quiet-${i}`);
const HOT = 'lag/hot';

const ticks = (stream: StreamClient) => stream.events.filter((event) => event.type === 'tick');
const resets = (stream: StreamClient) => stream.events.filter((event) => event.type === 'reset');
const byId = (a: string, b: string) => compareEventIds(parseEventId(a)!, parseEventId(b)!);

/** Publishes `topics` in order, `parallel` at a time; answers each topic's acknowledged ids, in id order. */
async function publishAll(on: Instance, token: string, topics: string[], parallel = 8): Promise<Map<string, string[]>> {
  const acknowledged = new Map<string, string[]>();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < topics.length) {
        const topic = topics[next++]!;
        const res = await postJson(`${on.url}/events`, { topics: [topic], type: 'tick', data: { topic } }, token);
        const body = (await res.json()) as { id: string };
        expect(res.status, JSON.stringify(body)).to.equal(201);
        acknowledged.set(topic, [...(acknowledged.get(topic) ?? []), body.id]);
      }
    }),
  );
  for (const ids of acknowledged.values()) ids.sort(byId);
  return acknowledged;
}

/**
 * What a stream must have seen of `expected` (its topics' acknowledged ids, in order): all of
 * them, in order, once, with no reset; or, after a reset, every id newer than the reset's id.
 * In both cases ids only grow.
 */
function checkExactOrReset(name: string, stream: StreamClient, expected: string[]): 'exact' | 'reset' {
  const got = ticks(stream).map((event) => event.id);
  for (let i = 1; i < got.length; i++) expect(byId(got[i]!, got[i - 1]!), `${name}: ids only grow`).to.be.greaterThan(0);
  const reset = resets(stream).at(-1);
  if (reset === undefined) {
    expect(got, `${name}: every event, in order, once`).to.deep.equal(expected);
    return 'exact';
  }
  const after = stream.events.slice(stream.events.indexOf(reset) + 1).filter((event: ReceivedEvent) => event.type === 'tick');
  expect(
    after.map((event) => event.id),
    `${name}: every event after the reset`,
  ).to.deep.equal(expected.filter((id) => byId(id, reset.id) > 0));
  return 'reset';
}

describe('an instance that falls behind Redis (SIGSTOP), on Redis (issue 13)', function () {
  this.timeout(120_000);
  const deployment = new Deployment(TEST_REDIS_URL);
  const streams: StreamClient[] = [];
  let a: Instance;
  let b: Instance;

  before(async () => {
    await deployment.addAccounts({ root: ['admin'] });
    const env = { HISTORY_SIZE: String(HISTORY_SIZE), REDIS_STREAM_MAXLEN: String(LOG_LENGTH), MAX_STREAMS_PER_USER: '100' };
    [a, b] = await Promise.all([deployment.start('A', env), deployment.start('B', env)]);
  });

  after(async () => {
    for (const stream of streams) stream.close();
    if (b !== undefined && b.child.exitCode === null) b.child.kill('SIGCONT');
    await deployment.destroy();
    await deleteKeys(TEST_REDIS_URL, deployment.keyPrefix);
  });

  it('repairs from per-topic history what the log lost, and resets only the streams whose topics lost events', async () => {
    // One quiet topic shares the hot topic's partition (16, the default): its log loses that
    // topic's events too, and they must come back from the topic's own history.
    const keys = new BusKeys(deployment.keyPrefix, 16);
    expect(QUIET_TOPICS.some((topic) => keys.partitionOf(topic) === keys.partitionOf(HOT))).to.equal(true);
    const token = (await login(a.url, 'root')).access_token;
    const open = (selector: string) => {
      const stream = openStream(`${b.url}/events?topic=${encodeURIComponent(selector)}`, token, { types: ['tick'] });
      streams.push(stream);
      return stream;
    };
    const quiet = QUIET_TOPICS.map((topic) => open(topic));
    const hot = open(HOT);
    const everything = open('lag/**');
    const all = [...quiet, hot, everything];
    await Promise.all(all.map((stream) => stream.waitFor((event) => event.type === 'connected')));

    // B stops reading. Meanwhile: 1,200 events on the hot topic (more than its history and than
    // its partition's log hold), 30 on each quiet topic (within their history), interleaved.
    b.child.kill('SIGSTOP');
    const order: string[] = [];
    for (let i = 0; i < 1200; i++) {
      order.push(HOT);
      if (i % 4 === 0) order.push(QUIET_TOPICS[(i / 4) % QUIET_TOPICS.length]!);
    }
    const during = await publishAll(a, token, order);
    b.child.kill('SIGCONT');
    // Then one more event on every topic: once each stream has it, B has caught up.
    const last = await publishAll(a, token, [...QUIET_TOPICS, HOT], 1);
    const expected = (topic: string) => [...(during.get(topic) ?? []), ...(last.get(topic) ?? [])];
    await Promise.all(QUIET_TOPICS.map((topic, i) => quiet[i]!.waitFor((event) => event.id === last.get(topic)![0], 30_000)));
    await hot.waitFor((event) => event.id === last.get(HOT)![0], 30_000);
    const newest = [...last.values()].flat().sort(byId).at(-1)!;
    await everything.waitFor((event) => event.id === newest, 30_000);

    // The quiet topics' events were still in their histories: repaired, exactly.
    QUIET_TOPICS.forEach((topic, i) => expect(checkExactOrReset(topic, quiet[i]!, expected(topic))).to.equal('exact'));
    // The hot topic lost events that no history holds any more: reset, never a silent gap.
    expect(checkExactOrReset(HOT, hot, expected(HOT))).to.equal('reset');
    const union = [...QUIET_TOPICS, HOT].flatMap(expected).sort(byId);
    expect(checkExactOrReset('lag/**', everything, union)).to.equal('reset');
    expect(resets(hot)[0]!.data).to.include('history_exhausted');
  });
});

describe('a stream resumed on an instance whose delivery lags, on Redis (issue 13)', function () {
  this.timeout(60_000);
  const deployment = new Deployment(TEST_REDIS_URL);
  const streams: StreamClient[] = [];
  let proxy: PausableProxy;
  let a: Instance;
  let lagging: Instance;

  before(async () => {
    await deployment.addAccounts({ root: ['admin'] });
    const redis = new URL(TEST_REDIS_URL);
    proxy = await PausableProxy.start({ host: redis.hostname, port: Number(redis.port || 6379) });
    [a, lagging] = await Promise.all([deployment.start('A'), deployment.start('lagging', { REDIS_URL: proxy.url })]);
  });

  after(async () => {
    for (const stream of streams) stream.close();
    proxy.resume();
    await deployment.destroy();
    await proxy.close();
    await deleteKeys(TEST_REDIS_URL, deployment.keyPrefix);
  });

  it('gets every later event once, in order, ids only growing, over two partitions', async () => {
    // Two topics in different partitions (16, the default): one stream, one order over both.
    const topics = ['resume/one', 'resume/two'];
    const keys = new BusKeys(deployment.keyPrefix, 16);
    expect(keys.partitionOf(topics[0]!)).to.not.equal(keys.partitionOf(topics[1]!));
    const token = (await login(a.url, 'root')).access_token;
    const query = topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&');
    const open = (on: Instance, headers: Record<string, string> = {}) => {
      const stream = openStream(`${on.url}/events?${query}`, token, { types: ['tick'], headers });
      streams.push(stream);
      return stream;
    };
    const publishSome = async (n: number, from: number) => {
      const ids: string[] = [];
      for (let i = from; i < from + n; i++) {
        const res = await postJson(`${a.url}/events`, { topics: [topics[i % 2]!], type: 'tick', data: { i } }, token);
        expect(res.status).to.equal(201);
        ids.push(((await res.json()) as { id: string }).id);
      }
      return ids;
    };
    const first = open(a);
    await first.waitFor((event) => event.type === 'connected');
    // The lagging instance's event reader stops getting answers; its other connections go on.
    proxy.pause();
    const before = await publishSome(10, 0);
    await first.waitFor((event) => event.id === before.at(-1));
    first.close();
    const seen = before[5]!;
    // Resume on the lagging instance: its reader is behind `seen`, its replay is not.
    const resumed = open(lagging, { 'Last-Event-ID': seen });
    await resumed.waitFor((event) => event.id === before.at(-1), 10_000);
    const control = open(a);
    await control.waitFor((event) => event.type === 'connected');
    const later = await publishSome(5, 10);
    // The lagging instance really lags: A's stream has the later events, the resumed one none.
    await control.waitFor((event) => event.id === later.at(-1));
    await delay(200);
    expect(ticks(resumed).map((event) => event.id)).to.not.include(later[0]);
    // The reader catches up: it hands the session everything since it stalled, older events first.
    proxy.resume();
    await resumed.waitFor((event) => event.id === later.at(-1), 10_000);
    const barrier = await publishSome(1, 15);
    await resumed.waitFor((event) => event.id === barrier[0], 10_000);
    const got = ticks(resumed).map((event) => event.id);
    expect(got).to.deep.equal([...before.slice(6), ...later, ...barrier]);
    expect(resets(resumed)).to.have.length(0);
  });
});
