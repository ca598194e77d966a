import { randomBytes } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import type { RedisTarget } from '../../redis-target.js';
import type {
  ConnectionPage,
  ConnectionRecord,
  MemberPage,
  MemberRemovedReason,
  PageRequest,
  PresenceChange,
  PresenceStore,
  TopicPage,
} from '../../presence/presence-store.js';
import { systemTimers, type WebhookTimers } from '../../webhooks/webhook-timers.js';
import { connectRedis, type RedisClient } from './connect.js';
import { orUnavailable } from './redis-unavailable-error.js';
import { StreamTailer, type StreamEntry } from './stream-tailer.js';

export interface RedisPresenceOptions {
  /** A `commands` connection, shared; not closed here. */
  readonly commands: RedisClient;
  /** A dedicated `blocking` connection for the change tail; closed by `stop`. */
  readonly blocking: RedisClient;
  readonly keyPrefix: string;
  /** This instance's name, as connection records and webhooks show it. */
  readonly instance: string;
  /** PRESENCE_LEASE: what this instance holds lapses this long after its last renewal. */
  readonly leaseMs: number;
  /** PRESENCE_LEAVE_DELAY: on a graceful stop the lease is cut to this, so members that reconnect elsewhere stay. */
  readonly leaveDelayMs: number;
  readonly clock?: () => number;
  /** The injectable timer shape of the webhook dispatcher (one fake serves both in tests). */
  readonly timers?: WebhookTimers;
  readonly onError: (error: Error) => void;
}

/**
 * Opens presence on its own tail connection and starts it (the backend's one call): what it
 * connected is closed again if the start fails.
 */
export async function openRedisPresence(
  options: Omit<RedisPresenceOptions, 'blocking'> & { readonly target: RedisTarget | string },
): Promise<RedisPresence> {
  const blocking = await connectRedis(options.target, 'blocking', options.onError);
  const presence = new RedisPresence({ ...options, blocking });
  try {
    await presence.start();
  } catch (error) {
    blocking.disconnect();
    throw error;
  }
  return presence;
}

/** Changes kept in the stream: enough for a tail that paused for a moment, bounded whatever happens. */
const CHANGES_MAXLEN = 10_000;
/** Entries of lapsed leases removed per reaping round, so one round never holds Redis for long. */
const REAP_BATCH = 256;
const REAP_BUDGET = 4096;
/** How long a stop waits for Redis to take the shortened lease. */
const STOP_TIMEOUT_MS = 1000;

/*
 * Every key lives under one hash tag, `{presence}`, so each script's keys are in one slot and the
 * same scripts run on Redis Cluster (on one shard: presence costs a few commands per join and
 * leave, never per event). Layout, after `<prefix>{presence}:`:
 *   leases            zset   lease id -> expiry (epoch ms)
 *   held:<lease>      set    what one instance holds: `m <subject> <topic>`, `o <selector>`, `c <subject> <connectionId>`
 *   m:<topic>         zset   the topic's members (score 0, byte order)
 *   h:<topic>         hash   n:<subject> -> holders (instances), s:<subject> -> since (epoch ms)
 *   topics            zset   topics with members (score 0)
 *   occupancy         hash   selector -> holders
 *   c:<subject>       hash   connectionId -> {"topics","openedAt","instance"}
 *   subjects          zset   subjects with open connections (score 0)
 *   stats             hash   members -> members over all topics
 *   changes           stream every change, for every instance's tail
 *
 * KEYS of HOLD and DROP: leases, held:<lease>, changes, stats, then per kind
 *   m: m:<topic>, h:<topic>, topics    o: occupancy    c: c:<subject>, subjects
 * ARGV: lease, now, kind, entry, maxlen, mode (DROP: release | reap), origin, then per kind
 *   m: topic, subject    o: selector    c: subject, connectionId, record (HOLD)
 */

