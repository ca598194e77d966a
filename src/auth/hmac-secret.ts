import { createRequire } from 'node:module';

/**
 * The check for a shared HMAC secret (JWT_SECRET with HS256; any other shared secret the server
 * is given, such as a webhook signing secret): it must be an encoding of at least 32 random bytes
 * (RFC 7518 §3.2: an HS256 key at least as long as the hash), and the check must be able to tell
 * it from text. A person's passphrase (`my notify server jwt secret key for production 2024!`),
 * words run together (`CorrectHorseBatteryStaple...`, a long lowercase phrase, which happens to be
 * valid base64url) or a passphrase put through `base64` are all at least 32 bytes, and a JWT
 * cracking tool with a word list finds them in seconds: every token is then forgeable.
 *
 * Accepted: hex, base64url or base64 (padded or not) of at least 32 bytes that pass every test
 * below. Each test is one an encoding of random bytes fails with a probability far below 2^-40,
 * except the words test, whose false-refusal rate was measured:
 *
 *   0 refusals in 6,000,000 random 32-byte secrets (2,000,000 each as `openssl rand -hex 32`,
 *   `openssl rand -base64 32` and base64url): a rate below 5e-7 (95 % confidence, 3/N), measured
 *   with `npx tsx scripts/hmac-secret-false-refusals.ts 2000000`. In a first run of 900,000 the
 *   largest share of a random secret covered by words stayed under 0.30; the threshold is 0.5,
 *   and the passphrases of the tests score 0.58 to 1.
 *
 * The words test: at least half of the characters are dictionary words of 5 letters or more
 * (case folded, also after undoing l33t digits: `S3cr3t`), from zxcvbn's word lists (common
 * English words, Wikipedia, first names, common passwords, diceware), the lists password crackers
 * start with. Shorter words are not counted: random base64 is full of them (`tax`, `Olga`).
 * zxcvbn itself was measured too: 0.3 s per random secret (its l33t matcher explodes on base64),
 * too slow to measure or to run on every secret; only its lists are used.
 */

/** Stable reasons for a refusal. */
export type HmacSecretProblem =
  /** Not hex, base64url or base64: a passphrase, or an encoding with stray characters (blanks, a newline). */
  | 'not_an_encoding'
  /** Fewer than 32 bytes once decoded. */
  | 'too_short'
  /** The decoded bytes are text: a passphrase put through base64 or hex. */
  | 'encodes_text'
  /** Too few distinct byte values, or only one letter case or character class: typed or repeated by a person. */
  | 'not_random'
  /** At least half of it is dictionary words. */
  | 'reads_as_words';

export type HmacSecretVerdict =
  | { readonly ok: true; readonly bytes: Uint8Array; readonly encoding: 'hex' | 'base64url' | 'base64' }
  | { readonly ok: false; readonly code: HmacSecretProblem; readonly message: string };

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output. */
const MIN_HMAC_SECRET_BYTES = 32;
/** How to make a good one; every refusal says it. */
export const HMAC_SECRET_HINT = 'generate one with `openssl rand -base64 32`';

/**
 * 32 random bytes hold about 30 distinct values; fewer than 16 happens with probability far below
 * 2^-40, so fewer means a secret typed or repeated by a person (`aaaa...`, `abab...`).
 */
const MIN_DISTINCT_BYTES = 16;
/** Share of the characters in dictionary words at which a secret reads as words (random secrets stayed under 0.30). */
const MAX_WORD_SHARE = 0.5;
/** Words shorter than this are not counted (random base64 holds 3- and 4-letter words by chance). */
const MIN_WORD_LENGTH = 5;
/** l33t digits read back as the letters they stand for (`S3cr3t` is `secret`). */
const LEET: Readonly<Record<string, string>> = { '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b' };

/**
 * Checks a shared HMAC secret as given (environment, configuration file).
 * @returns the decoded bytes, or the reason for refusing it with a message that says how to generate one.
 */
export function checkHmacSecret(value: string): HmacSecretVerdict {
  const refuse = (code: HmacSecretProblem, why: string): HmacSecretVerdict => ({
    ok: false,
    code,
    message: `must be at least ${MIN_HMAC_SECRET_BYTES} random bytes as base64url, base64 or hex, not ${why}; ${HMAC_SECRET_HINT}`,
  });
  const decoded = decode(value);
  if (decoded === undefined) {
    return refuse('not_an_encoding', /\s/.test(value) ? 'text with blanks or line breaks' : 'text (it is not base64url, base64 or hex)');
  }
  const { bytes, encoding } = decoded;
  if (bytes.length < MIN_HMAC_SECRET_BYTES) return refuse('too_short', `${bytes.length} bytes`);
  if (isText(bytes)) return refuse('encodes_text', `an encoded passphrase (it decodes to text)`);
  if (new Set(bytes).size < MIN_DISTINCT_BYTES) return refuse('not_random', 'a repeated pattern');
  if (!mixesClasses(value, encoding)) {
    return refuse('not_random', encoding === 'hex' ? 'hex without both digits and letters' : 'text in one letter case');
  }
  if (wordShare(value) >= MAX_WORD_SHARE) return refuse('reads_as_words', 'words');
  return { ok: true, bytes, encoding };
}

