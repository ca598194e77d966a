import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { InvalidRequestError } from '../errors.js';

/**
 * Password hashing with scrypt (RFC 7914), stored as PHC-style strings:
 *
 *     $scrypt$ln=17,r=8,p=1$<salt, base64 without padding>$<key, base64 without padding>
 *
 * The cost parameters travel with each hash, so raising `SCRYPT_LOG_N` only affects new hashes
 * and old ones still verify. Node runs scrypt on the libuv thread pool, so hashing never blocks
 * the event loop, but each hash at the default cost takes about a second and 128 MiB: the login
 * route must rate-limit before it hashes.
 */

/** OWASP Password Storage Cheat Sheet: N=2^17, r=8, p=1. */
const DEFAULT_SCRYPT_LOG_N = 17;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/**
 * Upper bounds on the parameters read back from a stored hash, so a tampered or corrupt store
 * cannot make one login ask for gigabytes of memory or minutes of CPU. ln=20,r=8 (the most
 * `SCRYPT_LOG_N` allows) needs 1 GiB, which is also the memory cap.
 */
const MAX_LOG_N = 20;
const MAX_R = 16;
const MAX_P = 16;
const MAX_MEMORY_BYTES = 1024 * 1024 * 1024;
/** Hashing is allowed from 2^10 (fast tests) to 2^20; below that the hash is too cheap to crack. */
const MIN_HASH_LOG_N = 10;

/**
 * A password is at most 1024 UTF-8 bytes: scrypt's cost does not depend on the length (it is
 * hashed once by PBKDF2-SHA256 first), but bounding it bounds the request and the normalisation.
 */
const MAX_PASSWORD_BYTES = 1024;
/** NIST SP 800-63B §3.1.1.2: at least 8 characters. */
const MIN_PASSWORD_LENGTH = 8;

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{11,88})\$([A-Za-z0-9+/]{22,88})$/;

interface ScryptParams {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/**
 * Hashes a new password.
 * @param options.logN scrypt cost as log2(N), 10 to 20; default 17.
 * @returns a PHC string `$scrypt$ln=..,r=8,p=1$salt$key` with a fresh 16-byte salt and a 32-byte key.
 * @throws InvalidRequestError (`invalid_password`) when the password is shorter than 8 characters
 * or longer than 1024 bytes.
 * @throws RangeError when `logN` is outside 10..20 (a programming error, not a user error).
 */
export async function hashPassword(password: string, options: { logN?: number } = {}): Promise<string> {
  const logN = options.logN ?? DEFAULT_SCRYPT_LOG_N;
  if (!Number.isInteger(logN) || logN < MIN_HASH_LOG_N || logN > MAX_LOG_N) {
    throw new RangeError(`logN must be an integer from ${MIN_HASH_LOG_N} to ${MAX_LOG_N}`);
  }
  if (typeof password !== 'string') {
    throw new InvalidRequestError('A password must be a string.', { code: 'invalid_password' });
  }
  const normalized = normalize(password);
  if (normalized === undefined) {
    throw new InvalidRequestError(`A password is at most ${MAX_PASSWORD_BYTES} bytes.`, {
      code: 'invalid_password',
    });
  }
  // Count code points, not UTF-16 units, so an emoji is one character.
  if ([...normalized].length < MIN_PASSWORD_LENGTH) {
    throw new InvalidRequestError(`A password is at least ${MIN_PASSWORD_LENGTH} characters.`, {
      code: 'invalid_password',
    });
  }
  const params: ScryptParams = { logN, r: BLOCK_SIZE, p: PARALLELISM };
  const salt = randomBytes(SALT_BYTES);
  const key = await deriveKey(normalized, salt, KEY_BYTES, params);
  return formatPhc(params, salt, key);
}

/**
 * Checks a password against a stored PHC string, using the cost parameters, salt length and key
 * length recorded in that string. Never throws: a malformed or out-of-bounds hash, a
 * non-string or over-long password, or a scrypt failure all give `false`. The final comparison
 * is constant-time.
 */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const parsed = parsePhc(phc);
  if (parsed === undefined || typeof password !== 'string') return false;
  const normalized = normalize(password);
  if (normalized === undefined) return false;
  try {
    const key = await deriveKey(normalized, parsed.salt, parsed.key.length, parsed.params);
    return timingSafeEqual(key, parsed.key);
  } catch {
    return false;
  }
}

/**
 * True when a stored hash uses other parameters than `logN`, r=8, p=1 (or cannot be parsed), so
 * the caller may re-hash the password after a successful login.
 */