/** Adds one entry to an instance's holdings; the first holder over all instances makes the change. -1: the lease is gone. */
const HOLD = `
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not lease) or tonumber(lease) <= tonumber(ARGV[2]) then return -1 end
if redis.call('SADD', KEYS[2], ARGV[4]) == 0 then return 0 end
local kind = ARGV[3]
if kind == 'm' then
  local topic, subject = ARGV[8], ARGV[9]
  if redis.call('HINCRBY', KEYS[6], 'n:' .. subject, 1) == 1 then
    redis.call('ZADD', KEYS[5], 0, subject)
    redis.call('HSET', KEYS[6], 's:' .. subject, ARGV[2])
    redis.call('ZADD', KEYS[7], 0, topic)
    redis.call('HINCRBY', KEYS[4], 'members', 1)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'k', 'member-added', 't', topic, 's', subject, 'a', ARGV[2], 'o', ARGV[7])
  end
elseif kind == 'o' then
  if redis.call('HINCRBY', KEYS[5], ARGV[8], 1) == 1 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'k', 'topic-occupied', 't', ARGV[8], 'a', ARGV[2], 'o', ARGV[7])
  end
else
  redis.call('HSET', KEYS[5], ARGV[9], ARGV[10])
  redis.call('ZADD', KEYS[6], 0, ARGV[8])
end
return 1
`;

/**
 * Removes one entry from an instance's holdings; the last holder to go makes the change. In
 * `reap` mode only while the holder's lease is still lapsed (it may have come back), and the
 * entry is removed by exactly one caller however many reap at once (SREM), so each lapsed
 * member is told once.
 */
const DROP = `
if ARGV[6] == 'reap' then
  local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if lease and tonumber(lease) > tonumber(ARGV[2]) then return 0 end
end
if redis.call('SREM', KEYS[2], ARGV[4]) == 0 then return 0 end
local reason = 'left'
if ARGV[6] == 'reap' then reason = 'lease_expired' end
local kind = ARGV[3]
if kind == 'm' then
  local topic, subject = ARGV[8], ARGV[9]
  if redis.call('HINCRBY', KEYS[6], 'n:' .. subject, -1) <= 0 then
    redis.call('HDEL', KEYS[6], 'n:' .. subject, 's:' .. subject)
    redis.call('ZREM', KEYS[5], subject)
    if redis.call('ZCARD', KEYS[5]) == 0 then redis.call('ZREM', KEYS[7], topic) end
    redis.call('HINCRBY', KEYS[4], 'members', -1)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'k', 'member-removed', 't', topic, 's', subject, 'r', reason, 'a', ARGV[2], 'o', ARGV[7])
  end
elseif kind == 'o' then
  if redis.call('HINCRBY', KEYS[5], ARGV[8], -1) <= 0 then
    redis.call('HDEL', KEYS[5], ARGV[8])
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'k', 'topic-vacated', 't', ARGV[8], 'a', ARGV[2], 'o', ARGV[7])
  end
else
  local record = redis.call('HGET', KEYS[5], ARGV[9])
  redis.call('HDEL', KEYS[5], ARGV[9])
  if redis.call('HLEN', KEYS[5]) == 0 then redis.call('ZREM', KEYS[6], ARGV[8]) end
  if ARGV[6] == 'reap' and record then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'k', 'disconnected', 's', ARGV[8], 'c', ARGV[9], 'p', record, 'r', reason, 'a', ARGV[2], 'o', ARGV[7])
  end
end
return 1
`;

/** Extends a live lease; 0 when it had lapsed (the instance must register again and repair what it holds). */
const RENEW = `
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not lease) or tonumber(lease) <= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`;

