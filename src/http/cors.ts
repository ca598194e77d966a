import cors from '@koa/cors';
import type { Middleware } from 'koa';

/** Headers a cross-origin page may read from our answers. */
const EXPOSED_HEADERS = ['Retry-After', 'WWW-Authenticate', 'X-Request-Id'];

export interface CorsPolicy {
  /** The Koa middleware every route runs behind (@koa/cors, preflights included). */
  readonly middleware: Middleware;
  /**
   * The CORS header lines of a simple (non-preflight) answer to a request carrying `origin`, as
   * the middleware would set them, for answers written outside Koa (the event stream's head):
   * `[name, value, ...]`, empty for any origin not on the list. `Vary: Origin` goes on every
   * answer whatever the origin; the caller puts it in its fixed headers.
   */
  simpleResponseHeaders(origin: string): readonly string[];
}

/**
 * CORS is an explicit allowlist: any other Origin (including `null`) gets no CORS headers at all.
 * One policy for the Koa routes and for the event stream served before Koa.
 */
export function createCorsPolicy(allowedOrigins: readonly string[]): CorsPolicy {
  const allowed = new Set(allowedOrigins);
  const exposed = EXPOSED_HEADERS.join(',');
  return {
    middleware: cors({
      origin: (ctx) => (allowed.has(ctx.get('origin')) ? ctx.get('origin') : ''),
      credentials: true,
      allowMethods: ['GET', 'POST'],
      allowHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'],
      exposeHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    }),
    simpleResponseHeaders: (origin) =>
      allowed.has(origin)
        ? ['Access-Control-Allow-Origin', origin, 'Access-Control-Allow-Credentials', 'true', 'Access-Control-Expose-Headers', exposed]
        : [],
  };
}
