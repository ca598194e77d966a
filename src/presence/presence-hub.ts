import { compareEventIds, parseEventId, type EventIdParts } from '../bus/event-id.js';
import type { SessionObserver } from '../streams/session-registry.js';
import type { SessionEndReason } from '../streams/subscriber-session.js';
import { presenceJoinEvent, presenceLeaveEvent, presenceSnapshotEvent } from '../streams/control-events.js';
import { coveredByAny, type Selector } from '../topics/selector.js';
import type { WebhookTarget } from '../webhooks/webhook-config.js';
import type { WebhookEvent } from '../webhooks/webhook-event.js';
import type { WebhookTimers } from '../webhooks/webhook-timers.js';
import { DebouncedHoldings } from './debounced-holdings.js';
import type { PresencePolicy } from './presence-policy.js';
import type { PresenceChange, PresenceStore } from './presence-store.js';

/** What the hub needs of a stream (a `SubscriberSession`). */
export interface PresenceSession {
  readonly id: string;
  readonly subject: string;
  readonly selectors: readonly Selector[];
  /** The presence topics whose events it asked for. */
  readonly presenceTopics: readonly string[];
  readonly closed: boolean;
  sendControl(frame: string): void;
}

export interface PresenceHubOptions {
  readonly store: PresenceStore;
  readonly policy: PresencePolicy;
  /** PRESENCE_LEAVE_DELAY. */
  readonly leaveDelayMs: number;
  /** PRESENCE_PAGE_SIZE: members in a snapshot event. */
  readonly pageSize: number;
  /** Where lifecycle events go (the webhook dispatcher; `enqueue` never throws, never waits). */
  readonly webhooks: { enqueue(event: WebhookEvent): void };
  /** Which stream selectors are tracked for `topic-occupied` / `topic-vacated` (see `occupancyTracked`). */
  readonly tracksOccupancy: (selector: Selector) => boolean;
  readonly clock: () => number;
  readonly timers: WebhookTimers;
  /** A snapshot that could not be read (it is tried again a second later). */
  readonly onError: (error: Error) => void;
}

/** How long a stream waits before asking again for a snapshot that could not be read. */
const SNAPSHOT_RETRY_MS = 1000;

interface Watcher {
  readonly session: PresenceSession;
  /** Changes that arrived while the snapshot was being read; `undefined` once live. */
  pending: PresenceChange[] | undefined;
  /**
   * The version the snapshot reflected, while changes at or below it may still arrive (on a
   * shared store the tail can be slower than the read); cleared by the first newer change, since
   * changes arrive in version order.
   */
  floor: EventIdParts | undefined;
  retry: unknown;
}

/**
 * Which selectors must be tracked for occupancy: those some webhook target wants
 * `topic-occupied` or `topic-vacated` for. Tracking costs a store write per first and last stream
 * on a selector, so a deployment whose webhooks do not ask for occupancy pays nothing for it.
 */
export function occupancyTracked(targets: readonly WebhookTarget[]): (selector: Selector) => boolean {
  const wanting = targets.filter((target) => target.events.has('topic-occupied') || target.events.has('topic-vacated'));
  if (wanting.length === 0) return () => false;
  return (selector) => wanting.some((target) => target.topics === undefined || coveredByAny(target.topics, selector));
}

/**
 * Presence and the lifecycle of streams, for one process (issue 15). As a `SessionObserver` it
 * hears every stream start and end and turns them into what the deployment shares: memberships
 * (a subject on a presence topic, however many tabs), occupancy (a selector with streams) and
 * connection records, each counted here and handed to the store with the leave delay
 * (`DebouncedHoldings`); and `connected` / `disconnected` webhooks. It hears every change the
 * store tells and hands it to the streams that watch the topic (one frame per change, shared by
 * all of them), and to the webhooks when this instance made it (so each is told once).
 *
 * A stream that asked for presence gets, once it is open (`open`), a `presence-snapshot` per
 * topic and then `presence-join` / `presence-leave`. Changes that arrive while the snapshot is
 * read wait, and those the snapshot already reflects (by version) are dropped: no gap and no
 * duplicate between the snapshot and what follows.
 */
export class PresenceHub implements SessionObserver {
  private readonly members: DebouncedHoldings;
  private readonly occupancy: DebouncedHoldings;
  /** topic -> the streams watching it. */
  private readonly watchers = new Map<string, Set<Watcher>>();
  /** session id -> its watchers (one per topic). */
  private readonly bySession = new Map<string, Watcher[]>();
  private readonly stopListening: () => void;

  constructor(private readonly options: PresenceHubOptions) {
    const { store } = options;
    const delay = { delayMs: options.leaveDelayMs, timers: options.timers };
    // Keys are `<subject> <topic>`: neither may contain a space.
    this.members = new DebouncedHoldings({
      ...delay,
      hold: (key) => store.addMember(key.slice(key.indexOf(' ') + 1), key.slice(0, key.indexOf(' '))),
      release: (key) => store.removeMember(key.slice(key.indexOf(' ') + 1), key.slice(0, key.indexOf(' '))),
    });
    this.occupancy = new DebouncedHoldings({ ...delay, hold: (key) => store.occupy(key), release: (key) => store.vacate(key) });
    this.stopListening = store.onChange((change) => this.changed(change));
  }

