import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { parseSelector, type Selector } from '../topics/selector.js';
import { hostProblem } from './address-policy.js';
import { WEBHOOK_EVENT_KINDS, type WebhookEventKind } from './webhook-event.js';
import { InvalidWebhookSecretError, webhookSigningKey } from './webhook-secret.js';

/**
 * The webhook configuration file (issue 15): a list of targets, each told about the event kinds
 * and topics it asks for. Parsed and checked once at start; a bad entry names its index and field
 * (`targets[2].url`), so the entry point can stop with exit code 78 naming the file. Every setting
 * has a default except the URL, the event kinds and the secret; units are in the names.
 */

/** Upper bound on targets: each costs a queue, timers and a connection pool. */
const MAX_WEBHOOK_TARGETS = 64;

function problem(ctx: z.RefinementCtx, reason: string, message: string): never {
  ctx.addIssue({ code: 'custom', message, params: { reason } });
  return z.NEVER;
}

const whole = (min: number, max: number) => z.number().int().min(min).max(max);

const url = z
  .string()
  .max(2048)
  .transform((text, ctx): URL => {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      return problem(ctx, 'invalid_url', 'must be an absolute http:// or https:// URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      return problem(ctx, 'url_scheme', `must be http:// or https:// (not ${parsed.protocol})`);
    }
    // Credentials in a URL end up in logs and proxies; the receiver authenticates us by the signature instead.
    if (parsed.username !== '' || parsed.password !== '')
      return problem(ctx, 'url_credentials', 'must not contain a user name or password');
    if (parsed.hash !== '') return problem(ctx, 'url_fragment', 'must not contain a #fragment (it is never sent)');
    return parsed;
  });

const secret = z.string().transform((text, ctx): KeyObject => {
  try {
    return webhookSigningKey(text);
  } catch (error) {
    if (error instanceof InvalidWebhookSecretError) return problem(ctx, error.reason, error.message);
    throw error;
  }
});

const selector = z.string().transform((text, ctx): Selector => {
  try {
    return parseSelector(text);
  } catch (error) {
    return problem(ctx, 'invalid_selector', (error as Error).message);
  }
});

const targetSchema = z
  .object({
    /** Names the target in metrics and logs (its URL may carry a token in its path, so it is never logged). Default: the index. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 of A-Z a-z 0-9 _ . -')
      .optional(),
    url,
    events: z
      .array(z.enum(WEBHOOK_EVENT_KINDS))
      .min(1)
      .refine((kinds) => new Set(kinds).size === kinds.length, 'must not list an event kind twice'),
    /** Topic selectors; an event is sent when one of its topics is covered by one of them. Default: every topic. */
    topics: z.array(selector).min(1).max(64).optional(),
    /** Signs every request (Standard Webhooks `v1`). */
    secret,
    /** Older secrets still signed with during a rotation, so receivers can switch without a gap (at most 2). */
    previousSecrets: z.array(secret).max(2).default([]),
    /** Allow loopback, private and link-local addresses (a receiver on the same host or network). Default: false. */
    allowPrivateNetwork: z.boolean().default(false),
    /** Per request, from connecting to the end of the answer. Default 10 s (Standard Webhooks suggests 15-30 s; ours is a fast internal hook). */
    timeoutMs: whole(100, 120_000).default(10_000),
    /** Requests in flight at once. Default 1, which keeps batches in order; more give up ordering for throughput. */
    maxConcurrentRequests: whole(1, 16).default(1),
    /** Events in one request. Default 100. */
    maxBatchEvents: whole(1, 1000).default(100),
    /** How long the first event of a batch waits for company. Default 50 ms. */
    lingerMs: whole(0, 10_000).default(50),
    /** Events waiting for a request; beyond it the oldest are dropped (and counted, and reported in the next batch). Default 10,000. */
    maxQueuedEvents: whole(1, 1_000_000).default(10_000),
    /** Attempts per batch before it is given up. Default 10. */
    maxAttempts: whole(1, 100).default(10),
    /** A batch older than this (from its first attempt) is given up. Default 15 minutes. */
    maxAgeMs: whole(1000, 7 * 86_400_000).default(15 * 60_000),
    /** Back-off before the second attempt; doubled for each further one, with jitter. Default 1 s. */
    retryInitialDelayMs: whole(10, 3_600_000).default(1000),
    /** Longest back-off between attempts. Default 60 s. */
    retryMaxDelayMs: whole(10, 86_400_000).default(60_000),
  })
  .strict()
  .superRefine((target, ctx) => {
    const address = hostProblem(target.url.hostname, target.allowPrivateNetwork);
    if (address !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        params: { reason: address },
        message:
          address === 'private_address'
            ? 'points at a loopback, private or link-local address; set allowPrivateNetwork: true for this target to allow it'
            : 'points at an address no webhook may use (unspecified, multicast or reserved)',
      });
    }
    if (target.retryMaxDelayMs < target.retryInitialDelayMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['retryMaxDelayMs'],
        params: { reason: 'too_small' },
        message: 'must not be below retryInitialDelayMs',
      });
    }
    if (target.maxQueuedEvents < target.maxBatchEvents) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxQueuedEvents'],
        params: { reason: 'too_small' },
        message: 'must not be below maxBatchEvents',
      });
    }
  });

