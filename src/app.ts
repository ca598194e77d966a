import Koa from 'koa';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { CorsPolicy } from './http/cors.js';
import { createErrorHandler } from './http/error-handler.js';
import { createRequestLog } from './http/request-log.js';
import { securityHeaders } from './http/security-headers.js';
import type { createAuthRouter } from './http/routes/auth.js';

type AnyRouter = ReturnType<typeof createAuthRouter>;

/**
 * Composes the Koa application from routers that were built with their dependencies. No side
 * effects at import; everything it uses is passed in.
 */
export function createApp(deps: {
  logger: Logger;
  config: Pick<Config, 'trustProxy'>;
  cors: CorsPolicy;
  routers: readonly AnyRouter[];
  /** Middleware that sees every final answer, outside the error handler (metrics). */
  observers?: readonly Koa.Middleware[];
}): Koa {
  const app = new Koa({ proxy: deps.config.trustProxy });
  app.use(createRequestLog(deps.logger));
  for (const observer of deps.observers ?? []) app.use(observer);
  app.use(createErrorHandler(deps.logger));
  app.use(securityHeaders);
  app.use(deps.cors.middleware);
  for (const router of deps.routers) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: false }));
  }
  // Errors are answered by the error handler; this only keeps Koa from printing them to stderr.
  // A client that goes away mid-stream is routine, not an error.
  app.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_STREAM_PREMATURE_CLOSE' || error.code === 'ECONNRESET' || error.code === 'EPIPE') return;
    deps.logger.debug({ err: error }, 'koa error');
  });
  return app;
}
