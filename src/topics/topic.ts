import { InvalidRequestError } from '../errors.js';

/**
 * Topic names are `/`-separated paths. The character set is the URL "unreserved" set of RFC 3986
 * §2.3 (letters, digits, `-`, `.`, `_`, `~`): such a name means the same thing in a path, a query
 * string and a JSON body, and needs no normalisation, so two spellings can never name one topic
 * (no percent-encoding, no Unicode look-alikes, no case folding, no `..` tricks).
 */
export const TOPIC_LIMITS = Object.freeze({
  maxLength: 256,
  maxSegments: 16,
  maxSegmentLength: 64,
});

const SEGMENT = /^[A-Za-z0-9._~-]+$/;
const DOTS_ONLY = /^\.+$/;

/** Why a segment is not a valid literal topic segment, or `undefined` when it is. */
export function segmentProblem(segment: string): string | undefined {
  if (segment.length === 0) return 'empty segments are not allowed';
  if (segment.length > TOPIC_LIMITS.maxSegmentLength) {
    return `a segment is longer than ${TOPIC_LIMITS.maxSegmentLength} characters`;
  }
  if (!SEGMENT.test(segment)) return 'only A-Z a-z 0-9 - . _ ~ are allowed in a segment';
  if (DOTS_ONLY.test(segment)) return 'segments made only of dots are not allowed';
  return undefined;
}

/** Splits and checks the overall shape shared by topics and selectors. */
export function splitPath(input: unknown, what: 'topic' | 'selector'): string[] {
  const code = what === 'topic' ? 'invalid_topic' : 'invalid_selector';
  if (typeof input !== 'string' || input.length === 0) {
    throw new InvalidRequestError(`A ${what} must be a non-empty string.`, { code });
  }
  if (input.length > TOPIC_LIMITS.maxLength) {
    throw new InvalidRequestError(`A ${what} is at most ${TOPIC_LIMITS.maxLength} characters.`, { code });
  }
  const segments = input.split('/');
  if (segments.length > TOPIC_LIMITS.maxSegments) {
    throw new InvalidRequestError(`A ${what} has at most ${TOPIC_LIMITS.maxSegments} segments.`, { code });
  }
  return segments;
}

/**
 * Checks a topic name and returns it unchanged.
 * @throws InvalidRequestError (`invalid_topic`) naming what is wrong.
 */
export function parseTopic(input: unknown): string {
  const segments = splitPath(input, 'topic');
  if (segments.some((segment) => segment.includes('*'))) {
    // A publish names exact topics; `*` and `**` belong to selectors (subscriptions, grants).
    throw new InvalidRequestError(
      'Invalid topic: wildcards cannot be published to; * and ** only select topics to subscribe to. Publish to each exact topic.',
      { code: 'invalid_topic' },
    );
  }
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) {
      throw new InvalidRequestError(`Invalid topic: ${problem}.`, { code: 'invalid_topic' });
    }
  }
  return input as string;
}
