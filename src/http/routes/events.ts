import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import Router from '@koa/router';
import type Koa from 'koa';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AccessClaims } from '../../auth/token-service.js';
import type { RenewalForwarder, StreamSlots } from '../../backends/backend.js';
import type { EventBus } from '../../bus/event-bus.js';
import { AppError, BearerError, InvalidRequestError } from '../../errors.js';
import { SseHead, SseStream, type SseStreamOptions } from '../../sse/sse-stream.js';
import { CONTROL_EVENT_TYPES } from '../../streams/control-events.js';
import type { SessionRegistry } from '../../streams/session-registry.js';
import type { PresencePolicy } from '../../presence/presence-policy.js';
import { renewConnection } from '../../streams/renew-connection.js';
import { SubscriberSession, type SessionSettings } from '../../streams/subscriber-session.js';
import { anyMatches, coveredByAny, parseSelector, type Selector } from '../../topics/selector.js';
import { parseTopic } from '../../topics/topic.js';
import type { Authenticator } from '../authenticate.js';
import type { CorsPolicy } from '../cors.js';
import { logRequest } from '../request-log.js';
import { createBodyParser, jsonDepth, MAX_JSON_DEPTH, parseWith } from '../request-body.js';
import { HSTS, SECURITY_HEADERS } from '../security-headers.js';

export interface EventsRouterDeps {
  readonly bus: EventBus;
  readonly registry: SessionRegistry;
  readonly authenticate: Authenticator;
  readonly session: SessionSettings;
  readonly limits: { readonly maxBodyBytes: number; readonly maxDataBytes: number; readonly maxTopicsPerRequest: number };
  readonly streamBufferBytes: number;
  /** Renews a stream that another instance holds (the backend's; on one process it always answers 404). */
  readonly renewals: RenewalForwarder;
  /** Per-account stream slots (the backend's: `MAX_STREAMS_PER_USER` over every instance). */
  readonly streamSlots: StreamSlots;
  /** For the head of streams, which are served before Koa's CORS middleware. */
  readonly cors: CorsPolicy;
  /** For the request line of streams, which are served before Koa's request log. */
  readonly logger: Logger;
  /** Which topics carry presence, and whose events a stream may ask for (`?presence=true`). */
  readonly presence: Pick<PresencePolicy, 'streamTopics' | 'access'>;
}

/** The SSE `event:` field: a short token, no line breaks or other controls that could forge fields. */
const EVENT_TYPE = /^[A-Za-z0-9_.:-]{1,64}$/;
const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;
const CONNECTION_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Longer Last-Event-IDs cannot be ours; they are answered with `reset`, not parsed. */
const MAX_LAST_EVENT_ID = 64;

const reserved = new Set<string>(CONTROL_EVENT_TYPES);

/**
 * Publish (`POST /events`), subscribe (`GET /events`, Server-Sent Events) and in-band token
 * renewal for an open stream.
 */
