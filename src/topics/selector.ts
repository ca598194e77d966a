import { InvalidRequestError } from '../errors.js';
import { segmentProblem, splitPath } from './topic.js';

/**
 * A topic selector: a topic name in which a segment may be `*` (exactly one segment) and the last
 * segment may be `**` (one or more further segments, like NATS's `>`). `users/alice/**` matches
 * `users/alice/inbox` and `users/alice/a/b` but not `users/alice` itself; `**` alone matches every
 * topic.
 */
export interface Selector {
  readonly source: string;
  readonly segments: readonly string[];
  /** True when the selector has no wildcard: it matches exactly one topic, its own source. */
  readonly exact: boolean;
  /** True when the selector ends in `**`. */
  readonly tail: boolean;
}

export const ONE = '*';
export const REST = '**';

/**
 * Parses a selector.
 * @throws InvalidRequestError (`invalid_selector`).
 */
export function parseSelector(input: unknown): Selector {
  const segments = splitPath(input, 'selector');
  let exact = true;
  segments.forEach((segment, index) => {
    if (segment === ONE) {
      exact = false;
      return;
    }
    if (segment === REST) {
      if (index !== segments.length - 1) {
        throw new InvalidRequestError('Invalid selector: `**` is only allowed as the last segment.', {
          code: 'invalid_selector',
        });
      }
      exact = false;
      return;
    }
    const problem = segmentProblem(segment);
    if (problem !== undefined) {
      throw new InvalidRequestError(`Invalid selector: ${problem}.`, { code: 'invalid_selector' });
    }
  });
  const tail = segments[segments.length - 1] === REST;
  return Object.freeze({ source: input as string, segments: Object.freeze(segments), exact, tail });
}

/** Does `selector` match the (already validated) topic, given as its segments? */
function matchesSegments(selector: Selector, topic: readonly string[]): boolean {
  const patterns = selector.segments;
  const fixed = selector.tail ? patterns.length - 1 : patterns.length;
  if (selector.tail ? topic.length <= fixed : topic.length !== fixed) return false;
  for (let i = 0; i < fixed; i++) {
    const pattern = patterns[i];
    if (pattern !== ONE && pattern !== topic[i]) return false;
  }
  return true;
}

/** Does `selector` match the (already validated) topic name? */
export function matches(selector: Selector, topic: string): boolean {
  return matchesSegments(selector, topic.split('/'));
}

/**
 * Is every topic that `requested` matches also matched by `granted`? This is how a subscription
 * request is authorised: a wildcard in the request grants nothing that the token's selectors do
 * not already grant.
 */
export function covers(granted: Selector, requested: Selector): boolean {
  const g = granted.segments;
  const r = requested.segments;
  for (let i = 0; i < g.length; i++) {
    const gs = g[i];
    const rs = r[i];
    if (rs === undefined) return false; // requested is shorter than what granted requires
    if (gs === REST) return true; // rs exists, and whatever it is (literal, *, **) it stands for >= 1 segment
    if (rs === REST) return false; // requested matches any length from here; granted has a fixed segment here
    if (gs === ONE) continue; // a literal or `*` both fit one segment
    if (rs !== gs) return false; // granted is a literal: requested must be the same literal
  }
  return r.length === g.length;
}

/** Is `requested` covered by at least one of `granted`? */
export function coveredByAny(granted: readonly Selector[], requested: Selector): boolean {
  for (const selector of granted) if (covers(selector, requested)) return true;
  return false;
}

/** Does any of `granted` match the topic? */
export function anyMatches(granted: readonly Selector[], topic: string): boolean {
  const segments = topic.split('/');
  for (const selector of granted) if (matchesSegments(selector, segments)) return true;
  return false;
}
