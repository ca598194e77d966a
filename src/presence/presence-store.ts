/**
 * Presence, topic occupancy and open connections, over every instance of a deployment (issue 15).
 * Each backend implements it (`Backend.presence`): in memory for one process, in Redis with leases
 * for many. The domain above it (`presence-tracker.ts`) counts streams and debounces leaves; a
 * store only hears "this instance holds X" and "this instance no longer holds X", and tells every
 * instance when something changed for the deployment as a whole: the first holder of a member
 * anywhere makes her `member-added`, the last one to let go makes her `member-removed`.
 *
 * The mutating calls never throw and never wait: they are made on the stream path. A store that
 * cannot reach its shared state retries or repairs later; what it holds is, in the end, exactly
 * what its instance holds.
 */

import type { MemberRemovedReason } from '../webhooks/webhook-event.js';

export type { MemberRemovedReason };

interface ChangeOrigin {
  /** When it happened (epoch ms). */
  readonly at: number;
  /**
   * Orders changes: `<ms>-<seq>`, increasing in the order the store applied them (compare with
   * `compareEventIds`). A snapshot carries the version it reflects, so changes at or below it are
   * already in it.
   */
  readonly version: string;
  /**
   * True on exactly one instance: the one whose call (or whose reaping of a lapsed lease) made the
   * change. That instance tells the webhooks, so each change is told once, not once per instance.
   */
  readonly local: boolean;
}

/** A change to the deployment's presence, occupancy or connections, told to every instance. */
export type PresenceChange = ChangeOrigin &
  (
    | { readonly kind: 'member-added'; readonly topic: string; readonly subject: string }
    | { readonly kind: 'member-removed'; readonly topic: string; readonly subject: string; readonly reason: MemberRemovedReason }
    | { readonly kind: 'topic-occupied'; readonly topic: string }
    | { readonly kind: 'topic-vacated'; readonly topic: string }
    /** Only for the streams of an instance whose lease lapsed: a live instance tells its own. */
    | {
        readonly kind: 'disconnected';
        readonly subject: string;
        readonly connectionId: string;
        readonly topics: readonly string[];
        readonly reason: 'lease_expired';
      }
  );

/** One open stream, as the reconciliation snapshot lists it. */
export interface ConnectionRecord {
  readonly connectionId: string;
  readonly subject: string;
  /** Its topics and selectors, as subscribed. */
  readonly topics: readonly string[];
  /** Epoch ms. */
  readonly openedAt: number;
  /** The instance that holds it (its name in webhooks). */
  readonly instance: string;
}

export interface PageRequest {
  /** Start after this key (the `next` of the previous page); from the start when absent. */
  readonly after?: string;
  readonly limit: number;
}

/** Members in byte order of their subject. */
export interface MemberPage {
  readonly members: ReadonlyArray<{ readonly subject: string; readonly since: number }>;
  /** Members of the topic in all. */
  readonly count: number;
  /** The key of the next page, when there is one. */
  readonly next: string | undefined;
  /** The version of the newest change this page reflects. */
  readonly version: string;
}

export interface TopicPage {
  readonly topics: ReadonlyArray<{ readonly topic: string; readonly count: number }>;
  readonly next: string | undefined;
}

export interface ConnectionPage {
  /** Subjects in byte order, each with every connection it holds. */
  readonly subjects: ReadonlyArray<{ readonly subject: string; readonly connections: readonly ConnectionRecord[] }>;
  readonly next: string | undefined;
}

export interface PresenceStore {
  /**
   * True when what this instance holds outlives it under a lease (a shared store): on shutdown its
   * members' pending leaves are left to the lease, so members who reconnect to another instance
   * stay present. False on one process: the leaves are told at shutdown, since nobody else will.
   */
  readonly leasesOutliveProcess: boolean;
  /** This instance holds `subject` as a member of `topic` (its first stream there, or one back within the leave delay). */
  addMember(topic: string, subject: string): void;
  /** This instance no longer holds `subject` on `topic` (the leave delay has passed). */
  removeMember(topic: string, subject: string): void;
  /** This instance holds a stream on `selector` (for `topic-occupied` / `topic-vacated`). */
  occupy(selector: string): void;
  vacate(selector: string): void;
  /** Records an open stream for the reconciliation snapshot. */
  openConnection(connection: Omit<ConnectionRecord, 'instance'>): void;
  closeConnection(subject: string, connectionId: string): void;

  /**
   * One page of a topic's members, its total and the version it reflects.
   * @throws ServiceUnavailableError (`redis_unavailable`) when the shared state cannot be read.
   */
  members(topic: string, page: PageRequest): Promise<MemberPage>;
  /** The topics that have members, in byte order, with their counts. */
  topics(page: PageRequest): Promise<TopicPage>;
  /** Open connections by subject: one subject's (`subject` given), or a page of subjects. */
  connections(page: PageRequest, subject?: string): Promise<ConnectionPage>;
  /** Members over all topics (the metrics gauge). */
  memberCount(): Promise<number>;

  /** Tells `listener` every change, in version order; returns the unsubscribe. */
  onChange(listener: (change: PresenceChange) => void): () => void;
}
