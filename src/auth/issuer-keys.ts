import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  importSPKI,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTVerifyGetKey,
} from 'jose';
import { keyUrlProblem, type IssuerConfig } from './issuer-config.js';
import { createBoundedFetch, fetchJson, KeyFetchError, type Fetch } from './key-fetch.js';

/**
 * The verification keys of one external issuer (issue 10 §1), from discovery, a `jwks_uri`, a
 * static JWK Set or a PEM file. Remote key sets use jose's `createRemoteJWKSet` (a cached set, at
 * most one refetch per cooldown when a token names an unknown `kid`, a deadline per fetch) over
 * `createBoundedFetch` (size bound, no redirects, only this issuer's URL). On top of jose:
 *
 * - a failed fetch also starts the cooldown, so an unreachable provider is asked at most once per
 *   cooldown instead of once per request, and requests in between get their 401 at once;
 * - when the cache is stale and the provider cannot be reached, the last good key set keeps
 *   verifying (a provider outage must not sign every user out);
 * - `status()` says whether the issuer is degraded and why, for `/readyz`.
 *
 * This module imports jose (besides `token-service.ts` and `external-token-verifier.ts`).
 */
export interface IssuerKeySource {
  readonly getKey: JWTVerifyGetKey;
  /** `undefined` while keys are fresh (or static), else why the issuer is degraded. */
  status(): string | undefined;
  /** Loads the keys now (at start), so the first token does not wait for them; never throws. */
  warm(): Promise<void>;
}

/** Thrown by `getKey` when no key can be had right now: the token is refused with 401, never 500. */
export class KeysUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`issuer keys unavailable: ${reason}`);
    this.name = 'KeysUnavailableError';
  }
}

export async function createIssuerKeySource(
  config: IssuerConfig,
  options: {
    fetch?: Fetch;
    clock?: () => number;
    /** Told when the status changes (degraded with a reason, or `undefined` once keys are good again), for the log. */
    onStatus?: (status: string | undefined) => void;
  } = {},
): Promise<IssuerKeySource> {
  if (config.keys.kind === 'pem') {
    const pem = config.keys.pem;
    // One KeyObject per allowed algorithm; importSPKI refuses a key of another type.
    const keys = new Map<string, Awaited<ReturnType<typeof importSPKI>>>();
    for (const alg of config.algorithms) keys.set(alg, await importSPKI(pem, alg));
    return {
      getKey: (header) => {
        const key = keys.get(header.alg ?? '');
        if (key === undefined) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
        return key;
      },
      status: () => undefined,
      warm: async () => undefined,
    };
  }
  if (config.keys.kind === 'jwks') {
    const local = createLocalJWKSet(config.keys.jwks as JSONWebKeySet);
    return { getKey: local, status: () => undefined, warm: async () => undefined };
  }
  return new RemoteKeySource(config, options.fetch ?? fetch, options.clock ?? Date.now, options.onStatus ?? (() => undefined));
}

class RemoteKeySource implements IssuerKeySource {
  private remote: ReturnType<typeof createRemoteJWKSet> | undefined;
  private jwksUrl: string | undefined;
  private discovering: Promise<void> | undefined;
  /** When the last fetch (discovery or keys) failed, and why; cleared by a success. */
  private failedAt: number | undefined;
  private failure: string | undefined;
  private loadedOnce = false;
  /** The last good key set, imported once (jose's remote set re-fetches instead when stale). */
  private fallback: { source: string; local: ReturnType<typeof createLocalJWKSet> } | undefined;

  constructor(
    private readonly config: IssuerConfig,
    private readonly baseFetch: Fetch,
    private readonly clock: () => number,
    private readonly onStatus: (status: string | undefined) => void,
  ) {
    if (config.keys.kind === 'jwks_uri') this.useJwks(config.keys.url);
  }

