import { backoffDelay, type BackoffOptions } from './backoff.js';
import { NotifyClientError, SignedOutError, StreamStoppedError } from './errors.js';
import { compareEventIds } from './event-id.js';
import type { EventSourceConstructor, EventSourceLike, StreamState, SubscribeHandlers, SubscribeOptions, Subscription } from './types.js';

/**
 * What a stream needs from the client that owns it (`NotifyClient` builds one), so that the stream
 * depends on this narrow interface and never on the client class: the import runs one way.
 * @internal
 */
export interface StreamHost {
  /** False for a fixed access token: a 401 cannot be cured by a refresh. */
  canRefresh(): boolean;
  readonly random: () => number;
  readonly backoff: BackoffOptions;
  /** Absolute URL of a server path. */
  url(path: string): string;
  /** The init for `new EventSource(url, init)`: how the stream request carries the credentials. */
  eventSourceInit(): Record<string, unknown>;
  /** A request to the server with the client's credentials. */
  authFetch(path: string, init?: RequestInit): Promise<Response>;
  /** Refreshes unless the token is still valid long enough to open a stream. @throws SignedOutError */
  ensureFresh(): Promise<unknown>;
  /** Refreshes unless the token outlives `tokenExpiresAt` (server clock, ms). @throws SignedOutError */
  ensureOutlives(tokenExpiresAt: number): Promise<void>;
  /** A new token now. @throws SignedOutError */
  refresh(): Promise<unknown>;
  /** Tracks an open stream, so the host can stop it (client closed, signed out); returns the release. */
  attach(stream: StreamControl): () => void;
}

/** How the host reaches a stream it tracks. @internal */
export interface StreamControl {
  close(): void;
  /** The sign-in ended (logout, refused refresh): the stream stops with `signed_out`. */
  signedOut(): void;
}

/**
 * One subscription: a `GET /events` EventSource that the client manages itself rather than
 * leaving reconnection to EventSource, so that every exit is handled on purpose:
 *
 * - a dropped connection reconnects with jittered back-off, resuming with `?lastEventId=` (a new
 *   EventSource does not carry the old one's Last-Event-ID); events at or before the last id seen
 *   are dropped, so nothing is delivered twice;
 * - `token-expiring`: a fresh token is POSTed to `renewUrl` (in cookie mode the cookie carries it)
 *   and the stream goes on without a reconnect;
 * - `closed` (`token_expired`, `revoked`): refresh, then reconnect at once; a refused refresh stops
 *   the stream with `signed_out`;
 * - 401 (after one refresh), 403 and 400 stop it with a `StreamStoppedError`: retrying cannot help;
 * - `reset`: the `reset` handler runs, and the stream carries on from the server's newest id.
 *
 * Not exported from the package: `NotifyClient.subscribe` hands it out as a `Subscription`.
 * @internal
 */
export class StreamConnection implements Subscription {
  #state: StreamState = 'connecting';
  #lastEventId: string | undefined;
  #source: EventSourceLike | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #authRetried = false;
  #closedReason: string | undefined;
  #stopped = false;
  #release: (() => void) | undefined;
  readonly #host: StreamHost;
  readonly #EventSource: EventSourceConstructor;
  readonly #topics: readonly string[];
  readonly #handlers: SubscribeHandlers;
  readonly #renew: boolean;
  readonly #types: readonly string[];

  constructor(
    host: StreamHost,
    EventSourceImpl: EventSourceConstructor,
    topics: readonly string[],
    handlers: SubscribeHandlers,
    options: SubscribeOptions,
  ) {
    this.#host = host;
    this.#EventSource = EventSourceImpl;
    this.#topics = topics;
    this.#handlers = handlers;
    this.#renew = options.renew !== false;
    this.#lastEventId = options.lastEventId;
    this.#types = [...new Set(['message', ...(options.types ?? [])])];
  }

