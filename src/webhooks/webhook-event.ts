/**
 * The lifecycle events that webhooks tell the application's backend about (issue 15). The wire
 * form of each is described in `openapi-webhooks.yaml`; a test validates delivered payloads
 * against it, so the two cannot drift apart.
 */
export const WEBHOOK_EVENT_KINDS = [
  'connected',
  'disconnected',
  'topic-occupied',
  'topic-vacated',
  'member-added',
  'member-removed',
] as const;

export type WebhookEventKind = (typeof WEBHOOK_EVENT_KINDS)[number];

/** Why a member left a topic: her last stream on it ended (after the debounce), or her instance's lease ran out. */
export type MemberRemovedReason = 'left' | 'lease_expired';

interface EventTime {
  /** When it happened (epoch ms); the dispatcher's clock at `enqueue` when absent. */
  readonly at?: number;
}

/**
 * What the server hands to `WebhookDispatcher.enqueue`. The dispatcher adds `id`, `instance` and
 * `at` and serialises the event once for every target that wants it.
 */
export type WebhookEvent =
  | (EventTime & {
      readonly kind: 'connected';
      readonly subject: string;
      readonly connectionId: string;
      /** The stream's topics and selectors, as subscribed. */
      readonly topics: readonly string[];
    })
  | (EventTime & {
      readonly kind: 'disconnected';
      readonly subject: string;
      readonly connectionId: string;
      readonly topics: readonly string[];
      /** How the stream ended (`client_gone`, `token_expired`, `revoked`, `slow_consumer`, `shutdown`, ...). */
      readonly reason: string;
    })
  | (EventTime & { readonly kind: 'topic-occupied'; readonly topic: string })
  | (EventTime & { readonly kind: 'topic-vacated'; readonly topic: string })
  | (EventTime & { readonly kind: 'member-added'; readonly topic: string; readonly subject: string })
  | (EventTime & {
      readonly kind: 'member-removed';
      readonly topic: string;
      readonly subject: string;
      readonly reason: MemberRemovedReason;
    });

/** The topics (or selectors) an event is about: what a target's `topics` filter is matched against. */
export function topicsOf(event: WebhookEvent): readonly string[] {
  return 'topics' in event ? event.topics : [event.topic];
}

/** The JSON object sent for one event: the caller's fields plus `id`, `at` (RFC 3339) and `instance`. */
export function wireEvent(event: WebhookEvent, id: string, atMs: number, instance: string): Record<string, unknown> {
  const { at: _at, kind, ...fields } = event;
  return { id, kind, at: new Date(atMs).toISOString(), instance, ...fields };
}
