/** What the client knows of a sign-in: never the token itself in cookie mode. */
export interface SessionInfo {
  /** Account name (`sub`). */
  readonly subject: string;
  readonly clientId: string;
  /** Topic selectors this sign-in may publish to / subscribe to. */
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** When the current access token expires, in epoch ms by this machine's clock (for scheduling). */
  readonly expiresAt: number;
  /** The token's own `exp` (server clock), in epoch ms: compared with a stream's `expiresAt`. */
  readonly tokenExpiresAt: number;
}

export type AuthState = { readonly signedIn: true; readonly session: SessionInfo } | { readonly signedIn: false; readonly reason?: string };

/** One published event as a subscriber receives it. */
export interface NotifyEvent<T = unknown> {
  readonly id: string;
  readonly type: string;
  /** The topic it was published to (of an event on several topics: the first this stream subscribes to). */
  readonly topic: string;
  /** The published JSON value. */
  readonly data: T;
}

export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'stopped';

export interface ConnectedInfo {
  readonly connectionId: string;
  readonly topics: readonly string[];
  readonly expiresAt: string;
  readonly renewUrl: string;
}

export interface ResetInfo {
  // `string & {}`: any string, with the two known reasons still offered by editors.
  readonly reason: 'history_exhausted' | 'unknown_event_id' | (string & {});
  /** The id the client presented. */
  readonly lastEventId: string;
}

export interface SubscribeHandlers<T = unknown> {
  /** Each published event, once, in order (duplicates across reconnects are dropped by id). */
  event?(event: NotifyEvent<T>): void;
  /** History could not cover a gap: reload your state, then carry on with live events. */
  reset?(info: ResetInfo): void;
  /** Connection state changes (for a status indicator). */
  state?(state: StreamState): void;
  connected?(info: ConnectedInfo): void;
  /** The stream's token was renewed in-band; `expiresAt` is ISO 8601. */
  renewed?(expiresAt: string): void;
  /** The stream stopped for good (a `StreamStoppedError`); it is not retried. */
  stop?(error: import('./errors.js').NotifyClientError): void;
}

export interface SubscribeOptions {
  /** Event types to listen for besides `message` (EventSource only reports named events it was asked for). */
  readonly types?: readonly string[];
  /** Resume after this id on the first connect (later reconnects use the last id received). */
  readonly lastEventId?: string;
  /** Renew in-band on `token-expiring` (default true). With false the stream ends at expiry and reconnects with a fresh token. */
  readonly renew?: boolean;
}

export interface Subscription {
  readonly state: StreamState;
  readonly lastEventId: string | undefined;
  close(): void;
}

export interface PublishOptions {
  /** SSE event type; default `message`. */
  readonly type?: string;
  /** Makes retries safe: the server answers a repeat with the original event. Default: a random key per call. */
  readonly idempotencyKey?: string;
  /** Attempts after the first on network errors, 429 and 5xx. Default 3. */
  readonly retries?: number;
}

export interface PublishResult {
  readonly id: string;
  readonly topics: readonly string[];
  readonly type: string;
  /** True when the server had already accepted this idempotency key (a retry after a lost answer). */
  readonly duplicate: boolean;
}

/** The API shared by the in-page client and the SharedWorker proxy. */
export interface NotifyClientApi {
  readonly session: SessionInfo | undefined;
  onAuthChange(listener: (state: AuthState) => void): () => void;
  login(username: string, password: string): Promise<SessionInfo>;
  /** Signs in again from an existing refresh cookie (page reload); undefined when there is none. */
  restore(): Promise<SessionInfo | undefined>;
  logout(): Promise<void>;
  refresh(): Promise<SessionInfo>;
  publish(topics: readonly string[], data: unknown, options?: PublishOptions): Promise<PublishResult>;
  subscribe<T = unknown>(topics: readonly string[], handlers: SubscribeHandlers<T>, options?: SubscribeOptions): Subscription;
}

/** The part of EventSource the client uses: the browser's, or the `eventsource` package's in Node. */
export interface EventSourceLike {
  onopen: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}
export type EventSourceConstructor = new (url: string, init?: Record<string, unknown>) => EventSourceLike;
