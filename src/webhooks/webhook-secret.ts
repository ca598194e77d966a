import { createSecretKey, type KeyObject } from 'node:crypto';
import { checkHmacSecret, type HmacSecretProblem } from '../auth/hmac-secret.js';

/** Standard Webhooks' upper bound for symmetric secrets. */
const MAX_WEBHOOK_SECRET_BYTES = 512;
/** Standard Webhooks' prefix for a base64 symmetric secret, accepted so one secret string can be pasted on both sides. */
const STANDARD_PREFIX = 'whsec_';
const GENERATE = 'generate one with `openssl rand -base64 32`';

export type WebhookSecretProblem = 'secret_encoding' | 'secret_too_short' | 'secret_not_random';

/** A shared secret that cannot be used; `reason` is stable, the message says how to make a good one. */
export class InvalidWebhookSecretError extends Error {
  constructor(
    readonly reason: WebhookSecretProblem,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidWebhookSecretError';
  }
}

/**
 * Decodes a webhook secret: `whsec_` + base64 (Standard Webhooks), base64url, base64 or hex, of at
 * least 32 bytes that were not typed by a person. Whether the bytes are random enough is decided
 * by the one check every shared HMAC secret of the server goes through (`auth/hmac-secret.ts`).
 * @throws InvalidWebhookSecretError
 */
export function decodeWebhookSecret(text: string): Uint8Array {
  const encoded = text.startsWith(STANDARD_PREFIX) ? text.slice(STANDARD_PREFIX.length) : text;
  // Exactly what an encoder writes: a receiver's decoder may read spare bits or stray characters otherwise.
  if (encoded.length > 2 * MAX_WEBHOOK_SECRET_BYTES || !isCanonical(encoded, encoded !== text)) {
    throw new InvalidWebhookSecretError('secret_encoding', `must be base64url, base64 or hex (or whsec_ + base64); ${GENERATE}`);
  }
  const verdict = checkHmacSecret(encoded);
  if (!verdict.ok) throw new InvalidWebhookSecretError(PROBLEMS[verdict.code], verdict.message);
  if (verdict.bytes.length > MAX_WEBHOOK_SECRET_BYTES) {
    throw new InvalidWebhookSecretError('secret_too_short', `must decode to at most ${MAX_WEBHOOK_SECRET_BYTES} bytes; ${GENERATE}`);
  }
  return verdict.bytes;
}

function isCanonical(encoded: string, standard: boolean): boolean {
  if (!standard && /^[0-9a-fA-F]+$/.test(encoded) && encoded.length % 2 === 0) return true;
  const url = !standard && /^[A-Za-z0-9_-]+$/.test(encoded);
  if (!url && !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return false;
  const again = Buffer.from(encoded, url ? 'base64url' : 'base64').toString(url ? 'base64url' : 'base64');
  return again.replace(/=+$/, '') === encoded.replace(/=+$/, '');
}

const PROBLEMS: Readonly<Record<HmacSecretProblem, WebhookSecretProblem>> = {
  not_an_encoding: 'secret_encoding',
  too_short: 'secret_too_short',
  encodes_text: 'secret_not_random',
  not_random: 'secret_not_random',
  reads_as_words: 'secret_not_random',
};

/** The secret as a key object: it prints as `SecretKeyObject { ... }`, never as its bytes, if it ends up in a log. */
export function webhookSigningKey(text: string): KeyObject {
  return createSecretKey(decodeWebhookSecret(text));
}
