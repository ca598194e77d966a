import type { Context } from 'koa';
import type { RevocationList } from '../auth/revocations.js';
import type { AccessTokenVerifier } from '../auth/access-token-verifier.js';
import type { AccessClaims } from '../auth/token-service.js';
import { BearerError, ForbiddenError, InvalidRequestError } from '../errors.js';
import type { CookieNames } from './cookies.js';

interface Principal {
  readonly claims: AccessClaims;
  /** Where the token came from; a cookie makes unsafe requests subject to the Origin check. */
  readonly via: 'header' | 'cookie';
}

/** RFC 6750 §2.1: `Bearer` followed by a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export type Authenticator = (ctx: Context) => Promise<Principal>;

/**
 * Finds and verifies the caller's access token. One documented precedence, never a merge: the
 * `Authorization` header if present (a malformed one is an error, not a fallback to the cookie),
 * else the access-token cookie. Tokens in the query string are refused outright: they end up in
 * logs, proxies and browser history. Each use checks signature, expiry and claims
 * (`token-service.ts`) and the revocation list.
 *
 * A cookie rides along on cross-site requests, so an unsafe request authenticated by cookie must
 * come from our own origin or an allowed one (OWASP CSRF cheat sheet, "verifying origin with
 * standard headers"); SameSite=Strict on the cookie is the first line, this is the second.
 */
export function createAuthenticator(deps: {
  /** Our own tokens and the trusted external issuers' (`auth/access-token-verifier.ts`). */
  tokens: AccessTokenVerifier;
  revocations: RevocationList;
  cookieNames: (ctx: Context) => CookieNames;
  allowedOrigins: readonly string[];
}): Authenticator {
  const allowed = new Set(deps.allowedOrigins);
  return async function authenticate(ctx) {
    if (ctx.query.access_token !== undefined) {
      throw new InvalidRequestError(
        'Tokens in the URL are refused (URLs end up in logs and browser history): send the access token in the Authorization header (Bearer) or the cookie.',
        { field: 'access_token' },
      );
    }
    const header = ctx.get('authorization');
    let token: string | undefined;
    let via: Principal['via'] = 'header';
    if (header !== '') {
      if (!/^bearer\b/i.test(header)) throw BearerError.missing();
      const match = BEARER.exec(header);
      if (match === null) throw new BearerError(400, 'invalid_request', 'malformed_header', 'The Authorization header is malformed.');
      token = match[1];
    } else {
      token = ctx.cookies.get(deps.cookieNames(ctx).access);
      via = 'cookie';
    }
    if (token === undefined || token === '') throw BearerError.missing();

    const claims = await deps.tokens.verifyAccessToken(token);
    if (deps.revocations.isRevoked(claims)) throw BearerError.invalid('revoked');

    if (via === 'cookie' && !['GET', 'HEAD', 'OPTIONS'].includes(ctx.method)) assertSameOrigin(ctx, allowed);
    ctx.state.subject = claims.subject;
    return { claims, via };
  };
}

/**
 * Refuses an unsafe request that a browser may have sent from another site: its `Origin` must be
 * ours or an allowed one; without `Origin`, `Sec-Fetch-Site` must say same-origin.
 * @throws ForbiddenError (`csrf_rejected`).
 */
export function assertSameOrigin(ctx: Context, allowed: ReadonlySet<string>): void {
  const origin = ctx.get('origin');
  // Not `ctx.origin`: in Koa that echoes the request's own Origin header. A browser always sends
  // our Host, so the origin the request was addressed to is protocol + Host.
  const ours = `${ctx.protocol}://${ctx.host}`;
  const sameOrigin = origin === ours || allowed.has(origin) || (origin === '' && ctx.get('sec-fetch-site') === 'same-origin');
  if (!sameOrigin) throw new ForbiddenError('csrf_rejected', 'A cookie-authenticated request must come from an allowed origin.');
}