const fileSchema = z.object({ targets: z.array(targetSchema).max(MAX_WEBHOOK_TARGETS) }).strict();

/** One checked target. */
export interface WebhookTarget {
  readonly name: string;
  readonly url: URL;
  readonly events: ReadonlySet<WebhookEventKind>;
  /** `undefined`: every topic. */
  readonly topics: readonly Selector[] | undefined;
  /** The current key first, then the previous ones; every request is signed with each. */
  readonly signingKeys: readonly KeyObject[];
  readonly allowPrivateNetwork: boolean;
  readonly timeoutMs: number;
  readonly maxConcurrentRequests: number;
  readonly maxBatchEvents: number;
  readonly lingerMs: number;
  readonly maxQueuedEvents: number;
  readonly maxAttempts: number;
  readonly maxAgeMs: number;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
}

/** A configuration entry that cannot be used. `path` is e.g. `targets[2].url`; `reason` is stable (tests assert it). */
export class WebhookConfigError extends Error {
  readonly code = 'invalid_webhook_config';
  constructor(
    /** Where: `targets[2].topics[0]`, or `targets` / `(root)` for the file as a whole. */
    readonly path: string,
    /** The target's index, when the problem is in one. */
    readonly index: number | undefined,
    /** The field within the target (`url`, `topics[0]`), when there is one. */
    readonly field: string | undefined,
    readonly reason: string,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
    this.name = 'WebhookConfigError';
  }
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let text = '';
  for (const key of path) text += typeof key === 'number' ? `[${key}]` : `${text === '' ? '' : '.'}${String(key)}`;
  return text;
}

/**
 * Checks the parsed contents of the webhook configuration file (JSON or YAML, read by the entry
 * point) and returns the targets, defaults filled in.
 * @throws WebhookConfigError naming the first bad entry and field.
 */
export function parseWebhookConfig(raw: unknown): readonly WebhookTarget[] {
  const result = fileSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = [...issue.path];
    if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) path.push(issue.keys[0]!);
    const given = issue.code === 'custom' ? (issue.params as { reason?: unknown } | undefined)?.reason : undefined;
    const reason = issue.code !== 'custom' ? issue.code : typeof given === 'string' ? given : 'invalid';
    const message = issue.code === 'unrecognized_keys' ? 'is not a known setting' : issue.message;
    const index = path[0] === 'targets' && typeof path[1] === 'number' ? path[1] : undefined;
    const field = index === undefined || path.length <= 2 ? undefined : formatPath(path.slice(2));
    throw new WebhookConfigError(formatPath(path) || '(root)', index, field, reason, message);
  }
  const names = new Set<string>();
  return result.data.targets.map((target, index) => {
    const name = target.name ?? String(index);
    if (names.has(name))
      throw new WebhookConfigError(`targets[${index}].name`, index, 'name', 'duplicate_name', `"${name}" names two targets`);
    names.add(name);
    const { secret: current, previousSecrets, events, topics, name: _name, ...rest } = target;
    const checked: WebhookTarget = {
      ...rest,
      name,
      events: new Set(events),
      topics,
      signingKeys: Object.freeze([current, ...previousSecrets]),
    };
    return Object.freeze(checked);
  });
}
