import Router from '@koa/router';
import type { Context } from 'koa';
import { ACCOUNT_NAME } from '../../auth/user-store.js';
import type { AccessClaims } from '../../auth/token-service.js';
import { BearerError, InvalidRequestError, NotFoundError } from '../../errors.js';
import type { PresencePolicy } from '../../presence/presence-policy.js';
import type { ConnectionRecord, PresenceStore } from '../../presence/presence-store.js';
import { anyMatches, coveredByAny, parseSelector } from '../../topics/selector.js';
import { parseTopic } from '../../topics/topic.js';
import type { Authenticator } from '../authenticate.js';

export interface PresenceRouterDeps {
  readonly store: PresenceStore;
  readonly policy: PresencePolicy;
  readonly authenticate: Authenticator;
  /** PRESENCE_PAGE_SIZE: the default and the largest `limit`. */
  readonly pageSize: number;
}

/** One query parameter, given at most once. */
function single(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  if (Array.isArray(value)) throw new InvalidRequestError(`${name} may be given once.`, { field: name });
  return value === '' ? undefined : value;
}

function pageOf(ctx: Context, pageSize: number, after: (value: string) => void): { after?: string; limit: number } {
  const limitText = single(ctx, 'limit');
  let limit = pageSize;
  if (limitText !== undefined) {
    if (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > pageSize) {
      throw new InvalidRequestError(`limit: a whole number from 1 to ${pageSize}.`, { field: 'limit' });
    }
    limit = Number(limitText);
  }
  const start = single(ctx, 'after');
  if (start !== undefined) after(start);
  return start === undefined ? { limit } : { after: start, limit };
}

const subjectKey = (value: string, field: string) => {
  if (!ACCOUNT_NAME.test(value)) throw new InvalidRequestError(`${field}: not an account name.`, { field });
};

/** Only holders of a presence grant may read the reconciliation snapshot; it shows what their grants cover. */
function requirePresenceGrant(claims: AccessClaims): void {
  if (claims.presence.length === 0) throw BearerError.insufficientScope('This token holds no presence grant.');
}

/** A connection is shown to a caller whose presence grants cover every topic of it: it says who watches what. */
function visible(claims: AccessClaims, connection: ConnectionRecord): boolean {
  return connection.topics.every((topic) => coveredByAny(claims.presence, parseSelector(topic)));
}

/**
 * Presence reads (issue 15): one topic's members, and the reconciliation snapshot, the way for an
 * application's backend to be correct (webhooks are the way to be quick): every topic that has
 * members and every open connection, over all instances, at any time.
 *
 * - `GET /presence?topic=T` — T's members, `limit` at a time (at most `PRESENCE_PAGE_SIZE`),
 *   `after` the `next` of the previous page. Allowed as `PRESENCE_FILE` says for the topic: to
 *   its subscribers (a subscribe grant matching T) or to holders of a presence grant for it.
 * - `GET /presence/topics` and `GET /presence/connections[?subject=S]` — the snapshot, for
 *   holders of a presence grant, limited to what it covers.
 */
export function createPresenceRouter(deps: PresenceRouterDeps): Router {
  const router = new Router();

  router.get('/presence', async (ctx) => {
    const { claims } = await deps.authenticate(ctx);
    const given = single(ctx, 'topic');
    if (given === undefined) throw new InvalidRequestError('Give the topic: ?topic=...', { field: 'topic' });
    const topic = parseTopic(given);
    const page = pageOf(ctx, deps.pageSize, (after) => subjectKey(after, 'after'));
    const access = deps.policy.access(claims, topic);
    if (access === 'forbidden') throw BearerError.insufficientScope(`This token may not read the presence of ${topic}.`);
    if (access === 'not_presence') throw new NotFoundError(`${topic} carries no presence.`, 'presence_not_enabled');
    const found = await deps.store.members(topic, page);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      topic,
      count: found.count,
      members: found.members.map((member) => ({ subject: member.subject, since: new Date(member.since).toISOString() })),
      ...(found.next === undefined ? {} : { next: found.next }),
    };
  });

  router.get('/presence/topics', async (ctx) => {
    const { claims } = await deps.authenticate(ctx);
    const page = pageOf(ctx, deps.pageSize, (after) => parseTopic(after));
    requirePresenceGrant(claims);
    const found = await deps.store.topics(page);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      topics: found.topics.filter((entry) => anyMatches(claims.presence, entry.topic)),
      ...(found.next === undefined ? {} : { next: found.next }),
    };
  });

  router.get('/presence/connections', async (ctx) => {
    const { claims } = await deps.authenticate(ctx);
    const subject = single(ctx, 'subject');
    if (subject !== undefined) subjectKey(subject, 'subject');
    const page = pageOf(ctx, deps.pageSize, (after) => subjectKey(after, 'after'));
    requirePresenceGrant(claims);
    const found = await deps.store.connections(page, subject);
    ctx.set('Cache-Control', 'no-store');
    const subjects = found.subjects
      .map((entry) => ({ subject: entry.subject, connections: entry.connections.filter((connection) => visible(claims, connection)) }))
      .filter((entry) => subject !== undefined || entry.connections.length > 0)
      .map((entry) => ({
        subject: entry.subject,
        connections: entry.connections.map((connection) => ({ ...connection, openedAt: new Date(connection.openedAt).toISOString() })),
      }));
    ctx.body = { subjects, ...(found.next === undefined ? {} : { next: found.next }) };
  });

  return router;
}
