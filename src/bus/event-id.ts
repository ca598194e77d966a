/**
 * Event ids are `<milliseconds>-<sequence>`, the shape of Redis stream ids, so the memory bus and
 * the Redis bus share one id scheme: ids only grow, they compare as number pairs, and an id from
 * before this bus started (a previous process, a restarted server) is recognisably old.
 */
export interface EventIdParts {
  readonly ms: number;
  readonly seq: number;
}

const EVENT_ID = /^(\d{1,15})-(\d{1,15})$/;

/** Parses an event id; `undefined` for anything that is not one. */
export function parseEventId(value: string): EventIdParts | undefined {
  const match = EVENT_ID.exec(value);
  if (match === null) return undefined;
  return { ms: Number(match[1]), seq: Number(match[2]) };
}

export function formatEventId(parts: EventIdParts): string {
  return `${parts.ms}-${parts.seq}`;
}

/** Negative, zero or positive as `a` is older than, the same as or newer than `b`. */
export function compareEventIds(a: EventIdParts, b: EventIdParts): number {
  return a.ms === b.ms ? a.seq - b.seq : a.ms - b.ms;
}

/** Issues strictly increasing ids from a clock that may stand still or step back. */
export class EventIdGenerator {
  private last: EventIdParts;

  constructor(
    private readonly clock: () => number,
    start: EventIdParts = { ms: 0, seq: 0 },
  ) {
    this.last = start;
  }

  next(): EventIdParts {
    const now = Math.floor(this.clock());
    this.last = now > this.last.ms ? { ms: now, seq: 0 } : { ms: this.last.ms, seq: this.last.seq + 1 };
    return this.last;
  }
}
