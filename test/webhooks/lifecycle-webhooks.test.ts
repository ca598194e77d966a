import { randomBytes } from 'node:crypto';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { ValidateFunction } from 'ajv';
import { expect } from 'chai';
import { PresencePolicy } from '../../src/presence/presence-policy.js';
import { parseWebhookConfig } from '../../src/webhooks/webhook-config.js';
import { verifyWebhook } from '../../src/webhooks/webhook-signature.js';
import { createSpecAjv, SPEC_PATH, type Json } from '../helpers/openapi.js';
import { openStream, postJson, startServer, type StreamClient, type TestServer } from '../helpers/server.js';
import { publish } from '../helpers/streams.js';
import { TestReceiver, type ReceivedRequest } from './test-receiver.js';

// Issue 15: lifecycle webhooks from a real server to a real HTTP receiver, which verifies every
// signature and checks every body against openapi.yaml's `webhooks`.

const LEAVE_DELAY_MS = 300;
const METRICS_TOKEN = randomBytes(24).toString('base64url');
const ALL_KINDS = ['connected', 'disconnected', 'topic-occupied', 'topic-vacated', 'member-added', 'member-removed'];

type Delivered = Record<string, any> & { kind: string };

describe('lifecycle webhooks from a running server (issue 15)', function () {
  this.timeout(30_000);
  let receiver: TestReceiver;
  let t: TestServer | undefined;
  let secret: string;
  let validateBody: ValidateFunction;
  const streams: StreamClient[] = [];

  before(async () => {
    const spec = (await SwaggerParser.validate(SPEC_PATH)) as Json;
    validateBody = createSpecAjv().compile(spec.webhooks.lifecycleEvents.post.requestBody.content['application/json'].schema);
  });

  async function start(target: Record<string, unknown> = {}): Promise<TestServer> {
    secret = randomBytes(32).toString('base64');
    const targets = parseWebhookConfig({
      targets: [
        {
          name: 'app',
          url: receiver.url,
          events: ALL_KINDS,
          secret,
          allowPrivateNetwork: true,
          lingerMs: 10,
          retryInitialDelayMs: 20,
          retryMaxDelayMs: 40,
          timeoutMs: 20_000,
          ...target,
        },
      ],
    });
    // A one-second shutdown grace: the hanging receiver's test holds the close that long.
    t = await startServer({ METRICS: 'token', METRICS_TOKEN, SHUTDOWN_GRACE: '1' }, (config) => ({
      ...config,
      webhooks: { targets },
      presence: {
        ...config.presence,
        leaveDelayMs: LEAVE_DELAY_MS,
        policy: PresencePolicy.parse({ topics: [{ selector: 'public/rooms/*' }] }),
      },
    }));
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    return t;
  }

  const stream = (server: TestServer, token: string, topics: string[]) => {
    const opened = openStream(`${server.url}/events?${topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')}`, token, {
      types: ['tick'],
    });
    streams.push(opened);
    return opened;
  };

  /** Every event in the requests received so far, each request's signature verified and body checked first. */
  function delivered(requests: readonly ReceivedRequest[] = receiver.requests): Delivered[] {
    return requests.flatMap((request) => {
      verifyWebhook({ secret, headers: request.headers, body: request.rawBody });
      const body = JSON.parse(request.rawBody) as { missed: number; events: Delivered[] };
      if (!validateBody(body)) throw new Error(`webhook body does not match openapi.yaml: ${JSON.stringify(validateBody.errors)}`);
      return body.events;
    });
  }
  const kinds = () => delivered().map((event) => `${event.kind}${'subject' in event ? ` ${event.subject}` : ` ${event.topic}`}`);

  beforeEach(async () => {
    receiver = await TestReceiver.start();
  });

  afterEach(async () => {
    for (const opened of streams.splice(0)) opened.close();
    await t?.close();
    t = undefined;
    await receiver.close();
  });

  it('tells connected, member-added and topic-occupied, then disconnected with its reason, member-removed and topic-vacated, signed and as openapi.yaml says', async () => {
    const server = await start();
    const alice = stream(server, (await server.login('alice')).access_token, ['public/rooms/1', 'public/news/*']);
    const connected = JSON.parse((await alice.waitFor((event) => event.type === 'connected')).data) as { connectionId: string };
    await receiver.waitFor(() => kinds().includes('member-added alice') && kinds().includes('topic-occupied public/news/*'), 'arrival');
    alice.close();
    await receiver.waitFor(() => kinds().includes('member-removed alice') && kinds().includes('topic-vacated public/rooms/1'), 'departure');
    const events = delivered();
    const byKind = (kind: string) => events.filter((event) => event.kind === kind);
    expect(byKind('connected')).to.have.length(1);
    expect(byKind('connected')[0]).to.deep.include({
      subject: 'alice',
      connectionId: connected.connectionId,
      topics: ['public/rooms/1', 'public/news/*'],
    });
    expect(byKind('disconnected')[0]).to.deep.include({ subject: 'alice', connectionId: connected.connectionId, reason: 'client_gone' });
    expect(byKind('member-added')).to.have.length(1);
    expect(byKind('member-added')[0]).to.deep.include({ topic: 'public/rooms/1', subject: 'alice' });
    expect(byKind('member-removed')[0]).to.deep.include({ topic: 'public/rooms/1', subject: 'alice', reason: 'left' });
    expect(byKind('topic-occupied').map((event) => event.topic)).to.have.members(['public/rooms/1', 'public/news/*']);
    expect(byKind('topic-vacated').map((event) => event.topic)).to.have.members(['public/rooms/1', 'public/news/*']);
    // The member left no sooner than the leave delay after her stream ended.
    const ended = Date.parse(byKind('disconnected')[0]!.at);
    expect(Date.parse(byKind('member-removed')[0]!.at) - ended).to.be.at.least(LEAVE_DELAY_MS - 20);
    expect(new Set(events.map((event) => event.id)).size, 'every event has its own id').to.equal(events.length);
  });

  it('delivers on the fourth try, with the same delivery id and body, to a receiver that answers 500 three times', async () => {
    receiver.handler = (_request, response, index) => response.writeHead(index < 3 ? 500 : 204).end();
    const server = await start({ events: ['connected'] });
    stream(server, (await server.login('alice')).access_token, ['public/news/today']);
    await receiver.waitFor(() => receiver.requests.length === 4, 'the fourth attempt');
    const ids = receiver.requests.map((request) => request.headers['webhook-id']);
    expect(new Set(ids).size, 'one delivery id on every attempt').to.equal(1);
    expect(new Set(receiver.requests.map((request) => request.rawBody)).size, 'the same body').to.equal(1);
    expect(delivered(receiver.requests.slice(3)).map((event) => event.kind)).to.deep.equal(['connected']);
    const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }).then((res) =>
      res.text(),
    );
    expect(metrics).to.match(/^notify_webhook_attempts_total\{target="app",outcome="http_5xx"\} 3$/m);
    expect(metrics).to.match(/^notify_webhook_events_total\{target="app",outcome="delivered"\} 1$/m);
  });

  it('never lets a receiver that hangs delay a publish or a stream', async () => {
    receiver.handler = () => undefined; // never answers
    const server = await start();
    const newsroom = (await server.login('newsroom')).access_token;
    const alice = (await server.login('alice')).access_token;
    const first = stream(server, alice, ['public/news/today']);
    await first.waitFor((event) => event.type === 'connected');
    await receiver.waitFor(() => receiver.requests.length >= 1, 'a request the receiver holds open');
    // While it hangs: more streams come and go (more events queue for it), and publishes go through.
    for (let i = 0; i < 5; i++) {
      const other = stream(server, alice, [`public/rooms/${i}`]);
      await other.waitFor((event) => event.type === 'connected');
      other.close();
    }
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await publish(server.url, newsroom, { topics: ['public/news/today'], type: 'tick', data: i }));
    await first.waitFor((event) => event.id === ids.at(-1));
    expect(first.events.filter((event) => event.type === 'tick').map((event) => event.id)).to.deep.equal(ids);
    expect(receiver.requests, 'still the one request, held open (one at a time per target)').to.have.length(1);
    const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }).then((res) =>
      res.text(),
    );
    expect(metrics).to.match(/^notify_webhook_requests_in_flight\{target="app"\} 1$/m);
    expect(Number(/^notify_webhook_queued_events\{target="app"\} (\d+)$/m.exec(metrics)![1])).to.be.greaterThan(0);
  });

  it('calls only the configured target, for the event kinds and topics it asked for', async () => {
    const server = await start({ events: ['connected'], topics: ['public/rooms/**'] });
    const alice = (await server.login('alice')).access_token;
    const outside = stream(server, alice, ['public/news/today']);
    await outside.waitFor((event) => event.type === 'connected');
    outside.close();
    const inside = stream(server, alice, ['public/rooms/2']);
    await inside.waitFor((event) => event.type === 'connected');
    await receiver.waitFor(() => delivered().length >= 1, 'the stream it asked for');
    expect(delivered().map((event) => `${event.kind} ${event.topics.join(',')}`)).to.deep.equal(['connected public/rooms/2']);
    expect(receiver.requests.every((request) => request.path === '/hooks/notify' && request.method === 'POST')).to.equal(true);
  });

  it('delivers what shutdown tells before the server is closed: disconnected, and on one process the members who left', async () => {
    const server = await start({ events: ['disconnected', 'member-removed'] });
    const alice = stream(server, (await server.login('alice')).access_token, ['public/rooms/3']);
    await alice.waitFor((event) => event.type === 'connected');
    const res = await postJson(
      `${server.url}/events`,
      { topics: ['public/rooms/3'], data: 1 },
      (await server.login('newsroom')).access_token,
    );
    expect(res.status).to.equal(201);
    await server.close();
    t = undefined;
    // On Redis the instance's lease is cut to the leave delay instead, and whichever instance reaps it tells her departure.
    const shared = server.config.backend.kind === 'redis';
    expect(kinds()).to.have.members(shared ? ['disconnected alice'] : ['disconnected alice', 'member-removed alice']);
    expect(delivered().find((event) => event.kind === 'disconnected')).to.deep.include({ reason: 'shutdown' });
  });
});
