import { errorFromResponse, NetworkError, NotifyClientError } from './errors.js';

/**
 * A grant for the token endpoint: `client_credentials` (RFC 6749 §4.4) for a service client, or
 * `refresh_token` (§6). A refresh without `refreshToken` is the cookie mode's: the server reads
 * the HttpOnly `notify_rt` cookie instead (and checks the request's Origin).
 * @internal
 */
export type TokenGrant =
  | { readonly type: 'client_credentials'; readonly clientId: string; readonly clientSecret: string }
  | { readonly type: 'refresh_token'; readonly refreshToken?: string };

/** The token endpoint's answer (RFC 6749 §5.1). @internal */
export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in: number;
  readonly refresh_token?: string;
}

/**
 * Asks the token endpoint (`POST /auth/token`) for an access token: the one implementation of the
 * request, shared by `NotifyClient` and the CLI's `notify token get`. Browser-safe: no Node API.
 * @param url the token endpoint's absolute URL.
 * @throws NetworkError when the server cannot be reached; NotifyClientError with the server's
 * `error` code and the status when it refuses, or answers without an access token.
 * @internal
 */
export async function requestToken(
  fetchImpl: typeof fetch,
  url: string,
  grant: TokenGrant,
  init: { readonly credentials?: RequestCredentials } = {},
): Promise<TokenResponse> {
  const form = new URLSearchParams({ grant_type: grant.type });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (grant.type === 'client_credentials') {
    headers.authorization = basicAuthorization(grant.clientId, grant.clientSecret);
  } else if (grant.refreshToken !== undefined) {
    form.set('refresh_token', grant.refreshToken);
  }
  let res: Response;
  try {
    res = await fetchImpl(url, { method: 'POST', headers, body: form.toString(), ...init });
  } catch (error) {
    throw new NetworkError('The server could not be reached.', { cause: error });
  }
  if (!res.ok) throw await errorFromResponse(res);
  const body = (await res.json().catch(() => undefined)) as Partial<TokenResponse> | undefined;
  if (typeof body?.access_token !== 'string') {
    throw new NotifyClientError('invalid_response', 'The server answered without an access token.', { status: res.status });
  }
  return body as TokenResponse;
}

/**
 * HTTP Basic client authentication (RFC 6749 §2.3.1): id and secret are form-encoded first, so a
 * `:` in either survives; then UTF-8, then base64 (`btoa` takes only Latin-1 code units).
 */
function basicAuthorization(id: string, secret: string): string {
  const bytes = new TextEncoder().encode(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}
