import type { ExternalTokenVerifier } from './external-token-verifier.js';
import type { AccessClaims } from './token-service.js';

/** Whatever turns a bearer token into verified claims: our own token service, or this composite. */
export interface AccessTokenVerifier {
  /** @throws BearerError (`invalid_token`). */
  verifyAccessToken(token: string): Promise<AccessClaims>;
}

/**
 * The one verifier `http/authenticate.ts` uses: a token whose unverified `iss` is exactly one of
 * the trusted external issuers (that accepts bearer use) is verified by that issuer's verifier;
 * every other token, ours or not, goes to our own token service, which refuses anything it did not
 * sign. External issuers can never claim our own `iss` (`issuer-config.ts`), so the choice is never
 * ambiguous, and no token is ever tried against a second set of keys after a first one failed.
 */
export function createAccessTokenVerifier(deps: { own: AccessTokenVerifier; external: ExternalTokenVerifier }): AccessTokenVerifier {
  return {
    verifyAccessToken: (token) =>
      deps.external.accepts(token, 'bearer') ? deps.external.verify(token, 'bearer') : deps.own.verifyAccessToken(token),
  };
}
