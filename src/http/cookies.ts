import type { Context } from 'koa';

export interface CookieNames {
  readonly access: string;
  readonly refresh: string;
}

/**
 * Under TLS the cookies use the `__Host-` / `__Secure-` prefixes (RFC 6265bis §4.1.3), which a
 * browser only accepts from a secure origin: a plain-HTTP page on the same host cannot plant one
 * (cookie tossing).
 */
const SECURE_NAMES: CookieNames = { access: '__Host-notify_at', refresh: '__Secure-notify_rt' };
const PLAIN_NAMES: CookieNames = { access: 'notify_at', refresh: 'notify_rt' };

export interface CookiePolicy {
  readonly names: (ctx: Context) => CookieNames;
  setTokens(ctx: Context, tokens: { access: string; accessMaxAgeMs: number; refresh: string; refreshMaxAgeMs: number }): void;
  /**
   * Sets the access-token cookie alone and clears any refresh-token cookie (a redeemed ticket,
   * issue 10): a first-party sign-in left in the browser must not later refresh back to another subject.
   */
  setAccessToken(ctx: Context, access: string, accessMaxAgeMs: number): void;
  clear(ctx: Context): void;
}

/** @param secure 'auto' follows the request (TLS, or X-Forwarded-Proto behind a trusted proxy). */
export function createCookiePolicy(secure: 'auto' | boolean): CookiePolicy {
  const isSecure = (ctx: Context) => (secure === 'auto' ? ctx.secure : secure);
  const names = (ctx: Context) => (isSecure(ctx) ? SECURE_NAMES : PLAIN_NAMES);
  const base = (ctx: Context) => {
    const secureCookie = isSecure(ctx);
    // Koa refuses Secure cookies on what it thinks is plain HTTP; a configured `true` means a TLS-terminating proxy sits in front.
    if (secureCookie) (ctx.cookies as unknown as { secure: boolean }).secure = true;
    return { httpOnly: true, sameSite: 'strict' as const, secure: secureCookie, overwrite: true };
  };
  return {
    names,
    setTokens(ctx, tokens) {
      const options = base(ctx);
      const { access, refresh } = names(ctx);
      ctx.cookies.set(access, tokens.access, { ...options, path: '/', maxAge: tokens.accessMaxAgeMs });
      // The refresh token is only ever sent to the auth routes.
      ctx.cookies.set(refresh, tokens.refresh, { ...options, path: '/auth', maxAge: tokens.refreshMaxAgeMs });
    },
    setAccessToken(ctx, access, accessMaxAgeMs) {
      const options = base(ctx);
      const cookieNames = names(ctx);
      ctx.cookies.set(cookieNames.access, access, { ...options, path: '/', maxAge: accessMaxAgeMs });
      ctx.cookies.set(cookieNames.refresh, '', { ...options, path: '/auth', expires: new Date(0) });
    },
    clear(ctx) {
      const options = base(ctx);
      const { access, refresh } = names(ctx);
      ctx.cookies.set(access, '', { ...options, path: '/', expires: new Date(0) });
      ctx.cookies.set(refresh, '', { ...options, path: '/auth', expires: new Date(0) });
    },
  };
}
