import type { Context, Next } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where the gauges read their values at scrape time (nothing is counted on the hot path for them). */
export interface MetricSources {
  /** Open SSE streams (`SessionRegistry.size`). */
  readonly openStreams: () => number;
  /** Events held in replay history (`MemoryBus.historySize`). */
  readonly historyEvents: () => number;
  /** Members over all presence topics and instances (the backend's presence store; read at scrape time). */
  readonly presenceMembers: () => Promise<number>;
}

/**
 * The server's Prometheus metrics (prom-client), on a registry of their own. Counting happens
 * once per event, per stream end or per request, never once per subscriber per event: the fan-out
 * loop stays free of instrumentation (delivered events are added up from the count
 * `LocalFanout.dispatch` returns).
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #published: Counter;
  readonly #delivered: Counter;
  readonly #latency: Histogram;
  readonly #authFailures: Counter<'reason'>;
  readonly #slowConsumers: Counter;
  readonly #renewals: Counter;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'notify_' });
    new Gauge({
      name: 'notify_open_streams',
      help: 'Open Server-Sent Events streams.',
      registers,
      collect() {
        this.set(sources.openStreams());
      },
    });
    new Gauge({
      name: 'notify_history_events',
      help: 'Events held for Last-Event-ID replay.',
      registers,
      collect() {
        this.set(sources.historyEvents());
      },
    });
    new Gauge({
      name: 'notify_presence_members',
      help: 'Members (a subject on a presence topic, however many streams) over all topics and instances: every instance reports the same value.',
      registers,
      async collect() {
        // A store that cannot be read gives NaN (no value) for this scrape, never a made-up 0 or a failed scrape
        // (prom-client writes it `Nan`, which Prometheus reads, as Go's ParseFloat, case-insensitively).
        try {
          this.set(await sources.presenceMembers());
        } catch {
          this.set(Number.NaN);
        }
      },
    });
    this.#published = new Counter({
      name: 'notify_events_published_total',
      help: 'Events accepted for publishing (idempotent repeats not counted).',
      registers,
    });
    this.#delivered = new Counter({
      name: 'notify_events_delivered_total',
      help: 'Event deliveries to subscribers of this process (one per event and subscriber).',
      registers,
    });
    this.#latency = new Histogram({
      name: 'notify_publish_to_write_seconds',
      help: 'From a publish reaching the bus to the event being written to every local subscriber stream.',
      // Fan-out is synchronous and in memory: sub-millisecond for small audiences, up to tens of ms for large ones.
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#authFailures = new Counter({
      name: 'notify_auth_failures_total',
      help: 'Refused authentications by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.#slowConsumers = new Counter({
      name: 'notify_slow_consumer_disconnects_total',
      help: 'Streams cut off because too many bytes waited for the client.',
      registers,
    });
    this.#renewals = new Counter({
      name: 'notify_inband_renewals_total',
      help: 'Stream tokens renewed in-band (POST to renewUrl).',
      registers,
    });
  }

  /** Called once per published event, after its fan-out. */
  dispatched(delivered: number, elapsedMs: number): void {
    this.#published.inc();
    if (delivered > 0) this.#delivered.inc(delivered);
    this.#latency.observe(elapsedMs / 1000);
  }

  streamEnded(reason: string): void {
    if (reason === 'slow_consumer') this.#slowConsumers.inc();
  }

  renewed(): void {
    this.#renewals.inc();
  }

  authFailure(reason: string): void {
    this.#authFailures.inc({ reason });
  }

  /**
   * Koa middleware (outside the error handler) that counts refused authentications from the
   * answers: bearer failures by their logged reason, refused passwords and client secrets,
   * refused refresh tokens and cross-site cookie requests.
   */
  readonly observeAuth = async (ctx: Context, next: Next): Promise<void> => {
    await next();
    const reason = authFailureReason(ctx);
    if (reason !== undefined) this.authFailure(reason);
  };

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const COUNTED_CODES = new Set(['invalid_credentials', 'invalid_client', 'invalid_grant', 'csrf_rejected']);

function authFailureReason(ctx: Context): string | undefined {
  if (typeof ctx.state.authFailure === 'string') return ctx.state.authFailure;
  const code = (ctx.body as { error?: unknown } | undefined)?.error;
  return typeof code === 'string' && COUNTED_CODES.has(code) ? code : undefined;
}
