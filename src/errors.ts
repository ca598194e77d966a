/**
 * One error type for everything the server refuses to do. `code` is stable and machine-readable
 * (tests assert it, clients switch on it); `status` is the HTTP status; `expose` says whether the
 * message may be shown to the caller (4xx) or must be hidden (5xx). The single place that turns
 * these into HTTP answers is `http/error-handler.ts`.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly expose: boolean;
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Extra machine-readable fields merged into the error body (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    options: {
      cause?: unknown;
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
      /** Show the message although the status is 5xx (a deliberate refusal, not a failure). */
      expose?: boolean;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.expose = options.expose ?? status < 500;
    this.headers = options.headers ?? {};
    this.details = options.details;
  }
}

/** 400: the request is malformed (bad field, bad topic, bad header). */
export class InvalidRequestError extends AppError {
  constructor(message: string, options: { code?: string; field?: string; cause?: unknown } = {}) {
    super(400, options.code ?? 'invalid_request', message, {
      cause: options.cause,
      details: options.field === undefined ? undefined : { field: options.field },
    });
  }
}

/**
 * A bearer-token failure (RFC 6750 §3.1). `challenge` is the error code for the
 * `WWW-Authenticate` header: absent when no credentials were sent at all (§3.1: "SHOULD NOT
 * include an error code"), `invalid_token` for any token that fails verification. The message
 * is deliberately the same for every reason a token fails, so a prober learns nothing about
 * which check tripped; the reason is kept for logs and metrics.
 */
export class BearerError extends AppError {
  readonly challenge: 'invalid_token' | 'invalid_request' | 'insufficient_scope' | undefined;
  readonly reason: string;

  constructor(
    status: 400 | 401 | 403,
    challenge: BearerError['challenge'],
    reason: string,
    message: string,
    options: { cause?: unknown; scope?: string } = {},
  ) {
    super(status, challenge ?? 'unauthorized', message, { cause: options.cause });
    this.challenge = challenge;
    this.reason = reason;
  }

  static missing(): BearerError {
    return new BearerError(401, undefined, 'missing', 'An access token is required.');
  }

  static invalid(reason: string, cause?: unknown): BearerError {
    return new BearerError(401, 'invalid_token', reason, 'The access token is invalid or has expired.', { cause });
  }

  static insufficientScope(message: string): BearerError {
    return new BearerError(403, 'insufficient_scope', 'scope', message);
  }
}

/** An OAuth 2.0 token-endpoint error (RFC 6749 §5.2; RFC 7009 §2.2.1). */
export class OAuthError extends AppError {
  constructor(
    code:
      | 'invalid_request'
      | 'invalid_client'
      | 'invalid_grant'
      | 'unauthorized_client'
      | 'unsupported_grant_type'
      | 'unsupported_token_type'
      | 'invalid_scope'
      /** RFC 8693 §2.2.2: the requested `audience` or `resource` is not this server. */
      | 'invalid_target',
    message: string,
    options: { status?: number; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(options.status ?? (code === 'invalid_client' ? 401 : 400), code, message, {
      headers: options.headers,
      cause: options.cause,
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(code: string, message: string) {
    super(403, code, message);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Not found.', code = 'not_found') {
    super(404, code, message);
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string) {
    super(409, code, message);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(message: string, retryAfterSeconds: number, code = 'rate_limited') {
    super(429, code, message, { headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) } });
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(code: string, message: string, retryAfterSeconds?: number) {
    super(503, code, message, {
      expose: true,
      headers: retryAfterSeconds === undefined ? {} : { 'Retry-After': String(Math.ceil(retryAfterSeconds)) },
    });
  }
}
