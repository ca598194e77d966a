import { createSecretKey, type KeyObject } from 'node:crypto';

/** At least as long as the HMAC-SHA256 output (RFC 2104 §3); Standard Webhooks asks for 24 bytes at least. */
const MIN_WEBHOOK_SECRET_BYTES = 32;
/** Standard Webhooks' upper bound for symmetric secrets. */
const MAX_WEBHOOK_SECRET_BYTES = 512;
/** 32 random bytes hold about 30 distinct values; fewer than 16 means a byte pattern typed or repeated by a person. */
const MIN_DISTINCT_BYTES = 16;
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
 * least 32 bytes that were not typed by a person. Passphrases are refused even when they happen to
 * use only base64 characters: see `readsAsText`.
 * @throws InvalidWebhookSecretError
 */
export function decodeWebhookSecret(text: string): Uint8Array {
  const bytes = decodeEncoded(text);
  if (bytes === undefined) {
    throw new InvalidWebhookSecretError('secret_encoding', `must be base64url, base64 or hex (or whsec_ + base64); ${GENERATE}`);
  }
  if (bytes.length < MIN_WEBHOOK_SECRET_BYTES || bytes.length > MAX_WEBHOOK_SECRET_BYTES) {
    throw new InvalidWebhookSecretError(
      'secret_too_short',
      `must decode to ${MIN_WEBHOOK_SECRET_BYTES} to ${MAX_WEBHOOK_SECRET_BYTES} bytes (it has ${bytes.length}); ${GENERATE}`,
    );
  }
  if (
    new Set(bytes).size < MIN_DISTINCT_BYTES ||
    readsAsText(text.startsWith(STANDARD_PREFIX) ? text.slice(STANDARD_PREFIX.length) : text)
  ) {
    throw new InvalidWebhookSecretError('secret_not_random', `reads as words or a pattern, not as random bytes; ${GENERATE}`);
  }
  return bytes;
}

/** The secret as a key object: it prints as `SecretKeyObject { ... }`, never as its bytes, if it ends up in a log. */
export function webhookSigningKey(text: string): KeyObject {
  return createSecretKey(decodeWebhookSecret(text));
}

const HEX = /^[0-9a-fA-F]+$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Strict decoding: the text must be exactly what an encoder writes (Buffer.from alone skips any junk it meets). */
function decodeEncoded(text: string): Uint8Array | undefined {
  if (text.length > 2 * MAX_WEBHOOK_SECRET_BYTES + STANDARD_PREFIX.length) return undefined;
  if (text.startsWith(STANDARD_PREFIX)) return canonicalBase64(text.slice(STANDARD_PREFIX.length));
  if (HEX.test(text) && text.length % 2 === 0) return Buffer.from(text, 'hex');
  return canonicalBase64(text);
}

function canonicalBase64(text: string): Uint8Array | undefined {
  const url = BASE64URL.test(text);
  if (!url && !BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, url ? 'base64url' : 'base64');
  const again = bytes.toString(url ? 'base64url' : 'base64');
  return again.replace(/=+$/, '') === text.replace(/=+$/, '') ? bytes : undefined;
}

/**
 * Does this encoded secret read as text someone typed rather than as the output of a random
 * generator? Two tests, each with a measured false-refusal rate for real random secrets far below
 * one in a million (test/unit/webhooks/webhook-secret.test.ts checks a large seeded sample):
 * - Case: random base64 changes case at about half of its letter-to-letter steps; a passphrase in
 *   one case (`correcthorsebatterystaple...`, `MY_WEBHOOK_SECRET...`) hardly ever does. Refused
 *   when random text would change case that rarely with probability below 1e-9.
 * - Letters: the text is scored under a model of English letter pairs (learnt from `WORDS`) against
 *   uniform random characters; joined words (`CorrectHorseBatteryStaple...`,
 *   `my-company-webhook-secret-for-production`) score far above what random base64 ever reaches.
 * Hex secrets are refused when they have no letters or no digits (random hex has both, except
 * with probability below 1e-13 at 32 bytes). This is a guard against a common mistake, not proof
 * of randomness: a secret that passes may still have been chosen badly.
 */
