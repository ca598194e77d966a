import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, errors, exportJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { z } from 'zod';
import { BearerError } from '../errors.js';
import { parseSelector, type Selector } from '../topics/selector.js';
import { SUBJECT_NAME } from './user-store.js';

/**
 * Signs and verifies access tokens: the only module that imports jose. Verification pins
 * everything the token could otherwise choose for itself (RFC 8725 §3.1): the algorithm, the
 * key, `typ` (`at+jwt`, RFC 9068 §2.1), issuer and audience; requires `exp`, `iat`, `sub`, `jti`
 * and `client_id`; bounds the token's age and lifetime by our own TTL (a token claiming a 10-year
 * `exp` is refused); and checks the topic grants' shape before anything trusts them.
 */

const ACCESS_TOKEN_TYPE = 'at+jwt';

/** Longer tokens are refused before any parsing; ours are well under 2 KiB. */
export const MAX_TOKEN_LENGTH = 8192;

export interface TopicGrants {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** Topics whose presence the holder may read without subscribing (issue 15); absent from the token when empty. */
  readonly presence?: readonly string[];
}

export interface AccessClaims {
  readonly subject: string;
  readonly tokenId: string;
  readonly clientId: string;
  /** The refresh-token family this token came from; absent for client-credentials tokens. */
  readonly sessionId: string | undefined;
  readonly issuedAt: number;
  /** Epoch seconds. */
  readonly expiresAt: number;
  readonly grants: TopicGrants;
  readonly publish: readonly Selector[];
  readonly subscribe: readonly Selector[];
  /** The alias of the trusted external issuer that signed the token (issue 10); absent for our own tokens. */
  readonly externalIssuer?: string;
  readonly presence: readonly Selector[];
}

interface IssuedAccessToken {
  readonly token: string;
  readonly tokenId: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
  readonly expiresIn: number;
}

export interface TokenService {
  readonly algorithm: string;
  issueAccessToken(input: {
    subject: string;
    clientId: string;
    sessionId?: string;
    grants: TopicGrants;
    /** Epoch seconds; the token's `iat` is never earlier (see `revocations.ts`). */
    notBefore?: number;
  }): Promise<IssuedAccessToken>;
  /** @throws BearerError (`invalid_token`) for any failure, with the reason kept for logs. */
  verifyAccessToken(token: string): Promise<AccessClaims>;
  jwks(): { keys: JWK[] };
}

export type SigningMaterial =
  | { readonly alg: 'EdDSA' | 'ES256'; readonly privateKey: KeyObject; readonly publicKey: KeyObject }
  | { readonly alg: 'HS256'; readonly secret: Uint8Array };

export interface TokenServiceOptions {
  readonly signing: SigningMaterial;
  readonly issuer: string;
  readonly audience: string;
  /** Access-token lifetime. */
  readonly ttlMs: number;
  /** Clock skew tolerated on `exp`, `nbf` and `iat`. */
  readonly clockToleranceMs: number;
  readonly clock?: () => number;
  readonly randomId?: () => string;
}

const selectorList = z.array(z.string().max(300)).max(64);
const grantsClaim = z.object({ publish: selectorList, subscribe: selectorList, presence: selectorList.optional() }).strict();
const payloadSchema = z.object({
  // Local accounts, and the namespaced subjects of minted (token exchange) tokens.
  sub: z.string().regex(SUBJECT_NAME),
  jti: z.string().min(1).max(64),
  client_id: z.string().min(1).max(64),
  sid: z.string().min(1).max(64).optional(),
  iat: z.number().int(),
  exp: z.number().int(),
  topics: grantsClaim,
});

/**
 * Compiled selectors by source text. Grants come from role templates expanded per account, so the
 * number of distinct strings is about (accounts x selectors per role). 10,000 entries (~2 MB)
 * keeps every active account's selectors compiled; past it the cache starts over rather than
 * tracking recency, which costs one re-parse per selector and nothing else.
 */
const SELECTOR_CACHE_LIMIT = 10_000;
const selectorCache = new Map<string, Selector>();
/** Parses a granted selector through the shared bounded cache. @throws InvalidRequestError (`invalid_selector`). */
export function compileSelector(source: string): Selector {
  let selector = selectorCache.get(source);
  if (selector === undefined) {
    selector = parseSelector(source);
    if (selectorCache.size >= SELECTOR_CACHE_LIMIT) selectorCache.clear();
    selectorCache.set(source, selector);
  }
  return selector;
}

/**
 * Builds the token service.
 * @throws Error when a required option is missing or unsafe: a factory with no key refuses to build.
 */
