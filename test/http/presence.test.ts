import { expect } from 'chai';
import { PresencePolicy } from '../../src/presence/presence-policy.js';
import { expectResponseMatchesSpec, expectSseEventMatchesSpec } from '../helpers/openapi.js';
import { delay, openStream, postJson, startServer, type ReceivedEvent, type StreamClient, type TestServer } from '../helpers/server.js';
import { getEvents, readJson } from '../helpers/streams.js';

// Issue 15: presence per topic, over HTTP and on the stream, against a real server and the real
// eventsource client. (`TEST_BUS=redis` runs it on the Redis backend as well.)

const LEAVE_DELAY_MS = 1500;
const PRESENCE_EVENTS = ['presence-snapshot', 'presence-join', 'presence-leave'];
const q = (...selectors: string[]) => selectors.map((selector) => `topic=${encodeURIComponent(selector)}`).join('&');

describe('presence (issue 15)', function () {
  this.timeout(30_000);
  let t: TestServer;
  const tokens: Record<string, string> = {};
  const streams: StreamClient[] = [];

  const open = (subject: string, query: string) => {
    const stream = openStream(`${t.url}/events?${query}`, tokens[subject], { types: PRESENCE_EVENTS });
    streams.push(stream);
    return stream;
  };
  const connected = async (subject: string, query: string) => {
    const stream = open(subject, query);
    await stream.waitFor((event) => event.type === 'connected');
    return stream;
  };
  const presence = async (subject: string, query: string) => {
    const res = await fetch(`${t.url}/presence${query}`, { headers: { authorization: `Bearer ${tokens[subject]}` } });
    const answer = await readJson(res);
    expectResponseMatchesSpec(answer, 'GET', new URL(`http://x/presence${query}`).pathname);
    return answer;
  };
  const members = async (topic: string) =>
    ((await presence('watcher', `?topic=${encodeURIComponent(topic)}`)).body.members as Array<{ subject: string }>).map((m) => m.subject);
  const presenceEvents = (stream: StreamClient) =>
    stream.events
      .filter((event) => event.type.startsWith('presence-'))
      .map((event) => {
        const data = JSON.parse(event.data);
        expectSseEventMatchesSpec(event.type, data);
        return event.type === 'presence-snapshot'
          ? `snapshot ${data.topic} ${(data.members as Array<{ subject: string }>).map((m) => m.subject).join(',')}`
          : `${event.type.slice('presence-'.length)} ${data.topic} ${data.subject}${event.type === 'presence-leave' ? ` ${data.reason}` : ''}`;
      });

  before(async () => {
    t = await startServer({}, (config) => ({
      ...config,
      roles: {
        member: { publish: [], subscribe: ['documents/**', 'rooms/**', 'news/**'], presence: [] },
        watcher: { publish: [], subscribe: [], presence: ['documents/**', 'rooms/**'] },
        narrow: { publish: [], subscribe: ['documents/1'], presence: [] },
        publisher: { publish: ['**'], subscribe: [], presence: [] },
      },
      presence: {
        ...config.presence,
        leaveDelayMs: LEAVE_DELAY_MS,
        pageSize: 3,
        policy: PresencePolicy.parse({
          topics: [{ selector: 'rooms/private/*', readers: 'presence-grant' }, { selector: 'documents/*' }, { selector: 'rooms/**' }],
        }),
      },
    }));
    const accounts: Record<string, string> = {
      alice: 'member',
      bob: 'member',
      carol: 'member',
      dave: 'member',
      erin: 'member',
      watcher: 'watcher',
      narrow: 'narrow',
      newsroom: 'publisher',
    };
    for (const [name, role] of Object.entries(accounts)) {
      await t.addAccount(name, [role], role === 'watcher' ? { kind: 'service', password: 'watcher-secret-123456' } : {});
    }
    for (const name of Object.keys(accounts)) {
      if (name === 'watcher') {
        const res = await fetch(`${t.url}/auth/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from('watcher:watcher-secret-123456').toString('base64')}`,
          },
          body: 'grant_type=client_credentials',
        });
        tokens[name] = ((await res.json()) as { access_token: string }).access_token;
      } else {
        tokens[name] = (await t.login(name)).access_token;
      }
    }
  });

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    // Everyone's leave delay runs out before the next test, so tests do not see each other's members.
    await delay(LEAVE_DELAY_MS + 200);
  });

  after(() => t.close());

  it('makes five tabs of one user one member; closing four keeps her present; the fifth makes her leave after the delay', async () => {
    const tabs = await Promise.all(Array.from({ length: 5 }, () => connected('alice', q('documents/5'))));
    expect(await members('documents/5')).to.deep.equal(['alice']);
    expect((await presence('watcher', '?topic=documents/5')).body.count).to.equal(1);
    for (const tab of tabs.slice(0, 4)) tab.close();
    await delay(LEAVE_DELAY_MS + 500);
    expect(await members('documents/5')).to.deep.equal(['alice']);
    tabs[4]!.close();
    const closedAt = Date.now();
    let gone = false;
    while (!gone) {
      gone = (await members('documents/5')).length === 0;
      if (!gone) await delay(50);
      expect(Date.now() - closedAt, 'she leaves within the delay and a moment').to.be.below(LEAVE_DELAY_MS + 3000);
    }
    expect(Date.now() - closedAt, 'not before the leave delay').to.be.at.least(LEAVE_DELAY_MS - 100);
  });

  it('sends a stream that asked a snapshot with itself, then joins and leaves, shaped as openapi.yaml says', async () => {
    await connected('bob', q('documents/6'));
    const alice = open('alice', `${q('documents/6')}&presence=true`);
    await alice.waitFor((event) => event.type === 'presence-snapshot');
    const snapshot = JSON.parse(alice.events.find((event) => event.type === 'presence-snapshot')!.data);
    expect(snapshot).to.deep.include({ topic: 'documents/6', count: 2 });
    const carol = await connected('carol', q('documents/6', 'news/today'));
    await alice.waitFor((event) => event.type === 'presence-join');
    carol.close();
    await alice.waitFor((event) => event.type === 'presence-leave', LEAVE_DELAY_MS + 5000);
    expect(presenceEvents(alice)).to.deep.equal([
      'snapshot documents/6 alice,bob',
      'join documents/6 carol',
      'leave documents/6 carol left',
    ]);
    const order = alice.events.map((event) => event.type);
    expect(order.indexOf('connected')).to.be.below(order.indexOf('presence-snapshot'));
  });

  it('emits nothing when a stream drops and reconnects within the leave delay', async () => {
    const watching = open('alice', `${q('documents/7')}&presence=true`);
    await watching.waitFor((event) => event.type === 'presence-snapshot');
    const bob = await connected('bob', q('documents/7'));
    await watching.waitFor((event) => event.type === 'presence-join');
    bob.close();
    await delay(LEAVE_DELAY_MS / 3);
    await connected('bob', q('documents/7'));
    await delay(LEAVE_DELAY_MS);
    await connected('carol', q('documents/7')); // a positive signal: anything bob's drop caused would come before it
    await watching.waitFor((event) => event.type === 'presence-join' && event.data.includes('carol'));
    expect(presenceEvents(watching)).to.deep.equal(['snapshot documents/7 alice', 'join documents/7 bob', 'join documents/7 carol']);
  });

  it('makes no member of a wildcard subscription, and tells none of topics without presence', async () => {
    await connected('alice', q('documents/*', 'news/today'));
    await connected('bob', q('documents/8'));
    expect(await members('documents/8')).to.deep.equal(['bob']);
    const news = await presence('alice', '?topic=news/today');
    expect(news.status).to.equal(404);
    expect(news.body.error).to.equal('presence_not_enabled');
  });

  it('pages members at most PRESENCE_PAGE_SIZE at a time, in byte order, with next', async () => {
    await Promise.all(['erin', 'carol', 'alice', 'dave', 'bob'].map((name) => connected(name, q('rooms/big'))));
    const first = await presence('alice', '?topic=rooms/big');
    expect(first.status).to.equal(200);
    expect(first.headers['cache-control']).to.equal('no-store');
    expect(first.body.members.map((m: { subject: string }) => m.subject)).to.deep.equal(['alice', 'bob', 'carol']);
    expect(first.body).to.include({ count: 5, next: 'carol' });
    const second = await presence('alice', `?topic=rooms/big&after=${first.body.next}&limit=2`);
    expect(second.body.members.map((m: { subject: string }) => m.subject)).to.deep.equal(['dave', 'erin']);
    expect(second.body).not.to.have.property('next');
    const watching = open('bob', `${q('rooms/big')}&presence=true`);
    await watching.waitFor((event) => event.type === 'presence-snapshot');
    const snapshot = JSON.parse(watching.events.find((event) => event.type === 'presence-snapshot')!.data);
    expect(snapshot).to.deep.include({ count: 5, next: 'carol' });
    expect(snapshot.members).to.have.length(3);
  });

  describe('who may read presence', () => {
    it('answers 403 for a topic outside the grants, whether or not it carries presence', async () => {
      for (const topic of ['documents/2', 'users/bob/inbox']) {
        const res = await presence('narrow', `?topic=${encodeURIComponent(topic)}`);
        expect(res.status, topic).to.equal(403);
        expect(res.body.error).to.equal('insufficient_scope');
        expect(res.headers['www-authenticate']).to.contain('insufficient_scope');
      }
      expect((await presence('narrow', '?topic=documents/1')).status).to.equal(200);
    });

    it('lets only presence-grant holders read a presence-grant topic, on the route and on the stream', async () => {
      await connected('alice', q('rooms/private/1'));
      expect((await presence('bob', '?topic=rooms/private/1')).status).to.equal(403);
      expect(await members('rooms/private/1')).to.deep.equal(['alice']);
      const refused = await getEvents(t.url, `?${q('rooms/private/1')}&presence=true`, tokens.bob);
      expect(refused.status).to.equal(403);
      expect(refused.body.error).to.equal('insufficient_scope');
    });

    it('closes a stream whose in-band renewal no longer grants the presence it receives (insufficient_scope)', async () => {
      const grants = { publish: [], subscribe: ['rooms/**'] };
      const insider = await t.server.tokens.issueAccessToken({
        subject: 'erin',
        clientId: 'web',
        grants: { ...grants, presence: ['rooms/private/**'] },
      });
      const stream = openStream(`${t.url}/events?${q('rooms/private/9')}&presence=true`, insider.token, { types: PRESENCE_EVENTS });
      streams.push(stream);
      const opened = JSON.parse((await stream.waitFor((event) => event.type === 'connected')).data) as { renewUrl: string };
      await stream.waitFor((event) => event.type === 'presence-snapshot');
      const outsider = await t.server.tokens.issueAccessToken({ subject: 'erin', clientId: 'web', grants });
      const renewal = await postJson(`${t.url}${opened.renewUrl}`, {}, outsider.token);
      expect(renewal.status).to.equal(403);
      expect(((await renewal.json()) as { error: string }).error).to.equal('insufficient_scope');
      const closed = await stream.waitFor((event) => event.type === 'closed');
      expect(JSON.parse(closed.data)).to.deep.equal({ reason: 'insufficient_scope' });
    });

    it('refuses a bad topic, limit or after, and presence asked for on a stream without a presence topic', async () => {
      const cases: Array<[string, string]> = [
        ['', 'invalid_request'],
        ['?topic=documents//1', 'invalid_topic'],
        ['?topic=documents/*', 'invalid_topic'],
        ['?topic=documents/1&topic=documents/2', 'invalid_request'],
        ['?topic=documents/1&limit=0', 'invalid_request'],
        ['?topic=documents/1&limit=4', 'invalid_request'],
        ['?topic=documents/1&limit=1e2', 'invalid_request'],
        ['?topic=documents/1&after=Not%20A%20Name', 'invalid_request'],
      ];
      for (const [query, code] of cases) {
        const res = await presence('alice', query);
        expect(res.status, query).to.equal(400);
        expect(res.body.error, query).to.equal(code);
      }
      for (const query of [`${q('news/today')}&presence=true`, `${q('documents/*')}&presence=true`, `${q('documents/1')}&presence=yes`]) {
        const res = await getEvents(t.url, `?${query}`, tokens.alice);
        expect(res.status, query).to.equal(400);
        expect(res.body.field, query).to.equal('presence');
      }
      expect((await fetch(`${t.url}/presence?topic=documents/1`)).status).to.equal(401);
    });

    it('keeps the presence event names for the server: a publisher cannot forge them', async () => {
      for (const type of PRESENCE_EVENTS) {
        const res = await postJson(`${t.url}/events`, { topics: ['documents/1'], type, data: { subject: 'mallory' } }, tokens.newsroom);
        expect(res.status, type).to.equal(400);
        expect(((await res.json()) as { error: string }).error).to.equal('reserved_event_type');
      }
    });
  });

  describe('reconciliation snapshot', () => {
    it('lists presence topics with their counts and open connections per subject, to a presence grant only', async () => {
      const one = await connected('alice', q('documents/9', 'news/today'));
      await connected('alice', q('documents/9'));
      await connected('bob', q('rooms/r1'));
      const topics = await presence('watcher', '/topics?limit=3');
      expect(topics.status).to.equal(200);
      const listed = [...topics.body.topics];
      let next = topics.body.next as string | undefined;
      while (next !== undefined) {
        const page = await presence('watcher', `/topics?limit=3&after=${encodeURIComponent(next)}`);
        listed.push(...page.body.topics);
        next = page.body.next;
      }
      expect(listed).to.deep.include.members([
        { topic: 'documents/9', count: 1 },
        { topic: 'rooms/r1', count: 1 },
      ]);

      const connections = await presence('watcher', '/connections?subject=alice');
      expect(connections.status).to.equal(200);
      // The watcher's grants cover documents/** but not news/**: the stream on news/today is not shown.
      const shown = connections.body.subjects[0].connections as Array<{ connectionId: string; topics: string[] }>;
      const ids = shown.map((connection) => connection.connectionId);
      const connectedId = (stream: StreamClient) =>
        JSON.parse(stream.events.find((e: ReceivedEvent) => e.type === 'connected')!.data).connectionId;
      expect(ids).to.have.length(1);
      expect(ids).not.to.include(connectedId(one));
      expect(shown[0]!.topics).to.deep.equal(['documents/9']);

      const all = await presence('watcher', '/connections');
      expect(all.body.subjects.map((entry: { subject: string }) => entry.subject)).to.include.members(['alice', 'bob']);

      for (const path of ['/topics', '/connections', '/connections?subject=alice']) {
        const refused = await presence('alice', path);
        expect(refused.status, path).to.equal(403);
        expect(refused.body.error).to.equal('insufficient_scope');
      }
    });
  });
});
