import type { WebhookTarget } from './webhook-config.js';

/** One POST of one batch. */
export interface WebhookRequest {
  /** The signature headers; the transport adds content-type, content-length and user-agent. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Aborted by the dispatcher on timeout or shutdown (its `reason` says which). */
  readonly signal: AbortSignal;
}

/** What came back: an HTTP status, or why there was none. */
export type WebhookAnswer = { readonly status: number; readonly retryAfter: string | undefined } | { readonly error: unknown };

/**
 * Sends webhook requests. The dispatcher owns batching, retries and timeouts; a transport only
 * makes one request and reports what happened, and its promise never rejects.
 */
export interface WebhookTransport {
  send(target: WebhookTarget, request: WebhookRequest): Promise<WebhookAnswer>;
  /** Drops idle connections. */
  close(): void;
}
