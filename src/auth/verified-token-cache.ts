import type { AccessClaims, TokenService } from './token-service.js';

export interface VerifiedTokenCacheOptions {
  /** Access-token lifetime: a cached token is never used past `iat` + this + the tolerance. */
  readonly ttlMs: number;
  readonly clockToleranceMs: number;
  /**
   * Tokens remembered at once. A publisher sends the same token with every publish until it
   * renews it, so the working set is about one token per active publisher and stream renewer;
   * 4,096 entries hold that for thousands of them in about 4 MB (a token is under 1 KB, its claims
   * about as much). Past the bound the oldest entry goes: it costs one more verification, nothing else.
   */
  readonly maxEntries?: number;
  readonly clock?: () => number;
}

interface Entry {
  readonly claims: AccessClaims;
  /** Epoch ms after which the token would fail verification on time alone. */
  readonly usableUntil: number;
}

/**
 * A token service whose `verifyAccessToken` remembers what it verified (issue 12): a publisher that
 * sends the same token with a thousand publishes pays for one EdDSA verification, not a thousand.
 *
 * Sound because of what verification depends on: the token's bytes, our key (fixed for the
 * service's life) and the time. The key is the exact token string, and a token has exactly one
 * accepted spelling (`isCanonicalCompactJws`), so a re-spelled token is verified on its own. The
 * time checks are kept: an entry is used only while the token would still pass them (`exp` and
 * the maximum age, with the clock tolerance), and after that the token goes back to the real
 * verification, which refuses it. Failures are never cached. Revocation is not a property of the
 * token and is checked by the caller on every use, cached or not (`http/authenticate.ts`).
 */
export function withVerifiedTokenCache(tokens: TokenService, options: VerifiedTokenCacheOptions): TokenService {
  const maxEntries = options.maxEntries ?? 4096;
  const clock = options.clock ?? Date.now;
  const cache = new Map<string, Entry>();
  return {
    algorithm: tokens.algorithm,
    issueAccessToken: (input) => tokens.issueAccessToken(input),
    jwks: () => tokens.jwks(),
    async verifyAccessToken(token) {
      const cached = cache.get(token);
      if (cached !== undefined) {
        if (clock() < cached.usableUntil) return cached.claims;
        cache.delete(token);
      }
      const claims = await tokens.verifyAccessToken(token);
      // The token service's own limits, in its whole seconds: `exp`, and `iat` + the lifetime.
      const usableUntil = Math.min(claims.expiresAt, claims.issuedAt + Math.floor(options.ttlMs / 1000)) * 1000 + options.clockToleranceMs;
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
      cache.set(token, { claims, usableUntil });
      return claims;
    },
  };
}
