import type { RevocationList } from '../auth/revocations.js';
import type { AccessClaims } from '../auth/token-service.js';
import { ServiceUnavailableError } from '../errors.js';
import { frameComment } from '../sse/frame.js';
import type { CloseReason } from './control-events.js';
import type { SessionEndObserver, SessionEndReason, SubscriberSession } from './subscriber-session.js';

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

/**
 * Streams by subject (or by sign-in): most accounts hold one stream, so a key maps to the stream
 * itself and only a second stream makes it a Set (a Set per account would cost more than the
 * stream's own state).
 */
type Index = Map<string, SubscriberSession | Set<SubscriberSession>>;

function addTo(index: Index, key: string, session: SubscriberSession): void {
  const held = index.get(key);
  if (held === undefined) index.set(key, session);
  else if (held instanceof Set) held.add(session);
  else if (held !== session) index.set(key, new Set([held, session]));
}

function removeFrom(index: Index, key: string, session: SubscriberSession): void {
  const held = index.get(key);
  if (held === session) index.delete(key);
  else if (held instanceof Set && held.delete(session) && held.size <= 1) {
    const [last] = held;
    if (last === undefined) index.delete(key);
    else index.set(key, last);
  }
}

function sessionsIn(index: Index, key: string): SubscriberSession[] {
  const held = index.get(key);
  return held === undefined ? [] : held instanceof Set ? [...held] : [held];
}

/**
 * Every open stream of this process: admission limits, look-up for in-band renewal, the shared
 * heartbeat (one timer and one frame for all streams, not one per stream), closing streams whose
 * token was revoked, and closing all of them on shutdown.
 */
export class SessionRegistry implements SessionEndObserver {
  private readonly sessions = new Map<string, SubscriberSession>();
  private readonly bySubject: Index = new Map();
  private readonly bySessionId: Index = new Map();
  private readonly heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly stopListening: () => void;
  private closing = false;

  constructor(private readonly options: SessionRegistryOptions) {
    if (options.heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => this.heartbeat(), options.heartbeatMs);
      this.heartbeatTimer.unref();
    }
    this.stopListening = options.revocations.onRevoke((revocation) => {
      const affected =
        revocation.kind === 'session' ? sessionsIn(this.bySessionId, revocation.sessionId) : sessionsIn(this.bySubject, revocation.subject);
      for (const session of affected) {
        if (options.revocations.isRevoked(session)) session.close('revoked');
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
    this.index(session);
    for (const observer of this.options.observers ?? []) observer.started(session);
    session.onEnd(this);
  }

  /** The session tells this once, when it ends. */
  sessionEnded(session: SubscriberSession, reason: SessionEndReason): void {
    this.sessions.delete(session.id);
    this.unindex(session);
    this.options.onSessionEnd?.(reason);
    for (const observer of this.options.observers ?? []) observer.ended(session, reason);
  }

  get(id: string): SubscriberSession | undefined {
    return this.sessions.get(id);
  }

  /** Renews a stream's token and re-indexes it (a renewal may come from another refresh family). */
  renew(session: SubscriberSession, claims: AccessClaims): void {
    this.unindex(session);
    session.renew(claims);
    this.index(session);
    this.options.onRenew?.();
  }

  get size(): number {
    return this.sessions.size;
  }

  countFor(subject: string): number {
    return sessionsIn(this.bySubject, subject).length;
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

  private index(session: SubscriberSession): void {
    addTo(this.bySubject, session.subject, session);
    if (session.sessionId !== undefined) addTo(this.bySessionId, session.sessionId, session);
  }

  private unindex(session: SubscriberSession): void {
    removeFrom(this.bySubject, session.subject, session);
    if (session.sessionId !== undefined) removeFrom(this.bySessionId, session.sessionId, session);
  }
}
