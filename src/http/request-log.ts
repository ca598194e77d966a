import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

/**
 * One structured line per request. It logs the path without the query string and no headers or
 * bodies, so no token, password or cookie can reach the log; the subject is logged once the
 * request is authenticated. Streams are logged when they open (status 200 and the time to open).
 */
export function createRequestLog(logger: Logger) {
  return async function requestLog(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    const id = randomUUID();
    ctx.set('X-Request-Id', id);
    try {
      await next();
    } finally {
      logRequest(logger, ctx, id, ctx.respond === false ? ctx.res.statusCode : ctx.status, started);
    }
  };
}

/** The request line itself: the middleware's, and the event stream's, which is served before Koa. */
export function logRequest(logger: Logger, ctx: Context, id: string, status: number, started: number): void {
  logger.info(
    {
      req: id,
      method: ctx.method,
      path: ctx.path,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ip: ctx.ip,
      sub: ctx.state.subject,
      authFailure: ctx.state.authFailure,
    },
    'request',
  );
}
