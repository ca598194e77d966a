import { createPublicKey, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { ROLE_NAME, selectorTemplates } from './role-table.js';
import { NAMESPACE_SEPARATOR } from './user-store.js';

/**
 * The trusted external issuers (`ISSUERS_FILE`, issue 10 §1): identity providers and backends
 * whose JWTs notify verifies itself. The file is JSON, parsed once at start by the schema below;
 * any bad entry stops the server with an `IssuerConfigError` that names the entry and the field.
 * Key files (`jwksFile`, `pemFile`) are read at the same time, through the same injected reader,
 * and checked against the algorithm allowlist, so a wrong key type is a start-time error too.
 *
 * Nothing here imports jose: keys are checked with `node:crypto`; `external-token-verifier.ts`
 * imports them for verification.
 */

/**
 * Asymmetric JWS algorithms only (RFC 7518 §3.1, RFC 8037): `none` and the HMAC family are not
 * even expressible, so a public key can never be used as an HMAC secret (RFC 8725 §2.1, §3.1).
 */
const EXTERNAL_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
type ExternalAlgorithm = (typeof EXTERNAL_ALGORITHMS)[number];

/** Which key types each algorithm can use (`KeyObject.asymmetricKeyType`, and the EC curve). */
function algorithmFitsKey(alg: ExternalAlgorithm, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  switch (alg) {
    case 'RS256':
    case 'RS384':
    case 'RS512':
      return type === 'rsa';
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return type === 'rsa' || type === 'rsa-pss';
    case 'ES256':
      return type === 'ec' && curve === 'prime256v1';
    case 'ES384':
      return type === 'ec' && curve === 'secp384r1';
    case 'ES512':
      return type === 'ec' && curve === 'secp521r1';
    case 'EdDSA':
      return type === 'ed25519' || type === 'ed448';
    case 'Ed25519':
      return type === 'ed25519';
  }
}

/** Where an issuer's verification keys come from. */
type IssuerKeys =
  /** OpenID Connect Discovery 1.0 §4 from `issuer`, then its `jwks_uri`. */
  | { readonly kind: 'discovery' }
  | { readonly kind: 'jwks_uri'; readonly url: string }
  /** A static JWK Set (air-gapped setups; a backend's own key). Public members only. */
  | { readonly kind: 'jwks'; readonly jwks: { readonly keys: ReadonlyArray<Record<string, unknown>> } }
  /** One public key as SPKI PEM. */
  | { readonly kind: 'pem'; readonly pem: string };

export type TokenUse = 'bearer' | 'subject_token';

export interface IssuerConfig {
  /** Short name: the default subject namespace (`<alias>~<sub>`) and the name in logs and `/readyz`. */
  readonly alias: string;
  /** The exact `iss` value (RFC 7519 §4.1.1); compared as a string, never normalised. */
  readonly issuer: string;
  /** Accepted `aud` values: the token must name at least one. */
  readonly audience: readonly string[];
  readonly algorithms: readonly ExternalAlgorithm[];
  /** The required `typ` header (RFC 8725 §3.11), `at+jwt` by default (RFC 9068 §2.1). */
  readonly type: string;
  readonly clockToleranceMs: number;
  /** A token whose `exp - iat` is longer is refused; it also bounds how long a subject revocation must be remembered. */
  readonly maxTokenLifetimeMs: number;
  readonly keys: IssuerKeys;
  readonly subject: {
    /** The claim holding the subject, as a path into nested objects. */
    readonly claim: readonly string[];
    /** Put before the (encoded) claim value; `<alias>~` unless configured. */
    readonly prefix: string;
    /** `plain`: the claim value as it is (it must be topic-safe); `base64url`: its UTF-8 bytes in base64url (for subjects like `auth0|123`). */
    readonly encoding: 'plain' | 'base64url';
  };
  readonly grants: {
    /** A list claim (array of strings, or a space-separated string like `scope`) mapped to role-table roles. */
    readonly roles: { readonly claim: readonly string[]; readonly map: Readonly<Record<string, readonly string[]>> } | undefined;
    /** Granted to every valid token of this issuer; `{sub}` expands to the subject. */
    readonly fixed: { readonly publish: readonly string[]; readonly subscribe: readonly string[] } | undefined;
    /** A claim of notify's own shape, `{ "publish": [...], "subscribe": [...] }`, taken literally. */
    readonly topicsClaim: readonly string[] | undefined;
  };
  /** `bearer`: its tokens open streams and publish directly; `subject_token`: a backend may exchange them (`POST /auth/token`). */
  readonly acceptAs: readonly TokenUse[];
  readonly fetch: {
    /** At most one refetch of the key set per cooldown, also after a failure. */
    readonly cooldownMs: number;
    /** Keys older than this are refreshed; while the provider is unreachable the old ones keep working. */
    readonly cacheMaxAgeMs: number;
    readonly timeoutMs: number;
    /** Larger discovery or JWKS documents are refused without being read to the end. */
    readonly maxBytes: number;
  };
  /** `http:` key URLs are allowed on any host (else only on loopback). */
  readonly insecureHttp: boolean;
}

/** A bad ISSUERS_FILE entry. `entry` is `issuers[<index>]` (and the alias when known), `field` the path in it. */
export class IssuerConfigError extends Error {
  constructor(
    readonly entry: string,
    readonly field: string,
    problem: string,
  ) {
    super(`${entry}${field === '' ? '' : `: ${field}`}: ${problem}`);
    this.name = 'IssuerConfigError';
  }
}

const ALIAS = /^[a-z][a-z0-9-]{0,31}$/;
/** The characters a subject may hold (`SUBJECT_NAME`); a prefix is made of them too. */
const SUBJECT_CHARS = /^[A-Za-z0-9._~-]*$/;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const NO_CONTROLS = /^[^\u0000-\u001f\u007f]*$/;

/** A claim path: `"realm_access.roles"`, or `["https://example.com/roles"]` when a key holds dots. */
const claimPath = z
  .union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).min(1).max(8)])
  .transform((value) => (typeof value === 'string' ? value.split('.') : value))
  .refine((segments) => segments.every((segment) => segment.length > 0 && segment !== '__proto__'), 'empty or forbidden path segment');

