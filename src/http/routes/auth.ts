import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { RoleTable } from '../../auth/role-table.js';
import { resolveGrants } from '../../auth/grants.js';
import type { LoginThrottle } from '../../auth/login-throttle.js';
import type { PasswordVerifier } from '../../auth/password.js';
import type { RefreshTokenStore } from '../../auth/refresh-token-store.js';
import type { RevocationList } from '../../auth/revocations.js';
import { MAX_TOKEN_LENGTH, type TokenService } from '../../auth/token-service.js';
import { VerifiedSecretCache } from '../../auth/verified-secrets.js';
import { ACCOUNT_NAME, type Account, type UserStore } from '../../auth/user-store.js';
import { AppError, OAuthError } from '../../errors.js';
import { assertSameOrigin, type Authenticator } from '../authenticate.js';
import type { CookiePolicy } from '../cookies.js';
import { REALM } from '../error-handler.js';
import { createBodyParser, parseWith } from '../request-body.js';
import { TOKEN_EXCHANGE_GRANT, type TokenExchange } from '../token-exchange.js';

/** The client id of tokens obtained through first-party sign-in (RFC 9068 requires `client_id`). */
const FIRST_PARTY_CLIENT_ID = 'notify-web';

export interface AuthRouterDeps {
  readonly users: UserStore;
  readonly passwords: PasswordVerifier;
  readonly tokens: TokenService;
  readonly refreshTokens: RefreshTokenStore;
  readonly revocations: RevocationList;
  readonly throttle: LoginThrottle;
  readonly roles: RoleTable;
  readonly cookies: CookiePolicy;
  readonly authenticate: Authenticator;
  /** Origins besides our own from which a cookie-carrying refresh is accepted. */
  readonly allowedOrigins: readonly string[];
  readonly maxBodyBytes: number;
  /** The refresh cookie's Max-Age: a sign-in's longest life. */
  readonly refreshTokenAbsoluteTtlMs: number;
  /** RFC 8693 token exchange for service clients that may delegate (`http/token-exchange.ts`). */
  readonly exchange: TokenExchange;
}

/** Form bodies send booleans as text. */
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]);
/** Bounded so that an attacker cannot make us hash a megabyte. */
const secret = z.string().min(1).max(1024);

const loginBody = z.object({ username: z.string().min(1).max(256), password: secret, cookie: flag.optional() }).strict();
// RFC 6749 §3.2: the token endpoint MUST ignore unrecognised parameters (zod's default strips
// them), and so does revocation (RFC 7009 §2.1). Sign-in is ours, and strict.
const refreshBody = z.object({
  grant_type: z.literal('refresh_token'),
  refresh_token: z.string().min(1).max(MAX_TOKEN_LENGTH).optional(),
  cookie: flag.optional(),
  scope: z.string().max(1024).optional(),
});
const clientCredentialsBody = z.object({
  grant_type: z.literal('client_credentials'),
  ...clientAuthFields(),
  scope: z.string().max(1024).optional(),
});
/** Client authentication in the body (RFC 6749 §2.3.1), for any grant a service client uses. */
function clientAuthFields() {
  return { client_id: z.string().min(1).max(256).optional(), client_secret: secret.optional() };
}
const clientAuthBody = z.object(clientAuthFields());
const revokeBody = z.object({ token: z.string().min(1).max(8192), token_type_hint: z.string().max(64).optional() });

/**
 * Sign-in, the OAuth 2.0 token endpoint (refresh rotation, client credentials), revocation and
 * logout. Every answer that carries a token is `Cache-Control: no-store` (RFC 6749 §5.1).
 */
