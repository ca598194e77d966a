import { randomBytes } from 'node:crypto';
import { compareEventIds, parseEventId, type EventIdParts } from '../../bus/event-id.js';
import type { BusKeys } from './bus-keys.js';
import type { RedisClient } from './connect.js';
import type { StreamEntry } from './stream-tailer.js';

/** One entry read from a partition log. */
export interface LogRecord {
  readonly id: string;
  readonly idParts: EventIdParts;
  readonly partition: number;
  readonly fields: string[];
}

/** Entries of a partition log that this instance did not read and the log no longer holds: `(after, through]`. */
export interface LogGap {
  readonly partition: number;
  readonly after: string;
  readonly through: string;
}

/**
 * Takes one batch, in id order over all followed partitions, and the gaps found before it. Resolves
 * once it has been handled; if it rejects (Redis went away during a repair), the same range is read
 * again.
 */
type BatchHandler = (records: LogRecord[], gaps: LogGap[]) => Promise<void>;

/** Entries read per partition and round: big enough to catch up quickly, small enough to keep one dispatch short. */
const BATCH = 500;
/** A blocked read returns at least this often, so a stop is noticed even if a disconnect were lost. */
const BLOCK_MS = 5000;
const RETRY_PAUSE_MS = 200;
/** The wake-up stream lapses this long after its last write (an instance that died leaves nothing behind). */
const WAKE_TTL_MS = 60_000;

/**
 * Follows the partition logs this instance has subscribers for, each from its own cursor, with one
 * blocking `XREAD` over all of them per round (see `round` for why its answer is always safe to
 * hand on in order). A publish's XADD wakes it; so does a write to the instance's own wake-up
 * stream when it starts following another partition.
 *
 * Order: ids are issued by one script in one hash slot, so they are totally ordered over all
 * partitions. A read returns, for each followed log, the entries after its cursor at one instant;
 * where a log filled the batch, only entries up to the smallest such batch end are handed on (the
 * rest are read again), so every batch is complete up to its last id and batches follow one
 * another in id order. A partition followed anew starts at the newest id this instance has seen,
 * so nothing older than what it already delivered can follow.
 *
 * Gaps: each log entry names the previous entry of its log. If the first entry read after a cursor
 * names a newer previous entry than the cursor, the entries in between were trimmed before this
 * instance read them (it was stopped, cut off, or slower than `REDIS_STREAM_MAXLEN` allows): the
 * gap goes to the handler, which repairs it from per-topic history or resets the streams that
 * lost events. Never a silent gap.
 */
export class PartitionPuller {
  private readonly instance = randomBytes(8).toString('base64url');
  private readonly cursors = new Map<number, string>();
  private wakeId = '0-0';
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly stopping: Promise<null>;
  private signalStop!: () => void;
  /** Set when the read connection failed: on the next round, check whether a log went backwards (a failover lost entries). */
  private resync = false;
  private layout: { partitions: number[]; keys: string[]; partitionOf: Map<string, number> } | undefined;

  constructor(
    private readonly blocking: RedisClient,
    private readonly commands: RedisClient,
    private readonly keys: BusKeys,
    private readonly onBatch: BatchHandler,
    private readonly onError: (error: Error) => void,
    /** Told after each round's cursors moved (publishes waiting for their own event). */
    private readonly onAdvanced: () => void,
    /** Told when a log went backwards to `to` (a failover lost entries): ids from there on are new again. */
    private readonly onRewind: (to: string) => void = () => undefined,
  ) {
    this.stopping = new Promise((resolve) => (this.signalStop = () => resolve(null)));
  }

  /** The partitions followed now. */
  get followed(): ReadonlySet<number> {
    return new Set(this.cursors.keys());
  }

  /** Everything in `partition`'s log up to this id has been handed on; `undefined` when it is not followed. */
  position(partition: number): string | undefined {
    return this.cursors.get(partition);
  }

  /** Starts following `partition` after `from` (no-op if followed already) and wakes the blocked read. */
  follow(partition: number, from: string): void {
    if (this.cursors.has(partition)) return;
    this.cursors.set(partition, from);
    this.layout = undefined;
    this.wake();
  }

  /** Stops following `partition`; its entries are no longer read. */
  unfollow(partition: number): void {
    if (this.cursors.delete(partition)) this.layout = undefined;
  }

  /** The keys one round reads and the partition of each, rebuilt only when the followed set changes (a round runs per event). */
  private readLayout(): { partitions: number[]; keys: string[]; partitionOf: Map<string, number> } {
    if (this.layout === undefined) {
      const partitions = [...this.cursors.keys()];
      const keys = [this.keys.wake(this.instance), ...partitions.map((partition) => this.keys.log(partition))];
      this.layout = { partitions, keys, partitionOf: new Map(partitions.map((partition, i) => [keys[i + 1]!, partition])) };
    }
    return this.layout;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop();
    this.blocking.disconnect();
    await this.running;
    // The wake-up stream lapses by itself if this fails.
    await this.commands.del(this.keys.wake(this.instance)).catch(() => undefined);
  }

