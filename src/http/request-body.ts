// Only for its typing of `ctx.request.body` (the reading and parsing below are our own).
import type {} from 'koa-bodyparser';
import type { Http2ServerRequest } from 'node:http2';
import type { Context, Middleware, Next } from 'koa';
import type { z } from 'zod';
import type { ErrorCode } from '../error-codes.js';
import { AppError, InvalidRequestError } from '../errors.js';

type BodyType = 'json' | 'form';

/**
 * Reads and parses JSON (and, where allowed, form) bodies of at most `maxBytes`. Everything that
 * is not exactly what we expect is refused before parsing, with its own code:
 *
 * - another media type, a charset other than UTF-8, or a `Content-Encoding` (a zip bomb needs no
 *   room in a 64 KiB limit): 415 `unsupported_media_type`;
 * - more than `maxBytes`: 413 `payload_too_large` at once when Content-Length says so, otherwise
 *   as soon as the limit is passed, and the connection is closed so the rest is never read;
 * - bytes that are not UTF-8 (RFC 8259 §8.1), which Node would silently turn into U+FFFD, and
 *   JSON strings with lone surrogates (`"\ud800"`), which cannot be re-encoded as UTF-8:
 *   400 `invalid_encoding`;
 * - JSON nested deeper than `MAX_PARSE_DEPTH`, or with a `__proto__` key (prototype poisoning):
 *   400 `invalid_request`; JSON that does not parse, or whose top level is not an object or
 *   array: 400 `invalid_json`.
 */
