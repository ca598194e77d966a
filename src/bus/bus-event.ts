import { frameEvent } from '../sse/frame.js';
import type { BusEvent } from './event-bus.js';
import { formatEventId, type EventIdParts } from './event-id.js';

/** Builds an immutable event and its SSE frame: the one serialisation every subscriber shares. */
export function createBusEvent(fields: {
  idParts: EventIdParts;
  topics: readonly string[];
  type: string;
  data: string;
  publishedAt: number;
}): BusEvent {
  const id = formatEventId(fields.idParts);
  const frame = Buffer.from(frameEvent({ id, event: fields.type, data: fields.data }), 'utf8');
  return Object.freeze({
    id,
    idParts: fields.idParts,
    topics: Object.freeze([...fields.topics]),
    type: fields.type,
    data: fields.data,
    publishedAt: fields.publishedAt,
    frame,
  });
}
