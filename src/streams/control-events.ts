import { frameEvent } from '../sse/frame.js';

/**
 * The server's own stream events. They carry no `id:`, so they never move the client's
 * Last-Event-ID (except `reset`, which moves it forward on purpose). Publishers may not use these
 * names as event types, so a publisher cannot forge them.
 */
export const CONTROL_EVENT_TYPES = Object.freeze([
  'connected',
  'reset',
  'token-expiring',
  'token-renewed',
  'closed',
  'presence-snapshot',
  'presence-join',
  'presence-leave',
] as const);

export type CloseReason = 'token_expired' | 'revoked' | 'insufficient_scope' | 'replay_unavailable' | 'shutdown';

export function connectedEvent(
  retryMs: number,
  data: {
    connectionId: string;
    topics: readonly string[];
    expiresAt: number;
    renewUrl: string;
    heartbeatMs: number;
  },
): string {
  return frameEvent({
    retry: retryMs,
    event: 'connected',
    data: JSON.stringify({ ...data, expiresAt: isoSeconds(data.expiresAt) }),
  });
}

export function resetEvent(reason: 'history_exhausted' | 'unknown_event_id', lastEventId: string, headId: string | undefined): string {
  // An empty id clears the client's Last-Event-ID, so a reconnect does not present the stale one again.
  return frameEvent({ id: headId ?? '', event: 'reset', data: JSON.stringify({ reason, lastEventId }) });
}

export function expiringEvent(expiresAt: number, renewUrl: string): string {
  return frameEvent({ event: 'token-expiring', data: JSON.stringify({ expiresAt: isoSeconds(expiresAt), renewUrl }) });
}

export function renewedEvent(expiresAt: number): string {
  return frameEvent({ event: 'token-renewed', data: JSON.stringify({ expiresAt: isoSeconds(expiresAt) }) });
}

export function closedEvent(reason: CloseReason): string {
  return frameEvent({ event: 'closed', data: JSON.stringify({ reason }) });
}

/** One member as presence events show her: the account and when she came (RFC 3339). */
export interface PresenceMember {
  readonly subject: string;
  readonly since: string;
}

/**
 * The members of a presence topic when a stream that asked for presence opens: at most
 * `PRESENCE_PAGE_SIZE` of them; `next` says where `GET /presence` goes on when there are more.
 */
export function presenceSnapshotEvent(data: {
  topic: string;
  count: number;
  members: readonly PresenceMember[];
  next: string | undefined;
}): string {
  return frameEvent({ event: 'presence-snapshot', data: JSON.stringify(data) });
}

export function presenceJoinEvent(topic: string, subject: string, sinceMs: number): string {
  return frameEvent({ event: 'presence-join', data: JSON.stringify({ topic, subject, since: new Date(sinceMs).toISOString() }) });
}

export function presenceLeaveEvent(topic: string, subject: string, reason: string): string {
  return frameEvent({ event: 'presence-leave', data: JSON.stringify({ topic, subject, reason }) });
}

/** Epoch seconds (a JWT `exp`) as an ISO 8601 string. */
export function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}