export function createEventsRouter(deps: EventsRouterDeps): Router {
  const router = new Router();
  const { limits } = deps;
  const openStream = createStreamOpener(deps);
  const publishBody = z
    .object({
      topics: z.array(z.string()).min(1).max(limits.maxTopicsPerRequest),
      type: z.string().optional(),
      data: z.unknown(),
      idempotencyKey: z.string().regex(IDEMPOTENCY_KEY).optional(),
    })
    .strict();

  router.post('/events', createBodyParser({ maxBytes: limits.maxBodyBytes, types: ['json'] }), async (ctx) => {
    const { claims } = await deps.authenticate(ctx);
    const input = parseWith(publishBody, ctx.request.body);
    if (!Object.hasOwn(ctx.request.body as object, 'data')) {
      throw new InvalidRequestError('data: required (any JSON value, null included).', { field: 'data' });
    }
    const topics = [...new Set(input.topics.map((topic) => parseTopic(topic)))];
    const type = input.type ?? 'message';
    if (!EVENT_TYPE.test(type)) {
      throw new InvalidRequestError('type: 1 to 64 characters of A-Z a-z 0-9 _ . : -', { code: 'invalid_event_type', field: 'type' });
    }
    if (reserved.has(type)) {
      throw new InvalidRequestError(`type: "${type}" is reserved for the server's own stream events.`, {
        code: 'reserved_event_type',
        field: 'type',
      });
    }
    if (jsonDepth(input.data) > MAX_JSON_DEPTH) {
      throw new InvalidRequestError(`data: nested deeper than ${MAX_JSON_DEPTH} levels.`, { field: 'data' });
    }
    const data = JSON.stringify(input.data);
    if (Buffer.byteLength(data) > limits.maxDataBytes) {
      throw new AppError(413, 'payload_too_large', `data is larger than ${limits.maxDataBytes} bytes once serialised.`);
    }
    // All or nothing: one topic outside the grants refuses the whole publish.
    const denied = topics.find((topic) => !anyMatches(claims.publish, topic));
    if (denied !== undefined) throw BearerError.insufficientScope(`This token may not publish to ${denied}.`);

    const { event, duplicate } = await deps.bus.publish({
      topics,
      type,
      data,
      publisher: claims.subject,
      idempotencyKey: input.idempotencyKey,
    });
    ctx.status = duplicate ? 200 : 201;
    ctx.body = duplicate
      ? { id: event.id, topics: event.topics, type: event.type, duplicate: true }
      : { id: event.id, topics: event.topics, type: event.type };
  });

  // Streams are served before Koa (`createStreamEntry`, below): what reaches this route is a
  // refusal decided there, answered here like any other error (error handler, CORS, security
  // headers, request log, metrics), or a request target the listener's quick test does not
  // recognise (the absolute form, `GET http://host/events`), served the same way from inside Koa.
  router.get('/events', async (ctx) => {
    const refusal = refusals.get(ctx.req);
    if (refusal === undefined) return openStream(ctx, String(ctx.response.get('X-Request-Id')));
    refusals.delete(ctx.req);
    ctx.state.subject = refusal.subject;
    throw refusal.error;
  });

  router.post('/events/connections/:connectionId/token', async (ctx) => {
    const { claims } = await deps.authenticate(ctx);
    assertUnexpired(claims, deps.session.clock);
    const id = ctx.params.connectionId ?? '';
    // A stream this process does not hold may be held by another instance: the backend forwards it.
    const mayReadPresence = (renewing: typeof claims, topic: string) => deps.presence.access(renewing, topic) === 'allowed';
    const answer = !CONNECTION_ID.test(id)
      ? renewConnection(deps.registry, '', claims, mayReadPresence)
      : deps.registry.get(id) === undefined
        ? await deps.renewals.forward(id, claims)
        : renewConnection(deps.registry, id, claims, mayReadPresence);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = answer;
  });

  return router;
}

/**
 * CLOCK_TOLERANCE lets a token verify a little past `exp`, for clocks that disagree; a stream
 * opened or renewed with such a token would only close at once (`token_expired`), one wasted
 * round trip for the client. So a stream needs a token that has not expired by our clock.
 * @throws BearerError (`invalid_token`, reason `expired`).
 */
function assertUnexpired(claims: AccessClaims, clock: () => number): void {
  if (claims.expiresAt * 1000 <= clock()) throw BearerError.invalid('expired');
}

/** A stream refused before its first byte, for Koa's GET /events route to answer. */
interface Refusal {
  readonly error: unknown;
  /** The authenticated subject, if the refusal came after authentication (for the request log). */
  readonly subject: unknown;
}

/** Refusals waiting for Koa to answer them; weak, so one lives no longer than its request. */
const refusals = new WeakMap<object, Refusal>();

/**
 * `GET /events` (or HEAD), as Koa's router would match it: case-insensitive, an optional
 * trailing slash, any query. Other request targets (the absolute form) go through Koa.
 */
const STREAM_TARGET = /^\/events\/?(?:\?|$)/i;

/**
 * The event stream served before Koa: for `GET /events` it runs every check (`openStream`),
 * and once the stream has started nothing of Koa's stays with it: no context kept alive by the
 * middleware chain, no `on-finished` listeners, no header map (issue 12). A refused stream is
 * handed to Koa with its error, so every refusal is answered, logged and counted exactly as any
 * other route's errors. Returns false for every other request, which the caller gives to Koa.
 */