const ms = (min: number, max: number, fallback: number) => z.number().int().min(min).max(max).default(fallback);

const entrySchema = z
  .object({
    alias: z.string().regex(ALIAS, 'must be 1 to 32 characters of a-z 0-9 -, starting with a letter'),
    issuer: z.string().min(1).max(1024).regex(NO_CONTROLS, 'must not hold control characters'),
    audience: z.union([z.string().min(1).max(1024), z.array(z.string().min(1).max(1024)).min(1).max(16)]),
    algorithms: z
      .array(
        z.enum(EXTERNAL_ALGORITHMS, 'must be an asymmetric JWS algorithm (RS*, PS*, ES*, EdDSA, Ed25519); none and HS* are never accepted'),
      )
      .min(1)
      .max(11),
    keys: z.union(
      [
        z.object({ discovery: z.literal(true) }).strict(),
        z.object({ jwksUri: z.string().min(1).max(2048) }).strict(),
        z.object({ jwksFile: z.string().min(1).max(4096) }).strict(),
        z.object({ pemFile: z.string().min(1).max(4096) }).strict(),
      ],
      'must be one of {"discovery": true}, {"jwksUri": URL}, {"jwksFile": path}, {"pemFile": path}',
    ),
    type: z.string().min(1).max(64).default('at+jwt'),
    clockToleranceMs: ms(0, 300_000, 5_000),
    maxTokenLifetimeMs: ms(1_000, 7 * 86_400_000, 3_600_000),
    subject: z
      .object({
        claim: claimPath.default(['sub']),
        prefix: z.string().max(32).regex(SUBJECT_CHARS, 'may only hold A-Z a-z 0-9 . _ ~ -').optional(),
        encoding: z.enum(['plain', 'base64url']).default('plain'),
      })
      .strict()
      .default({ claim: ['sub'], encoding: 'plain' }),
    grants: z
      .object({
        roles: z
          .object({
            claim: claimPath,
            map: z.record(z.string().min(1).max(256), z.union([z.string().regex(ROLE_NAME), z.array(z.string().regex(ROLE_NAME)).max(32)])),
          })
          .strict()
          .optional(),
        fixed: z.object({ publish: selectorTemplates, subscribe: selectorTemplates }).strict().optional(),
        topicsClaim: claimPath.optional(),
      })
      .strict()
      .default({}),
    acceptAs: z
      .array(z.enum(['bearer', 'subject_token']))
      .min(1)
      .max(2)
      .default(['bearer', 'subject_token']),
    fetch: z
      .object({
        cooldownMs: ms(0, 3_600_000, 30_000),
        cacheMaxAgeMs: ms(1_000, 86_400_000, 600_000),
        timeoutMs: ms(100, 30_000, 5_000),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .max(8 * 1024 * 1024)
          .default(256 * 1024),
      })
      .strict()
      .default({ cooldownMs: 30_000, cacheMaxAgeMs: 600_000, timeoutMs: 5_000, maxBytes: 256 * 1024 }),
    /** Allows `http:` key URLs on hosts other than loopback (a development network); never needed in production. */
    insecureHttp: z.boolean().default(false),
  })
  .strict();

