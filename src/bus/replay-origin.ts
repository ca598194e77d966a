import { EARLIEST, type ReplayResult } from './event-bus.js';
import { compareEventIds, formatEventId, parseEventId, type EventIdParts } from './event-id.js';

/** Older than every id: where `earliest` replays from. */
const NOTHING_BEFORE: EventIdParts = { ms: 0, seq: 0 };

/** Where a replay starts, or the reset it is before any history is read. */
export type ReplayOrigin =
  | { readonly kind: 'reset'; readonly result: ReplayResult }
  | {
      readonly kind: 'from';
      /** Replay the events after this id. */
      readonly from: EventIdParts;
      /** `since` was `earliest`: everything retained, so no watermark can make it a gap. */
      readonly earliest: boolean;
      /** The answer when history turns out not to cover `from` (a watermark past it). */
      readonly exhausted: ReplayResult;
    };

/**
 * The checks a bus that issues its own ids (memory, SQLite) makes before it reads history: an id
 * that is not one of ours, or newer than the newest (`head`, else `start`), is `unknown_event_id`;
 * one from before this history began (`start`) is `history_exhausted`. Both answers carry the
 * newest id, to move the client's Last-Event-ID forward.
 */
export function replayOrigin(since: string, head: EventIdParts | undefined, start: EventIdParts): ReplayOrigin {
  const headId = head === undefined ? undefined : formatEventId(head);
  const earliest = since === EARLIEST;
  const from = earliest ? NOTHING_BEFORE : parseEventId(since);
  if (from === undefined || compareEventIds(from, head ?? start) > 0) {
    return { kind: 'reset', result: { kind: 'reset', reason: 'unknown_event_id', headId } };
  }
  const exhausted: ReplayResult = { kind: 'reset', reason: 'history_exhausted', headId };
  if (!earliest && compareEventIds(from, start) < 0) return { kind: 'reset', result: exhausted };
  return { kind: 'from', from, earliest, exhausted };
}