export function createStreamEntry(
  deps: EventsRouterDeps,
  app: Koa,
): (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => boolean {
  const openStream = createStreamOpener(deps);
  const answerWithKoa = app.callback();
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const requestId = randomUUID();
    // Koa's request object reads the headers, query, cookies and proxy settings exactly as on
    // every other route; no middleware runs on it, and it is dropped when this returns.
    const ctx = app.createContext(req, res);
    try {
      await openStream(ctx, requestId, () => logRequest(deps.logger, ctx, requestId, 200, started));
    } catch (error) {
      if (ctx.respond === false) {
        deps.logger.warn({ err: error, path: '/events' }, 'error after response started');
        return;
      }
      refusals.set(req, { error, subject: ctx.state.subject });
      void answerWithKoa(req, res);
    }
  }
  return (req, res) => {
    const method = req.method;
    if ((method !== 'GET' && method !== 'HEAD') || !STREAM_TARGET.test(req.url ?? '')) return false;
    void serve(req as IncomingMessage, res as ServerResponse);
    return true;
  };
}

/**
 * `GET /events`: every check a stream passes before its first byte, in this order, then the
 * session's start. `ctx` is only read (headers, query, cookies, the client's address); the
 * caller answers what this throws.
 * @throws AppError for every refusal (406, 401, 400, 403, 429, 503), before any byte is written.
 */
function createStreamOpener(deps: EventsRouterDeps) {
  const { limits } = deps;
  const streamOptions: SseStreamOptions = {
    maxBufferedBytes: deps.streamBufferBytes,
    // Everything Koa's middleware would have put on the answer, except what varies per request.
    head: new SseHead({ ...SECURITY_HEADERS, Vary: 'Origin' }),
  };
  return async function openStream(ctx: Context, requestId: string, onOpen?: () => void): Promise<void> {
    // Listen for the client leaving from the first moment: Node reports a closed connection once,
    // and one that closes while this awaits the token check or a stream slot must get no session.
    const stream = new SseStream(ctx.res, streamOptions);
    const accept = ctx.get('accept');
    if (accept !== '' && accept !== 'text/event-stream' && accept !== '*/*' && !ctx.accepts('text/event-stream')) {
      throw new AppError(406, 'not_acceptable', 'This route answers with text/event-stream.');
    }
    const { claims } = await deps.authenticate(ctx);
    assertUnexpired(claims, deps.session.clock);
    const requested = ctx.query.topic;
    const sources = requested === undefined ? [] : Array.isArray(requested) ? requested : [requested];
    if (sources.length === 0) throw new InvalidRequestError('Give at least one topic selector: ?topic=...', { field: 'topic' });
    if (sources.length > limits.maxTopicsPerRequest) {
      throw new InvalidRequestError(`At most ${limits.maxTopicsPerRequest} topic selectors per stream.`, { field: 'topic' });
    }
    const selectors: Selector[] = [];
    for (const source of new Set(sources)) selectors.push(parseSelector(source));
    // All or nothing: one selector the token does not cover refuses the stream.
    const denied = selectors.find((selector) => !coveredByAny(claims.subscribe, selector));
    if (denied !== undefined) throw BearerError.insufficientScope(`This token may not subscribe to ${denied.source}.`);
    const presenceTopics = deps.presence.streamTopics(ctx.query.presence, claims, selectors);

    const lastEventId = readLastEventId(ctx.get('last-event-id'), ctx.query.lastEventId);

    deps.registry.admit();
    const id = randomBytes(16).toString('base64url');
    await deps.streamSlots.acquire(claims.subject, id);
    ctx.respond = false;
    if (stream.closed) {
      deps.streamSlots.release(claims.subject, id);
      return;
    }
    const session = new SubscriberSession(id, stream, claims, selectors, deps.session, presenceTopics);
    deps.registry.add(session);
    // What varies per answer: its id, and what Koa's CORS and security middleware would add for this request.
    const headers = ['X-Request-Id', requestId, ...deps.cors.simpleResponseHeaders(ctx.get('origin'))];
    if (ctx.secure) headers.push(...HSTS);
    const running = session.start(deps.bus, lastEventId, headers);
    onOpen?.();
    await running;
  };
}

/** `Last-Event-ID` header first (what EventSource sends on reconnect), else the query parameter for a first connect. */
function readLastEventId(header: string, query: string | string[] | undefined): string | undefined {
  if (Array.isArray(query)) throw new InvalidRequestError('lastEventId may be given once.', { field: 'lastEventId' });
  const value = header !== '' ? header : query;
  if (value === undefined || value === '') return undefined;
  return value.length > MAX_LAST_EVENT_ID ? value.slice(0, MAX_LAST_EVENT_ID) : value;
}