const fileSchema = z.object({ issuers: z.array(z.unknown()).max(64) }).strict();

export interface IssuerFileOptions {
  /** Reads a file as UTF-8 (the issuers file and the key files it names). */
  readonly readFile: (file: string) => string;
  /** Role names of the role table: every role an issuer maps to must exist. */
  readonly knownRoles: readonly string[];
  /** Our own `iss`: no external issuer may claim it (issuer confusion). */
  readonly ownIssuer: string;
}

/**
 * Reads and checks `ISSUERS_FILE`.
 * @throws IssuerConfigError naming the entry and the field.
 */
export function loadIssuersFile(file: string, options: IssuerFileOptions): IssuerConfig[] {
  let text: string;
  try {
    text = options.readFile(file);
  } catch (error) {
    throw new IssuerConfigError(file, '', `cannot be read (${(error as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new IssuerConfigError(file, '', `is not JSON (${(error as Error).message})`);
  }
  return parseIssuers(raw, { ...options, baseDir: path.dirname(path.resolve(file)) });
}

/**
 * Checks a parsed issuers document. Key files are resolved against `baseDir`.
 * @throws IssuerConfigError naming the entry and the field.
 */
export function parseIssuers(raw: unknown, options: IssuerFileOptions & { baseDir: string }): IssuerConfig[] {
  const file = fileSchema.safeParse(raw);
  if (!file.success) throw fromZod('issuers file', file.error);
  const result: IssuerConfig[] = [];
  const aliases = new Set<string>();
  const issuers = new Set<string>();
  for (const [index, entryRaw] of file.data.issuers.entries()) {
    const alias = (entryRaw as { alias?: unknown } | null)?.alias;
    const entry = `issuers[${index}]${typeof alias === 'string' && ALIAS.test(alias) ? ` (${alias})` : ''}`;
    const parsed = entrySchema.safeParse(entryRaw);
    if (!parsed.success) throw fromZod(entry, parsed.error);
    const e = parsed.data;
    const fail = (field: string, problem: string) => new IssuerConfigError(entry, field, problem);

    if (aliases.has(e.alias)) throw fail('alias', `"${e.alias}" is used by an earlier entry`);
    if (issuers.has(e.issuer)) throw fail('issuer', 'is configured twice');
    if (e.issuer === options.ownIssuer) throw fail('issuer', "is notify's own issuer (JWT_ISSUER); an external issuer must have its own");
    aliases.add(e.alias);
    issuers.add(e.issuer);

    const { roles: roleGrants, fixed, topicsClaim } = e.grants;
    if (e.acceptAs.includes('bearer') && roleGrants === undefined && fixed === undefined && topicsClaim === undefined) {
      throw fail('grants', 'give at least one of roles, fixed, topicsClaim (a bearer token that grants nothing is of no use)');
    }
    const keys = readKeys(e.keys, e, options, fail);
    const prefix = e.subject.prefix ?? `${e.alias}${NAMESPACE_SEPARATOR}`;
    if (prefix === '' && e.subject.encoding !== 'plain') throw fail('subject.prefix', 'an empty prefix needs encoding "plain"');

    let roles: IssuerConfig['grants']['roles'];
    if (e.grants.roles !== undefined) {
      const map = Object.create(null) as Record<string, readonly string[]>;
      for (const [value, target] of Object.entries(e.grants.roles.map)) {
        const targets = typeof target === 'string' ? [target] : target;
        const unknown = targets.find((role) => !options.knownRoles.includes(role));
        if (unknown !== undefined) throw fail(`grants.roles.map.${value}`, `role "${unknown}" is not in the role table`);
        map[value] = targets;
      }
      roles = { claim: e.grants.roles.claim, map };
    }

    result.push({
      alias: e.alias,
      issuer: e.issuer,
      audience: typeof e.audience === 'string' ? [e.audience] : e.audience,
      algorithms: [...new Set(e.algorithms)],
      type: e.type,
      clockToleranceMs: e.clockToleranceMs,
      maxTokenLifetimeMs: e.maxTokenLifetimeMs,
      keys,
      subject: { claim: e.subject.claim, prefix, encoding: e.subject.encoding },
      grants: { roles, fixed: e.grants.fixed, topicsClaim: e.grants.topicsClaim },
      acceptAs: [...new Set(e.acceptAs)],
      fetch: e.fetch,
      insecureHttp: e.insecureHttp,
    });
  }
  return result;
}

type Entry = z.infer<typeof entrySchema>;

function readKeys(
  keys: Entry['keys'],
  e: Entry,
  options: IssuerFileOptions & { baseDir: string },
  fail: (field: string, problem: string) => IssuerConfigError,
): IssuerKeys {
  if ('discovery' in keys) {
    const problem = keyUrlProblem(e.issuer, e.insecureHttp);
    if (problem !== undefined) throw fail('issuer', `discovery needs the issuer to be a URL: ${problem}`);
    return { kind: 'discovery' };
  }
  if ('jwksUri' in keys) {
    const problem = keyUrlProblem(keys.jwksUri, e.insecureHttp);
    if (problem !== undefined) throw fail('keys.jwksUri', problem);
    return { kind: 'jwks_uri', url: new URL(keys.jwksUri).href };
  }
  const field = 'jwksFile' in keys ? 'keys.jwksFile' : 'keys.pemFile';
  const file = path.resolve(options.baseDir, 'jwksFile' in keys ? keys.jwksFile : keys.pemFile);
  let text: string;
  try {
    text = options.readFile(file);
  } catch (error) {
    throw fail(field, `${file} cannot be read (${(error as Error).message})`);
  }
  const publicKeys: KeyObject[] = [];
  let result: IssuerKeys;
  if ('pemFile' in keys) {
    if (/PRIVATE KEY/.test(text)) throw fail(field, `${file} holds a private key; give the public key only`);
    try {
      publicKeys.push(createPublicKey(text));
    } catch (error) {
      throw fail(field, `${file} is not a PEM public key (${(error as Error).message})`);
    }
    result = { kind: 'pem', pem: text };
  } else {
    let jwks: unknown;
    try {
      jwks = JSON.parse(text);
    } catch (error) {
      throw fail(field, `${file} is not JSON (${(error as Error).message})`);
    }
    const list = (jwks as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list) || list.length === 0 || list.length > 100) throw fail(field, `${file} is not a JWK Set with 1 to 100 keys`);
    for (const [index, jwk] of (list as unknown[]).entries()) {
      if (jwk === null || typeof jwk !== 'object') throw fail(`${field} keys[${index}]`, 'is not an object');
      // RFC 7518 §6: these members are private (or symmetric) key material.
      if (['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((member) => Object.hasOwn(jwk, member))) {
        throw fail(`${field} keys[${index}]`, 'holds private or symmetric key material; give public keys only');
      }
      try {
        publicKeys.push(createPublicKey({ key: jwk as never, format: 'jwk' }));
      } catch (error) {
        throw fail(`${field} keys[${index}]`, `is not a usable public JWK (${(error as Error).message})`);
      }
    }
    result = { kind: 'jwks', jwks: { keys: list as Array<Record<string, unknown>> } };
  }
  // Every allowed algorithm must have a key of its type; a listed algorithm no key can verify is a mistake.
  for (const alg of e.algorithms) {
    if (!publicKeys.some((key) => algorithmFitsKey(alg, key))) {
      throw fail('algorithms', `${alg} fits none of the keys in ${file} (${publicKeys.map((key) => key.asymmetricKeyType).join(', ')})`);
    }
  }
  return result;
}

/**
 * Key URLs are fetched by the server, so they are an SSRF surface: only `https:`, or `http:` on a
 * loopback host (a sidecar, the tests), or any `http:` with `insecureHttp`; no credentials in the
 * URL, no fragment.
 */
export function keyUrlProblem(value: string, insecureHttp: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.username !== '' || url.password !== '') return 'must not hold credentials';
  if (url.hash !== '') return 'must not have a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol !== 'http:') return 'must be an https: URL';
  if (insecureHttp || isLoopback(url.hostname)) return undefined;
  return 'must be an https: URL (http: only on loopback, or with "insecureHttp": true)';
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function fromZod(entry: string, error: z.ZodError): IssuerConfigError {
  const issue = error.issues[0]!;
  const field = issue.path
    .map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`))
    .join('');
  const message =
    issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}` : issue.message;
  return new IssuerConfigError(entry, field, message);
}