export function createBodyParser(options: { maxBytes: number; types: readonly BodyType[] }): Middleware {
  const mimeTypes = options.types.map((type) => (type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded'));
  return async function parseBody(ctx: Context, next: Next): Promise<void> {
    if (!hasBody(ctx)) {
      // No body at all (or an empty one): validation will name the missing fields.
      ctx.request.body = {};
      await next();
      return;
    }
    const type = mimeTypes.find((mime) => mime === ctx.request.type);
    if (type === undefined) {
      throw new AppError(415, 'unsupported_media_type', `Send the body as ${mimeTypes.join(' or ')}.`);
    }
    const charset = (ctx.request.charset ?? '').toLowerCase();
    if (charset !== '' && charset !== 'utf-8' && charset !== 'utf8') {
      throw new AppError(415, 'unsupported_media_type', 'Send the body as UTF-8.');
    }
    const encoding = ctx.get('content-encoding').trim().toLowerCase();
    if (encoding !== '' && encoding !== 'identity') {
      throw new AppError(415, 'unsupported_media_type', 'Compressed request bodies are not accepted.');
    }
    const text = decodeUtf8(await readBody(ctx, options.maxBytes));
    ctx.request.body = type === 'application/json' ? parseJson(text) : parseForm(text);
    await next();
  };
}

/**
 * HTTP/1.1 has a body when it says so (RFC 9112 §6.3: Content-Length or Transfer-Encoding). An
 * HTTP/2 request need not send Content-Length (RFC 9113 §8.1.1); it has no body only when its
 * HEADERS frame ended the stream. (type-is, under `ctx.is`, looks at HTTP/1.1 headers only, so it
 * took an HTTP/2 body without Content-Length for no body at all.)
 */
function hasBody(ctx: Context): boolean {
  if (ctx.request.length === 0) return false;
  if (ctx.req.httpVersionMajor >= 2) return !(ctx.req as unknown as Http2ServerRequest).stream.endAfterHeaders;
  return ctx.get('transfer-encoding') !== '' || ctx.get('content-length') !== '';
}

/** Nesting deeper than this is refused while parsing; routes may set tighter limits (`MAX_JSON_DEPTH`). */
const MAX_PARSE_DEPTH = 64;

function tooLarge(ctx: Context, maxBytes: number): AppError {
  // Whatever is still on the wire is never read: HTTP/1.1 closes the connection after the answer
  // (HTTP/2 has no Connection header; there the stream is reset once the answer is sent).
  if (ctx.req.httpVersionMajor < 2) ctx.set('Connection', 'close');
  return new AppError(413, 'payload_too_large', `The request body is larger than ${maxBytes} bytes.`);
}

/** Reads the whole body, refusing it as soon as it is known to be over `maxBytes`. */
function readBody(ctx: Context, maxBytes: number): Promise<Buffer> {
  const declared = ctx.request.length;
  if (declared !== undefined && declared > maxBytes) return Promise.reject(tooLarge(ctx, maxBytes));
  const req = ctx.req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Node enforces requestTimeout on HTTP/1.1 only; an HTTP/2 body gets the same deadline here.
    const deadline = ctx.req.httpVersionMajor >= 2 ? setTimeout(() => onTimeout(), http2BodyTimeout(ctx)) : undefined;
    const onTimeout = () => {
      cleanup();
      reject(new AppError(408, 'request_timeout', 'The request body did not arrive in time.'));
      // The rest of the body is not wanted: reset the stream once the answer is out.
      ctx.res.once('finish', () => (ctx.req as unknown as Http2ServerRequest).stream.close());
    };
    const cleanup = () => {
      clearTimeout(deadline);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        reject(tooLarge(ctx, maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new InvalidRequestError('The request body was not received whole.', { cause: error }));
    };
    const onClose = () => onError(new Error('closed before the end of the body'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** The listener's `requestTimeout` (tests lower it), else 30 s. */
function http2BodyTimeout(ctx: Context): number {
  const server = (ctx.req.socket as unknown as { server?: { requestTimeout?: unknown } }).server;
  return typeof server?.requestTimeout === 'number' && server.requestTimeout > 0 ? server.requestTimeout : 30_000;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Buffer): string {
  try {
    return strictUtf8.decode(bytes);
  } catch (error) {
    throw new InvalidRequestError('The request body is not valid UTF-8.', { code: 'invalid_encoding', cause: error });
  }
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function parseJson(text: string): unknown {
  const start = text.search(/\S/);
  if (start < 0) return {};
  if (text[start] !== '{' && text[start] !== '[') {
    throw new AppError(400, 'invalid_json', 'The request body must be a JSON object.');
  }
  if (depthExceeds(text, MAX_PARSE_DEPTH)) {
    throw new InvalidRequestError(`The request body is nested deeper than ${MAX_PARSE_DEPTH} levels.`);
  }
  try {
    return JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__') throw new BodyRefusal('invalid_request', 'Object keys named __proto__ are not allowed.');
      if (LONE_SURROGATE.test(key) || (typeof value === 'string' && LONE_SURROGATE.test(value))) {
        throw new BodyRefusal('invalid_encoding', 'Strings must not hold lone UTF-16 surrogates.');
      }
      return value;
    });
  } catch (error) {
    if (error instanceof BodyRefusal) throw new InvalidRequestError(error.message, { code: error.code });
    throw new AppError(400, 'invalid_json', 'The request body is not valid JSON.', { cause: error });
  }
}

class BodyRefusal extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Bracket depth of JSON text, skipping strings; linear and without recursion. */
function depthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

const FORBIDDEN_KEY = /^(__proto__|constructor|prototype)(\[|$)/;

/**
 * `application/x-www-form-urlencoded` (WHATWG URL §5.1), except that a percent-encoding that is
 * not UTF-8 is refused rather than replaced by U+FFFD. A repeated name gives an array, so that
 * routes can refuse repeated parameters (RFC 6749 §3.2).
 */
function parseForm(text: string): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = {};
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' '));
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
    } catch (error) {
      throw new InvalidRequestError('The form body holds an invalid percent-encoding.', { code: 'invalid_encoding', cause: error });
    }
    if (FORBIDDEN_KEY.test(name)) throw new InvalidRequestError(`Form fields named ${name} are not allowed.`);
    const previous = fields[name];
    fields[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return fields;
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
 * @throws InvalidRequestError naming the first bad field, in our own words (zod's are written for
 * developers: "Invalid input: expected array, received undefined", "expected nonoptional").
 */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, code: ErrorCode = 'invalid_request'): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.');
  throw new InvalidRequestError(describeIssue(issue, value), { code, field: field === '' ? undefined : field });
}

type Issue = z.core.$ZodIssue;

/** One zod issue as a sentence that names the field: `topics is required.`, `type must be a string.` */
function describeIssue(issue: Issue, body: unknown): string {
  const name =
    issue.path.length === 0
      ? 'The body'
      : issue.path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join('');
  switch (issue.code) {
    case 'unrecognized_keys':
      return `Unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}.`;
    case 'invalid_type':
      if (issue.path.length > 0 && valueAt(body, issue.path) === undefined) return `${name} is required.`;
      return `${name} must be ${TYPE_NAMES[issue.expected] ?? `of type ${issue.expected}`}.`;
    case 'too_small':
    case 'too_big': {
      const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const least = issue.code === 'too_small';
      if (issue.origin === 'string' && least && bound === 1) return `${name} must not be empty.`;
      const counted = issue.origin === 'array' || issue.origin === 'set';
      const unit = issue.origin === 'string' ? ` character${bound === 1 ? '' : 's'}` : counted ? ` item${bound === 1 ? '' : 's'}` : '';
      const verb = counted ? 'hold' : 'be';
      const comparison = issue.inclusive === false ? (least ? 'more than' : 'fewer than') : least ? 'at least' : 'at most';
      return `${name} must ${verb} ${comparison} ${bound}${unit}.`;
    }
    case 'invalid_value':
      return `${name} must be ${issue.values.map((option) => JSON.stringify(option)).join(' or ')}.`;
    case 'invalid_format':
      return issue.format === 'regex' ? `${name} is not in the allowed form.` : `${name} must be a valid ${issue.format}.`;
    case 'invalid_union':
      return `${name} is not one of the accepted forms.`;
    default:
      // `custom` and the rest carry the message the schema itself was given.
      return `${name}: ${issue.message}.`;
  }
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  array: 'an array',
  object: 'an object',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  bigint: 'a whole number',
  null: 'null',
};

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let current = body;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
