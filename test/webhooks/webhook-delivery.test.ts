import SwaggerParser from '@apidevtools/swagger-parser';
import type { ValidateFunction } from 'ajv';
import { expect } from 'chai';
import { Webhook } from 'standardwebhooks';
import type { Resolver } from '../../src/webhooks/address-policy.js';
import { parseWebhookConfig, type WebhookTarget } from '../../src/webhooks/webhook-config.js';
import { createWebhookDispatcher, type WebhookDispatcher } from '../../src/webhooks/webhook-dispatcher.js';
import type { WebhookEvent } from '../../src/webhooks/webhook-event.js';
import { verifyWebhook } from '../../src/webhooks/webhook-signature.js';
import { createSpecAjv, SPEC_PATH, type Json } from '../helpers/openapi.js';
import { closedPort, TestReceiver, type ReceivedRequest } from './test-receiver.js';
import { connected, newSecret } from './webhook-test-kit.js';

/** One event of each kind, as the server will enqueue them. */
const EVERY_KIND: WebhookEvent[] = [
  { kind: 'connected', subject: 'alice', connectionId: 'c_8fJ2kQ', topics: ['users/alice/**', 'documents/42'] },
  { kind: 'disconnected', subject: 'alice', connectionId: 'c_8fJ2kQ', topics: ['users/alice/**', 'documents/42'], reason: 'client_gone' },
  { kind: 'topic-occupied', topic: 'documents/42' },
  { kind: 'topic-vacated', topic: 'documents/42' },
  { kind: 'member-added', topic: 'documents/42', subject: 'alice' },
  { kind: 'member-removed', topic: 'documents/42', subject: 'alice', reason: 'lease_expired' },
];
const ALL_KINDS = ['connected', 'disconnected', 'topic-occupied', 'topic-vacated', 'member-added', 'member-removed'];

function target(receiver: TestReceiver, fields: Record<string, unknown> = {}): WebhookTarget {
  return parseWebhookConfig({
    targets: [
      {
        url: receiver.url,
        events: ALL_KINDS,
        secret: newSecret(),
        allowPrivateNetwork: true,
        lingerMs: 20,
        retryInitialDelayMs: 20,
        ...fields,
      },
    ],
  })[0]!;
}

