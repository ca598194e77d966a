import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { AppError, BearerError, errorBody } from '../errors.js';

export const REALM = 'notify';

/** Quotes a value for an auth-param (RFC 9110 §5.6.4). */
const quoted = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

/**
 * The one place where errors become HTTP answers. Every error body has the same shape,
 * `{ error, error_description }` — the RFC 6749 §5.2 shape, so the token endpoint and every other
 * route agree. Bearer failures get an RFC 6750 §3 challenge. Anything that is not an `AppError`
 * (or a 4xx from a Koa middleware such as the body parser) is a 500 whose details are logged,
 * never shown.
 */
export function createErrorHandler(logger: Logger) {
  return async function errorHandler(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.body === undefined && ctx.respond !== false) unanswered(ctx);
    } catch (caught) {
      const error = toAppError(caught);
      if (ctx.respond === false || ctx.headerSent) {
        // A stream already started: nothing can be sent any more.
        logger.warn({ err: caught, path: ctx.path }, 'error after response started');
        return;
      }
      // A deliberate refusal (503 with a stated reason: Redis unavailable, shutting down, busy) is
      // expected while it lasts: one short line, not an error with a stack for every request.
      if (error.status === 503 && error.expose) logger.warn({ code: error.code, method: ctx.method, path: ctx.path }, 'request refused');
      else if (error.status >= 500) logger.error({ err: caught, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = error.status;
      for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
      if (error instanceof BearerError) {
        const params = [`realm=${quoted(REALM)}`];
        if (error.challenge !== undefined) {
          params.push(`error=${quoted(error.challenge)}`, `error_description=${quoted(error.message)}`);
        }
        ctx.set('WWW-Authenticate', `Bearer ${params.join(', ')}`);
        ctx.state.authFailure = error.reason;
      }
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { ...errorBody(error.code, error.expose ? error.message : 'Internal server error.'), ...error.details };
    }
  };
}

/**
 * A status set without a body: no route (404), or the routers' `allowedMethods` refusing a method
 * (405 with `Allow` for a route that exists, 501 for a method no route implements: TRACE,
 * PROPFIND, ...). Koa would answer these with its `text/plain` reason phrase; they get the JSON
 * error body like every other refusal.
 */
function unanswered(ctx: Context): void {
  if (ctx.status === 404) throw new AppError(404, 'not_found', 'No such route.');
  if (ctx.status === 405) {
    const allow = ctx.response.get('Allow');
    throw new AppError(405, 'method_not_allowed', `This route does not answer ${ctx.method}; it answers ${allow}.`, {
      headers: { Allow: allow },
    });
  }
  if (ctx.status === 501) {
    ctx.remove('Allow');
    throw new AppError(501, 'not_implemented', `The method ${ctx.method} is not implemented by this server.`, { expose: true });
  }
}

/** Errors thrown by Koa middleware (body parser, http-errors) carry `status` and `expose`. */
function toAppError(caught: unknown): AppError {
  if (caught instanceof AppError) return caught;
  const error = caught as { status?: unknown; statusCode?: unknown; type?: unknown; expose?: unknown } | null;
  const status = typeof error?.status === 'number' ? error.status : typeof error?.statusCode === 'number' ? error.statusCode : 500;
  if (status === 413) return new AppError(413, 'payload_too_large', 'The request body is too large.', { cause: caught });
  if (status === 415)
    return new AppError(415, 'unsupported_media_type', 'The request body has an unsupported content type or charset.', { cause: caught });
  // co-body (under koa-bodyparser) throws a SyntaxError with status 400 for bad JSON, and also for
  // valid JSON holding a `__proto__` key (prototype poisoning, refused by @hapi/bourne).
  if (status === 400 && caught instanceof SyntaxError && /prototype/.test(caught.message)) {
    return new AppError(400, 'invalid_request', 'Object keys named __proto__ are not allowed.', { cause: caught });
  }
  if (status === 400 && (error?.type === 'entity.parse.failed' || caught instanceof SyntaxError)) {
    return new AppError(400, 'invalid_json', 'The request body is not valid JSON.', { cause: caught });
  }
  if (status >= 400 && status < 500) {
    return new AppError(status, 'invalid_request', 'The request could not be processed.', { cause: caught });
  }
  return new AppError(500, 'internal_error', 'Internal server error.', { cause: caught });
}