export function needsRehash(phc: string, logN: number = DEFAULT_SCRYPT_LOG_N): boolean {
  const parsed = parsePhc(phc);
  return (
    parsed === undefined ||
    parsed.params.logN !== logN ||
    parsed.params.r !== BLOCK_SIZE ||
    parsed.params.p !== PARALLELISM ||
    parsed.key.length !== KEY_BYTES
  );
}

/** Hashing and verification bound to one cost setting; see `createPasswordVerifier`. */
export interface PasswordVerifier {
  /** `hashPassword` with this verifier's `logN`. */
  hash(password: string): Promise<string>;
  /**
   * `verifyPassword`, except that with `phc === undefined` (no such account) it runs scrypt
   * against a dummy hash with the current parameters and returns false, so an unknown name
   * costs as much time as a wrong password and a prober cannot tell which names exist.
   */
  verify(password: string, phc: string | undefined): Promise<boolean>;
  /** `needsRehash` with this verifier's `logN`. */
  needsRehash(phc: string): boolean;
}

/**
 * Builds the password verifier the login route uses.
 * @param options.logN scrypt cost for new hashes and for the dummy hash; default 17.
 * @throws RangeError when `logN` is outside 10..20.
 */
export function createPasswordVerifier(options: { logN?: number } = {}): PasswordVerifier {
  const logN = options.logN ?? DEFAULT_SCRYPT_LOG_N;
  if (!Number.isInteger(logN) || logN < MIN_HASH_LOG_N || logN > MAX_LOG_N) {
    throw new RangeError(`logN must be an integer from ${MIN_HASH_LOG_N} to ${MAX_LOG_N}`);
  }
  // A random key no password derives to (probability 2^-256): verifying against it costs exactly
  // one scrypt run with the current parameters and always fails. Built once, without hashing,
  // so the first unknown-user login is not slower than the rest.
  const dummy = formatPhc({ logN, r: BLOCK_SIZE, p: PARALLELISM }, randomBytes(SALT_BYTES), randomBytes(KEY_BYTES));
  return {
    hash: (password) => hashPassword(password, { logN }),
    verify: async (password, phc) => {
      if (phc === undefined) {
        await verifyPassword(password, dummy);
        return false;
      }
      return verifyPassword(password, phc);
    },
    needsRehash: (phc) => needsRehash(phc, logN),
  };
}

/**
 * NFKC-normalises (NIST SP 800-63B §5.1.1.2), so the same password typed on systems that compose
 * accents differently still matches. Returns undefined when the password is over the byte limit,
 * checked before normalising (to bound the work) and after (NFKC can lengthen a string).
 */
function normalize(password: string): string | undefined {
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return undefined;
  const normalized = password.normalize('NFKC');
  if (Buffer.byteLength(normalized, 'utf8') > MAX_PASSWORD_BYTES) return undefined;
  return normalized;
}

function parsePhc(phc: unknown): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  if (typeof phc !== 'string') return undefined;
  const match = PHC.exec(phc);
  if (match === null) return undefined;
  const logN = Number(match[1]);
  const r = Number(match[2]);
  const p = Number(match[3]);
  if (logN < 1 || logN > MAX_LOG_N || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return undefined;
  if (memoryNeeded({ logN, r, p }) > MAX_MEMORY_BYTES) return undefined;
  const salt = decodeB64(match[4]!);
  const key = decodeB64(match[5]!);
  if (salt === undefined || key === undefined) return undefined;
  return { params: { logN, r, p }, salt, key };
}

/** PHC's B64: standard alphabet, no padding. Rejects strings that do not round-trip. */
function decodeB64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return encodeB64(bytes) === text ? bytes : undefined;
}

function encodeB64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

function formatPhc(params: ScryptParams, salt: Buffer, key: Buffer): string {
  return `$scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${encodeB64(salt)}$${encodeB64(key)}`;
}

/** What OpenSSL's scrypt allocates: V is 128·r·(N+2) bytes and B is 128·r·p bytes. */
function memoryNeeded(params: ScryptParams): number {
  return 128 * params.r * (2 ** params.logN + 2) + 128 * params.r * params.p;
}

function deriveKey(password: string, salt: Buffer, keyLength: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: 2 ** params.logN,
    r: params.r,
    p: params.p,
    // Node's default maxmem (32 MiB) rejects N=2^17, r=8; allow what these parameters need plus
    // 1 MiB of slack, and no more.
    maxmem: memoryNeeded(params) + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}
