import type { AttemptCounterFactory } from '../auth/login-throttle.js';
import type { RefreshTokenStore } from '../auth/refresh-token-store.js';
import type { RevocationList } from '../auth/revocations.js';
import type { TicketStore } from '../auth/ticket-store.js';
import type { AccessClaims } from '../auth/token-service.js';
import type { EventBus } from '../bus/event-bus.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { RenewalAnswer } from '../streams/renew-connection.js';

/**
 * Everything whose state differs between one process and many: the one seam between the embedded
 * default and scale-out. The composition root (`server.ts`) picks an implementation once, from
 * `config.backend`; every other module talks to this interface. An ability that one backend does
 * not need (forwarding a renewal to another instance, on a single process) has a trivial
 * implementation there, so no caller ever tests for its absence.
 *
 * Implementations live in their own folders (`memory/`, `redis/`) and pass the same contract
 * suites (`test/contract/`).
 */
export interface Backend {
  /** Events: history, idempotency and fan-out. */
  readonly bus: EventBus;
  /** Refresh-token families with rotation and reuse detection (RFC 9700 §4.14.2). */
  readonly refreshTokens: RefreshTokenStore;
  /** The sign-in throttle's counters: per process, or shared so that spreading attempts over instances gains nothing. */
  readonly attemptCounters: AttemptCounterFactory;
  /** `MAX_STREAMS_PER_USER`, counted over every process that serves the deployment. */
  readonly streamSlots: StreamSlots;
  /** In-band renewal of a stream that another instance holds. */
  readonly renewals: RenewalForwarder;
  /** One-time browser tickets (token exchange): redeemable once, on any instance. */
  readonly tickets: TicketStore;
  /** Who is present on which topic, topic occupancy and open connections, over every instance (issue 15). */
  readonly presence: PresenceStore;
  /** `undefined` while the backend can serve, else why not (for `/readyz`). */
  unavailableReason(): string | undefined;
  /** Drops expired state (history past its TTL, spent refresh-token families); the server runs it on a timer. */
  sweep(): Promise<void>;
  /** Releases every connection and timer the backend opened. Bounded in time, also when its store is unreachable. */
  close(): Promise<void>;
}

/** What a backend is given when it opens. */
export interface BackendDeps {
  readonly clock: () => number;
  /** This process's name in connection records and webhooks (host and process id). */
  readonly instance: string;
  /**
   * The in-process deny-list. A backend shared by several instances carries revocations between
   * them: local ones out, remote ones in (`RevocationList.applyRemote`).
   */
  readonly revocations: RevocationList;
  /** The streams this process holds, so a renewal forwarded by another instance can be served here. */
  readonly localStreams: LocalStreams;
  /** Told once per event after its local fan-out (metrics). */
  readonly onDispatch: (delivered: number, elapsedMs: number) => void;
  /** Connection trouble worth a log line (rate-limited by the caller). */
  readonly onError: (error: Error) => void;
}

/** Per-account stream slots (`MAX_STREAMS_PER_USER`). */
export interface StreamSlots {
  /**
   * Takes one of `subject`'s slots for the stream `streamId`.
   * @throws TooManyRequestsError (`too_many_streams`) at the limit; ServiceUnavailableError when the shared store is unreachable.
   */
  acquire(subject: string, streamId: string): Promise<void>;
  /** Gives the slot back; a slot that is not held is ignored. */
  release(subject: string, streamId: string): void;
}

/** Renews a stream this process does not hold, on the instance that does. */
export interface RenewalForwarder {
  /**
   * Same answers and errors as a local renewal: 404 `connection_not_found` when no instance holds
   * the stream (on a single process: always).
   */
  forward(connectionId: string, claims: AccessClaims): Promise<RenewalAnswer>;
}

export interface LocalStreams {
  /**
   * Renews the stream `connectionId` if this process holds it, as a local renewal would (and with
   * its errors); `undefined` when it does not hold it.
   */
  renewIfHeld(connectionId: string, claims: AccessClaims): RenewalAnswer | undefined;
}
