import type { RevocationList } from '../auth/revocations.js';
import type { AccessClaims } from '../auth/token-service.js';
import { ServiceUnavailableError } from '../errors.js';
import { frameComment } from '../sse/frame.js';
import type { CloseReason } from './control-events.js';
import type { SessionEndReason, SubscriberSession } from './subscriber-session.js';

export interface SessionRegistryOptions {
  readonly maxStreams: number;
  /** 0 turns heartbeats off. */
  readonly heartbeatMs: number;
  readonly revocations: RevocationList;
  /** Told once per stream end (metrics: slow-consumer disconnects). */
  readonly onSessionEnd?: (reason: SessionEndReason) => void;
  /** Told once per in-band renewal (metrics). */
  readonly onRenew?: () => void;
  /** Told when each stream is added and when it ends (presence, lifecycle webhooks). */
  readonly observers?: readonly SessionObserver[];
}

/** Hears of every stream of the process: once when it is added, once when it ends. Must not throw. */
export interface SessionObserver {
  started(session: SubscriberSession): void;
  ended(session: SubscriberSession, reason: SessionEndReason): void;
}

const HEARTBEAT = Buffer.from(frameComment(), 'utf8');

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set !== undefined && set.delete(value) && set.size === 0) map.delete(key);
}

/**
 * Every open stream of this process: admission limits, look-up for in-band renewal, the shared
 * heartbeat (one timer and one frame for all streams, not one per stream), closing streams whose
 * token was revoked, and closing all of them on shutdown.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, SubscriberSession>();
  private readonly bySubject = new Map<string, Set<SubscriberSession>>();
  private readonly bySessionId = new Map<string, Set<SubscriberSession>>();
  private readonly heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly stopListening: () => void;
  private closing = false;

  constructor(private readonly options: SessionRegistryOptions) {
    if (options.heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => this.heartbeat(), options.heartbeatMs);
      this.heartbeatTimer.unref();
    }
    this.stopListening = options.revocations.onRevoke((revocation) => {
      const affected = revocation.kind === 'session' ? this.bySessionId.get(revocation.sessionId) : this.bySubject.get(revocation.subject);
      if (affected === undefined) return;
      for (const session of [...affected]) {
        if (options.revocations.isRevoked(session.tokenClaims)) session.close('revoked');
      }
    });
  }

  /**
   * Checks that this process may hold one more stream. (The per-account limit is the backend's
   * stream slots: it counts over every instance.)
   * @throws ServiceUnavailableError (`shutting_down`, `server_busy`).
   */
  admit(): void {
    if (this.closing) throw new ServiceUnavailableError('shutting_down', 'The server is shutting down.', 1);
    if (this.sessions.size >= this.options.maxStreams) {
      throw new ServiceUnavailableError('server_busy', 'The server holds as many streams as it may.', 5);
    }
  }

  add(session: SubscriberSession): void {
    this.sessions.set(session.id, session);
    this.index(session, session.tokenClaims);
    for (const observer of this.options.observers ?? []) observer.started(session);
    session.onEnd((reason) => {
      this.sessions.delete(session.id);
      this.unindex(session, session.tokenClaims);
      this.options.onSessionEnd?.(reason);
      for (const observer of this.options.observers ?? []) observer.ended(session, reason);
    });
  }

  get(id: string): SubscriberSession | undefined {
    return this.sessions.get(id);
  }

  /** Renews a stream's token and re-indexes it (a renewal may come from another refresh family). */
  renew(session: SubscriberSession, claims: AccessClaims): void {
    this.unindex(session, session.tokenClaims);
    session.renew(claims);
    this.index(session, claims);
    this.options.onRenew?.();
  }

  get size(): number {
    return this.sessions.size;
  }

  countFor(subject: string): number {
    return this.bySubject.get(subject)?.size ?? 0;
  }

  /** Refuses new streams and closes every open one with a final event. */
  closeAll(reason: CloseReason): void {
    this.closing = true;
    for (const session of [...this.sessions.values()]) session.close(reason);
  }

  stop(): void {
    clearInterval(this.heartbeatTimer);
    this.stopListening();
  }

  private heartbeat(): void {
    for (const session of this.sessions.values()) session.heartbeat(HEARTBEAT);
  }

  private index(session: SubscriberSession, claims: AccessClaims): void {
    addTo(this.bySubject, claims.subject, session);
    if (claims.sessionId !== undefined) addTo(this.bySessionId, claims.sessionId, session);
  }

  private unindex(session: SubscriberSession, claims: AccessClaims): void {
    removeFrom(this.bySubject, claims.subject, session);
    if (claims.sessionId !== undefined) removeFrom(this.bySessionId, claims.sessionId, session);
  }
}
