import { frameEvent } from '../sse/frame.js';
import { anyMatches, type Selector } from '../topics/selector.js';
import type { BusEvent } from './event-bus.js';
import { formatEventId, type EventIdParts } from './event-id.js';

/**
 * Builds an immutable event and its SSE frames: the one serialisation every subscriber shares.
 *
 * Every delivered event says its topic, in the data: `{"topic":"<topic>","data":<published JSON>}`
 * (EventSource exposes only `data`, `lastEventId` and the type, so the topic has to travel in
 * one of them, and the id and the type are taken). An event published to several topics has one
 * frame per topic, each naming only its own topic: the subscriber learns no topic its selectors
 * do not match (`users/bob/inbox` beside `users/alice/inbox`, say). A subscriber whose selectors
 * match several of the event's topics still gets the event once, in the frame of the first of
 * them in publish order (`frameFor`, and the order `LocalFanout` visits the topics in).
 */
export function createBusEvent(fields: {
  idParts: EventIdParts;
  topics: readonly string[];
  type: string;
  data: string;
  publishedAt: number;
}): BusEvent {
  const id = formatEventId(fields.idParts);
  const frames = fields.topics.map((topic) =>
    Buffer.from(frameEvent({ id, event: fields.type, data: `{"topic":${JSON.stringify(topic)},"data":${fields.data}}` }), 'utf8'),
  );
  return Object.freeze({
    id,
    idParts: fields.idParts,
    topics: Object.freeze([...fields.topics]),
    type: fields.type,
    data: fields.data,
    publishedAt: fields.publishedAt,
    frames: Object.freeze(frames),
  });
}

/**
 * The frame a subscriber with `selectors` gets for `event`: the one of the first topic they
 * match, as live delivery picks it. `undefined` when none matches.
 */
export function frameFor(event: BusEvent, selectors: readonly Selector[]): Buffer | undefined {
  if (event.frames.length === 1) return anyMatches(selectors, event.topics[0]!) ? event.frames[0] : undefined;
  for (let i = 0; i < event.topics.length; i++) if (anyMatches(selectors, event.topics[i]!)) return event.frames[i];
  return undefined;
}
