/**
 * The only way the server fetches anything from an identity provider: discovery documents and key
 * sets, from URLs the operator configured (or the configured issuer's discovery document named),
 * never from a token (`jku`, `x5u` and `jwk` headers are not followed: RFC 8725 §3.10). Every
 * fetch has a deadline and a size bound, and redirects are not followed, so a key URL cannot be
 * turned into a probe of the internal network or a way to hold the server's memory or sockets.
 */

export type Fetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** Why a key fetch failed; `reason` is a stable code for logs and `/readyz`. */
export class KeyFetchError extends Error {
  constructor(
    readonly reason: 'timeout' | 'too_large' | 'status' | 'redirect' | 'network' | 'not_json' | 'url_not_allowed',
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = 'KeyFetchError';
  }
}

/**
 * A `fetch` that answers only for `allowed` URLs, never follows a redirect, and refuses a body of
 * more than `maxBytes` (by `Content-Length` at once, otherwise as soon as the count passes it,
 * cancelling the rest). The body it returns is fully read, so the caller's deadline covers the
 * whole transfer.
 */
export function createBoundedFetch(options: { maxBytes: number; allowed: (url: string) => boolean; fetch?: Fetch }): Fetch {
  const base = options.fetch ?? fetch;
  return async (input, init = {}) => {
    const url = String(input);
    if (!options.allowed(url)) throw new KeyFetchError('url_not_allowed', `refusing to fetch ${url}: not a configured key URL`);
    let response: Response;
    try {
      response = await base(url, { ...init, redirect: 'manual' });
    } catch (error) {
      throw classify(error, init.signal);
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => undefined);
      throw new KeyFetchError('redirect', `${url} answered a redirect (${response.status}); redirects are not followed`);
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw new KeyFetchError('too_large', `${url} declares ${declared} bytes, more than ${options.maxBytes}`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body !== null) {
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (size > options.maxBytes) {
            await reader.cancel().catch(() => undefined);
            throw new KeyFetchError('too_large', `${url} sent more than ${options.maxBytes} bytes`);
          }
          chunks.push(value);
        }
      } catch (error) {
        if (error instanceof KeyFetchError) throw error;
        throw classify(error, init.signal);
      }
    }
    return new Response(Buffer.concat(chunks, size), { status: response.status, headers: response.headers });
  };
}

/**
 * GETs a JSON document with a deadline (used for OIDC discovery; jose fetches key sets itself,
 * through the same bounded fetch).
 * @throws KeyFetchError
 */
export async function fetchJson(fetcher: Fetch, url: string, timeoutMs: number): Promise<unknown> {
  const signal = AbortSignal.timeout(timeoutMs);
  const response = await fetcher(url, { method: 'GET', headers: { accept: 'application/json' }, signal });
  if (response.status !== 200) throw new KeyFetchError('status', `${url} answered ${response.status}`);
  try {
    return JSON.parse(await response.text());
  } catch (error) {
    throw new KeyFetchError('not_json', `${url} did not answer JSON`, { cause: error });
  }
}

function classify(error: unknown, signal: AbortSignal | null | undefined): KeyFetchError {
  const name = (error as { name?: unknown } | null)?.name;
  if (signal?.aborted === true || name === 'TimeoutError' || name === 'AbortError') {
    return new KeyFetchError('timeout', 'the key fetch did not finish in time', { cause: error });
  }
  return new KeyFetchError('network', `the key fetch failed (${(error as Error)?.message ?? String(error)})`, { cause: error });
}