export function createAuthRouter(deps: AuthRouterDeps): Router {
  const router = new Router();
  const allowedOrigins = new Set(deps.allowedOrigins);
  const body = createBodyParser({ maxBytes: deps.maxBodyBytes, types: ['json', 'form'] });
  const verifiedSecrets = new VerifiedSecretCache();

  async function issue(
    ctx: Context,
    account: Account,
    options: { sessionId?: string; refreshToken?: string; cookie?: boolean; clientId: string },
  ) {
    const grants = resolveGrants(deps.roles, account.roles, account.name);
    const access = await deps.tokens.issueAccessToken({
      subject: account.name,
      clientId: options.clientId,
      sessionId: options.sessionId,
      grants,
      notBefore: deps.revocations.notBefore(account.name),
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    if (options.cookie === true && options.refreshToken !== undefined) {
      deps.cookies.setTokens(ctx, {
        access: access.token,
        accessMaxAgeMs: access.expiresIn * 1000,
        refresh: options.refreshToken,
        refreshMaxAgeMs: deps.refreshTokenAbsoluteTtlMs,
      });
    }
    // In cookie mode the refresh token lives only in its HttpOnly cookie: were it in the body too,
    // a script injected into the page could read a 30-day credential and take it elsewhere.
    const refreshInBody = options.refreshToken !== undefined && options.cookie !== true;
    ctx.body = {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      ...(refreshInBody ? { refresh_token: options.refreshToken } : {}),
    };
  }

  router.post('/auth/login', body, async (ctx) => {
    const input = parseWith(loginBody, ctx.request.body);
    await deps.throttle.attempt(input.username, ctx.ip);
    const account = ACCOUNT_NAME.test(input.username) ? await deps.users.get(input.username) : undefined;
    const person = account?.kind === 'user' ? account : undefined;
    // Unknown names and service accounts still cost one scrypt run: the answer and its timing are the same as for a wrong password.
    const ok = await deps.passwords.verify(input.password, person?.passwordHash);
    if (!ok || person === undefined) {
      await deps.throttle.failed(input.username);
      throw new AppError(401, 'invalid_credentials', 'The username or password is incorrect.');
    }
    await deps.throttle.succeeded(input.username, ctx.ip);
    const refresh = await deps.refreshTokens.issue(person.name, FIRST_PARTY_CLIENT_ID);
    await issue(ctx, person, {
      sessionId: refresh.familyId,
      refreshToken: refresh.token,
      cookie: input.cookie,
      clientId: FIRST_PARTY_CLIENT_ID,
    });
  });

  router.post('/auth/token', body, async (ctx) => {
    const raw = ctx.request.body as Record<string, unknown>;
    const grantType = raw?.grant_type;
    if (grantType === undefined) throw new OAuthError('invalid_request', 'grant_type is required.');
    if (typeof grantType !== 'string') throw new OAuthError('invalid_request', 'grant_type must be given once.');

    if (grantType === 'refresh_token') {
      const input = parseOAuth(refreshBody, raw);
      let presented = input.refresh_token;
      if (presented === undefined) {
        presented = ctx.cookies.get(deps.cookies.names(ctx).refresh);
        if (presented !== undefined) assertSameOrigin(ctx, allowedOrigins);
      }
      if (presented === undefined || presented === '') throw new OAuthError('invalid_request', 'refresh_token is required.');
      const result = await deps.refreshTokens.rotate(presented);
      if (!result.ok) {
        // Reuse, expiry or revocation: end every stream opened under this family too.
        if (result.familyId !== undefined) deps.revocations.revokeSession(result.familyId);
        throw new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.');
      }
      const account = await deps.users.get(result.grant.subject);
      if (account === undefined) {
        await deps.refreshTokens.revokeFamily(result.grant.familyId);
        throw new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.');
      }
      await issue(ctx, account, {
        sessionId: result.grant.familyId,
        refreshToken: result.grant.token,
        cookie: input.cookie ?? input.refresh_token === undefined,
        clientId: result.grant.clientId,
      });
      return;
    }

    if (grantType === 'client_credentials') {
      const client = await authenticateClient(ctx, parseOAuth(clientCredentialsBody, raw));
      await issue(ctx, client, { clientId: client.name });
      return;
    }

    if (grantType === TOKEN_EXCHANGE_GRANT) {
      const client = await authenticateClient(ctx, parseOAuth(clientAuthBody, raw));
      await deps.exchange(ctx, raw, client);
      return;
    }

    throw new OAuthError('unsupported_grant_type', `Supported grant types: refresh_token, client_credentials, ${TOKEN_EXCHANGE_GRANT}.`);
  });

  /**
   * A service client by HTTP Basic or `client_id` + `client_secret` in the body (one, not both:
   * RFC 6749 §2.3), throttled like sign-in.
   * @throws OAuthError (`invalid_client`, with a Basic challenge when Basic was used).
   */
  async function authenticateClient(ctx: Context, input: { client_id?: string; client_secret?: string }): Promise<Account> {
    const basic = parseBasic(ctx.get('authorization'));
    if (basic !== undefined && (input.client_id !== undefined || input.client_secret !== undefined)) {
      throw new OAuthError('invalid_request', 'Use one client authentication method, not two (RFC 6749 §2.3).');
    }
    const credentials =
      basic ??
      (input.client_id !== undefined && input.client_secret !== undefined
        ? { id: input.client_id, secret: input.client_secret }
        : undefined);
    const challenge = basic === undefined ? undefined : { 'WWW-Authenticate': `Basic realm="${REALM}"` };
    if (credentials === undefined)
      throw new OAuthError('invalid_client', 'Client authentication is required.', {
        headers: { 'WWW-Authenticate': `Basic realm="${REALM}"` },
      });
    await deps.throttle.attempt(credentials.id, ctx.ip);
    const account = ACCOUNT_NAME.test(credentials.id) ? await deps.users.get(credentials.id) : undefined;
    const client = account?.kind === 'service' ? account : undefined;
    const ok =
      (client !== undefined && verifiedSecrets.has(client.name, credentials.secret, client.passwordHash)) ||
      (await deps.passwords.verify(credentials.secret, client?.passwordHash));
    if (!ok || client === undefined) {
      await deps.throttle.failed(credentials.id);
      throw new OAuthError('invalid_client', 'Client authentication failed.', { headers: challenge });
    }
    await deps.throttle.succeeded(credentials.id, ctx.ip);
    verifiedSecrets.remember(client.name, credentials.secret, client.passwordHash);
    return client;
  }

  // RFC 7009: answer 200 whether or not the token was known, so the endpoint reveals nothing.
  router.post('/auth/revoke', body, async (ctx) => {
    const input = parseOAuth(revokeBody, ctx.request.body);
    const revoked = await deps.refreshTokens.revoke(input.token);
    if (revoked !== undefined) {
      deps.revocations.revokeSession(revoked.familyId);
    } else if (input.token.split('.').length === 3) {
      // An access token: revoke the sign-in it belongs to.
      const claims = await deps.tokens.verifyAccessToken(input.token).catch(() => undefined);
      if (claims?.sessionId !== undefined) {
        await deps.refreshTokens.revokeFamily(claims.sessionId);
        deps.revocations.revokeSession(claims.sessionId);
      }
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 200;
    ctx.body = '';
  });

  router.post('/auth/logout', async (ctx) => {
    const { claims } = await deps.authenticate(ctx);
    if (claims.sessionId !== undefined) {
      await deps.refreshTokens.revokeFamily(claims.sessionId);
      deps.revocations.revokeSession(claims.sessionId);
    }
    deps.cookies.clear(ctx);
    ctx.status = 204;
  });

  return router;
}

/** Token-endpoint bodies fail with RFC 6749 `invalid_request`. */
function parseOAuth<T>(schema: z.ZodType<T>, value: unknown): T {
  try {
    return parseWith(schema, value);
  } catch (error) {
    throw new OAuthError('invalid_request', (error as Error).message, { cause: error });
  }
}

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function parseBasic(header: string): { id: string; secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new OAuthError('invalid_client', 'Malformed Basic credentials.');
  try {
    return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
  } catch {
    throw new OAuthError('invalid_client', 'Malformed Basic credentials.');
  }
}