function decode(value: string): { bytes: Uint8Array; encoding: 'hex' | 'base64url' | 'base64' } | undefined {
  // Hex first: `openssl rand -hex 32` is also valid base64url, and was meant as hex.
  if (/^[0-9a-fA-F]+$/.test(value) && value.length % 2 === 0) return { bytes: Buffer.from(value, 'hex'), encoding: 'hex' };
  const unpadded = value.replace(/={1,2}$/, '');
  // A length of 1 mod 4 is no encoding at all; padding must make the length a multiple of 4.
  if (unpadded.length % 4 === 1 || (unpadded !== value && value.length % 4 !== 0)) return undefined;
  if (unpadded === value && /^[A-Za-z0-9_-]+$/.test(value)) return { bytes: Buffer.from(value, 'base64url'), encoding: 'base64url' };
  if (/^[A-Za-z0-9+/]+$/.test(unpadded)) return { bytes: Buffer.from(unpadded, 'base64'), encoding: 'base64' };
  return undefined;
}

/** Valid UTF-8 with no control characters but tab and line breaks: random bytes are that with probability ~1e-13. */
function isText(bytes: Uint8Array): boolean {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return false;
  }
  // eslint-disable-next-line no-control-regex -- control characters are what random bytes are full of
  return !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text);
}

/**
 * Random base64 mixes both letter cases (no upper case in 43 random characters: 2e-10); random
 * hex mixes digits and letters (none of one in 64 characters: below 1e-13).
 */
function mixesClasses(value: string, encoding: 'hex' | 'base64url' | 'base64'): boolean {
  if (encoding === 'hex') return /[0-9]/.test(value) && /[a-fA-F]/.test(value);
  return /[a-z]/.test(value) && /[A-Z]/.test(value);
}

/** The share of `value` covered by dictionary words, as written or with l33t digits read as letters. */
function wordShare(value: string): number {
  const lower = value.toLowerCase();
  const unleet = lower.replace(/[0134578]/g, (digit) => LEET[digit]!);
  return Math.max(wordsCovering(lower), wordsCovering(unleet)) / value.length;
}

/** The most characters of `text` that non-overlapping dictionary words can cover (dynamic programming from the end). */
function wordsCovering(text: string): number {
  const { words, longest } = dictionary();
  const best = new Array<number>(text.length + 1).fill(0);
  for (let start = text.length - 1; start >= 0; start--) {
    best[start] = best[start + 1]!;
    for (let length = 1; length <= Math.min(longest, text.length - start); length++) {
      const code = text.charCodeAt(start + length - 1);
      if (code < 97 || code > 122) break; // words are letters only
      if (length >= MIN_WORD_LENGTH && words.has(text.slice(start, start + length))) {
        best[start] = Math.max(best[start]!, length + best[start + length]!);
      }
    }
  }
  return best[0]!;
}

let loaded: { words: ReadonlySet<string>; longest: number } | undefined;

/**
 * zxcvbn's lists, loaded on first use (about 0.1 s), not at import: only a server with an HMAC
 * secret needs them, and every CLI call imports this module through the configuration.
 */
function dictionary(): { words: ReadonlySet<string>; longest: number } {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  type Lists = { dictionary: Record<string, readonly unknown[]> };
  const en = (require('@zxcvbn-ts/language-en') as Lists).dictionary;
  const common = (require('@zxcvbn-ts/language-common') as Lists).dictionary;
  const lists = [en['commonWords-en'], en['wikipedia-en'], en['firstnames-en'], common['passwords-common'], common['diceware-common']];
  const words = new Set<string>();
  let longest = 0;
  for (const list of lists) {
    if (list === undefined) throw new Error('a zxcvbn word list is missing');
    for (const entry of list) {
      const word = String(entry).toLowerCase();
      if (word.length < MIN_WORD_LENGTH || !/^[a-z]+$/.test(word)) continue;
      words.add(word);
      longest = Math.max(longest, word.length);
    }
  }
  loaded = { words, longest };
  return loaded;
}
