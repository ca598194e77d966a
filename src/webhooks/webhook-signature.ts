import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { decodeWebhookSecret } from './webhook-secret.js';

/**
 * Webhook signatures follow Standard Webhooks 1.0 (standardwebhooks.com) exactly, so receivers
 * can verify them with that project's libraries or with a few lines of `node:crypto`
 * (README-snippet.md): HMAC-SHA256 with the shared secret over `<webhook-id>.<webhook-timestamp>.<body>`,
 * sent as `webhook-signature: v1,<base64>`, one signature per key (space-separated) so a secret can
 * be rotated without a gap. The id is the same on every retry of a delivery (the receiver's
 * idempotency key); the timestamp is that of the attempt (against replays).
 */

const WEBHOOK_ID_HEADER = 'webhook-id';
const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

/** Standard Webhooks' suggested tolerance between the sender's and the receiver's clocks. */
const DEFAULT_TOLERANCE_SECONDS = 300;

function sign(key: KeyObject | Uint8Array, id: string, timestampSeconds: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestampSeconds}.`).update(body).digest();
}

/** The three Standard Webhooks headers for one attempt. `id` must not contain `.` (it is a field separator). */
export function signatureHeaders(
  keys: readonly KeyObject[],
  id: string,
  timestampSeconds: number,
  body: string | Uint8Array,
): Record<string, string> {
  if (id.includes('.') || !Number.isSafeInteger(timestampSeconds)) throw new RangeError('signatureHeaders: bad id or timestamp');
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestampSeconds),
    [WEBHOOK_SIGNATURE_HEADER]: keys.map((key) => `v1,${sign(key, id, timestampSeconds, body).toString('base64')}`).join(' '),
  };
}

export type WebhookVerificationProblem = 'missing_header' | 'malformed_header' | 'timestamp_out_of_tolerance' | 'signature_mismatch';

/** A request that is not a genuine, fresh webhook from us. `code` is stable; the message says which check failed. */
export class WebhookVerificationError extends Error {
  constructor(
    readonly code: WebhookVerificationProblem,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

export interface VerifyWebhookOptions {
  /** The shared secret as configured (whsec_/base64url/base64/hex), or its bytes. */
  readonly secret: string | Uint8Array;
  /** The request headers (Node's lower-cased `IncomingHttpHeaders` works as it is). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The raw body, exactly as received: parse it as JSON only after verifying. */
  readonly body: string | Uint8Array;
  /** Receiver's clock in epoch ms. Default: Date.now(). */
  readonly now?: number;
  /** Default 300 s. */
  readonly toleranceSeconds?: number;
}

function header(headers: VerifyWebhookOptions['headers'], name: string): string {
  const value = headers[name];
  if (value === undefined || value.length === 0) throw new WebhookVerificationError('missing_header', `the ${name} header is missing`);
  if (typeof value !== 'string') throw new WebhookVerificationError('malformed_header', `the ${name} header is repeated`);
  return value;
}

/**
 * Verifies a webhook request the way a receiver should: the timestamp within tolerance, then at
 * least one `v1` signature equal (in constant time) to the HMAC of id, timestamp and raw body.
 * @returns the delivery id (the idempotency key) and the attempt's timestamp.
 * @throws WebhookVerificationError
 */
export function verifyWebhook(options: VerifyWebhookOptions): { id: string; timestampSeconds: number } {
  const id = header(options.headers, WEBHOOK_ID_HEADER);
  const timestampText = header(options.headers, WEBHOOK_TIMESTAMP_HEADER);
  const signatures = header(options.headers, WEBHOOK_SIGNATURE_HEADER);
  if (!/^\d{1,15}$/.test(timestampText))
    throw new WebhookVerificationError('malformed_header', `${WEBHOOK_TIMESTAMP_HEADER} is not epoch seconds`);
  const timestampSeconds = Number(timestampText);
  const nowSeconds = (options.now ?? Date.now()) / 1000;
  if (Math.abs(nowSeconds - timestampSeconds) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError('timestamp_out_of_tolerance', `${WEBHOOK_TIMESTAMP_HEADER} is too far from the receiver's clock`);
  }
  const key = typeof options.secret === 'string' ? decodeWebhookSecret(options.secret) : options.secret;
  const expected = sign(key, id, timestampSeconds, options.body);
  for (const entry of signatures.split(' ')) {
    if (!entry.startsWith('v1,')) continue; // other schemes (v1a) are for other verifiers
    const candidate = Buffer.from(entry.slice(3), 'base64');
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) return { id, timestampSeconds };
  }
  throw new WebhookVerificationError('signature_mismatch', 'no signature matches');
}
