import { randomUUID } from 'node:crypto';
import { coveredByAny, parseSelector, type Selector } from '../topics/selector.js';
import type { Resolver } from './address-policy.js';
import { createHttpTransport } from './http-transport.js';
import { TargetQueue, type WebhookLogger, type WebhookTargetStats } from './target-queue.js';
import type { WebhookTarget } from './webhook-config.js';
import { topicsOf, wireEvent, type WebhookEvent } from './webhook-event.js';
import { systemTimers, type WebhookTimers } from './webhook-timers.js';
import type { WebhookTransport } from './webhook-transport.js';

export interface WebhookDispatcherOptions {
  /** From `parseWebhookConfig`. */
  readonly targets: readonly WebhookTarget[];
  /** This server instance, sent as `instance` in every event (e.g. the host name and process id). */
  readonly instance: string;
  /** Default: node:http(s) with `resolver`. */
  readonly transport?: WebhookTransport;
  /** For the default transport. Default: the system resolver. */
  readonly resolver?: Resolver;
  /** Epoch ms. Default: Date.now. */
  readonly clock?: () => number;
  /** Default: Node's timers, unref'd. */
  readonly timers?: WebhookTimers;
  /** Uniform in [0, 1), for back-off jitter. Default: Math.random. */
  readonly random?: () => number;
  /** Unique ids for events and deliveries (no `.`). Default: crypto.randomUUID. */
  readonly randomId?: () => string;
  /** Target failing, recovered, batch given up. URLs are never logged (they may carry a token): target names and origins are. */
  readonly logger?: WebhookLogger;
}

export interface WebhookDispatcher {
  /**
   * Hands an event to every target that wants it (its kind, and a topic covered by the target's
   * selectors). Synchronous, constant work per target, never throws and never waits on a target:
   * call it from the stream path.
   */
  enqueue(event: WebhookEvent): void;
  /** Per-target counters and gauges, for metrics (`registerWebhookMetrics`) and tests. */
  stats(): readonly WebhookTargetStats[];
  /** Events `enqueue` could not handle (a bug, logged): counted so that nothing is lost silently. */
  readonly internalErrors: number;
  /**
   * Stops accepting events (later ones count as `dropped_shutdown`), keeps delivering for up to
   * `graceMs` (default 0), then aborts what is left and closes connections.
   */
  close(options?: { readonly graceMs?: number }): Promise<void>;
}

/**
 * Sends lifecycle events to the configured webhook targets: batched, signed (Standard Webhooks),
 * retried with back-off and jitter, at least once, each target with its own bounded queue and
 * request slots so that one slow, failing or unreachable receiver never delays another, nor the
 * caller. Delivery is in memory: events still queued when the process dies are lost, which is why
 * receivers reconcile from a presence snapshot (issue 15: webhooks to be quick, snapshots to be correct).
 */
export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const clock = options.clock ?? Date.now;
  const randomId = options.randomId ?? randomUUID;
  const transport = options.transport ?? createHttpTransport({ resolver: options.resolver });
  const deps = {
    transport,
    clock,
    timers: options.timers ?? systemTimers,
    random: options.random ?? Math.random,
    randomId,
    logger: options.logger,
  };
  const queues = options.targets.map((target) => new TargetQueue(target, deps));
  const instance = options.instance;
  let internalErrors = 0;
  let closing: Promise<void> | undefined;

  function wants(target: WebhookTarget, event: WebhookEvent, selectors: () => readonly Selector[]): boolean {
    if (!target.events.has(event.kind)) return false;
    if (target.topics === undefined) return true;
    for (const selector of selectors()) if (coveredByAny(target.topics, selector)) return true;
    return false;
  }

  return {
    enqueue(event: WebhookEvent): void {
      try {
        let parsed: Selector[] | undefined;
        // Topics are parsed once per event, and only when a target filters on them; one that is
        // not a valid topic or selector matches no filter.
        const selectors = () =>
          (parsed ??= topicsOf(event).flatMap((topic) => {
            try {
              return [parseSelector(topic)];
            } catch {
              return [];
            }
          }));
        let json: string | undefined;
        for (const queue of queues) {
          if (!wants(queue.target, event, selectors)) continue;
          json ??= JSON.stringify(wireEvent(event, `evt_${randomId()}`, event.at ?? clock(), instance));
          queue.accept(json);
        }
      } catch (error) {
        internalErrors++;
        options.logger?.error({ err: error, kind: (event as { kind?: unknown } | undefined)?.kind }, 'webhook event not queued');
      }
    },
    stats: () => queues.map((queue) => queue.stats()),
    get internalErrors() {
      return internalErrors;
    },
    close(closeOptions = {}): Promise<void> {
      closing ??= Promise.all(queues.map((queue) => queue.close(closeOptions.graceMs ?? 0))).then(() => transport.close());
      return closing;
    },
  };
}
