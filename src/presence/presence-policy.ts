import { z } from 'zod';
import type { AccessClaims } from '../auth/token-service.js';
import { BearerError, InvalidRequestError } from '../errors.js';
import { anyMatches, matches, parseSelector, type Selector } from '../topics/selector.js';

/**
 * Which topics carry presence, and who may read it (`PRESENCE_FILE`, issue 15). Presence is opt-in
 * per topic pattern: a subscriber to a topic that no rule names is nobody's member, costs nothing
 * and is never seen.
 *
 * A rule's `readers` says who may read the topic's members (`GET /presence`, and the presence
 * events of a stream):
 * - `subscribers` (the default): whoever may subscribe to the topic, or holds a presence grant
 *   for it: the people in a document see each other;
 * - `presence-grant`: only holders of a presence grant (the `presence` selectors of a role): a
 *   service that shows "who is online" where the members themselves may not see each other.
 */
const PRESENCE_READERS = ['subscribers', 'presence-grant'] as const;
type PresenceReaders = (typeof PRESENCE_READERS)[number];

/** Upper bound on rules: each costs a match per exact selector of every stream that opens. */
const MAX_PRESENCE_RULES = 256;

export interface PresenceRule {
  readonly selector: Selector;
  readonly readers: PresenceReaders;
}

/** What a token may do with one topic's presence. */
export type PresenceAccess = 'allowed' | 'forbidden' | 'not_presence';

const ruleSchema = z
  .object({
    selector: z.string().transform((text, ctx): Selector => {
      try {
        return parseSelector(text);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
    readers: z.enum(PRESENCE_READERS, { error: `must be one of ${PRESENCE_READERS.join(', ')}` }).default('subscribers'),
  })
  .strict();

const fileSchema = z.object({ topics: z.array(ruleSchema).min(1).max(MAX_PRESENCE_RULES) }).strict();

/** A presence configuration entry that cannot be used; `path` is e.g. `topics[2].selector`. */
export class PresenceConfigError extends Error {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
    this.name = 'PresenceConfigError';
  }
}

/** The presence rules, in the order written: the first rule whose selector matches a topic decides. */
export class PresencePolicy {
  /** No topic carries presence (no `PRESENCE_FILE`). */
  static readonly NONE = new PresencePolicy([]);

  constructor(readonly rules: readonly PresenceRule[]) {}

  /**
   * Checks the parsed contents of the presence file (JSON or YAML, read by the configuration).
   * @throws PresenceConfigError naming the first bad entry and field.
   */
  static parse(raw: unknown): PresencePolicy {
    const result = fileSchema.safeParse(raw);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const path = [...issue.path];
      if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) path.push(issue.keys[0]!);
      let text = '';
      for (const key of path) text += typeof key === 'number' ? `[${key}]` : `${text === '' ? '' : '.'}${String(key)}`;
      throw new PresenceConfigError(text || '(root)', issue.code === 'unrecognized_keys' ? 'is not a known setting' : issue.message);
    }
    return new PresencePolicy(result.data.topics);
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** The rule that decides `topic` (a valid topic name), or `undefined` when it carries no presence. */
  ruleFor(topic: string): PresenceRule | undefined {
    for (const rule of this.rules) if (matches(rule.selector, topic)) return rule;
    return undefined;
  }

  /**
   * May a token read `topic`'s presence? A topic outside all of its subscribe and presence grants
   * is `forbidden` whether or not it carries presence, so the answer reveals nothing about topics
   * the caller may not see; one it may see but that carries no presence is `not_presence`.
   */
  access(claims: Pick<AccessClaims, 'subscribe' | 'presence'>, topic: string): PresenceAccess {
    const byPresenceGrant = anyMatches(claims.presence, topic);
    if (!byPresenceGrant && !anyMatches(claims.subscribe, topic)) return 'forbidden';
    const rule = this.ruleFor(topic);
    if (rule === undefined) return 'not_presence';
    return rule.readers === 'subscribers' || byPresenceGrant ? 'allowed' : 'forbidden';
  }

  /**
   * The topics a stream makes its subject a member of: its exact selectors (a topic named, not a
   * pattern) that carry presence. A wildcard subscription (`documents/*`, an admin's `**`) watches
   * without being present anywhere.
   */
  memberTopics(selectors: readonly Selector[]): string[] {
    if (!this.enabled) return [];
    const topics: string[] = [];
    for (const selector of selectors) if (selector.exact && this.ruleFor(selector.source) !== undefined) topics.push(selector.source);
    return topics;
  }

  /**
   * The presence topics whose events a stream gets: with `?presence=true`, every topic it is a
   * member of (`memberTopics`), each of which its token must be allowed to read.
   * @param flag the `presence` query parameter as given.
   * @throws InvalidRequestError (`presence` not `true`/`false`, given twice, or asked for on a stream with no presence topic);
   *   BearerError (`insufficient_scope`) for a topic whose presence the token may not read.
   */
  streamTopics(
    flag: string | string[] | undefined,
    claims: Pick<AccessClaims, 'subscribe' | 'presence'>,
    selectors: readonly Selector[],
  ): string[] {
    if (flag === undefined || flag === 'false') return [];
    if (flag !== 'true') throw new InvalidRequestError('presence: give it once, as true or false.', { field: 'presence' });
    const topics = this.memberTopics(selectors);
    if (topics.length === 0) {
      throw new InvalidRequestError('presence: none of the topics of this stream carries presence (name a presence topic exactly).', {
        field: 'presence',
      });
    }
    const denied = topics.find((topic) => this.access(claims, topic) !== 'allowed');
    if (denied !== undefined) throw BearerError.insufficientScope(`This token may not read the presence of ${denied}.`);
    return topics;
  }
}