  /** Memberships this process holds, debounced leaves included. */
  get heldMemberships(): number {
    return this.members.size;
  }

  started(session: PresenceSession): void {
    for (const topic of this.options.policy.memberTopics(session.selectors)) this.members.acquire(`${session.subject} ${topic}`);
    for (const selector of session.selectors) if (this.options.tracksOccupancy(selector)) this.occupancy.acquire(selector.source);
    const topics = session.selectors.map((selector) => selector.source);
    const at = this.options.clock();
    this.options.store.openConnection({ connectionId: session.id, subject: session.subject, topics, openedAt: at });
    this.options.webhooks.enqueue({ kind: 'connected', subject: session.subject, connectionId: session.id, topics, at });
  }

  ended(session: PresenceSession, reason: SessionEndReason): void {
    this.unwatch(session);
    for (const topic of this.options.policy.memberTopics(session.selectors)) this.members.release(`${session.subject} ${topic}`);
    for (const selector of session.selectors) if (this.options.tracksOccupancy(selector)) this.occupancy.release(selector.source);
    this.options.store.closeConnection(session.subject, session.id);
    const topics = session.selectors.map((selector) => selector.source);
    this.options.webhooks.enqueue({
      kind: 'disconnected',
      subject: session.subject,
      connectionId: session.id,
      topics,
      reason,
      at: this.options.clock(),
    });
  }

  /** The stream is open (head and `connected` written): start its presence events. */
  open(session: PresenceSession): void {
    if (session.closed || session.presenceTopics.length === 0 || this.bySession.has(session.id)) return;
    const mine: Watcher[] = [];
    for (const topic of session.presenceTopics) {
      const watcher: Watcher = { session, pending: [], floor: undefined, retry: undefined };
      mine.push(watcher);
      let set = this.watchers.get(topic);
      if (set === undefined) this.watchers.set(topic, (set = new Set()));
      set.add(watcher);
      this.snapshot(topic, watcher);
    }
    this.bySession.set(session.id, mine);
  }

  /**
   * Stops listening. The leaves still waiting for the leave delay are told now when nobody else
   * would tell them (one process); with a shared store they are left to this instance's lease.
   */
  async close(): Promise<void> {
    const flush = !this.options.store.leasesOutliveProcess;
    this.members.close(flush);
    this.occupancy.close(flush);
    for (const watchers of this.bySession.values()) for (const watcher of watchers) this.options.timers.clearTimeout(watcher.retry);
    // Let the store tell its last changes, so their webhooks are queued before the dispatcher closes.
    if (flush) await new Promise((resolve) => setImmediate(resolve));
    this.stopListening();
  }

  private snapshot(topic: string, watcher: Watcher): void {
    watcher.pending = [];
    this.options.store.members(topic, { limit: this.options.pageSize }).then(
      (page) => {
        if (watcher.session.closed || !this.watchers.get(topic)?.has(watcher)) return;
        watcher.session.sendControl(
          presenceSnapshotEvent({
            topic,
            count: page.count,
            members: page.members.map((member) => ({ subject: member.subject, since: new Date(member.since).toISOString() })),
            next: page.next,
          }),
        );
        const waiting = watcher.pending ?? [];
        watcher.pending = undefined;
        watcher.floor = parseEventId(page.version);
        for (const change of waiting) this.deliver(watcher, change, frameOf(change)!);
      },
      (error: Error) => {
        this.options.onError(error);
        if (watcher.session.closed) return;
        watcher.retry = this.options.timers.setTimeout(() => {
          if (this.watchers.get(topic)?.has(watcher)) this.snapshot(topic, watcher);
        }, SNAPSHOT_RETRY_MS);
      },
    );
  }

  private unwatch(session: PresenceSession): void {
    const mine = this.bySession.get(session.id);
    if (mine === undefined) return;
    this.bySession.delete(session.id);
    session.presenceTopics.forEach((topic, index) => {
      const watcher = mine[index]!;
      this.options.timers.clearTimeout(watcher.retry);
      const set = this.watchers.get(topic);
      if (set?.delete(watcher) === true && set.size === 0) this.watchers.delete(topic);
    });
  }

  private changed(change: PresenceChange): void {
    if (change.local) {
      const { version: _version, local: _local, ...event } = change;
      this.options.webhooks.enqueue(event);
    }
    if (change.kind !== 'member-added' && change.kind !== 'member-removed') return;
    const watching = this.watchers.get(change.topic);
    if (watching === undefined) return;
    const frame = frameOf(change)!;
    for (const watcher of watching) {
      if (watcher.pending !== undefined) watcher.pending.push(change);
      else this.deliver(watcher, change, frame);
    }
  }

  /** Writes a change the watcher's snapshot does not already reflect. */
  private deliver(watcher: Watcher, change: PresenceChange, frame: string): void {
    if (watcher.floor !== undefined) {
      if (compareEventIds(parseEventId(change.version)!, watcher.floor) <= 0) return;
      watcher.floor = undefined;
    }
    watcher.session.sendControl(frame);
  }
}

/** The stream event for a membership change, serialised once for every stream that watches its topic. */
function frameOf(change: PresenceChange): string | undefined {
  if (change.kind === 'member-added') return presenceJoinEvent(change.topic, change.subject, change.at);
  if (change.kind === 'member-removed') return presenceLeaveEvent(change.topic, change.subject, change.reason);
  return undefined;
}
