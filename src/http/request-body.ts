import bodyParser from 'koa-bodyparser';
import type { Context, Middleware, Next } from 'koa';
import type { z } from 'zod';
import { AppError, InvalidRequestError } from '../errors.js';

type BodyType = 'json' | 'form';

/**
 * Parses JSON (and, where allowed, form) bodies up to `maxBytes`, refusing other content types
 * with 415 before reading anything. koa-bodyparser stops reading at the limit whether or not a
 * Content-Length was sent (413).
 */
export function createBodyParser(options: { maxBytes: number; types: readonly BodyType[] }): Middleware {
  const parse = bodyParser({
    enableTypes: [...options.types],
    jsonLimit: `${options.maxBytes}b`,
    formLimit: `${options.maxBytes}b`,
    strict: true,
  });
  const mimeTypes = options.types.map((type) => (type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded'));
  return async function parseBody(ctx: Context, next: Next): Promise<void> {
    const type = ctx.is(...mimeTypes);
    if (type === null || ctx.request.length === 0) {
      // No body at all: validation will name the missing fields.
      ctx.request.body = {};
      return next();
    }
    if (type === false) {
      throw new AppError(415, 'unsupported_media_type', `Send the body as ${mimeTypes.join(' or ')}.`);
    }
    return parse(ctx, next);
  };
}

/** Deeper JSON than this is refused: no real notification needs it, and deep values are slow to copy. */
export const MAX_JSON_DEPTH = 32;

/** The nesting depth of a parsed JSON value, counted without recursion (a hostile value cannot blow the stack). */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (deepest > limit) return deepest;
    for (const child of Object.values(current)) stack.push([child, level]);
  }
  return deepest;
}

/**
 * Validates a parsed body against a zod schema.
 * @throws InvalidRequestError naming the first bad field.
 */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, code = 'invalid_request'): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.');
  const message =
    issue.code === 'unrecognized_keys'
      ? `Unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}.`
      : `${field === '' ? 'The body' : field}: ${issue.message}.`;
  throw new InvalidRequestError(message, { code, field: field === '' ? undefined : field });
}
