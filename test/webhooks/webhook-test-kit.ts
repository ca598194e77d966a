import { randomBytes } from 'node:crypto';
import { parseWebhookConfig, type WebhookTarget } from '../../src/webhooks/webhook-config.js';
import type { WebhookAnswer, WebhookRequest, WebhookTransport } from '../../src/webhooks/webhook-transport.js';

export const newSecret = (): string => randomBytes(32).toString('base64');

/** One checked target, as the config file would give it. */
export function webhookTarget(fields: Record<string, unknown> = {}): WebhookTarget {
  return parseWebhookConfig({
    targets: [{ url: 'https://hooks.example.com/notify', events: ['connected', 'disconnected'], secret: newSecret(), ...fields }],
  })[0]!;
}

export interface RecordedRequest {
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { missed: number; events: Array<Record<string, unknown>> };
  readonly rawBody: string;
  readonly signal: AbortSignal;
  answer(answer: WebhookAnswer): void;
}

/**
 * A transport that records each request and answers it as the test says: `respond` decides at
 * once (or returns undefined to leave the request hanging until `answer` is called or it is aborted).
 */
export class ScriptedTransport implements WebhookTransport {
  readonly requests: RecordedRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  closed = false;

  constructor(
    private readonly respond: (request: RecordedRequest, index: number) => WebhookAnswer | undefined = () => ({
      status: 204,
      retryAfter: undefined,
    }),
  ) {}

  send(target: WebhookTarget, request: WebhookRequest): Promise<WebhookAnswer> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<WebhookAnswer>((resolve) => {
      let done = false;
      const finish = (answer: WebhookAnswer) => {
        if (done) return;
        done = true;
        this.inFlight--;
        resolve(answer);
      };
      const rawBody = request.body.toString();
      const recorded: RecordedRequest = {
        target: target.name,
        headers: request.headers,
        body: JSON.parse(rawBody) as RecordedRequest['body'],
        rawBody,
        signal: request.signal,
        answer: finish,
      };
      this.requests.push(recorded);
      request.signal.addEventListener('abort', () => finish({ error: request.signal.reason }), { once: true });
      const answer = this.respond(recorded, this.requests.length - 1);
      if (answer !== undefined) finish(answer);
    });
  }

  close(): void {
    this.closed = true;
  }
}

export const status = (code: number, retryAfter?: string): WebhookAnswer => ({ status: code, retryAfter });

export const connected = (subject: string, topics: string[] = [`users/${subject}/inbox`]) =>
  ({ kind: 'connected', subject, connectionId: `c-${subject}-${Math.random().toString(36).slice(2, 8)}`, topics }) as const;
