import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createWebhookDispatcher, type WebhookDispatcherOptions } from '../../../src/webhooks/webhook-dispatcher.js';
import type { WebhookTarget } from '../../../src/webhooks/webhook-config.js';
import { registerWebhookMetrics } from '../../../src/webhooks/webhook-metrics.js';
import { verifyWebhook } from '../../../src/webhooks/webhook-signature.js';
import { FakeTimers, flushPromises } from '../../webhooks/fake-timers.js';
import { connected, newSecret, ScriptedTransport, status, webhookTarget, type RecordedRequest } from '../../webhooks/webhook-test-kit.js';

function setup(targets: WebhookTarget[], transport = new ScriptedTransport(), extra: Partial<WebhookDispatcherOptions> = {}) {
  const timers = new FakeTimers();
  const dispatcher = createWebhookDispatcher({
    targets,
    instance: 'test-instance',
    transport,
    clock: timers.clock,
    timers,
    random: () => 0.5,
    ...extra,
  });
  return { timers, dispatcher, transport };
}

const subjects = (request: RecordedRequest) => request.body.events.map((event) => event.subject);

describe('createWebhookDispatcher', () => {
  describe('batching', () => {
    it('sends a burst in batches of maxBatchEvents, in order, one request at a time', async () => {
      const { timers, dispatcher, transport } = setup([webhookTarget({ maxBatchEvents: 100 })]);
      for (let i = 0; i < 250; i++) dispatcher.enqueue(connected(`u${i}`));
      expect(transport.requests).to.have.length(0); // nothing is sent on the caller's stack
      await timers.advance(0);
      expect(transport.requests.map((request) => request.body.events.length)).to.deep.equal([100, 100, 50]);
      expect(transport.requests.flatMap(subjects)).to.deep.equal(Array.from({ length: 250 }, (_, i) => `u${i}`));
      expect(transport.maxInFlight).to.equal(1);
      expect(dispatcher.stats()[0]!.events.delivered).to.equal(250);
    });

    it('holds the first event for lingerMs and sends what arrived meanwhile with it', async () => {
      const { timers, dispatcher, transport } = setup([webhookTarget({ lingerMs: 80 })]);
      dispatcher.enqueue(connected('alice'));
      await timers.advance(50);
      dispatcher.enqueue(connected('bob'));
      await timers.advance(29);
      expect(transport.requests).to.have.length(0);
      await timers.advance(1);
      expect(transport.requests).to.have.length(1);
      expect(subjects(transport.requests[0]!)).to.deep.equal(['alice', 'bob']);
    });

    it('batches what waited for a busy slot as soon as it frees', async () => {
      const transport = new ScriptedTransport((_request, index) => (index === 0 ? undefined : status(200)));
      const { timers, dispatcher } = setup([webhookTarget({ lingerMs: 10 })], transport);
      dispatcher.enqueue(connected('first'));
      await timers.advance(10);
      for (const name of ['a', 'b', 'c']) dispatcher.enqueue(connected(name));
      await timers.advance(1000);
      expect(transport.requests).to.have.length(1);
      transport.requests[0]!.answer(status(200));
      await flushPromises();
      expect(transport.requests).to.have.length(2);
      expect(subjects(transport.requests[1]!)).to.deep.equal(['a', 'b', 'c']);
    });

    it('serialises each event once with id, kind, at, instance and the caller fields', async () => {
      const { timers, dispatcher, transport } = setup([webhookTarget({ events: ['disconnected'] })]);
      dispatcher.enqueue({
        kind: 'disconnected',
        subject: 'alice',
        connectionId: 'c1',
        topics: ['rooms/1'],
        reason: 'client_gone',
        at: Date.UTC(2026, 0, 2),
      });
      await timers.advance(100);
      const [event] = transport.requests[0]!.body.events;
      expect(event).to.deep.equal({
        id: event!.id,
        kind: 'disconnected',
        at: '2026-01-02T00:00:00.000Z',
        instance: 'test-instance',
        subject: 'alice',
        connectionId: 'c1',
        topics: ['rooms/1'],
        reason: 'client_gone',
      });
      expect(event!.id).to.match(/^evt_/);
      expect(transport.requests[0]!.body.missed).to.equal(0);
    });
  });

  describe('filtering', () => {
    it('sends each target only the kinds and topics it asked for', async () => {
      const rooms = webhookTarget({ name: 'rooms', events: ['connected', 'topic-occupied'], topics: ['rooms/**'] });
      const all = webhookTarget({ name: 'all', events: ['topic-occupied', 'member-added'] });
      const { timers, dispatcher, transport } = setup([rooms, all]);
      dispatcher.enqueue(connected('alice', ['users/alice/inbox', 'rooms/1']));
      dispatcher.enqueue(connected('bob', ['users/bob/inbox']));
      dispatcher.enqueue(connected('carol', ['rooms/*'])); // a selector covered by rooms/**
      dispatcher.enqueue(connected('dave', ['**'])); // wider than rooms/**: not covered
      dispatcher.enqueue({ kind: 'topic-occupied', topic: 'rooms/2' });
      dispatcher.enqueue({ kind: 'topic-occupied', topic: 'news' });
      dispatcher.enqueue({ kind: 'member-added', topic: 'rooms/2', subject: 'alice' });
      await timers.advance(100);
      const sent = (name: string) =>
        transport.requests.filter((request) => request.target === name).flatMap((request) => request.body.events);
      expect(sent('rooms').map((event) => event.subject ?? event.topic)).to.deep.equal(['alice', 'carol', 'rooms/2']);
      expect(sent('all').map((event) => `${event.kind}:${event.topic}`)).to.deep.equal([
        'topic-occupied:rooms/2',
        'topic-occupied:news',
        'member-added:rooms/2',
      ]);
    });
  });

  describe('retries', () => {
    it('delivers on the fourth try after three 500s, with the same id and body on every attempt, each signed', async () => {
      const secret = newSecret();
      const transport = new ScriptedTransport((_request, index) => status(index < 3 ? 500 : 200));
      const { timers, dispatcher } = setup([webhookTarget({ secret, retryInitialDelayMs: 1000 })], transport);
      dispatcher.enqueue(connected('alice'));
      await timers.advance(50);
      expect(transport.requests).to.have.length(1);
      // random() = 0.5: delays are 3/4 of 1 s, 2 s, 4 s.
      for (const [delay, attempts] of [
        [750, 2],
        [1500, 3],
        [3000, 4],
      ] as const) {
        await timers.advance(delay - 1);
        expect(transport.requests).to.have.length(attempts - 1);
        await timers.advance(1);
        expect(transport.requests).to.have.length(attempts);
      }
      await timers.advance(60_000);
      expect(transport.requests).to.have.length(4);
      const ids = transport.requests.map((request) => request.headers['webhook-id']);
      expect(new Set(ids).size).to.equal(1);
      expect(new Set(transport.requests.map((request) => request.rawBody)).size).to.equal(1);
      const timestamps = transport.requests.map((request) => Number(request.headers['webhook-timestamp']));
      expect(timestamps[3]! - timestamps[0]!).to.be.within(5, 6); // each attempt has its own timestamp
      for (const request of transport.requests) {
        expect(
          verifyWebhook({
            secret,
            headers: request.headers,
            body: request.rawBody,
            now: Number(request.headers['webhook-timestamp']) * 1000,
          }).id,
        ).to.equal(ids[0]);
      }
      const stats = dispatcher.stats()[0]!;
      expect(stats.attempts).to.include({ http_5xx: 3, success: 1 });
      expect(stats.events).to.include({ delivered: 1, given_up: 0 });
    });

    it('backs off exponentially with jitter, capped at retryMaxDelayMs', async () => {
      const draws = [0, 0.999, 0, 0.999, 0.5, 0.5];
      const transport = new ScriptedTransport(() => status(503));
      const { timers, dispatcher } = setup(
        [webhookTarget({ retryInitialDelayMs: 100, retryMaxDelayMs: 1000, maxAttempts: 7 })],
        transport,
        {
          random: () => draws.shift() ?? 0.5,
        },
      );
      dispatcher.enqueue(connected('alice'));
      await timers.advance(50);
      const delays: number[] = [];
      for (let i = 0; i < 6; i++) {
        delays.push(timers.delays()[0]!);
        await timers.advance(delays.at(-1)!);
      }
      // base 100, 200, 400, 800, 1000, 1000; half fixed, half random
      expect(delays).to.deep.equal([50, 200, 200, 800, 750, 750]);
    });

    it('waits as long as a 429 or 503 Retry-After asks, in seconds or as a date', async () => {
      const transport = new ScriptedTransport((_request, index) =>
        index === 0 ? status(429, '30') : index === 1 ? status(503, new Date(1_750_000_000_000 + 90_000).toUTCString()) : status(200),
      );
      const { timers, dispatcher } = setup([webhookTarget({ retryInitialDelayMs: 100 })], transport);
      dispatcher.enqueue(connected('alice'));
      await timers.advance(50);
      await timers.advance(29_999);
      expect(transport.requests).to.have.length(1);
      await timers.advance(1);
      expect(transport.requests).to.have.length(2);
      const sentAt = timers.now;
      await timers.advance(1_750_000_000_000 + 90_000 - sentAt - 1000); // the date is rounded to seconds
      expect(transport.requests).to.have.length(2);
      await timers.advance(1000);
      expect(transport.requests).to.have.length(3);
      expect(dispatcher.stats()[0]!.attempts).to.include({ http_429: 1, http_5xx: 1, success: 1 });
    });

    it('gives up after maxAttempts and tells the receiver in the next batch how many events it missed', async () => {
      const transport = new ScriptedTransport((_request, index) => status(index < 3 ? 500 : 200));
      const { timers, dispatcher } = setup([webhookTarget({ maxAttempts: 3, retryInitialDelayMs: 100 })], transport);
      dispatcher.enqueue(connected('lost-1'));
      dispatcher.enqueue(connected('lost-2'));
      await timers.advance(10_000);
      expect(transport.requests).to.have.length(3);
      expect(dispatcher.stats()[0]!.events).to.include({ given_up: 2, delivered: 0 });
      dispatcher.enqueue(connected('next'));
      await timers.advance(100);
      expect(transport.requests).to.have.length(4);
      expect(transport.requests[3]!.body).to.include({ missed: 2 });
      expect(transport.requests[3]!.headers['webhook-id']).not.to.equal(transport.requests[0]!.headers['webhook-id']);
    });

    it('gives up a batch older than maxAgeMs, and at once on 410 Gone', async () => {
      const aging = new ScriptedTransport(() => status(500));
      const old = setup([webhookTarget({ maxAgeMs: 5000, maxAttempts: 100, retryInitialDelayMs: 1000, retryMaxDelayMs: 1000 })], aging);
      old.dispatcher.enqueue(connected('alice'));
      await old.timers.advance(60_000);
      // attempts 750 ms apart (random 0.5) from 50 ms on: the eighth would start more than 5 s after the first
      expect(aging.requests).to.have.length(7);
      expect(old.dispatcher.stats()[0]!.events.given_up).to.equal(1);

      const gone = new ScriptedTransport(() => status(410));
      const goneSetup = setup([webhookTarget()], gone);
      goneSetup.dispatcher.enqueue(connected('alice'));
      await goneSetup.timers.advance(60_000);
      expect(gone.requests).to.have.length(1);
      expect(goneSetup.dispatcher.stats()[0]!.events.given_up).to.equal(1);
    });

    it('times out a request that hangs, aborts it, and retries', async () => {
      const transport = new ScriptedTransport((_request, index) => (index === 0 ? undefined : status(200)));
      const { timers, dispatcher } = setup([webhookTarget({ timeoutMs: 2000, retryInitialDelayMs: 100 })], transport);
      dispatcher.enqueue(connected('alice'));
      await timers.advance(50 + 1999);
      expect(transport.requests[0]!.signal.aborted).to.equal(false);
      await timers.advance(1);
      expect(transport.requests[0]!.signal.aborted).to.equal(true);
      await timers.advance(100);
      expect(transport.requests).to.have.length(2);
      expect(dispatcher.stats()[0]!.attempts).to.include({ timeout: 1, success: 1 });
    });

    it('counts a transport that throws as a network error and retries', async () => {
      let calls = 0;
      const transport = new ScriptedTransport();
      const throwing = {
        send: (...args: Parameters<ScriptedTransport['send']>) => {
          if (calls++ === 0) throw new Error('boom');
          return transport.send(...args);
        },
        close: () => undefined,
      };
      const { timers, dispatcher } = setup([webhookTarget({ retryInitialDelayMs: 100 })], transport, { transport: throwing });
      dispatcher.enqueue(connected('alice'));
      await timers.advance(1000);
      expect(dispatcher.stats()[0]!.attempts).to.include({ network_error: 1, success: 1 });
    });
  });

  describe('bounds', () => {
    it('drops the oldest waiting events when the queue is full, counts them, and reports them as missed', async () => {
      const transport = new ScriptedTransport((_request, index) => (index === 0 ? undefined : status(200)));
      const { timers, dispatcher } = setup([webhookTarget({ maxQueuedEvents: 5, maxBatchEvents: 5 })], transport);
      dispatcher.enqueue(connected('in-flight'));
      await timers.advance(50);
      for (let i = 0; i < 20; i++) dispatcher.enqueue(connected(`u${i}`));
      const stats = dispatcher.stats()[0]!;
      expect(stats).to.include({ queuedEvents: 5, pendingEvents: 1, inFlightRequests: 1 });
      expect(stats.events.dropped_overflow).to.equal(15);
      transport.requests[0]!.answer(status(200));
      await timers.advance(100);
      expect(subjects(transport.requests[1]!)).to.deep.equal(['u15', 'u16', 'u17', 'u18', 'u19']);
      expect(transport.requests[1]!.body.missed).to.equal(15);
    });

    it('never has more than maxConcurrentRequests in flight, and keeps accepting while they hang', async () => {
      const transport = new ScriptedTransport(() => undefined);
      const { timers, dispatcher } = setup(
        [webhookTarget({ maxConcurrentRequests: 3, maxBatchEvents: 2, maxQueuedEvents: 1000, timeoutMs: 60_000 })],
        transport,
      );
      for (let i = 0; i < 100; i++) dispatcher.enqueue(connected(`u${i}`));
      await timers.advance(1000);
      expect(transport.requests).to.have.length(3);
      expect(transport.maxInFlight).to.equal(3);
      for (let i = 0; i < 100; i++) dispatcher.enqueue(connected(`v${i}`));
      expect(dispatcher.stats()[0]).to.include({ queuedEvents: 194, pendingEvents: 6, inFlightRequests: 3 });
    });

    it('keeps a failing target from delaying another', async () => {
      const transport = new ScriptedTransport((request) => (request.target === 'down' ? undefined : status(200)));
      const { timers, dispatcher } = setup([webhookTarget({ name: 'down', timeoutMs: 60_000 }), webhookTarget({ name: 'up' })], transport);
      dispatcher.enqueue(connected('alice'));
      await timers.advance(50);
      dispatcher.enqueue(connected('bob'));
      await timers.advance(50);
      expect(dispatcher.stats().map((stats) => [stats.name, stats.events.delivered])).to.deep.equal([
        ['down', 0],
        ['up', 2],
      ]);
    });
  });

  describe('the caller', () => {
    it('never sees a throw, even for an event the dispatcher cannot serialise', () => {
      const { dispatcher } = setup([webhookTarget()]);
      const circular: Record<string, unknown> = { kind: 'connected', subject: 'x', connectionId: 'c', topics: [] };
      circular.self = circular;
      expect(() => dispatcher.enqueue(circular as never)).not.to.throw();
      expect(() => dispatcher.enqueue(undefined as never)).not.to.throw();
      expect(dispatcher.internalErrors).to.equal(2);
    });
  });

  describe('close', () => {
    it('with no grace aborts what is in flight, drops what waits, and leaves no timer behind', async () => {
      const transport = new ScriptedTransport(() => undefined);
      const { timers, dispatcher } = setup([webhookTarget()], transport);
      dispatcher.enqueue(connected('alice'));
      await timers.advance(50);
      dispatcher.enqueue(connected('bob'));
      await dispatcher.close();
      dispatcher.enqueue(connected('late'));
      expect(transport.requests[0]!.signal.aborted).to.equal(true);
      expect(transport.closed).to.equal(true);
      expect(dispatcher.stats()[0]!.events.dropped_shutdown).to.equal(3);
      expect(dispatcher.stats()[0]!.attempts.aborted).to.equal(1);
      expect(timers.size).to.equal(0);
    });

    it('with a grace period sends what is waiting at once, then resolves', async () => {
      const { timers, dispatcher, transport } = setup([webhookTarget({ lingerMs: 5000 })]);
      dispatcher.enqueue(connected('alice'));
      const closed = dispatcher.close({ graceMs: 3000 });
      await flushPromises();
      await closed;
      expect(transport.requests).to.have.length(1);
      expect(dispatcher.stats()[0]!.events.delivered).to.equal(1);
      expect(timers.size).to.equal(0);
    });

    it('gives up at the end of the grace period on a receiver that keeps failing', async () => {
      const transport = new ScriptedTransport(() => status(500));
      const { timers, dispatcher } = setup([webhookTarget({ retryInitialDelayMs: 500, retryMaxDelayMs: 500 })], transport);
      dispatcher.enqueue(connected('alice'));
      let done = false;
      void dispatcher.close({ graceMs: 2000 }).then(() => (done = true));
      await timers.advance(1999);
      expect(transport.requests.length).to.be.greaterThan(1);
      await timers.advance(1);
      await flushPromises();
      expect(done).to.equal(true);
      expect(dispatcher.stats()[0]!.events.dropped_shutdown).to.equal(1);
      expect(timers.size).to.equal(0);
    });
  });

  describe('metrics', () => {
    it('exposes deliveries by outcome, attempts, queue length and in-flight requests on a prom-client registry', async () => {
      const transport = new ScriptedTransport((_request, index) => (index === 0 ? status(500) : undefined));
      const { timers, dispatcher } = setup(
        [webhookTarget({ name: 'app', retryInitialDelayMs: 100, maxQueuedEvents: 100, maxBatchEvents: 1 })],
        transport,
      );
      const registry = new Registry();
      registerWebhookMetrics(registry, () => dispatcher.stats());
      dispatcher.enqueue(connected('alice'));
      await timers.advance(200);
      for (let i = 0; i < 150; i++) dispatcher.enqueue(connected(`u${i}`));
      const text = await registry.metrics();
      expect(text).to.contain('notify_webhook_attempts_total{target="app",outcome="http_5xx"} 1');
      expect(text).to.contain('notify_webhook_events_total{target="app",outcome="dropped_overflow"} 50');
      expect(text).to.contain('notify_webhook_events_total{target="app",outcome="delivered"} 0');
      expect(text).to.contain('notify_webhook_queued_events{target="app"} 100');
      expect(text).to.contain('notify_webhook_pending_events{target="app"} 1');
      expect(text).to.contain('notify_webhook_requests_in_flight{target="app"} 1');
      transport.requests[1]!.answer(status(200));
      await flushPromises();
      expect(await registry.metrics()).to.contain('notify_webhook_events_total{target="app",outcome="delivered"} 1');
    });
  });
});
