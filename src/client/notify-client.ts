import { backoffDelay, type BackoffOptions } from './backoff.js';
import { errorFromResponse, NetworkError, NotifyClientError, SignedOutError } from './errors.js';
import { StreamConnection, type StreamControl, type StreamHost } from './stream-connection.js';
import type { RefreshCoordinator } from './tab-coordinator.js';
import { requestToken, type TokenGrant, type TokenResponse } from './token-request.js';
import type {
  AuthState,
  EventSourceConstructor,
  NotifyClientApi,
  PublishOptions,
  PublishResult,
  SessionInfo,
  SubscribeHandlers,
  SubscribeOptions,
  Subscription,
} from './types.js';

export interface NotifyClientOptions {
  /** The server's URL; default '' (same origin, in a browser). */
  readonly baseUrl?: string;
  /**
   * `cookie` (browsers, the default when no credentials are given): the access token lives only in
   * the server's HttpOnly cookie and is never kept by this client. `bearer` (Node, services): the
   * tokens are held in private fields and sent as `Authorization: Bearer`.
   */
  readonly mode?: 'cookie' | 'bearer';
  /** A service client: tokens come from the client_credentials grant (bearer mode). */
  readonly clientCredentials?: { readonly id: string; readonly secret: string };
  /** A fixed access token (bearer mode, no refresh): e.g. from `notify token get`. */
  readonly accessToken?: string;
  /** EventSource implementation; default `globalThis.EventSource` (Node: `import { EventSource } from 'eventsource'`). */
  readonly EventSource?: EventSourceConstructor;
  readonly fetch?: typeof fetch;
  /** Reconnect back-off; see `backoff.ts`. */
  readonly backoff?: BackoffOptions;
  readonly clock?: () => number;
  readonly random?: () => number;
  /**
   * Cookie mode, when several clients share one cookie jar (tabs without SharedWorker): takes
   * turns refreshing and shares the result. See `createTabCoordinator`.
   */
  readonly coordinator?: RefreshCoordinator;
}

/** Refresh this long before expiry at most (and at least 1 s, or a quarter of the lifetime). */
const MAX_REFRESH_MARGIN_MS = 60_000;
/** A request (a stream, a publish) is not sent with a token that has less than this left. */
const MIN_TOKEN_VALIDITY_MS = 1_000;

/**
 * The notify client for browsers and Node: sign-in, refresh before expiry (single-flight: callers
 * that need a token at the same time share one refresh), publish with idempotent retry, and
 * subscriptions that resume, renew in-band and back off (`stream-connection.ts`).
 *
 * In cookie mode (browsers) the access token is never stored: it lives in the HttpOnly cookie the
 * server sets, and the client keeps only the claims it needs (subject, grants, expiry).
 */
export class NotifyClient implements NotifyClientApi {
  readonly baseUrl: string;
  readonly mode: 'cookie' | 'bearer';
  readonly clock: () => number;
  readonly random: () => number;
  readonly backoff: BackoffOptions;
  readonly #fetch: typeof fetch;
  readonly #EventSource: EventSourceConstructor | undefined;
  readonly #clientCredentials: NotifyClientOptions['clientCredentials'];
  readonly #coordinator: RefreshCoordinator | undefined;
  #accessToken: string | undefined;
  #refreshToken: string | undefined;
  #session: SessionInfo | undefined;
  #refreshing: Promise<SessionInfo> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshFailures = 0;
  readonly #listeners = new Set<(state: AuthState) => void>();
  readonly #streams = new Set<StreamControl>();
  /** What this client's streams may use of it (`StreamHost`), and nothing more. */
  readonly #streamHost: StreamHost;