export function readsAsText(encoded: string): boolean {
  const text = encoded.replace(/=+$/, '');
  if (HEX.test(text) && text.length % 2 === 0) return !/[0-9]/.test(text) || !/[a-fA-F]/.test(text);
  return caseChangesImprobablyRare(text) || letterPairScore(text) > LETTER_SCORE_LIMIT;
}

function caseChangesImprobablyRare(text: string): boolean {
  let pairs = 0;
  let changes = 0;
  for (let i = 1; i < text.length; i++) {
    const previous = letterCase(text.charCodeAt(i - 1));
    const current = letterCase(text.charCodeAt(i));
    if (previous === 0 || current === 0) continue;
    pairs++;
    if (previous !== current) changes++;
  }
  return binomialLowerTail(pairs, changes) < 1e-9;
}

/** 1 for a-z, 2 for A-Z, 0 otherwise. */
function letterCase(code: number): number {
  if (code >= 97 && code <= 122) return 1;
  if (code >= 65 && code <= 90) return 2;
  return 0;
}

/** P(X <= k) for X ~ Binomial(n, 1/2). */
function binomialLowerTail(n: number, k: number): number {
  let sum = 0;
  let choose = 1;
  for (let i = 0; i <= k; i++) {
    sum += choose;
    choose = (choose * (n - i)) / (i + 1);
  }
  return sum / 2 ** n;
}

/**
 * The words the letter-pair model is learnt from: common English words and the words people put
 * in secrets. Transitions across word boundaries count too, since passphrases join words.
 */
const WORDS = `the be to of and a in that have it for not on with he as you do at this but his by from they we say her she or an
will my one all would there their what so up out if about who get which go me when make can like time no just him know take people
into year your good some could them see other than then now look only come its over think also back after use two how our work first
well way even new want because any these give day most us is was are has had been were said did made went got secret password
passphrase key token webhook hook notify server service production staging development test prod dev admin change shared signing
value company app application api backend endpoint receiver sender message event events default example private public config
configuration random long strong very super string number please here world hello welcome open close start stop read write send
receive data user users account login access control system network local remote host port file name list item items order customer
payment invoice`;

/**
 * Above this the text is refused. Random base64 of 32 bytes scores -20 on average (standard
 * deviation 6, highest of two million samples 11.8); the joined-word passphrases in the tests score
 * 17 to 34. Longer random secrets score lower still.
 */
const LETTER_SCORE_LIMIT = 16;

/** log P(next letter | letter), learnt from WORDS with add-0.2 smoothing; row = previous letter. */
const LETTER_PAIRS: readonly Float64Array[] = (() => {
  const joined = WORDS.replace(/\s+/g, '');
  const counts = Array.from({ length: 26 }, () => new Float64Array(26).fill(0.2));
  for (let i = 1; i < joined.length; i++) counts[joined.charCodeAt(i - 1) - 97]![joined.charCodeAt(i) - 97]!++;
  return counts.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count) => Math.log(count / total));
  });
})();

/**
 * Log-likelihood ratio of "typed text" (90% letters following LETTER_PAIRS, case ignored; 7%
 * digits; 3% separators) against "64 equally likely characters".
 */
function letterPairScore(text: string): number {
  const uniform = Math.log(64);
  const letterCaseFold = Math.log(0.9 / 2); // P(letter) split over two cases, so case carries no weight here
  let score = 0;
  let previous = -1;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i) | 0x20;
    if (code >= 97 && code <= 122) {
      const letter = code - 97;
      score += letterCaseFold + (previous < 0 ? -Math.log(26) : LETTER_PAIRS[previous]![letter]!) + uniform;
      previous = letter;
    } else {
      score += Math.log(text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57 ? 0.07 / 10 : 0.03 / 2) + uniform;
      previous = -1;
    }
  }
  return score;
}
