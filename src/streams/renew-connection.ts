import type { AccessClaims } from '../auth/token-service.js';
import { BearerError, NotFoundError } from '../errors.js';
import { coveredByAny } from '../topics/selector.js';
import { isoSeconds } from './control-events.js';
import type { SessionRegistry } from './session-registry.js';

/** The answer to an in-band renewal. */
export interface RenewalAnswer {
  readonly connectionId: string;
  readonly expiresAt: string;
}

/**
 * Renews an open stream of this process with a verified token: the in-band renewal of
 * `POST /events/connections/{id}/token`, whether the request arrived here or was forwarded from
 * another instance (`renewal-relay.ts`).
 * @throws NotFoundError (`connection_not_found`) for a missing stream or another subject's (the same answer for both).
 * @throws BearerError (`insufficient_scope`) when the token no longer covers the stream's topics, or
 *   no longer may read the presence the stream receives; the stream is closed. A live stream never
 *   outlives any part of its authorisation.
 * @param mayReadPresence whether `claims` may read the presence of `topic` (the presence policy).
 */
export function renewConnection(
  registry: SessionRegistry,
  id: string,
  claims: AccessClaims,
  mayReadPresence: (claims: AccessClaims, topic: string) => boolean,
): RenewalAnswer {
  const session = registry.get(id);
  if (session === undefined || session.closed || session.subject !== claims.subject) {
    throw new NotFoundError('No open stream with this id for this account.', 'connection_not_found');
  }
  if (!session.selectors.every((selector) => coveredByAny(claims.subscribe, selector))) {
    session.close('insufficient_scope');
    throw BearerError.insufficientScope('The new token no longer covers every topic of this stream; the stream was closed.');
  }
  if (!session.presenceTopics.every((topic) => mayReadPresence(claims, topic))) {
    session.close('insufficient_scope');
    throw BearerError.insufficientScope('The new token may no longer read the presence this stream receives; the stream was closed.');
  }
  registry.renew(session, claims);
  return { connectionId: session.id, expiresAt: isoSeconds(claims.expiresAt) };
}