/** Forgets a lapsed lease once everything it held has been reaped. */
const FORGET = `
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if lease and tonumber(lease) > tonumber(ARGV[2]) then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

/** One page of a topic's members with the version of the newest change, read in one step. */
const READ_MEMBERS = `
local subjects = redis.call('ZRANGE', KEYS[1], ARGV[1], '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[2]))
local since = {}
for i, subject in ipairs(subjects) do since[i] = redis.call('HGET', KEYS[2], 's:' .. subject) or '0' end
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local version = '0-0'
if #last > 0 then version = last[1][1] end
return { subjects, since, redis.call('ZCARD', KEYS[1]), version }
`;

type Script = 'notifyPresenceHold' | 'notifyPresenceDrop' | 'notifyPresenceRenew' | 'notifyPresenceForget' | 'notifyPresenceRead';
type Scripted<T> = T & Record<Script, (...args: Array<string | number>) => Promise<unknown>>;

/** What one holding entry means, and the keys and arguments its scripts take. */
interface Entry {
  readonly kind: 'm' | 'o' | 'c';
  readonly keys: readonly string[];
  /** After lease, now, kind, entry, maxlen, mode, origin. */
  readonly args: readonly string[];
}

/**
 * Presence over every instance on Redis (issue 15). Each instance holds its entries under a
 * lease it renews every quarter of `leaseMs`; every instance reaps lapsed leases every tenth of
 * it, so the members, occupancy and connections of an instance that crashed are removed within
 * 1.1 × `leaseMs` of its last renewal, each change told once (by the reaper). Lease times are
 * judged by the instances' clocks (ARGV, not Redis's TIME, so tests can drive them with a fake
 * clock): instances must agree on the time to well within a second, as token expiry already
 * requires.
 *
 * Writes go on the shared command connection, which fails fast while Redis is down; a write
 * that failed, or a lease found lapsed, marks the instance for repair: at its next renewal it
 * registers again and makes Redis hold exactly what it holds (every script is idempotent on the
 * holdings set, so a repair racing ordinary writes changes nothing twice). Changes travel on a
 * Redis stream that every instance tails on its own connection, resuming after the last entry
 * it read.
 */
export class RedisPresence implements PresenceStore {
  readonly leasesOutliveProcess = true;
  private readonly leaseId = randomBytes(9).toString('base64url');
  private readonly base: string;
  private readonly clock: () => number;
  private readonly timers: WebhookTimers;
  private readonly commands: Scripted<RedisClient>;
  /** What this instance holds: entry -> its scripts' keys and arguments. */
  private readonly held = new Map<string, Entry>();
  private readonly listeners = new Set<(change: PresenceChange) => void>();
  private tailer: StreamTailer | undefined;
  private renewTimer: unknown;
  private reapTimer: unknown;
  private needsRepair = false;
  private repairing: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: RedisPresenceOptions) {
    this.base = `${options.keyPrefix}{presence}:`;
    this.clock = options.clock ?? Date.now;
    this.timers = options.timers ?? systemTimers;
    this.commands = options.commands as Scripted<RedisClient>;
    options.commands.defineCommand('notifyPresenceHold', { lua: HOLD });
    options.commands.defineCommand('notifyPresenceDrop', { lua: DROP });
    options.commands.defineCommand('notifyPresenceRenew', { numberOfKeys: 1, lua: RENEW });
    options.commands.defineCommand('notifyPresenceForget', { numberOfKeys: 2, lua: FORGET });
    options.commands.defineCommand('notifyPresenceRead', { numberOfKeys: 3, lua: READ_MEMBERS, readOnly: true });
  }

  /** Registers this instance's lease, follows the changes from now on, and reaps what crashed instances left. */
  async start(): Promise<void> {
    await this.options.commands.zadd(this.key('leases'), this.clock() + this.options.leaseMs, this.leaseId);
    const last = (await this.options.commands.xrevrange(this.key('changes'), '+', '-', 'COUNT', 1)) as StreamEntry[];
    this.tailer = new StreamTailer(
      this.options.blocking,
      this.key('changes'),
      last[0]?.[0] ?? '0-0',
      (entries) => this.dispatch(entries),
      this.options.onError,
    );
    this.tailer.start();
    this.scheduleRenew();
    this.scheduleReap(0);
  }

  /**
   * Stops renewing and cuts the lease to the leave delay: members who reconnect to another
   * instance within it stay present; the others are removed by whichever instance reaps first.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.clearTimeout(this.renewTimer);
    this.timers.clearTimeout(this.reapTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.options.commands.zadd(this.key('leases'), 'XX', this.clock() + this.options.leaveDelayMs, this.leaseId).catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    await this.tailer?.stop();
  }

  addMember(topic: string, subject: string): void {
    this.hold(`m ${subject} ${topic}`, this.memberEntry(topic, subject));
  }

  removeMember(topic: string, subject: string): void {
    this.release(`m ${subject} ${topic}`);
  }

  occupy(selector: string): void {
    this.hold(`o ${selector}`, { kind: 'o', keys: [this.key('occupancy')], args: [selector] });
  }

  vacate(selector: string): void {
    this.release(`o ${selector}`);
  }

  openConnection(connection: Omit<ConnectionRecord, 'instance'>): void {
    const record = JSON.stringify({ topics: connection.topics, openedAt: connection.openedAt, instance: this.options.instance });
    const entry = this.connectionEntry(connection.subject, connection.connectionId);
    this.hold(`c ${connection.subject} ${connection.connectionId}`, { ...entry, args: [...entry.args, record] });
  }

  closeConnection(subject: string, connectionId: string): void {
    this.release(`c ${subject} ${connectionId}`);
  }

  async members(topic: string, page: PageRequest): Promise<MemberPage> {
    const reply = (await orUnavailable(() =>
      this.commands.notifyPresenceRead(
        this.key(`m:${topic}`),
        this.key(`h:${topic}`),
        this.key('changes'),
        page.after === undefined ? '-' : `(${page.after}`,
        page.limit + 1,
      ),
    )) as [string[], string[], number, string];
    const [subjects, since, count, version] = reply;
    const members = subjects.slice(0, page.limit).map((subject, i) => ({ subject, since: Number(since[i]) }));
    return { members, count, next: subjects.length > page.limit ? members.at(-1)!.subject : undefined, version };
  }

  async topics(page: PageRequest): Promise<TopicPage> {
    const names = await this.range('topics', page);
    const counts = await this.exec(names.slice(0, page.limit), (pipeline, topic) => pipeline.zcard(this.key(`m:${topic}`)));
    const topics = names.slice(0, page.limit).map((topic, i) => ({ topic, count: Number(counts[i] ?? 0) }));
    return { topics, next: names.length > page.limit ? topics.at(-1)!.topic : undefined };
  }

  async connections(page: PageRequest, subject?: string): Promise<ConnectionPage> {
    const names = subject === undefined ? await this.range('subjects', page) : [subject];
    const shown = names.slice(0, page.limit);
    const hashes = await this.exec(shown, (pipeline, name) => pipeline.hgetall(this.key(`c:${name}`)));
    const subjects = shown.map((name, i) => ({
      subject: name,
      connections: Object.entries((hashes[i] ?? {}) as Record<string, string>)
        .map(([connectionId, json]) => ({
          connectionId,
          subject: name,
          ...(JSON.parse(json) as Omit<ConnectionRecord, 'connectionId' | 'subject'>),
        }))
        .sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1)),
    }));
    return { subjects, next: subject === undefined && names.length > page.limit ? shown.at(-1) : undefined };
  }

  async memberCount(): Promise<number> {
    return Number((await orUnavailable(() => this.options.commands.hget(this.key('stats'), 'members'))) ?? 0);
  }

  onChange(listener: (change: PresenceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private key(name: string): string {
    return `${this.base}${name}`;
  }

  private memberEntry(topic: string, subject: string): Entry {
    return { kind: 'm', keys: [this.key(`m:${topic}`), this.key(`h:${topic}`), this.key('topics')], args: [topic, subject] };
  }

  private connectionEntry(subject: string, connectionId: string): Entry {
    return { kind: 'c', keys: [this.key(`c:${subject}`), this.key('subjects')], args: [subject, connectionId] };
  }

  /** What an entry of any instance's holdings means (for repair and reaping). */
  private parseEntry(entry: string): Entry | undefined {
    const [kind, first, ...rest] = entry.split(' ');
    if (first === undefined) return undefined;
    if (kind === 'o' && rest.length === 0) return { kind: 'o', keys: [this.key('occupancy')], args: [first] };
    if (kind === 'm' && rest.length === 1) return this.memberEntry(rest[0]!, first);
    if (kind === 'c' && rest.length === 1) return this.connectionEntry(first, rest[0]!);
    return undefined;
  }

  private scriptArgs(lease: string, entryText: string, entry: Entry, mode: 'hold' | 'release' | 'reap'): Array<string | number> {
    const keys = [this.key('leases'), this.key(`held:${lease}`), this.key('changes'), this.key('stats'), ...entry.keys];
    const args = [lease, this.clock(), entry.kind, entryText, CHANGES_MAXLEN, mode, this.leaseId, ...entry.args];
    return [keys.length, ...keys, ...args];
  }

  private hold(text: string, entry: Entry): void {
    if (this.stopped || this.held.has(text)) return;
    this.held.set(text, entry);
    this.commands.notifyPresenceHold(...this.scriptArgs(this.leaseId, text, entry, 'hold')).then(
      (result) => {
        if (result === -1) this.needsRepair = true;
      },
      (error: Error) => this.failed(error),
    );
  }

  private release(text: string): void {
    const entry = this.held.get(text);
    if (this.stopped || entry === undefined) return;
    this.held.delete(text);
    this.commands.notifyPresenceDrop(...this.scriptArgs(this.leaseId, text, entry, 'release')).catch((error: Error) => this.failed(error));
  }

  private failed(error: Error): void {
    this.needsRepair = true;
    this.options.onError(error);
  }

  private scheduleRenew(): void {
    if (this.stopped) return;
    this.renewTimer = this.timers.setTimeout(() => {
      void this.renew().finally(() => this.scheduleRenew());
    }, this.options.leaseMs / 4);
  }

  /** Extends the lease, or registers again and repairs when it had lapsed. Runs every quarter of the lease (public for tests). */
  async renew(): Promise<void> {
    try {
      const now = this.clock();
      const alive = await this.commands.notifyPresenceRenew(this.key('leases'), this.leaseId, now, now + this.options.leaseMs);
      if (alive !== 1) this.needsRepair = true;
      if (this.needsRepair) await this.repair();
    } catch (error) {
      this.failed(error as Error);
    }
  }

  /** Registers the lease again and makes Redis hold exactly what this instance holds. */
  private repair(): Promise<void> {
    this.repairing ??= (async () => {
      this.needsRepair = false;
      try {
        await this.options.commands.zadd(this.key('leases'), this.clock() + this.options.leaseMs, this.leaseId);
        const stored = new Set(await this.options.commands.smembers(this.key(`held:${this.leaseId}`)));
        const pipeline = this.options.commands.pipeline() as Scripted<ChainableCommander>;
        for (const [text, entry] of this.held) {
          if (!stored.has(text)) void pipeline.notifyPresenceHold(...this.scriptArgs(this.leaseId, text, entry, 'hold'));
        }
        for (const text of stored) {
          const entry = this.held.has(text) ? undefined : this.parseEntry(text);
          if (entry !== undefined) void pipeline.notifyPresenceDrop(...this.scriptArgs(this.leaseId, text, entry, 'release'));
        }
        const results = (await pipeline.exec()) ?? [];
        for (const [error] of results) if (error !== null) throw error;
      } catch (error) {
        this.failed(error as Error);
      } finally {
        this.repairing = undefined;
      }
    })();
    return this.repairing;
  }

  private scheduleReap(ms: number): void {
    if (this.stopped) return;
    this.reapTimer = this.timers.setTimeout(() => {
      void this.reap()
        .catch((error: Error) => this.options.onError(error))
        .finally(() => this.scheduleReap(Math.max(100, this.options.leaseMs / 10)));
    }, ms);
  }

  /**
   * Removes what lapsed leases held, a bounded batch per round, each entry by exactly one reaper.
   * Runs every tenth of the lease (public for tests).
   */
  async reap(): Promise<void> {
    let budget = REAP_BUDGET;
    const lapsed = await this.options.commands.zrangebyscore(this.key('leases'), '-inf', this.clock(), 'LIMIT', 0, 8);
    for (const lease of lapsed) {
      if (lease === this.leaseId) continue; // our own lapsed lease is repaired at the next renewal, not reaped
      while (budget > 0 && !this.stopped) {
        const entries = await this.options.commands.srandmember(this.key(`held:${lease}`), REAP_BATCH);
        if (entries.length === 0) {
          await this.commands.notifyPresenceForget(this.key('leases'), this.key(`held:${lease}`), lease, this.clock());
          break;
        }
        budget -= entries.length;
        const pipeline = this.options.commands.pipeline() as Scripted<ChainableCommander>;
        for (const text of entries) {
          const entry = this.parseEntry(text);
          if (entry !== undefined) void pipeline.notifyPresenceDrop(...this.scriptArgs(lease, text, entry, 'reap'));
          else void pipeline.srem(this.key(`held:${lease}`), text);
        }
        await pipeline.exec();
      }
    }
  }

  private dispatch(entries: StreamEntry[]): void {
    for (const [version, fields] of entries) {
      const change = this.parseChange(version, fields);
      if (change === undefined) continue;
      for (const listener of this.listeners) listener(change);
    }
  }

  private parseChange(version: string, fields: string[]): PresenceChange | undefined {
    const field: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) field[fields[i]!] = fields[i + 1]!;
    const base = { at: Number(field.a), version, local: field.o === this.leaseId };
    const topic = field.t ?? '';
    const subject = field.s ?? '';
    switch (field.k) {
      case 'member-added':
        return { ...base, kind: 'member-added', topic, subject };
      case 'member-removed':
        return { ...base, kind: 'member-removed', topic, subject, reason: field.r as MemberRemovedReason };
      case 'topic-occupied':
        return { ...base, kind: 'topic-occupied', topic };
      case 'topic-vacated':
        return { ...base, kind: 'topic-vacated', topic };
      case 'disconnected': {
        const record = JSON.parse(field.p ?? '{}') as { topics?: string[] };
        return {
          ...base,
          kind: 'disconnected',
          subject,
          connectionId: field.c ?? '',
          topics: record.topics ?? [],
          reason: 'lease_expired',
        };
      }
      default:
        return undefined;
    }
  }

  /** Keys of a zset of names (score 0) after `page.after`, one more than the page to know whether another follows. */
  private range(name: 'topics' | 'subjects', page: PageRequest): Promise<string[]> {
    return orUnavailable(() =>
      this.options.commands.zrange(
        this.key(name),
        page.after === undefined ? '-' : `(${page.after}`,
        '+',
        'BYLEX',
        'LIMIT',
        0,
        page.limit + 1,
      ),
    );
  }

  private exec(names: readonly string[], command: (pipeline: ChainableCommander, name: string) => unknown): Promise<unknown[]> {
    if (names.length === 0) return Promise.resolve([]);
    const pipeline = this.options.commands.pipeline();
    for (const name of names) command(pipeline, name);
    return orUnavailable(async () =>
      ((await pipeline.exec()) ?? []).map(([error, value]) => {
        if (error !== null) throw error;
        return value;
      }),
    );
  }
}