  get state(): StreamState {
    return this.#state;
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  /** Registers with the host and connects. */
  start(): void {
    this.#release = this.#host.attach({
      close: () => this.close(),
      signedOut: () => this.#stop(new StreamStoppedError('signed_out', 'Signed out: the stream stopped.')),
    });
    void this.#connect();
  }

  close(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#source?.close();
    this.#source = undefined;
    this.#setState('stopped');
    this.#release?.();
  }

  #stop(error: NotifyClientError): void {
    if (this.#stopped) return;
    this.close();
    this.#handlers.stop?.(error);
  }

  #setState(state: StreamState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#handlers.state?.(state);
  }

  /** `GET /events` with the topics, resuming after the last id seen. */
  #streamPath(): string {
    const query = new URLSearchParams();
    for (const topic of this.#topics) query.append('topic', topic);
    if (this.#lastEventId !== undefined && this.#lastEventId !== '') query.set('lastEventId', this.#lastEventId);
    return `/events?${query.toString()}`;
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#host.ensureFresh();
    } catch (error) {
      if (error instanceof SignedOutError) return this.#stop(new StreamStoppedError('signed_out', error.message, { cause: error }));
      return this.#retryLater();
    }
    if (this.#stopped) return;
    const source = new this.#EventSource(this.#host.url(this.#streamPath()), this.#host.eventSourceInit());
    this.#source = source;
    this.#closedReason = undefined;
    let opened = false;
    const json = (event: MessageEvent) => {
      try {
        return JSON.parse(String(event.data)) as Record<string, unknown>;
      } catch {
        return {};
      }
    };
    source.onopen = () => {
      opened = true;
    };
    source.addEventListener('connected', (event) => {
      this.#attempt = 0;
      this.#authRetried = false;
      this.#setState('open');
      this.#handlers.connected?.(json(event) as never);
    });
    source.addEventListener('token-expiring', (event) => {
      if (this.#renew) void this.#renewToken(json(event) as { expiresAt: string; renewUrl: string });
    });
    source.addEventListener('token-renewed', (event) => this.#handlers.renewed?.(String(json(event).expiresAt)));
    source.addEventListener('reset', (event) => {
      // The reset carries the server's newest id (or none): carry on from there.
      this.#lastEventId = event.lastEventId === '' ? undefined : event.lastEventId;
      this.#handlers.reset?.(json(event) as never);
    });
    source.addEventListener('closed', (event) => {
      this.#closedReason = String(json(event).reason);
    });
    const onEvent = (event: MessageEvent) => {
      const id = event.lastEventId;
      if (id !== '' && this.#lastEventId !== undefined && compareEventIds(id, this.#lastEventId) <= 0) return;
      if (id !== '') this.#lastEventId = id;
      // The server wraps every published value as {"topic": ..., "data": ...}.
      let envelope: { topic?: unknown; data?: unknown } | null;
      try {
        envelope = JSON.parse(String(event.data)) as typeof envelope;
      } catch {
        envelope = null;
      }
      const topic = typeof envelope?.topic === 'string' ? envelope.topic : '';
      this.#handlers.event?.({ id, type: event.type, topic, data: envelope?.data ?? null });
    };
    for (const type of this.#types) source.addEventListener(type, onEvent);
    source.onerror = (event) => {
      if (this.#source !== source) return;
      source.close();
      this.#source = undefined;
      void this.#dropped((event as { code?: number }).code, opened);
    };
  }

  async #dropped(code: number | undefined, opened: boolean): Promise<void> {
    if (this.#stopped) return;
    this.#setState('reconnecting');
    const reason = this.#closedReason;
    if (reason === 'insufficient_scope') {
      return this.#stop(new StreamStoppedError('insufficient_scope', 'The token no longer covers these topics.'));
    }
    if (reason === 'token_expired' || reason === 'revoked') {
      if (await this.#refreshed(reason === 'revoked')) this.#reconnectNow();
      return;
    }
    if (reason === 'shutdown') return this.#retryLater();

    // A browser's EventSource does not tell why a connection was refused: ask once with fetch.
    const status = code ?? (opened ? undefined : await this.#probe());
    if (this.#stopped) return;
    if (status === 401) {
      if (this.#authRetried || !this.#host.canRefresh())
        return this.#stop(new StreamStoppedError('unauthorized', 'The server refused the token.', { status }));
      this.#authRetried = true;
      if (await this.#refreshed(true)) this.#reconnectNow();
      return;
    }
    if (status === 403)
      return this.#stop(new StreamStoppedError('forbidden', 'This account may not subscribe to these topics.', { status }));
    if (status === 400 || status === 406) {
      return this.#stop(new StreamStoppedError('forbidden', 'The server refused this subscription as invalid.', { status }));
    }
    this.#retryLater();
  }

  /** Refreshes the token; false (and the stream stopped) when the sign-in is over. */
  async #refreshed(force: boolean): Promise<boolean> {
    try {
      if (force) await this.#host.refresh();
      else await this.#host.ensureFresh();
      return !this.#stopped;
    } catch (error) {
      if (error instanceof SignedOutError) {
        this.#stop(new StreamStoppedError('signed_out', error.message, { cause: error }));
        return false;
      }
      this.#retryLater();
      return false;
    }
  }

  /** The status `GET /events` answers now; undefined when the server cannot be reached. */
  async #probe(): Promise<number | undefined> {
    const controller = new AbortController();
    try {
      const res = await this.#host.authFetch(this.#streamPath(), {
        headers: { accept: 'text/event-stream' },
        signal: controller.signal,
      });
      return res.status;
    } catch {
      return undefined;
    } finally {
      controller.abort();
    }
  }

  #reconnectNow(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#connect(), 0);
  }

  #retryLater(): void {
    if (this.#stopped) return;
    this.#setState('reconnecting');
    clearTimeout(this.#timer);
    const wait = 100 + backoffDelay(this.#attempt++, this.#host.random, this.#host.backoff);
    this.#timer = setTimeout(() => void this.#connect(), wait);
  }

  async #renewToken(data: { expiresAt: string; renewUrl: string }): Promise<void> {
    try {
      await this.#host.ensureOutlives(Date.parse(data.expiresAt));
      if (this.#stopped) return;
      const res = await this.#host.authFetch(data.renewUrl, { method: 'POST' });
      // 404: the stream is gone already (its reconnect handles it); 403: the server closes it with insufficient_scope.
      void res.body?.cancel();
    } catch (error) {
      if (error instanceof SignedOutError) this.#stop(new StreamStoppedError('signed_out', error.message, { cause: error }));
      // Otherwise the stream ends at expiry with `closed`, and the reconnect takes a fresh token.
    }
  }
}