  private wake(): void {
    const key = this.keys.wake(this.instance);
    this.commands
      .multi()
      .xadd(key, 'MAXLEN', '~', 10, '*', 'w', '1')
      .pexpire(key, WAKE_TTL_MS)
      .exec()
      .catch((error: Error) => this.onError(error));
  }

  private async pause(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, RETRY_PAUSE_MS))), this.stopping]);
    clearTimeout(timer);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.resync) await this.checkForRewind();
        await this.round();
      } catch (error) {
        if (this.stopped) return;
        this.resync = true;
        this.onError(error as Error);
        await this.pause();
      }
    }
  }

  /**
   * After a lost connection: a log whose newest entry is now older than this instance's cursor
   * lost entries (a failover to a replica that had not received them). Moving the cursor back to
   * what the log holds lets the entries the new primary appends be read, even if its clock gave
   * them ids no newer than the lost ones.
   */
  private async checkForRewind(): Promise<void> {
    const partitions = [...this.cursors.keys()];
    if (partitions.length > 0) {
      const newest = await this.commands.hmget(this.keys.meta, ...partitions.map((partition) => `p${partition}`));
      partitions.forEach((partition, i) => {
        const cursor = this.cursors.get(partition);
        const held = parseEventId(newest[i] ?? '0-0') ?? { ms: 0, seq: 0 };
        if (cursor !== undefined && compareEventIds(held, parseEventId(cursor)!) < 0) {
          this.cursors.set(partition, newest[i] ?? '0-0');
          this.onRewind(newest[i] ?? '0-0');
        }
      });
    }
    this.resync = false;
  }

  /**
   * One round: one `XREAD ... BLOCK` over every followed log. If any log has entries past its
   * cursor when the read arrives, Redis answers at once with all of them (one instant for every
   * log: a snapshot). Otherwise it blocks, and the first publish that writes a followed log wakes
   * it with that one log's entries, from that one script (Redis serves a blocked reader right
   * after the command that woke it): no other followed log can hold an older unread entry then,
   * since all were drained when the read blocked. The same event in another partition comes in a
   * later round, with an id the bus has delivered already, and is dropped there.
   */
  private async round(): Promise<void> {
    const { partitions, keys: streamKeys, partitionOf } = this.readLayout();
    const readFrom = partitions.map((partition) => this.cursors.get(partition)!);
    const read = this.blocking.xread(
      'COUNT',
      BATCH,
      'BLOCK',
      BLOCK_MS,
      'STREAMS',
      ...streamKeys,
      this.wakeId,
      ...readFrom,
    ) as Promise<Array<[string, StreamEntry[]]> | null>;
    const reply = await Promise.race([read, this.stopping]);
    if (this.stopped || reply === null) return;
    const records: LogRecord[] = [];
    const gaps: LogGap[] = [];
    const from = new Map<number, string>();
    let cut: EventIdParts | undefined;
    let logs = 0;
    for (const [key, entries] of reply) {
      const partition = partitionOf.get(key);
      if (partition === undefined) {
        if (entries.length > 0) this.wakeId = entries.at(-1)![0];
        continue;
      }
      if (entries.length === 0) continue;
      logs++;
      const after = readFrom[partitions.indexOf(partition)]!;
      from.set(partition, after);
      const previous = field(entries[0]![1], 'v') ?? '0-0';
      if (previous !== after && compareEventIds(parseEventId(previous) ?? { ms: 0, seq: 0 }, parseEventId(after)!) > 0) {
        gaps.push({ partition, after, through: previous });
      }
      if (entries.length >= BATCH) {
        const end = parseEventId(entries.at(-1)![0])!;
        if (cut === undefined || compareEventIds(end, cut) < 0) cut = end;
      }
      for (const [id, fields] of entries) records.push({ id, idParts: parseEventId(id)!, partition, fields });
    }
    if (logs === 0) return;
    // One log's entries are in order already; several are merged by id.
    if (logs > 1) records.sort((a, b) => compareEventIds(a.idParts, b.idParts));
    const end = cut;
    const handed = end === undefined ? records : records.filter((record) => compareEventIds(record.idParts, end) <= 0);
    // A gap that ends past the cut waits for the round that reaches it.
    const repairable = end === undefined ? gaps : gaps.filter((gap) => compareEventIds(parseEventId(gap.through)!, end) <= 0);
    const deferred = new Set(gaps.filter((gap) => !repairable.includes(gap)).map((gap) => gap.partition));
    await this.onBatch(handed, repairable);

    const newest = new Map<number, string>();
    for (const record of handed) newest.set(record.partition, record.id);
    for (const gap of repairable) if (!newest.has(gap.partition)) newest.set(gap.partition, gap.through);
    for (const [partition, id] of newest) {
      if (deferred.has(partition)) continue;
      // Unfollowed (or followed anew) meanwhile: leave the cursor the change set.
      if (this.cursors.get(partition) === from.get(partition)) this.cursors.set(partition, id);
    }
    this.onAdvanced();
  }
}

/** A field of a stream entry (`[name, value, name, value, ...]`). */
export function field(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