  constructor(options: NotifyClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    this.#clientCredentials = options.clientCredentials;
    this.mode = options.mode ?? (options.clientCredentials !== undefined || options.accessToken !== undefined ? 'bearer' : 'cookie');
    if (this.mode === 'cookie' && (options.clientCredentials !== undefined || options.accessToken !== undefined)) {
      throw new TypeError('NotifyClient: clientCredentials and accessToken need mode "bearer"');
    }
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new TypeError('NotifyClient: no fetch available; pass options.fetch');
    this.#fetch = fetchImpl.bind(globalThis);
    this.#EventSource = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.backoff = options.backoff ?? {};
    this.#coordinator = this.mode === 'cookie' ? options.coordinator : undefined;
    // Another tab signed in or refreshed: its cookie is ours too; adopt the claims and the schedule.
    this.#coordinator?.onAnnounce((session) => {
      if (this.#session !== undefined && this.#session.tokenExpiresAt >= session.tokenExpiresAt) return;
      this.#session = session;
      this.#scheduleRefresh(session);
      this.#emit({ signedIn: true, session });
    });
    this.#streamHost = this.#createStreamHost();
    if (options.accessToken !== undefined) {
      this.#accessToken = options.accessToken;
      try {
        this.#session = sessionFrom(options.accessToken, undefined, this.clock());
      } catch {
        // Not a JWT we can read: the server will say what it thinks of it.
      }
    }
  }

  get session(): SessionInfo | undefined {
    return this.#session;
  }

  /** False for a fixed access token: nothing to get a new one with. */
  get canRefresh(): boolean {
    return this.mode === 'cookie' || this.#refreshToken !== undefined || this.#clientCredentials !== undefined;
  }

  onAuthChange(listener: (state: AuthState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Signs a person in (`POST /auth/login`). In cookie mode the server sets the HttpOnly cookies;
   * the token in the answer's body is read for its claims and dropped.
   * @throws NotifyClientError `invalid_credentials` (401), `rate_limited` (429), NetworkError.
   */
  async login(username: string, password: string): Promise<SessionInfo> {
    const res = await this.#request('/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password, cookie: this.mode === 'cookie' }),
    });
    if (!res.ok) throw await errorFromResponse(res);
    const session = this.#accept((await res.json()) as TokenResponse);
    this.#coordinator?.announce(session);
    return session;
  }

  /** Cookie mode: signs in again from the refresh cookie, if any (after a page load). */
  async restore(): Promise<SessionInfo | undefined> {
    if (this.#session !== undefined) return this.#session;
    if (this.mode === 'bearer' && this.#refreshToken === undefined && this.#clientCredentials === undefined) return undefined;
    try {
      return await this.refresh();
    } catch (error) {
      if (error instanceof SignedOutError) return undefined;
      throw error;
    }
  }

  /**
   * A new access token now. Concurrent callers share one request: two refreshes with the same
   * rotating refresh token would look like theft to the server (RFC 9700 §4.14.2) and end the sign-in.
   * @throws SignedOutError when the server refuses (the client is then signed out), NetworkError.
   */
  refresh(): Promise<SessionInfo> {
    this.#refreshing ??= this.#coordinatedRefresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Refreshes unless the current token is valid for at least `minValidMs` more. */
  async ensureFresh(minValidMs: number): Promise<SessionInfo | undefined> {
    const session = this.#session;
    if (session !== undefined && session.expiresAt - this.clock() >= minValidMs) return session;
    if (session === undefined && this.mode === 'cookie') {
      // Cookie mode without known claims: the cookie may still be good (the stream will say).
      return undefined;
    }
    if (this.#accessToken !== undefined && this.#refreshToken === undefined && this.#clientCredentials === undefined) {
      return session; // a fixed token: nothing to refresh with
    }
    return this.refresh();
  }

  /** Refreshes unless the current token outlives `tokenExpiresAt` (server clock, ms). */
  async ensureOutlives(tokenExpiresAt: number): Promise<void> {
    const session = this.#session;
    if (session !== undefined && session.tokenExpiresAt > tokenExpiresAt) return;
    await this.refresh();
  }

  /** Ends the sign-in on the server (its streams close) and forgets it here. */
  async logout(): Promise<void> {
    try {
      const res = await this.#authFetch('/auth/logout', { method: 'POST' });
      if (!res.ok && res.status !== 401) throw await errorFromResponse(res);
    } finally {
      this.#signOut('logout');
    }
  }

  /**
   * Publishes `data` to `topics`. Retries network errors, 429 and 5xx with the same idempotency
   * key, so a publish whose answer was lost is not delivered twice; a 401 is retried once after a
   * refresh.
   * @throws NotifyClientError with the server's `error` code (`insufficient_scope`, ...), NetworkError, SignedOutError.
   */
  async publish(topics: readonly string[], data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    const body = JSON.stringify({
      topics,
      ...(options.type === undefined ? {} : { type: options.type }),
      data: data === undefined ? null : data,
      idempotencyKey: options.idempotencyKey ?? randomKey(this.random),
    });
    const retries = options.retries ?? 3;
    let refreshed = false;
    let lastError: NotifyClientError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(backoffDelay(attempt, this.random, { initialMs: 200, maxMs: 5000, ...this.backoff }) + 50);
      await this.ensureFresh(MIN_TOKEN_VALIDITY_MS);
      let res: Response;
      try {
        res = await this.#authFetch('/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      } catch (error) {
        lastError = error instanceof NotifyClientError ? error : new NetworkError('The server could not be reached.', { cause: error });
        continue;
      }
      if (res.ok) {
        const json = (await res.json()) as { id: string; topics: string[]; type: string; duplicate?: boolean };
        return { id: json.id, topics: json.topics, type: json.type, duplicate: json.duplicate === true };
      }
      const error = await errorFromResponse(res);
      if (res.status === 401 && !refreshed && this.canRefresh) {
        refreshed = true;
        await this.refresh();
        attempt--;
        continue;
      }
      if (res.status === 429 || res.status >= 500) {
        lastError = error;
        continue;
      }
      throw error;
    }
    throw lastError ?? new NetworkError('Publishing failed.');
  }

  /** Opens a live subscription; see `StreamConnection`. */
  subscribe<T = unknown>(topics: readonly string[], handlers: SubscribeHandlers<T>, options: SubscribeOptions = {}): Subscription {
    if (this.#EventSource === undefined) throw new TypeError('NotifyClient: no EventSource available; pass options.EventSource');
    if (topics.length === 0) throw new TypeError('subscribe: give at least one topic selector');
    const stream = new StreamConnection(this.#streamHost, this.#EventSource, topics, handlers, options);
    stream.start();
    return stream;
  }

  /** Stops every subscription and timer (the sign-in stays valid on the server). */
  close(): void {
    clearTimeout(this.#refreshTimer);
    for (const stream of [...this.#streams]) stream.close();
  }

  #createStreamHost(): StreamHost {
    // Arrow functions: the stream calls these detached, and they reach this client's private state.
    return {
      canRefresh: () => this.canRefresh,
      random: this.random,
      backoff: this.backoff,
      url: (path) => this.#url(path),
      eventSourceInit: () => this.#eventSourceInit(),
      authFetch: (path, init) => this.#authFetch(path, init),
      ensureFresh: () => this.ensureFresh(MIN_TOKEN_VALIDITY_MS),
      ensureOutlives: (tokenExpiresAt) => this.ensureOutlives(tokenExpiresAt),
      refresh: () => this.refresh(),
      attach: (stream) => {
        this.#streams.add(stream);
        return () => this.#streams.delete(stream);
      },
    };
  }

  /** A request to the server with this client's credentials (cookie, or bearer header). */
  #authFetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.mode === 'bearer' && this.#accessToken !== undefined) headers.set('authorization', `Bearer ${this.#accessToken}`);
    return this.#request(path, { ...init, headers });
  }

  /** The init for `new EventSource(url, init)`. */
  #eventSourceInit(): Record<string, unknown> {
    if (this.mode === 'cookie') return { withCredentials: true };
    // The `eventsource` package has no headers option: wrap its fetch (called on every connect).
    return {
      fetch: (input: string | URL, init?: RequestInit) => {
        const headers = new Headers(init?.headers);
        if (this.#accessToken !== undefined) headers.set('authorization', `Bearer ${this.#accessToken}`);
        return this.#fetch(input, { ...init, headers });
      },
    };
  }

  /** Absolute URL of a server path. */
  #url(path: string): string {
    return `${this.baseUrl}${path}`;
  }

  async #request(path: string, init: RequestInit): Promise<Response> {
    try {
      return await this.#fetch(this.#url(path), { ...init, credentials: this.#credentials() });
    } catch (error) {
      throw new NetworkError('The server could not be reached.', { cause: error });
    }
  }

  /** Cookies go with every request in cookie mode, and with none in bearer mode. */
  #credentials(): RequestCredentials {
    return this.mode === 'cookie' ? 'include' : 'omit';
  }

  async #coordinatedRefresh(): Promise<SessionInfo> {
    const coordinator = this.#coordinator;
    if (coordinator === undefined) return this.#doRefresh();
    const before = this.#session?.tokenExpiresAt;
    return coordinator.exclusive(async () => {
      // While we waited for our turn, another tab may have refreshed (and rotated the cookie).
      const now = this.#session;
      if (now !== undefined && now.tokenExpiresAt !== before && now.expiresAt - this.clock() > MIN_TOKEN_VALIDITY_MS) return now;
      const session = await this.#doRefresh();
      coordinator.announce(session);
      return session;
    });
  }

  async #doRefresh(): Promise<SessionInfo> {
    let grant: TokenGrant;
    if (this.#clientCredentials !== undefined) {
      grant = { type: 'client_credentials', clientId: this.#clientCredentials.id, clientSecret: this.#clientCredentials.secret };
    } else if (this.mode === 'bearer') {
      if (this.#refreshToken === undefined) throw new SignedOutError('No refresh token: sign in.');
      grant = { type: 'refresh_token', refreshToken: this.#refreshToken };
    } else {
      // Cookie mode sends no refresh_token: the server reads the HttpOnly notify_rt cookie (path /auth)
      // and checks that the request's Origin is its own.
      grant = { type: 'refresh_token' };
    }
    let body: TokenResponse;
    try {
      body = await requestToken(this.#fetch, this.#url('/auth/token'), grant, { credentials: this.#credentials() });
    } catch (error) {
      const status = error instanceof NotifyClientError ? error.status : undefined;
      if (status === 400 || status === 401 || status === 403) {
        const refused = error as NotifyClientError;
        this.#signOut(refused.code);
        throw new SignedOutError(`Signed out: ${refused.message}`, { status, cause: refused });
      }
      this.#scheduleRetry();
      throw error;
    }
    this.#refreshFailures = 0;
    return this.#accept(body);
  }

  #accept(body: TokenResponse): SessionInfo {
    const session = sessionFrom(body.access_token, body.expires_in, this.clock());
    if (this.mode === 'bearer') {
      this.#accessToken = body.access_token;
      if (body.refresh_token !== undefined) this.#refreshToken = body.refresh_token;
    }
    this.#session = session;
    this.#scheduleRefresh(session);
    this.#emit({ signedIn: true, session });
    return session;
  }

  #scheduleRefresh(session: SessionInfo): void {
    clearTimeout(this.#refreshTimer);
    if (this.mode === 'bearer' && this.#refreshToken === undefined && this.#clientCredentials === undefined) return;
    const lifetime = session.expiresAt - this.clock();
    const margin = Math.min(MAX_REFRESH_MARGIN_MS, Math.max(1000, lifetime / 4));
    this.#refreshTimer = setTimeout(() => void this.refresh().catch(() => undefined), Math.max(0, lifetime - margin));
  }

  /** A refresh failed on the network: try again soon, with back-off, while the sign-in lasts. */
  #scheduleRetry(): void {
    clearTimeout(this.#refreshTimer);
    if (this.#session === undefined) return;
    const wait = 250 + backoffDelay(this.#refreshFailures++, this.random, { initialMs: 500, maxMs: 10_000 });
    this.#refreshTimer = setTimeout(() => void this.refresh().catch(() => undefined), wait);
  }

  #signOut(reason: string): void {
    clearTimeout(this.#refreshTimer);
    const was = this.#session !== undefined;
    this.#session = undefined;
    this.#accessToken = undefined;
    this.#refreshToken = undefined;
    for (const stream of [...this.#streams]) stream.signedOut();
    if (was || reason === 'logout') this.#emit({ signedIn: false, reason });
  }

  #emit(state: AuthState): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(state);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}

/** The claims the client needs, read from the token without verifying it (the server verifies). */
function sessionFrom(token: string, expiresIn: number | undefined, now: number): SessionInfo {
  const part = token.split('.')[1];
  if (part === undefined) throw new NotifyClientError('invalid_token', 'The server sent a malformed access token.');
  const claims = JSON.parse(decodeBase64Url(part)) as {
    sub: string;
    client_id: string;
    exp: number;
    topics?: { publish?: string[]; subscribe?: string[] };
  };
  const tokenExpiresAt = claims.exp * 1000;
  return {
    subject: claims.sub,
    clientId: claims.client_id,
    publish: claims.topics?.publish ?? [],
    subscribe: claims.topics?.subscribe ?? [],
    // Scheduling uses our own clock (now + expires_in), so clock skew cannot make us refresh late.
    expiresAt: expiresIn === undefined ? tokenExpiresAt : now + expiresIn * 1000,
    tokenExpiresAt,
  };
}

function decodeBase64Url(text: string): string {
  const base64Text = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const binary = atob(base64Text);
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** 128 random bits for an idempotency key (`crypto.getRandomValues` works in insecure contexts too). */
function randomKey(random: () => number): string {
  const bytes = new Uint8Array(16);
  if (typeof globalThis.crypto?.getRandomValues === 'function') globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  return `k-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