export async function createTokenService(options: TokenServiceOptions): Promise<TokenService> {
  const { signing, issuer, audience } = options;
  if (!issuer || !audience) throw new Error('createTokenService: issuer and audience are required');
  if (!(options.ttlMs >= 1000)) throw new Error('createTokenService: ttlMs must be at least one second');
  // JWT times (RFC 7519 NumericDate) are whole seconds.
  const ttl = Math.floor(options.ttlMs / 1000);
  const clockTolerance = Math.floor(options.clockToleranceMs / 1000);
  const clock = options.clock ?? Date.now;
  const randomId = options.randomId ?? randomUUID;

  let signKey: KeyObject;
  let verifyKey: KeyObject;
  let jwk: JWK | undefined;
  let kid: string | undefined;
  if (signing.alg === 'HS256') {
    if (!(signing.secret instanceof Uint8Array) || signing.secret.length < 32) {
      throw new Error('createTokenService: an HS256 secret of at least 32 bytes is required');
    }
    signKey = verifyKey = createSecretKey(signing.secret);
  } else {
    if (signing.privateKey?.type !== 'private' || signing.publicKey?.type !== 'public') {
      throw new Error('createTokenService: a private and a public key are required');
    }
    signKey = signing.privateKey;
    verifyKey = signing.publicKey;
    const exported = await exportJWK(signing.publicKey);
    kid = await calculateJwkThumbprint(exported);
    jwk = { ...exported, kid, alg: signing.alg, use: 'sig' };
  }

  return {
    algorithm: signing.alg,

    async issueAccessToken(input) {
      const now = Math.floor(clock() / 1000);
      const issuedAt = Math.max(now, input.notBefore ?? 0);
      const expiresAt = issuedAt + ttl;
      const tokenId = randomId();
      const topics: Record<string, string[]> = { publish: [...input.grants.publish], subscribe: [...input.grants.subscribe] };
      // Only when there is one, so tokens without a presence grant stay as they were.
      if (input.grants.presence !== undefined && input.grants.presence.length > 0) topics.presence = [...input.grants.presence];
      const claims: Record<string, unknown> = { client_id: input.clientId, topics };
      if (input.sessionId !== undefined) claims.sid = input.sessionId;
      const token = await new SignJWT(claims)
        .setProtectedHeader(
          kid === undefined ? { alg: signing.alg, typ: ACCESS_TOKEN_TYPE } : { alg: signing.alg, typ: ACCESS_TOKEN_TYPE, kid },
        )
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(input.subject)
        .setJti(tokenId)
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .sign(signKey);
      return { token, tokenId, expiresAt, expiresIn: expiresAt - now };
    },

    async verifyAccessToken(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH || /[^A-Za-z0-9_.-]/.test(token)) {
        throw BearerError.invalid('malformed');
      }
      // Anything but three segments is left to jose to refuse (and name); three must be canonical.
      if (COMPACT_JWS.test(token) && !isCanonicalCompactJws(token)) throw BearerError.invalid('non_canonical');
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, verifyKey, {
          algorithms: [signing.alg],
          issuer,
          audience,
          typ: ACCESS_TOKEN_TYPE,
          requiredClaims: ['exp', 'iat', 'sub', 'jti'],
          clockTolerance,
          currentDate: new Date(clock()),
        }));
      } catch (error) {
        throw BearerError.invalid(reasonOf(error), error);
      }
      const parsed = payloadSchema.safeParse(payload);
      if (!parsed.success) throw BearerError.invalid('claims');
      const claims = parsed.data;
      // Age and lifetime are bounded by our own TTL, whatever `exp` claims. `iat` may be up to one
      // second ahead even with no tolerance: right after a revocation we stamp new tokens with the
      // next second (`revocations.ts`), and they must work at once.
      const now = clock() / 1000;
      if (claims.exp - claims.iat > ttl) throw BearerError.invalid('lifetime');
      if (now - claims.iat > ttl + clockTolerance) throw BearerError.invalid('expired');
      if (claims.iat > now + Math.max(clockTolerance, 1)) throw BearerError.invalid('claim_iat');
      let publish: Selector[];
      let subscribe: Selector[];
      let presence: Selector[];
      try {
        publish = claims.topics.publish.map(compileSelector);
        subscribe = claims.topics.subscribe.map(compileSelector);
        presence = (claims.topics.presence ?? []).map(compileSelector);
      } catch (error) {
        throw BearerError.invalid('claims', error);
      }
      return {
        subject: claims.sub,
        tokenId: claims.jti,
        clientId: claims.client_id,
        sessionId: claims.sid,
        issuedAt: claims.iat,
        expiresAt: claims.exp,
        grants: claims.topics,
        publish,
        subscribe,
        presence,
      };
    },

    jwks() {
      return { keys: jwk === undefined ? [] : [jwk] };
    },
  };
}

/** Three base64url segments (RFC 7515 §7.1), no padding. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Is this the one canonical spelling of a compact JWS? jose decodes base64url leniently: padding
 * is accepted and the unused low bits of the last character are ignored, so one signed token has
 * several spellings that all verify. We accept only the spelling we issue (each segment
 * round-trips through decode and encode), so a token string names exactly one token: logs,
 * revocation lists and caches cannot be sidestepped by re-spelling it (RFC 4648 §3.5, "canonical
 * encoding").
 */
export function isCanonicalCompactJws(token: string): boolean {
  if (!COMPACT_JWS.test(token)) return false;
  for (const segment of token.split('.')) {
    if (Buffer.from(segment, 'base64url').toString('base64url') !== segment) return false;
  }
  return true;
}

/** A stable, short reason for a jose failure (for logs and metrics; the caller's answer is the same for all). */
export function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `claim_${error.claim}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm';
  if (error instanceof errors.JOSEError) return error.code;
  return 'malformed';
}
