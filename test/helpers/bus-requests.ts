import type { PublishRequest, ReplayResult } from '../../src/bus/event-bus.js';

/** A publish of `{ topics }` as JSON to `topics` by publisher `p`, with any field overridden. */
export const publishRequest = (topics: string[], extra: Partial<PublishRequest> = {}): PublishRequest => ({
  topics,
  type: 'message',
  data: JSON.stringify({ topics }),
  publisher: 'p',
  ...extra,
});

/** The ids a replay returned; a reset fails the test, naming its reason. */
export const replayedIds = (result: ReplayResult): string[] => {
  if (result.kind !== 'events') throw new Error(`expected events, got a reset (${result.reason})`);
  return result.events.map((event) => event.id);
};