describe('webhook delivery to a real HTTP receiver', () => {
  let receiver: TestReceiver;
  let dispatcher: WebhookDispatcher | undefined;
  let validateBody: ValidateFunction;
  let headerSchemas: Array<{ name: string; validate: ValidateFunction }>;

  before(async () => {
    const spec = (await SwaggerParser.validate(SPEC_PATH)) as Json;
    const operation = spec.webhooks.lifecycleEvents.post;
    const ajv = createSpecAjv();
    validateBody = ajv.compile(operation.requestBody.content['application/json'].schema);
    headerSchemas = operation.parameters.map((parameter: Json) => ({ name: parameter.name, validate: ajv.compile(parameter.schema) }));
  });

  beforeEach(async () => {
    receiver = await TestReceiver.start();
  });

  afterEach(async () => {
    await dispatcher?.close();
    dispatcher = undefined;
    await receiver.close();
  });

  function expectMatchesSpec(request: ReceivedRequest): void {
    if (!validateBody(JSON.parse(request.rawBody))) throw new Error(`body does not match the spec: ${JSON.stringify(validateBody.errors)}`);
    for (const { name, validate } of headerSchemas)
      expect(validate(request.headers[name]), `${name}: ${request.headers[name]}`).to.equal(true);
  }

  it('delivers every event kind signed, verifiable by verifyWebhook and the standardwebhooks library, as the spec describes', async () => {
    const secret = newSecret();
    dispatcher = createWebhookDispatcher({ targets: [target(receiver, { secret })], instance: 'notify-test-1' });
    for (const event of EVERY_KIND) dispatcher.enqueue(event);
    await receiver.waitFor(() => receiver.requests.length === 1, 'the batch');
    const [request] = receiver.requests;
    expect(request).to.include({ method: 'POST', path: '/hooks/notify' });
    expect(request!.headers['content-type']).to.equal('application/json');
    expect(verifyWebhook({ secret, headers: request!.headers, body: request!.rawBody }).id).to.equal(request!.headers['webhook-id']);
    const payload = new Webhook(secret).verify(request!.rawBody, request!.headers as Record<string, string>) as {
      events: Array<{ kind: string }>;
    };
    expect(payload.events.map((event) => event.kind)).to.deep.equal(ALL_KINDS);
    expectMatchesSpec(request!);
  });

  it('the spec refuses a payload that breaks it (the check can fail)', () => {
    const event = {
      id: 'evt_1',
      kind: 'member-removed',
      at: '2026-01-01T00:00:00.000Z',
      instance: 'i',
      topic: 'documents/42',
      subject: 'alice',
    };
    expect(validateBody({ missed: 0, events: [event] }), 'no reason').to.equal(false);
    expect(validateBody({ missed: 0, events: [{ ...event, reason: 'left' }] })).to.equal(true);
    expect(validateBody({ missed: 0, events: [{ ...event, reason: 'left', kind: 'member-joined' }] }), 'unknown kind').to.equal(false);
    expect(validateBody({ missed: 0, events: [{ ...event, reason: 'left', topic: 'a/**' }] }), 'selector as a member topic').to.equal(
      false,
    );
    expect(validateBody({ events: [{ ...event, reason: 'left' }] }), 'no missed').to.equal(false);
  });

  it('gets the delivery on the fourth try, with the same delivery id, after answering 500 three times', async () => {
    receiver.handler = (_request, response, index) => response.writeHead(index < 3 ? 500 : 200).end();
    dispatcher = createWebhookDispatcher({ targets: [target(receiver)], instance: 'notify-test-1' });
    dispatcher.enqueue(connected('alice'));
    await receiver.waitFor(() => dispatcher!.stats()[0]!.events.delivered === 1, 'the delivery');
    expect(receiver.requests).to.have.length(4);
    expect(new Set(receiver.requests.map((request) => request.headers['webhook-id'])).size).to.equal(1);
    expect(new Set(receiver.requests.map((request) => request.rawBody)).size).to.equal(1);
    expect(dispatcher.stats()[0]!.attempts).to.include({ http_5xx: 3, success: 1 });
    for (const request of receiver.requests) expectMatchesSpec(request);
  });

  it('keeps accepting events synchronously while a receiver hangs, and another target is served meanwhile', async () => {
    const healthy = await TestReceiver.start();
    try {
      receiver.handler = () => undefined; // never answers
      dispatcher = createWebhookDispatcher({
        targets: [
          target(receiver, { name: 'hanging', timeoutMs: 60_000, maxQueuedEvents: 1000 }),
          target(healthy, { name: 'healthy', maxQueuedEvents: 5000, maxBatchEvents: 1000 }),
        ],
        instance: 'notify-test-1',
      });
      dispatcher.enqueue(connected('first'));
      await receiver.waitFor(() => receiver.requests.length === 1, 'the hanging request');
      for (let i = 0; i < 3000; i++) {
        const before = dispatcher.stats()[1]!.queuedEvents;
        expect(dispatcher.enqueue(connected(`u${i}`))).to.equal(undefined); // returns at once, no promise to wait on
        expect(dispatcher.stats()[1]!.queuedEvents, 'queued on the caller stack').to.equal(before + 1);
      }
      const hanging = dispatcher.stats()[0]!;
      expect(hanging).to.include({ queuedEvents: 1000, inFlightRequests: 1 });
      expect(hanging.events.dropped_overflow).to.equal(2000);
      await healthy.waitFor(() => dispatcher!.stats()[1]!.events.delivered === 3001, 'the healthy target to get everything');
      expect(receiver.requests).to.have.length(1);
    } finally {
      await dispatcher?.close();
      await healthy.close();
    }
  });

  it('times a hanging receiver out and retries it, so it never holds the slot for good', async () => {
    receiver.handler = (_request, response, index) => {
      if (index > 0) response.writeHead(204).end();
    };
    dispatcher = createWebhookDispatcher({ targets: [target(receiver, { timeoutMs: 200 })], instance: 'notify-test-1' });
    dispatcher.enqueue(connected('alice'));
    await receiver.waitFor(() => dispatcher!.stats()[0]!.events.delivered === 1, 'the retried delivery');
    expect(dispatcher.stats()[0]!.attempts).to.include({ timeout: 1, success: 1 });
    expect(receiver.requests[0]!.headers['webhook-id']).to.equal(receiver.requests[1]!.headers['webhook-id']);
  });

  it('sends many events at once in few requests', async () => {
    dispatcher = createWebhookDispatcher({ targets: [target(receiver, { maxBatchEvents: 100 })], instance: 'notify-test-1' });
    for (let i = 0; i < 500; i++) dispatcher.enqueue(connected(`u${i}`));
    await receiver.waitFor(() => dispatcher!.stats()[0]!.events.delivered === 500, 'all 500 events');
    expect(receiver.requests).to.have.length(5);
    const subjects = receiver.requests.flatMap((request) =>
      (JSON.parse(request.rawBody) as { events: Array<{ subject: string }> }).events.map((event) => event.subject),
    );
    expect(subjects).to.deep.equal(Array.from({ length: 500 }, (_, i) => `u${i}`));
  });

  it('counts an unreachable receiver as network errors and keeps retrying', async () => {
    const port = await closedPort();
    dispatcher = createWebhookDispatcher({
      targets: [target(receiver, { url: `http://127.0.0.1:${port}/hook` })],
      instance: 'notify-test-1',
    });
    dispatcher.enqueue(connected('alice'));
    await receiver.waitFor(() => dispatcher!.stats()[0]!.attempts.network_error >= 3, 'three refused connections');
    expect(dispatcher.stats()[0]).to.include({ pendingEvents: 1 });
  });

  describe('a host name that resolves to a private address', () => {
    const toLoopback: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];

    it('is refused at delivery without allowPrivateNetwork: no connection is made', async () => {
      const [checked] = parseWebhookConfig({
        targets: [
          { url: `http://receiver.test:${receiver.port}/hook`, events: ['connected'], secret: newSecret(), retryInitialDelayMs: 20 },
        ],
      });
      dispatcher = createWebhookDispatcher({ targets: [checked!], instance: 'notify-test-1', resolver: toLoopback });
      dispatcher.enqueue(connected('alice'));
      await receiver.waitFor(() => dispatcher!.stats()[0]!.attempts.address_refused >= 2, 'two refused attempts');
      expect(receiver.requests).to.have.length(0);
      expect(dispatcher.stats()[0]!.attempts.success).to.equal(0);
    });

    it('is reached at the address the resolver gave when the target allows private networks', async () => {
      dispatcher = createWebhookDispatcher({
        targets: [target(receiver, { url: `http://receiver.test:${receiver.port}/hook` })],
        instance: 'notify-test-1',
        resolver: toLoopback,
      });
      dispatcher.enqueue(connected('alice'));
      await receiver.waitFor(() => receiver.requests.length === 1, 'the delivery');
      expect(receiver.requests[0]!.headers.host).to.equal(`receiver.test:${receiver.port}`);
    });
  });
});