  readonly getKey: JWTVerifyGetKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (this.remote === undefined) {
      if (this.coolingDown()) throw new KeysUnavailableError(this.failure ?? 'discovery_failed');
      await this.discover();
      if (this.remote === undefined) throw new KeysUnavailableError(this.failure ?? 'discovery_failed');
    }
    const remote = this.remote;
    // The provider failed moments ago: do not ask again yet, verify with the last good set.
    if (this.coolingDown()) return this.lastGood(header, token);
    try {
      const key = await remote(header, token);
      this.succeeded();
      return key;
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
        if (remote.fresh) this.succeeded();
        throw error;
      }
      if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) throw error;
      this.failed(error);
      return this.lastGood(header, token);
    }
  };

  /** The key from the last key set fetched successfully, however old. */
  private async lastGood(header: JWSHeaderParameters, token: FlattenedJWSInput) {
    const last = this.remote?.jwks();
    if (last === undefined) throw new KeysUnavailableError(this.failure ?? 'keys_unavailable');
    const text = JSON.stringify(last);
    if (this.fallback?.source !== text) this.fallback = { source: text, local: createLocalJWKSet(last) };
    return this.fallback.local(header, token);
  }

  status(): string | undefined {
    if (this.failure !== undefined) return this.failure;
    if (!this.loadedOnce) return 'keys_not_loaded';
    return undefined;
  }

  async warm(): Promise<void> {
    try {
      if (this.remote === undefined) await this.discover();
      if (this.remote === undefined) return;
      await this.remote.reload();
      this.succeeded();
    } catch (error) {
      this.failed(error);
    }
  }

  private coolingDown(): boolean {
    return this.failedAt !== undefined && this.clock() - this.failedAt < Math.max(this.config.fetch.cooldownMs, 1);
  }

  private succeeded(): void {
    const before = this.status();
    this.failedAt = undefined;
    this.failure = undefined;
    this.loadedOnce = true;
    if (before !== undefined) this.onStatus(undefined);
  }

  private failed(error: unknown): void {
    const before = this.status();
    this.failedAt = this.clock();
    this.failure =
      error instanceof KeyFetchError
        ? `keys_${error.reason}`
        : error instanceof errors.JWKSTimeout
          ? 'keys_timeout'
          : error instanceof errors.JWKSInvalid
            ? 'keys_invalid'
            : error instanceof KeysUnavailableError
              ? error.reason
              : 'keys_unavailable';
    if (this.failure !== before) this.onStatus(this.failure);
  }

  private useJwks(url: string): void {
    this.jwksUrl = new URL(url).href;
    const allowed = this.jwksUrl;
    this.remote = createRemoteJWKSet(new URL(allowed), {
      cooldownDuration: this.config.fetch.cooldownMs,
      cacheMaxAge: this.config.fetch.cacheMaxAgeMs,
      timeoutDuration: this.config.fetch.timeoutMs,
      [customFetch]: createBoundedFetch({
        maxBytes: this.config.fetch.maxBytes,
        allowed: (candidate) => candidate === allowed,
        fetch: this.baseFetch,
      }),
    });
  }

  /** OpenID Connect Discovery 1.0 §4: the document at `<issuer>/.well-known/openid-configuration`, whose `issuer` must be ours exactly (§4.3). */
  private discover(): Promise<void> {
    this.discovering ??= (async () => {
      const base = this.config.issuer.endsWith('/') ? this.config.issuer.slice(0, -1) : this.config.issuer;
      const url = `${base}/.well-known/openid-configuration`;
      try {
        const fetcher = createBoundedFetch({
          maxBytes: this.config.fetch.maxBytes,
          allowed: (candidate) => candidate === url,
          fetch: this.baseFetch,
        });
        const document = (await fetchJson(fetcher, url, this.config.fetch.timeoutMs)) as { issuer?: unknown; jwks_uri?: unknown } | null;
        if (document?.issuer !== this.config.issuer) throw new KeysUnavailableError('discovery_issuer_mismatch');
        if (typeof document.jwks_uri !== 'string' || keyUrlProblem(document.jwks_uri, this.config.insecureHttp) !== undefined) {
          throw new KeysUnavailableError('discovery_bad_jwks_uri');
        }
        this.useJwks(document.jwks_uri);
      } catch (error) {
        this.failed(error instanceof KeyFetchError ? new KeysUnavailableError(`discovery_${error.reason}`) : error);
      } finally {
        this.discovering = undefined;
      }
    })();
    return this.discovering;
  }
}
