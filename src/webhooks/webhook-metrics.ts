import { Counter, Gauge, type Registry } from 'prom-client';
import { ATTEMPT_OUTCOMES, EVENT_OUTCOMES, type WebhookTargetStats } from './target-queue.js';

/** Where the metrics read from at scrape time: `() => dispatcher.stats()`. */
export type WebhookStatsSource = () => readonly WebhookTargetStats[];

/**
 * Registers the webhook metrics on a prom-client registry. Everything is read from the
 * dispatcher's own counters when Prometheus scrapes, so the enqueue path only adds to integers.
 * Labels are the target's configured name (never its URL, which may carry a token).
 *
 * - `notify_webhook_events_total{target,outcome}`: delivered | given_up | dropped_overflow | dropped_shutdown
 * - `notify_webhook_attempts_total{target,outcome}`: success | http_3xx | http_4xx | http_429 | http_5xx | timeout | network_error | address_refused | aborted
 * - `notify_webhook_queued_events{target}`, `notify_webhook_pending_events{target}`, `notify_webhook_requests_in_flight{target}`
 */
export function registerWebhookMetrics(registry: Registry, source: WebhookStatsSource): void {
  const registers = [registry];
  new Counter({
    name: 'notify_webhook_events_total',
    help: 'Lifecycle events handed to webhook targets, by what became of them.',
    labelNames: ['target', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const stats of source()) for (const outcome of EVENT_OUTCOMES) this.inc({ target: stats.name, outcome }, stats.events[outcome]);
    },
  });
  new Counter({
    name: 'notify_webhook_attempts_total',
    help: 'Webhook HTTP requests, by outcome.',
    labelNames: ['target', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const stats of source())
        for (const outcome of ATTEMPT_OUTCOMES) this.inc({ target: stats.name, outcome }, stats.attempts[outcome]);
    },
  });
  const gauge = (name: string, help: string, read: (stats: WebhookTargetStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['target'],
      registers,
      collect() {
        for (const stats of source()) this.set({ target: stats.name }, read(stats));
      },
    });
  gauge('notify_webhook_queued_events', 'Events waiting to be batched, per webhook target.', (stats) => stats.queuedEvents);
  gauge(
    'notify_webhook_pending_events',
    'Events in batches being sent or waiting for a retry, per webhook target.',
    (stats) => stats.pendingEvents,
  );
  gauge('notify_webhook_requests_in_flight', 'Webhook requests in flight, per webhook target.', (stats) => stats.inFlightRequests);
}
