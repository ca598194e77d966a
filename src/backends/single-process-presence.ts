import { formatEventId } from '../bus/event-id.js';
import type {
  ConnectionPage,
  ConnectionRecord,
  MemberPage,
  PageRequest,
  PresenceChange,
  PresenceStore,
  TopicPage,
} from '../presence/presence-store.js';

type ChangeBody = PresenceChange extends infer C ? (C extends PresenceChange ? Omit<C, 'at' | 'version' | 'local'> : never) : never;

/** Keys of `map` after `after`, in byte order, at most `limit`, and the key to continue from. */
function pageOf<V>(map: ReadonlyMap<string, V>, page: PageRequest): { keys: string[]; next: string | undefined } {
  const sorted = [...map.keys()].filter((key) => page.after === undefined || key > page.after).sort();
  const keys = sorted.slice(0, page.limit);
  return { keys, next: sorted.length > page.limit ? keys.at(-1) : undefined };
}

/**
 * Presence on one process: this instance is the only holder, so its first hold is the member's
 * arrival and its release her departure. There are no leases: a process that dies takes its
 * members, its occupancy and its connections with it. Changes reach listeners in a microtask,
 * as they would from a shared store, never from inside the caller's stack.
 */
export class SingleProcessPresence implements PresenceStore {
  readonly leasesOutliveProcess = false;
  /** topic -> subject -> since (epoch ms). */
  private readonly members_ = new Map<string, Map<string, number>>();
  private readonly occupied = new Set<string>();
  /** subject -> connectionId -> record. */
  private readonly connections_ = new Map<string, Map<string, ConnectionRecord>>();
  private readonly listeners = new Set<(change: PresenceChange) => void>();
  private seq = 0;
  private memberTotal = 0;

  constructor(private readonly options: { readonly clock: () => number; readonly instance: string }) {}

  addMember(topic: string, subject: string): void {
    let present = this.members_.get(topic);
    if (present?.has(subject) === true) return;
    if (present === undefined) this.members_.set(topic, (present = new Map<string, number>()));
    const at = this.options.clock();
    present.set(subject, at);
    this.memberTotal++;
    this.emit({ kind: 'member-added', topic, subject }, at);
  }

  removeMember(topic: string, subject: string): void {
    const present = this.members_.get(topic);
    if (present?.delete(subject) !== true) return;
    if (present.size === 0) this.members_.delete(topic);
    this.memberTotal--;
    this.emit({ kind: 'member-removed', topic, subject, reason: 'left' }, this.options.clock());
  }

  occupy(selector: string): void {
    if (this.occupied.has(selector)) return;
    this.occupied.add(selector);
    this.emit({ kind: 'topic-occupied', topic: selector }, this.options.clock());
  }

  vacate(selector: string): void {
    if (!this.occupied.delete(selector)) return;
    this.emit({ kind: 'topic-vacated', topic: selector }, this.options.clock());
  }

  openConnection(connection: Omit<ConnectionRecord, 'instance'>): void {
    let held = this.connections_.get(connection.subject);
    if (held === undefined) this.connections_.set(connection.subject, (held = new Map<string, ConnectionRecord>()));
    held.set(connection.connectionId, { ...connection, topics: [...connection.topics], instance: this.options.instance });
  }

  closeConnection(subject: string, connectionId: string): void {
    const held = this.connections_.get(subject);
    if (held?.delete(connectionId) === true && held.size === 0) this.connections_.delete(subject);
  }

  async members(topic: string, page: PageRequest): Promise<MemberPage> {
    const present = this.members_.get(topic) ?? new Map<string, number>();
    const { keys, next } = pageOf(present, page);
    return {
      members: keys.map((subject) => ({ subject, since: present.get(subject)! })),
      count: present.size,
      next,
      version: this.version(),
    };
  }

  async topics(page: PageRequest): Promise<TopicPage> {
    const { keys, next } = pageOf(this.members_, page);
    return { topics: keys.map((topic) => ({ topic, count: this.members_.get(topic)!.size })), next };
  }

  async connections(page: PageRequest, subject?: string): Promise<ConnectionPage> {
    const list = (name: string) =>
      [...(this.connections_.get(name)?.values() ?? [])].sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1));
    if (subject !== undefined) return { subjects: [{ subject, connections: list(subject) }], next: undefined };
    const { keys, next } = pageOf(this.connections_, page);
    return { subjects: keys.map((name) => ({ subject: name, connections: list(name) })), next };
  }

  async memberCount(): Promise<number> {
    return this.memberTotal;
  }

  onChange(listener: (change: PresenceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private version(): string {
    return formatEventId({ ms: 0, seq: this.seq });
  }

  private emit(body: ChangeBody, at: number): void {
    this.seq++;
    const change = { ...body, at, version: this.version(), local: true } as PresenceChange;
    queueMicrotask(() => {
      for (const listener of this.listeners) listener(change);
    });
  }
}
