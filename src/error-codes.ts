/**
 * Every `error` code the server answers with: a closed list, so a client can switch on the code
 * (the description is for people and may change). `AppError` accepts only these; `openapi.yaml`
 * lists the same codes as the `enum` of its `Error` schema, and test/openapi.test.ts fails when
 * the two differ. A new code is added here, in openapi.yaml, and nowhere else.
 *
 * The reasons of the `closed` and `reset` stream events are separate lists (they are events on an
 * open stream, not error answers).
 */
export const ERROR_CODES = [
  // The request itself
  { code: 'invalid_request', meaning: 'A field, query parameter or header is missing, repeated or invalid (`field` names it).' },
  { code: 'invalid_json', meaning: 'The body is not valid JSON, or its top level is neither an object nor an array.' },
  { code: 'invalid_encoding', meaning: 'The body is not UTF-8, a JSON string holds a lone surrogate, or a form field a bad %-escape.' },
  { code: 'unsupported_media_type', meaning: 'The body is not of a media type the route accepts, not UTF-8, or compressed.' },
  { code: 'payload_too_large', meaning: 'The body, or the event data once serialised, is larger than the limit.' },
  { code: 'request_timeout', meaning: 'The request headers or body did not arrive in time.' },
  { code: 'header_too_large', meaning: 'The request headers are larger than the limit (431).' },
  { code: 'bad_request', meaning: 'The bytes are not valid HTTP/1.1, or the framing is ambiguous; the connection is closed.' },
  { code: 'not_found', meaning: 'No such route or file.' },
  { code: 'not_acceptable', meaning: 'The route answers only text/event-stream, and the Accept header does not allow it.' },
  { code: 'method_not_allowed', meaning: 'The route exists but not for this method; the Allow header lists the methods it takes (405).' },
  { code: 'not_implemented', meaning: 'The server does not implement this method (TRACE, CONNECT, WebDAV, ...) (501).' },

  // Authentication and authorisation (RFC 6750 on bearer routes)
  { code: 'unauthorized', meaning: 'No access token was sent (RFC 6750 §3.1: the challenge then carries no error code).' },
  { code: 'invalid_token', meaning: 'The access token is malformed, expired, revoked or fails verification (which check, is not said).' },
  { code: 'insufficient_scope', meaning: 'The token does not grant every topic the request names.' },
  { code: 'csrf_rejected', meaning: 'A cookie-authenticated request that changes state came from an origin that is not allowed.' },
  { code: 'invalid_credentials', meaning: 'Sign-in refused: the username or password is wrong.' },
  { code: 'rate_limited', meaning: 'Too many sign-in attempts; try again after Retry-After seconds.' },
  { code: 'metrics_disabled', meaning: '/metrics is turned off (METRICS), or served on its own listener.' },

  // The token endpoint (RFC 6749 §5.2, RFC 7009 §2.2.1); `invalid_request` above is also one of them
  { code: 'invalid_client', meaning: 'RFC 6749 §5.2: client authentication failed or was missing.' },
  { code: 'invalid_grant', meaning: 'RFC 6749 §5.2: the refresh token is invalid, expired, revoked or was used before.' },
  { code: 'unauthorized_client', meaning: 'RFC 6749 §5.2: this client may not use this grant type.' },
  { code: 'unsupported_grant_type', meaning: 'RFC 6749 §5.2: the grant type is not one the server supports.' },
  { code: 'unsupported_token_type', meaning: 'RFC 7009 §2.2.1: the server cannot revoke tokens of this type.' },
  { code: 'invalid_scope', meaning: 'RFC 6749 §5.2: the requested scope is invalid, unknown or too wide.' },
  { code: 'invalid_target', meaning: 'RFC 8693 §2.2.2: the requested audience or resource is not this server.' },

  // Topics and events
  { code: 'invalid_topic', meaning: 'A topic name is empty, too long, has too many segments, or a segment is invalid.' },
  { code: 'invalid_selector', meaning: 'A topic selector is malformed (`**` only last, limits as for topics).' },
  { code: 'invalid_event_type', meaning: 'The event type is not 1 to 64 characters of A-Z a-z 0-9 _ . : -.' },
  { code: 'reserved_event_type', meaning: "The event type is one of the server's own stream events (connected, closed, ...)." },
  { code: 'idempotency_key_reused', meaning: 'The idempotency key was already used for a different event.' },
  { code: 'presence_not_enabled', meaning: 'The topic carries no presence: no rule of PRESENCE_FILE matches it.' },

  // Streams and capacity
  { code: 'too_many_streams', meaning: 'This account holds as many open streams as it may (MAX_STREAMS_PER_USER).' },
  { code: 'connection_not_found', meaning: 'No open stream with this id belongs to this account (renewal).' },
  { code: 'server_busy', meaning: 'The server holds as many streams as it may; try again after Retry-After.' },
  { code: 'shutting_down', meaning: 'The server is shutting down; try again (another instance) after Retry-After.' },
  { code: 'redis_unavailable', meaning: 'The shared store (Redis) is unreachable, so nothing was stored; retry after Retry-After.' },
  {
    code: 'storage_unavailable',
    meaning: 'The embedded store cannot write (disk full, I/O error), so nothing was stored; retry after Retry-After.',
  },

  // Failures
  { code: 'internal_error', meaning: 'An unexpected failure; details are logged, never shown.' },
  { code: 'user_store_corrupt', meaning: 'The user store file cannot be read or is invalid; the operator must repair it.' },
  { code: 'lock_timeout', meaning: 'The user file stayed locked by another process too long; nothing was changed, try again.' },

  // Account management (the `notify users` and `notify clients` commands share the user store)
  { code: 'invalid_account_name', meaning: 'An account name is not 1 to 64 characters of a-z 0-9 . _ - starting with a letter or digit.' },
  { code: 'invalid_role', meaning: 'A role name is invalid, or an account has too many roles.' },
  { code: 'invalid_password', meaning: 'A new password is not a string, is too short, or is over 1024 bytes.' },
  { code: 'account_exists', meaning: 'An account with this name exists already.' },
  { code: 'account_not_found', meaning: 'No account has this name.' },
  { code: 'wrong_account_kind', meaning: 'The account is a user where a service client was named, or the other way round.' },
  { code: 'unknown_role', meaning: 'A role named for an account is not in the role table (admin API).' },
  { code: 'invalid_subject', meaning: 'A subject to revoke is not an account name or a namespaced subject (admin API).' },
] as const satisfies ReadonlyArray<{ readonly code: string; readonly meaning: string }>;

/** One of `ERROR_CODES`. */
export type ErrorCode = (typeof ERROR_CODES)[number]['code'];

/** The codes of the OAuth token endpoint (RFC 6749 §5.2, RFC 7009 §2.2.1): `OAuthError` takes only these. */
export type OAuthErrorCode = Extract<
  ErrorCode,
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_target'
>;

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES.map((entry) => entry.code));

/** True when `value` is one of `ERROR_CODES` (for codes that arrive from outside, e.g. another instance). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN.has(value);
}
