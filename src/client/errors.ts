/**
 * Errors of the notify client. One base class with a stable `code`; callers switch on `code` (or
 * `instanceof`), never on the message.
 */
export class NotifyClientError extends Error {
  /** HTTP status when the server answered, otherwise undefined (network failure, client-side). */
  readonly status: number | undefined;
  constructor(
    readonly code: string,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'NotifyClientError';
    this.status = options.status;
  }
}

/**
 * The sign-in is over: a refresh was refused (reuse detected, revoked, expired) or there never
 * was one. The client does not retry; the application asks the person to sign in again.
 */
export class SignedOutError extends NotifyClientError {
  constructor(message = 'Signed out: sign in again.', options: { status?: number; cause?: unknown } = {}) {
    super('signed_out', message, options);
    this.name = 'SignedOutError';
  }
}

/** A stream the server refused for good (401 after a refresh, 403, or scope lost); it is not retried. */
export class StreamStoppedError extends NotifyClientError {
  constructor(
    code: 'unauthorized' | 'forbidden' | 'insufficient_scope' | 'signed_out',
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = 'StreamStoppedError';
  }
}

/** The server could not be reached (or answered 5xx) after the allowed retries. */
export class NetworkError extends NotifyClientError {
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super('network_error', message, options);
    this.name = 'NetworkError';
  }
}

/**
 * The error a refusing answer stands for: the server's `error` code and `error_description`
 * (every error body has them), or `http_<status>` when the body is not one.
 * @internal
 */
export async function errorFromResponse(res: Response): Promise<NotifyClientError> {
  let code = `http_${res.status}`;
  let message = `The server answered ${res.status}.`;
  try {
    const body = (await res.json()) as { error?: string; error_description?: string };
    if (typeof body.error === 'string') code = body.error;
    if (typeof body.error_description === 'string') message = body.error_description;
  } catch {
    // not JSON
  }
  return new NotifyClientError(code, message, { status: res.status });
}

/** Plain data for crossing a MessagePort (errors do not keep their class through structured clone). @internal */
export interface SerializedError {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly status?: number;
}

/** @internal */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof NotifyClientError) return { name: error.name, code: error.code, message: error.message, status: error.status };
  return { name: 'NotifyClientError', code: 'internal', message: error instanceof Error ? error.message : String(error) };
}

/** @internal */
export function deserializeError(data: SerializedError): NotifyClientError {
  const options = data.status === undefined ? {} : { status: data.status };
  switch (data.name) {
    case 'SignedOutError':
      return new SignedOutError(data.message, options);
    case 'StreamStoppedError':
      return new StreamStoppedError(data.code as 'forbidden', data.message, options);
    case 'NetworkError':
      return new NetworkError(data.message, options);
    default:
      return new NotifyClientError(data.code, data.message, options);
  }
}
