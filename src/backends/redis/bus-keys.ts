/**
 * The event log's keys. Every one carries the same hash tag, `{<prefix>bus}`, so they all live in
 * one hash slot: on Redis Cluster that is one primary, and each publish is one atomic script over
 * keys it is given (Cluster refuses scripts whose keys span slots). That slot is the deployment's
 * single issuer of event ids, which is what keeps ids totally ordered across topics
 * (docs/architecture.md, "Ids"). Every other piece of state (refresh tokens, slots, counters)
 * hashes by its own subject or family and spreads over the primaries.
 */
export class BusKeys {
  private readonly base: string;

  constructor(
    readonly prefix: string,
    readonly partitions: number,
  ) {
    this.base = `${prefix}{${prefix}bus}`;
  }

  /** Hash: last (newest id issued), start (the first id ever), evicted, held, partitions, p<n> (newest id in partition n's log). */
  get meta(): string {
    return `${this.base}:meta`;
  }

  /**
   * Sorted set: topic -> its newest event's id as a number, `ms * 1000 + min(seq, 999)` (exact
   * below 2^53): least recently published first, for HISTORY_MAX_TOPICS; a replay reads only the
   * topics published since its id.
   */
  get topics(): string {
    return `${this.base}:topics`;
  }

  /** Hash: topic -> the newest id trimmed from its history (a replay from before it may have lost events). */
  get trimmed(): string {
    return `${this.base}:trimmed`;
  }

  /** One topic's history: a stream of at most HISTORY_SIZE events younger than HISTORY_TTL. */
  topic(topic: string): string {
    return `${this.base}:t:${topic}`;
  }

  /** A partition's delivery log: every event on a topic of the partition, once, each naming the previous entry (`v`). */
  log(partition: number): string {
    return `${this.base}:p:${partition}`;
  }

  /** An instance's wake-up stream: written to interrupt its blocking read when it starts following another partition. */
  wake(instance: string): string {
    return `${this.base}:wake:${instance}`;
  }

  /** The score `topics` gives an id's millisecond: every id in it scores at least this. */
  static score(ms: number): number {
    return ms * 1000;
  }

  idempotency(digest: string): string {
    return `${this.base}:idem:${digest}`;
  }

  /** The partition a topic's events are delivered through: FNV-1a over its UTF-16 code units, the same on every instance. */
  partitionOf(topic: string): number {
    let hash = 0x811c9dc5;
    for (let i = 0; i < topic.length; i++) {
      hash ^= topic.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    return (hash >>> 0) % this.partitions;
  }
}
