import { createHash } from 'node:crypto';
import { decodeJwt, jwtVerify } from 'jose';
import type { RoleTable } from './role-table.js';
import { BearerError } from '../errors.js';
import type { Selector } from '../topics/selector.js';
import { ClaimMappingError, externalGrants, externalSubject } from './claim-mapping.js';
import type { IssuerConfig, TokenUse } from './issuer-config.js';
import { createIssuerKeySource, KeysUnavailableError, type IssuerKeySource } from './issuer-keys.js';
import type { Fetch } from './key-fetch.js';
import { compileSelector, isCanonicalCompactJws, reasonOf, type AccessClaims } from './token-service.js';

/**
 * Verifies the JWTs of the trusted external issuers (`ISSUERS_FILE`, issue 10 §1) and turns them
 * into the same `AccessClaims` our own tokens give, so streams, publishing, expiry, renewal and
 * revocation treat both alike. The issuer is chosen by the token's unverified `iss`, compared as
 * an exact string; the token is then verified with that issuer's keys only, its algorithm
 * allowlist, `typ`, audience, and required `exp` and `iat` (RFC 8725 §3.1, §3.8–3.11). A token is
 * never tried against every key we know.
 *
 * This module imports jose (besides `token-service.ts` and `issuer-keys.ts`).
 */
export interface ExternalTokenVerifier {
  /** Does the token name (in its unverified `iss`) a configured issuer that accepts tokens for `use`? */
  accepts(token: string, use: TokenUse): boolean;
  /** @throws BearerError (`invalid_token`) for any failure, the reason kept for logs. */
  verify(token: string, use: TokenUse): Promise<AccessClaims>;
  /** The issuers whose keys cannot be had right now (or are stale), for `/readyz`. */
  degraded(): Array<{ readonly alias: string; readonly issuer: string; readonly reason: string }>;
  /** The longest token lifetime any issuer allows (ms): how long a subject revocation must be remembered. */
  readonly maxTokenLifetimeMs: number;
}

/**
 * External tokens may be larger than ours (group lists); longer ones are refused before parsing.
 * 16 KiB is also Node's limit for all request headers together.
 */
const MAX_EXTERNAL_TOKEN_LENGTH = 16 * 1024;

interface Runtime {
  readonly config: IssuerConfig;
  readonly keys: IssuerKeySource;
}

export async function createExternalTokenVerifier(options: {
  readonly issuers: readonly IssuerConfig[];
  readonly roles: RoleTable;
  readonly clock?: () => number;
  /** For tests; every fetch still goes through the bounded fetch of `key-fetch.ts`. */
  readonly fetch?: Fetch;
  /** Load remote keys at once (default true); failures only mark the issuer degraded. */
  readonly warm?: boolean;
  /** Told when an issuer becomes degraded (with the reason) or recovers (`undefined`). */
  readonly onIssuerStatus?: (issuer: { alias: string; issuer: string }, reason: string | undefined) => void;
}): Promise<ExternalTokenVerifier> {
  const clock = options.clock ?? Date.now;
  const byIssuer = new Map<string, Runtime>();
  for (const config of options.issuers) {
    const onStatus = (reason: string | undefined) => options.onIssuerStatus?.({ alias: config.alias, issuer: config.issuer }, reason);
    byIssuer.set(config.issuer, { config, keys: await createIssuerKeySource(config, { fetch: options.fetch, clock, onStatus }) });
  }
  if (options.warm !== false) for (const runtime of byIssuer.values()) void runtime.keys.warm();

  const runtimeFor = (token: string, use: TokenUse): Runtime | undefined => {
    const issuer = peekIssuer(token);
    const runtime = issuer === undefined ? undefined : byIssuer.get(issuer);
    return runtime !== undefined && runtime.config.acceptAs.includes(use) ? runtime : undefined;
  };

  return {
    maxTokenLifetimeMs: Math.max(0, ...options.issuers.map((issuer) => issuer.maxTokenLifetimeMs)),

    accepts: (token, use) => byIssuer.size > 0 && runtimeFor(token, use) !== undefined,

    async verify(token, use) {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_EXTERNAL_TOKEN_LENGTH || !isCanonicalCompactJws(token)) {
        throw BearerError.invalid('malformed');
      }
      const runtime = runtimeFor(token, use);
      if (runtime === undefined) throw BearerError.invalid('issuer');
      const { config } = runtime;
      const toleranceSeconds = config.clockToleranceMs / 1000;
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, runtime.keys.getKey, {
          algorithms: [...config.algorithms],
          issuer: config.issuer,
          audience: [...config.audience],
          typ: config.type,
          requiredClaims: ['exp', 'iat'],
          clockTolerance: toleranceSeconds,
          currentDate: new Date(clock()),
        }));
      } catch (error) {
        throw BearerError.invalid(error instanceof KeysUnavailableError ? 'keys_unavailable' : reasonOf(error), error);
      }
      const exp = payload.exp as number;
      const iat = payload.iat as number;
      const now = clock() / 1000;
      if (exp - iat > config.maxTokenLifetimeMs / 1000) throw BearerError.invalid('lifetime');
      if (iat > now + Math.max(toleranceSeconds, 1)) throw BearerError.invalid('claim_iat');

      let subject: string;
      let publish: Selector[];
      let subscribe: Selector[];
      let presence: Selector[];
      let grants;
      try {
        subject = externalSubject(payload, config.subject);
        grants = externalGrants(payload, config.grants, options.roles, subject);
        publish = grants.publish.map(compileSelector);
        subscribe = grants.subscribe.map(compileSelector);
        presence = (grants.presence ?? []).map(compileSelector);
      } catch (error) {
        throw BearerError.invalid(error instanceof ClaimMappingError ? error.reason : 'claims', error);
      }
      const clientId = [payload.client_id, payload.azp].find(
        (value) => typeof value === 'string' && value.length > 0 && value.length <= 256,
      );
      return {
        subject,
        tokenId: typeof payload.jti === 'string' && payload.jti.length > 0 && payload.jti.length <= 256 ? payload.jti : tokenHash(token),
        clientId: (clientId as string | undefined) ?? config.alias,
        sessionId: undefined,
        issuedAt: iat,
        expiresAt: exp,
        grants,
        publish,
        subscribe,
        presence,
        externalIssuer: config.alias,
      };
    },

    degraded() {
      const list = [];
      for (const { config, keys } of byIssuer.values()) {
        const reason = keys.status();
        if (reason !== undefined) list.push({ alias: config.alias, issuer: config.issuer, reason });
      }
      return list;
    },
  };
}

/** The unverified `iss` of a compact JWT, or `undefined` when there is none (only to pick the verifier). */
function peekIssuer(token: string): string | undefined {
  try {
    const { iss } = decodeJwt(token);
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 32);
}
